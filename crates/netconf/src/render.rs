//! The engine's networks as systemd-networkd files.
//!
//! networkd gives a link the first `.network` file, in the order of their names,
//! whose `[Match]` fits it. The engine's files start with [`FILE_PREFIX`], which
//! sorts before the installer's (`10-hvnode-`, `20-hvnode-`, from the kickstart's
//! `network` lines) and the image's DHCP default (`80-hvnode-dhcp.network`): a
//! device the engine configures is configured by the engine alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::{Ipv4, Links, Network, Networks};

/// The start of every file this crate writes in `/etc/systemd/network`.
pub const FILE_PREFIX: &str = "05-hvnode-engine-";

const HEADER: &str = "# Set up by oVirt Engine through hvnode-vdsm (Host.setupNetworks); \
                      rewritten on its next change.\n";

/// The files for `networks`: (file name, contents), sorted by name. `links`
/// gives the MAC address a bridge takes from its port.
pub fn render(networks: &Networks, links: &dyn Links) -> Vec<(String, String)> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    // The lower devices: what sits on each (VLANs, a bridge, the address).
    let mut lowers: BTreeMap<&str, Vec<(&String, &Network)>> = BTreeMap::new();
    for (name, n) in &networks.0 {
        lowers.entry(&n.lower).or_default().push((name, n));
    }
    for (lower, on) in &lowers {
        let mut text = format!("{HEADER}[Match]\nName={lower}\n");
        let mtu = on.iter().filter_map(|(_, n)| n.mtu).max();
        if let Some(mtu) = mtu {
            let _ = write!(text, "\n[Link]\nMTUBytes={mtu}\n");
        }
        text.push_str("\n[Network]\n");
        for (_, n) in on.iter().filter(|(_, n)| n.vlan.is_some()) {
            let _ = writeln!(text, "VLAN={}", n.port());
        }
        match on.iter().find(|(_, n)| n.vlan.is_none()) {
            Some((name, n)) if n.bridged => {
                let _ = writeln!(text, "Bridge={name}");
            }
            Some((_, n)) => address(&mut text, n),
            None => no_address(&mut text),
        }
        files.insert(format!("{FILE_PREFIX}{lower}.network"), text);
    }
    for (name, n) in &networks.0 {
        if n.vlan.is_some() {
            let port = n.port();
            let mut netdev = format!("{HEADER}[NetDev]\nName={port}\nKind=vlan\n");
            if let Some(mtu) = n.mtu {
                let _ = writeln!(netdev, "MTUBytes={mtu}");
            }
            let _ = write!(netdev, "\n[VLAN]\nId={}\n", n.vlan.unwrap_or_default());
            files.insert(format!("{FILE_PREFIX}{port}.netdev"), netdev);
            let mut network = format!("{HEADER}[Match]\nName={port}\n\n[Network]\n");
            if n.bridged {
                let _ = writeln!(network, "Bridge={name}");
            } else {
                address(&mut network, n);
            }
            files.insert(format!("{FILE_PREFIX}{port}.network"), network);
        }
        if n.bridged {
            let mut netdev = format!("{HEADER}[NetDev]\nName={name}\nKind=bridge\n");
            if let Some(mac) = links.mac(&n.lower) {
                let _ = writeln!(netdev, "MACAddress={mac}");
            }
            if let Some(mtu) = n.mtu {
                let _ = writeln!(netdev, "MTUBytes={mtu}");
            }
            let _ = write!(
                netdev,
                "\n[Bridge]\nSTP={}\nForwardDelaySec=0\n",
                if n.stp { "yes" } else { "no" }
            );
            files.insert(format!("{FILE_PREFIX}{name}.netdev"), netdev);
            let mut network = format!("{HEADER}[Match]\nName={name}\n\n[Network]\n");
            // A bridge without ports up has no carrier; its address stays.
            network.push_str("ConfigureWithoutCarrier=yes\n");
            address(&mut network, n);
            files.insert(format!("{FILE_PREFIX}{name}.network"), network);
        }
    }
    files.into_iter().collect()
}

/// The `[Network]` lines (and sections after it) of a device carrying `n`'s
/// address.
fn address(text: &mut String, n: &Network) {
    let dhcp = match (&n.ipv4, n.dhcpv6) {
        (Ipv4::Dhcp, true) => Some("yes"),
        (Ipv4::Dhcp, false) => Some("ipv4"),
        (_, true) => Some("ipv6"),
        (_, false) => None,
    };
    if let Some(dhcp) = dhcp {
        let _ = writeln!(text, "DHCP={dhcp}");
    }
    if let Ipv4::Static {
        address,
        prefix,
        gateway,
    } = &n.ipv4
    {
        let _ = writeln!(text, "Address={address}/{prefix}");
        // A gateway makes a default route: only the default route's network's.
        if let Some(gw) = gateway.filter(|_| n.default_route) {
            let _ = writeln!(text, "Gateway={gw}");
        }
    }
    let _ = writeln!(
        text,
        "IPv6AcceptRA={}",
        if n.ipv6_autoconf { "yes" } else { "no" }
    );
    if !n.ipv6_autoconf && !n.dhcpv6 && n.ipv4 == Ipv4::None {
        text.push_str("LinkLocalAddressing=no\n");
    }
    for ns in &n.nameservers {
        let _ = writeln!(text, "DNS={ns}");
    }
    if n.ipv4 == Ipv4::Dhcp && !n.default_route {
        text.push_str("\n[DHCPv4]\nUseGateway=no\nUseRoutes=no\n");
    }
}

/// A device that only carries others (VLANs): no address of its own.
fn no_address(text: &mut String) {
    text.push_str("LinkLocalAddressing=no\nIPv6AcceptRA=no\n");
}
