//! The node image to install (`liveimg --url=…`): fetched (http, https,
//! file), its sha256 verified before anything is written to a disk, then
//! opened: a squashfs holding `LiveOS/rootfs.img` (the live layout the image
//! builder makes), whose ext4 file system becomes the layer store's base.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use kickstart::node::ImageSource;
use sha2::{Digest, Sha256};

use crate::source::LIVE_MEDIUM;

/// The image file on the live medium.
pub fn medium_image() -> PathBuf {
    Path::new(LIVE_MEDIUM).join("LiveOS/squashfs.img")
}

/// Copies `from` to `to` (when given) while hashing it; reports progress
/// through `progress` (bytes done, total if known).
pub fn hash_stream(
    mut from: impl Read,
    mut to: Option<&mut dyn Write>,
    total: Option<u64>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let mut last = Instant::now();
    loop {
        let n = from.read(&mut buf).context("reading the image")?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(w) = to.as_deref_mut() {
            w.write_all(&buf[..n]).context("storing the image")?;
        }
        done += n as u64;
        if last.elapsed().as_secs() >= 5 {
            progress(done, total);
            last = Instant::now();
        }
    }
    progress(done, total);
    Ok(hex::encode(h.finalize()))
}

/// A local copy of the image, verified.
#[derive(Debug)]
pub struct Verified {
    pub path: PathBuf,
    pub sha256: String,
}

fn agent(proxy: Option<&str>, noverifyssl: bool) -> Result<ureq::Agent> {
    let mut cfg = ureq::Agent::config_builder();
    if let Some(p) = proxy {
        cfg = cfg
            .proxy(Some(ureq::Proxy::new(p).with_context(|| {
                format!("liveimg --proxy={p} is not a proxy URL")
            })?));
    }
    if noverifyssl {
        cfg = cfg.tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        );
    }
    Ok(cfg.build().into())
}

