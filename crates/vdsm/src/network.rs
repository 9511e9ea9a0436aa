//! `Host.setupNetworks` and `Host.setSafeNetworkConfig`: the engine's networks
//! (the management network `ovirtmgmt` when it deploys the host, VM networks
//! later), and how `Host.getCapabilities` reports them.
//!
//! The engine's request is read here into [`netconf::Change`]s and checked
//! against the host; the privileged helper checks again, writes the
//! systemd-networkd files and has networkd take them up. Then, as vdsm does, the
//! change must be confirmed: unless a call from the engine arrives within
//! `connectivityTimeout` seconds (the engine polls `Host.confirmConnectivity`),
//! the networks are rolled back and the verb fails with vdsm's code 10. A
//! confirmed change is kept across reboots when the engine asks
//! (`commitOnSuccess`, `Host.setSafeNetworkConfig`); a boot otherwise starts
//! from the last confirmed networks (`hvnode-network-restore.service`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netconf::{Change, Ipv4, Network, Rule};
use serde_json::{Map, Value, json};

use crate::jsonrpc::RpcError;

/// vdsm's network error codes (`lib/vdsm/network/errors.py`).
pub mod code {
    pub const LOST_CONNECTION: i64 = 10;
    pub const BAD_PARAMS: i64 = 21;
    pub const BAD_ADDR: i64 = 22;
    pub const BAD_NIC: i64 = 23;
    pub const USED_NIC: i64 = 24;
    pub const BAD_BONDING: i64 = 25;
    pub const BAD_VLAN: i64 = 26;
    pub const BAD_BRIDGE: i64 = 27;
}

/// How long the engine has to confirm a change when it does not say (vdsm's
/// `CONNECTIVITY_TIMEOUT_DEFAULT`).
pub const DEFAULT_CONNECTIVITY_TIMEOUT: Duration = Duration::from_secs(4);

/// The calls the service answered, counted: a call after a network change is
/// the engine's confirmation that it still reaches the host (vdsm looks at
/// when its client log was last written).
#[derive(Debug, Default)]
pub struct Calls(AtomicU64);

