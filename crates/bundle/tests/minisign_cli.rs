//! The signature is minisign's own format: the `minisign` program checks
//! ours, and a bundle it signs is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use bundle::{BundleError, SignKey};
use common::{EPOCH, Fixture, run};

fn have_minisign() -> bool {
    hvnode_testutil::require_tool("minisign")
}

/// `minisign -G -W`: an unencrypted key pair, as CI makes a test key.
fn cli_key_pair(fx: &Fixture, name: &str) -> (String, String) {
    let sk = fx.tmp.path().join(format!("{name}.key"));
    let pk = fx.tmp.path().join(format!("{name}.pub"));
    let (ok, text) = run(
        "minisign",
        &[
            "-G",
            "-W",
            "-p",
            pk.to_str().unwrap(),
            "-s",
            sk.to_str().unwrap(),
        ],
    );
    assert!(ok, "{text}");
    (
        sk.to_str().unwrap().to_string(),
        pk.to_str().unwrap().to_string(),
    )
}

#[test]
fn minisign_verifies_our_signature() {
    if !have_minisign() {
        return;
    }
    let fx = Fixture::new();
    let (sk, pk) = cli_key_pair(&fx, "ci");
    let key = SignKey::load(sk.as_ref(), None).unwrap();
    bundle::write_bundle(&fx.bundle, &fx.squashfs, &fx.metadata, EPOCH, Some(&key)).unwrap();
    let b = fx.bundle.to_str().unwrap();
    let (ok, text) = run("minisign", &["-V", "-p", &pk, "-m", b]);
    assert!(ok, "{text}");
    assert!(
        text.contains("Signature and comment signature verified"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "timestamp:{EPOCH}\tfile:hvnode-1.1-0.20261201.0.update.tar"
        )),
        "{text}"
    );
    // -H: minisign insists on a pre-hashed signature, which ours is.
    let (ok, text) = run("minisign", &["-V", "-H", "-p", &pk, "-m", b]);
    assert!(ok, "{text}");

    // The key file this crate derives is the one minisign wrote.
    assert_eq!(
        key.public_key_file().lines().nth(1),
        fs::read_to_string(&pk).unwrap().lines().nth(1)
    );

    // And minisign refuses it once the bundle changed.
    let mut bytes = fs::read(&fx.bundle).unwrap();
    let last = bytes.len() - 2000;
    bytes[last] ^= 1;
    fs::write(&fx.bundle, bytes).unwrap();
    let (ok, text) = run("minisign", &["-V", "-p", &pk, "-m", b]);
    assert!(!ok, "{text}");
}

#[test]
fn a_bundle_signed_by_minisign_is_accepted() {
    if !have_minisign() {
        return;
    }
    let fx = Fixture::new();
    let (sk, pk) = cli_key_pair(&fx, "release");
    fs::copy(&pk, fx.keys.join("release.pub")).unwrap();
    bundle::write_bundle(&fx.bundle, &fx.squashfs, &fx.metadata, EPOCH, None).unwrap();
    let b = fx.bundle.to_str().unwrap();
    let (ok, text) = run("minisign", &["-S", "-s", &sk, "-m", b]);
    assert!(ok, "{text}");

    let out = fx.out_dir("staging");
    let ex = bundle::extract(&fx.bundle, &out, &fx.opts()).unwrap();
    let by = ex.verified.signed_by.unwrap();
    assert_eq!(by.key_file, fx.keys.join("release.pub"));
    // The CLI's comment prints the id as a number (`%X`: no leading zeros,
    // so one key in 16 shows fewer than 16 digits).
    let cli_id = fs::read_to_string(&pk).unwrap();
    let comment_id = cli_id
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().last())
        .map(|h| u64::from_str_radix(h, 16).unwrap());
    assert_eq!(
        comment_id,
        Some(u64::from_str_radix(&by.key_id, 16).unwrap()),
        "{cli_id} vs {}",
        by.key_id
    );
    assert_eq!(fs::read(&ex.root).unwrap(), fx.root_data);

    // A legacy (not pre-hashed) signature is refused with what to do.
    let (ok, text) = run("minisign", &["-S", "-l", "-s", &sk, "-m", b]);
    assert!(ok, "{text}");
    let e = fx.refused(&fx.bundle, &fx.opts());
    assert!(matches!(e, BundleError::LegacySignature { .. }), "{e}");
}

#[test]
fn an_encrypted_minisign_key_signs_with_its_password() {
    if !have_minisign() {
        return;
    }
    let fx = Fixture::new();
    let sk = fx.tmp.path().join("enc.key");
    let pk = fx.keys.join("enc.pub");
    let mut child = Command::new("minisign")
        .args(["-G", "-p"])
        .arg(&pk)
        .arg("-s")
        .arg(&sk)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Not a terminal: minisign reads the password (twice) from stdin.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"pass phrase\npass phrase\n")
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");

    assert!(SignKey::load(&sk, None).is_err());
    let key = SignKey::load(&sk, Some("pass phrase")).unwrap();
    bundle::write_bundle(&fx.bundle, &fx.squashfs, &fx.metadata, EPOCH, Some(&key)).unwrap();
    bundle::verify(&fx.bundle, &fx.opts()).unwrap();
    let (ok, text) = run(
        "minisign",
        &[
            "-V",
            "-p",
            pk.to_str().unwrap(),
            "-m",
            fx.bundle.to_str().unwrap(),
        ],
    );
    assert!(ok, "{text}");
}
