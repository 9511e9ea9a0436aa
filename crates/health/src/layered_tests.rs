//! The layered root's checks on the recorded facts of LVM and btrfs nodes.

use super::*;
use crate::{Report, Status, render};
use hostinfo::Lv;
use layers::fstab::Entry;
use layers::lvm::{TAG_BASE, TAG_LAYER, inventory_of};
use layers::status::{Mount, info, parse_grub_cfg};
use layers::volumes::VOLUMES;

fn check(f: &Facts) -> Report {
    Report::new(groups(f))
}

const CFG: &str = "set timeout=5\nmenuentry \"hvnode 1.0 (1+1)\" --id hvnode-1.0-1+1 {\n    linux /hvnode-1.0-1+1/vmlinuz root=/dev/hvnode/hvnode-1.0-1+1 ro\n    initrd /hvnode-1.0-1+1/initrd.img\n}\n";

fn lv(name: &str, tag: &str, data: &str, meta: &str) -> Lv {
    Lv {
        vg_name: "hvnode".into(),
        lv_name: name.into(),
        lv_tags: tag.into(),
        origin: String::new(),
        lv_attr: String::new(),
        lv_size: String::new(),
        data_percent: data.into(),
        metadata_percent: meta.into(),
    }
}

fn mount(t: &str, src: &str, opts: &str) -> Mount {
    Mount {
        target: t.into(),
        source: src.into(),
        fstype: "ext4".into(),
        options: opts.into(),
    }
}

fn healthy() -> Facts {
    let mut lvs = vec![
        lv("pool00", TAG_POOL, "12.5", "8.0"),
        lv("hvnode-1.0-1", TAG_BASE, "", ""),
        lv("hvnode-1.0-1+1", TAG_LAYER, "", ""),
    ];
    lvs.extend(VOLUMES.iter().map(|v| lv(v.name, TAG_VOLUME, "", "")));
    let mut mounts = vec![mount(
        "/",
        "/dev/mapper/hvnode-hvnode--1.0--1+1",
        "rw,discard",
    )];
    mounts.extend(VOLUMES.iter().filter(|v| !v.is_swap()).map(|v| {
        mount(
            v.mountpoint,
            &format!("/dev/mapper/hvnode-{}", v.name),
            "rw,discard",
        )
    }));
    Facts {
        backend: Some(Backend::Lvm),
        vg: "hvnode".into(),
        fstab: Vec::new(),
        inventory: Some(inventory_of(&lvs)),
        lvs,
        current_layer: Some("hvnode-1.0-1+1".parse().unwrap()),
        mounts,
        boot_entries: parse_grub_cfg(CFG),
        grubenv: vec![("saved_entry".into(), "hvnode-1.0-1+1".into())],
        boot_files: vec![
            "hvnode-1.0-1+1/vmlinuz".into(),
            "hvnode-1.0-1+1/initrd.img".into(),
        ],
        store_used_percent: None,
        swaps: vec!["/dev/dm-7".into()],
        trials: Vec::new(),
        etc_conflicts: Vec::new(),
    }
}

#[test]
fn a_healthy_node_checks_ok() {
    let r = check(&healthy());
    assert_eq!(r.status, Status::Ok, "{}", render(&r));
    let text = render(&r);
    assert!(text.starts_with("Status: OK\n"));
    assert!(text.contains("  Separate /var ... OK"));
    let i = info(&healthy(), Some("hvnode-1.0-1".into()));
    assert_eq!(i.layers["hvnode-1.0-1"], ["hvnode-1.0-1+1"]);
    assert_eq!(i.bootloader.default.as_deref(), Some("hvnode-1.0-1+1"));
}

