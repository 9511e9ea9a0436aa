//! `manifest.json` (the bundle's first member) and `metadata.json`, and
//! the rule for member names.

use std::path::Path;

use layers::Nvr;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::BundleError;
use crate::{FORMAT_VERSION, MANIFEST, METADATA, PRODUCT};

/// The largest `manifest.json` or `metadata.json` a reader accepts.
pub(crate) const SMALL_MEMBER_MAX: u64 = 1 << 20;

/// Longest member name: a name fits the tar header's 100-byte field, so no
/// GNU or pax extension header is ever needed (and none is accepted).
const NAME_MAX: usize = 100;

/// The first member of a bundle: what it is and what else it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`PRODUCT`].
    pub product: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The image the bundle installs, `name-version-release`.
    pub nvr: String,
    /// Every other member, in the order they follow the manifest.
    pub members: Vec<Member>,
}

/// One member after the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

impl Member {
    /// A member holding `data`.
    pub fn of(name: &str, data: &[u8]) -> Member {
        Member {
            name: name.to_string(),
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
        }
    }
}

/// `metadata.json`: the build that made the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub nvr: String,
    pub kernel: String,
    pub build_epoch: i64,
    /// The root squashfs member, `NVR.squashfs.img`.
    pub squashfs: String,
    pub squashfs_size: u64,
    pub squashfs_sha256: String,
}

/// The name of the root squashfs member of the image `nvr`.
pub fn root_member(nvr: &Nvr) -> String {
    format!("{nvr}.squashfs.img")
}

/// Whether `name` (a tar member's name, as stored) may be a member: one
/// plain file name of letters, digits and `. _ + -`, starting with a letter
/// or digit. Returns the name, or why it may not be.
pub fn check_member_name(name: &[u8]) -> Result<&str, &'static str> {
    let name = std::str::from_utf8(name).map_err(|_| "has a name that is not UTF-8")?;
    if name.is_empty() {
        return Err("has an empty name");
    }
    if name.starts_with('/') {
        return Err("has an absolute path");
    }
    if name.split('/').any(|c| c == "..") {
        return Err("leads out of the extraction directory (..)");
    }
    if name.contains('/') {
        return Err("is in a directory");
    }
    if name.len() > NAME_MAX {
        return Err("has a name longer than 100 bytes");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
    {
        return Err("has a name with characters other than letters, digits and . _ + -");
    }
    Ok(name)
}

pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Manifest {
    /// The manifest of a bundle of `nvr` holding `members`.
    pub fn new(nvr: &Nvr, members: Vec<Member>) -> Manifest {
        Manifest {
            product: PRODUCT.to_string(),
            format_version: FORMAT_VERSION,
            nvr: nvr.to_string(),
            members,
        }
    }

    /// The bytes of `manifest.json`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses and checks `manifest.json` of `bundle`: the product, the
    /// format, the NVR, safe and unique member names, metadata and root
    /// squashfs listed. Returns it with its NVR.
    pub(crate) fn parse(bundle: &Path, bytes: &[u8]) -> Result<(Manifest, Nvr), BundleError> {
        let not = |reason: String| BundleError::NotABundle {
            bundle: bundle.to_path_buf(),
            reason,
        };
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| not(format!("{MANIFEST} is not JSON: {e}")))?;
        // Product and format first: a newer format may have other fields.
        match value.get("product").and_then(|p| p.as_str()) {
            Some(PRODUCT) => {}
            Some(other) => {
                return Err(BundleError::WrongProduct {
                    bundle: bundle.to_path_buf(),
                    product: other.to_string(),
                });
            }
            None => return Err(not(format!("{MANIFEST} names no product"))),
        }
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(version) => {
                return Err(BundleError::UnsupportedFormat {
                    bundle: bundle.to_path_buf(),
                    version,
                });
            }
            None => return Err(not(format!("{MANIFEST} has no format_version"))),
        }
        let manifest: Manifest = serde_json::from_value(value)
            .map_err(|e| not(format!("{MANIFEST} does not have the expected fields: {e}")))?;
        let nvr: Nvr = manifest
            .nvr
            .parse()
            .map_err(|e| not(format!("{MANIFEST}: {e}")))?;
        manifest.check_members(bundle, &nvr)?;
        Ok((manifest, nvr))
    }

    fn check_members(&self, bundle: &Path, nvr: &Nvr) -> Result<(), BundleError> {
        let not = |reason: String| BundleError::NotABundle {
            bundle: bundle.to_path_buf(),
            reason,
        };
        let mut seen = std::collections::BTreeSet::new();
        for m in &self.members {
            check_member_name(m.name.as_bytes()).map_err(|reason| BundleError::UnsafeMember {
                bundle: bundle.to_path_buf(),
                member: m.name.clone(),
                reason,
            })?;
            if m.name == MANIFEST || !seen.insert(m.name.as_str()) {
                return Err(BundleError::DuplicateMember {
                    bundle: bundle.to_path_buf(),
                    member: m.name.clone(),
                });
            }
            if !is_sha256(&m.sha256) {
                return Err(not(format!(
                    "{MANIFEST} gives {:?} a sha256 that is not 64 lower-case hex digits",
                    m.name
                )));
            }
        }
        match self.member(METADATA) {
            None => return Err(not(format!("{MANIFEST} does not list {METADATA}"))),
            Some(m) if m.size > SMALL_MEMBER_MAX => {
                return Err(not(format!(
                    "{METADATA} is {} bytes; it is at most {SMALL_MEMBER_MAX}",
                    m.size
                )));
            }
            Some(_) => {}
        }
        let root = root_member(nvr);
        if self.member(&root).is_none() {
            return Err(not(format!(
                "{MANIFEST} does not list the root squashfs {root}"
            )));
        }
        Ok(())
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

impl Metadata {
    /// The bytes of `metadata.json`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses `metadata.json` and checks it against the manifest.
    pub(crate) fn parse(
        bundle: &Path,
        bytes: &[u8],
        manifest: &Manifest,
        nvr: &Nvr,
    ) -> Result<Metadata, BundleError> {
        let not = |reason: String| BundleError::NotABundle {
            bundle: bundle.to_path_buf(),
            reason,
        };
        let meta: Metadata = serde_json::from_slice(bytes)
            .map_err(|e| not(format!("{METADATA} is not a build description: {e}")))?;
        let root = root_member(nvr);
        let agrees = manifest.member(&root).is_some_and(|m| {
            meta.nvr == manifest.nvr
                && meta.squashfs == root
                && meta.squashfs_size == m.size
                && meta.squashfs_sha256 == m.sha256
        });
        if !agrees {
            return Err(not(format!(
                "{METADATA} (NVR {}, {} of {} bytes) disagrees with {MANIFEST}",
                meta.nvr, meta.squashfs, meta.squashfs_size
            )));
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_plain_file_names() {
        assert_eq!(check_member_name(b"metadata.json"), Ok("metadata.json"));
        assert_eq!(
            check_member_name(b"hvnode-1.0-0.20261125.0.squashfs.img"),
            Ok("hvnode-1.0-0.20261125.0.squashfs.img")
        );
        for (name, why) in [
            (&b"../x"[..], "(..)"),
            (b"a/../../x", "(..)"),
            (b"..", "(..)"),
            (b"/etc/passwd", "absolute"),
            (b"a/b", "directory"),
            (b"", "empty"),
            (b".hidden", "characters"),
            (b"a b", "characters"),
            (b"\xff", "UTF-8"),
        ] {
            let e = check_member_name(name).unwrap_err();
            assert!(e.contains(why), "{name:?}: {e}");
        }
        assert!(check_member_name(&[b'a'; 101]).is_err());
        assert!(check_member_name(&[b'a'; 100]).is_ok());
    }

    #[test]
    fn manifest_round_trips_and_checks_its_members() {
        let nvr: Nvr = "hvnode-1.0-1".parse().unwrap();
        let m = Manifest::new(
            &nvr,
            vec![
                Member::of(METADATA, b"{}"),
                Member::of(&root_member(&nvr), b"root"),
            ],
        );
        let (back, n) = Manifest::parse(Path::new("b.tar"), &m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(n, nvr);

        let mut no_root = m.clone();
        no_root.members.pop();
        let e = Manifest::parse(Path::new("b.tar"), &no_root.to_bytes()).unwrap_err();
        assert!(e.to_string().contains("root squashfs"), "{e}");

        let mut dup = m.clone();
        dup.members.push(dup.members[0].clone());
        let e = Manifest::parse(Path::new("b.tar"), &dup.to_bytes()).unwrap_err();
        assert!(matches!(e, BundleError::DuplicateMember { .. }), "{e}");

        let mut newer = serde_json::to_value(&m).unwrap();
        newer["format_version"] = 2.into();
        newer["new_field"] = true.into();
        let e = Manifest::parse(Path::new("b.tar"), newer.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(e, BundleError::UnsupportedFormat { version: 2, .. }),
            "{e}"
        );
    }
}
