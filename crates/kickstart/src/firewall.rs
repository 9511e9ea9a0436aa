//! The node's firewall from the kickstart's `firewall` command, in
//! Anaconda's terms (firewalld service names, `PORT:PROTO`), resolved to
//! the ports to open. The installer turns a [`Firewall`] into an nftables
//! ruleset; everything that can be wrong with the command is found here,
//! before anything is written.
//!
//! Without a `firewall` command, or with `firewall --enabled` alone, a node
//! gets [`NODE_DEFAULT`]: SSH, the console and what an oVirt engine needs
//! on a host (the services oVirt's host deploy opens in firewalld).

use std::fmt;

use serde::Serialize;

use crate::commands::Firewall as FirewallCommand;
use crate::diag::{Diagnostics, Loc, suggest};

/// A transport protocol a port can be opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    fn from_name(s: &str) -> Option<Proto> {
        match s {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
}

/// A port or a range of ports of one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Port {
    pub proto: Proto,
    pub first: u16,
    pub last: u16,
}

impl Port {
    const fn tcp(first: u16, last: u16) -> Port {
        Port {
            proto: Proto::Tcp,
            first,
            last,
        }
    }
    const fn udp(first: u16, last: u16) -> Port {
        Port {
            proto: Proto::Udp,
            first,
            last,
        }
    }

    /// `22` or `5900-6923`, as nftables writes it.
    pub fn range(&self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

impl fmt::Display for Port {
    /// `22/tcp`, `5900-6923/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.range(), self.proto.name())
    }
}

/// A named service: firewalld's name for it, its ports and what each is for.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    pub ports: &'static [(Port, &'static str)],
}

/// The services `firewall --service=` (and `--remove-service=`) know, by
/// firewalld's names. The first five are the node's default.
pub const SERVICES: &[Service] = &[
    Service {
        name: "ssh",
        ports: &[(
            Port::tcp(22, 22),
            "SSH: administrators, and the engine's host deploy",
        )],
    },
    Service {
        name: "cockpit",
        ports: &[(
            Port::tcp(9090, 9090),
            "the node console (hvnode-agent), on Cockpit's port",
        )],
    },
    Service {
        name: "vdsm",
        ports: &[
            (Port::tcp(54321, 54321), "VDSM: the engine manages the host"),
            (Port::tcp(5900, 6923), "VM consoles (VNC and SPICE)"),
            (Port::tcp(49152, 49216), "live migration of VMs (qemu)"),
        ],
    },
    Service {
        name: "libvirt-tls",
        ports: &[(
            Port::tcp(16514, 16514),
            "libvirt over TLS: migration between hosts, remote virsh",
        )],
    },
    Service {
        name: "ovirt-imageio",
        ports: &[(
            Port::tcp(54322, 54322),
            "ovirt-imageio: disk uploads and downloads",
        )],
    },
    Service {
        name: "ovirt-vmconsole",
        ports: &[(
            Port::tcp(2223, 2223),
            "serial consoles of VMs (ovirt-vmconsole)",
        )],
    },
    Service {
        name: "libvirt",
        ports: &[(Port::tcp(16509, 16509), "libvirt over TCP (SASL)")],
    },
    Service {
        name: "snmp",
        ports: &[(Port::udp(161, 161), "SNMP queries")],
    },
    Service {
        name: "http",
        ports: &[(Port::tcp(80, 80), "HTTP")],
    },
    Service {
        name: "https",
        ports: &[(Port::tcp(443, 443), "HTTPS")],
    },
    Service {
        name: "smtp",
        ports: &[(Port::tcp(25, 25), "mail (SMTP)")],
    },
    Service {
        name: "ftp",
        ports: &[(Port::tcp(21, 21), "FTP")],
    },
    Service {
        name: "dhcpv6-client",
        ports: &[(
            Port::udp(546, 546),
            "DHCPv6 client (replies are accepted anyway)",
        )],
    },
    Service {
        name: "dns",
        ports: &[
            (Port::tcp(53, 53), "DNS server"),
            (Port::udp(53, 53), "DNS server"),
        ],
    },
    Service {
        name: "ntp",
        ports: &[(Port::udp(123, 123), "NTP server")],
    },
    Service {
        name: "nfs",
        ports: &[(Port::tcp(2049, 2049), "NFS server (NFSv4)")],
    },
    Service {
        name: "rpc-bind",
        ports: &[
            (Port::tcp(111, 111), "rpcbind (NFSv3)"),
            (Port::udp(111, 111), "rpcbind (NFSv3)"),
        ],
    },
    Service {
        name: "iscsi-target",
        ports: &[(Port::tcp(3260, 3260), "iSCSI target")],
    },
    Service {
        name: "prometheus-node-exporter",
        ports: &[(Port::tcp(9100, 9100), "Prometheus node exporter")],
    },
];

