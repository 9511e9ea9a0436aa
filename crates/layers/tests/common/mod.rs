//! What the store tests share: a file system on a loop device, a small
//! image tree with owners, modes, a link and SELinux labels, and a reader
//! of those labels. Needs root and loop devices: without them a test is
//! skipped with a message, and fails in CI (`hvnode_testutil`).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A file system on a loop device, mounted at `top()`; a layer may be
/// mounted at `dir/layer`. Both are unmounted and the loop device freed
/// when it is dropped.
pub struct Fs {
    pub dir: tempfile::TempDir,
    pub loopdev: PathBuf,
}

impl Fs {
    pub fn top(&self) -> PathBuf {
        self.dir.path().join("top")
    }

    /// KiB in use on the file system (after a sync).
    pub fn used_kib(&self) -> u64 {
        sh(&mut Command::new("sync"));
        let out = sh(Command::new("df")
            .args(["--output=used", "-k"])
            .arg(self.top()));
        out.lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        for m in ["layer", "top"] {
            let _ = Command::new("umount")
                .arg("-R")
                .arg(self.dir.path().join(m))
                .output();
        }
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.loopdev)
            .output();
    }
}

/// A 1 GiB file system made by `mkfs` (program and arguments, the image
/// file is appended), on a loop device, mounted; `None` (skipped, with the
/// reason; a failure in CI) without root or loop devices.
pub fn fs_on_loop(mkfs: &[&str]) -> Option<Fs> {
    if !(hvnode_testutil::require_root()
        && (Path::new("/dev/loop-control").exists()
            || hvnode_testutil::skip("no loop devices: /dev/loop-control is missing")))
    {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    sh(Command::new(mkfs[0]).args(&mkfs[1..]).arg(&img));
    let loopdev =
        PathBuf::from(sh(Command::new("losetup").args(["--find", "--show"]).arg(&img)).trim());
    let top = dir.path().join("top");
    std::fs::create_dir_all(&top).unwrap();
    sh(Command::new("mount").arg(&loopdev).arg(&top));
    Some(Fs { dir, loopdev })
}

/// A small image tree: a setuid file owned by another user, a symlink,
/// and SELinux labels as xattrs.
pub fn image_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
    // chown clears the setuid bit: owner first, then mode.
    std::os::unix::fs::chown(root.join("usr/bin/tool"), Some(0), Some(7)).unwrap();
    std::fs::set_permissions(
        root.join("usr/bin/tool"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::os::unix::fs::symlink("../usr/bin/tool", root.join("etc/tool")).unwrap();
    std::fs::write(root.join("etc/hostname"), b"image\n").unwrap();
    for (path, label) in [
        ("usr/bin/tool", "system_u:object_r:bin_t:s0"),
        ("etc/hostname", "system_u:object_r:etc_t:s0"),
    ] {
        sh(Command::new("setfattr")
            .args(["-n", "security.selinux", "-v", label])
            .arg(root.join(path)));
    }
}

/// The SELinux label a file carries in its xattrs.
pub fn label(path: &Path) -> String {
    sh(Command::new("getfattr")
        .args(["--only-values", "-n", "security.selinux"])
        .arg(path))
    .trim_end_matches('\0')
    .to_string()
}
