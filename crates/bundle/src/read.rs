//! [`extract`] and [`verify`]: one pass over a bundle that checks the
//! signature file, then the manifest, then each member as it goes by, and
//! the signature over the whole file at the end.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use layers::Nvr;
use sha2::{Digest, Sha256};

use crate::error::BundleError;
use crate::keys::{Signature, SignatureCheck, TrustedKey, TrustedKeys, bundle_signature};
use crate::manifest::{
    Manifest, Member, Metadata, SMALL_MEMBER_MAX, check_member_name, root_member,
};
use crate::{MANIFEST, METADATA, TRUSTED_KEYS_DIR, Warning};

/// How a bundle is checked.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The directory of trusted minisign public keys (`*.pub`).
    pub trusted_keys: PathBuf,
    /// The image installed now: an older bundle is a downgrade.
    pub installed: Option<Nvr>,
    /// Accept a downgrade (with a [`Warning::Downgrade`]).
    pub allow_downgrade: bool,
    /// Do not check the signature (with a [`Warning::SignatureNotChecked`]).
    /// The manifest and every member are still checked against each other.
    pub no_verify: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            trusted_keys: PathBuf::from(TRUSTED_KEYS_DIR),
            installed: None,
            allow_downgrade: false,
            no_verify: false,
        }
    }
}

/// The key a bundle's signature was checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    pub key_id: String,
    /// The trusted `.pub` file.
    pub key_file: PathBuf,
    /// The signature's trusted comment (signed with the bundle).
    pub trusted_comment: String,
}

/// A bundle that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub bundle: PathBuf,
    pub nvr: Nvr,
    pub manifest: Manifest,
    pub metadata: Metadata,
    /// `None` only with [`VerifyOptions::no_verify`].
    pub signed_by: Option<SignedBy>,
    /// What the caller must show: the bundle was accepted in spite of it.
    pub warnings: Vec<Warning>,
}

/// A bundle extracted into a directory.
#[derive(Debug, Clone)]
pub struct Extracted {
    pub verified: Verified,
    pub dir: PathBuf,
    /// `dir/NVR.squashfs.img`.
    pub root: PathBuf,
    /// `dir/metadata.json`.
    pub metadata: PathBuf,
}

/// Checks `bundle` and extracts its members (all but the manifest) into
/// `dir`, which must exist and be empty (a temporary directory the caller
/// renames once this returns). The bundle is read once. A refusal leaves
/// `dir` empty; so does a crash, but for the files then being written.
pub fn extract(bundle: &Path, dir: &Path, opts: &VerifyOptions) -> Result<Extracted, BundleError> {
    let mut listing =
        fs::read_dir(dir).map_err(BundleError::io("opening the output directory", dir))?;
    if listing.next().is_some() {
        return Err(BundleError::OutputNotEmpty {
            dir: dir.to_path_buf(),
        });
    }
    let mut staged = Staged {
        dir: dir.to_path_buf(),
        created: Vec::new(),
        done: false,
    };
    let verified = read(bundle, Some(&mut staged), opts)?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BundleError::io("flushing the output directory", dir))?;
    staged.done = true;
    Ok(Extracted {
        root: dir.join(root_member(&verified.nvr)),
        metadata: dir.join(METADATA),
        dir: dir.to_path_buf(),
        verified,
    })
}

/// Checks `bundle` as [`extract`] does, writing nothing.
pub fn verify(bundle: &Path, opts: &VerifyOptions) -> Result<Verified, BundleError> {
    read(bundle, None, opts)
}

/// Files being extracted; removed when dropped before `done`.
struct Staged {
    dir: PathBuf,
    created: Vec<PathBuf>,
    done: bool,
}

