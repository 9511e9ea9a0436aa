//! The plain backend (`autopart --type=plain`): no LVM and no btrfs, one
//! XFS partition whose folders are the store. A base is a copy of the image
//! tree (`hvnode/bases/NVR`); a layer is a reflinked copy of its base
//! (`hvnode/layers/NVR+N`): XFS shares a reflinked file's blocks until one
//! side writes, so a layer costs its inodes and what changes, as a snapshot
//! does.
//!
//! The kernel cannot mount a folder as the root, so the initramfs does it
//! (the image's dracut module `hvnode-layer`): it mounts the partition,
//! binds the partition itself read-only onto the layer's `/sysroot`, and
//! binds the layer (with that) over the root. A running node reads its
//! store at [`STORE_MOUNT`]; the bases are never reachable writable there.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;

use crate::nvr::{LayerName, Nvr};
use crate::{Inventory, RootArgs, Store};

const BASES: &str = "hvnode/bases";
const LAYERS: &str = "hvnode/layers";

/// The kernel argument naming the layer the initramfs makes the root.
pub const LAYER_ARG: &str = "hvnode.layer";
/// Where a running node sees the store partition (read-only), and the
/// folder every layer has for it.
pub const STORE_MOUNT: &str = "/sysroot";

/// A plain layer store. `top` is where the XFS file system is mounted;
/// `device` is its partition.
#[derive(Debug, Clone)]
pub struct PlainStore {
    pub top: PathBuf,
    pub device: PathBuf,
}

impl PlainStore {
    /// Opens the store of the file system mounted at `top`, making its
    /// folders on first use.
    pub fn open(top: &Path, device: &Path) -> Result<Self> {
        for d in [BASES, LAYERS] {
            fs::create_dir_all(top.join(d))
                .with_context(|| format!("creating {}", top.join(d).display()))?;
        }
        Ok(PlainStore {
            top: top.into(),
            device: device.into(),
        })
    }

    /// Reads the store a running node has at [`STORE_MOUNT`] (or any
    /// mounted copy of it).
    pub fn inventory_at(top: &Path) -> Result<Inventory> {
        crate::tree_inventory(&top.join(BASES), &top.join(LAYERS))
    }

    /// Path of a base under the file system's root.
    pub fn base_path(&self, base: &Nvr) -> PathBuf {
        self.top.join(BASES).join(base.to_string())
    }

    /// Path of a layer under the file system's root.
    pub fn layer_path(&self, layer: &LayerName) -> PathBuf {
        self.top.join(LAYERS).join(layer.to_string())
    }

    /// Copies `from` to a hidden partial name beside `to`, then gives it
    /// its name: a store never lists a half-copied tree.
    fn copy_tree(&self, from: &Path, to: &Path, reflink: &str, what: &str) -> Result<()> {
        let name = to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = to.with_file_name(format!(".{name}.partial"));
        remove_tree(&partial)?;
        let copied = Command::new("cp")
            .args(["-a", "--preserve=all", "--no-target-directory"])
            .arg(format!("--reflink={reflink}"))
            .arg(from)
            .arg(&partial)
            .run()
            .with_context(|| format!("copying {} into {what}", from.display()));
        if let Err(e) = copied {
            let _ = remove_tree(&partial);
            return Err(e);
        }
        fs::rename(&partial, to).with_context(|| format!("naming {what} {}", to.display()))?;
        Ok(())
    }
}

/// Removes a tree under a hidden name first, so that an interrupted removal
/// leaves nothing the store lists.
fn remove_tree(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let doomed = if name.starts_with('.') {
        path.to_path_buf()
    } else {
        let d = path.with_file_name(format!(".{name}.removing"));
        fs::rename(path, &d).with_context(|| format!("setting {} aside", path.display()))?;
        d
    };
    fs::remove_dir_all(&doomed).with_context(|| format!("removing {}", doomed.display()))
}

impl Store for PlainStore {
    fn inventory(&self) -> Result<Inventory> {
        Self::inventory_at(&self.top)
    }

    /// `image` is the root of a mounted image tree; it is copied with its
    /// owners, modes, times, ACLs and extended attributes (SELinux labels).
    fn add_base(&self, nvr: &Nvr, image: &Path) -> Result<()> {
        let dest = self.base_path(nvr);
        if dest.exists() {
            bail!("{} exists already: this image is installed", dest.display());
        }
        self.copy_tree(image, &dest, "auto", &format!("the base {nvr}"))
    }

    /// The layer is a reflinked copy: the file system must share blocks
    /// (XFS made with `-m reflink=1`, the default of mkfs.xfs), else this
    /// fails rather than doubling the space the image takes.
    fn add_layer(&self, base: &Nvr) -> Result<LayerName> {
        let layer = self
            .inventory()?
            .next_layer(base, &self.top.display().to_string())?;
        let dest = self.layer_path(&layer);
        self.copy_tree(
            &self.base_path(base),
            &dest,
            "always",
            &format!("the layer {layer}"),
        )?;
        let store_dir = crate::under(&dest, STORE_MOUNT);
        fs::create_dir_all(&store_dir)
            .with_context(|| format!("making {} in the layer {layer}", store_dir.display()))?;
        Ok(layer)
    }

    fn remove_layer(&self, layer: &LayerName) -> Result<()> {
        remove_tree(&self.layer_path(layer))
    }

    fn remove_base(&self, base: &Nvr) -> Result<()> {
        self.inventory()?.check_no_layers(base)?;
        remove_tree(&self.base_path(base))
    }

    fn mount_layer(&self, layer: &LayerName, at: &Path) -> Result<()> {
        fs::create_dir_all(at)?;
        Command::new("mount")
            .arg("--bind")
            .arg(self.layer_path(layer))
            .arg(at)
            .run()
            .with_context(|| format!("mounting the layer {layer} at {}", at.display()))?;
        Ok(())
    }

    fn root_args(&self, layer: &LayerName) -> Result<RootArgs> {
        let uuid = crate::fs_uuid(&self.device)?;
        Ok(RootArgs {
            args: vec![
                format!("root=UUID={uuid}"),
                "rootfstype=xfs".into(),
                // XFS takes discard at mount time only (a remount keeps
                // what the initramfs mounted it with).
                "rootflags=discard".into(),
                format!("{LAYER_ARG}={layer}"),
                "ro".into(),
            ],
            fstab_source: format!("UUID={uuid}"),
            fstab_type: "xfs".into(),
            fstab_options: "defaults,discard".into(),
        })
    }
}
