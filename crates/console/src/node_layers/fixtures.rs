//! Recorded facts of an installed node, as `layers::status::gather` records them.

#![allow(clippy::unwrap_used)]

use layers::boot::{BootEntry, grub_cfg};
use layers::lvm::{Lv, TAG_BASE, TAG_LAYER, TAG_POOL, TAG_VOLUME, inventory_of};
use layers::status::{Backend, Facts, Mount, parse_grub_cfg};
use layers::volumes::VOLUMES;

use super::Snapshot;

pub const OLD: &str = "hvnode-1.0-0.20261125.0";
pub const NEW: &str = "hvnode-1.1-0.20261201.0";

/// The boot menu hvnode writes for `layers`.
fn cfg(layers: &[&str]) -> String {
    let entries: Vec<BootEntry> = layers
        .iter()
        .map(|l| BootEntry {
            layer: l.parse().unwrap(),
            args: vec![format!("root=/dev/hvnode/{l}"), "ro".into()],
        })
        .collect();
    grub_cfg("1234-abcd", &entries, 5)
}

fn lv(name: &str, tag: &str, size: &str, data: &str, meta: &str) -> Lv {
    Lv {
        lv_name: name.into(),
        vg_name: "hvnode".into(),
        lv_tags: tag.into(),
        origin: String::new(),
        lv_attr: String::new(),
        lv_size: size.into(),
        data_percent: data.into(),
        metadata_percent: meta.into(),
    }
}

pub fn mount(t: &str, src: &str) -> Mount {
    Mount {
        target: t.into(),
        source: src.into(),
        fstype: "ext4".into(),
        options: "rw,discard".into(),
    }
}

/// A node updated once: the old image's layer and the new one's, running the new
/// one, as `gather` records them on an LVM install.
pub fn updated_node() -> Facts {
    let l_old = format!("{OLD}+1");
    let l_new = format!("{NEW}+1");
    let mut lvs = vec![
        lv("pool00", TAG_POOL, "21474836480", "42.25", "7.5"),
        lv(OLD, TAG_BASE, "", "", ""),
        lv(&l_old, TAG_LAYER, "", "", ""),
        lv(NEW, TAG_BASE, "", "", ""),
        lv(&l_new, TAG_LAYER, "", "", ""),
    ];
    lvs.extend(VOLUMES.iter().map(|v| lv(v.name, TAG_VOLUME, "", "", "")));
    let mut mounts = vec![mount("/", &format!("/dev/mapper/hvnode-{l_new}"))];
    mounts.extend(
        VOLUMES
            .iter()
            .filter(|v| !v.is_swap())
            .map(|v| mount(v.mountpoint, &format!("/dev/mapper/hvnode-{}", v.name))),
    );
    let boot_entries = parse_grub_cfg(&cfg(&[&l_old, &l_new]));
    let boot_files = boot_entries
        .iter()
        .flat_map(|e| [&e.kernel, &e.initrd])
        .map(|p| p.trim_start_matches('/').to_string())
        .collect();
    Facts {
        backend: Some(Backend::Lvm),
        inventory: Some(inventory_of(&lvs)),
        lvs,
        current_layer: Some(l_new.parse().unwrap()),
        mounts,
        boot_entries,
        grubenv: vec![("saved_entry".into(), l_new.clone())],
        boot_files,
        store_used_percent: None,
        swaps: vec!["/dev/dm-7".into()],
        vg: "hvnode".into(),
        fstab: Vec::new(),
        trials: Vec::new(),
        etc_conflicts: Vec::new(),
    }
}

pub fn snap(facts: Facts) -> Snapshot {
    Snapshot {
        facts: Ok(facts),
        image: Some(NEW.into()),
    }
}
