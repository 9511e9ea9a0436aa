//! The networks oVirt Engine sets up on the node (`Host.setupNetworks`), as
//! vdsm keeps them: a network sits on a NIC or a bond of the host, tagged with a
//! VLAN or not, behind a Linux bridge named after it (a VM network, the
//! management network `ovirtmgmt`) or not, and carries an address or none.
//!
//! - [`Networks::with`] checks a change against what the host has and the
//!   networks already set ([`Invalid`] says which rule it breaks, in vdsm's
//!   terms);
//! - [`render`] turns the networks into systemd-networkd files, the node's only
//!   network configuration;
//! - [`store::Store`] keeps the running configuration and the safe one (what a
//!   boot comes up with), writes the files, and undoes a change the engine did not
//!   confirm.
//!
//! The wire form of the engine's request is the link's concern (`hvnode-vdsm`);
//! this crate knows only the networks.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

mod render;
pub mod store;

pub use render::{FILE_PREFIX, render};

/// A network the engine set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The NIC or bond it sits on (vdsm's `nic` or `bonding`).
    pub lower: String,
    /// Its VLAN tag; the VLAN device is `LOWER.TAG`, as vdsm names it.
    #[serde(default)]
    pub vlan: Option<u16>,
    /// Behind a bridge named after the network (a VM network, `ovirtmgmt`), or
    /// on the lower device itself.
    pub bridged: bool,
    #[serde(default)]
    pub ipv4: Ipv4,
    /// IPv6 addresses from router advertisements.
    #[serde(default)]
    pub ipv6_autoconf: bool,
    /// IPv6 addresses from DHCPv6.
    #[serde(default)]
    pub dhcpv6: bool,
    /// Whether the host's default route goes through it.
    #[serde(default)]
    pub default_route: bool,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The bridge's spanning tree.
    #[serde(default)]
    pub stp: bool,
    #[serde(default)]
    pub nameservers: Vec<IpAddr>,
}

/// A network's IPv4 address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Ipv4 {
    /// None (a VM network).
    #[default]
    None,
    Dhcp,
    Static {
        address: Ipv4Addr,
        prefix: u8,
        #[serde(default)]
        gateway: Option<Ipv4Addr>,
    },
}

impl Network {
    /// The device the network's traffic leaves on: the VLAN device, or the
    /// lower device.
    pub fn port(&self) -> String {
        match self.vlan {
            Some(tag) => format!("{}.{tag}", self.lower),
            None => self.lower.clone(),
        }
    }

    /// The device that carries the network's address: its bridge, or its port.
    pub fn iface(&self, name: &str) -> String {
        if self.bridged {
            name.to_string()
        } else {
            self.port()
        }
    }
}

/// One change the engine asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// The network `name` set up as `network` (added or replaced).
    Set { name: String, network: Network },
    /// The network `name` removed.
    Remove { name: String },
}

/// The engine's networks, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Networks(pub BTreeMap<String, Network>);

/// Which of vdsm's rules a change breaks (the link turns these into vdsm's
/// error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A parameter out of its range or form.
    BadParams,
    /// An address, prefix or gateway that is not valid.
    BadAddr,
    /// A lower device the host does not have.
    BadNic,
    /// A lower device (and tag) already carrying another network.
    UsedNic,
    /// A VLAN tag out of 1–4094.
    BadVlan,
    /// A network name that cannot be a bridge's, or one to remove that is not
    /// set up.
    BadBridge,
}

/// A change that cannot be made, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub rule: Rule,
    pub message: String,
}

fn invalid(rule: Rule, message: impl Into<String>) -> Invalid {
    Invalid {
        rule,
        message: message.into(),
    }
}

/// What the host has, as far as the checks need: which links exist, and their
/// MAC addresses (a bridge takes its port's, so that DHCP servers and switches
/// see the same host).
pub trait Links {
    fn exists(&self, name: &str) -> bool;
    fn mac(&self, name: &str) -> Option<String>;
}

/// The links under `ROOT/sys/class/net` (`/` on a node).
#[derive(Debug, Clone)]
pub struct SysLinks(pub std::path::PathBuf);

impl Links for SysLinks {
    fn exists(&self, name: &str) -> bool {
        valid_ifname(name) && self.0.join("sys/class/net").join(name).exists()
    }

    fn mac(&self, name: &str) -> Option<String> {
        if !valid_ifname(name) {
            return None;
        }
        let text = std::fs::read_to_string(self.0.join("sys/class/net").join(name).join("address"))
            .ok()?;
        let mac = text.trim();
        (mac.len() == 17 && mac != "00:00:00:00:00:00").then(|| mac.to_string())
    }
}

/// A Linux interface name: 1–15 characters, none of them `/`, blank or control,
/// not `.` or `..`.
pub fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
}

