//! The separate volumes' share of an install that needs no disk: their
//! mount points in the layer, their mkfs options, and the copy of what the
//! layer had under each onto its volume.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use layers::under;

use crate::labels::label_paths;
use crate::storage::{Backing, PlannedVolume};

/// The folders to make for the mount points of `volumes` that `sysroot`
/// lacks, each given as the outermost folder made (setfiles goes down from
/// it), in the order of `volumes`. Swap has no mount point; a swap file's
/// `/swap` is made with its subvolume.
pub fn missing_mount_points(sysroot: &Path, volumes: &[PlannedVolume]) -> Vec<PathBuf> {
    let mut outermost: Vec<PathBuf> = Vec::new();
    for v in volumes.iter().filter(|v| !v.is_swap()) {
        let target = under(sysroot, &v.mountpoint);
        let first_new = target.ancestors().take_while(|a| !a.exists()).last();
        if let Some(first_new) = first_new
            && !outermost.iter().any(|m| first_new.starts_with(m))
        {
            outermost.push(first_new.to_path_buf());
        }
    }
    outermost
}

/// Makes the mount points of `volumes` that the layer lacks (the image has
/// no `/var/crash` nor `/var/log/audit`) and labels them, all in one run of
/// setfiles (2-3 s under emulation, where it was one run a volume), before
/// any volume is mounted: a volume's root is then copied from a labelled
/// folder, and the folder under it keeps a label too. The mount points the
/// image has keep the image's labels.
pub fn make_mount_points(sysroot: &Path, volumes: &[PlannedVolume], devlog: &Path) -> Result<()> {
    let made = missing_mount_points(sysroot, volumes);
    for v in volumes.iter().filter(|v| !v.is_swap()) {
        let target = under(sysroot, &v.mountpoint);
        fs::create_dir_all(&target)
            .with_context(|| format!("making the mount point {}", target.display()))?;
    }
    label_paths(sysroot, &made, devlog)
}

/// Copies what the layer has under a mount point onto the new volume
/// (owners, modes, times and SELinux labels kept, the top folder's too).
pub fn migrate(from: &Path, to: &Path) -> Result<()> {
    if !from.exists() {
        fs::create_dir_all(from)?;
        return Ok(());
    }
    Command::new("cp")
        .args(["-a", "--preserve=all", "--no-target-directory"])
        .arg(from)
        .arg(to)
        .run()
        .with_context(|| format!("copying {} to its new volume", from.display()))?;
    Ok(())
}

/// The mkfs options of a separate volume: the kickstart's, and for an ext
/// file system on a new thin volume `assume_storage_prezeroed` (e2fsprogs
/// 1.47): the volume reads as zeros wherever it has not written (its pool
/// zeroes the chunks it provisions, `PoolSpec::lvcreate_args`; a thick
/// volume or a partition may hold anything), so mke2fs writes neither its
/// journal (half of mkfs's time under emulation) nor its inode tables, and
/// marks them zeroed. Without it the kernel zeroes the inode tables after
/// the first mount (ext4lazyinit): 16 MiB a GiB of volume, 640 MiB for the
/// default layout, written into the thin pool during the first boot. A
/// kickstart's own `-E` is left alone.
pub fn volume_mkfs_options(v: &PlannedVolume) -> Vec<String> {
    let mut opts = v.mkfs_options.clone();
    let own_extended = opts.iter().any(|o| o.starts_with("-E"));
    if v.backing == Backing::Thin && v.fstype.starts_with("ext") && !own_extended {
        opts.extend(["-E".to_string(), "assume_storage_prezeroed=1".to_string()]);
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(mountpoint: &str, backing: Backing, fstype: &str, opts: &[&str]) -> PlannedVolume {
        PlannedVolume {
            name: "v".into(),
            mountpoint: mountpoint.into(),
            bytes: 1 << 30,
            fstype: fstype.into(),
            backing,
            options: "defaults".into(),
            label: "v".into(),
            mkfs_options: opts.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn new_thin_ext_volumes_are_known_to_read_as_zeros() {
        assert_eq!(
            volume_mkfs_options(&vol("/var", Backing::Thin, "ext4", &["-m", "1"])),
            ["-m", "1", "-E", "assume_storage_prezeroed=1"]
        );
        // A partition or a thick volume may hold old data; xfs has no such
        // option; a kickstart's -E is the kickstart's.
        assert!(volume_mkfs_options(&vol("/var", Backing::Thick, "ext4", &[])).is_empty());
        assert!(volume_mkfs_options(&vol("/var", Backing::Partition(5), "ext4", &[])).is_empty());
        assert!(volume_mkfs_options(&vol("/var", Backing::Thin, "xfs", &[])).is_empty());
        assert_eq!(
            volume_mkfs_options(&vol("/var", Backing::Thin, "ext4", &["-E", "stride=4"])),
            ["-E", "stride=4"]
        );
    }

    #[test]
    fn missing_mount_points_are_made_and_labelled_from_the_outermost_new_folder() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("var/log")).unwrap();
        let volumes = [
            vol("/var", Backing::Thin, "ext4", &[]),
            vol("/var/crash", Backing::Thin, "ext4", &[]),
            vol("/var/log", Backing::Thin, "ext4", &[]),
            vol("/var/log/audit", Backing::Thin, "ext4", &[]),
            vol("/srv/data", Backing::Thin, "ext4", &[]),
            vol("/srv/data/cold", Backing::Thin, "ext4", &[]),
            vol("swap", Backing::Thin, "swap", &[]),
        ];
        // /srv/data/cold is under /srv, made already for /srv/data: one
        // setfiles target covers both. /var and /var/log exist.
        assert_eq!(
            missing_mount_points(root, &volumes),
            [
                root.join("var/crash"),
                root.join("var/log/audit"),
                root.join("srv")
            ]
        );
        // No policy in this root: the folders are made, nothing is labelled.
        make_mount_points(root, &volumes, &root.join("log")).unwrap();
        for m in ["var/crash", "var/log/audit", "srv/data/cold"] {
            assert!(root.join(m).is_dir(), "{m}");
        }
        assert!(!root.join("swap").exists());
        assert!(missing_mount_points(root, &volumes).is_empty());
    }
}