/// The services open on a node unless the kickstart says otherwise.
pub const NODE_DEFAULT: &[&str] = &["ssh", "cockpit", "vdsm", "libvirt-tls", "ovirt-imageio"];

/// Port names `--port=NAME:PROTO` may use (Anaconda looks them up in
/// `/etc/services`; these are the ones a node may need).
const PORT_NAMES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("sunrpc", 111),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("nfs", 2049),
    ("iscsi-target", 3260),
];

pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// What the node's firewall does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `nftables.service` enabled with the node's ruleset.
    Enabled,
    /// `firewall --disabled`: the ruleset is written to
    /// `/etc/nftables.conf` but `nftables.service` is disabled.
    Disabled,
    /// `firewall --use-system-defaults`: the image's nftables files and
    /// service state are left as they are.
    SystemDefaults,
}

/// One open port and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Opening {
    /// The service (`ssh`, `vdsm`), or `port` for a `--port` entry.
    pub service: String,
    pub port: Port,
    /// What it is for (a comment in the ruleset).
    pub purpose: String,
}

/// The node's firewall, resolved from the kickstart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firewall {
    pub mode: Mode,
    /// Ports open on every interface, in the order of the ruleset.
    pub open: Vec<Opening>,
    /// `--trust`: interfaces whose traffic is all accepted.
    pub trusted: Vec<String>,
}

impl Default for Firewall {
    /// The node's default: enabled, [`NODE_DEFAULT`] open.
    fn default() -> Self {
        let mut f = Firewall {
            mode: Mode::Enabled,
            open: Vec::new(),
            trusted: Vec::new(),
        };
        for name in NODE_DEFAULT {
            if let Some(s) = service(name) {
                f.add_service(s);
            }
        }
        f
    }
}

impl Firewall {
    fn add_service(&mut self, s: &Service) {
        for (port, purpose) in s.ports {
            self.add(s.name, *port, purpose);
        }
    }

    fn add(&mut self, service: &str, port: Port, purpose: &str) {
        if !self.open.iter().any(|o| o.port == port) {
            self.open.push(Opening {
                service: service.into(),
                port,
                purpose: purpose.into(),
            });
        }
    }