impl Calls {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    pub fn count(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn so_far(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Waits until a call after `mark` arrives; false when `timeout` passed
    /// first.
    pub fn wait_past(&self, mark: u64, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        loop {
            if self.so_far() > mark {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What `Host.setupNetworks`' `options` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Roll back unless the engine confirms within `timeout`.
    pub check: bool,
    pub timeout: Duration,
    /// Keep the change across reboots once confirmed.
    pub commit: bool,
}

fn rule_code(rule: Rule) -> i64 {
    match rule {
        Rule::BadParams => code::BAD_PARAMS,
        Rule::BadAddr => code::BAD_ADDR,
        Rule::BadNic => code::BAD_NIC,
        Rule::UsedNic => code::USED_NIC,
        Rule::BadVlan => code::BAD_VLAN,
        Rule::BadBridge => code::BAD_BRIDGE,
    }
}

fn bad(message: impl Into<String>) -> RpcError {
    RpcError::new(code::BAD_PARAMS, message)
}

/// A boolean as the engine sends it: `true`, `"true"`, `"yes"`, `1`…
fn flag(v: Option<&Value>, key: &str, default: bool) -> Result<bool, RpcError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_i64() != Some(0)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" | "" => Ok(false),
            _ => Err(bad(format!("{key} is {s:?}, not a boolean"))),
        },
        Some(other) => Err(bad(format!("{key} is {other}, not a boolean"))),
    }
}

/// A number as the engine sends it: `1500` or `"1500"`.
fn number(v: Option<&Value>, key: &str) -> Result<Option<u64>, RpcError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("{key} is {n}, not a whole number"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{key} is {s:?}, not a whole number"))),
        Some(other) => Err(bad(format!("{key} is {other}, not a number"))),
    }
}

fn text<'a>(attrs: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    attrs
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn addr(attrs: &Map<String, Value>, key: &str, net: &str) -> Result<Option<Ipv4Addr>, RpcError> {
    text(attrs, key)
        .map(|s| {
            s.parse().map_err(|_| {
                RpcError::new(
                    code::BAD_ADDR,
                    format!("network {net}: {key} {s:?} is not an IPv4 address"),
                )
            })
        })
        .transpose()
}

/// One network of the request's `networks`, as vdsm's `SetupNetworks`
/// attributes name it.
pub fn parse_network(name: &str, attrs: &Map<String, Value>) -> Result<Change, RpcError> {
    if flag(attrs.get("remove"), "remove", false)? {
        return Ok(Change::Remove { name: name.into() });
    }
    if let Some(switch) = text(attrs, "switch").filter(|s| *s != "legacy") {
        return Err(bad(format!(
            "network {name}: switch type {switch:?} is not served here; Linux bridges \
             (legacy) are"
        )));
    }
    let lower = match (text(attrs, "nic"), text(attrs, "bonding")) {
        (Some(nic), None) => nic,
        (None, Some(bond)) => bond,
        (Some(_), Some(_)) => {
            return Err(bad(format!(
                "network {name}: nic and bonding both given; a network sits on one"
            )));
        }
        (None, None) => {
            return Err(bad(format!(
                "network {name}: neither nic nor bonding given; a network without a device \
                 is not served here"
            )));
        }
    };
    let vlan = number(attrs.get("vlan"), "vlan")?
        .map(|v| {
            u16::try_from(v).map_err(|_| {
                RpcError::new(
                    code::BAD_VLAN,
                    format!("network {name}: VLAN tag {v} is not in 1–4094"),
                )
            })
        })
        .transpose()?;
    let ipv4 = match text(attrs, "bootproto").unwrap_or("none") {
        "dhcp" => Ipv4::Dhcp,
        "none" | "static" => match addr(attrs, "ipaddr", name)? {
            None => Ipv4::None,
            Some(address) => {
                let prefix = match (
                    number(attrs.get("prefix"), "prefix")?,
                    addr(attrs, "netmask", name)?,
                ) {
                    (Some(p), _) => u8::try_from(p).unwrap_or(u8::MAX),
                    (None, Some(mask)) => {
                        let bits = u32::from(mask);
                        if bits.leading_ones() + bits.trailing_zeros() != 32 {
                            return Err(RpcError::new(
                                code::BAD_ADDR,
                                format!("network {name}: netmask {mask} is not contiguous"),
                            ));
                        }
                        u8::try_from(bits.leading_ones()).unwrap_or(u8::MAX)
                    }
                    (None, None) => {
                        return Err(RpcError::new(
                            code::BAD_ADDR,
                            format!("network {name}: ipaddr {address} needs netmask or prefix"),
                        ));
                    }
                };
                Ipv4::Static {
                    address,
                    prefix,
                    gateway: addr(attrs, "gateway", name)?,
                }
            }
        },
        other => {
            return Err(bad(format!(
                "network {name}: bootproto {other:?} is neither dhcp nor none"
            )));
        }
    };
    if text(attrs, "ipv6addr").is_some() || text(attrs, "ipv6gateway").is_some_and(|g| g != "::") {
        return Err(RpcError::new(
            code::BAD_ADDR,
            format!(
                "network {name}: a static IPv6 address is not served here yet; use \
                 ipv6autoconf or dhcpv6"
            ),
        ));
    }
    let mtu = number(attrs.get("mtu"), "mtu")?
        .map(|m| u32::try_from(m).unwrap_or(u32::MAX))
        .filter(|m| *m != 0);
    let nameservers = match attrs.get("nameservers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .ok_or_else(|| {
                        RpcError::new(
                            code::BAD_ADDR,
                            format!("network {name}: nameserver {v} is not an address"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(bad(format!("nameservers is {other}, not a list"))),
    };
    Ok(Change::Set {
        name: name.into(),
        network: Network {
            lower: lower.into(),
            vlan,
            bridged: flag(attrs.get("bridged"), "bridged", true)?,
            ipv4,
            ipv6_autoconf: flag(attrs.get("ipv6autoconf"), "ipv6autoconf", false)?,
            dhcpv6: flag(attrs.get("dhcpv6"), "dhcpv6", false)?,
            default_route: flag(attrs.get("defaultRoute"), "defaultRoute", false)?,
            mtu,
            stp: flag(attrs.get("STP"), "STP", false)?,
            nameservers,
        },
    })
}

/// `Host.setupNetworks{networks, bondings, options}` read: the changes, and
/// what the options ask.
pub fn parse_setup(params: &Map<String, Value>) -> Result<(Vec<Change>, Options), RpcError> {
    let section = |key: &str| -> Result<Map<String, Value>, RpcError> {
        match params.get(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(bad(format!("{key} is {other}, not a map"))),
        }
    };
    let bondings = section("bondings")?;
    if let Some(bond) = bondings.keys().next() {
        return Err(RpcError::new(
            code::BAD_BONDING,
            format!(
                "bond {bond}: bonds are made when the node is installed (kickstart \
                 `network --bondslaves`); the engine's bond changes are not served here yet, \
                 its networks may sit on an existing bond"
            ),
        ));
    }
    let mut changes = Vec::new();
    for (name, attrs) in section("networks")? {
        let Value::Object(attrs) = attrs else {
            return Err(bad(format!("network {name}: its attributes are not a map")));
        };
        changes.push(parse_network(&name, &attrs)?);
    }
    // Removals first: a network may move to another device in one request.
    changes.sort_by_key(|c| !matches!(c, Change::Remove { .. }));
    let options = section("options")?;
    let timeout = number(options.get("connectivityTimeout"), "connectivityTimeout")?
        .map_or(DEFAULT_CONNECTIVITY_TIMEOUT, Duration::from_secs);
    Ok((
        changes,
        Options {
            check: flag(options.get("connectivityCheck"), "connectivityCheck", true)?,
            timeout,
            commit: flag(options.get("commitOnSuccess"), "commitOnSuccess", false)?,
        },
    ))
}

/// The changes checked against the host under `root` and its running networks,
/// before the helper is asked: vdsm's error code for the rule one breaks.
pub fn precheck(root: &Path, changes: &[Change]) -> Result<(), RpcError> {
    let store = netconf::store::Store::new(root);
    let running = store.running().map_err(|e| {
        RpcError::new(
            crate::jsonrpc::code::GENERAL_EXCEPTION,
            format!("reading the engine's networks: {e}"),
        )
    })?;
    running
        .with(changes, &store.links())
        .map(|_| ())
        .map_err(|e| RpcError::new(rule_code(e.rule), e.message))
}

/// The default gateway through `iface`, from the kernel's routing table
/// (`/proc/net/route`: hexadecimal, in the host's byte order).
pub fn default_gateway(route_table: &str, iface: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || f[0] != iface || f[1] != "00000000" {
            return None;
        }
        let raw = u32::from_str_radix(f[2], 16).ok()?;
        // The address's bytes, read by the kernel as a number of this host.
        Some(Ipv4Addr::from(raw.to_ne_bytes())).filter(|g| !g.is_unspecified())
    })
}

/// `networks` of `Host.getCapabilities`: each of the engine's running networks
/// from the facts of the device carrying it (`facts` by device name, as the
/// interfaces are reported), with what the engine compares to its own
/// definition.
pub fn report(
    running: &netconf::Networks,
    facts: &Map<String, Value>,
    route_table: &str,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, n) in &running.0 {
        let iface = n.iface(name);
        let mut net = facts
            .get(&iface)
            .cloned()
            .unwrap_or_else(|| json!({"mtu": n.mtu.unwrap_or(1500).to_string()}));
        let gateway = default_gateway(route_table, &iface);
        net["iface"] = json!(iface);
        net["bridged"] = json!(n.bridged);
        net["southbound"] = json!(n.port());
        net["switch"] = json!("legacy");
        net["dhcpv4"] = json!(n.ipv4 == Ipv4::Dhcp);
        net["dhcpv6"] = json!(n.dhcpv6);
        net["ipv6autoconf"] = json!(n.ipv6_autoconf);
        net["ipv4defaultroute"] = json!(gateway.is_some());
        net["gateway"] = json!(gateway.map(|g| g.to_string()).unwrap_or_default());
        if let Some(tag) = n.vlan {
            net["vlanid"] = json!(tag);
        }
        if n.bridged {
            net["stp"] = json!(n.stp);
        } else {
            net["interface"] = json!(iface);
        }
        out.insert(name.clone(), net);
    }
    out
}

#[cfg(test)]
mod tests;
