//! `nodectl info` and `check` on the recorded facts of a plain node.

use crate::layered::groups;
use crate::{Report, Status, render};
use layers::status::{
    Facts, Mount, expected_volumes, info, is_plain_root, layer_from_cmdline, parse_findmnt,
    parse_grub_cfg, parse_swaps, store_inventory,
};
use layers::{Inventory, fstab};

fn check(f: &Facts) -> Report {
    Report::new(groups(f))
}

const LAYER: &str = "hvnode-1.0-0.20261125.0+1";

const CMDLINE: &str = "BOOT_IMAGE=/hvnode-1.0-0.20261125.0+1/vmlinuz \
    root=UUID=6c3e41f4-58a2-4c55-9d0c-1f0e3a9b7d21 rootfstype=xfs \
    hvnode.layer=hvnode-1.0-0.20261125.0+1 ro console=ttyS0";

/// `findmnt --json --list -o TARGET,SOURCE,FSTYPE,OPTIONS` on a plain node.
const FINDMNT: &str = include_str!("../../tests/fixtures/plain-node/findmnt.json");

/// The node's `/etc/fstab`, as hvnode-install writes it.
const FSTAB: &str = include_str!("../../tests/fixtures/plain-node/fstab");

/// `/proc/swaps`.
const SWAPS: &str = include_str!("../../tests/fixtures/plain-node/swaps");

const CFG: &str = include_str!("../../tests/fixtures/plain-node/grub.cfg");

/// A store as the node sees it at /sysroot.
fn store() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for dir in [
        "hvnode/bases/hvnode-1.0-0.20261125.0",
        "hvnode/layers/hvnode-1.0-0.20261125.0+1",
        // Half-copied, not listed.
        "hvnode/layers/.hvnode-1.0-0.20261125.0+2.partial",
    ] {
        std::fs::create_dir_all(d.path().join(dir)).unwrap();
    }
    d
}

/// What `gather` records on a healthy plain node.
fn plain_node() -> Facts {
    let mounts = parse_findmnt(FINDMNT).unwrap();
    assert!(is_plain_root(&mounts, CMDLINE));
    let boot_entries = parse_grub_cfg(CFG);
    let boot_files = boot_entries
        .iter()
        .flat_map(|e| [&e.kernel, &e.initrd])
        .map(|p| p.trim_start_matches('/').to_string())
        .collect();
    Facts {
        backend: Some(layers::status::Backend::Plain),
        fstab: fstab::parse(FSTAB),
        inventory: store_inventory(store().path()),
        current_layer: layer_from_cmdline(CMDLINE),
        mounts,
        boot_entries,
        grubenv: vec![("saved_entry".into(), LAYER.into())],
        boot_files,
        store_used_percent: Some(23.0),
        swaps: parse_swaps(SWAPS),
        ..Facts::default()
    }
}

fn failed(f: &Facts) -> Vec<(String, String)> {
    check(f)
        .groups
        .iter()
        .flat_map(|g| &g.checks)
        .filter(|c| c.status == Status::Failed)
        .map(|c| (c.name.clone(), c.detail.clone()))
        .collect()
}

#[test]
fn an_xfs_root_booted_from_a_layer_folder_is_plain() {
    let mounts = parse_findmnt(FINDMNT).unwrap();
    assert!(is_plain_root(&mounts, CMDLINE));
    // Either sign is enough: the command line or the bind mount's folder.
    assert!(is_plain_root(&mounts, "root=UUID=x ro"));
    let mut bare = mounts.clone();
    bare[0].source = "/dev/vda12".into();
    assert!(is_plain_root(&bare, CMDLINE));
    assert!(!is_plain_root(&bare, "root=UUID=x hvnode.layers=x ro"));
    // Not xfs: a btrfs layer or an LVM one (ext4) is not plain.
    let mut btrfs = mounts.clone();
    btrfs[0].fstype = "btrfs".into();
    assert!(!is_plain_root(&btrfs, CMDLINE));
    let lvm = vec![Mount {
        target: "/".into(),
        source: "/dev/mapper/hvnode-hvnode--1.0--1+1".into(),
        fstype: "ext4".into(),
        options: "rw,discard".into(),
    }];
    assert!(!is_plain_root(&lvm, "root=/dev/hvnode/hvnode-1.0-1+1 ro"));
    assert!(!is_plain_root(&[], CMDLINE));
    assert_eq!(
        layer_from_cmdline(CMDLINE).unwrap().to_string(),
        LAYER,
        "the running layer"
    );
}

