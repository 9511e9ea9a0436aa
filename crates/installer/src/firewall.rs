//! The node's firewall on the installed system: `/etc/nftables.conf` from
//! the kickstart's [`Firewall`], and `nftables.service` enabled (or
//! disabled for `firewall --disabled`).
//!
//! The ruleset replaces only its own table, `inet hvnode`: libvirt 9 (Debian
//! 12) puts the rules of its NAT networks in tables of its own through
//! iptables-nft (`ip filter`, `ip nat`, `ip mangle`, `ip6 …`), and the
//! `flush ruleset` Debian's example starts with would delete them whenever
//! nftables.service (re)starts. The image's drop-in
//! `nftables.service.d/hvnode.conf` likewise stops the service by deleting
//! only this table, not with Debian's `nft flush ruleset`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use kickstart::firewall::{Firewall, Mode, Proto};

use crate::Log;

/// The nftables table the node's rules live in (`nft list table inet hvnode`).
pub const TABLE: &str = "inet hvnode";
/// Where nftables.service reads its ruleset.
pub const CONF: &str = "/etc/nftables.conf";
pub const UNIT: &str = "nftables.service";

/// The text of `/etc/nftables.conf` for `fw` (for [`Mode::SystemDefaults`]
/// the installer writes nothing; this still gives the node's ruleset).
pub fn ruleset(fw: &Firewall) -> String {
    let mut s = String::from(
        "#!/usr/sbin/nft -f\n\
         # The firewall of this hvnode node, written by hvnode-install from the\n\
         # kickstart's firewall command. nftables.service loads it at boot.\n",
    );
    if fw.mode == Mode::Disabled {
        s.push_str(
            "# nftables.service is disabled (firewall --disabled):\n\
             # `systemctl enable --now nftables` turns this firewall on.\n",
        );
    }
    s.push_str(
        "#\n\
         # Only the table inet hvnode is replaced (the two lines before it make\n\
         # sure it exists, then delete it, in one transaction): no `flush ruleset`,\n\
         # which would also delete libvirt's tables (its NAT networks' rules).\n\
         \n\
         table inet hvnode\n\
         delete table inet hvnode\n\
         \n\
         table inet hvnode {\n\
         \tchain input {\n\
         \t\ttype filter hook input priority filter; policy drop;\n\
         \n\
         \t\tct state established,related accept\n\
         \t\tiifname \"lo\" accept\n\
         \t\t# IPv4 ping and errors (path MTU discovery needs them)\n\
         \t\tmeta l4proto icmp accept\n\
         \t\t# IPv6 neighbour discovery, router advertisements, errors, ping\n\
         \t\tmeta l4proto ipv6-icmp accept\n\
         \t\tct state invalid drop\n\
         \t\t# DHCP client: replies from DHCPv4 and DHCPv6 servers\n\
         \t\tmeta nfproto ipv4 udp sport 67 udp dport 68 accept\n\
         \t\tip6 daddr fe80::/64 udp sport 547 udp dport 546 accept\n\
         \t\t# libvirt's NAT networks (virbr*): guests ask the host for DHCP and DNS.\n\
         \t\t# libvirt accepts these in its own tables, but a packet must pass\n\
         \t\t# every input chain, this one too.\n\
         \t\tiifname \"virbr*\" udp dport { 53, 67, 547 } accept\n\
         \t\tiifname \"virbr*\" tcp dport 53 accept\n",
    );
    if !fw.trusted.is_empty() {
        s.push_str("\t\t# Trusted interfaces (firewall --trust): everything is accepted\n");
        for t in &fw.trusted {
            let _ = writeln!(s, "\t\tiifname \"{t}\" accept");
        }
    }
    for o in &fw.open {
        let proto = match o.port.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        };
        let _ = writeln!(
            s,
            "\t\t# {}: {}\n\t\t{proto} dport {} accept comment \"{}\"",
            o.service,
            o.purpose.replace('\n', " "),
            o.port.range(),
            o.service
        );
    }
    s.push_str(
        "\t}\n\
         \t# No forward chain: forwarding (VM networks, libvirt's NAT) is left to\n\
         \t# libvirt's tables and the bridges.\n\
         }\n",
    );
    s
}

