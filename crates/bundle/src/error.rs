//! Why a bundle is refused ([`BundleError`]) or cannot be written
//! ([`WriteError`]). Each message says what was being done and what to do
//! next.

use std::io;
use std::path::PathBuf;

use layers::Nvr;

/// Why reading a bundle stopped. Whatever was extracted has been removed:
/// the output directory is as empty as it was given.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{doing} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading the update bundle", …).
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the output directory {} is not empty: extract a bundle into a new, empty directory",
        dir.display()
    )]
    OutputNotEmpty { dir: PathBuf },
    #[error(
        "the update bundle {} is not signed: {} is missing. Get the signature that came with \
         the bundle, or sign the bundle with a key whose public key is in {} \
         (minisign -S -s KEY -m BUNDLE); skip this check (the no-verify option) only for a \
         bundle whose origin you have checked yourself",
        bundle.display(), signature.display(), keys.display()
    )]
    Unsigned {
        bundle: PathBuf,
        signature: PathBuf,
        keys: PathBuf,
    },
    #[error(
        "cannot check the signature of the update bundle {}: {} holds no trusted key (*.pub): \
         add the minisign public key of the bundle's publisher there",
        bundle.display(), keys.display()
    )]
    NoTrustedKeys { bundle: PathBuf, keys: PathBuf },
    #[error(
        "the trusted key {} is not a minisign public key ({reason}): replace it with the \
         publisher's .pub file, or remove it",
        file.display()
    )]
    BadKeyFile { file: PathBuf, reason: String },
    #[error(
        "{} is not a minisign signature ({reason}): get the signature that came with the \
         update bundle {} again",
        signature.display(), bundle.display()
    )]
    BadSignatureFile {
        bundle: PathBuf,
        signature: PathBuf,
        reason: String,
    },
    #[error(
        "{} is a legacy minisign signature (not pre-hashed), which is refused: sign the update \
         bundle {} again without minisign's -l",
        signature.display(), bundle.display()
    )]
    LegacySignature { bundle: PathBuf, signature: PathBuf },
    #[error(
        "the update bundle {} is signed with the key {key_id}, which is not among the trusted \
         keys in {}: if you trust its publisher, add its public key there (e.g. as \
         {key_id}.pub); otherwise get a bundle signed with a trusted key",
        bundle.display(), keys.display()
    )]
    UnknownKey {
        bundle: PathBuf,
        key_id: String,
        keys: PathBuf,
    },
    #[error(
        "the signature of the update bundle {} does not match its contents (key {key_id}, \
         trusted as {}): the bundle or its .minisig was changed or damaged after signing; get \
         both again",
        bundle.display(), key_file.display()
    )]
    BadSignature {
        bundle: PathBuf,
        key_id: String,
        key_file: PathBuf,
    },
    #[error("{} is not an hvnode update bundle: {reason}", bundle.display())]
    NotABundle { bundle: PathBuf, reason: String },
    #[error(
        "the update bundle {} has manifest format {version}, this node reads format {}: \
         update to a release that reads it first",
        bundle.display(), crate::FORMAT_VERSION
    )]
    UnsupportedFormat { bundle: PathBuf, version: u64 },
    #[error(
        "the update bundle {} is for the product {product:?}, not {:?}: use an {} update bundle",
        bundle.display(), crate::PRODUCT, crate::PRODUCT
    )]
    WrongProduct { bundle: PathBuf, product: String },
    #[error(
        "the update bundle {} holds {nvr}, older than the installed {installed}: refusing to \
         downgrade; use the allow-downgrade option to install it anyway",
        bundle.display()
    )]
    Downgrade {
        bundle: PathBuf,
        nvr: Box<Nvr>,
        installed: Box<Nvr>,
    },
    #[error(
        "the update bundle {} has a member {member:?} that its manifest does not list: it was \
         put together from mixed parts; get an intact bundle",
        bundle.display()
    )]
    UnlistedMember { bundle: PathBuf, member: String },
    #[error(
        "the update bundle {} lacks the member {member:?} where its manifest lists it: it is \
         incomplete or put together from mixed parts; get an intact bundle",
        bundle.display()
    )]
    MissingMember { bundle: PathBuf, member: String },
    #[error(
        "the update bundle {} has the member {member:?} twice: it was put together from mixed \
         parts; get an intact bundle",
        bundle.display()
    )]
    DuplicateMember { bundle: PathBuf, member: String },
    #[error(
        "the member {member:?} of the update bundle {} does not match the manifest ({what} \
         {found}, the manifest says {expected}): the bundle was changed after it was made; \
         get it again",
        bundle.display()
    )]
    MemberMismatch {
        bundle: PathBuf,
        member: String,
        /// `size` or `sha256`.
        what: &'static str,
        expected: String,
        found: String,
    },
    #[error(
        "the update bundle {} has a member {member:?} that {reason}: only plain files at the \
         top of the bundle are allowed; the bundle is refused, get one made by hvnode build",
        bundle.display()
    )]
    UnsafeMember {
        bundle: PathBuf,
        member: String,
        reason: &'static str,
    },
    #[error(
        "the update bundle {} is truncated (it ends inside {}): get it again",
        bundle.display(), ends_inside(member)
    )]
    Truncated {
        bundle: PathBuf,
        /// The member it ends in; empty when it ends in a tar header.
        member: String,
    },
}

fn ends_inside(member: &str) -> String {
    if member.is_empty() {
        "a tar header".into()
    } else {
        format!("its member {member:?}")
    }
}

impl BundleError {
    pub(crate) fn io(
        doing: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| BundleError::Io {
            doing,
            path,
            source,
        }
    }
}

/// Why a bundle, or its signature, could not be written. A partly written
/// bundle has been removed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the update bundle {}: {reason}", bundle.display())]
    BadInput { bundle: PathBuf, reason: String },
    #[error(
        "{} changed while the update bundle was written (it no longer matches the size or \
         sha256 the metadata gives): make sure nothing else writes it and build again",
        squashfs.display()
    )]
    SquashfsChanged { squashfs: PathBuf },
    #[error(
        "the secret key {} cannot be read as an unencrypted minisign key ({detail}); if it is \
         encrypted, put its password in the environment variable {env}",
        key.display()
    )]
    KeyNeedsPassword {
        key: PathBuf,
        env: &'static str,
        detail: String,
    },
    #[error(
        "the secret key {} cannot be used ({reason}): check the file (minisign -G makes one) \
         and its password",
        key.display()
    )]
    BadKey { key: PathBuf, reason: String },
    #[error(
        "signing the update bundle {} with the key {}: {reason}",
        bundle.display(), key.display()
    )]
    Sign {
        bundle: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl WriteError {
    pub(crate) fn io(
        doing: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| WriteError::Io {
            doing,
            path,
            source,
        }
    }
}