    /// The open ports grouped by service, in order:
    /// `ssh 22/tcp, vdsm 54321/tcp 5900-6923/tcp`.
    pub fn open_summary(&self) -> String {
        let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
        for o in &self.open {
            match groups.last_mut() {
                Some((s, ports)) if *s == o.service => ports.push(o.port.to_string()),
                _ => groups.push((&o.service, vec![o.port.to_string()])),
            }
        }
        if groups.is_empty() {
            return "nothing".into();
        }
        groups
            .iter()
            .map(|(s, p)| format!("{s} {}", p.join(" ")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Firewall {
    /// One line for the printed plan.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trusted = if self.trusted.is_empty() {
            String::new()
        } else {
            format!("; trusted interfaces: {}", self.trusted.join(", "))
        };
        match self.mode {
            Mode::Enabled => write!(
                f,
                "nftables, input policy drop; open: {}{trusted}",
                self.open_summary()
            ),
            Mode::Disabled => write!(
                f,
                "disabled (nftables.service not enabled; /etc/nftables.conf holds the ruleset it would load, open: {}{trusted})",
                self.open_summary()
            ),
            Mode::SystemDefaults => write!(
                f,
                "the image's nftables defaults, untouched (firewall --use-system-defaults)"
            ),
        }
    }
}

/// `1234`, `1234:udp`, `5000-5010:udp`, `imap:tcp` → a port (no protocol
/// means tcp, as pykickstart reads it).
pub fn parse_port(text: &str) -> Result<Port, String> {
    let (ports, proto) = match text.rsplit_once(':') {
        Some((p, proto)) => (p, proto),
        None => (text, "tcp"),
    };
    let proto = Proto::from_name(&proto.to_ascii_lowercase())
        .ok_or_else(|| format!("unknown protocol {proto:?} (give tcp, udp or sctp)"))?;
    let number = |s: &str| -> Result<u16, String> {
        if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
            match s.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("port {s} is not between 1 and 65535")),
            }
        } else {
            PORT_NAMES
                .iter()
                .find(|(n, _)| *n == s)
                .map(|(_, p)| *p)
                .ok_or_else(|| {
                    format!(
                        "unknown port name {s:?}{} (give a number, or one of {})",
                        suggest(s, PORT_NAMES.iter().map(|(n, _)| *n)),
                        PORT_NAMES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        }
    };
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) if a.chars().all(|c| c.is_ascii_digit()) => (number(a)?, number(b)?),
        _ => {
            let n = number(ports)?;
            (n, n)
        }
    };
    if first > last {
        return Err(format!("the range {first}-{last} runs backwards"));
    }
    Ok(Port { proto, first, last })
}

/// An interface name nftables can match (`iifname`): up to 15 characters,
/// letters, digits and `-_.:@`, with an optional `*` at the end.
fn valid_interface(name: &str) -> bool {
    let base = name.strip_suffix('*').unwrap_or(name);
    !base.is_empty()
        && name.len() <= 15
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
}

fn known_services() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|s| s.name)
}

fn unknown_service(option: &str, name: &str) -> String {
    format!(
        "firewall {option}={name}: unknown service {name}{}; known services: {}",
        suggest(name, known_services()),
        known_services().collect::<Vec<_>>().join(", ")
    )
}

