//! The "Storage (plain)" group: the root is a folder of one XFS partition
//! that the initramfs binds over `/`, the whole partition is bound
//! read-only at [`STORE_MOUNT`], and each separate volume is a partition
//! of its own, found by its fstab entry.

use layers::plain::STORE_MOUNT;
use layers::status::{Facts, has_option};

use super::space_item;
use crate::{Group, Item, group, item};

/// The device of a mount's source, without the folder findmnt shows for a
/// bind mount (`/dev/vda12[/hvnode/layers/…]` is on `/dev/vda12`).
fn device(source: &str) -> &str {
    source.split_once('[').map_or(source, |(d, _)| d)
}

/// The store is the root's XFS file system, mounted read-only at
/// [`STORE_MOUNT`]: the bases cannot be changed from the running node.
fn bases_read_only(f: &Facts) -> Item {
    const NAME: &str = "Bases read-only";
    let Some(store) = f.mounts.iter().rev().find(|m| m.target == STORE_MOUNT) else {
        return item(
            NAME,
            false,
            format!("the store is not mounted at {STORE_MOUNT}"),
        );
    };
    let root = f
        .mounts
        .iter()
        .find(|m| m.target == "/")
        .map(|m| device(&m.source));
    if store.fstype != "xfs" || root.is_some_and(|r| r != device(&store.source)) {
        return item(
            NAME,
            false,
            format!(
                "{STORE_MOUNT} is {} ({}), not the root's store{}",
                store.source,
                store.fstype,
                root.map(|r| format!(" on {r}")).unwrap_or_default()
            ),
        );
    }
    if !has_option(&store.options, "ro") {
        return item(
            NAME,
            false,
            format!(
                "{} is mounted read-write at {STORE_MOUNT}: the bases can be changed",
                store.source
            ),
        );
    }
    item(
        NAME,
        true,
        format!("{} read-only at {STORE_MOUNT}", store.source),
    )
}

/// Every separate volume is mounted (swap: some swap is active).
fn volumes_mounted(f: &Facts, expected: &[(Option<String>, String)]) -> Item {
    let (missing, present): (Vec<&str>, Vec<&str>) =
        expected.iter().map(|(_, mp)| mp.as_str()).partition(|mp| {
            if *mp == "swap" {
                f.swaps.is_empty()
            } else {
                !f.mounts.iter().any(|m| m.target == *mp)
            }
        });
    item(
        "Separate volumes",
        missing.is_empty(),
        if missing.is_empty() {
            format!("mounted: {}", present.join(", "))
        } else {
            format!("not mounted: {}", missing.join(", "))
        },
    )
}

/// The "Storage (plain)" group: layers present, the bases out of the
/// running node's reach, the separate volumes mounted, space left.
pub fn storage(f: &Facts, expected: &[(Option<String>, String)]) -> Group {
    let layers = match &f.inventory {
        Some(inv) => item(
            "Layers",
            !inv.bases.is_empty() && !inv.layers.is_empty(),
            format!("{} bases, {} layers", inv.bases.len(), inv.layers.len()),
        ),
        None => item(
            "Layers",
            false,
            format!("the store could not be read at {STORE_MOUNT} (hvnode/bases, hvnode/layers)"),
        ),
    };
    group(
        "Storage (plain)",
        vec![
            layers,
            bases_read_only(f),
            volumes_mounted(f, expected),
            space_item(f.store_used_percent, STORE_MOUNT),
        ],
    )
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
