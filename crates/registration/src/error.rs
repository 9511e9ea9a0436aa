//! The errors a caller of this crate may need to tell apart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use command::CommandError;

/// What went wrong, in words an administrator can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine could not be reached (refused, reset, timed out, name not found).
    #[error(
        "cannot reach the engine at {engine}: {reason}; check the engine's name and port and \
         that the node's network is up"
    )]
    Unreachable {
        /// `host:port` of the engine.
        engine: String,
        /// What the network layer said.
        reason: String,
    },

    /// The engine's TLS certificate is valid but names another host.
    #[error(
        "the engine's certificate does not name {expected}{}; use the engine's fully qualified \
         name exactly as its certificate states",
        presented_names(.presented)
    )]
    HostMismatch {
        /// The name or address the node connected to.
        expected: String,
        /// The names the certificate carries, when known.
        presented: Vec<String>,
    },

    /// The engine's TLS certificate does not check out against the CA the node trusts.
    #[error("the engine at {engine} presented a certificate this node cannot trust: {detail}")]
    Untrusted {
        /// `host:port` of the engine.
        engine: String,
        /// What the TLS layer said.
        detail: String,
    },

    /// The engine's CA is not the one confirmed at the last registration.
    #[error(
        "the engine's CA certificate changed since the last registration (was SHA-256 {old}, \
         now {new}); confirm the new fingerprint to register again"
    )]
    CaChanged {
        /// SHA-256 fingerprint of the CA confirmed earlier.
        old: String,
        /// SHA-256 fingerprint of the CA the engine serves now.
        new: String,
    },

    /// The engine answered 400; `message` is its own text, without HTML.
    #[error("the engine refused {command}: {message}")]
    EngineRejected {
        /// The protocol command.
        command: String,
        /// The engine's message.
        message: String,
    },

    /// The engine answered something the protocol does not allow.
    #[error("unexpected answer from the engine to {command}: {detail}")]
    UnexpectedAnswer {
        /// The protocol command.
        command: String,
        /// What was wrong with it.
        detail: String,
    },

    /// The engine's answer to `get-ssh-trust` is not one OpenSSH public key line.
    #[error(
        "the engine's answer to get-ssh-trust is not an SSH public key ({reason}); it began \
         with {excerpt:?}; nothing was written to authorized_keys"
    )]
    NotAnSshKey {
        /// Why it was rejected.
        reason: String,
        /// The first characters of the answer.
        excerpt: String,
    },

    /// The engine's CA does not have the fingerprint the administrator gave.
    #[error(
        "fingerprint mismatch: expected {expected}, but the engine's CA certificate has \
         SHA-256 {sha256} and SHA-1 {sha1}; nothing was stored"
    )]
    FingerprintMismatch {
        /// The fingerprint given.
        expected: String,
        /// The CA's SHA-256 fingerprint.
        sha256: String,
        /// The CA's SHA-1 fingerprint.
        sha1: String,
    },

    /// A fingerprint given on the command line, kickstart or kernel argument is malformed.
    #[error(
        "{input:?} is not a fingerprint: {reason} (expected SHA256: followed by hex or \
         base64, or SHA-1 as colon-separated hex)"
    )]
    BadFingerprint {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No one confirmed the engine's CA fingerprint.
    #[error(
        "the engine's CA fingerprint was not confirmed; pass --fingerprint with the \
         fingerprint shown on the engine, or run on a terminal to confirm it"
    )]
    ConfirmationRequired,

    /// The administrator declined the fingerprint.
    #[error("the engine's CA fingerprint was not accepted; nothing was stored")]
    Declined,

    /// Another registration is running on this node.
    #[error(
        "another registration is running on this node (the boot-time service or another \
         nodectl); wait for it to end or check nodectl register --status"
    )]
    Busy,

    /// The engine's CA answer is not a PEM certificate.
    #[error("the engine's CA answer is not a PEM certificate: {0}")]
    BadCa(String),

    /// The engine address given is not usable.
    #[error("{0:?} is not an engine address (expected FQDN, FQDN:PORT or [IPv6]:PORT)")]
    BadEngineAddress(String),

    /// The SSH user is not in the node's passwd file.
    #[error("the SSH user {user:?} does not exist in {}", .passwd.display())]
    UnknownUser {
        /// The user name.
        user: String,
        /// The passwd file read.
        passwd: PathBuf,
    },

    /// The persisted state file cannot be read.
    #[error("the registration state {} is unreadable: {detail}", .path.display())]
    BadState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// A file could not be read or written.
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// What was being done ("reading", "writing", …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },

    /// A file or directory root writes for a user (`~/.ssh`, `authorized_keys`) is a
    /// symbolic link, not of the expected kind or owned by someone else: going through
    /// it could make root change or read files elsewhere, so nothing was done to it.
    #[error("refusing to {action} {}: {problem}; {remedy}", .path.display())]
    UnsafePath {
        /// What was being done ("add the engine's SSH key to", …).
        action: &'static str,
        /// The file or directory refused.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What the administrator should do.
        remedy: String,
    },

    /// An external program failed.
    #[error(transparent)]
    Command(#[from] CommandError),
}

