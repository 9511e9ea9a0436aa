//! Failures, classified so that callers can branch on them: the URI, the connection,
//! the transport, the deadline, a malformed answer, or libvirt's own refusal with its
//! error number, domain and message. Every message says what was being done and what
//! to do next.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// libvirt's error numbers (`virErrorNumber` in `virterror.h`) this crate names.
pub mod code {
    /// `VIR_ERR_INTERNAL_ERROR`.
    pub const INTERNAL_ERROR: i32 = 1;
    /// `VIR_ERR_NO_SUPPORT`: the driver does not implement the call.
    pub const NO_SUPPORT: i32 = 3;
    /// `VIR_ERR_NO_CONNECT`: the hypervisor cannot be reached.
    pub const NO_CONNECT: i32 = 5;
    /// `VIR_ERR_INVALID_CONN`.
    pub const INVALID_CONN: i32 = 6;
    /// `VIR_ERR_OPERATION_FAILED`.
    pub const OPERATION_FAILED: i32 = 9;
    /// `VIR_ERR_OPERATION_DENIED`: forbidden on a read-only connection.
    pub const OPERATION_DENIED: i32 = 29;
    /// `VIR_ERR_SYSTEM_ERROR`.
    pub const SYSTEM_ERROR: i32 = 38;
    /// `VIR_ERR_RPC`.
    pub const RPC: i32 = 39;
    /// `VIR_ERR_NO_DOMAIN`: no such domain (any more).
    pub const NO_DOMAIN: i32 = 42;
    /// `VIR_ERR_NO_NETWORK`: no such virtual network.
    pub const NO_NETWORK: i32 = 43;
    /// `VIR_ERR_AUTH_FAILED`.
    pub const AUTH_FAILED: i32 = 45;
    /// `VIR_ERR_NO_STORAGE_POOL`: no such storage pool.
    pub const NO_STORAGE_POOL: i32 = 49;
    /// `VIR_ERR_NO_STORAGE_VOL`: no such storage volume.
    pub const NO_STORAGE_VOL: i32 = 50;
    /// `VIR_ERR_NO_DOMAIN_SNAPSHOT`: no such snapshot.
    pub const NO_DOMAIN_SNAPSHOT: i32 = 72;
    /// `VIR_ERR_OPERATION_INVALID`: not possible in the domain's current state.
    pub const OPERATION_INVALID: i32 = 55;
    /// `VIR_ERR_OPERATION_TIMEOUT`.
    pub const OPERATION_TIMEOUT: i32 = 68;
    /// `VIR_ERR_AUTH_CANCELLED`.
    pub const AUTH_CANCELLED: i32 = 79;
    /// `VIR_ERR_ACCESS_DENIED`: refused by libvirt's access control.
    pub const ACCESS_DENIED: i32 = 88;
    /// `VIR_ERR_AUTH_UNAVAILABLE`.
    pub const AUTH_UNAVAILABLE: i32 = 94;
}

/// A failure of the client. The connection is unusable after the transport kinds
/// ([`Error::Transport`], [`Error::Closed`], [`Error::Timeout`], [`Error::Protocol`]):
/// a late or half-read answer could otherwise be taken for the next call's, so every
/// later call fails with [`Error::Broken`] until the caller connects again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URI names something this client does not serve.
    #[error(
        "cannot use libvirt URI {uri:?}: {reason}; use a local URI such as qemu:///system or \
         test:///default, optionally with ?socket=PATH"
    )]
    Uri { uri: String, reason: &'static str },

    /// An argument cannot be sent (a NUL byte in a name, a string over the limit).
    #[error("cannot send {what} to libvirtd: {reason}")]
    InvalidArgument { what: &'static str, reason: String },

    /// The daemon's socket cannot be connected to.
    #[error(
        "cannot connect to libvirtd at {}: {source}; check that libvirtd (or the modular \
         daemon for the driver, such as virtqemud) runs and that this process may open \
         the socket",
        socket.display()
    )]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The daemon asks for an authentication this client does not speak (SASL).
    #[error(
        "libvirtd at {} asks for SASL authentication, which this client does not speak; \
         allow local access with auth_unix_rw = \"none\" or \"polkit\" in libvirtd.conf",
        socket.display()
    )]
    AuthUnsupported { socket: PathBuf },

    /// Sending or receiving failed at the socket.
    #[error("{doing} {procedure} failed: {source}; the connection is closed, connect again")]
    Transport {
        /// `sending` or `receiving the answer to`.
        doing: &'static str,
        procedure: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The daemon hung up.
    #[error(
        "libvirtd closed the connection during {procedure}; it may have stopped or \
         restarted: connect again once it runs"
    )]
    Closed { procedure: &'static str },

    /// The call's deadline passed before its whole answer arrived.
    #[error(
        "libvirtd did not answer {procedure} within {}; the connection is closed; check \
         libvirtd (journalctl -u libvirtd), then connect again, or allow more time with \
         Options::call_timeout",
        seconds(*timeout)
    )]
    Timeout {
        procedure: &'static str,
        timeout: Duration,
    },

    /// The daemon's answer is malformed (a bad frame or bad XDR).
    #[error(
        "libvirtd sent a malformed message during {procedure}: {problem}; the connection \
         is closed; connect again, and report it with libvirtd's version if it recurs"
    )]
    Protocol {
        procedure: &'static str,
        #[source]
        problem: ProtocolError,
    },

    /// libvirt refused the call (it answered with its error).
    #[error(transparent)]
    Remote(#[from] RemoteError),

    /// An earlier failure left this connection unusable.
    #[error(
        "the connection to libvirtd is unusable after an earlier failure ({reason}); connect again"
    )]
    Broken { reason: String },
}

