//! The node image to install (`liveimg --url=…`, else the live medium's
//! own `LiveOS/squashfs.img`): verified before anything is written to a
//! disk, then opened: a squashfs holding `LiveOS/rootfs.img` (the live
//! layout the image builder makes), whose ext4 file system becomes the
//! layer store's base.
//!
//! What verifies an image, all checked in the one read that copies or
//! hashes it:
//!
//! - its minisign signature, `IMAGE.minisig` beside it (`URL.minisig` over
//!   http and https), made by one of the live system's trusted keys
//!   (`/etc/hvnode/trusted.d/*.pub`, the keys update bundles are checked
//!   with), in the format `minisign -S` and the build write;
//! - the kickstart's `liveimg --checksum` (sha256);
//! - the kernel argument `hvnode.image_sha256=` (sha256) of the image the
//!   live system booted: the medium's `LiveOS/squashfs.img`, or the
//!   `root=live:` URL;
//! - being the file the running live system was booted from (the
//!   installer runs from it: it is trusted as what booted).
//!
//! An image that none of these verifies is refused before it is read,
//! unless the kickstart opts in with `%addon org_hvnode_image
//! --allow-unverified` (installed with a warning). A signature that is
//! there is always checked, and one that does not match stops the install
//! whatever else verifies the image.

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bundle::{Signature, SignatureCheck, TrustedKey, TrustedKeys};
use command::CommandExt;
use kickstart::addon::IMAGE_ADDON;
use kickstart::node::ImageSource;
use sha2::{Digest, Sha256};

use crate::source::LIVE_MEDIUM;

/// The kernel argument naming the sha256 of the image the live system
/// booted (`hvnode.image_sha256=HEX`).
pub const IMAGE_SHA256_ARG: &str = "hvnode.image_sha256";
/// The largest signature file read (a minisign signature is ~300 bytes).
const SIGNATURE_MAX: u64 = 64 << 10;

/// The image file on the live medium.
pub fn medium_image() -> PathBuf {
    Path::new(LIVE_MEDIUM).join("LiveOS/squashfs.img")
}

/// Copies `from` to `to` (when given) while hashing it, and feeding it to
/// `signature` (when given); reports progress through `progress` (bytes
/// done, total if known).
pub fn hash_stream(
    mut from: impl Read,
    mut to: Option<&mut dyn Write>,
    mut signature: Option<&mut SignatureCheck<'_>>,
    total: Option<u64>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let mut last = Instant::now();
    loop {
        let n = match from.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the image"),
        };
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(c) = signature.as_deref_mut() {
            c.update(&buf[..n]);
        }
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

/// What the live system offers to verify an image with.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The directory of trusted minisign public keys (`*.pub`).
    pub keys: PathBuf,
    /// `root=live:` of the kernel command line: the image the live system
    /// booted.
    pub boot_root: Option<String>,
    /// `hvnode.image_sha256=` of the kernel command line (lower-case hex):
    /// that image's sha256.
    pub boot_sha256: Option<String>,
    /// The files the live system's loop devices read, its root image
    /// among them.
    pub booted_files: Vec<PathBuf>,
    /// `%addon org_hvnode_image --allow-unverified`.
    pub allow_unverified: bool,
}

impl Trust {
    /// The running live system's: its trusted keys, its kernel command
    /// line `cmdline` and its loop devices.
    pub fn from_boot(cmdline: &str, allow_unverified: bool) -> Result<Trust> {
        Ok(Trust {
            keys: PathBuf::from(bundle::TRUSTED_KEYS_DIR),
            boot_root: boot_root(cmdline),
            boot_sha256: boot_sha256(cmdline)?,
            booted_files: loop_backing_files(Path::new("/sys/block")),
            allow_unverified,
        })
    }
}

/// The (last) `root=live:` value of a kernel command line.
pub fn boot_root(cmdline: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("root=live:"))
        .next_back()
        .map(String::from)
}

