//! The node's VDSM certificates, as the engine's host deploy leaves them under
//! `/etc/pki/vdsm`: `keys/vdsmkey.pem` (the host's key), `certs/vdsmcert.pem` (its
//! certificate, signed by the engine's CA) and `certs/cacert.pem` (the engine's CA).
//! The service speaks TLS 1.2 or 1.3 with them and requires a client certificate
//! that chains to that CA, as vdsm does (`CERT_REQUIRED`); like vdsm by default, it
//! does not match the client's name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The host's key, under the PKI directory.
pub const KEY: &str = "keys/vdsmkey.pem";
/// The host's certificate.
pub const CERT: &str = "certs/vdsmcert.pem";
/// The engine's CA.
pub const CA: &str = "certs/cacert.pem";

/// Why the certificates cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(
        "{} is missing: the engine's host deploy (or Enroll Certificate) puts it there; \
         until then the service waits", .0.display()
    )]
    Missing(PathBuf),
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
}

/// The three files of `dir`.
pub fn files(dir: &Path) -> [PathBuf; 3] {
    [dir.join(KEY), dir.join(CERT), dir.join(CA)]
}

/// When the files last changed (`None` for a missing one): a reload is due when this
/// changes.
pub fn stamp(dir: &Path) -> Vec<Option<SystemTime>> {
    files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => PkiError::Missing(path.to_path_buf()),
        _ => PkiError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// The TLS configuration of the certificates in `dir`.
pub fn server_config(dir: &Path) -> Result<Arc<ServerConfig>, PkiError> {
    let [key_path, cert_path, ca_path] = files(dir);
    let invalid = |path: &Path, what: String| PkiError::Invalid {
        path: path.to_path_buf(),
        what,
    };
    let key_pem = read(&key_path)?;
    let cert_pem = read(&cert_path)?;
    let ca_pem = read(&ca_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(&key_path, format!("no usable private key: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&cert_path, format!("unreadable certificate: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(&cert_path, "no certificate in the file".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&ca_pem) {
        let ca = ca.map_err(|e| invalid(&ca_path, format!("unreadable certificate: {e}")))?;
        roots
            .add(ca)
            .map_err(|e| invalid(&ca_path, format!("not a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid(&ca_path, "no certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| invalid(&ca_path, format!("cannot verify clients with it: {e}")))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| invalid(&cert_path, e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            invalid(
                &cert_path,
                format!("cannot be served with the key {}: {e}", key_path.display()),
            )
        })?;
    Ok(Arc::new(config))
}
