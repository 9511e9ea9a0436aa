//! The btrfs backend: one file system, the bases as read-only subvolumes
//! (`hvnode/bases/NVR`), layers as writable snapshots of them
//! (`hvnode/layers/NVR+N`) and the separate volumes as subvolumes
//! (`hvnode/volumes/var_log`), mounted with `subvol=`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;

use crate::nvr::{LayerName, Nvr};
use crate::{Inventory, RootArgs, Store};

const BASES: &str = "hvnode/bases";
const LAYERS: &str = "hvnode/layers";
const VOLUMES: &str = "hvnode/volumes";

/// A btrfs layer store. `top` is where the file system's top level
/// (subvolid=5) is mounted; `device` is the file system's block device.
#[derive(Debug, Clone)]
pub struct BtrfsStore {
    pub top: PathBuf,
    pub device: PathBuf,
}

fn btrfs() -> Command {
    Command::new("btrfs")
}

impl BtrfsStore {
    /// Opens the store of the file system mounted at `top`, making its
    /// folders on first use.
    pub fn open(top: &Path, device: &Path) -> Result<Self> {
        for d in [BASES, LAYERS, VOLUMES] {
            fs::create_dir_all(top.join(d))
                .with_context(|| format!("creating {}", top.join(d).display()))?;
        }
        Ok(BtrfsStore {
            top: top.into(),
            device: device.into(),
        })
    }

    /// The file system's UUID (what the kernel and fstab find it by).
    pub fn uuid(&self) -> Result<String> {
        crate::fs_uuid(&self.device)
    }

    fn delete(&self, path: &Path) -> Result<()> {
        btrfs()
            .args(["subvolume", "delete"])
            .arg(path)
            .run()
            .with_context(|| format!("deleting the subvolume {}", path.display()))?;
        Ok(())
    }

    /// Adds a separate volume (a subvolume) and returns its `subvol=` path.
    pub fn add_volume(&self, name: &str) -> Result<String> {
        let rel = format!("{VOLUMES}/{name}");
        btrfs()
            .args(["subvolume", "create"])
            .arg(self.top.join(&rel))
            .run()
            .with_context(|| format!("creating the subvolume {rel}"))?;
        Ok(rel)
    }

    /// `subvol=` path of a layer.
    pub fn layer_subvol(layer: &LayerName) -> String {
        format!("{LAYERS}/{layer}")
    }

    /// Path of a base under the top level.
    pub fn base_path(&self, base: &Nvr) -> PathBuf {
        self.top.join(BASES).join(base.to_string())
    }

    /// Path of a layer under the top level.
    pub fn layer_path(&self, layer: &LayerName) -> PathBuf {
        self.top.join(Self::layer_subvol(layer))
    }
}

impl Store for BtrfsStore {
    fn inventory(&self) -> Result<Inventory> {
        crate::tree_inventory(&self.top.join(BASES), &self.top.join(LAYERS))
    }

    /// `image` is the root of a mounted image tree; it is copied with its
    /// owners, modes, times, ACLs and extended attributes (SELinux labels).
    fn add_base(&self, nvr: &Nvr, image: &Path) -> Result<()> {
        let dest = self.base_path(nvr);
        if dest.exists() {
            bail!("{} exists already: this image is installed", dest.display());
        }
        let partial = self.top.join(BASES).join(format!(".{nvr}.partial"));
        if partial.exists() {
            self.delete(&partial)?;
        }
        btrfs()
            .args(["subvolume", "create"])
            .arg(&partial)
            .run()
            .with_context(|| format!("creating the subvolume {}", partial.display()))?;
        let copied = Command::new("cp")
            .args(["-a", "--preserve=all", "--no-target-directory"])
            .arg(image)
            .arg(&partial)
            .run()
            .with_context(|| {
                format!(
                    "copying the image {} into {}",
                    image.display(),
                    partial.display()
                )
            });
        if let Err(e) = copied {
            let _ = self.delete(&partial);
            return Err(e);
        }
        fs::rename(&partial, &dest)
            .with_context(|| format!("naming the base {}", dest.display()))?;
        btrfs()
            .args(["property", "set", "-ts"])
            .arg(&dest)
            .args(["ro", "true"])
            .run()
            .with_context(|| format!("making the base {} read-only", dest.display()))?;
        Ok(())
    }

    fn add_layer(&self, base: &Nvr) -> Result<LayerName> {
        let layer = self
            .inventory()?
            .next_layer(base, &self.top.display().to_string())?;
        btrfs()
            .args(["subvolume", "snapshot"])
            .arg(self.base_path(base))
            .arg(self.layer_path(&layer))
            .run()
            .with_context(|| format!("creating the layer {layer}"))?;
        Ok(layer)
    }

    fn remove_layer(&self, layer: &LayerName) -> Result<()> {
        self.delete(&self.layer_path(layer))
    }

    fn remove_base(&self, base: &Nvr) -> Result<()> {
        self.inventory()?.check_no_layers(base)?;
        let path = self.base_path(base);
        btrfs()
            .args(["property", "set", "-ts"])
            .arg(&path)
            .args(["ro", "false"])
            .run()
            .with_context(|| format!("making the base {} writable to delete it", path.display()))?;
        self.delete(&path)
    }

    fn mount_layer(&self, layer: &LayerName, at: &Path) -> Result<()> {
        fs::create_dir_all(at)?;
        Command::new("mount")
            .args(["-t", "btrfs", "-o"])
            .arg(format!(
                "subvol={},discard=async",
                Self::layer_subvol(layer)
            ))
            .arg(&self.device)
            .arg(at)
            .run()
            .with_context(|| format!("mounting the layer {layer} at {}", at.display()))?;
        Ok(())
    }

    fn root_args(&self, layer: &LayerName) -> Result<RootArgs> {
        let uuid = self.uuid()?;
        let subvol = Self::layer_subvol(layer);
        Ok(RootArgs {
            args: vec![
                format!("root=UUID={uuid}"),
                format!("rootflags=subvol={subvol}"),
                "ro".into(),
            ],
            fstab_source: format!("UUID={uuid}"),
            fstab_type: "btrfs".into(),
            fstab_options: format!("subvol={subvol},discard=async"),
        })
    }
}
