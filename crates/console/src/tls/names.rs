//! What the self-signed certificate names: the node's host name, its fully qualified
//! name (from `/etc/hosts`) and its addresses.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the self-signed certificate names: the node's host name, its fully qualified
/// name and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNames {
    /// The host name; `localhost` on a system that has none.
    pub host: String,
    /// The host name's fully qualified form, when it differs from the host name.
    pub fqdn: Option<String>,
    /// The node's addresses (besides 127.0.0.1 and ::1, which every certificate names).
    pub addresses: Vec<IpAddr>,
}

impl NodeNames {
    /// `host` alone (`localhost` when empty), without a fully qualified name or
    /// addresses.
    pub fn new(host: &str) -> Self {
        let host = host.trim();
        Self {
            host: if host.is_empty() {
                "localhost".into()
            } else {
                host.into()
            },
            fqdn: None,
            addresses: Vec::new(),
        }
    }

    /// This node: its host name, the fully qualified name `/etc/hosts` gives it (as
    /// `hostname --fqdn` finds it without DNS) and the addresses of its interfaces
    /// (getifaddrs); what cannot be read is left out.
    pub fn of_this_host() -> Self {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut names = Self::new(&host);
        names.fqdn = fs::read_to_string("/etc/hosts")
            .ok()
            .and_then(|hosts| fqdn_from_hosts(&hosts, &names.host));
        // getifaddrs(3), not `ip addr`: the agent starts no program for this
        // (under NoNewPrivileges SELinux refuses it the move to ifconfig_t).
        match nix::ifaddrs::getifaddrs() {
            Ok(addrs) => {
                let mut found: Vec<IpAddr> = Vec::new();
                for ip in addrs.filter_map(|a| {
                    let sa = a.address?;
                    sa.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                }) {
                    if certifiable(ip) && !found.contains(&ip) {
                        found.push(ip);
                    }
                }
                names.addresses = found;
            }
            Err(e) => tracing::info!(
                "reading the node's addresses for its self-signed certificate: {e}; the \
                 certificate names the node's host name and loopback only"
            ),
        }
        names
    }

    /// The DNS names to certify: the host name, the fully qualified name, `localhost`.
    pub fn dns_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for name in [Some(&self.host), self.fqdn.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain(["localhost"])
        {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// The addresses to certify: loopback, then the node's, each once.
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        for ip in &self.addresses {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        ips
    }
}

/// Whether a certificate may usefully name `ip`: not unspecified, multicast or
/// link-local (which needs an interface to mean anything).
fn certifiable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_link_local()),
        IpAddr::V6(v6) => {
            !(v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The fully qualified name of `host` in the text of `/etc/hosts`: the first name of
/// the first line that has `host` among its names (the canonical name, which
/// `hostname --fqdn` prints), when it has a dot and differs from `host`.
pub fn fqdn_from_hosts(hosts: &str, host: &str) -> Option<String> {
    let canonical = hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let _address = fields.next()?;
        let names: Vec<&str> = fields.collect();
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(host))
            .then(|| names.first().map(|n| n.to_string()))
            .flatten()
    })?;
    (canonical.contains('.') && !canonical.eq_ignore_ascii_case(host)).then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fully_qualified_name_comes_from_etc_hosts_as_hostname_fqdn_finds_it() {
        let hosts = "127.0.0.1 localhost localhost.localdomain\n\
                     ::1 localhost ip6-localhost\n\
                     # 10.0.0.1 node1.wrong.example node1\n\
                     192.0.2.7\tnode1.example.org node1 # the node\n\
                     192.0.2.8 node2 node2.example.org\n";
        assert_eq!(
            fqdn_from_hosts(hosts, "node1").as_deref(),
            Some("node1.example.org")
        );
        assert_eq!(
            fqdn_from_hosts(hosts, "NODE1").as_deref(),
            Some("node1.example.org")
        );
        // Its canonical name is the short one, as `hostname --fqdn` would print.
        assert_eq!(fqdn_from_hosts(hosts, "node2"), None);
        assert_eq!(fqdn_from_hosts(hosts, "node1.example.org"), None);
        assert_eq!(fqdn_from_hosts(hosts, "node3"), None);
        assert_eq!(fqdn_from_hosts("127.0.0.1 localhost vm\n", "vm"), None);
    }

    #[test]
    fn only_useful_addresses_are_certified() {
        for (ip, useful) in [
            ("192.0.2.7", true),
            ("127.0.0.1", true),
            ("2001:db8::7", true),
            ("169.254.1.1", false),
            ("fe80::1", false),
            ("0.0.0.0", false),
            ("ff02::1", false),
        ] {
            assert_eq!(certifiable(ip.parse().unwrap()), useful, "{ip}");
        }
        let names = NodeNames {
            addresses: vec!["127.0.0.1".parse().unwrap(), "192.0.2.7".parse().unwrap()],
            ..NodeNames::new("localhost")
        };
        assert_eq!(names.dns_names(), ["localhost"]);
        let ips: Vec<String> = names
            .ip_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ips, ["127.0.0.1", "::1", "192.0.2.7"]);
    }

    #[test]
    fn this_host_has_a_name() {
        let names = NodeNames::of_this_host();
        assert!(!names.host.is_empty());
        assert!(names.dns_names().contains(&"localhost".to_string()));
    }
}
