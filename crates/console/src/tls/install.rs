//! The certificate handed to an unprivileged web process: the certificates directory
//! is root's (keys 0600 in a 0700 directory), so a step that runs as root before the
//! console starts (`hvnode-helper --install-certificate DIR`, the unit's
//! `ExecStartPre=+`) makes or renews the console's own as [`ensure_certificate`]
//! does, and copies the one that wins, chain and key in one file, into the service's
//! runtime directory, owned by that directory's owner (the console's user), mode 0600.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{NodeNames, TlsError, ensure_certificate, io, load};

/// The copy's name in the runtime directory.
pub const INSTALLED: &str = "console.cert";

/// Makes or renews the console's certificate in `certs_dir` at `now` when it is due,
/// then writes the one that wins to `out_dir/console.cert` (chain, then key), owned
/// by the owner of `out_dir`, mode 0600; other certificates and keys in `out_dir` are
/// removed, so that the copy is the one served from there. Returns the copy's path.
pub fn install_certificate(
    certs_dir: &Path,
    names: &NodeNames,
    now: u64,
    out_dir: &Path,
) -> Result<PathBuf, TlsError> {
    let chosen = ensure_certificate(certs_dir, names, now)?;
    // Checked before it is handed on: a file the console cannot serve is an error
    // here, where root can say which file it is.
    load(&chosen)?;
    let mut pem = fs::read(&chosen).map_err(io(&chosen))?;
    let key_path = chosen.with_extension("key");
    if !pem_has_key(&pem) {
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        pem.extend(fs::read(&key_path).map_err(io(&key_path))?);
    }
    let meta = fs::metadata(out_dir).map_err(io(out_dir))?;
    let out = out_dir.join(INSTALLED);
    fsutil::write_atomic(
        &out,
        &pem,
        fsutil::Options {
            mode: 0o600,
            owner: Some((meta.uid(), meta.gid())),
            create_parents: false,
        },
    )?;
    for entry in fs::read_dir(out_dir).map_err(io(out_dir))?.flatten() {
        let path = entry.path();
        let stale = path != out
            && path
                .extension()
                .is_some_and(|x| x == "cert" || x == "crt" || x == "key");
        if stale {
            fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    tracing::info!(
        certificate = %chosen.display(),
        copy = %out.display(),
        "the console's certificate installed for its process"
    );
    Ok(out)
}

/// [`install_certificate`] for this host, now.
pub fn install_for_this_host(certs_dir: &Path, out_dir: &Path) -> Result<PathBuf, TlsError> {
    install_certificate(
        certs_dir,
        &NodeNames::of_this_host(),
        hostinfo::now_unix(),
        out_dir,
    )
}

fn pem_has_key(pem: &[u8]) -> bool {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{SELF_SIGNED, chosen_certificate};

    fn names() -> NodeNames {
        NodeNames {
            host: "node1".into(),
            fqdn: Some("node1.example.com".into()),
            addresses: vec!["192.0.2.10".parse().unwrap()],
        }
    }

    #[test]
    fn the_winning_certificate_is_copied_with_its_key_for_the_directory_owner() {
        let certs = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("old.cert"), "stale").unwrap();
        fs::write(out.path().join("old.key"), "stale").unwrap();
        let now = 1_800_000_000;
        let copy = install_certificate(certs.path(), &names(), now, out.path()).unwrap();
        // Made in the certificates directory, as the console always did.
        let own = certs.path().join(format!("{SELF_SIGNED}.cert"));
        assert!(own.exists());
        assert_eq!(chosen_certificate(out.path()).unwrap(), Some(copy.clone()));
        let (chain, _key) = load(&copy).unwrap();
        assert_eq!(chain, load(&own).unwrap().0);
        let meta = fs::metadata(&copy).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        let dir = fs::metadata(out.path()).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (dir.uid(), dir.gid()));
        let left: Vec<_> = fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, [INSTALLED]);
        // The next start installs the same certificate again (nothing was due).
        let again = install_certificate(certs.path(), &names(), now + 60, out.path()).unwrap();
        assert_eq!(load(&again).unwrap().0, chain);
    }

    #[test]
    fn an_unusable_certificate_is_refused_naming_it_and_nothing_is_copied() {
        let certs = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let bad = certs.path().join("90-admin.cert");
        fs::write(&bad, "not a certificate").unwrap();
        let e = install_certificate(certs.path(), &names(), 1_800_000_000, out.path()).unwrap_err();
        assert!(e.to_string().contains("90-admin.cert"), "{e}");
        assert!(!out.path().join(INSTALLED).exists());
    }
}