/// The (last) `hvnode.image_sha256=` value of a kernel command line, in
/// lower case; an error when it is not 64 hex digits.
pub fn boot_sha256(cmdline: &str) -> Result<Option<String>> {
    let prefix = format!("{IMAGE_SHA256_ARG}=");
    let Some(v) = cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix(prefix.as_str()))
        .next_back()
    else {
        return Ok(None);
    };
    if v.len() != 64 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "the kernel argument {IMAGE_SHA256_ARG}={v} is not a sha256 (64 hex digits): fix it in the boot configuration (boot.ipxe, pxelinux.cfg/default or grub.cfg) or remove it; nothing was written to any disk"
        );
    }
    Ok(Some(v.to_ascii_lowercase()))
}

/// The files behind the loop devices listed in `sys_block` (`/sys/block`).
pub fn loop_backing_files(sys_block: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("loop"))
        .filter_map(|e| fs::read_to_string(e.path().join("loop/backing_file")).ok())
        .map(|t| PathBuf::from(t.trim_end_matches('\n')))
        .collect();
    files.sort();
    files
}

/// What verified an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Its minisign signature, made by a trusted key.
    Signature {
        /// Where the signature was read.
        signature: String,
        key_id: String,
        /// The trusted `.pub` file.
        key_file: PathBuf,
        /// The signature's trusted comment.
        trusted_comment: String,
    },
    /// Its sha256 is the kickstart's `liveimg --checksum`.
    Checksum,
    /// Its sha256 is the kernel argument `hvnode.image_sha256=`.
    BootArgument,
    /// It is the file the running live system was booted from.
    Booted,
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proof::Signature {
                signature,
                key_id,
                key_file,
                trusted_comment,
            } => write!(
                f,
                "signature {signature} good, by the key {key_id} ({}; {trusted_comment})",
                key_file.display()
            ),
            Proof::Checksum => write!(f, "its sha256 is liveimg --checksum"),
            Proof::BootArgument => write!(
                f,
                "its sha256 is {IMAGE_SHA256_ARG}= of the kernel command line"
            ),
            Proof::Booted => write!(
                f,
                "it is the image this live system booted from (the installer runs from it)"
            ),
        }
    }
}

/// A local copy of the image, verified.
#[derive(Debug)]
pub struct Verified {
    pub path: PathBuf,
    pub sha256: String,
    /// What verified it; empty only when the kickstart allowed an
    /// unverified image and nothing verified it.
    pub proofs: Vec<Proof>,
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

/// Where the image is read from.
enum Location {
    Local(PathBuf),
    Http(ureq::Agent),
}

/// The image to install, as the kickstart gives it.
struct Image {
    url: String,
    location: Location,
    checksum: Option<String>,
}

impl Image {
    fn resolve(src: &ImageSource) -> Result<Image> {
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
        let location = if let Some(p) = url.strip_prefix("file://") {
            Location::Local(PathBuf::from(p))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            Location::Http(agent(proxy.as_deref(), noverifyssl)?)
        } else {
            bail!("liveimg --url={url}: only http://, https:// and file:// are supported");
        };
        let checksum = checksum.map(|c| {
            let c = c.trim().to_ascii_lowercase();
            c.strip_prefix("sha256:").map(String::from).unwrap_or(c)
        });
        Ok(Image {
            url,
            location,
            checksum,
        })
    }

    /// Where its signature is: beside the file, or the URL + `.minisig`
    /// (before any query).
    fn signature_location(&self) -> String {
        match &self.location {
            Location::Local(p) => bundle::signature_path(p).display().to_string(),
            Location::Http(_) => signature_url(&self.url),
        }
    }

    /// Whether it is the image the live system booted, which the kernel
    /// argument `hvnode.image_sha256=` describes.
    fn is_boot_image(&self, trust: &Trust) -> bool {
        match &self.location {
            Location::Local(p) => *p == medium_image(),
            Location::Http(_) => trust.boot_root.as_deref() == Some(self.url.as_str()),
        }
    }

    /// Whether it is a file the running live system was booted from.
    fn is_booted(&self, trust: &Trust) -> bool {
        let Location::Local(p) = &self.location else {
            return false;
        };
        let real = fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        trust.booted_files.contains(&real)
    }

