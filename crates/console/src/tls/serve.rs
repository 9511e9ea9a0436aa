//! Which certificate the console serves (the highest file name of the certificates
//! directory), loading it and its key, and the rustls configuration that serves them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{TlsError, io};

/// The `*.cert` or `*.crt` file that wins: the highest file name.
pub fn chosen_certificate(dir: &Path) -> Result<Option<PathBuf>, TlsError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut certs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cert" || x == "crt") && p.is_file())
        .collect();
    certs.sort();
    Ok(certs.pop())
}

/// Loads the certificate chain and key of `cert_path` (key in the same file or in the
/// `.key` file beside it).
pub fn load(
    cert_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let invalid = |what: String| TlsError::Invalid {
        path: cert_path.to_path_buf(),
        what,
    };
    let pem = fs::read(cert_path).map_err(io(cert_path))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("unreadable certificate: {e}")))?;
    if chain.is_empty() {
        return Err(invalid("no certificate in the file".into()));
    }
    let key = match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(k) => k,
        Err(_) => {
            let key_path = cert_path.with_extension("key");
            let key_pem = fs::read(&key_path).map_err(io(&key_path))?;
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Invalid {
                path: key_path.clone(),
                what: format!("no usable private key: {e}"),
            })?
        }
    };
    Ok((chain, key))
}

/// The rustls configuration serving `chain` and `key` (from `path`).
pub(super) fn rustls_config(
    path: &Path,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            path: path.to_path_buf(),
            what: format!("choosing the TLS versions to serve it with: {e}"),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid {
            path: path.to_path_buf(),
            what: format!("certificate and key do not fit: {e}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