impl Error {
    /// libvirt's refusal, if this is one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            Self::Remote(r) => Some(r),
            _ => None,
        }
    }

    /// libvirt's error number, if libvirt refused the call.
    pub fn remote_code(&self) -> Option<i32> {
        self.remote().map(|r| r.code)
    }

    /// Whether libvirt said the domain does not exist (any more): `VIR_ERR_NO_DOMAIN`.
    pub fn is_no_domain(&self) -> bool {
        self.remote().is_some_and(RemoteError::is_no_domain)
    }

    /// Whether libvirt said the object a call named does not exist: a domain, a
    /// network, a storage pool or volume, a snapshot.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.remote_code(),
            Some(
                code::NO_DOMAIN
                    | code::NO_NETWORK
                    | code::NO_STORAGE_POOL
                    | code::NO_STORAGE_VOL
                    | code::NO_DOMAIN_SNAPSHOT
            )
        )
    }

    /// Whether the call's deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether the failure is the connection's rather than the call's: the caller
    /// should connect again (after the daemon is back) rather than report the call.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Self::Remote(r) => r.is_connection_error(),
            Self::InvalidArgument { .. } => false,
            _ => true,
        }
    }

    /// Whether this failure leaves the connection unusable for later calls.
    pub(crate) fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Self::Transport { .. }
                | Self::Closed { .. }
                | Self::Timeout { .. }
                | Self::Protocol { .. }
        )
    }
}

/// libvirt's own error (`remote_error`): the call reached the daemon and was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RemoteError {
    /// The call refused (libvirt's API name, e.g. `virDomainCreate`).
    pub procedure: &'static str,
    /// `virErrorNumber`, see [`code`].
    pub code: i32,
    /// `virErrorDomain`: the part of libvirt that failed (10 is qemu, 12 the test driver).
    pub domain: i32,
    /// libvirt's message, e.g. `Domain not found: no domain with matching name 'x'`.
    pub message: String,
}

impl RemoteError {
    /// `VIR_ERR_NO_DOMAIN`: the domain does not exist (any more).
    pub fn is_no_domain(&self) -> bool {
        self.code == code::NO_DOMAIN
    }

    /// Whether libvirt reports the connection itself as failed (the hypervisor
    /// unreachable, the connection invalid, authentication). A system call that
    /// failed inside the daemon (`VIR_ERR_SYSTEM_ERROR`, say virtlogd being down) is
    /// the call's failure: the connection still serves.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self.code,
            code::NO_CONNECT
                | code::INVALID_CONN
                | code::RPC
                | code::AUTH_FAILED
                | code::AUTH_CANCELLED
                | code::AUTH_UNAVAILABLE
        )
    }

    /// What to do about it, by error number.
    fn advice(&self) -> &'static str {
        match self.code {
            code::NO_DOMAIN => {
                "the domain may have been undefined meanwhile: list the domains again"
            }
            code::OPERATION_INVALID => {
                "the domain's current state does not allow this: look at its state first"
            }
            code::ACCESS_DENIED | code::OPERATION_DENIED | code::AUTH_FAILED => {
                "connect as root, or allow this user in libvirt's polkit or access rules"
            }
            code::NO_SUPPORT => "the hypervisor driver does not offer this call",
            code::NO_CONNECT | code::INVALID_CONN | code::RPC => {
                "check that the hypervisor and libvirtd run, then connect again"
            }
            code::SYSTEM_ERROR => {
                "a system call failed in libvirtd: see its log (journalctl -u libvirtd) and \
                 check the services it uses (virtlogd, …)"
            }
            _ => "see libvirtd's log (journalctl -u libvirtd) for details",
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "libvirt refused {}: {} (libvirt error {}, domain {}); {}",
            self.procedure,
            self.message,
            self.code,
            self.domain,
            self.advice()
        )
    }
}