fn presented_names(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (it names {})", names.join(", "))
    }
}

/// The kind of an [`Error`], as stored in the state file and shown by `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// [`Error::Unreachable`]
    Unreachable,
    /// [`Error::HostMismatch`]
    HostMismatch,
    /// [`Error::Untrusted`]
    Untrusted,
    /// [`Error::CaChanged`]
    CaChanged,
    /// [`Error::EngineRejected`]
    EngineRejected,
    /// [`Error::UnexpectedAnswer`] and [`Error::BadCa`]
    UnexpectedAnswer,
    /// [`Error::NotAnSshKey`]
    NotAnSshKey,
    /// [`Error::Busy`]
    Busy,
    /// [`Error::FingerprintMismatch`]
    FingerprintMismatch,
    /// [`Error::BadFingerprint`] and [`Error::BadEngineAddress`]
    BadInput,
    /// [`Error::ConfirmationRequired`] and [`Error::Declined`]
    NotConfirmed,
    /// Local problems: files, users, programs, state, unsafe paths.
    Local,
}

/// An [`Error`] as it crosses a process boundary: `nodectl register --json` prints
/// it when a registration fails, and the console, which asks the privileged helper to
/// run nodectl, shows it as it would show the error itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorReport {
    /// What kind of failure it was (what to do next depends on it).
    pub error_kind: ErrorKind,
    /// The error's message, as [`Error`]'s `Display` writes it.
    pub message: String,
}

impl From<&Error> for ErrorReport {
    fn from(e: &Error) -> Self {
        Self {
            error_kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unreachable { .. } => ErrorKind::Unreachable,
            Self::HostMismatch { .. } => ErrorKind::HostMismatch,
            Self::Untrusted { .. } => ErrorKind::Untrusted,
            Self::CaChanged { .. } => ErrorKind::CaChanged,
            Self::EngineRejected { .. } => ErrorKind::EngineRejected,
            Self::UnexpectedAnswer { .. } | Self::BadCa(_) => ErrorKind::UnexpectedAnswer,
            Self::NotAnSshKey { .. } => ErrorKind::NotAnSshKey,
            Self::Busy => ErrorKind::Busy,
            Self::FingerprintMismatch { .. } => ErrorKind::FingerprintMismatch,
            Self::BadFingerprint { .. } | Self::BadEngineAddress(_) => ErrorKind::BadInput,
            Self::ConfirmationRequired | Self::Declined => ErrorKind::NotConfirmed,
            Self::UnknownUser { .. }
            | Self::BadState { .. }
            | Self::Io { .. }
            | Self::UnsafePath { .. } => ErrorKind::Local,
            Self::Command(_) => ErrorKind::Local,
        }
    }

    /// Whether trying again later may succeed without anyone changing anything
    /// (the engine was down, the network was not up yet, the engine said no for now).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Unreachable
                | ErrorKind::EngineRejected
                | ErrorKind::UnexpectedAnswer
                | ErrorKind::Busy
        )
    }
}