#[test]
fn a_manual_layout_is_checked_against_its_fstab() {
    let mut f = healthy();
    f.vg = "vg0".into();
    let entry = |src: &str, t: &str, ty: &str| Entry {
        source: src.into(),
        target: t.into(),
        fstype: ty.into(),
        options: "defaults,discard".into(),
        pass: 2,
    };
    f.fstab = vec![
        entry("/dev/vg0/hvnode-1.0-1+1", "/", "ext4"),
        entry("/dev/vg0/var", "/var", "ext4"),
        entry("/dev/vg0/images", "/var/lib/libvirt/images", "xfs"),
        entry("/dev/vg0/swap", "none", "swap"),
        entry("UUID=x", "/boot", "ext4"),
    ];
    // Only what the fstab names is expected: no /home, /tmp, ….
    f.lvs
        .retain(|l| !l.has_tag(TAG_VOLUME) || l.lv_name == "var" || l.lv_name == "swap");
    f.lvs.push(lv("images", TAG_VOLUME, "", ""));
    f.mounts.push(mount(
        "/var/lib/libvirt/images",
        "/dev/mapper/vg0-images",
        "rw",
    ));
    let r = check(&f);
    let text = render(&r);
    assert!(text.contains("Initialized VG ... OK (vg0)"), "{text}");
    assert!(text.contains("Initialized LVs ... OK"), "{text}");
    assert!(
        text.contains("mounted without discard: /var/lib/libvirt/images"),
        "{text}"
    );
    f.lvs.retain(|l| l.lv_name != "images");
    let text = render(&check(&f));
    assert!(text.contains("missing: images"), "{text}");
}

#[test]
fn a_btrfs_node_expects_discard_on_its_subvolumes_but_not_on_swap() {
    let mut f = healthy();
    f.backend = Some(Backend::Btrfs);
    f.lvs.clear();
    let entry = |t: &str, o: &str| Entry {
        source: "UUID=x".into(),
        target: t.into(),
        fstype: "btrfs".into(),
        options: o.into(),
        pass: 0,
    };
    f.fstab = vec![
        entry("/", "subvol=hvnode/layers/hvnode-1.0-1+1"),
        entry("/var", "subvol=hvnode/volumes/var,discard=async"),
        entry("/swap", "subvol=hvnode/volumes/swap"),
    ];
    f.mounts = vec![
        mount(
            "/",
            "/dev/vda4[/hvnode/layers/hvnode-1.0-1+1]",
            "rw,discard=async",
        ),
        mount("/var", "/dev/vda4[/hvnode/volumes/var]", "rw,discard=async"),
        mount("/swap", "/dev/vda4[/hvnode/volumes/swap]", "rw"),
    ];
    let text = render(&check(&f));
    assert!(text.contains("Discard is used ... OK"), "{text}");
    f.mounts[1].options = "rw".into();
    let text = render(&check(&f));
    assert!(text.contains("mounted without discard: /var"), "{text}");
}

#[test]
fn each_fault_fails_its_check() {
    type Breaker = fn(&mut Facts);
    let cases: [(&str, Breaker); 8] = [
        ("Layer boot entries", |f| f.boot_entries.clear()),
        ("Valid boot entries", |f| {
            f.boot_files.pop().map(|_| ()).unwrap_or(())
        }),
        ("Separate /var", |f| f.mounts.retain(|m| m.target != "/var")),
        ("Discard is used", |f| f.mounts[2].options = "rw".into()),
        ("Thin pool data", |f| f.lvs[0].data_percent = "91.0".into()),
        // An unreadable or missing usage is a failure, never "0 % used".
        ("Thin pool data", |f| f.lvs[0].data_percent = "n/a".into()),
        ("Thin pool metadata", |f| {
            f.lvs[0].metadata_percent = String::new()
        }),
        ("Initialized LVs", |f| {
            f.lvs.retain(|l| l.lv_name != "var_log")
        }),
    ];
    for (name, breaker) in cases {
        let mut f = healthy();
        breaker(&mut f);
        let r = check(&f);
        assert_eq!(r.status, Status::Failed, "{name}");
        let failed: Vec<&str> = r
            .groups
            .iter()
            .flat_map(|g| &g.checks)
            .filter(|c| c.status == Status::Failed)
            .map(|c| c.name.as_str())
            .collect();
        assert!(failed.contains(&name), "{name}: {failed:?}");
    }
}
