//! Where a guest's boot went, read from inside once it has finished:
//! `systemd-analyze time`, `blame` and `critical-chain` as text, and
//! `systemd-analyze plot` as an SVG picture, kept beside the serial log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::io::Read;

use anyhow::{Context, Result};
use base64::Engine;

use crate::Console;

const CMD: Duration = Duration::from_secs(300);

/// The files a boot profile was written to.
#[derive(Debug, Clone)]
pub struct BootProfile {
    /// `systemd-analyze time`, `blame` (first 25 lines) and `critical-chain`.
    pub text: PathBuf,
    /// `systemd-analyze plot`.
    pub svg: PathBuf,
    /// The first line of `systemd-analyze time`: firmware, loader, kernel,
    /// initrd and userspace.
    pub summary: String,
}

/// Reads the profile of the boot at a prepared root shell (after
/// `systemctl is-system-running --wait`) into `dir/NAME.boot.txt` and
/// `dir/NAME.boot.svg`.
pub fn boot_profile(c: &mut Console, dir: &Path, name: &str) -> Result<BootProfile> {
    let time = c.check("systemd-analyze time", CMD)?;
    let blame = c.check("systemd-analyze blame --no-pager | head -n 25", CMD)?;
    let chain = c.check("systemd-analyze critical-chain --no-pager", CMD)?;
    let text = dir.join(format!("{name}.boot.txt"));
    std::fs::write(
        &text,
        format!(
            "# systemd-analyze time\n{time}\n# systemd-analyze blame (first 25)\n{blame}\n# systemd-analyze critical-chain\n{chain}"
        ),
    )
    .with_context(|| format!("writing {}", text.display()))?;
    // The picture crosses the serial console compressed and in base64.
    let b64 = c.check("systemd-analyze plot | gzip -9 | base64 -w 0; echo", CMD)?;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .context("reading systemd-analyze plot from the console (base64)")?;
    let mut svg_bytes = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut svg_bytes)
        .context("reading systemd-analyze plot from the console (gzip)")?;
    let svg = dir.join(format!("{name}.boot.svg"));
    std::fs::write(&svg, &svg_bytes).with_context(|| format!("writing {}", svg.display()))?;
    let summary = time
        .lines()
        .find(|l| l.starts_with("Startup finished"))
        .unwrap_or("")
        .trim()
        .to_string();
    Ok(BootProfile { text, svg, summary })
}
