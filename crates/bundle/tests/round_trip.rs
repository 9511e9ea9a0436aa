//! Writing, verifying and extracting a bundle; signing keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::Read;

use bundle::{BundleError, SignKey, VerifyOptions, Warning, WriteError};
use common::{EPOCH, Fixture, NVR, assert_empty};

#[test]
fn round_trip_write_verify_extract() {
    let fx = Fixture::new();
    let written =
        bundle::write_bundle(&fx.bundle, &fx.squashfs, &fx.metadata, EPOCH, Some(&fx.key)).unwrap();
    assert_eq!(
        written.signature.as_deref(),
        Some(bundle::signature_path(&fx.bundle).as_path())
    );
    assert!(
        bundle::signature_path(&fx.bundle)
            .to_string_lossy()
            .ends_with(&format!("{NVR}.update.tar.minisig"))
    );

    let checked = bundle::verify(&fx.bundle, &fx.opts()).unwrap();
    assert_eq!(checked.nvr.to_string(), NVR);
    assert_eq!(checked.metadata, fx.metadata);
    assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
    let by = checked.signed_by.unwrap();
    assert_eq!(by.key_id, fx.key.key_id());
    assert_eq!(by.key_file, fx.keys.join("build.pub"));
    assert_eq!(
        by.trusted_comment,
        format!("timestamp:{EPOCH}\tfile:{NVR}.update.tar\thashed")
    );

    let out = fx.out_dir("staging");
    let ex = bundle::extract(&fx.bundle, &out, &fx.opts()).unwrap();
    assert_eq!(ex.root, out.join(format!("{NVR}.squashfs.img")));
    assert_eq!(fs::read(&ex.root).unwrap(), fx.root_data);
    assert_eq!(fs::read(&ex.metadata).unwrap(), fx.metadata.to_bytes());
    let mut names: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["hvnode-1.1-0.20261201.0.squashfs.img", "metadata.json"]
    );
    assert_eq!(ex.verified.manifest, written.manifest);
}

#[test]
fn members_come_in_order_with_fixed_owners_and_times() {
    let fx = Fixture::new();
    fx.write_signed();
    let mut archive = tar::Archive::new(fs::File::open(&fx.bundle).unwrap());
    let mut seen = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header();
        assert_eq!(
            (h.uid().unwrap(), h.gid().unwrap(), h.mode().unwrap()),
            (0, 0, 0o644)
        );
        assert_eq!(h.mtime().unwrap(), EPOCH as u64);
        let name = e.path().unwrap().display().to_string();
        if name == "manifest.json" {
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            let m: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(m["product"], "hvnode");
            assert_eq!(m["format_version"], 1);
            assert_eq!(m["nvr"], NVR);
            assert_eq!(m["members"][1]["sha256"], fx.metadata.squashfs_sha256);
            assert_eq!(m["members"][1]["size"], fx.root_data.len());
        }
        seen.push(name);
    }
    assert_eq!(
        seen,
        [
            "manifest.json",
            "metadata.json",
            "hvnode-1.1-0.20261201.0.squashfs.img"
        ]
    );
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let fx = Fixture::new();
    let other = fx.tmp.path().join("again.tar");
    bundle::write_bundle(&fx.bundle, &fx.squashfs, &fx.metadata, EPOCH, None).unwrap();
    bundle::write_bundle(&other, &fx.squashfs, &fx.metadata, EPOCH, Some(&fx.key)).unwrap();
    assert_eq!(fs::read(&fx.bundle).unwrap(), fs::read(&other).unwrap());
}

#[test]
fn verify_writes_nothing_and_extract_wants_an_empty_directory() {
    let fx = Fixture::new();
    fx.write_signed();
    let before: Vec<_> = fs::read_dir(fx.tmp.path()).unwrap().collect();
    bundle::verify(&fx.bundle, &fx.opts()).unwrap();
    assert_eq!(fs::read_dir(fx.tmp.path()).unwrap().count(), before.len());

    let out = fx.out_dir("busy");
    fs::write(out.join("mine"), "keep").unwrap();
    let e = bundle::extract(&fx.bundle, &out, &fx.opts()).unwrap_err();
    assert!(matches!(e, BundleError::OutputNotEmpty { .. }), "{e}");
    assert_eq!(fs::read_to_string(out.join("mine")).unwrap(), "keep");
}

