//! The host's checks on recorded facts.

use super::*;
use crate::{Report, Status, render};

fn fs(target: &str, fstype: &str, used: u64, available: u64) -> hostinfo::Filesystem {
    hostinfo::Filesystem {
        source: "/dev/vda4".into(),
        target: target.into(),
        fstype: fstype.into(),
        size: used + available,
        used,
        available,
    }
}

fn pool(vg: &str, name: &str, data: f64, meta: f64) -> hostinfo::ThinPool {
    hostinfo::ThinPool {
        vg: vg.into(),
        name: name.into(),
        size: 1 << 30,
        data_percent: data,
        metadata_percent: meta,
    }
}

/// A healthy node on hardware: KVM, sVirt, services up.
pub(crate) fn healthy() -> HostFacts {
    HostFacts {
        selinux: hostinfo::Selinux {
            mode: "enforcing".into(),
            configured_mode: Some("enforcing".into()),
            policy: Some("default".into()),
        },
        memory: hostinfo::MemInfo {
            total: 8 << 30,
            available: 6 << 30,
            ..Default::default()
        },
        hardware_virtualisation: true,
        kvm: true,
        filesystems: Ok(vec![
            fs("/", "ext4", 30, 70),
            fs("/var", "ext4", 10, 90),
            // A boot medium is full by construction.
            fs("/run/initramfs/live", "iso9660", 100, 0),
        ]),
        thin_pools: Ok(vec![pool("hvnode", "pool00", 12.5, 8.0)]),
        libvirt_security: Ok(vec!["selinux".into(), "dac".into()]),
        units: SERVICES
            .iter()
            .map(|u| (u.to_string(), "active".to_string()))
            .collect(),
        failed_units: Ok(vec![]),
        firewall: FirewallFacts {
            unit_file_state: "enabled".into(),
            active_state: "active".into(),
            table_loaded: Some(true),
        },
        vdsm: engine_link::tests::enrolled(),
    }
}

fn report(h: &HostFacts) -> Report {
    Report::new(groups(h, None))
}

#[test]
fn a_healthy_host_checks_ok() {
    let r = report(&healthy());
    let text = render(&r);
    assert_eq!(r.status, Status::Ok, "{text}");
    for want in [
        "SELinux ... OK\n  Enforcing ... OK (enforcing)\n",
        "Firewall ... OK\n  nftables ... OK (nftables.service active, table inet hvnode loaded)\n",
        "  sVirt ... OK (libvirt confines guests with sVirt (selinux))\n",
        "  Memory ... OK (75% available of 8.0 GiB (warning below 10%))\n",
        "  File systems ... OK (3 mounted, each under 90% full)\n",
        "  Thin pool hvnode/pool00 ... OK (data 12.5%, metadata 8.0% (limit 80%))\n",
        "  Failed units ... OK (none)\n",
        "vdsm ... OK\n  hvnode-vdsm.service ... OK (active)\n",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
}

#[test]
fn the_store_pool_is_left_to_the_store_check() {
    let r = Report::new(groups(&healthy(), Some(("hvnode".into(), "pool00".into()))));
    assert!(r.find("Thin pool hvnode/pool00").is_none());
}

#[test]
fn each_host_fault_has_its_verdict() {
    type Breaker = fn(&mut HostFacts);
    let cases: [(&str, Status, &str, Breaker); 13] = [
        ("Enforcing", Status::Failed, "permissive", |h| {
            h.selinux.mode = "permissive".into()
        }),
        ("nftables", Status::Failed, "is not loaded", |h| {
            h.firewall.table_loaded = Some(false)
        }),
        ("KVM", Status::Warning, "TCG emulation", |h| h.kvm = false),
        ("Hardware virtualization", Status::Warning, "VT-x", |h| {
            h.hardware_virtualisation = false
        }),
        ("sVirt", Status::Failed, "security driver is dac", |h| {
            h.libvirt_security = Ok(vec!["dac".into()])
        }),
        (
            "sVirt",
            Status::Failed,
            "could not be asked: refused",
            |h| h.libvirt_security = Err("refused".into()),
        ),
        ("Memory", Status::Warning, "5% available", |h| {
            h.memory.available = h.memory.total / 20
        }),
        ("File systems", Status::Failed, "full: /var 95%", |h| {
            h.filesystems = Ok(vec![fs("/var", "ext4", 95, 5)])
        }),
        (
            "Thin pool hvnode/pool00",
            Status::Failed,
            "metadata 85.0%",
            |h| h.thin_pools = Ok(vec![pool("hvnode", "pool00", 1.0, 85.0)]),
        ),
        ("Thin pools", Status::Failed, "lvs could not tell", |h| {
            h.thin_pools = Err("no lvs".into())
        }),
        ("libvirtd.service", Status::Failed, "failed", |h| {
            h.units.insert("libvirtd.service".into(), "failed".into());
        }),
        (
            "Failed units",
            Status::Failed,
            "lvm2-monitor.service",
            |h| h.failed_units = Ok(vec!["lvm2-monitor.service".into()]),
        ),
        ("hvnode-vdsm.service", Status::Failed, "inactive", |h| {
            h.vdsm.active_state = "inactive".into()
        }),
    ];
    for (name, status, detail, breaker) in cases {
        let mut h = healthy();
        breaker(&mut h);
        let r = report(&h);
        let c = r
            .find(name)
            .unwrap_or_else(|| panic!("{name}: {}", render(&r)));
        assert_eq!(c.status, status, "{name}: {}", c.detail);
        assert!(c.detail.contains(detail), "{name}: {}", c.detail);
        assert_eq!(r.status, status, "{name}: the report's verdict");
    }
}
