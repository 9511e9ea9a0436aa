//! The layered root's checks: boot entries for every layer, the separate
//! volumes and discard, and the store (thin LVM, btrfs or plain XFS) with
//! its space.

use hostinfo::Lv;
use layers::Inventory;
use layers::lvm::{TAG_POOL, TAG_VOLUME};
use layers::status::{Backend, Facts, expected_volumes, has_option};

use crate::{Group, Item, USAGE_LIMIT_PERCENT, group, item};

mod plain;

/// The layered root's groups: Bootloader, Mount points and the store's.
pub fn groups(f: &Facts) -> Vec<Group> {
    let inv = f.inventory.clone().unwrap_or(Inventory {
        bases: vec![],
        layers: vec![],
    });
    let mut groups = vec![bootloader(f, &inv), mount_points(f)];
    groups.extend(storage(f, &inv));
    groups
}

/// The thin pool of an LVM store (vg, name): the host's checks leave it to
/// the store's.
pub fn store_pool(f: &Facts) -> Option<(String, String)> {
    f.lvs
        .iter()
        .find(|l| l.has_tag(TAG_POOL))
        .map(|l| (l.vg_name.clone(), l.lv_name.clone()))
}

/// A thin pool usage check: passes below [`USAGE_LIMIT_PERCENT`]; a missing
/// pool, a usage lvs does not report and an unreadable one all fail.
fn usage_item(name: &str, usage: Option<Result<Option<f64>, hostinfo::BadLvsRow>>) -> Item {
    match usage {
        None => item(name, false, "no thin pool found"),
        Some(Ok(Some(u))) => item(
            name,
            u < USAGE_LIMIT_PERCENT,
            format!("{u:.1}% used (limit {USAGE_LIMIT_PERCENT:.0}%)"),
        ),
        Some(Ok(None)) => item(name, false, "lvs reports no usage (is the pool active?)"),
        Some(Err(e)) => item(name, false, e.to_string()),
    }
}

/// The use of the file system holding a btrfs or plain store (mounted at
/// `at`); unmeasured is a failure, as a store whose use nobody knows.
fn space_item(used: Option<f64>, at: &str) -> Item {
    match used {
        Some(u) => item(
            "Space",
            u < USAGE_LIMIT_PERCENT,
            format!("{u:.0}% used (limit {USAGE_LIMIT_PERCENT:.0}%)"),
        ),
        None => item(
            "Space",
            false,
            format!("the use of {at} could not be measured (df)"),
        ),
    }
}

/// Every layer has a boot entry, every entry its kernel and initramfs, and
/// the default entry exists.
fn bootloader(f: &Facts, inv: &Inventory) -> Group {
    let ids: Vec<&str> = f.boot_entries.iter().map(|e| e.id.as_str()).collect();
    let missing: Vec<String> = inv
        .layers
        .iter()
        .map(|l| l.to_string())
        .filter(|l| !ids.contains(&l.as_str()))
        .collect();
    let broken: Vec<&str> = f
        .boot_entries
        .iter()
        .filter(|e| {
            [&e.kernel, &e.initrd].iter().any(|p| {
                !f.boot_files
                    .contains(&p.trim_start_matches('/').to_string())
            })
        })
        .map(|e| e.id.as_str())
        .collect();
    let default = f
        .grubenv
        .iter()
        .find(|(k, _)| k == "saved_entry")
        .map(|(_, v)| v.clone());
    group(
        "Bootloader",
        vec![
            item(
                "Layer boot entries",
                !inv.layers.is_empty() && missing.is_empty(),
                if inv.layers.is_empty() {
                    "no layers found".to_string()
                } else if missing.is_empty() {
                    format!("{} layers, each with an entry", inv.layers.len())
                } else {
                    format!("no boot entry for {}", missing.join(", "))
                },
            ),
            item(
                "Valid boot entries",
                !f.boot_entries.is_empty() && broken.is_empty(),
                if broken.is_empty() {
                    format!(
                        "{} entries, kernels and initramfs present",
                        f.boot_entries.len()
                    )
                } else {
                    format!("kernel or initramfs missing for {}", broken.join(", "))
                },
            ),
            item(
                "Default entry",
                default.as_deref().is_some_and(|d| ids.contains(&d)),
                default.clone().unwrap_or_else(|| "none set".into()),
            ),
        ],
    )
}