    /// The text of its signature file; `Err` with the reason when it could
    /// not be fetched (a missing one is `Ok(None)`).
    fn signature_text(&self) -> Result<Option<String>, String> {
        match &self.location {
            Location::Local(p) => {
                let sig = bundle::signature_path(p);
                let f = match File::open(&sig) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                };
                let mut text = String::new();
                f.take(SIGNATURE_MAX)
                    .read_to_string(&mut text)
                    .map_err(|e| e.to_string())?;
                Ok(Some(text))
            }
            Location::Http(agent) => {
                let url = signature_url(&self.url);
                match agent.get(&url).call() {
                    Ok(mut resp) => resp
                        .body_mut()
                        .with_config()
                        .limit(SIGNATURE_MAX)
                        .read_to_string()
                        .map(Some)
                        .map_err(|e| e.to_string()),
                    Err(ureq::Error::StatusCode(404 | 410)) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}

/// `URL.minisig`, before any query or fragment of the URL.
pub fn signature_url(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    format!("{}.minisig{}", &url[..cut], &url[cut..])
}

/// Finds the image and its signature, refuses it if nothing can verify it
/// (unless the kickstart allows that), reads it once (downloading it into
/// `work` when it is not a local file) while checking its signature and
/// sha256, and checks them against what the kickstart and the boot say.
/// Nothing is written to any disk here; `note` gets the warnings.
pub fn fetch_and_verify(
    src: &ImageSource,
    trust: &Trust,
    work: &Path,
    note: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Verified> {
    let image = Image::resolve(src)?;
    let url = &image.url;
    let boot_sha256 = match &trust.boot_sha256 {
        Some(s) if image.is_boot_image(trust) => Some(s.clone()),
        Some(_) => {
            note(&format!(
                "note: {IMAGE_SHA256_ARG}= of the kernel command line is the sha256 of the image this system booted, not of {url}: not used for it"
            ));
            None
        }
        None => None,
    };
    let booted = image.is_booted(trust);
    let verified_otherwise = image.checksum.is_some() || boot_sha256.is_some() || booted;
    let signed = signature_and_key(&image, trust, verified_otherwise, note)?;
    if signed.is_none() && !verified_otherwise {
        if !trust.allow_unverified {
            return Err(unverifiable(&image, trust));
        }
        note(&format!(
            "WARNING: the image {url} is installed UNVERIFIED (no signature by a trusted key, no checksum), as the kickstart allows (%addon {IMAGE_ADDON} --allow-unverified): nothing proves where it comes from or that it is intact"
        ));
    }

    let mut check = match &signed {
        None => None,
        Some(s) => Some(s.key.check(&s.signature).with_context(|| {
            format!(
                "{} names the key {}, not {}",
                s.at,
                s.signature.key_id(),
                s.key.key_id
            )
        })?),
    };
    let (path, sha256, downloaded) = read_image(&image, work, check.as_mut(), progress)?;
    let checked = (|| -> Result<Vec<Proof>> {
        let mut proofs = Vec::new();
        if let (Some(c), Some(s)) = (check.as_mut(), &signed) {
            if !c.matches() {
                bail!(
                    "the signature {} does not match the image {url} (key {}, trusted as {}): the image or its signature was changed or damaged after signing; nothing was written to any disk. Get both again",
                    s.at,
                    s.key.key_id,
                    s.key.file.display()
                );
            }
            proofs.push(Proof::Signature {
                signature: s.at.clone(),
                key_id: s.key.key_id.clone(),
                key_file: s.key.file.clone(),
                trusted_comment: s.signature.trusted_comment().to_string(),
            });
        }
        if let Some(want) = &image.checksum {
            if *want != sha256 {
                bail!(
                    "the image {url} has sha256 {sha256}, but the kickstart's liveimg --checksum says {want}: wrong or damaged image; nothing was written to any disk"
                );
            }
            proofs.push(Proof::Checksum);
        }
        if let Some(want) = &boot_sha256 {
            if *want != sha256 {
                bail!(
                    "the image {url} has sha256 {sha256}, but the kernel argument {IMAGE_SHA256_ARG}= says {want}: wrong or damaged image, or a boot configuration for another build; nothing was written to any disk. Get the image again, or correct {IMAGE_SHA256_ARG}= in the boot configuration"
                );
            }
            proofs.push(Proof::BootArgument);
        }
        if booted {
            proofs.push(Proof::Booted);
        }
        Ok(proofs)
    })();
    match checked {
        Ok(proofs) => Ok(Verified {
            path,
            sha256,
            proofs,
        }),
        Err(e) => {
            if downloaded {
                let _ = fs::remove_file(&path);
            }
            Err(e)
        }
    }
}

/// An image's signature and the trusted key that made it.
struct Signed {
    /// Where the signature was read.
    at: String,
    signature: Signature,
    key: TrustedKey,
}

/// The image's signature and its trusted key; `None` when it has no
/// signature, or (with a note) when the signature cannot be read or its
/// key is not trusted while something else verifies the image or the
/// kickstart allows an unverified one. A `.minisig` that is not a minisign
/// signature is an error.
fn signature_and_key(
    image: &Image,
    trust: &Trust,
    verified_otherwise: bool,
    note: &mut dyn FnMut(&str),
) -> Result<Option<Signed>> {
    let url = &image.url;
    let at = image.signature_location();
    let text = match image.signature_text() {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(None),
        Err(why) => {
            note(&format!(
                "warning: could not read the image's signature {at}: {why}"
            ));
            return Ok(None);
        }
    };
    let signature = Signature::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{at} is {e}: it cannot vouch for the image {url}; get the image's signature again (or remove it); nothing was written to any disk"
        )
    })?;
    let keys = TrustedKeys::load(&trust.keys).with_context(|| {
        format!("reading the trusted keys to check {at}; nothing was written to any disk")
    })?;
    let why = if keys.keys.is_empty() {
        format!(
            "it is signed with the key {}, but {} holds no trusted key (*.pub)",
            signature.key_id(),
            trust.keys.display()
        )
    } else if let Some(key) = keys.find(signature.key_id()) {
        return Ok(Some(Signed {
            at,
            key: key.clone(),
            signature,
        }));
    } else {
        format!(
            "it is signed with the key {}, which is not among the trusted keys in {}",
            signature.key_id(),
            trust.keys.display()
        )
    };
    if verified_otherwise || trust.allow_unverified {
        note(&format!(
            "warning: the image {url}: {why}; its signature {at} is not checked"
        ));
        return Ok(None);
    }
    bail!(
        "the image {url} cannot be verified: {why}. Nothing was written to any disk. Use an image signed with a trusted key, add --checksum=SHA256 to liveimg, or add the publisher's public key to {} (a %pre script can, e.g. as {}.pub)",
        trust.keys.display(),
        signature.key_id()
    )
}

/// The refusal of an image that nothing verifies, saying what to do.
fn unverifiable(image: &Image, trust: &Trust) -> anyhow::Error {
    let url = &image.url;
    let at = image.signature_location();
    let medium = if matches!(&image.location, Location::Local(p) if *p == medium_image()) {
        ", and it is not the image this live system booted from"
    } else {
        ""
    };
    anyhow::anyhow!(
        "the image {url} cannot be verified, so it is not installed (nothing was written to any disk): it has no signature {at} made with a trusted key and no liveimg --checksum{medium}. Do one of: add --checksum=SHA256 to the kickstart's liveimg (sha256sum of the image; the build's SHA256SUMS lists it); put the image's minisign signature beside it as {at}, made with a key in {}; or, to install it unverified anyway, add the lines \"%addon {IMAGE_ADDON} --allow-unverified\" and \"%end\" to the kickstart",
        trust.keys.display(),
    )
}

/// Reads the image once: hashes a local file where it is, or downloads
/// it into `work`. Returns its path, its sha256 and whether it was
/// downloaded.
fn read_image(
    image: &Image,
    work: &Path,
    check: Option<&mut SignatureCheck<'_>>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(PathBuf, String, bool)> {
    let url = &image.url;
    match &image.location {
        Location::Local(path) => {
            let f = File::open(path)
                .with_context(|| format!("opening the image {} (liveimg --url)", path.display()))?;
            let total = f.metadata().ok().map(|m| m.len());
            let sum = hash_stream(f, None, check, total, progress)?;
            Ok((path.clone(), sum, false))
        }
        Location::Http(agent) => {
            fs::create_dir_all(work)?;
            let path = work.join("image.squashfs.img");
            let mut resp = agent
                .get(url)
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
            let sum = hash_stream(reader, Some(&mut out), check, total, progress)
                .and_then(|sum| {
                    out.sync_all().context("flushing the download")?;
                    Ok(sum)
                })
                .with_context(|| format!("downloading {url}"));
            match sum {
                Ok(sum) => Ok((path, sum, true)),
                Err(e) => {
                    let _ = fs::remove_file(&path);
                    Err(e)
                }
            }
        }
    }
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
        fs::create_dir_all(&squash)?;
        fs::create_dir_all(&tree)?;
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

    fn trust(keys: &Path) -> Trust {
        Trust {
            keys: keys.to_path_buf(),
            boot_root: None,
            boot_sha256: None,
            booted_files: Vec::new(),
            allow_unverified: false,
        }
    }

    #[test]
    fn a_checksum_mismatch_stops_before_any_write() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("img");
        fs::write(&img, b"not the image").unwrap();
        let src = ImageSource::Url {
            url: format!("file://{}", img.display()),
            checksum: Some("00".repeat(32)),
            proxy: None,
            noverifyssl: false,
        };
        let t = trust(&d.path().join("keys"));
        let e = fetch_and_verify(&src, &t, d.path(), &mut |_| {}, &mut |_, _| {})
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
        let v = fetch_and_verify(&good, &t, d.path(), &mut |_| {}, &mut |_, _| {}).unwrap();
        assert_eq!(v.path, img);
        assert_eq!(v.proofs, [Proof::Checksum]);
    }

