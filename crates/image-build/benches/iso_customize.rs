//! `hvnode iso customize` on the image's real ISO (prints figures, asserts
//! only that reset gives the build's bytes back):
//!
//! ```text
//! make bench-iso     # HVNODE_IMAGE_DIR, default $HVNODE_CACHE/out
//! ```
//!
//! Every option at once (a shipped kickstart, kernel arguments, the menu,
//! a trusted key, an engine), three times; then `show` and `reset`, and
//! the sha256 of the reset ISO against the build's. The copies go to a
//! temporary folder. An ISO built before the customisation areas existed
//! is named as such, and nothing is timed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image_build::customize::{self, Changes};
use iso_custom::MenuEntry;
use sha2::{Digest, Sha256};

/// A minisign public key (minisign's own release key).
const PUBLIC_KEY: &str = "untrusted comment: minisign public key\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n";

fn image_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HVNODE_IMAGE_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("HVNODE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/hvnode")
        });
    cache.join("out")
}

fn sha256(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn main() -> Result<()> {
    let dir = image_dir();
    let iso = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "reading {} (make image, or set HVNODE_IMAGE_DIR)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "iso"))
        .with_context(|| {
            format!(
                "no *.iso in {} (make image, or set HVNODE_IMAGE_DIR)",
                dir.display()
            )
        })?;
    let size = std::fs::metadata(&iso)?.len();
    println!("ISO {} ({:.0} MB)", iso.display(), size as f64 / 1e6);
    if let Err(e) = customize::read(&iso) {
        if format!("{e:#}").contains("no customisation areas") {
            println!(
                "this ISO was built before `hvnode iso customize` existed: it has no customisation areas, so there is nothing to time. Build the image again from this tree (make image), then run make bench-iso again"
            );
            return Ok(());
        }
        return Err(e);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = tempfile::tempdir()?;
    let key = work.path().join("site.pub");
    std::fs::write(&key, PUBLIC_KEY)?;
    let changes = Changes {
        kickstart: Some(repo.join("kickstart/pxe-thinp-autopart.ks")),
        kargs_append: vec!["inst.sshd".into()],
        kargs_delete: vec!["console=tty0".into()],
        default_entry: Some(MenuEntry::Install),
        timeout: Some(3),
        trust_keys: vec![key],
        engine: Some("engine.example.com".into()),
        engine_fingerprint: Some(
            "SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        ),
    };
    let out = work.path().join("custom.iso");
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        customize::customize(&iso, &out, &changes)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "customize: {:.2} s, median of 3 ({:.2}–{:.2} s), {:.0} MB/s (a copy by copy_file_range into {}, then two areas written)",
        times[1],
        times[0],
        times[2],
        size as f64 / 1e6 / times[1],
        work.path().display(),
    );
    let t = Instant::now();
    let state = customize::read(&out)?;
    println!("show: {:.3} s", t.elapsed().as_secs_f64());
    if state.customization.kickstart.is_none() {
        bail!("the customised ISO shows no kickstart");
    }
    let back = work.path().join("reset.iso");
    let t = Instant::now();
    customize::reset(&out, &back)?;
    println!("reset: {:.2} s", t.elapsed().as_secs_f64());
    let (a, b) = (sha256(&iso)?, sha256(&back)?);
    println!("sha256 as built {a}\nsha256 reset    {b}");
    if a != b {
        bail!("reset did not give the build's bytes back");
    }
    println!("reset(customize(iso)) has the build's bytes");
    Ok(())
}
