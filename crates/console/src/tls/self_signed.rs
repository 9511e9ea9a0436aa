//! Making the console's own self-signed certificate, and the marker file beside it
//! that names it as the console's (by its SHA-256), so that only a certificate the
//! console made is ever replaced.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::names::NodeNames;
use super::{DAY, TlsError, io};

/// The name of the certificate generated when the directory has none.
pub const SELF_SIGNED: &str = "0-self-signed";

/// How long a self-signed certificate is valid for.
pub const VALIDITY: Duration = Duration::from_secs(365 * DAY);
/// A self-signed certificate is valid from this long before it was made, for clients
/// whose clock is behind.
pub const BACKDATED: Duration = Duration::from_secs(DAY);

/// Seconds since the epoch, never past what a certificate's dates can hold with a
/// year and a day to spare.
fn now_secs(now: u64) -> u64 {
    // 9998-12-31: OffsetDateTime stops at the end of 9999.
    now.min(253_370_764_800)
}

/// A new self-signed certificate and its key, in PEM, for `names`, valid from a day
/// before `now` (seconds since the epoch) for [`VALIDITY`].
pub fn make_self_signed(names: &NodeNames, now: u64) -> Result<(String, String), TlsError> {
    let mut params = rcgen::CertificateParams::new(names.dns_names())?;
    params.subject_alt_names.extend(
        names
            .ip_addresses()
            .into_iter()
            .map(rcgen::SanType::IpAddress),
    );
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, names.host.as_str());
    params.distinguished_name = subject;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = now_secs(now);
    params.not_before = epoch + Duration::from_secs(now.saturating_sub(BACKDATED.as_secs()));
    params.not_after = epoch + Duration::from_secs(now + VALIDITY.as_secs());
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

pub(super) fn self_signed_path(dir: &Path) -> PathBuf {
    dir.join(format!("{SELF_SIGNED}.cert"))
}

pub(super) fn marker_path(dir: &Path) -> PathBuf {
    dir.join(format!("{SELF_SIGNED}.generated"))
}

/// SHA-256 of `bytes`, in hex.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The text of the file that marks the certificates whose SHA-256 is among `hashes`
/// as the console's own.
pub(super) fn marker_text(hashes: &[&str]) -> String {
    let mut text = format!(
        "# {SELF_SIGNED}.cert was made by the console (hvnode-agent), which makes it anew \
         at start\n# when it expires within 30 days or the host name changed. Remove this \
         file to keep\n# the certificate as it is; a certificate of your own belongs in a \
         file that sorts\n# higher, such as 50-node.cert.\n"
    );
    for h in hashes {
        text.push_str("sha256 ");
        text.push_str(h);
        text.push('\n');
    }
    text
}

/// Writes a new self-signed certificate for `names` into `dir`, made at `now`, in
/// place of the one there (if any): the marker first names both (or the new one
/// alone), then the key, the certificate and the marker naming the new one alone are
/// each replaced whole (a
/// temporary file renamed over the old), so that whatever the moment a crash stops
/// this, the certificate left is still known as the console's own and made anew at
/// the next start if its key does not fit.
pub fn generate_self_signed(dir: &Path, names: &NodeNames, now: u64) -> Result<PathBuf, TlsError> {
    // Only root needs to look into the directory that holds private keys.
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(io(dir))?;
    let (cert_pem, key_pem) = make_self_signed(names, now)?;
    let cert_path = self_signed_path(dir);
    let key_path = dir.join(format!("{SELF_SIGNED}.key"));
    let marker = marker_path(dir);
    let new_hash = sha256_hex(cert_pem.as_bytes());
    let old_hash = fs::read(&cert_path).ok().map(|old| sha256_hex(&old));
    let write = |path: &Path, text: &str, mode: u32| {
        let opts = fsutil::Options {
            create_parents: false,
            ..fsutil::Options::mode(mode)
        };
        fsutil::write_atomic(path, text.as_bytes(), opts)
    };
    let both: Vec<&str> = old_hash
        .iter()
        .map(String::as_str)
        .chain([new_hash.as_str()])
        .collect();
    write(&marker, &marker_text(&both), 0o644)?;
    write(&key_path, &key_pem, 0o600)?;
    write(&cert_path, &cert_pem, 0o644)?;
    write(&marker, &marker_text(&[&new_hash]), 0o644)?;
    Ok(cert_path)
}
