//! The built node image the VM tests boot (`HVNODE_IMAGE_DIR`, set by
//! `tests/run-tests.sh`), and folders for their logs and disks.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use qemu::serial_log;

use crate::Image;

/// The image named by `HVNODE_IMAGE_DIR`; `None` (and a message) when it is
/// not set, unless `HVNODE_REQUIRE_IMAGE=1` (CI), then an error.
pub fn from_env() -> Result<Option<Image>> {
    let Some(dir) = std::env::var_os("HVNODE_IMAGE_DIR").map(PathBuf::from) else {
        if std::env::var("HVNODE_REQUIRE_IMAGE").as_deref() == Ok("1") {
            bail!("HVNODE_IMAGE_DIR is not set: build the image first (tests/run-tests.sh does)");
        }
        eprintln!("SKIPPED: HVNODE_IMAGE_DIR not set (build the image with `make image`)");
        return Ok(None);
    };
    Image::open(&dir).map(Some)
}

/// A folder for a test's logs and disks: `rel` under `base` (a test's
/// `CARGO_TARGET_TMPDIR`), created.
pub fn work_dir(base: &Path, rel: &str) -> Result<PathBuf> {
    let d = base.join(rel);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}
