//! The squash stage: the labelled tree becomes `LiveOS/rootfs.img` (ext4,
//! SELinux labels in its xattrs) wrapped in a squashfs: the layout dracut's
//! dmsquash-live boots, and that RHVH and Fedora use.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use sha2::{Digest, Sha256};

use crate::rootfs::Root;

/// A UUID derived from `seed`, so that rebuilds give the same file system.
pub fn stable_uuid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let b: Vec<String> = h[..16].iter().map(|x| format!("{x:02x}")).collect();
    let s = b.concat();
    format!(
        "{}-{}-4{}-8{}-{}",
        &s[0..8],
        &s[8..12],
        &s[13..16],
        &s[17..20],
        &s[20..32]
    )
}

/// Bytes used by the tree (apparent sizes, plus a block per inode).
fn tree_size(path: &Path) -> Result<u64> {
    let out = Command::new("du")
        .args(["-s", "--block-size=1", "-x"])
        .arg(path)
        .run_capture()
        .context("measuring the image tree")?;
    Ok(out
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Every path in the tree, relative, parents first.
fn all_paths(root: &Path) -> Result<Vec<String>> {
    let out = Command::new("find")
        .arg(".")
        .arg("-xdev")
        .current_dir(root)
        .run_capture()
        .context("listing the image tree")?;
    let mut paths: Vec<String> = out
        .lines()
        .map(|l| l.trim_start_matches('.').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Makes the ext4 image of `root` at `out`. Times inside are clamped to
/// `epoch`: mkfs copies each file's change and access times from the build
/// host (the change time no tool can set there; the access time changes
/// whenever a file is read, mkfs's own read included), so debugfs rewrites
/// both afterwards. Everything else mkfs writes is fixed: the UUID, the
/// directory hash seed, and the file system's and each inode's creation
/// times (`E2FSPROGS_FAKE_TIME`).
pub fn ext4_image(root: &Root, out: &Path, nvr: &str, epoch: i64, log: &Path) -> Result<()> {
    let used = tree_size(&root.path)?;
    // Room for the metadata and for a little growth under the live overlay.
    let size = (used + used / 5 + (256 << 20)).div_ceil(1 << 20);
    let uuid = stable_uuid(&format!("{nvr} rootfs"));
    if out.exists() {
        fs::remove_file(out)?;
    }
    Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "hvnode-root", "-U", &uuid])
        .args([
            "-E",
            &format!("root_owner=0:0,hash_seed={uuid},lazy_itable_init=0,nodiscard"),
        ])
        .args(["-O", "^has_journal", "-T", "default", "-I", "256"])
        .arg("-d")
        .arg(&root.path)
        .arg(out)
        .arg(format!("{size}M"))
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .run_logged(log)
        .context("making the ext4 root image")?;
    // Rewrite change and access times; directories and files alike.
    let script = out.with_extension("debugfs");
    {
        let mut f = std::io::BufWriter::new(fs::File::create(&script)?);
        for p in std::iter::once("/".to_string()).chain(all_paths(&root.path)?) {
            for field in ["ctime", "atime"] {
                writeln!(f, "sif \"{p}\" {field} @{epoch}")?;
            }
        }
        f.flush()?;
    }
    Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(out)
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .run_logged(log)
        .context("setting change times in the ext4 root image")?;
    fs::remove_file(&script)?;
    Command::new("e2fsck")
        .args(["-f", "-n"])
        .arg(out)
        .run_logged(log)
        .context("checking the ext4 root image")?;
    Ok(())
}

/// Wraps `LiveOS/rootfs.img` in a squashfs at `out`, compressed with zstd
/// at `level`.
pub fn squashfs(liveos_parent: &Path, out: &Path, epoch: i64, level: u8, log: &Path) -> Result<()> {
    if out.exists() {
        fs::remove_file(out)?;
    }
    Command::new("mksquashfs")
        .arg(liveos_parent)
        .arg(out)
        .args([
            "-noappend",
            "-no-progress",
            "-comp",
            "zstd",
            "-Xcompression-level",
            &level.to_string(),
        ])
        .args(["-b", "1M", "-reproducible", "-all-root"])
        .args([
            "-mkfs-time",
            &epoch.to_string(),
            "-all-time",
            &epoch.to_string(),
        ])
        .run_logged(log)
        .context("making the squashfs image")
}

/// Builds `NVR.squashfs.img` from the labelled tree; returns its path.
pub fn build(
    root: &Root,
    work: &Path,
    out: &Path,
    nvr: &str,
    epoch: i64,
    level: u8,
    log: &Path,
) -> Result<PathBuf> {
    let staging = work.join("squash");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(staging.join("LiveOS"))?;
    let rootfs = staging.join("LiveOS/rootfs.img");
    ext4_image(root, &rootfs, nvr, epoch, log)?;
    squashfs(&staging, out, epoch, level, log)?;
    fs::remove_dir_all(&staging)?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let a = stable_uuid("x");
        assert_eq!(a, stable_uuid("x"));
        assert_ne!(a, stable_uuid("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn ext4_images_of_one_tree_are_identical() {
        if !hvnode_testutil::require_tools(&["mkfs.ext4", "debugfs"]) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("etc/d")).unwrap();
        fs::write(tree.join("etc/a"), "a\n").unwrap();
        fs::write(tree.join("etc/d/b"), "b\n").unwrap();
        std::os::unix::fs::symlink("a", tree.join("etc/l")).unwrap();
        // Old access times, so that reading the files (mkfs does) moves them.
        crate::rootfs::set_times(&tree, 1_600_000_000, false).unwrap();
        let root = Root { path: tree };
        let log = dir.path().join("log");
        let epoch = 1_700_000_000;
        let a = dir.path().join("a.img");
        let b = dir.path().join("b.img");
        ext4_image(&root, &a, "t", epoch, &log).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        ext4_image(&root, &b, "t", epoch, &log).unwrap();
        assert!(
            fs::read(&a).unwrap() == fs::read(&b).unwrap(),
            "two ext4 images of one tree differ"
        );
    }
}