impl Staged {
    fn create(&mut self, name: &str) -> Result<(File, PathBuf), BundleError> {
        let path = self.dir.join(name);
        // create_new: never through a link, never over a file.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(BundleError::io("creating", &path))?;
        self.created.push(path.clone());
        Ok((file, path))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            for p in self.created.iter().rev() {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// The bundle's bytes on their way to the tar reader, fed to the
/// signature check; notes when the file has ended.
struct Tee<'a, R> {
    inner: R,
    verifier: Option<SignatureCheck<'a>>,
    ended: Rc<Cell<bool>>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended.set(true);
        }
        if let Some(v) = self.verifier.as_mut() {
            v.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn read(
    bundle: &Path,
    out: Option<&mut Staged>,
    opts: &VerifyOptions,
) -> Result<Verified, BundleError> {
    let mut warnings = Vec::new();
    let signed = if opts.no_verify {
        warnings.push(Warning::SignatureNotChecked {
            bundle: bundle.to_path_buf(),
        });
        None
    } else {
        Some(signature_and_key(bundle, opts)?)
    };
    let verifier = match &signed {
        None => None,
        Some((sig, key)) => Some(
            key.check(sig)
                .ok_or_else(|| BundleError::BadSignatureFile {
                    bundle: bundle.to_path_buf(),
                    signature: crate::signature_path(bundle),
                    reason: format!("it names the key {}, not {}", sig.key_id(), key.key_id),
                })?,
        ),
    };
    let file = File::open(bundle).map_err(BundleError::io("opening the update bundle", bundle))?;
    let ended = Rc::new(Cell::new(false));
    let mut archive = tar::Archive::new(Tee {
        inner: BufReader::with_capacity(1 << 20, file),
        verifier,
        ended: Rc::clone(&ended),
    });
    let mut entries = archive
        .entries()
        .map_err(BundleError::io("reading the update bundle", bundle))?
        .raw(true);
    let reader = TarReader {
        bundle,
        ended: &ended,
    };
    let (manifest, nvr) = read_manifest(&reader, &mut entries)?;
    check_version(bundle, &nvr, opts, &mut warnings)?;
    let meta_bytes = read_members(&reader, &mut entries, &manifest, out)?;
    let mut tee = archive.into_inner();
    check_trailer(bundle, &mut tee)?;
    if let (Some(v), Some((_, key))) = (tee.verifier.as_mut(), &signed)
        && !v.matches()
    {
        return Err(BundleError::BadSignature {
            bundle: bundle.to_path_buf(),
            key_id: key.key_id.clone(),
            key_file: key.file.clone(),
        });
    }
    let metadata = Metadata::parse(bundle, &meta_bytes, &manifest, &nvr)?;
    Ok(Verified {
        bundle: bundle.to_path_buf(),
        nvr,
        manifest,
        metadata,
        signed_by: signed.map(|(sig, key)| SignedBy {
            key_id: key.key_id,
            key_file: key.file,
            trusted_comment: sig.trusted_comment().to_string(),
        }),
        warnings,
    })
}

/// The signature file and the trusted key it names, before the bundle is
/// read at all.
fn signature_and_key(
    bundle: &Path,
    opts: &VerifyOptions,
) -> Result<(Signature, TrustedKey), BundleError> {
    let sig = bundle_signature(bundle, &opts.trusted_keys)?;
    let keys = TrustedKeys::load(&opts.trusted_keys)?;
    if keys.keys.is_empty() {
        return Err(BundleError::NoTrustedKeys {
            bundle: bundle.to_path_buf(),
            keys: opts.trusted_keys.clone(),
        });
    }
    let key = keys
        .find(sig.key_id())
        .cloned()
        .ok_or_else(|| BundleError::UnknownKey {
            bundle: bundle.to_path_buf(),
            key_id: sig.key_id().to_string(),
            keys: opts.trusted_keys.clone(),
        })?;
    Ok((sig, key))
}

fn check_version(
    bundle: &Path,
    nvr: &Nvr,
    opts: &VerifyOptions,
    warnings: &mut Vec<Warning>,
) -> Result<(), BundleError> {
    let Some(installed) = &opts.installed else {
        return Ok(());
    };
    if nvr >= installed {
        return Ok(());
    }
    if !opts.allow_downgrade {
        return Err(BundleError::Downgrade {
            bundle: bundle.to_path_buf(),
            nvr: Box::new(nvr.clone()),
            installed: Box::new(installed.clone()),
        });
    }
    warnings.push(Warning::Downgrade {
        bundle: nvr.clone(),
        installed: installed.clone(),
    });
    Ok(())
}

/// The bundle being read, for errors: which one, and whether its end was
/// reached.
struct TarReader<'a> {
    bundle: &'a Path,
    ended: &'a Cell<bool>,
}

impl TarReader<'_> {
    /// A tar reading error, in `member` (empty: in a header): a truncated
    /// file, a damaged archive, or I/O.
    fn error(&self, member: &str) -> impl FnOnce(io::Error) -> BundleError + '_ {
        let bundle = self.bundle.to_path_buf();
        let member = member.to_string();
        move |e| match e.kind() {
            _ if self.ended.get() => BundleError::Truncated { bundle, member },
            io::ErrorKind::UnexpectedEof => BundleError::Truncated { bundle, member },
            io::ErrorKind::Other | io::ErrorKind::InvalidData => BundleError::NotABundle {
                bundle,
                reason: format!("its tar structure is damaged ({e})"),
            },
            _ => BundleError::Io {
                doing: "reading the update bundle",
                path: bundle,
                source: e,
            },
        }
    }
}

/// The member's name, if it is a plain file with a safe name.
fn check_entry<R: Read>(bundle: &Path, entry: &tar::Entry<'_, R>) -> Result<String, BundleError> {
    let raw = entry.path_bytes();
    let unsafe_member = |reason| BundleError::UnsafeMember {
        bundle: bundle.to_path_buf(),
        member: String::from_utf8_lossy(&raw).into_owned(),
        reason,
    };
    let kind = entry.header().entry_type();
    if kind.is_symlink() {
        return Err(unsafe_member("is a symbolic link"));
    }
    if kind.is_hard_link() {
        return Err(unsafe_member("is a hard link"));
    }
    if kind.is_dir() {
        return Err(unsafe_member("is a directory"));
    }
    if !kind.is_file() {
        return Err(unsafe_member(
            "is not a plain file (a device, a fifo or an extension header)",
        ));
    }
    let name = check_member_name(&raw).map_err(unsafe_member)?;
    Ok(name.to_string())
}