/// Fetches the image to `work` (unless it is a local file) and checks its
/// sha256 against the kickstart's. Nothing is written to any disk here.
pub fn fetch_and_verify(
    src: &ImageSource,
    work: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Verified> {
    let (url, checksum, proxy, noverifyssl) = match src {
        ImageSource::Url {
            url,
            checksum,
            proxy,
            noverifyssl,
        } => (url.clone(), checksum.clone(), proxy.clone(), *noverifyssl),
        ImageSource::InstallMedium => (
            format!("file://{}", medium_image().display()),
            None,
            None,
            false,
        ),
    };
    let (path, sha256) = if let Some(p) = url.strip_prefix("file://") {
        let path = PathBuf::from(p);
        let f = File::open(&path)
            .with_context(|| format!("opening the image {} (liveimg --url)", path.display()))?;
        let total = f.metadata().ok().map(|m| m.len());
        let sum = hash_stream(f, None, total, progress)?;
        (path, sum)
    } else if url.starts_with("http://") || url.starts_with("https://") {
        std::fs::create_dir_all(work)?;
        let path = work.join("image.squashfs.img");
        let mut resp = agent(proxy.as_deref(), noverifyssl)?
            .get(&url)
            .call()
            .with_context(|| format!("fetching the image {url}: is the server reachable?"))?;
        let total = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mut out =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let sum = hash_stream(reader, Some(&mut out), total, progress)
            .with_context(|| format!("downloading {url}"))?;
        out.sync_all()?;
        (path, sum)
    } else {
        bail!("liveimg --url={url}: only http://, https:// and file:// are supported");
    };
    if let Some(want) = checksum {
        let want = want.trim().to_ascii_lowercase();
        let want = want.strip_prefix("sha256:").unwrap_or(&want);
        if want != sha256 {
            bail!(
                "the image {url} has sha256 {sha256}, but the kickstart's liveimg --checksum says {want}: wrong or damaged image; nothing was written to any disk"
            );
        }
    }
    Ok(Verified { path, sha256 })
}

/// The image opened: the squashfs and the root file system inside it
/// mounted read-only. Unmounted on drop.
#[derive(Debug)]
pub struct Opened {
    pub squash: PathBuf,
    /// `LiveOS/rootfs.img` inside the squashfs.
    pub rootfs_img: PathBuf,
    /// Its file system, mounted read-only.
    pub tree: PathBuf,
    loop_dev: Option<PathBuf>,
}

impl Opened {
    pub fn open(image: &Path, work: &Path) -> Result<Opened> {
        let squash = work.join("squashfs");
        let tree = work.join("image");
        std::fs::create_dir_all(&squash)?;
        std::fs::create_dir_all(&tree)?;
        Command::new("mount")
            .args(["-t", "squashfs", "-o", "ro,loop"])
            .arg(image)
            .arg(&squash)
            .run()
            .with_context(|| {
                format!("opening the image {} (is it a squashfs?)", image.display())
            })?;
        let rootfs_img = squash.join("LiveOS/rootfs.img");
        let mut opened = Opened {
            squash,
            rootfs_img: rootfs_img.clone(),
            tree: tree.clone(),
            loop_dev: None,
        };
        if !rootfs_img.is_file() {
            bail!(
                "{} has no LiveOS/rootfs.img: not an hvnode image",
                image.display()
            );
        }
        // A loop device of our own: mount -o loop would reuse the live
        // system's (the same file when installing from the boot medium),
        // which the live root's device-mapper snapshot holds.
        let dev = Command::new("losetup")
            .args(["--find", "--show", "--read-only"])
            .arg(&rootfs_img)
            .run_capture()
            .with_context(|| format!("attaching {} to a loop device", rootfs_img.display()))?;
        opened.loop_dev = Some(PathBuf::from(dev.trim()));
        Command::new("mount")
            .args(["-t", "ext4", "-o", "ro,noload"])
            .arg(dev.trim())
            .arg(&tree)
            .run()
            .with_context(|| format!("opening {}", rootfs_img.display()))?;
        Ok(opened)
    }

    /// The image's NVR and kernel arguments (`/usr/lib/hvnode/image.json`).
    pub fn identity(&self) -> Result<(layers::Nvr, Vec<String>)> {
        let id = hostinfo::ImageIdentity::read(&self.tree)?;
        let nvr = id
            .nvr
            .parse()
            .with_context(|| format!("the image names a bad NVR {:?}", id.nvr))?;
        Ok((nvr, id.kernel_args))
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.tree).run();
        if let Some(d) = &self.loop_dev {
            let _ = Command::new("losetup").arg("-d").arg(d).run();
        }
        let _ = Command::new("umount").arg(&self.squash).run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checksum_mismatch_stops_before_any_write() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("img");
        std::fs::write(&img, b"not the image").unwrap();
        let src = ImageSource::Url {
            url: format!("file://{}", img.display()),
            checksum: Some("00".repeat(32)),
            proxy: None,
            noverifyssl: false,
        };
        let e = fetch_and_verify(&src, d.path(), &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--checksum") && e.contains("nothing was written"),
            "{e}"
        );
        let good = ImageSource::Url {
            url: format!("file://{}", img.display()),
            checksum: Some(format!(
                "sha256:{}",
                hex::encode(Sha256::digest(b"not the image"))
            )),
            proxy: None,
            noverifyssl: false,
        };
        let v = fetch_and_verify(&good, d.path(), &mut |_, _| {}).unwrap();
        assert_eq!(v.path, img);
    }

    #[test]
    fn hashing_copies_and_reports() {
        let data = vec![7u8; 3 << 20];
        let mut out = Vec::new();
        let mut seen = 0;
        let sum = hash_stream(
            &data[..],
            Some(&mut out),
            Some(data.len() as u64),
            &mut |d, _| seen = d,
        )
        .unwrap();
        assert_eq!(out, data);
        assert_eq!(seen, 3 << 20);
        assert_eq!(sum, hex::encode(Sha256::digest(&data)));
    }
}
