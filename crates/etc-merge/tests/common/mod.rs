//! Three `/etc` trees and an output in a temporary directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use etc_merge::{MergeError, MergeReport};

pub struct Trees {
    _tmp: tempfile::TempDir,
    pub old: PathBuf,
    pub current: PathBuf,
    pub new: PathBuf,
    pub out: PathBuf,
}

impl Trees {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let [old, current, new] = ["old", "current", "new"].map(|n| {
            let p = tmp.path().join(n);
            fs::create_dir(&p).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            p
        });
        let out = tmp.path().join("out");
        Trees {
            _tmp: tmp,
            old,
            current,
            new,
            out,
        }
    }

    pub fn inputs(&self) -> [&Path; 3] {
        [&self.old, &self.current, &self.new]
    }

    /// The same file in all three trees.
    pub fn everywhere(&self, rel: &str, content: &str, mode: u32) {
        for root in self.inputs() {
            write(&root.join(rel), content, mode);
        }
    }

    pub fn merge(&self) -> Result<MergeReport, MergeError> {
        etc_merge::merge(&self.old, &self.current, &self.new, &self.out)
    }

    pub fn out(&self, rel: &str) -> PathBuf {
        self.out.join(rel)
    }
}

pub fn write(path: &Path, content: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn symlink(target: &str, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

pub fn owner(path: &Path) -> (u32, u32) {
    let md = fs::symlink_metadata(path).unwrap();
    (md.uid(), md.gid())
}

pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Sets an xattr; false when this filesystem or user cannot.
pub fn try_set_xattr(path: &Path, name: &str, value: &str) -> bool {
    xattr::set(path, name, value.as_bytes()).is_ok()
}

pub fn get_xattr(path: &Path, name: &str) -> Option<String> {
    xattr::get(path, name)
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

/// True when files can be given to other owners (root).
pub fn can_chown() -> bool {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::os::unix::fs::chown(tmp.path(), Some(1), Some(1)).is_ok()
}
