//! hvnode's update bundle, `NVR.update.tar`, and its signature
//! `NVR.update.tar.minisig`.
//!
//! The bundle is a tar whose first member is `manifest.json` (product,
//! format version, NVR, and the size and sha256 of every other member),
//! followed by `metadata.json` and the root squashfs `NVR.squashfs.img`.
//! [`write_bundle`] makes it reproducibly (fixed order, owners, modes and
//! times) and signs it, if given a key, in minisign's format, so that
//! `minisign -V` checks it and a signature made by the `minisign` program
//! is accepted here.
//!
//! [`extract`] reads a bundle once, from start to end: it checks the
//! signature file against the trusted keys before reading the tar, the
//! manifest before any member is written, each member's name, type, size
//! and sha256 as it is written into the caller's (empty) directory, and the
//! signature over the whole file at the end. On any refusal
//! ([`BundleError`]) the directory is left as empty as it was given.
//!
//! The format, the trust model and how to sign by hand are described in
//! the crate's README.

mod error;
mod keys;
mod manifest;
mod read;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};

pub use error::{BundleError, WriteError};
pub use keys::{
    SignKey, Signature, SignatureCheck, SignatureFormatError, TrustedKey, TrustedKeys,
    read_public_key,
};
pub use layers::Nvr;
pub use manifest::{Manifest, Member, Metadata, check_member_name, root_member};
pub use read::{Extracted, SignedBy, Verified, VerifyOptions, extract, verify};
pub use write::{Written, write_bundle};

/// The product every bundle of this project names in its manifest.
pub const PRODUCT: &str = "hvnode";
/// The manifest format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The first member of every bundle.
pub const MANIFEST: &str = "manifest.json";
/// The build's description (NVR, kernel, build time, root squashfs).
pub const METADATA: &str = "metadata.json";
/// Where a node looks for the public keys it trusts (`*.pub`).
pub const TRUSTED_KEYS_DIR: &str = "/etc/hvnode/trusted.d";
/// The environment variable naming the secret key a build signs with.
pub const SIGN_KEY_ENV: &str = "HVNODE_SIGN_KEY";
/// The environment variable holding the password of an encrypted secret
/// key.
pub const SIGN_KEY_PASSWORD_ENV: &str = "HVNODE_SIGN_KEY_PASSWORD";

/// The signature file of `bundle`: `NVR.update.tar.minisig` beside it.
pub fn signature_path(bundle: &Path) -> PathBuf {
    let mut s = bundle.as_os_str().to_owned();
    s.push(".minisig");
    PathBuf::from(s)
}

/// Something a bundle was accepted in spite of; the caller must show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The no-verify option was given: the signature was not checked.
    SignatureNotChecked { bundle: PathBuf },
    /// The bundle is older than the installed image and downgrades were
    /// allowed.
    Downgrade { bundle: Nvr, installed: Nvr },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::SignatureNotChecked { bundle } => write!(
                f,
                "WARNING: the signature of {} was NOT checked (no-verify): nothing proves who made \
                 this bundle or that it is unchanged since; only its own manifest was checked, \
                 which anyone who changes the bundle can rewrite. Install it only if you have \
                 checked its origin yourself.",
                bundle.display()
            ),
            Warning::Downgrade { bundle, installed } => write!(
                f,
                "WARNING: {bundle} is older than the installed {installed}: this is a downgrade \
                 (allowed by the allow-downgrade option)"
            ),
        }
    }
}
