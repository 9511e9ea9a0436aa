//! An update bundle uploaded from the admin's browser:
//! `PUT /api/v1/node/update/upload/{file}` streams `NAME.update.tar` or its
//! `NAME.update.tar.minisig` into the agent's `uploads` folder, written
//! under a temporary name and renamed when whole; the path it answers is
//! then a SOURCE for the check and the update, as a URL or a path typed on
//! the Node page is. The folder holds one bundle: a complete new one
//! replaces the others (and their signatures).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;

use crate::api::{ok, to_value};
use crate::error::ApiError;
use crate::limits::BodyTimer;
use crate::state::Shared;

/// The uploads' folder, under the agent's state folder.
pub const UPLOADS: &str = "uploads";

/// The largest bundle accepted (an image is about 1 GiB).
pub const MAX_BUNDLE: u64 = 16 << 30;

/// The largest signature accepted (a minisig file is about 300 bytes).
pub const MAX_SIGNATURE: u64 = 64 << 10;

/// Free space left in the folder's file system after an upload.
pub const KEEP_FREE: u64 = 256 << 20;

/// A partial upload older than this is what a stopped agent left.
const STALE: Duration = Duration::from_secs(24 * 3600);

/// What an upload is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bundle,
    Signature,
}

impl Kind {
    fn max(self) -> u64 {
        match self {
            Kind::Bundle => MAX_BUNDLE,
            Kind::Signature => MAX_SIGNATURE,
        }
    }
}

/// `file` as an upload's name: `NAME.update.tar` or `NAME.update.tar.minisig`,
/// of letters, digits and `._+~-`, not hidden.
pub fn check_name(file: &str) -> Result<Kind, ApiError> {
    let plain = !file.is_empty()
        && file.len() <= 200
        && !file.starts_with('.')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+~-".contains(c));
    let kind = if file.ends_with(".update.tar") {
        Some(Kind::Bundle)
    } else if file.ends_with(".update.tar.minisig") {
        Some(Kind::Signature)
    } else {
        None
    };
    match kind {
        Some(k) if plain && file.len() > ".update.tar".len() => Ok(k),
        _ => Err(ApiError::BadRequest(format!(
            "{file:?} is not an update bundle's file name: upload NAME.update.tar and its \
             NAME.update.tar.minisig as `hvnode build` made them (letters, digits and ._+~- only)"
        ))),
    }
}

/// What `PUT /api/v1/node/update/upload/{file}` answers (`UpdateUpload`).
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    /// Where it is on the node: the SOURCE to check and apply (for a bundle).
    pub path: PathBuf,
    pub bytes: u64,
}

/// `PUT /api/v1/node/update/upload/{file}` (`X-CSRF-Token` required), the
/// file's bytes as the body: 201 and `UpdateUpload`. A bundle of gigabytes may take
/// long over a slow link: the body is timed by its pauses
/// (`upload_stall_timeout_secs`), not by the total time ordinary bodies get.
pub async fn api_put(
    State(state): State<Shared>,
    UrlPath(file): UrlPath<String>,
    timer: Option<Extension<BodyTimer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(Extension(timer)) = &timer {
        timer.streamed_upload();
    }
    let kind = check_name(&file)?;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let dir = state.config.state_dir.join(UPLOADS);
    let uploaded = receive(&dir, &file, kind, announced, body).await?;
    tracing::info!(file = %uploaded.path.display(), bytes = uploaded.bytes, "update upload");
    let mut r = ok("UpdateUpload", to_value(&uploaded));
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// Streams `body` into `dir/file`: checked against `kind`'s limit and the
/// free space first (with `announced`, the Content-Length, when sent),
/// written under a temporary name, synced and renamed.
pub async fn receive(
    dir: &Path,
    file: &str,
    kind: Kind,
    announced: Option<u64>,
    body: Body,
) -> Result<Uploaded, ApiError> {
    let too_large = || {
        ApiError::BadRequest(format!(
            "{file} is larger than {} MiB, the most an upload of its kind may be",
            kind.max() >> 20
        ))
    };
    if announced.is_some_and(|n| n > kind.max()) {
        return Err(too_large());
    }
    prepare(dir).await?;
    check_space(dir, file, free_bytes(dir)?, announced)?;
    let target = dir.join(file);
    let partial = dir.join(format!(".{file}.{}.partial", std::process::id()));
    let written = write_stream(&partial, kind, body).await;
    let bytes = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(match e {
                WriteError::TooLarge => too_large(),
                WriteError::Io(what, e) => ApiError::Failed(format!(
                    "{what} {}: {e}; nothing was kept, upload it again",
                    partial.display()
                )),
                WriteError::Body(e) => ApiError::BadRequest(format!(
                    "the upload of {file} broke off ({e}); nothing was kept, upload it again"
                )),
            });
        }
    };
    tokio::fs::rename(&partial, &target).await.map_err(|e| {
        ApiError::Failed(format!(
            "renaming {} to {}: {e}",
            partial.display(),
            target.display()
        ))
    })?;
    if kind == Kind::Bundle {
        remove_others(dir, file).await;
    }
    Ok(Uploaded {
        path: target,
        bytes,
    })
}

