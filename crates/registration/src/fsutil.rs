//! Small file helpers: atomic replacement and reading with context.

use std::fs;
use std::io::ErrorKind as IoKind;
use std::path::Path;

use crate::{Error, Result};

/// Reads `path` as UTF-8 text; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

/// Creates `dir` and its parents.
pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))
}

/// Replaces `path` with `contents` durably, with `mode` and optionally
/// `owner` (uid, gid), through the workspace's one [`fsutil::write_atomic`].
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let opts = fsutil::Options {
        mode,
        owner,
        create_parents: true,
    };
    fsutil::write_atomic(path, contents, opts).map_err(|e| Error::io(e.step, &e.path, e.source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_creates_parents_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file.json");
        write_atomic(&path, b"one", 0o600, None).unwrap();
        write_atomic(&path, b"two", 0o640, None).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        assert_eq!(read_optional(&dir.path().join("missing")).unwrap(), None);
    }
}