/// Writes the ruleset and enables (or disables) nftables.service in the
/// target at `root`; `--use-system-defaults` leaves both as the image has
/// them.
pub fn apply(root: &Path, fw: &Firewall, log: &Log) -> Result<()> {
    if fw.mode == Mode::SystemDefaults {
        log.line("firewall: the image's nftables defaults are kept (--use-system-defaults)");
        return Ok(());
    }
    crate::target::write(root, CONF, &ruleset(fw), 0o644)
        .with_context(|| format!("writing the firewall ruleset {CONF}"))?;
    let verb = if fw.mode == Mode::Enabled {
        "enable"
    } else {
        "disable"
    };
    Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .arg(verb)
        .arg(UNIT)
        .run()
        .with_context(|| format!("firewall: systemctl {verb} {UNIT}"))?;
    log.line(&format!("firewall: {fw}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kickstart::source::FsLoader;

    /// The firewall (and node diagnostics) of a one-line kickstart.
    fn plan(line: &str) -> (Firewall, Vec<String>) {
        let p = kickstart::parse_str("ks.cfg", &format!("{line}\n"), &FsLoader);
        assert!(p.is_valid(), "{line}: {:?}", p.diagnostics);
        let (plan, d) = kickstart::node::plan(&p.kickstart);
        let msgs = d
            .iter()
            .filter(|d| d.message.contains("firewall"))
            .map(|d| d.to_string())
            .collect();
        (plan.firewall, msgs)
    }

    const HEAD: &str = "#!/usr/sbin/nft -f
# The firewall of this hvnode node, written by hvnode-install from the
# kickstart's firewall command. nftables.service loads it at boot.
#
# Only the table inet hvnode is replaced (the two lines before it make
# sure it exists, then delete it, in one transaction): no `flush ruleset`,
# which would also delete libvirt's tables (its NAT networks' rules).

table inet hvnode
delete table inet hvnode

table inet hvnode {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;

\t\tct state established,related accept
\t\tiifname \"lo\" accept
\t\t# IPv4 ping and errors (path MTU discovery needs them)
\t\tmeta l4proto icmp accept
\t\t# IPv6 neighbour discovery, router advertisements, errors, ping
\t\tmeta l4proto ipv6-icmp accept
\t\tct state invalid drop
\t\t# DHCP client: replies from DHCPv4 and DHCPv6 servers
\t\tmeta nfproto ipv4 udp sport 67 udp dport 68 accept
\t\tip6 daddr fe80::/64 udp sport 547 udp dport 546 accept
\t\t# libvirt's NAT networks (virbr*): guests ask the host for DHCP and DNS.
\t\t# libvirt accepts these in its own tables, but a packet must pass
\t\t# every input chain, this one too.
\t\tiifname \"virbr*\" udp dport { 53, 67, 547 } accept
\t\tiifname \"virbr*\" tcp dport 53 accept
";

    const TAIL: &str = "\t}
\t# No forward chain: forwarding (VM networks, libvirt's NAT) is left to
\t# libvirt's tables and the bridges.
}
";

    #[test]
    fn the_default_ruleset_is_exactly_this() {
        let want = format!(
            "{HEAD}\
\t\t# ssh: SSH: administrators, and the engine's host deploy
\t\ttcp dport 22 accept comment \"ssh\"
\t\t# cockpit: the node console (hvnode-agent), on Cockpit's port
\t\ttcp dport 9090 accept comment \"cockpit\"
\t\t# vdsm: VDSM: the engine manages the host
\t\ttcp dport 54321 accept comment \"vdsm\"
\t\t# vdsm: VM consoles (VNC and SPICE)
\t\ttcp dport 5900-6923 accept comment \"vdsm\"
\t\t# vdsm: live migration of VMs (qemu)
\t\ttcp dport 49152-49216 accept comment \"vdsm\"
\t\t# libvirt-tls: libvirt over TLS: migration between hosts, remote virsh
\t\ttcp dport 16514 accept comment \"libvirt-tls\"
\t\t# ovirt-imageio: ovirt-imageio: disk uploads and downloads
\t\ttcp dport 54322 accept comment \"ovirt-imageio\"
{TAIL}"
        );
        assert_eq!(ruleset(&Firewall::default()), want);
        // No firewall command and `firewall --enabled` alone: the same.
        assert_eq!(plan("lang en_US.UTF-8").0, Firewall::default());
        assert_eq!(plan("firewall --enabled").0, Firewall::default());
    }

    #[test]
    fn options_add_and_remove_what_is_open() {
        let (fw, msgs) = plan(
            "firewall --enabled --remove-service=vdsm,ovirt-imageio,libvirt-tls --service=snmp \
             --smtp --port=1234:udp,5000-5010:sctp,imap:tcp --trust=ens4 --trust=bond0.20",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let want = format!(
            "{HEAD}\
\t\t# Trusted interfaces (firewall --trust): everything is accepted
\t\tiifname \"ens4\" accept
\t\tiifname \"bond0.20\" accept
\t\t# ssh: SSH: administrators, and the engine's host deploy
\t\ttcp dport 22 accept comment \"ssh\"
\t\t# cockpit: the node console (hvnode-agent), on Cockpit's port
\t\ttcp dport 9090 accept comment \"cockpit\"
\t\t# snmp: SNMP queries
\t\tudp dport 161 accept comment \"snmp\"
\t\t# smtp: mail (SMTP)
\t\ttcp dport 25 accept comment \"smtp\"
\t\t# port: firewall --port=1234:udp
\t\tudp dport 1234 accept comment \"port\"
\t\t# port: firewall --port=5000-5010:sctp
\t\tsctp dport 5000-5010 accept comment \"port\"
\t\t# port: firewall --port=imap:tcp
\t\ttcp dport 143 accept comment \"port\"
{TAIL}"
        );
        assert_eq!(ruleset(&fw), want);
        assert_eq!(
            fw.to_string(),
            "nftables, input policy drop; open: ssh 22/tcp, cockpit 9090/tcp, snmp 161/udp, \
             smtp 25/tcp, port 1234/udp 5000-5010/sctp 143/tcp; trusted interfaces: ens4, bond0.20"
        );
    }

    #[test]
    fn ssh_http_and_ftp_flags_are_services_and_duplicates_open_once() {
        let (fw, _) = plan("firewall --ssh --http --ftp --service=https,ssh --port=22:tcp");
        assert_eq!(
            fw.open_summary(),
            "ssh 22/tcp, cockpit 9090/tcp, vdsm 54321/tcp 5900-6923/tcp 49152-49216/tcp, \
             libvirt-tls 16514/tcp, ovirt-imageio 54322/tcp, https 443/tcp, http 80/tcp, ftp 21/tcp"
        );
    }

    #[test]
    fn disabled_writes_the_ruleset_but_says_the_service_is_off() {
        let (fw, msgs) = plan("firewall --disabled --port=8443");
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(fw.mode, Mode::Disabled);
        let text = ruleset(&fw);
        assert!(text.contains(
            "# nftables.service is disabled (firewall --disabled):\n\
             # `systemctl enable --now nftables` turns this firewall on.\n"
        ));
        assert!(text.contains("\t\ttcp dport 8443 accept comment \"port\"\n"));
        assert!(
            fw.to_string()
                .starts_with("disabled (nftables.service not enabled")
        );
    }

    #[test]
    fn system_defaults_leave_the_image_alone() {
        let (fw, msgs) = plan("firewall --use-system-defaults");
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(fw.mode, Mode::SystemDefaults);
        assert!(fw.to_string().contains("untouched"));
        let (_, msgs) = plan("firewall --use-system-defaults --service=http");
        assert_eq!(
            msgs,
            [
                "ks.cfg:1: warning: firewall --use-system-defaults: the other options are ignored (the image's nftables defaults are kept)"
            ]
        );
    }

    #[test]
    fn each_mistake_is_an_error_naming_the_line() {
        let cases = [
            (
                "firewall --service=vdsmd",
                "ks.cfg:1: error: firewall --service=vdsmd: unknown service vdsmd (did you mean vdsm?); known services: ssh, cockpit,",
            ),
            (
                "firewall --remove-service=sshh",
                "ks.cfg:1: error: firewall --remove-service=sshh: unknown service sshh (did you mean ssh?)",
            ),
            (
                "firewall --port=1234:icmp",
                "ks.cfg:1: error: firewall --port=1234:icmp: unknown protocol \"icmp\" (give tcp, udp or sctp)",
            ),
            (
                "firewall --port=imapz:tcp",
                "ks.cfg:1: error: firewall --port=imapz:tcp: unknown port name \"imapz\" (did you mean imap?)",
            ),
            (
                "firewall --port=99999:udp",
                "ks.cfg:1: error: firewall --port=99999:udp: port 99999 is not between 1 and 65535",
            ),
            (
                "firewall --port=6000-5000:tcp",
                "ks.cfg:1: error: firewall --port=6000-5000:tcp: the range 6000-5000 runs backwards",
            ),
            (
                "firewall --trust=eth\\\"0",
                "ks.cfg:1: error: firewall --trust=eth\"0: not an interface name",
            ),
            (
                "firewall --enabled --disabled",
                "ks.cfg:1: error: firewall: give --enabled or --disabled, not both",
            ),
            (
                "firewall --service=http --remove-service=http",
                "ks.cfg:1: error: firewall: http is both in --service and in --remove-service",
            ),
        ];
        for (line, want) in cases {
            let (_, msgs) = plan(line);
            assert!(msgs.iter().any(|m| m.starts_with(want)), "{line}: {msgs:?}");
        }
    }

    #[test]
    fn removing_ssh_or_a_closed_service_warns() {
        let (fw, msgs) = plan("firewall --remove-service=ssh");
        assert!(!fw.open.iter().any(|o| o.service == "ssh"));
        assert_eq!(
            msgs,
            [
                "ks.cfg:1: warning: firewall --remove-service=ssh: the engine deploys and manages hosts over SSH (22/tcp); only the console (9090/tcp) is left to log in over the network"
            ]
        );
        let (_, msgs) = plan("firewall --remove-service=ssh,cockpit");
        assert!(
            msgs[0].ends_with("nothing is left to log in over the network"),
            "{msgs:?}"
        );
        let (_, msgs) = plan("firewall --remove-service=ssh --trust=ens3");
        assert!(msgs.is_empty(), "{msgs:?}");
        let (_, msgs) = plan("firewall --remove-service=http");
        assert!(msgs[0].contains("http is not open by default"), "{msgs:?}");
    }

    /// `nft -c` checks a ruleset against the kernel without applying it
    /// (root only).
    #[test]
    fn nft_accepts_the_generated_rulesets() {
        // Root first: nft lives in sbin, which a user's PATH may lack.
        if !(hvnode_testutil::require_root() && hvnode_testutil::require_tool("nft")) {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        for line in [
            "lang en_US.UTF-8",
            "firewall --disabled --remove-service=vdsm --port=1234:udp,5000-5010:sctp,imap:tcp --trust=ens4 --trust=virbr* --service=dns,snmp",
        ] {
            let (fw, _) = plan(line);
            let f = d.path().join("nftables.conf");
            std::fs::write(&f, ruleset(&fw)).unwrap();
            let out = Command::new("nft")
                .arg("-c")
                .arg("-f")
                .arg(&f)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && err.contains("Operation not permitted") {
                // Root without CAP_NET_ADMIN: a container.
                hvnode_testutil::skip(format!("nft -c is not permitted here: {err}"));
                return;
            }
            assert!(out.status.success(), "{line}: nft -c -f: {err}");
        }
    }
}