/// A separate /var, and discard on / and every separate volume.
fn mount_points(f: &Facts) -> Group {
    let find = |t: &str| f.mounts.iter().find(|m| m.target == t);
    let root = find("/");
    let var = find("/var");
    let separate_var = match (root, var) {
        (Some(r), Some(v)) => r.source != v.source || r.options != v.options,
        _ => false,
    };
    let expected = expected_volumes(f);
    // Thin volumes and subvolumes give freed blocks back with discard; a
    // thick volume (outside the pool) has nothing to give back.
    let thick = |lv: &Option<String>| {
        lv.as_ref().is_some_and(|n| {
            f.lvs
                .iter()
                .any(|l| &l.lv_name == n && !l.lv_attr.is_empty() && !l.lv_attr.starts_with('V'))
        })
    };
    let no_discard: Vec<&str> = std::iter::once("/")
        .chain(
            expected
                .iter()
                .filter(|(lv, mp)| mp != "swap" && !thick(lv))
                .map(|(_, mp)| mp.as_str()),
        )
        .filter(|t| find(t).is_some_and(|m| !has_option(&m.options, "discard")))
        .collect();
    group(
        "Mount points",
        vec![
            item(
                "Separate /var",
                separate_var,
                var.map(|v| v.source.clone())
                    .unwrap_or_else(|| "/var is not mounted".into()),
            ),
            item(
                "Discard is used",
                no_discard.is_empty() && root.is_some(),
                if no_discard.is_empty() {
                    "on / and every separate volume".to_string()
                } else {
                    format!("mounted without discard: {}", no_discard.join(", "))
                },
            ),
        ],
    )
}

/// The store's groups: its layers and volumes, and its space.
fn storage(f: &Facts, inv: &Inventory) -> Vec<Group> {
    let expected = expected_volumes(f);
    match f.backend {
        Some(Backend::Btrfs) => vec![group(
            "Storage (btrfs)",
            vec![
                item(
                    "Layers",
                    !inv.bases.is_empty() && !inv.layers.is_empty(),
                    format!("{} bases, {} layers", inv.bases.len(), inv.layers.len()),
                ),
                space_item(f.store_used_percent, "/"),
            ],
        )],
        Some(Backend::Plain) => vec![plain::storage(f, &expected)],
        Some(Backend::Lvm) | None => lvm(f, inv, &expected),
    }
}

/// An LVM store's groups: the group, pool and volumes, and the pool's use.
fn lvm(f: &Facts, inv: &Inventory, expected: &[(Option<String>, String)]) -> Vec<Group> {
    let pool = f.lvs.iter().find(|l| l.has_tag(TAG_POOL));
    let vols: Vec<&str> = f
        .lvs
        .iter()
        .filter(|l| l.has_tag(TAG_VOLUME))
        .map(|l| l.lv_name.as_str())
        .collect();
    let missing_vols: Vec<&str> = expected
        .iter()
        .filter_map(|(lv, _)| lv.as_deref())
        .filter(|n| !vols.contains(n))
        .collect();
    vec![
        group(
            "Basic storage",
            vec![
                item(
                    "Initialized VG",
                    !f.lvs.is_empty(),
                    if f.lvs.is_empty() {
                        "no volume group holds volumes tagged hvnode:pool, hvnode:base or hvnode:layer".to_string()
                    } else {
                        f.vg.clone()
                    },
                ),
                item(
                    "Initialized Thin Pool",
                    pool.is_some(),
                    pool.map(|p| p.lv_name.clone())
                        .unwrap_or_else(|| "no thin pool tagged hvnode:pool".into()),
                ),
                item(
                    "Initialized LVs",
                    missing_vols.is_empty() && !inv.bases.is_empty() && !inv.layers.is_empty(),
                    if missing_vols.is_empty() {
                        format!(
                            "{} bases, {} layers, {} volumes",
                            inv.bases.len(),
                            inv.layers.len(),
                            vols.len()
                        )
                    } else {
                        format!("missing: {}", missing_vols.join(", "))
                    },
                ),
            ],
        ),
        group(
            "Thin storage",
            vec![
                usage_item("Thin pool data", pool.map(Lv::data_usage)),
                usage_item("Thin pool metadata", pool.map(Lv::metadata_usage)),
            ],
        ),
    ]
}

#[cfg(test)]
#[path = "layered_tests.rs"]
mod tests;
