//! Shared by the bundle tests: keys, a build's outputs, hand-made tars.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use bundle::{BundleError, Manifest, Member, Metadata, SignKey, VerifyOptions};
use sha2::{Digest, Sha256};

pub const NVR: &str = "hvnode-1.1-0.20261201.0";
pub const EPOCH: i64 = 1_764_547_200;
/// A string found once in the root squashfs's bytes, to damage it.
pub const MARKER: &[u8] = b"ROOT-MARKER-7f3a";

/// A fresh unencrypted key pair in `dir`: (secret key file, public key file).
pub fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let sk = dir.join(format!("{name}.key"));
    let pk = dir.join(format!("{name}.pub"));
    fs::write(&sk, kp.sk.to_box(None).unwrap().into_string()).unwrap();
    fs::write(&pk, kp.pk.to_box().unwrap().into_string()).unwrap();
    (sk, pk)
}

pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A build's outputs and a node's trusted keys.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    /// The trusted keys directory, holding the public half of `key`.
    pub keys: PathBuf,
    pub key: SignKey,
    pub squashfs: PathBuf,
    pub root_data: Vec<u8>,
    pub metadata: Metadata,
    /// Where the bundle goes: `NVR.update.tar`.
    pub bundle: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        Self::with_nvr(NVR)
    }

    pub fn with_nvr(nvr: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("secret");
        let keys = tmp.path().join("trusted.d");
        fs::create_dir_all(&secret).unwrap();
        fs::create_dir_all(&keys).unwrap();
        let (sk, pk) = key_pair(&secret, "build");
        fs::copy(&pk, keys.join("build.pub")).unwrap();
        let key = SignKey::load(&sk, None).unwrap();
        let mut root_data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        root_data[150_000..150_000 + MARKER.len()].copy_from_slice(MARKER);
        let squashfs = tmp.path().join(format!("{nvr}.squashfs.img"));
        fs::write(&squashfs, &root_data).unwrap();
        let metadata = Metadata {
            nvr: nvr.into(),
            kernel: "6.1.0-41-amd64".into(),
            build_epoch: EPOCH,
            squashfs: format!("{nvr}.squashfs.img"),
            squashfs_size: root_data.len() as u64,
            squashfs_sha256: sha256(&root_data),
        };
        let bundle = tmp.path().join(format!("{nvr}.update.tar"));
        Fixture {
            tmp,
            keys,
            key,
            squashfs,
            root_data,
            metadata,
            bundle,
        }
    }

    /// Writes the bundle, signed.
    pub fn write_signed(&self) -> &Path {
        bundle::write_bundle(
            &self.bundle,
            &self.squashfs,
            &self.metadata,
            EPOCH,
            Some(&self.key),
        )
        .unwrap();
        &self.bundle
    }

    pub fn opts(&self) -> VerifyOptions {
        VerifyOptions {
            trusted_keys: self.keys.clone(),
            ..VerifyOptions::default()
        }
    }

    /// A new, empty directory to extract into.
    pub fn out_dir(&self, name: &str) -> PathBuf {
        let d = self.tmp.path().join(name);
        fs::create_dir(&d).unwrap();
        d
    }

    /// Extracts `bundle` with `opts` into a fresh directory, expecting a
    /// refusal, and checks that the directory is empty afterwards.
    pub fn refused(&self, bundle: &Path, opts: &VerifyOptions) -> BundleError {
        let out = self.tmp.path().join(format!(
            "out-{}",
            fs::read_dir(self.tmp.path()).unwrap().count()
        ));
        fs::create_dir(&out).unwrap();
        let e = bundle::extract(bundle, &out, opts).expect_err("the bundle was accepted");
        assert_empty(&out);
        e
    }

    /// The standard members of a bundle of this fixture's build, manifest
    /// first, for tests that change them.
    pub fn members(&self) -> (Manifest, Vec<Raw>) {
        let meta = self.metadata.to_bytes();
        let nvr = self.metadata.nvr.parse().unwrap();
        let manifest = Manifest::new(
            &nvr,
            vec![
                Member::of(bundle::METADATA, &meta),
                Member::of(&self.metadata.squashfs, &self.root_data),
            ],
        );
        let raws = vec![
            Raw::file("manifest.json", manifest.to_bytes()),
            Raw::file(bundle::METADATA, meta),
            Raw::file(&self.metadata.squashfs, self.root_data.clone()),
        ];
        (manifest, raws)
    }

    /// Writes `members` as a tar at `name` and signs it with the trusted key.
    pub fn craft_signed(&self, name: &str, members: &[Raw]) -> PathBuf {
        let path = self.tmp.path().join(name);
        craft(&path, members);
        self.key.sign_bundle(&path, 0).unwrap();
        path
    }
}

pub fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        dir.display()
    );
}

/// A tar member written as given: any name bytes, any type.
#[derive(Debug, Clone)]
pub struct Raw {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub link: Option<Vec<u8>>,
    pub data: Vec<u8>,
}

impl Raw {
    pub fn file(name: &str, data: Vec<u8>) -> Raw {
        Raw {
            name: name.as_bytes().to_vec(),
            kind: tar::EntryType::Regular,
            link: None,
            data,
        }
    }
}

/// Writes `members` as a GNU tar, bypassing the tar crate's path checks.
pub fn craft(path: &Path, members: &[Raw]) {
    let mut tar = tar::Builder::new(fs::File::create(path).unwrap());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(m.data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(m.kind);
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..m.name.len()].copy_from_slice(&m.name);
        if let Some(link) = &m.link {
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_cksum();
        tar.append(&h, &m.data[..]).unwrap();
    }
    tar.into_inner().unwrap();
}

/// Runs a program, returning whether it succeeded and its output.
pub fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Each member of the tar at `path`: (name, header offset, data offset).
pub fn offsets(path: &Path) -> Vec<(String, u64, u64)> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.raw_header_position(),
                e.raw_file_position(),
            )
        })
        .collect()
}
