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

/// How often the plot is sent again when it arrives damaged.
const PLOT_TRIES: usize = 3;

/// `systemd-analyze plot`, across the serial console: gzipped, in base64
/// lines of 76 characters, with its sha256. A message of the guest's kernel
/// or of systemd can land in the middle of the text (seen once in a few
/// dozen boots): lines that are not base64 are dropped, and a plot whose
/// checksum does not match is asked for again.
fn plot(c: &mut Console) -> Result<Vec<u8>> {
    let mut last = String::new();
    for _ in 0..PLOT_TRIES {
        let out = c.check(
            "f=$(mktemp); systemd-analyze plot | gzip -9 > $f; sha256sum < $f | cut -d' ' -f1; \
             base64 -w 76 < $f; rm -f $f",
            CMD,
        )?;
        match decode_plot(&out) {
            Ok(svg) => return Ok(svg),
            Err(e) => last = format!("{e:#}"),
        }
    }
    anyhow::bail!(
        "reading systemd-analyze plot from the console: damaged {PLOT_TRIES} times, last: {last}"
    )
}

/// The SVG of [`plot`]'s output: the sha256 line, then the base64 lines.
fn decode_plot(out: &str) -> Result<Vec<u8>> {
    use sha2::Digest;
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    let want = lines
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .context("no sha256 line")?
        .to_ascii_lowercase();
    let b64: String = lines
        .filter(|l| {
            l.len() <= 76
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        })
        .collect();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .context("base64")?;
    let got = hex::encode(sha2::Sha256::digest(&gz));
    anyhow::ensure!(got == want, "sha256 {got}, sent as {want}");
    let mut svg = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut svg)
        .context("gzip")?;
    Ok(svg)
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
    let svg_bytes = plot(c)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sent(svg: &[u8]) -> (String, Vec<String>) {
        use sha2::Digest;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(svg).unwrap();
        let gz = gz.finish().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&gz);
        let lines = b64
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        (hex::encode(sha2::Sha256::digest(&gz)), lines)
    }

    #[test]
    fn a_plot_survives_a_message_between_its_lines_and_damage_is_caught() {
        let svg: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let (sum, lines) = sent(&svg);
        let mut out = format!("{sum}\n{}\n", lines.join("\n"));
        assert_eq!(decode_plot(&out).unwrap(), svg);
        // A kernel message between two lines is dropped.
        let at = out.find('\n').unwrap() + 1 + 77 * 3;
        out.insert_str(at, "[  104.4] audit: type=1400 avc:  denied\n");
        assert_eq!(decode_plot(&out).unwrap(), svg);
        // One inside a line is caught by the checksum.
        let mut broken = format!("{sum}\n{}\n", lines.join("\n"));
        broken.insert_str(sum.len() + 1 + 10, "Started");
        assert!(decode_plot(&broken).is_err());
    }
}
