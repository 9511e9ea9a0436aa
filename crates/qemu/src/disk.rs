//! Disks for a guest: empty qcow2 disks, overlays over an installed disk,
//! and the `OEMDRV` disk that hands an installer its kickstart.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;

/// Makes a small FAT disk image labelled `OEMDRV` holding `ks.cfg`: where
/// Anaconda (and hvnode-install) look for a kickstart when the kernel
/// command line names none.
pub fn oemdrv_disk(kickstart: &str, path: &Path) -> Result<()> {
    let dir = tempfile::tempdir()
        .context("making a folder for the OEMDRV disk's ks.cfg (is TMPDIR writable?)")?;
    let ks = dir.path().join("ks.cfg");
    fs::write(&ks, kickstart).with_context(|| format!("writing {}", ks.display()))?;
    let _ = fs::remove_file(path);
    Command::new("mkfs.vfat")
        .args(["-C", "-n", "OEMDRV"])
        .arg(path)
        .arg("4096")
        .run()
        .context("making the OEMDRV disk (apt-get install dosfstools)")?;
    Command::new("mcopy")
        .arg("-i")
        .arg(path)
        .arg(&ks)
        .arg("::ks.cfg")
        .run()
        .context("copying ks.cfg onto the OEMDRV disk (apt-get install mtools)")?;
    Ok(())
}

/// A qcow2 overlay at `path` over `base`: a guest writes to the overlay and
/// `base` stays as it is, so one installed disk serves several boots.
pub fn overlay_disk(base: &Path, path: &Path) -> Result<()> {
    let _ = fs::remove_file(path);
    let base = base
        .canonicalize()
        .with_context(|| format!("finding {}", base.display()))?;
    Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(path)
        .run()
        .context("making an overlay disk (apt-get install qemu-utils)")?;
    Ok(())
}

/// Creates an empty qcow2 disk of `gib` GiB (sparse: it grows as written).
pub fn blank_disk(path: &Path, gib: u64) -> Result<()> {
    let _ = fs::remove_file(path);
    Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(format!("{gib}G"))
        .run()
        .context("making a disk image (apt-get install qemu-utils)")?;
    Ok(())
}
