//! Where a bundle comes from: a local path, or an http(s) URL downloaded
//! into the scratch space first. The signature is `SOURCE.minisig` unless
//! given; the bundle reader looks beside the bundle, so a signature from
//! elsewhere is put there (beside a link to the bundle) in the scratch
//! space.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A bundle, with its signature beside it, ready for `bundle::extract`.
#[derive(Debug, Clone)]
pub struct Local {
    pub bundle: PathBuf,
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The last path element of `source` (a path or a URL), checked.
fn file_name(source: &str) -> Result<String> {
    let name = source
        .split(['?', '#'])
        .next()
        .unwrap_or(source)
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    if name.is_empty() || name.starts_with('.') || !name.ends_with(".tar") {
        bail!("{source} does not name an update bundle (NVR.update.tar)");
    }
    Ok(name)
}

/// Makes `source` (and `signature`, if given) local under `dir`, an empty
/// folder in the scratch space.
pub fn localize(source: &str, signature: Option<&str>, dir: &Path) -> Result<Local> {
    let name = file_name(source)?;
    let sig_default = format!("{source}.minisig");
    let sig = signature.unwrap_or(&sig_default);
    if !is_url(source) && signature.is_none() {
        return Ok(Local {
            bundle: PathBuf::from(source),
        });
    }
    let bundle = dir.join(&name);
    if is_url(source) {
        download(source, &bundle)?;
    } else {
        let abs = std::path::absolute(source)
            .with_context(|| format!("resolving the bundle path {source}"))?;
        std::os::unix::fs::symlink(&abs, &bundle)
            .with_context(|| format!("linking {} in {}", abs.display(), dir.display()))?;
    }
    let sig_dst = bundle::signature_path(&bundle);
    if is_url(sig) {
        download(sig, &sig_dst)?;
    } else {
        std::fs::copy(sig, &sig_dst).with_context(|| format!("reading the signature {sig}"))?;
    }
    Ok(Local { bundle })
}

fn download(url: &str, to: &Path) -> Result<()> {
    let mut resp = ureq::get(url)
        .call()
        .with_context(|| format!("fetching {url}: is the server reachable and the URL right?"))?;
    let mut out = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let mut body = resp.body_mut().with_config().limit(u64::MAX).reader();
    io::copy(&mut body, &mut out).with_context(|| format!("downloading {url}"))?;
    out.sync_all()
        .with_context(|| format!("flushing {}", to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_bundles() {
        assert_eq!(
            file_name("https://h/x/hvnode-1.1-1.update.tar?sig=1").unwrap(),
            "hvnode-1.1-1.update.tar"
        );
        assert!(file_name("https://h/x/").is_err());
        assert!(file_name("/tmp/image.squashfs").is_err());
    }

    #[test]
    fn a_signature_from_elsewhere_is_put_beside_a_link_to_the_bundle() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("hvnode-1.1-1.update.tar");
        std::fs::write(&b, b"tar").unwrap();
        let s = d.path().join("other.minisig");
        std::fs::write(&s, b"sig").unwrap();
        let work = d.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let b_str = b.display().to_string();
        let l = localize(&b_str, Some(&s.display().to_string()), &work).unwrap();
        assert_eq!(std::fs::read(&l.bundle).unwrap(), b"tar");
        assert_eq!(
            std::fs::read(bundle::signature_path(&l.bundle)).unwrap(),
            b"sig"
        );
        // Without --signature the bundle is used where it is.
        assert_eq!(localize(&b_str, None, &work).unwrap().bundle, b);
    }
}
