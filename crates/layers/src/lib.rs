//! The writable-root layer store of an installed node (what RHVH calls
//! imgbased): each image version is a read-only **base** named by its NVR
//! (`hvnode-1.0-0.20261125.0`), the node runs from a writable **layer**
//! snapshot of it (`hvnode-1.0-0.20261125.0+1`), and the data that must
//! survive updates lives on separate volumes (`/var`, `/var/log`, …).
//!
//! Three backends share one [`Store`] trait: LVM thin volumes
//! ([`lvm::LvmStore`], `autopart --type=thinp`, the default), btrfs
//! subvolumes ([`btrfs::BtrfsStore`], `autopart --type=btrfs`) and folders
//! of reflinked files on an XFS partition ([`plain::PlainStore`],
//! `autopart --type=plain`). Boot entries
//! (one per layer, kernel and initramfs under `/boot/<layer>/`) are written
//! by [`boot`]; the mount table by [`fstab`].

pub mod boot;
pub mod btrfs;
pub mod fstab;
pub mod history;
pub mod lvm;
pub mod nvr;
pub mod plain;
pub mod status;
pub mod volumes;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use nvr::{LayerName, Nvr};

/// What a store holds: bases, and the layers made from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub bases: Vec<Nvr>,
    pub layers: Vec<LayerName>,
}

impl Inventory {
    /// The newest layer of the newest base.
    pub fn latest_layer(&self) -> Option<&LayerName> {
        self.layers.iter().max()
    }

    /// The name the next layer of `base` gets (`+1` for its first);
    /// `store` names the store in the error when there is no such base.
    pub fn next_layer(&self, base: &Nvr, store: &str) -> anyhow::Result<LayerName> {
        if !self.bases.contains(base) {
            anyhow::bail!("there is no base {base} in {store}");
        }
        Ok(self
            .layers
            .iter()
            .filter(|l| &l.base == base)
            .max()
            .map(LayerName::next)
            .unwrap_or_else(|| LayerName::first(base)))
    }

    /// Refuses to remove `base` while layers are made from it.
    pub fn check_no_layers(&self, base: &Nvr) -> anyhow::Result<()> {
        if self.layers.iter().any(|l| &l.base == base) {
            anyhow::bail!("the base {base} still has layers: remove them first");
        }
        Ok(())
    }
}

/// How the kernel finds a layer's root file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootArgs {
    /// Kernel arguments: `root=…` and what the initramfs needs to reach it.
    pub args: Vec<String>,
    /// The device (or `UUID=…`) and options for the layer's fstab entry.
    pub fstab_source: String,
    pub fstab_type: String,
    pub fstab_options: String,
}

/// A layer store. Every operation either completes or leaves nothing
/// behind: a base is written under a temporary name and renamed when whole.
pub trait Store {
    /// The bases and layers present.
    fn inventory(&self) -> anyhow::Result<Inventory>;
    /// Adds the read-only base `nvr` from `image`: an ext4 file-system image
    /// (`LiveOS/rootfs.img`) for LVM, or a directory tree for btrfs.
    fn add_base(&self, nvr: &Nvr, image: &Path) -> anyhow::Result<()>;
    /// Adds the next writable layer of `base` and returns its name.
    fn add_layer(&self, base: &Nvr) -> anyhow::Result<LayerName>;
    /// Removes a layer (never the one the system runs from: callers check).
    fn remove_layer(&self, layer: &LayerName) -> anyhow::Result<()>;
    /// Removes a base that has no layers left.
    fn remove_base(&self, base: &Nvr) -> anyhow::Result<()>;
    /// Mounts `layer` read-write at `at`.
    fn mount_layer(&self, layer: &LayerName, at: &Path) -> anyhow::Result<()>;
    /// The kernel arguments and fstab entry that make `layer` the root.
    fn root_args(&self, layer: &LayerName) -> anyhow::Result<RootArgs>;
}

/// The file-system UUID of `dev` (what fstab and grub find it by).
pub fn fs_uuid(dev: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    use command::CommandExt;
    let out = std::process::Command::new("blkid")
        .args(["-s", "UUID", "-o", "value"])
        .arg(dev)
        .run_capture()
        .with_context(|| format!("reading the UUID of {}", dev.display()))?;
    let uuid = out.trim().to_string();
    if uuid.is_empty() {
        anyhow::bail!("{} has no file-system UUID", dev.display());
    }
    Ok(uuid)
}

/// The bases and layers kept as folders (btrfs subvolumes, plain
/// directories) named by their NVR under `bases` and `layers`; names
/// starting with a dot are partial and not listed.
pub fn tree_inventory(bases: &Path, layers: &Path) -> anyhow::Result<Inventory> {
    use anyhow::Context;
    let names = |dir: &Path| -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                names.push(name);
            }
        }
        Ok(names)
    };
    let mut bases: Vec<Nvr> = names(bases)?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let mut layers: Vec<LayerName> = names(layers)?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    bases.sort();
    layers.sort();
    Ok(Inventory { bases, layers })
}

/// Where a mount point lives under a target root (`/var/log` under
/// `/mnt/sysroot` is `/mnt/sysroot/var/log`).
pub fn under(root: &Path, mountpoint: &str) -> PathBuf {
    root.join(mountpoint.trim_start_matches('/'))
}
