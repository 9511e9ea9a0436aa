//! The console's TLS certificate: the administrator's if there is one, otherwise a
//! self-signed one the console makes and keeps fresh.
//!
//! The certificates directory holds `NAME.cert` (or `NAME.crt`) files, each with a PEM
//! certificate chain and either the private key in the same file or in `NAME.key`
//! beside it. The highest file name wins, so an administrator's `50-admin.cert` takes
//! precedence over the generated `0-self-signed.cert`. Keys are written with mode 0600.
//!
//! The self-signed certificate names the node: subject CN the host name, and as
//! subject alternative names the host name, its fully qualified name when
//! `/etc/hosts` gives one, `localhost` and the node's addresses. It is valid from a day
//! before it was made (clocks differ) for a year, and made anew at start when it
//! expires within 30 days, when the host name (or the fully qualified name) changed,
//! or when it cannot be used. Only a certificate the console made itself is ever
//! replaced: `0-self-signed.generated` beside it names its SHA-256, so a certificate an
//! administrator put in its place (under any name) is never touched; neither is the
//! console's own once that file is removed. A `0-self-signed.cert` of versions before
//! that file existed is recognised by rcgen's default subject and replaced.
//!
//! The parts: `names` (what the certificate names), `self_signed` (making it and
//! marking it as the console's), `inspect` (what a certificate says, read back with
//! `x509-parser`), `renewal` (whether it is made anew) and `serve` (which certificate
//! is served, and the rustls configuration); [`server_config`] puts them together.
//! `install` hands the certificate that wins to a console that runs unprivileged.

mod inspect;
mod install;
mod names;
mod renewal;
mod self_signed;
mod serve;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;

pub use inspect::{Facts, facts};
pub use install::{INSTALLED, install_certificate, install_for_this_host};
pub use names::{NodeNames, fqdn_from_hosts};
pub use renewal::{RENEW_BEFORE, Renewal, ensure_certificate, renewal};
pub use self_signed::{BACKDATED, SELF_SIGNED, VALIDITY, generate_self_signed, make_self_signed};
pub use serve::{chosen_certificate, load};

const DAY: u64 = 86_400;

/// A certificate that could not be found, made or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(
        "writing the self-signed certificate: {0}; check that the certificates directory \
         is writable by the agent and its file system not full"
    )]
    Write(#[from] fsutil::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The rustls configuration for the chosen certificate, making or renewing the
/// console's own first ([`ensure_certificate`]). Returns the configuration and the
/// certificate's path.
pub fn server_config(
    dir: &Path,
    names: &NodeNames,
) -> Result<(Arc<ServerConfig>, PathBuf), TlsError> {
    let path = ensure_certificate(dir, names, hostinfo::now_unix())?;
    let (chain, key) = load(&path)?;
    Ok((serve::rustls_config(&path, chain, key)?, path))
}
