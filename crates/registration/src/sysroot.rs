//! The root of the tree whose files registration reads and writes.

use std::path::{Path, PathBuf};

/// The node's file system root: `/` on a running node, a scratch directory in tests,
/// the target tree in an installer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysroot(PathBuf);

impl Sysroot {
    /// A sysroot at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self(root.into())
    }

    /// The directory this sysroot stands for.
    pub fn root(&self) -> &Path {
        &self.0
    }

    /// `path`, an absolute path on the node, placed under this sysroot.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        let relative = path.strip_prefix("/").unwrap_or(path);
        self.0.join(relative)
    }
}

impl Default for Sysroot {
    fn default() -> Self {
        Self::new("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_absolute_and_relative_paths_under_the_root() {
        let root = Sysroot::new("/tmp/x");
        assert_eq!(root.path("/etc/passwd"), PathBuf::from("/tmp/x/etc/passwd"));
        assert_eq!(root.path("etc/passwd"), PathBuf::from("/tmp/x/etc/passwd"));
        assert_eq!(Sysroot::default().path("/etc"), PathBuf::from("/etc"));
    }
}