/// A network name that can be its bridge's name (vdsm's rule: an interface
/// name without a dot, so that it cannot be taken for a VLAN device).
fn valid_network_name(name: &str) -> bool {
    valid_ifname(name) && !name.contains('.') && !name.contains('@')
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "on {}", self.port())?;
        if self.bridged {
            f.write_str(", bridged")?;
        }
        match &self.ipv4 {
            Ipv4::None => {}
            Ipv4::Dhcp => f.write_str(", DHCP")?,
            Ipv4::Static {
                address, prefix, ..
            } => write!(f, ", {address}/{prefix}")?,
        }
        Ok(())
    }
}

impl Networks {
    /// These networks with `changes` made, each checked against the host's
    /// `links` and the networks it leaves.
    pub fn with(&self, changes: &[Change], links: &dyn Links) -> Result<Networks, Invalid> {
        let mut next = self.clone();
        for change in changes {
            match change {
                Change::Remove { name } => {
                    if next.0.remove(name).is_none() {
                        return Err(invalid(
                            Rule::BadBridge,
                            format!("cannot remove network {name}: it is not set up here"),
                        ));
                    }
                }
                Change::Set { name, network } => {
                    check(name, network, links)?;
                    next.0.insert(name.clone(), network.clone());
                }
            }
        }
        next.check_together()?;
        Ok(next)
    }

    /// The rules between networks: one network per lower device and tag, no
    /// network on another's bridge, at most one default route.
    fn check_together(&self) -> Result<(), Invalid> {
        let mut ports: BTreeMap<String, &str> = BTreeMap::new();
        for (name, n) in &self.0 {
            if let Some(other) = ports.insert(n.port(), name) {
                return Err(invalid(
                    Rule::UsedNic,
                    format!(
                        "networks {other} and {name} both sit on {}: a device carries one \
                         network, tag it with a VLAN to carry more",
                        n.port()
                    ),
                ));
            }
            if self.0.contains_key(&n.lower) {
                return Err(invalid(
                    Rule::BadNic,
                    format!(
                        "network {name} sits on {}, which is a network's bridge, not a NIC or bond",
                        n.lower
                    ),
                ));
            }
        }
        let defaults: Vec<&String> = self
            .0
            .iter()
            .filter(|(_, n)| n.default_route)
            .map(|(k, _)| k)
            .collect();
        if defaults.len() > 1 {
            return Err(invalid(
                Rule::BadParams,
                format!(
                    "networks {} all ask for the default route; one network may have it",
                    defaults
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// The devices these networks make (bridges, VLAN devices), which are gone
    /// when a network is removed.
    pub fn made_devices(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, n) in &self.0 {
            if n.vlan.is_some() {
                out.push(n.port());
            }
            if n.bridged {
                out.push(name.clone());
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The rules of one network on its own.
fn check(name: &str, n: &Network, links: &dyn Links) -> Result<(), Invalid> {
    if !valid_network_name(name) {
        return Err(invalid(
            Rule::BadBridge,
            format!(
                "{name:?} cannot name a network: at most 15 letters, digits, '-' or '_' \
                 (it names the network's bridge)"
            ),
        ));
    }
    if !links.exists(&n.lower) {
        return Err(invalid(
            Rule::BadNic,
            format!(
                "network {name}: this host has no NIC or bond {:?} (see `ip link`)",
                n.lower
            ),
        ));
    }
    if let Some(tag) = n.vlan
        && !(1..=4094).contains(&tag)
    {
        return Err(invalid(
            Rule::BadVlan,
            format!("network {name}: VLAN tag {tag} is not in 1–4094"),
        ));
    }
    if n.port().len() > 15 {
        return Err(invalid(
            Rule::BadVlan,
            format!(
                "network {name}: the VLAN device {} would pass Linux's 15 characters",
                n.port()
            ),
        ));
    }
    if let Some(mtu) = n.mtu
        && !(68..=65535).contains(&mtu)
    {
        return Err(invalid(
            Rule::BadParams,
            format!("network {name}: MTU {mtu} is not in 68–65535"),
        ));
    }
    if let Ipv4::Static {
        address,
        prefix,
        gateway,
    } = &n.ipv4
    {
        if *prefix == 0 || *prefix > 32 {
            return Err(invalid(
                Rule::BadAddr,
                format!("network {name}: prefix /{prefix} is not in 1–32"),
            ));
        }
        if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
            return Err(invalid(
                Rule::BadAddr,
                format!("network {name}: {address} cannot be a host's address"),
            ));
        }
        if let Some(gw) = gateway {
            let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
            if (u32::from(*gw) & mask) != (u32::from(*address) & mask) && *prefix < 32 {
                return Err(invalid(
                    Rule::BadAddr,
                    format!("network {name}: gateway {gw} is not in {address}/{prefix}'s subnet"),
                ));
            }
        }
    }
    if !n.bridged && n.stp {
        return Err(invalid(
            Rule::BadParams,
            format!("network {name}: STP needs a bridge (bridged)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
