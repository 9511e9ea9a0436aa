//! A plain node (`autopart --type=plain`) as `nodectl info` sees
//! it: the root is a folder of one XFS partition (`hvnode/layers/NVR+N`)
//! that the initramfs binds over `/`, the whole partition is bound
//! read-only at [`STORE_MOUNT`], and each separate volume is a partition
//! of its own, found by its fstab entry.

use std::path::Path;

use crate::Inventory;
use crate::fstab::Entry;
use crate::plain::{LAYER_ARG, PlainStore, STORE_MOUNT};

use super::Mount;

/// Where the layers are, as `findmnt` shows the root's source
/// (`/dev/vda12[/hvnode/layers/NVR+N]`).
const LAYERS_IN_SOURCE: &str = "[/hvnode/layers/";

/// Whether the running root is a layer of a plain store: an XFS root that
/// the kernel command line names by `hvnode.layer=`, or that is mounted
/// from a folder under `hvnode/layers`.
pub fn is_plain_root(mounts: &[Mount], cmdline: &str) -> bool {
    let Some(root) = mounts.iter().find(|m| m.target == "/") else {
        return false;
    };
    let named = cmdline.split_whitespace().any(|a| {
        a.strip_prefix(LAYER_ARG)
            .is_some_and(|v| v.starts_with('='))
    });
    root.fstype == "xfs" && (named || root.source.contains(LAYERS_IN_SOURCE))
}

/// The bases and layers of the store mounted at `top`; `None` when it
/// cannot be read there (`check` reports it).
pub fn store_inventory(top: &Path) -> Option<Inventory> {
    PlainStore::inventory_at(top).ok()
}

/// The mount point (`swap` for swap) of a separate volume of a plain node:
/// a partition the fstab mounts, other than the root and the boot
/// partitions.
pub fn volume(e: &Entry) -> Option<String> {
    if e.fstype == "swap" {
        return Some("swap".into());
    }
    let partition = ["UUID=", "PARTUUID=", "LABEL=", "PARTLABEL=", "/dev/"]
        .iter()
        .any(|p| e.source.starts_with(p));
    let own = ["/", "/boot", "/boot/efi", STORE_MOUNT].contains(&e.target.as_str());
    (partition && !own).then(|| e.target.clone())
}