enum WriteError {
    TooLarge,
    Io(&'static str, std::io::Error),
    Body(axum::Error),
}

async fn write_stream(partial: &Path, kind: Kind, body: Body) -> Result<u64, WriteError> {
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .await
        .map_err(|e| WriteError::Io("creating", e))?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(WriteError::Body)?;
        total = total.saturating_add(chunk.len() as u64);
        if total > kind.max() {
            return Err(WriteError::TooLarge);
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| WriteError::Io("writing", e))?;
    }
    out.sync_all()
        .await
        .map_err(|e| WriteError::Io("syncing", e))?;
    Ok(total)
}

/// Makes the folder (root only) and removes partial uploads a stopped
/// agent left.
async fn prepare(dir: &Path) -> Result<(), ApiError> {
    let failed = |e: std::io::Error| {
        ApiError::Failed(format!(
            "preparing the uploads' folder {}: {e}",
            dir.display()
        ))
    };
    tokio::fs::create_dir_all(dir).await.map_err(failed)?;
    tokio::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .await
        .map_err(failed)?;
    let mut entries = tokio::fs::read_dir(dir).await.map_err(failed)?;
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE);
        if name.starts_with('.') && name.ends_with(".partial") && old {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
    }
    Ok(())
}

/// After `bundle` arrived whole: the other bundles and signatures go.
async fn remove_others(dir: &Path, bundle: &str) {
    let signature = format!("{bundle}.minisig");
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == bundle || name == signature || name.starts_with('.') {
            continue;
        }
        if check_name(&name).is_ok() {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
    }
}

/// Whether `free` bytes leave room for `announced` ones and [`KEEP_FREE`].
fn check_space(dir: &Path, file: &str, free: u64, announced: Option<u64>) -> Result<(), ApiError> {
    let need = announced.unwrap_or(0).saturating_add(KEEP_FREE);
    if free < need {
        return Err(ApiError::Conflict(format!(
            "not enough space for {file} in {}: {} MiB free, {} MiB needed (the upload and \
             {} MiB to spare); free some, or give the bundle's URL instead",
            dir.display(),
            free >> 20,
            need >> 20,
            KEEP_FREE >> 20
        )));
    }
    Ok(())
}

/// Bytes free for the agent in `dir`'s file system.
fn free_bytes(dir: &Path) -> Result<u64, ApiError> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(|e| {
        ApiError::Failed(format!("reading the free space of {}: {e}", dir.display()))
    })?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bundles_and_their_signatures_are_names() {
        assert_eq!(
            check_name("hvnode-1.1-0.2+x.update.tar").unwrap(),
            Kind::Bundle
        );
        assert_eq!(
            check_name("hvnode-1.1-0.2.update.tar.minisig").unwrap(),
            Kind::Signature
        );
        for bad in [
            "",
            ".update.tar",
            ".hidden.update.tar",
            "../x.update.tar",
            "a/b.update.tar",
            "x.tar",
            "x.update.tar.gz",
            "a b.update.tar",
            &format!("{}.update.tar", "x".repeat(200)),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    fn body(parts: &[&'static [u8]]) -> Body {
        let chunks: Vec<Result<&'static [u8], std::io::Error>> =
            parts.iter().map(|p| Ok(*p)).collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn an_upload_arrives_whole_and_replaces_the_last_bundle() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(UPLOADS);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("old.update.tar"), "old").unwrap();
        std::fs::write(dir.join("old.update.tar.minisig"), "old sig").unwrap();
        std::fs::write(dir.join("notes.txt"), "not ours").unwrap();
        let sig = receive(
            &dir,
            "new.update.tar.minisig",
            Kind::Signature,
            None,
            body(&[b"sig"]),
        )
        .await
        .unwrap();
        assert_eq!(sig.bytes, 3);
        let b = receive(
            &dir,
            "new.update.tar",
            Kind::Bundle,
            Some(6),
            body(&[b"abc", b"def"]),
        )
        .await
        .unwrap();
        assert_eq!(b.path, dir.join("new.update.tar"));
        assert_eq!(std::fs::read(&b.path).unwrap(), b"abcdef");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["new.update.tar", "new.update.tar.minisig", "notes.txt"]
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let mode = std::fs::metadata(&b.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn too_large_and_broken_uploads_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(UPLOADS);
        let e = receive(
            &dir,
            "x.update.tar.minisig",
            Kind::Signature,
            Some(MAX_SIGNATURE + 1),
            body(&[b"x"]),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        // Announced small, sent large.
        let big: &'static [u8] =
            Box::leak(vec![0u8; (MAX_SIGNATURE + 1) as usize].into_boxed_slice());
        let e = receive(
            &dir,
            "x.update.tar.minisig",
            Kind::Signature,
            Some(1),
            body(&[big]),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        // The client goes away part way.
        let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![
            Ok(b"abc"),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        ];
        let e = receive(
            &dir,
            "y.update.tar",
            Kind::Bundle,
            None,
            Body::from_stream(futures_util::stream::iter(chunks)),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("broke off"), "{e}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn no_space_is_said_with_the_numbers() {
        let dir = Path::new("/var/lib/hvnode-console/uploads");
        let e = check_space(dir, "x.update.tar", 1 << 30, Some(900 << 20)).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("1024 MiB free, 1156 MiB needed") && s.contains("x.update.tar"),
            "{s}"
        );
        assert!(check_space(dir, "x.update.tar", 2 << 30, Some(900 << 20)).is_ok());
        // Without a Content-Length, the spare room alone.
        assert!(check_space(dir, "x.update.tar", KEEP_FREE - 1, None).is_err());
    }
}
