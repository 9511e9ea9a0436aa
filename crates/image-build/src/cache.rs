//! The content-addressed stage cache: a stage's output is stored under the
//! sha256 of everything that went into it, so an unchanged input reuses it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Builds a cache key from named inputs.
#[derive(Debug, Default, Clone)]
pub struct Key(Sha256);

impl Key {
    pub fn new(stage: &str) -> Self {
        let mut k = Key(Sha256::new());
        k.add("stage", stage.as_bytes());
        k
    }

    /// Adds one named input; names keep `a`+`bc` apart from `ab`+`c`.
    pub fn add(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
        self
    }

    pub fn add_json<T: serde::Serialize>(&mut self, name: &str, value: &T) -> &mut Self {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.add(name, &bytes)
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0.clone().finalize())
    }
}

/// The stage cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    /// Entries kept per stage; older ones are removed.
    keep: usize,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache {
            dir: dir.into(),
            keep: 2,
        }
    }

    fn path(&self, stage: &str, key: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{stage}-{key}.{ext}"))
    }

    /// The cached output of `stage` for `key`, if present.
    pub fn get(&self, stage: &str, key: &str, ext: &str) -> Option<PathBuf> {
        let p = self.path(stage, key, ext);
        p.is_file().then_some(p)
    }

    /// Where to write a new entry: a temporary name in the cache directory
    /// (same file system, so [`Cache::commit`] is an atomic rename).
    pub fn staging(&self, stage: &str, key: &str, ext: &str) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        Ok(self.dir.join(format!(".{stage}-{key}.{ext}.partial")))
    }

    /// Moves a finished staging file into place and trims old entries.
    pub fn commit(&self, staged: &Path, stage: &str, key: &str, ext: &str) -> io::Result<PathBuf> {
        let dest = self.path(stage, key, ext);
        fs::rename(staged, &dest)?;
        self.trim(stage, &dest)?;
        Ok(dest)
    }

    fn trim(&self, stage: &str, keep_this: &Path) -> io::Result<()> {
        let prefix = format!("{stage}-");
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        entries.sort();
        let excess = entries.len().saturating_sub(self.keep);
        for (_, p) in entries.into_iter().take(excess) {
            if p != keep_this {
                fs::remove_file(p)?;
            }
        }
        Ok(())
    }
}

/// sha256 of a file, hex.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Adds every file under `dir` (path, mode, content) to `key`, in a stable order.
pub fn add_tree(key: &mut Key, name: &str, dir: &Path) -> io::Result<()> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    for f in files {
        let rel = f
            .strip_prefix(dir)
            .unwrap_or(&f)
            .to_string_lossy()
            .to_string();
        let meta = fs::symlink_metadata(&f)?;
        let content = if meta.file_type().is_symlink() {
            fs::read_link(&f)?.to_string_lossy().as_bytes().to_vec()
        } else {
            fs::read(&f)?
        };
        use std::os::unix::fs::PermissionsExt;
        key.add(
            &format!("{name}:{rel}:{:o}", meta.permissions().mode()),
            &content,
        );
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for e in fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else {
            out.push(e.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_names_and_values() {
        let k = |pairs: &[(&str, &str)]| {
            let mut k = Key::new("s");
            for (n, v) in pairs {
                k.add(n, v.as_bytes());
            }
            k.hex()
        };
        assert_eq!(k(&[("a", "1")]), k(&[("a", "1")]));
        assert_ne!(k(&[("a", "1")]), k(&[("a", "2")]));
        assert_ne!(k(&[("a", "bc")]), k(&[("ab", "c")]));
    }

    #[test]
    fn entries_are_committed_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path());
        for key in ["k1", "k2", "k3"] {
            assert!(c.get("boot", key, "tar").is_none());
            let s = c.staging("boot", key, "tar").unwrap();
            fs::write(&s, key).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            let p = c.commit(&s, "boot", key, "tar").unwrap();
            assert_eq!(c.get("boot", key, "tar"), Some(p));
        }
        assert!(c.get("boot", "k1", "tar").is_none(), "oldest entry trimmed");
        assert!(c.get("boot", "k3", "tar").is_some());
    }
}
