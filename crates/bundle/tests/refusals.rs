//! Every refusal, each leaving the output directory empty.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use bundle::{BundleError, Manifest, Member, Nvr, VerifyOptions, Warning};
use common::{EPOCH, Fixture, MARKER, Raw, key_pair};

fn flip_marker(path: &std::path::Path) {
    let mut bytes = fs::read(path).unwrap();
    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .unwrap();
    bytes[at] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_signature_is_refused() {
    let fx = Fixture::new();
    fx.write_signed();
    let sig = bundle::signature_path(&fx.bundle);
    let text = fs::read_to_string(&sig).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Change the signed trusted comment: the global signature no longer fits.
    lines[2].push_str(" changed");
    fs::write(&sig, lines.join("\n") + "\n").unwrap();
    let e = fx.refused(&fx.bundle, &fx.opts());
    assert!(matches!(e, BundleError::BadSignature { .. }), "{e}");
    assert!(e.to_string().contains("get both again"), "{e}");

    fs::write(&sig, "untrusted comment: x\nnot base64\n").unwrap();
    let e = fx.refused(&fx.bundle, &fx.opts());
    assert!(matches!(e, BundleError::BadSignatureFile { .. }), "{e}");
}

#[test]
fn a_signature_of_other_contents_is_refused() {
    // Members changed and the manifest rewritten to match: only the
    // signature notices.
    let fx = Fixture::new();
    fx.write_signed();
    let sig = fs::read(bundle::signature_path(&fx.bundle)).unwrap();
    let (_, mut raws) = fx.members();
    raws[1] = Raw::file(bundle::METADATA, {
        let mut m = fx.metadata.clone();
        m.kernel = "6.12-evil".into();
        m.to_bytes()
    });
    let nvr: Nvr = common::NVR.parse().unwrap();
    let manifest = Manifest::new(
        &nvr,
        vec![
            Member::of(bundle::METADATA, &raws[1].data),
            Member::of(&fx.metadata.squashfs, &fx.root_data),
        ],
    );
    raws[0] = Raw::file("manifest.json", manifest.to_bytes());
    common::craft(&fx.bundle, &raws);
    fs::write(bundle::signature_path(&fx.bundle), sig).unwrap();
    let e = fx.refused(&fx.bundle, &fx.opts());
    assert!(matches!(e, BundleError::BadSignature { .. }), "{e}");
}

#[test]
fn a_key_that_is_not_trusted_is_refused() {
    let fx = Fixture::new();
    let (sk, _) = key_pair(fx.tmp.path(), "stranger");
    let stranger = bundle::SignKey::load(&sk, None).unwrap();
    bundle::write_bundle(
        &fx.bundle,
        &fx.squashfs,
        &fx.metadata,
        EPOCH,
        Some(&stranger),
    )
    .unwrap();
    let e = fx.refused(&fx.bundle, &fx.opts());
    match &e {
        BundleError::UnknownKey { key_id, .. } => assert_eq!(key_id, stranger.key_id()),
        other => panic!("{other}"),
    }
    assert!(
        e.to_string().contains(&fx.keys.display().to_string()),
        "{e}"
    );
}

#[test]
fn a_member_changed_after_signing_is_refused() {
    let fx = Fixture::new();
    fx.write_signed();
    flip_marker(&fx.bundle);
    let e = fx.refused(&fx.bundle, &fx.opts());
    match &e {
        BundleError::MemberMismatch { member, what, .. } => {
            assert_eq!(member, &fx.metadata.squashfs);
            assert_eq!(*what, "sha256");
        }
        other => panic!("{other}"),
    }
    // Not even no-verify takes it: the manifest still does not match.
    let opts = VerifyOptions {
        no_verify: true,
        ..fx.opts()
    };
    let e = fx.refused(&fx.bundle, &opts);
    assert!(matches!(e, BundleError::MemberMismatch { .. }), "{e}");
}

#[test]
fn a_member_of_another_size_is_refused() {
    let fx = Fixture::new();
    let (_, mut raws) = fx.members();
    raws[2].data.push(0);
    let b = fx.craft_signed("size.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    assert!(
        matches!(e, BundleError::MemberMismatch { what: "size", .. }),
        "{e}"
    );
}

#[test]
fn another_product_is_refused() {
    let fx = Fixture::new();
    let (mut manifest, mut raws) = fx.members();
    manifest.product = "othernode".into();
    raws[0] = Raw::file("manifest.json", manifest.to_bytes());
    let b = fx.craft_signed("product.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    match &e {
        BundleError::WrongProduct { product, .. } => assert_eq!(product, "othernode"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_downgrade_is_refused_unless_allowed() {
    let fx = Fixture::new();
    fx.write_signed();
    let newer: Nvr = "hvnode-1.10-0.20261101.0".parse().unwrap();
    let opts = VerifyOptions {
        installed: Some(newer.clone()),
        ..fx.opts()
    };
    let e = fx.refused(&fx.bundle, &opts);
    assert!(matches!(e, BundleError::Downgrade { .. }), "{e}");
    assert!(e.to_string().contains("allow-downgrade"), "{e}");

    let allowed = VerifyOptions {
        allow_downgrade: true,
        ..opts
    };
    let out = fx.out_dir("downgrade");
    let ex = bundle::extract(&fx.bundle, &out, &allowed).unwrap();
    assert_eq!(
        ex.verified.warnings,
        [Warning::Downgrade {
            bundle: common::NVR.parse().unwrap(),
            installed: newer,
        }]
    );

    // The same NVR or an older one installed: no downgrade.
    for installed in [common::NVR, "hvnode-1.1-0.20261130.9"] {
        let opts = VerifyOptions {
            installed: Some(installed.parse().unwrap()),
            ..fx.opts()
        };
        assert!(bundle::verify(&fx.bundle, &opts).is_ok(), "{installed}");
    }
}

#[test]
fn an_extra_member_is_refused() {
    let fx = Fixture::new();
    let (_, mut raws) = fx.members();
    raws.insert(2, Raw::file("extra.sh", b"#!/bin/sh\n".to_vec()));
    let b = fx.craft_signed("extra.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    match &e {
        BundleError::UnlistedMember { member, .. } => assert_eq!(member, "extra.sh"),
        other => panic!("{other}"),
    }
    // At the end, after every listed member, too.
    let (_, mut raws) = fx.members();
    raws.push(Raw::file("extra.sh", b"#!/bin/sh\n".to_vec()));
    let b = fx.craft_signed("extra-last.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    assert!(matches!(e, BundleError::UnlistedMember { .. }), "{e}");
}

#[test]
fn a_missing_member_is_refused() {
    let fx = Fixture::new();
    let (_, mut raws) = fx.members();
    raws.pop();
    let b = fx.craft_signed("no-root.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    match &e {
        BundleError::MissingMember { member, .. } => assert_eq!(member, &fx.metadata.squashfs),
        other => panic!("{other}"),
    }
    let (_, mut raws) = fx.members();
    raws.remove(1);
    let b = fx.craft_signed("no-metadata.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    assert!(
        matches!(&e, BundleError::MissingMember { member, .. } if member == "metadata.json"),
        "{e}"
    );
}

#[test]
fn a_member_twice_or_out_of_order_is_refused() {
    let fx = Fixture::new();
    let (_, mut raws) = fx.members();
    raws.push(raws[1].clone());
    let b = fx.craft_signed("twice.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    assert!(matches!(e, BundleError::DuplicateMember { .. }), "{e}");

    let (_, mut raws) = fx.members();
    raws.swap(1, 2);
    let b = fx.craft_signed("swapped.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    assert!(matches!(e, BundleError::MissingMember { .. }), "{e}");
}

#[test]
fn the_manifest_must_come_first() {
    let fx = Fixture::new();
    let (_, mut raws) = fx.members();
    raws.swap(0, 1);
    let b = fx.craft_signed("late-manifest.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    assert!(matches!(e, BundleError::NotABundle { .. }), "{e}");
    assert!(e.to_string().contains("first member"), "{e}");
}

#[test]
fn paths_out_of_the_directory_and_links_are_refused() {
    let fx = Fixture::new();
    let sneaky = |name: &[u8], kind: tar::EntryType, link: Option<&[u8]>| Raw {
        name: name.to_vec(),
        kind,
        link: link.map(<[u8]>::to_vec),
        data: if kind == tar::EntryType::Regular {
            b"owned\n".to_vec()
        } else {
            Vec::new()
        },
    };
    let cases = [
        (sneaky(b"../x", tar::EntryType::Regular, None), "(..)"),
        (
            sneaky(b"/etc/cron.d/x", tar::EntryType::Regular, None),
            "absolute",
        ),
        (
            sneaky(b"sub/dir/x", tar::EntryType::Regular, None),
            "directory",
        ),
        (
            sneaky(b"link", tar::EntryType::Symlink, Some(b"/etc/shadow")),
            "symbolic link",
        ),
        (
            sneaky(b"hard", tar::EntryType::Link, Some(b"metadata.json")),
            "hard link",
        ),
        (sneaky(b"d", tar::EntryType::Directory, None), "directory"),
        (sneaky(b"fifo", tar::EntryType::Fifo, None), "plain file"),
    ];
    for (i, (raw, why)) in cases.into_iter().enumerate() {
        // Right after the manifest, and after a member already written.
        for at in [1, 2] {
            let (_, mut raws) = fx.members();
            raws.insert(at, raw.clone());
            let b = fx.craft_signed(&format!("unsafe-{i}-{at}.tar"), &raws);
            let e = fx.refused(&b, &fx.opts());
            match &e {
                BundleError::UnsafeMember { reason, .. } => {
                    assert!(reason.contains(why), "{raw:?}: {e}")
                }
                other => panic!("{raw:?}: {other}"),
            }
        }
    }
    assert!(!fx.tmp.path().parent().unwrap().join("x").exists());

    // A manifest that lists such a name is refused before any member.
    let (mut manifest, mut raws) = fx.members();
    manifest.members.push(Member::of("../x", b"owned\n"));
    raws[0] = Raw::file("manifest.json", manifest.to_bytes());
    let b = fx.craft_signed("unsafe-listed.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    assert!(matches!(e, BundleError::UnsafeMember { .. }), "{e}");
}

#[test]
fn a_truncated_bundle_is_refused() {
    let fx = Fixture::new();
    fx.write_signed();
    let whole = fs::read(&fx.bundle).unwrap();
    let at = common::offsets(&fx.bundle);
    let root_header = at[2].1 as usize;
    // Inside the root squashfs, at the header before it, in the manifest.
    for (i, len) in [whole.len() - 100_000, root_header, 300]
        .into_iter()
        .enumerate()
    {
        let cut = fx.tmp.path().join(format!("cut-{i}.update.tar"));
        fs::write(&cut, &whole[..len]).unwrap();
        fs::copy(
            bundle::signature_path(&fx.bundle),
            bundle::signature_path(&cut),
        )
        .unwrap();
        let e = fx.refused(&cut, &fx.opts());
        assert!(
            matches!(
                e,
                BundleError::Truncated { .. } | BundleError::MissingMember { .. }
            ),
            "{len}: {e}"
        );
    }
    let cut = fx.tmp.path().join("cut-0.update.tar");
    let e = fx.refused(&cut, &fx.opts());
    assert!(
        matches!(&e, BundleError::Truncated { member, .. } if member == &fx.metadata.squashfs),
        "{e}"
    );
}

#[test]
fn data_after_the_archive_or_a_broken_header_is_refused() {
    let fx = Fixture::new();
    let (_, raws) = fx.members();
    let b = fx.tmp.path().join("trailer.tar");
    common::craft(&b, &raws);
    let mut bytes = fs::read(&b).unwrap();
    bytes.extend_from_slice(b"appended");
    fs::write(&b, &bytes).unwrap();
    fx.key.sign_bundle(&b, 0).unwrap();
    let e = fx.refused(&b, &fx.opts());
    assert!(
        matches!(&e, BundleError::NotABundle { reason, .. } if reason.contains("after the end")),
        "{e}"
    );

    let mut bytes = fs::read(fx.write_signed()).unwrap();
    let metadata_header = common::offsets(&fx.bundle)[1].1 as usize;
    bytes[metadata_header + 10] ^= 1;
    let broken = fx.tmp.path().join("broken.tar");
    fs::write(&broken, bytes).unwrap();
    fx.key.sign_bundle(&broken, 0).unwrap();
    let e = fx.refused(&broken, &fx.opts());
    assert!(matches!(e, BundleError::NotABundle { .. }), "{e}");
}

#[test]
fn a_file_that_is_not_a_tar_is_refused() {
    let fx = Fixture::new();
    let b = fx.tmp.path().join("junk.update.tar");
    fs::write(&b, vec![0u8; 0]).unwrap();
    fx.key.sign_bundle(&b, 0).unwrap();
    let e = fx.refused(&b, &fx.opts());
    assert!(matches!(e, BundleError::NotABundle { .. }), "{e}");
}

#[test]
fn metadata_that_disagrees_with_the_manifest_is_refused() {
    let fx = Fixture::new();
    let (_, mut raws) = fx.members();
    let mut meta = fx.metadata.clone();
    meta.nvr = "hvnode-9.9-1".into();
    raws[1] = Raw::file(bundle::METADATA, meta.to_bytes());
    let nvr: Nvr = common::NVR.parse().unwrap();
    let manifest = Manifest::new(
        &nvr,
        vec![
            Member::of(bundle::METADATA, &raws[1].data),
            Member::of(&fx.metadata.squashfs, &fx.root_data),
        ],
    );
    raws[0] = Raw::file("manifest.json", manifest.to_bytes());
    let b = fx.craft_signed("disagree.tar", &raws);
    let e = fx.refused(&b, &fx.opts());
    assert!(
        matches!(&e, BundleError::NotABundle { reason, .. } if reason.contains("disagrees")),
        "{e}"
    );
}