type Entries<'a, 'b, R> = tar::Entries<'a, Tee<'b, R>>;

fn read_manifest<R: Read>(
    tar: &TarReader<'_>,
    entries: &mut Entries<'_, '_, R>,
) -> Result<(Manifest, Nvr), BundleError> {
    let bundle = tar.bundle;
    let not = |reason: String| BundleError::NotABundle {
        bundle: bundle.to_path_buf(),
        reason,
    };
    let mut first = entries
        .next()
        .ok_or_else(|| not("it holds no member".into()))?
        .map_err(tar.error(""))?;
    let name = check_entry(bundle, &first)?;
    if name != MANIFEST {
        return Err(not(format!("its first member is {name:?}, not {MANIFEST}")));
    }
    if first.size() > SMALL_MEMBER_MAX {
        return Err(not(format!(
            "its {MANIFEST} is {} bytes; a manifest is at most {SMALL_MEMBER_MAX}",
            first.size()
        )));
    }
    let mut bytes = Vec::new();
    first.read_to_end(&mut bytes).map_err(tar.error(MANIFEST))?;
    if (bytes.len() as u64) < first.size() {
        return Err(BundleError::Truncated {
            bundle: bundle.to_path_buf(),
            member: MANIFEST.into(),
        });
    }
    Manifest::parse(bundle, &bytes)
}

/// Reads the members after the manifest, in its order, into `out`; returns
/// the bytes of `metadata.json`.
fn read_members<R: Read>(
    tar: &TarReader<'_>,
    entries: &mut Entries<'_, '_, R>,
    manifest: &Manifest,
    mut out: Option<&mut Staged>,
) -> Result<Vec<u8>, BundleError> {
    let bundle = tar.bundle;
    let mut next = 0;
    let mut meta_bytes = Vec::new();
    for item in entries {
        let mut entry = item.map_err(tar.error(""))?;
        let name = check_entry(bundle, &entry)?;
        let Some(pos) = manifest.members.iter().position(|m| m.name == name) else {
            return Err(if name == MANIFEST {
                BundleError::DuplicateMember {
                    bundle: bundle.to_path_buf(),
                    member: name,
                }
            } else {
                BundleError::UnlistedMember {
                    bundle: bundle.to_path_buf(),
                    member: name,
                }
            });
        };
        if pos < next {
            return Err(BundleError::DuplicateMember {
                bundle: bundle.to_path_buf(),
                member: name,
            });
        }
        let expected = &manifest.members[next];
        if pos > next {
            return Err(BundleError::MissingMember {
                bundle: bundle.to_path_buf(),
                member: expected.name.clone(),
            });
        }
        if entry.size() != expected.size {
            return Err(BundleError::MemberMismatch {
                bundle: bundle.to_path_buf(),
                member: name,
                what: "size",
                expected: expected.size.to_string(),
                found: entry.size().to_string(),
            });
        }
        let keep = name == METADATA;
        let data = copy_member(tar, &mut entry, expected, out.as_deref_mut(), keep)?;
        if keep {
            meta_bytes = data;
        }
        next += 1;
    }
    if let Some(missing) = manifest.members.get(next) {
        return Err(BundleError::MissingMember {
            bundle: bundle.to_path_buf(),
            member: missing.name.clone(),
        });
    }
    Ok(meta_bytes)
}

/// Copies one member into `out` (if any) while hashing it; returns its
/// bytes when `keep`.
fn copy_member<R: Read>(
    tar: &TarReader<'_>,
    entry: &mut R,
    member: &Member,
    out: Option<&mut Staged>,
    keep: bool,
) -> Result<Vec<u8>, BundleError> {
    let mut file = match out {
        Some(s) => Some(s.create(&member.name)?),
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut count = 0u64;
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(tar.error(&member.name)(e)),
        };
        hasher.update(&buf[..n]);
        count += n as u64;
        if let Some((f, path)) = file.as_mut() {
            f.write_all(&buf[..n])
                .map_err(BundleError::io("writing", path))?;
        }
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
    }
    let bundle = tar.bundle;
    if count < member.size {
        return Err(BundleError::Truncated {
            bundle: bundle.to_path_buf(),
            member: member.name.clone(),
        });
    }
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != member.sha256 {
        return Err(BundleError::MemberMismatch {
            bundle: bundle.to_path_buf(),
            member: member.name.clone(),
            what: "sha256",
            expected: member.sha256.clone(),
            found: sha256,
        });
    }
    if let Some((f, path)) = file {
        f.sync_all().map_err(BundleError::io("flushing", &path))?;
    }
    Ok(kept)
}

/// After the end-of-archive block: only zeros (the rest of the end marker
/// and padding), all of it fed to the signature check.
fn check_trailer<R: Read>(bundle: &Path, tee: &mut Tee<'_, R>) -> Result<(), BundleError> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match tee.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BundleError::io("reading the update bundle", bundle)(e)),
        };
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(BundleError::NotABundle {
                bundle: bundle.to_path_buf(),
                reason: "it has data after the end of its tar archive".into(),
            });
        }
    }
}