    #[test]
    fn hashing_copies_and_reports() {
        let data = vec![7u8; 3 << 20];
        let mut out = Vec::new();
        let mut seen = 0;
        let sum = hash_stream(
            &data[..],
            Some(&mut out),
            None,
            Some(data.len() as u64),
            &mut |d, _| seen = d,
        )
        .unwrap();
        assert_eq!(out, data);
        assert_eq!(seen, 3 << 20);
        assert_eq!(sum, hex::encode(Sha256::digest(&data)));
    }

    #[test]
    fn the_kernel_command_line_names_the_boot_image_and_its_sha256() {
        let sum = "AB".repeat(32);
        let cmdline = format!(
            "BOOT_IMAGE=/vmlinuz root=live:http://h/hvnode/squashfs.img rd.live.image {IMAGE_SHA256_ARG}={sum} quiet"
        );
        assert_eq!(
            boot_root(&cmdline).as_deref(),
            Some("http://h/hvnode/squashfs.img")
        );
        assert_eq!(boot_sha256(&cmdline).unwrap(), Some("ab".repeat(32)));
        assert_eq!(boot_sha256("root=live:CDLABEL=HVNODE").unwrap(), None);
        for bad in ["abc", &"g".repeat(64), &"a".repeat(65)] {
            let e = boot_sha256(&format!("ro {IMAGE_SHA256_ARG}={bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(IMAGE_SHA256_ARG) && e.contains("64 hex digits"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_signature_url_keeps_the_query_after_it() {
        assert_eq!(signature_url("http://h/a.img"), "http://h/a.img.minisig");
        assert_eq!(
            signature_url("https://h/a.img?token=x#f"),
            "https://h/a.img.minisig?token=x#f"
        );
    }

    #[test]
    fn the_medium_image_is_the_one_the_kickstart_crate_names() {
        assert_eq!(
            format!("file://{}", medium_image().display()),
            kickstart::node::MEDIUM_IMAGE_URL
        );
    }

    #[test]
    fn loop_devices_name_their_files() {
        let d = tempfile::tempdir().unwrap();
        for (dev, file) in [
            ("loop0", Some("/run/initramfs/live/LiveOS/squashfs.img\n")),
            ("loop1", None),
            ("sda", Some("/not/a/loop\n")),
        ] {
            let dir = d.path().join(dev).join("loop");
            fs::create_dir_all(&dir).unwrap();
            if let Some(f) = file {
                fs::write(dir.join("backing_file"), f).unwrap();
            }
        }
        assert_eq!(loop_backing_files(d.path()), [medium_image()]);
        assert!(loop_backing_files(&d.path().join("none")).is_empty());
    }
}
