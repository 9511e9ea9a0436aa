//! Network interfaces: addresses and link state (`ip -j addr`), traffic (`/proc/net/dev`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::counters::{NetCounters, parse_net_dev};
use crate::read_to_string;
use command::{CommandError, CommandExt};

/// One interface with its addresses and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    pub mtu: u32,
    /// `UP`, `DOWN`, `UNKNOWN` (loopback and some virtual links).
    pub state: String,
    /// `ether`, `loopback`, …
    pub link_type: String,
    /// Addresses in CIDR notation.
    pub addresses: Vec<String>,
    pub counters: Option<NetCounters>,
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    mtu: u32,
    #[serde(default)]
    operstate: String,
    #[serde(default)]
    link_type: String,
    #[serde(default)]
    addr_info: Vec<IpAddr>,
}

#[derive(Deserialize)]
struct IpAddr {
    local: String,
    prefixlen: u8,
}

/// Joins `ip -j addr` output with `/proc/net/dev` counters.
pub fn parse_interfaces(ip_json: &str, net_dev: &str) -> Result<Vec<Interface>, serde_json::Error> {
    let links: Vec<IpLink> = serde_json::from_str(ip_json)?;
    let counters = parse_net_dev(net_dev);
    Ok(links
        .into_iter()
        .map(|l| Interface {
            counters: counters.iter().find(|c| c.name == l.ifname).cloned(),
            addresses: l
                .addr_info
                .iter()
                .map(|a| format!("{}/{}", a.local, a.prefixlen))
                .collect(),
            name: l.ifname,
            mac: l.address,
            mtu: l.mtu,
            state: l.operstate,
            link_type: l.link_type,
        })
        .collect())
}

/// Lists the host's interfaces.
pub fn interfaces() -> Result<Vec<Interface>, CommandError> {
    let mut cmd = crate::tool("ip");
    cmd.args(["-j", "addr", "show"]);
    let links: serde_json::Value = cmd.run_json()?;
    let net_dev = read_to_string(Path::new("/proc/net/dev")).unwrap_or_default();
    parse_interfaces(&links.to_string(), &net_dev)
        .map_err(|e| CommandError::new(&cmd, format!("printed an unexpected shape: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_from_captured_output() {
        let ifs = parse_interfaces(
            include_str!("../tests/fixtures/ip-addr.json"),
            include_str!("../tests/fixtures/proc-net-dev.txt"),
        )
        .unwrap();
        let lo = &ifs[0];
        assert_eq!(lo.name, "lo");
        assert_eq!(lo.link_type, "loopback");
        assert_eq!(lo.addresses, ["127.0.0.1/8", "::1/128"]);
        let eth0 = ifs.iter().find(|i| i.name == "eth0").unwrap();
        assert_eq!(eth0.state, "UP");
        assert_eq!(eth0.mtu, 1400);
        assert_eq!(eth0.mac, "02:fc:00:00:00:01");
        assert!(eth0.addresses.contains(&"192.0.2.2/24".to_string()));
        assert_eq!(eth0.counters.as_ref().unwrap().rx_bytes, 158_703_178);
        let ifb0 = ifs.iter().find(|i| i.name == "ifb0").unwrap();
        assert_eq!(ifb0.state, "DOWN");
        assert!(ifb0.addresses.is_empty());
    }

    #[test]
    fn malformed_ip_output_is_an_error() {
        assert!(parse_interfaces("{\"not\":\"a list\"}", "").is_err());
    }
}
