//! The image is verified before anything is written: by its minisign
//! signature (beside it, or at its URL + `.minisig`), by `liveimg
//! --checksum`, by the kernel argument `hvnode.image_sha256=`, or as the
//! file the live system booted from; an image nothing verifies is refused
//! before it is read, unless the kickstart opts in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use bundle::SignKey;
use installer::payload::{self, Proof, Trust, Verified};
use kickstart::node::ImageSource;
use sha2::{Digest, Sha256};

const IMAGE: &[u8] = b"hsqs: stands in for a node image, signed by the build";

/// A build's key, the live system's trusted keys and an image.
struct Fixture {
    tmp: tempfile::TempDir,
    key: SignKey,
    /// The trusted keys directory, holding the public half of `key`.
    keys: PathBuf,
    /// Where the image is served from (`squashfs.img` in it).
    media: PathBuf,
    /// The installer's work folder.
    work: PathBuf,
}

/// A fresh unencrypted key pair: (secret key file, public key file text).
fn key_pair(dir: &Path, name: &str) -> (PathBuf, String) {
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let sk = dir.join(format!("{name}.key"));
    fs::write(&sk, kp.sk.to_box(None).unwrap().into_string()).unwrap();
    (sk, kp.pk.to_box().unwrap().into_string())
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("trusted.d");
        let media = tmp.path().join("media");
        let work = tmp.path().join("work");
        for d in [&keys, &media, &work] {
            fs::create_dir_all(d).unwrap();
        }
        let (sk, pk) = key_pair(tmp.path(), "build");
        fs::write(keys.join("build.pub"), pk).unwrap();
        let key = SignKey::load(&sk, None).unwrap();
        fs::write(media.join("squashfs.img"), IMAGE).unwrap();
        Fixture {
            tmp,
            key,
            keys,
            media,
            work,
        }
    }

    fn image(&self) -> PathBuf {
        self.media.join("squashfs.img")
    }

    fn sign(&self) -> PathBuf {
        self.key.sign_bundle(&self.image(), 1_764_547_200).unwrap()
    }

    fn trust(&self) -> Trust {
        Trust {
            keys: self.keys.clone(),
            boot_root: None,
            boot_sha256: None,
            booted_files: Vec::new(),
            allow_unverified: false,
        }
    }

    /// `liveimg --url=file://…` of the image.
    fn local(&self, checksum: Option<String>) -> ImageSource {
        url(format!("file://{}", self.image().display()), checksum)
    }

    /// Files in the work folder (where downloads go).
    fn work_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.work)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn url(url: String, checksum: Option<String>) -> ImageSource {
    ImageSource::Url {
        url,
        checksum,
        proxy: None,
        noverifyssl: false,
    }
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// What one verification said: its result, its notes, and whether the
/// image was read at all (the progress callback runs at least once per
/// read).
struct Outcome {
    result: anyhow::Result<Verified>,
    notes: Vec<String>,
    read: bool,
}

impl Outcome {
    fn error(&self) -> String {
        match &self.result {
            Ok(v) => panic!("accepted: {v:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn verified(self) -> Verified {
        match self.result {
            Ok(v) => v,
            Err(e) => panic!("refused: {e:#}"),
        }
    }
}

fn verify(src: &ImageSource, trust: &Trust, work: &Path) -> Outcome {
    let mut notes = Vec::new();
    let mut read = false;
    let result = payload::fetch_and_verify(
        src,
        trust,
        work,
        &mut |s| notes.push(s.to_string()),
        &mut |_, _| read = true,
    );
    Outcome {
        result,
        notes,
        read,
    }
}

/// Serves the files of `dir` over HTTP on localhost (404 for others);
/// returns the base URL.
fn serve(dir: PathBuf) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
            }
            let name = request
                .split_whitespace()
                .nth(1)
                .unwrap()
                .trim_start_matches('/')
                .to_string();
            match fs::read(dir.join(name)) {
                Ok(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.write_all(head.as_bytes()).unwrap();
                    stream.write_all(&body).unwrap();
                }
                Err(_) => stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap(),
            }
        }
    });
    url
}

