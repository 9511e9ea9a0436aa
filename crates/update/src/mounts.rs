//! Mounts an update makes for itself (the image, the new layer, an old LVM
//! base), taken down newest first. The work folder that holds their mount
//! points is removed only when every one came down: removing a folder with
//! a file system still mounted in it would delete what that file system
//! holds.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;

/// A stack of mounts (and loop devices) to take down.
#[derive(Debug, Default)]
pub struct Mounts {
    stack: Vec<Mounted>,
}

#[derive(Debug)]
enum Mounted {
    At(PathBuf),
    Loop(PathBuf),
    /// A command run on the way down (e.g. deactivating a volume).
    Then(Vec<String>),
}

impl Mounts {
    /// `mount ARGS… SOURCE AT`, remembered.
    pub fn mount(&mut self, args: &[&str], source: &Path, at: &Path) -> Result<()> {
        std::fs::create_dir_all(at).with_context(|| format!("creating {}", at.display()))?;
        Command::new("mount")
            .args(args)
            .arg(source)
            .arg(at)
            .run()
            .with_context(|| format!("mounting {} at {}", source.display(), at.display()))?;
        self.stack.push(Mounted::At(at.to_path_buf()));
        Ok(())
    }

    /// Remembers a mount made by someone else (`Store::mount_layer`).
    pub fn adopt(&mut self, at: &Path) {
        self.stack.push(Mounted::At(at.to_path_buf()));
    }

    /// Attaches `file` read-only to a loop device, remembered.
    pub fn attach_loop(&mut self, file: &Path) -> Result<PathBuf> {
        let dev = Command::new("losetup")
            .args(["--find", "--show", "--read-only"])
            .arg(file)
            .run_capture()
            .with_context(|| format!("attaching {} to a loop device", file.display()))?;
        let dev = PathBuf::from(dev.trim());
        self.stack.push(Mounted::Loop(dev.clone()));
        Ok(dev)
    }

    /// Runs `argv` when the mounts are taken down (at this point of the
    /// stack).
    pub fn then(&mut self, argv: Vec<String>) {
        self.stack.push(Mounted::Then(argv));
    }

    /// Takes one mount down early (it must be the newest of `at`).
    pub fn unmount(&mut self, at: &Path) -> Result<()> {
        if let Some(i) = self
            .stack
            .iter()
            .rposition(|m| matches!(m, Mounted::At(p) if p == at))
        {
            Command::new("umount")
                .arg(at)
                .run()
                .with_context(|| format!("unmounting {}", at.display()))?;
            self.stack.remove(i);
        }
        Ok(())
    }

    /// Takes everything down, newest first; returns what failed.
    pub fn unmount_all(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        while let Some(m) = self.stack.pop() {
            let r = match &m {
                Mounted::At(p) => Command::new("umount").arg(p).run().map_err(|e| {
                    // Busy: detach it, so it goes once its users do.
                    let _ = Command::new("umount").arg("-l").arg(p).run();
                    format!("unmounting {}: {e}", p.display())
                }),
                Mounted::Loop(d) => Command::new("losetup")
                    .arg("-d")
                    .arg(d)
                    .run()
                    .map_err(|e| format!("detaching {}: {e}", d.display())),
                Mounted::Then(argv) => match argv.split_first() {
                    Some((prog, args)) => Command::new(prog)
                        .args(args)
                        .run()
                        .map_err(|e| format!("{}: {e}", argv.join(" "))),
                    None => Ok(()),
                },
            };
            if let Err(e) = r {
                failed.push(e);
            }
        }
        failed
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        let _ = self.unmount_all();
    }
}

/// The mount points at or below `path` (`/proc/self/mountinfo`).
pub fn mounted_under(path: &Path) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(mount_points(&text)
        .into_iter()
        .filter(|m| m.starts_with(path))
        .collect())
}

/// The mount points in mountinfo text (field 5, with `\040`-style escapes
/// decoded).
fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(b) => out.push(char::from(b)),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Removes the work folders (`.update-*`) an interrupted update left in
/// `scratch`, unless something is still mounted in one (then it is kept,
/// and named). Returns what was removed and what was kept.
pub fn clean_stale(scratch: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut removed, mut kept) = (Vec::new(), Vec::new());
    let entries = match std::fs::read_dir(scratch) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((removed, kept)),
        Err(e) => return Err(e).with_context(|| format!("listing {}", scratch.display())),
    };
    for e in entries {
        let e = e.with_context(|| format!("listing {}", scratch.display()))?;
        let path = e.path();
        let stale = e.file_name().to_string_lossy().starts_with(".update-")
            && e.file_type().is_ok_and(|t| t.is_dir());
        if !stale {
            continue;
        }
        if mounted_under(&path)?.is_empty() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing the stale work folder {}", path.display()))?;
            removed.push(path);
        } else {
            kept.push(path);
        }
    }
    Ok((removed, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_with_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n\
                    37 35 98:0 / / rw - ext4 /dev/sda1 rw\n";
        assert_eq!(
            mount_points(text),
            [PathBuf::from("/mnt/a b"), PathBuf::from("/")]
        );
    }

    #[test]
    fn stale_work_folders_go_unless_something_is_mounted_there() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(".update-abc");
        std::fs::create_dir_all(stale.join("bundle")).unwrap();
        std::fs::write(stale.join("bundle/x"), b"x").unwrap();
        std::fs::create_dir(d.path().join("other")).unwrap();
        let (removed, kept) = clean_stale(d.path()).unwrap();
        assert_eq!(removed, [stale]);
        assert!(kept.is_empty());
        assert!(d.path().join("other").exists());
        assert_eq!(clean_stale(&d.path().join("missing")).unwrap().0.len(), 0);
    }
}