#[test]
fn an_unsigned_bundle_is_refused_and_no_verify_says_what_it_skips() {
    let fx = Fixture::new();
    fx.write_signed();
    // Written again without a key: the old signature must not stay beside it.
    bundle::write_bundle(&fx.bundle, &fx.squashfs, &fx.metadata, EPOCH, None).unwrap();
    assert!(!bundle::signature_path(&fx.bundle).exists());

    let e = fx.refused(&fx.bundle, &fx.opts());
    assert!(matches!(e, BundleError::Unsigned { .. }), "{e}");
    let msg = e.to_string();
    for part in [
        fx.bundle.display().to_string(),
        fx.keys.display().to_string(),
        "minisign -S".into(),
        "no-verify".into(),
    ] {
        assert!(msg.contains(&part), "{part:?} not in: {msg}");
    }

    let opts = VerifyOptions {
        no_verify: true,
        ..fx.opts()
    };
    let out = fx.out_dir("unverified");
    let ex = bundle::extract(&fx.bundle, &out, &opts).unwrap();
    assert!(ex.verified.signed_by.is_none());
    assert_eq!(
        ex.verified.warnings,
        [Warning::SignatureNotChecked {
            bundle: fx.bundle.clone()
        }]
    );
    let shown = ex.verified.warnings[0].to_string();
    assert!(shown.contains("NOT checked") && shown.contains(&fx.bundle.display().to_string()));
}

#[test]
fn no_trusted_keys_is_an_error_naming_the_directory() {
    let fx = Fixture::new();
    fx.write_signed();
    let empty = fx.out_dir("no-keys");
    for dir in [empty.clone(), empty.join("missing")] {
        let opts = VerifyOptions {
            trusted_keys: dir.clone(),
            ..VerifyOptions::default()
        };
        let e = fx.refused(&fx.bundle, &opts);
        assert!(matches!(e, BundleError::NoTrustedKeys { .. }), "{e}");
        assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
    }
    // A file in the key directory that is not a key is reported, not skipped.
    fs::write(fx.keys.join("broken.pub"), "not a key\n").unwrap();
    let e = fx.refused(&fx.bundle, &fx.opts());
    assert!(matches!(e, BundleError::BadKeyFile { .. }), "{e}");
}

#[test]
fn an_encrypted_key_needs_its_password_and_never_prompts() {
    let fx = Fixture::new();
    let kp = minisign::KeyPair::generate_encrypted_keypair(Some("s3cret".into())).unwrap();
    let sk = fx.tmp.path().join("encrypted.key");
    fs::write(&sk, kp.sk.to_box(None).unwrap().into_string()).unwrap();
    fs::write(
        fx.keys.join("encrypted.pub"),
        kp.pk.to_box().unwrap().into_string(),
    )
    .unwrap();

    let e = SignKey::load(&sk, None).unwrap_err();
    assert!(matches!(e, WriteError::KeyNeedsPassword { .. }), "{e}");
    assert!(e.to_string().contains("HVNODE_SIGN_KEY_PASSWORD"), "{e}");
    let e = SignKey::load(&sk, Some("wrong")).unwrap_err();
    assert!(matches!(e, WriteError::BadKey { .. }), "{e}");

    let key = SignKey::load(&sk, Some("s3cret")).unwrap();
    bundle::write_bundle(&fx.bundle, &fx.squashfs, &fx.metadata, EPOCH, Some(&key)).unwrap();
    let ok = bundle::verify(&fx.bundle, &fx.opts()).unwrap();
    assert_eq!(ok.signed_by.unwrap().key_id, key.key_id());
}

#[test]
fn bad_inputs_are_refused_before_writing() {
    let fx = Fixture::new();
    let mut meta = fx.metadata.clone();
    meta.nvr = "x".into();
    let e = bundle::write_bundle(&fx.bundle, &fx.squashfs, &meta, EPOCH, None).unwrap_err();
    assert!(e.to_string().contains("not an image NVR"), "{e}");

    let mut meta = fx.metadata.clone();
    meta.squashfs_size += 1;
    let e = bundle::write_bundle(&fx.bundle, &fx.squashfs, &meta, EPOCH, None).unwrap_err();
    assert!(matches!(e, WriteError::BadInput { .. }), "{e}");

    let mut meta = fx.metadata.clone();
    meta.squashfs_sha256 = common::sha256(b"something else");
    let e = bundle::write_bundle(&fx.bundle, &fx.squashfs, &meta, EPOCH, None).unwrap_err();
    assert!(matches!(e, WriteError::SquashfsChanged { .. }), "{e}");
    assert!(!fx.bundle.exists());
    let left: Vec<_> = fs::read_dir(fx.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_empty(&fx.out_dir("unused"));
}