#[test]
fn a_good_signature_beside_the_image_verifies_it() {
    let fx = Fixture::new();
    let sig = fx.sign();
    let v = verify(&fx.local(None), &fx.trust(), &fx.work).verified();
    assert_eq!(v.path, fx.image());
    assert_eq!(v.sha256, sha256(IMAGE));
    match v.proofs.as_slice() {
        [
            Proof::Signature {
                signature,
                key_id,
                key_file,
                trusted_comment,
            },
        ] => {
            assert_eq!(*signature, sig.display().to_string());
            assert_eq!(key_id, fx.key.key_id());
            assert_eq!(*key_file, fx.keys.join("build.pub"));
            assert!(
                trusted_comment.contains("file:squashfs.img"),
                "{trusted_comment}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(fx.work_files().is_empty(), "a local image is not copied");
}

#[test]
fn a_signature_and_a_checksum_are_both_checked() {
    let fx = Fixture::new();
    fx.sign();
    let v = verify(&fx.local(Some(sha256(IMAGE))), &fx.trust(), &fx.work).verified();
    assert!(matches!(
        v.proofs.as_slice(),
        [Proof::Signature { .. }, Proof::Checksum]
    ));
}

#[test]
fn a_bad_signature_is_refused_even_with_a_good_checksum_or_the_opt_in() {
    let fx = Fixture::new();
    let sig = fx.sign();
    // The image changed after it was signed (the checksum is the new one's).
    let changed = b"hsqs: another image, put in the place of the signed one";
    fs::write(fx.image(), changed).unwrap();
    let mut trust = fx.trust();
    trust.allow_unverified = true;
    for (checksum, trust) in [(None, fx.trust()), (Some(sha256(changed)), trust)] {
        let out = verify(&fx.local(checksum), &trust, &fx.work);
        let e = out.error();
        assert!(
            e.contains(&format!("the signature {} does not match", sig.display()))
                && e.contains(&fx.image().display().to_string())
                && e.contains(fx.key.key_id())
                && e.contains("nothing was written to any disk")
                && e.contains("Get both again"),
            "{e}"
        );
    }
    assert!(fx.work_files().is_empty());
}

#[test]
fn a_bad_signature_over_http_is_refused_and_the_download_removed() {
    let fx = Fixture::new();
    fx.sign();
    fs::write(fx.image(), b"hsqs: changed on the server").unwrap();
    let base = serve(fx.media.clone());
    let out = verify(
        &url(format!("{base}/squashfs.img"), None),
        &fx.trust(),
        &fx.work,
    );
    let e = out.error();
    assert!(
        e.contains(&format!(
            "the signature {base}/squashfs.img.minisig does not match"
        )),
        "{e}"
    );
    assert!(fx.work_files().is_empty(), "{:?}", fx.work_files());
}

#[test]
fn a_good_signature_over_http_verifies_the_download() {
    let fx = Fixture::new();
    fx.sign();
    let base = serve(fx.media.clone());
    let v = verify(
        &url(format!("{base}/squashfs.img"), None),
        &fx.trust(),
        &fx.work,
    )
    .verified();
    assert_eq!(v.path, fx.work.join("image.squashfs.img"));
    assert_eq!(fs::read(&v.path).unwrap(), IMAGE);
    assert!(
        matches!(v.proofs.as_slice(), [Proof::Signature { signature, .. }]
        if *signature == format!("{base}/squashfs.img.minisig"))
    );
}

#[test]
fn no_signature_and_no_checksum_is_refused_before_the_image_is_read() {
    let fx = Fixture::new();
    let base = serve(fx.media.clone());
    for (src, sig) in [
        (fx.local(None), format!("{}.minisig", fx.image().display())),
        (
            url(format!("{base}/squashfs.img"), None),
            format!("{base}/squashfs.img.minisig"),
        ),
    ] {
        let out = verify(&src, &fx.trust(), &fx.work);
        let e = out.error();
        assert!(!out.read, "the image was read: {e}");
        assert!(
            e.contains(
                "cannot be verified, so it is not installed (nothing was written to any disk)"
            ) && e.contains(&sig)
                && e.contains("add --checksum=SHA256")
                && e.contains(&fx.keys.display().to_string())
                && e.contains("\"%addon org_hvnode_image --allow-unverified\" and \"%end\""),
            "{e}"
        );
    }
    assert!(fx.work_files().is_empty(), "{:?}", fx.work_files());
}

#[test]
fn the_opt_in_installs_an_unverified_image_with_a_warning() {
    let fx = Fixture::new();
    let mut trust = fx.trust();
    trust.allow_unverified = true;
    let out = verify(&fx.local(None), &trust, &fx.work);
    let notes = out.notes.clone();
    let v = out.verified();
    assert!(v.proofs.is_empty(), "{:?}", v.proofs);
    assert_eq!(v.sha256, sha256(IMAGE));
    assert!(
        notes.iter().any(|n| n.starts_with("WARNING:")
            && n.contains("installed UNVERIFIED")
            && n.contains("org_hvnode_image --allow-unverified")),
        "{notes:?}"
    );
}

#[test]
fn the_checksum_alone_verifies_as_before() {
    let fx = Fixture::new();
    let base = serve(fx.media.clone());
    for src in [
        fx.local(Some(sha256(IMAGE))),
        url(format!("{base}/squashfs.img"), Some(sha256(IMAGE))),
    ] {
        let out = verify(&src, &fx.trust(), &fx.work);
        assert!(out.notes.is_empty(), "{:?}", out.notes);
        assert_eq!(out.verified().proofs, [Proof::Checksum]);
    }
    let wrong = verify(&fx.local(Some("00".repeat(32))), &fx.trust(), &fx.work).error();
    assert!(
        wrong.contains("liveimg --checksum says") && wrong.contains("nothing was written"),
        "{wrong}"
    );
}

#[test]
fn a_signature_by_an_unknown_key_is_refused_unless_a_checksum_verifies() {
    let fx = Fixture::new();
    let (sk, _) = key_pair(fx.tmp.path(), "stranger");
    SignKey::load(&sk, None)
        .unwrap()
        .sign_bundle(&fx.image(), 0)
        .unwrap();
    let e = verify(&fx.local(None), &fx.trust(), &fx.work).error();
    assert!(
        e.contains("which is not among the trusted keys in")
            && e.contains("add --checksum=SHA256")
            && e.contains("Nothing was written to any disk"),
        "{e}"
    );
    // An empty key directory says so.
    fs::remove_file(fx.keys.join("build.pub")).unwrap();
    let e = verify(&fx.local(None), &fx.trust(), &fx.work).error();
    assert!(e.contains("holds no trusted key (*.pub)"), "{e}");
    // The checksum verifies the image; the signature is noted, not checked.
    let out = verify(&fx.local(Some(sha256(IMAGE))), &fx.trust(), &fx.work);
    let notes = out.notes.clone();
    assert_eq!(out.verified().proofs, [Proof::Checksum]);
    assert!(
        notes.iter().any(|n| n.contains("is not checked")),
        "{notes:?}"
    );
}

#[test]
fn a_signature_file_that_is_not_one_is_refused() {
    let fx = Fixture::new();
    fs::write(
        bundle::signature_path(&fx.image()),
        "untrusted comment: nothing\nnot base64\n",
    )
    .unwrap();
    let out = verify(&fx.local(Some(sha256(IMAGE))), &fx.trust(), &fx.work);
    let e = out.error();
    assert!(
        e.contains("is not a minisign signature") && e.contains("nothing was written"),
        "{e}"
    );
    assert!(!out.read);
}

#[test]
fn the_kernel_argument_verifies_the_image_the_system_booted() {
    let fx = Fixture::new();
    let base = serve(fx.media.clone());
    let image_url = format!("{base}/squashfs.img");
    let src = url(image_url.clone(), None);
    let mut trust = fx.trust();
    trust.boot_root = Some(image_url.clone());
    trust.boot_sha256 = Some(sha256(IMAGE));
    assert_eq!(
        verify(&src, &trust, &fx.work).verified().proofs,
        [Proof::BootArgument]
    );
    // A wrong sum is refused, the download removed.
    trust.boot_sha256 = Some("ab".repeat(32));
    let e = verify(&src, &trust, &fx.work).error();
    assert!(
        e.contains("the kernel argument hvnode.image_sha256= says")
            && e.contains("nothing was written to any disk"),
        "{e}"
    );
    assert!(fx.work_files().is_empty(), "{:?}", fx.work_files());
    // Another image than the one booted: the argument is not its sum.
    trust.boot_sha256 = Some(sha256(IMAGE));
    trust.boot_root = Some(format!("{base}/other.img"));
    let out = verify(&src, &trust, &fx.work);
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("not used for it") && n.contains(&image_url)),
        "{:?}",
        out.notes
    );
    assert!(out.error().contains("cannot be verified"));
}

#[test]
fn the_file_the_live_system_booted_from_is_trusted() {
    let fx = Fixture::new();
    let mut trust = fx.trust();
    trust.booted_files = vec![fs::canonicalize(fx.image()).unwrap()];
    let v = verify(&fx.local(None), &trust, &fx.work).verified();
    assert_eq!(v.proofs, [Proof::Booted]);
    // Its signature, when there is one, is checked too.
    fx.sign();
    let v = verify(&fx.local(None), &trust, &fx.work).verified();
    assert!(matches!(
        v.proofs.as_slice(),
        [Proof::Signature { .. }, Proof::Booted]
    ));
}
