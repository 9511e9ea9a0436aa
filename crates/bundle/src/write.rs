//! [`write_bundle`]: the bundle, reproducibly, and its signature.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use layers::Nvr;
use sha2::{Digest, Sha256};

use crate::error::WriteError;
use crate::keys::SignKey;
use crate::manifest::{Manifest, Member, Metadata, is_sha256, root_member};
use crate::{MANIFEST, METADATA, signature_path};

/// What [`write_bundle`] made.
#[derive(Debug, Clone)]
pub struct Written {
    pub bundle: PathBuf,
    /// `bundle.minisig`, when a key was given.
    pub signature: Option<PathBuf>,
    pub manifest: Manifest,
}

/// Writes the update bundle `out` (`NVR.update.tar`): `manifest.json`,
/// `metadata.json` (from `metadata`), then the root squashfs `squashfs` as
/// `NVR.squashfs.img`, each owned by root, mode 0644, dated `epoch`, so the
/// same inputs give the same bytes. `metadata` must describe `squashfs`
/// (its name, size and sha256); the squashfs is read once, and a change
/// while it is read fails the write.
///
/// With `sign_key`, `out.minisig` is written beside it in minisign's format
/// (its trusted comment dated `epoch`); without, a `.minisig` left from an
/// earlier bundle of that name is removed. The bundle is written under a
/// temporary name and renamed into place; on error nothing is left but an
/// older bundle of that name, untouched.
pub fn write_bundle(
    out: &Path,
    squashfs: &Path,
    metadata: &Metadata,
    epoch: i64,
    sign_key: Option<&SignKey>,
) -> Result<Written, WriteError> {
    let bad = |reason: String| WriteError::BadInput {
        bundle: out.to_path_buf(),
        reason,
    };
    let nvr: Nvr = metadata
        .nvr
        .parse()
        .map_err(|e| bad(format!("the metadata's NVR: {e}")))?;
    let root = root_member(&nvr);
    if metadata.squashfs != root {
        return Err(bad(format!(
            "the metadata names the root squashfs {:?}; a bundle of {nvr} holds it as {root:?}",
            metadata.squashfs
        )));
    }
    let size = fs::metadata(squashfs)
        .map_err(WriteError::io("reading the root squashfs", squashfs))?
        .len();
    if size != metadata.squashfs_size {
        return Err(bad(format!(
            "{} is {size} bytes, the metadata says {}",
            squashfs.display(),
            metadata.squashfs_size
        )));
    }
    if !is_sha256(&metadata.squashfs_sha256) {
        return Err(bad(format!(
            "the metadata's squashfs_sha256 {:?} is not 64 lower-case hex digits",
            metadata.squashfs_sha256
        )));
    }
    let meta_bytes = metadata.to_bytes();
    let manifest = Manifest::new(
        &nvr,
        vec![
            Member::of(METADATA, &meta_bytes),
            Member {
                name: root,
                size,
                sha256: metadata.squashfs_sha256.clone(),
            },
        ],
    );
    let sig = signature_path(out);
    match fs::remove_file(&sig) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(WriteError::io("removing the old signature", &sig)(e));
        }
        _ => {}
    }
    let partial = partial_path(out);
    let result = write_and_sign(
        out,
        &partial,
        squashfs,
        &manifest,
        &meta_bytes,
        epoch,
        sign_key,
    );
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    let signature = result?;
    Ok(Written {
        bundle: out.to_path_buf(),
        signature,
        manifest,
    })
}

/// `out` with `.partial` appended: where it is written before the rename.
fn partial_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

fn write_and_sign(
    out: &Path,
    partial: &Path,
    squashfs: &Path,
    manifest: &Manifest,
    meta_bytes: &[u8],
    epoch: i64,
    sign_key: Option<&SignKey>,
) -> Result<Option<PathBuf>, WriteError> {
    let mtime = u64::try_from(epoch).unwrap_or(0);
    write_tar(partial, squashfs, manifest, meta_bytes, mtime)?;
    let signature = match sign_key {
        Some(key) => Some(key.signature_of(partial, out, mtime)?),
        None => None,
    };
    fs::rename(partial, out).map_err(WriteError::io("renaming into place", out))?;
    sync_parent(out).map_err(WriteError::io("flushing the directory of", out))?;
    match signature {
        Some(text) => {
            let sig = signature_path(out);
            fsutil::write_atomic(&sig, text.as_bytes(), fsutil::Options::default()).map_err(
                |e| WriteError::Io {
                    doing: "writing the signature",
                    path: sig.clone(),
                    source: e.source,
                },
            )?;
            Ok(Some(sig))
        }
        None => Ok(None),
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)?.sync_all()
}

/// A member header: regular file, root's, 0644, dated `mtime`.
fn header(size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn write_tar(
    partial: &Path,
    squashfs: &Path,
    manifest: &Manifest,
    meta_bytes: &[u8],
    mtime: u64,
) -> Result<(), WriteError> {
    let io_err = WriteError::io("writing the update bundle", partial);
    let root = manifest
        .members
        .last()
        .cloned()
        .ok_or_else(|| WriteError::BadInput {
            bundle: partial.to_path_buf(),
            reason: "the manifest lists no root squashfs".into(),
        })?;
    let file = fs::File::create(partial).map_err(WriteError::io("creating", partial))?;
    let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, file));
    let manifest_bytes = manifest.to_bytes();
    let mut hashed = Hashing::new(
        fs::File::open(squashfs)
            .map_err(WriteError::io("reading the root squashfs", squashfs))?
            .take(root.size),
    );
    let written = (|| {
        tar.append_data(
            &mut header(manifest_bytes.len() as u64, mtime),
            MANIFEST,
            &manifest_bytes[..],
        )?;
        tar.append_data(
            &mut header(meta_bytes.len() as u64, mtime),
            METADATA,
            meta_bytes,
        )?;
        tar.append_data(&mut header(root.size, mtime), &root.name, &mut hashed)?;
        tar.into_inner()?.into_inner().map_err(|e| e.into_error())
    })();
    let file = written.map_err(io_err)?;
    let (count, sha256) = hashed.finish();
    if count != root.size || sha256 != root.sha256 {
        return Err(WriteError::SquashfsChanged {
            squashfs: squashfs.to_path_buf(),
        });
    }
    file.sync_all()
        .map_err(WriteError::io("flushing the update bundle", partial))
}

/// A reader that counts and hashes what passes through it.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read and their sha256, in lower-case hex.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