#[test]
fn the_store_is_read_at_sysroot_or_missing() {
    let s = store();
    let inv = store_inventory(s.path()).unwrap();
    assert_eq!(inv.bases.len(), 1);
    assert_eq!(inv.layers.len(), 1, "the partial copy is not a layer");
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(store_inventory(empty.path()), None, "nothing mounted there");
}

#[test]
fn the_separate_volumes_are_the_partitions_fstab_mounts() {
    let f = plain_node();
    let got = expected_volumes(&f);
    assert!(got.iter().all(|(lv, _)| lv.is_none()), "{got:?}");
    let mps: Vec<&str> = got.iter().map(|(_, mp)| mp.as_str()).collect();
    assert_eq!(
        mps,
        [
            "/var",
            "/var/crash",
            "/var/log",
            "/var/log/audit",
            "/var/tmp",
            "/home",
            "/tmp",
            "swap"
        ]
    );
    // No fstab: autopart's set, still without volume names.
    let mut none = plain_node();
    none.fstab.clear();
    let got = expected_volumes(&none);
    assert_eq!(got.len(), mps.len());
    assert!(got.iter().all(|(lv, _)| lv.is_none()), "{got:?}");
}

#[test]
fn a_healthy_plain_node_checks_ok() {
    let f = plain_node();
    let r = check(&f);
    let text = render(&r);
    assert_eq!(r.status, Status::Ok, "{text}");
    for want in [
        "  Separate /var ... OK (/dev/vda4)\n",
        "  Discard is used ... OK (on / and every separate volume)\n",
        "Storage (plain) ... OK\n",
        "  Layers ... OK (1 bases, 1 layers)\n",
        "  Bases read-only ... OK (/dev/vda12 read-only at /sysroot)\n",
        "  Separate volumes ... OK (mounted: /var, /var/crash, /var/log, /var/log/audit, /var/tmp, /home, /tmp, swap)\n",
        "  Space ... OK (23% used (limit 80%))\n",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    for lvm_or_btrfs in ["Initialized VG", "Thin pool", "Storage (btrfs)"] {
        assert!(!text.contains(lvm_or_btrfs), "{text}");
    }
    let i = info(&f, Some("hvnode-1.0-0.20261125.0".into()));
    assert_eq!(i.backend, "plain");
    assert_eq!(i.layers["hvnode-1.0-0.20261125.0"], [LAYER]);
    assert_eq!(i.current_layer.as_deref(), Some(LAYER));
    assert_eq!(i.bootloader.default.as_deref(), Some(LAYER));
}

#[test]
fn each_plain_fault_fails_its_check() {
    type Breaker = fn(&mut Facts);
    let cases: [(&str, &str, Breaker); 9] = [
        ("Layers", "the store could not be read at /sysroot", |f| {
            f.inventory = None
        }),
        ("Layers", "0 bases, 0 layers", |f| {
            f.inventory = Some(Inventory {
                bases: vec![],
                layers: vec![],
            })
        }),
        (
            "Bases read-only",
            "the store is not mounted at /sysroot",
            |f| f.mounts.retain(|m| m.target != "/sysroot"),
        ),
        (
            "Bases read-only",
            "/dev/vda12 is mounted read-write at /sysroot",
            |f| f.mounts[1].options = "rw,relatime,seclabel,attr2,discard".into(),
        ),
        (
            "Bases read-only",
            "not the root's store on /dev/vda12",
            |f| f.mounts[1].source = "/dev/vdb1".into(),
        ),
        ("Separate volumes", "not mounted: /var/log", |f| {
            f.mounts.retain(|m| m.target != "/var/log")
        }),
        ("Separate volumes", "not mounted: swap", |f| f.swaps.clear()),
        ("Space", "91% used (limit 80%)", |f| {
            f.store_used_percent = Some(91.0)
        }),
        ("Discard is used", "mounted without discard: /", |f| {
            f.mounts[0].options = "rw,relatime,seclabel,attr2,nodiscard".into()
        }),
    ];
    for (name, detail, breaker) in cases {
        let mut f = plain_node();
        breaker(&mut f);
        let r = check(&f);
        assert_eq!(r.status, Status::Failed, "{name}");
        let failed = failed(&f);
        assert!(
            failed.iter().any(|(n, d)| n == name && d.contains(detail)),
            "{name}: {detail}: {failed:?}"
        );
    }
    let mut f = plain_node();
    f.store_used_percent = None;
    assert_eq!(
        failed(&f),
        [(
            "Space".to_string(),
            "the use of /sysroot could not be measured (df)".to_string()
        )]
    );
}
