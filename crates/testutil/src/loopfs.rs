//! A file system on a loop device for the store tests (layers, update):
//! a 1 GiB image file, made by the test's `mkfs`, attached and mounted
//! under a temporary folder; unmounted and detached when dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support fails loudly

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs `cmd`; panics with its stderr when it fails. Its stdout.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A file system on a loop device, mounted at [`LoopFs::top`]; whatever
/// is mounted below its folder is unmounted, and the device freed, on drop.
#[derive(Debug)]
pub struct LoopFs {
    pub dir: tempfile::TempDir,
    pub loopdev: PathBuf,
}

impl LoopFs {
    /// A 1 GiB file system made by `mkfs` (program and arguments; the
    /// image file is appended); `None` (skipped with the reason, a failure
    /// in CI) without root, loop devices or the program.
    pub fn new(mkfs: &[&str]) -> Option<LoopFs> {
        LoopFs::with_size(mkfs, 1 << 30)
    }

    /// Like [`LoopFs::new`], `bytes` large.
    pub fn with_size(mkfs: &[&str], bytes: u64) -> Option<LoopFs> {
        if !(crate::require_root()
            && crate::require_tools(&[mkfs[0], "losetup"])
            && (Path::new("/dev/loop-control").exists()
                || crate::skip("no loop devices: /dev/loop-control is missing")))
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img).unwrap().set_len(bytes).unwrap();
        sh(Command::new(mkfs[0]).args(&mkfs[1..]).arg(&img));
        let loopdev = attach(&img);
        let top = dir.path().join("top");
        std::fs::create_dir_all(&top).unwrap();
        sh(Command::new("mount").arg(&loopdev).arg(&top));
        Some(LoopFs { dir, loopdev })
    }

    /// Where the file system is mounted.
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

/// Attaches `img` to a free loop device. Tests (and image builds) that
/// run side by side may be handed the same free device, and the slower
/// one is then refused: it asks again.
fn attach(img: &Path) -> PathBuf {
    let mut last = String::new();
    for attempt in 0..5u64 {
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(img)
            .output()
            .unwrap();
        if out.status.success() {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(200 * (attempt + 1)));
    }
    panic!("losetup --find --show {}: {last}", img.display());
}

/// Whether `path` is a mount point (listed in this process's mountinfo).
fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m == want)
}

/// Unmounts `path` and what is below it. A busy file system (a program a
/// test started still closing its files) is tried again for a few
/// seconds, then detached lazily: a test never leaves a mount behind.
fn unmount(path: &Path) {
    for attempt in 0..10u64 {
        if !is_mounted(path) {
            return;
        }
        let _ = Command::new("umount").arg("-R").arg(path).output();
        if !is_mounted(path) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
    }
    let _ = Command::new("umount").args(["-R", "-l"]).arg(path).output();
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // A layer a test mounted at `layer`, then the file system.
        for m in ["layer", "top"] {
            unmount(&self.dir.path().join(m));
        }
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.loopdev)
            .output();
    }
}