/// What is wrong with a malformed message from the daemon. Limits are errors, each
/// naming the limit of libvirt's protocol files it enforces; nothing is clamped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The length word is smaller than a header.
    #[error("a message of {len} bytes is shorter than the {min} bytes of length word and header")]
    ShortFrame { len: u64, min: u64 },
    /// The length word is over `VIR_NET_MESSAGE_MAX`.
    #[error(
        "a message of {len} bytes exceeds VIR_NET_MESSAGE_MAX ({limit} bytes and the length word)"
    )]
    FrameTooLarge { len: u64, limit: u64 },
    /// The bytes given do not match the length word.
    #[error("the length word says {declared} bytes but the message has {actual}")]
    LengthMismatch { declared: u64, actual: u64 },
    /// Another RPC program than libvirt's remote protocol.
    #[error("program {found:#010x} is not libvirt's remote program {expected:#010x}")]
    WrongProgram { found: u32, expected: u32 },
    /// Another version of the remote protocol.
    #[error("protocol version {found} is not version {expected}")]
    WrongVersion { found: u32, expected: u32 },
    /// A message type that a client never receives (a call, a stream).
    #[error("message type {found} where a reply (1) or an event (2) was expected")]
    UnexpectedType { found: u32 },
    /// A reply to another call than the one waiting.
    #[error("a reply with serial {found} where the reply to serial {expected} was awaited")]
    WrongSerial { expected: u32, found: u32 },
    /// A reply for another procedure than the one called.
    #[error("a reply for procedure {found} where one for procedure {expected} was awaited")]
    WrongProcedure { expected: i32, found: i32 },
    /// A procedure this client never calls.
    #[error("procedure {found} is not one this client calls")]
    UnknownProcedure { found: i32 },
    /// A status other than OK (0) and ERROR (1).
    #[error("status {found} is neither OK (0) nor ERROR (1)")]
    UnknownStatus { found: u32 },
    /// Fewer bytes than the next item needs.
    #[error("{what} needs {needed} bytes but only {left} are left")]
    Truncated {
        what: &'static str,
        needed: usize,
        left: usize,
    },
    /// A length or count over the limit the protocol declares for it.
    #[error("{what} of {len} exceeds {limit_name} ({limit})")]
    OverLimit {
        what: &'static str,
        len: u64,
        limit: u64,
        limit_name: &'static str,
    },
    /// A string that is not UTF-8.
    #[error("{what} is not UTF-8")]
    NotUtf8 { what: &'static str },
    /// A boolean or an optional-data discriminant other than 0 and 1.
    #[error("{what} is {found}, where 0 or 1 was expected")]
    BadDiscriminant { what: &'static str, found: u32 },
    /// Bytes arrived while no call was waiting (this client registers no events).
    #[error("{len} bytes arrived while no call was waiting")]
    Unsolicited { len: usize },
}

/// `timeout` for a message: whole seconds as such, shorter ones in milliseconds.
fn seconds(timeout: Duration) -> String {
    if timeout.subsec_millis() == 0 && timeout.as_secs() > 0 {
        format!("{} s", timeout.as_secs())
    } else {
        format!("{} ms", timeout.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: i32) -> Error {
        Error::Remote(RemoteError {
            procedure: "virDomainGetInfo",
            code,
            domain: 10,
            message: "Domain not found".into(),
        })
    }

    #[test]
    fn callers_can_tell_the_kinds_apart() {
        let gone = refused(code::NO_DOMAIN);
        assert!(gone.is_no_domain());
        assert!(!gone.is_connection_error());
        assert_eq!(gone.remote_code(), Some(42));
        assert!(refused(code::RPC).is_connection_error());
        assert!(
            !refused(code::SYSTEM_ERROR).is_connection_error(),
            "the daemon's own"
        );
        let timeout = Error::Timeout {
            procedure: "virConnectListAllDomains",
            timeout: Duration::from_secs(60),
        };
        assert!(timeout.is_timeout() && timeout.is_connection_error());
        assert!(timeout.breaks_connection());
        assert!(!gone.breaks_connection());
        assert!(!timeout.is_no_domain());
    }

    #[test]
    fn messages_say_what_was_done_and_what_next() {
        let text = refused(code::NO_DOMAIN).to_string();
        assert!(text.contains("virDomainGetInfo"), "{text}");
        assert!(text.contains("Domain not found"), "{text}");
        assert!(text.contains("libvirt error 42, domain 10"), "{text}");
        assert!(text.contains("list the domains again"), "{text}");
        let text = Error::Timeout {
            procedure: "virConnectGetCapabilities",
            timeout: Duration::from_millis(1500),
        }
        .to_string();
        assert!(text.contains("within 1500 ms"), "{text}");
        assert!(text.contains("connect again"), "{text}");
        let text = Error::Protocol {
            procedure: "virDomainGetInfo",
            problem: ProtocolError::FrameTooLarge {
                len: 1 << 30,
                limit: 32 << 20,
            },
        }
        .to_string();
        assert!(text.contains("VIR_NET_MESSAGE_MAX"), "{text}");
    }
}
