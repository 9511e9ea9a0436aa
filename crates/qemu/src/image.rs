//! A built node image: the output folder of `hvnode build`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// One built image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The output folder (manifest.json, SHA256SUMS, the ISO, pxe/).
    pub dir: PathBuf,
    pub iso: PathBuf,
    /// Name-version-release, e.g. `hvnode-1.0-0.20261125.0`.
    pub nvr: String,
    /// sha256 of the squashfs root image (what `liveimg --checksum` names).
    pub squashfs_sha256: String,
}

impl Image {
    /// Reads the image in `dir`.
    pub fn open(dir: &Path) -> Result<Image> {
        let manifest_path = dir.join("manifest.json");
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?,
        )
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
        let Some(nvr) = manifest["nvr"].as_str().map(String::from) else {
            bail!("{}: no \"nvr\"", manifest_path.display());
        };
        let sums_path = dir.join("SHA256SUMS");
        let sums = std::fs::read_to_string(&sums_path)
            .with_context(|| format!("reading {}", sums_path.display()))?;
        let squashfs = format!("{nvr}.squashfs.img");
        let Some(squashfs_sha256) = sums
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(&squashfs))
            .and_then(|l| l.split_whitespace().next())
            .map(String::from)
        else {
            bail!("{}: no line for {squashfs}", sums_path.display());
        };
        let iso = dir.join(format!("{nvr}.iso"));
        if !iso.is_file() {
            bail!("{} is missing: rebuild the image", iso.display());
        }
        Ok(Image {
            dir: dir.to_path_buf(),
            iso,
            nvr,
            squashfs_sha256,
        })
    }

    /// The PXE tree (`pxe/`: vmlinuz, initrd.img, squashfs.img, boot files).
    pub fn pxe(&self) -> PathBuf {
        self.dir.join("pxe")
    }
}
