//! What an hvnode image says about itself: `/usr/lib/hvnode/image.json`,
//! written by the image builder and read by the installer (which layer to
//! make, which kernel arguments to boot it with), by `nodectl` and by the
//! console. One type for the writer and every reader.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the image builder records the image's identity, below a root.
pub const IMAGE_IDENTITY: &str = "/usr/lib/hvnode/image.json";

/// The contents of [`IMAGE_IDENTITY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIdentity {
    pub name: String,
    pub version: String,
    pub release: String,
    /// `name-version-release`, e.g. `hvnode-1.0-0.20261125.0`.
    pub nvr: String,
    /// `SOURCE_DATE_EPOCH` of the build.
    pub build_epoch: i64,
    /// The recipe's kernel arguments; installed layers boot with them.
    /// Images built before the field existed booted with SELinux enforcing.
    #[serde(default = "default_kernel_args")]
    pub kernel_args: Vec<String>,
}

fn default_kernel_args() -> Vec<String> {
    ["security=selinux", "selinux=1", "enforcing=1"]
        .map(String::from)
        .to_vec()
}

/// The identity file could not be read or is not one.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("reading {}: {source} (is this an hvnode image?)", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not an hvnode image identity: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: the field nvr is empty", path.display())]
    EmptyNvr { path: PathBuf },
}

impl ImageIdentity {
    /// Parses the text of an identity file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, IdentityError> {
        let id: ImageIdentity =
            serde_json::from_str(text).map_err(|source| IdentityError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        if id.nvr.trim().is_empty() {
            return Err(IdentityError::EmptyNvr {
                path: path.to_path_buf(),
            });
        }
        Ok(id)
    }

    /// Reads the identity of the image whose root is `root` (`/` for the
    /// running system).
    pub fn read(root: &Path) -> Result<Self, IdentityError> {
        let path = root.join(IMAGE_IDENTITY.trim_start_matches('/'));
        let text = std::fs::read_to_string(&path).map_err(|source| IdentityError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, &path)
    }

    /// The running system's NVR, or `None` when it is not an hvnode image
    /// (a development host) or its identity is unreadable.
    pub fn running_nvr() -> Option<String> {
        Self::read(Path::new("/")).ok().map(|id| id.nvr)
    }

    /// The file's text as the builder writes it (pretty JSON, newline).
    pub fn to_file_text(&self) -> Result<String, serde_json::Error> {
        Ok(format!("{}\n", serde_json::to_string_pretty(self)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageIdentity {
        ImageIdentity {
            name: "hvnode".into(),
            version: "1.0".into(),
            release: "0.20261125.0".into(),
            nvr: "hvnode-1.0-0.20261125.0".into(),
            build_epoch: 1_764_028_800,
            kernel_args: vec!["security=selinux".into(), "console=ttyS0".into()],
        }
    }

    #[test]
    fn what_the_builder_writes_every_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("usr/lib/hvnode/image.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, sample().to_file_text().unwrap()).unwrap();
        assert_eq!(ImageIdentity::read(dir.path()).unwrap(), sample());
    }

    #[test]
    fn older_images_without_kernel_args_boot_enforcing() {
        let text = r#"{"name":"hvnode","version":"1.0","release":"1","nvr":"hvnode-1.0-1","build_epoch":0}"#;
        let id = ImageIdentity::parse(text, Path::new("image.json")).unwrap();
        assert_eq!(
            id.kernel_args,
            ["security=selinux", "selinux=1", "enforcing=1"]
        );
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let p = Path::new("/x/image.json");
        for bad in ["", "{}", r#"{"nvr": 3}"#] {
            let e = ImageIdentity::parse(bad, p).unwrap_err();
            assert!(e.to_string().contains("/x/image.json"), "{e}");
        }
        let empty = r#"{"name":"","version":"","release":"","nvr":" ","build_epoch":0}"#;
        assert!(matches!(
            ImageIdentity::parse(empty, p),
            Err(IdentityError::EmptyNvr { .. })
        ));
        let e = ImageIdentity::read(Path::new("/nonexistent-root")).unwrap_err();
        assert!(e.to_string().contains("is this an hvnode image"), "{e}");
    }
}
