//! The built node image the VM tests boot: the output folder of
//! `hvnode build` (`HVNODE_IMAGE_DIR`, set by `tests/run-tests.sh`).

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

    /// The image named by `HVNODE_IMAGE_DIR`; `None` (and a message) when
    /// it is not set, unless `HVNODE_REQUIRE_IMAGE=1` (CI), then an error.
    pub fn from_env() -> Result<Option<Image>> {
        let Some(dir) = std::env::var_os("HVNODE_IMAGE_DIR").map(PathBuf::from) else {
            if std::env::var("HVNODE_REQUIRE_IMAGE").as_deref() == Ok("1") {
                bail!(
                    "HVNODE_IMAGE_DIR is not set: build the image first (tests/run-tests.sh does)"
                );
            }
            eprintln!("SKIPPED: HVNODE_IMAGE_DIR not set (build the image with `make image`)");
            return Ok(None);
        };
        Image::open(&dir).map(Some)
    }

    /// The PXE tree (`pxe/`: vmlinuz, initrd.img, squashfs.img, boot files).
    pub fn pxe(&self) -> PathBuf {
        self.dir.join("pxe")
    }
}

/// A folder for a test's logs and disks: `rel` under `base` (a test's
/// `CARGO_TARGET_TMPDIR`), created.
pub fn work_dir(base: &Path, rel: &str) -> Result<PathBuf> {
    let d = base.join(rel);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// Where a guest's serial console is logged.
pub fn serial_log(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.serial.log"))
}
