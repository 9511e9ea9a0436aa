//! Deciding at start whether the console's own self-signed certificate is made anew
//! (it expires soon, names another host, cannot be used, or is an earlier version's),
//! and doing it without ever touching an administrator's certificate.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::inspect;
use super::names::NodeNames;
use super::self_signed::{generate_self_signed, marker_path, self_signed_path, sha256_hex};
use super::serve::{chosen_certificate, load, rustls_config};
use super::{DAY, TlsError};

/// A self-signed certificate that expires within this long is made anew at start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * DAY);

/// The subject common name rcgen gives a certificate when told none: the console's
/// self-signed certificates had it before they named the node.
const RCGEN_DEFAULT_CN: &str = "rcgen self signed cert";

/// Why the console's own self-signed certificate is made anew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// It cannot be read or used (with why).
    Unusable(String),
    /// It expires within [`RENEW_BEFORE`] (or has expired): at this time, seconds
    /// since the epoch.
    Expiring(i64),
    /// It names another host (its subject common name), or lacks the node's fully
    /// qualified name.
    Renamed(String),
    /// A certificate of an earlier version of the console (rcgen's default subject,
    /// valid until the year 4096).
    Old,
}

impl std::fmt::Display for Renewal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unusable(why) => write!(f, "it could not be used: {why}"),
            Self::Expiring(at) => write!(
                f,
                "it expires on {} UTC",
                hostinfo::units::UtcTime::from_unix(*at)
            ),
            Self::Renamed(old) => write!(f, "it was made for host {old:?}"),
            Self::Old => write!(
                f,
                "it is the console's old certificate, without the node's name and valid \
                 until 4096"
            ),
        }
    }
}

/// Whether `cert_path`, the certificate the console would serve, is its own
/// self-signed one and must be made anew at `now` for `names`, and why. `None` for a
/// certificate the console did not make (an administrator's), whatever its state.
pub fn renewal(dir: &Path, cert_path: &Path, names: &NodeNames, now: u64) -> Option<Renewal> {
    if cert_path != self_signed_path(dir) {
        return None;
    }
    let pem = fs::read(cert_path).ok()?;
    let first = CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok);
    let facts = match first {
        Some(der) => inspect::read(&der).map_err(|e| e.to_string()),
        None => Err("no readable certificate in the file".to_string()),
    };
    let hash = sha256_hex(&pem);
    let marked = fs::read_to_string(marker_path(dir)).is_ok_and(|text| {
        text.lines()
            .any(|l| l.strip_prefix("sha256 ").is_some_and(|h| h.trim() == hash))
    });
    if !marked {
        // Not marked: the console's only if an earlier version made it.
        let old = facts
            .as_ref()
            .is_ok_and(|f| f.common_name.as_deref() == Some(RCGEN_DEFAULT_CN));
        return old.then_some(Renewal::Old);
    }
    if let Err(e) = load(cert_path).and_then(|(chain, key)| rustls_config(cert_path, chain, key)) {
        return Some(Renewal::Unusable(e.to_string()));
    }
    let facts = match facts {
        Ok(facts) => facts,
        Err(why) => {
            return Some(Renewal::Unusable(format!(
                "its certificate could not be read: {why}"
            )));
        }
    };
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let renew_before = i64::try_from(RENEW_BEFORE.as_secs()).unwrap_or(i64::MAX);
    if facts.not_after.saturating_sub(now) < renew_before {
        return Some(Renewal::Expiring(facts.not_after));
    }
    let named = |n: &str| facts.dns_names.iter().any(|d| d.eq_ignore_ascii_case(n));
    let host_changed = !facts
        .common_name
        .as_deref()
        .is_some_and(|cn| cn.eq_ignore_ascii_case(&names.host));
    if host_changed || !names.dns_names().iter().all(|n| named(n)) {
        return Some(Renewal::Renamed(facts.common_name.unwrap_or_default()));
    }
    None
}

/// The certificate to serve from `dir` at `now`: the one that wins, after making the
/// console's own self-signed one when there is none and making it anew when it is
/// due ([`renewal`]). A renewal that fails leaves the old certificate in use, with a
/// warning.
pub fn ensure_certificate(dir: &Path, names: &NodeNames, now: u64) -> Result<PathBuf, TlsError> {
    let Some(path) = chosen_certificate(dir)? else {
        let path = generate_self_signed(dir, names, now)?;
        tracing::info!(certificate = %path.display(), host = %names.host, "made a self-signed certificate");
        return Ok(path);
    };
    let Some(why) = renewal(dir, &path, names, now) else {
        return Ok(path);
    };
    match generate_self_signed(dir, names, now) {
        Ok(path) => {
            tracing::info!(
                certificate = %path.display(),
                host = %names.host,
                "made the self-signed certificate anew: {why}"
            );
        }
        Err(e) => tracing::warn!(
            certificate = %path.display(),
            "the self-signed certificate is due to be made anew ({why}), but {e}; the \
             console serves the old one"
        ),
    }
    Ok(path)
}
