//! The console's TLS certificate: the administrator's if there is one, otherwise a
//! self-signed one generated on first start.
//!
//! The certificates directory holds `NAME.cert` (or `NAME.crt`) files, each with a PEM
//! certificate chain and either the private key in the same file or in `NAME.key`
//! beside it. The highest file name wins, so an administrator's `50-admin.cert` takes precedence over
//! the generated `0-self-signed.cert`. Keys are written with mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The name of the certificate generated when the directory has none.
pub const SELF_SIGNED: &str = "0-self-signed";

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
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

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

/// Writes a new self-signed certificate for `names` into `dir`.
pub fn generate_self_signed(dir: &Path, names: Vec<String>) -> Result<PathBuf, TlsError> {
    // Only root needs to look into the directory that holds private keys.
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(io(dir))?;
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key_path = dir.join(format!("{SELF_SIGNED}.key"));
    let cert_path = dir.join(format!("{SELF_SIGNED}.cert"));
    let mut key = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(io(&key_path))?;
    key.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io(&key_path))?;
    key.write_all(certified.key_pair.serialize_pem().as_bytes())
        .map_err(io(&key_path))?;
    fs::write(&cert_path, certified.cert.pem()).map_err(io(&cert_path))?;
    Ok(cert_path)
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

/// The rustls configuration for the chosen certificate, generating one first if the
/// directory has none. Returns the configuration and the certificate's path.
pub fn server_config(dir: &Path, hostname: &str) -> Result<(Arc<ServerConfig>, PathBuf), TlsError> {
    let path = match chosen_certificate(dir)? {
        Some(p) => p,
        None => {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            if !hostname.is_empty() && hostname != "localhost" {
                names.insert(0, hostname.to_string());
            }
            generate_self_signed(dir, names)?
        }
    };
    let (chain, key) = load(&path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            path: path.clone(),
            what: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid {
            path: path.clone(),
            what: format!("certificate and key do not fit: {e}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_generates_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("ws-certs.d");
        let (_, path) = server_config(&certs, "node1").unwrap();
        assert_eq!(path, certs.join("0-self-signed.cert"));
        let key = certs.join("0-self-signed.key");
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(&certs).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "a directory made here is private");
        let first = fs::read(&path).unwrap();
        let (_, again) = server_config(&certs, "node1").unwrap();
        assert_eq!(again, path);
        assert_eq!(fs::read(&again).unwrap(), first, "not regenerated");
    }

    #[test]
    fn highest_name_wins_with_key_in_same_file() {
        let dir = tempfile::tempdir().unwrap();
        generate_self_signed(dir.path(), vec!["a".into()]).unwrap();
        let admin = rcgen::generate_simple_self_signed(vec!["admin.example".into()]).unwrap();
        let combined = format!("{}{}", admin.cert.pem(), admin.key_pair.serialize_pem());
        fs::write(dir.path().join("50-admin.cert"), combined).unwrap();
        let (_, path) = server_config(dir.path(), "node1").unwrap();
        assert_eq!(path, dir.path().join("50-admin.cert"));
    }

    #[test]
    fn a_crt_with_its_key_beside_it_counts_too() {
        let dir = tempfile::tempdir().unwrap();
        generate_self_signed(dir.path(), vec!["a".into()]).unwrap();
        let admin = rcgen::generate_simple_self_signed(vec!["node.example".into()]).unwrap();
        fs::write(dir.path().join("10-node.crt"), admin.cert.pem()).unwrap();
        fs::write(
            dir.path().join("10-node.key"),
            admin.key_pair.serialize_pem(),
        )
        .unwrap();
        let (_, path) = server_config(dir.path(), "node1").unwrap();
        assert_eq!(path, dir.path().join("10-node.crt"));
        let (chain, _) = load(&path).unwrap();
        assert_eq!(chain.len(), 1);
    }

    #[test]
    fn broken_certificate_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("9-bad.cert"), "not pem").unwrap();
        let err = server_config(dir.path(), "n").unwrap_err().to_string();
        assert!(err.contains("9-bad.cert"), "{err}");
    }
}
