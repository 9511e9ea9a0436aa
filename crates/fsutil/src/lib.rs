//! One way to replace a file on a node: [`write_atomic`].
//!
//! A node loses power: `/boot/grub/grubenv`, the registration state, a
//! manifest must then hold either the old bytes or the new ones, never a
//! mix and never nothing. The file is written under a temporary name in the
//! same directory, given its mode (and owner), flushed to disk, renamed over
//! the target, and the directory is flushed so that the rename itself
//! survives. Every caller of the workspace goes through here.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A step of [`write_atomic`] failed; the target is untouched (unless the
/// failing step was the directory's flush, after the rename).
#[derive(Debug, thiserror::Error)]
#[error("{step} {}: {source}", path.display())]
pub struct Error {
    /// What was being done ("creating", "writing", "renaming into place"…).
    pub step: &'static str,
    /// The file or directory it was done to.
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// How the new file is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Permission bits of the new file.
    pub mode: u32,
    /// Owner and group of the new file; the writer's when `None`.
    pub owner: Option<(u32, u32)>,
    /// Create the parent directories when they are missing.
    pub create_parents: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: 0o644,
            owner: None,
            create_parents: true,
        }
    }
}

impl Options {
    /// Default options with another mode.
    pub fn mode(mode: u32) -> Self {
        Options {
            mode,
            ..Options::default()
        }
    }
}

/// Replaces `path` with `data` durably (see the module documentation).
pub fn write_atomic(path: &Path, data: &[u8], opts: Options) -> Result<(), Error> {
    let err = |step: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| Error { step, path, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if opts.create_parents {
        fs::create_dir_all(dir).map_err(err("creating directory", dir))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.partial{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(opts.mode)
            .open(&tmp)
            .map_err(err("creating", &tmp))?;
        file.write_all(data).map_err(err("writing", &tmp))?;
        // The umask may have narrowed the mode given at creation.
        file.set_permissions(fs::Permissions::from_mode(opts.mode))
            .map_err(err("setting the mode of", &tmp))?;
        if let Some((uid, gid)) = opts.owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                .map_err(err("changing the owner of", &tmp))?;
        }
        file.sync_all().map_err(err("flushing", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(err("renaming into place", path))
    })();
    if result.is_err() {
        // Never leave the temporary file behind.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err("flushing directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_parents_sets_mode_replaces_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file.json");
        write_atomic(&path, b"one", Options::mode(0o600)).unwrap();
        write_atomic(&path, b"two", Options::mode(0o640)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.json"], "no temporary file is left behind");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_names_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"old", Options::default()).unwrap();
        let opts = Options {
            create_parents: false,
            ..Options::default()
        };
        let missing = dir.path().join("no/such/dir/f");
        let e = write_atomic(&missing, b"new", opts).unwrap_err();
        assert_eq!(e.step, "creating");
        assert!(e.to_string().contains("no/such/dir"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
    }
}
