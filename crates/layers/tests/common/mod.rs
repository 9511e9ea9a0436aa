//! What the store tests share: a file system on a loop device, a small
//! image tree with owners, modes, a link and SELinux labels, and a reader
//! of those labels. Needs root and loop devices: without them a test is
//! skipped with a message, and fails in CI (`hvnode_testutil`).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // tests fail loudly

use std::path::Path;
use std::process::Command;

pub use hvnode_testutil::loopfs::{LoopFs as Fs, sh};

/// A 1 GiB file system made by `mkfs` (program and arguments, the image
/// file is appended), on a loop device, mounted; `None` (skipped, with the
/// reason; a failure in CI) without root or loop devices.
pub fn fs_on_loop(mkfs: &[&str]) -> Option<Fs> {
    Fs::new(mkfs)
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