/// Resolves one `firewall` command; errors and warnings name its line.
pub fn resolve(c: &FirewallCommand, loc: &Loc, d: &mut Diagnostics) -> Firewall {
    if c.enabled && c.disabled {
        d.error(loc, "firewall: give --enabled or --disabled, not both");
    }
    if c.use_system_defaults {
        let others = c.enabled
            || c.disabled
            || !c.port.0.is_empty()
            || !c.trust.0.is_empty()
            || !c.service.0.is_empty()
            || !c.remove_service.0.is_empty()
            || c.ssh
            || c.http
            || c.smtp
            || c.ftp;
        if others {
            d.warning(
                loc,
                "firewall --use-system-defaults: the other options are ignored (the image's nftables defaults are kept)",
            );
        }
        return Firewall {
            mode: Mode::SystemDefaults,
            open: Vec::new(),
            trusted: Vec::new(),
        };
    }
    let mut removed: Vec<&str> = Vec::new();
    for name in &c.remove_service.0 {
        if service(name).is_none() {
            d.error(loc, unknown_service("--remove-service", name));
        } else if c.service.0.contains(name) {
            d.error(
                loc,
                format!("firewall: {name} is both in --service and in --remove-service"),
            );
        } else if !NODE_DEFAULT.contains(&name.as_str()) {
            d.warning(
                loc,
                format!(
                    "firewall --remove-service={name}: {name} is not open by default ({}); nothing to remove",
                    NODE_DEFAULT.join(", ")
                ),
            );
        } else {
            removed.push(name);
        }
    }
    let mut fw = Firewall {
        mode: if c.disabled {
            Mode::Disabled
        } else {
            Mode::Enabled
        },
        open: Vec::new(),
        trusted: Vec::new(),
    };
    let flags = [
        (c.ssh, "ssh"),
        (c.http, "http"),
        (c.smtp, "smtp"),
        (c.ftp, "ftp"),
    ];
    let wanted = NODE_DEFAULT
        .iter()
        .copied()
        .filter(|n| !removed.contains(n))
        .chain(c.service.0.iter().map(String::as_str))
        .chain(flags.iter().filter(|(on, _)| *on).map(|(_, n)| *n));
    for name in wanted {
        match service(name) {
            Some(s) => fw.add_service(s),
            None => d.error(loc, unknown_service("--service", name)),
        }
    }
    for p in &c.port.0 {
        match parse_port(p) {
            Ok(port) => fw.add("port", port, &format!("firewall --port={p}")),
            Err(e) => d.error(loc, format!("firewall --port={p}: {e}")),
        }
    }
    for t in &c.trust.0 {
        if valid_interface(t) {
            if !fw.trusted.contains(t) {
                fw.trusted.push(t.clone());
            }
        } else {
            d.error(
                loc,
                format!(
                    "firewall --trust={t}: not an interface name (up to 15 letters, digits or -_.:@, optionally ending in *)"
                ),
            );
        }
    }
    if removed.contains(&"ssh") && fw.trusted.is_empty() {
        let left = if fw.open.iter().any(|o| o.service == "cockpit") {
            "only the console (9090/tcp) is left to log in over the network"
        } else {
            "nothing is left to log in over the network"
        };
        d.warning(
            loc,
            format!(
                "firewall --remove-service=ssh: the engine deploys and manages hosts over SSH (22/tcp); {left}"
            ),
        );
    }
    fw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_read_as_anaconda_writes_them() {
        let p = |s: &str| parse_port(s).map(|p| p.to_string());
        assert_eq!(p("1234:udp").unwrap(), "1234/udp");
        assert_eq!(p("5000-5010:udp").unwrap(), "5000-5010/udp");
        assert_eq!(p("imap:tcp").unwrap(), "143/tcp");
        assert_eq!(p("22").unwrap(), "22/tcp");
        assert_eq!(p("3868:SCTP").unwrap(), "3868/sctp");
        assert!(p("1234:icmp").unwrap_err().contains("unknown protocol"));
        assert!(p("0:tcp").unwrap_err().contains("between 1 and 65535"));
        assert!(p("70000:tcp").unwrap_err().contains("between 1 and 65535"));
        assert!(p("6000-5000:tcp").unwrap_err().contains("backwards"));
        let e = p("imapp:tcp").unwrap_err();
        assert!(
            e.contains("unknown port name \"imapp\" (did you mean imap?)"),
            "{e}"
        );
    }

    #[test]
    fn the_default_opens_what_an_engine_needs() {
        let f = Firewall::default();
        assert_eq!(f.mode, Mode::Enabled);
        assert_eq!(
            f.open_summary(),
            "ssh 22/tcp, cockpit 9090/tcp, vdsm 54321/tcp 5900-6923/tcp 49152-49216/tcp, \
             libvirt-tls 16514/tcp, ovirt-imageio 54322/tcp"
        );
        for name in NODE_DEFAULT {
            assert!(service(name).is_some(), "{name}");
        }
    }

    #[test]
    fn interface_names() {
        for ok in ["eth0", "ens3", "bond0.20", "virbr*", "enp0s31f6"] {
            assert!(valid_interface(ok), "{ok}");
        }
        for bad in ["", "*", "eth 0", "a\"b", "averyveryverylongname", "et*h"] {
            assert!(!valid_interface(bad), "{bad}");
        }
    }
}
