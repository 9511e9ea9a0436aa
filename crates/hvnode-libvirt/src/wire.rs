//! The wire format of libvirt's RPC (`virnetprotocol.x`, `remote_protocol.x`): a
//! message is a length word (counting itself), a 24-byte header (program, version,
//! procedure, type, serial, status) and the XDR of the call's arguments, of its
//! answer or of libvirt's error.
//!
//! [`decode_reply`] decodes one whole message the way the client does, and is the
//! entry point of the fuzz target and of the property test.

use crate::error::{Error, ProtocolError, RemoteError};
use crate::types::{AuthType, Domain, DomainInfo, DomainState};
use crate::xdr::{Dec, Enc, UUID_LEN};

use crate::procedure::AnswerKind;
pub use crate::procedure::Procedure;

/// `REMOTE_PROGRAM`: libvirt's remote protocol.
pub const PROGRAM: u32 = 0x2000_8086;
/// `REMOTE_PROTOCOL_VERSION`.
pub const PROTOCOL_VERSION: u32 = 1;
/// `VIR_NET_MESSAGE_MAX`: the largest message, not counting its length word (32 MiB).
pub const MESSAGE_MAX: usize = 32 * 1024 * 1024;
/// `VIR_NET_MESSAGE_LEN_MAX`: the length word.
pub const LEN_WORD: usize = 4;
/// `VIR_NET_MESSAGE_HEADER_MAX`: the header after the length word.
pub const HEADER_LEN: usize = 24;
/// `REMOTE_DOMAIN_LIST_MAX`: the most domains one listing carries.
pub const DOMAIN_LIST_MAX: usize = 16_384;
/// `REMOTE_NODE_DEVICE_LIST_MAX`: the most host devices one listing carries.
pub const NODE_DEVICE_LIST_MAX: usize = 65_536;
/// `REMOTE_AUTH_TYPE_LIST_MAX`: the most authentication schemes offered.
pub const AUTH_TYPE_LIST_MAX: usize = 20;

/// `virNetMessageType`.
pub(crate) const TYPE_CALL: u32 = 0;
pub(crate) const TYPE_REPLY: u32 = 1;
pub(crate) const TYPE_MESSAGE: u32 = 2;
pub(crate) const TYPE_STREAM: u32 = 3;
/// `virNetMessageStatus`.
pub(crate) const STATUS_OK: u32 = 0;
pub(crate) const STATUS_ERROR: u32 = 1;
pub(crate) const STATUS_CONTINUE: u32 = 2;

/// A message header (`virNetMessageHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub program: u32,
    pub version: u32,
    pub procedure: i32,
    /// `virNetMessageType`: 0 call, 1 reply, 2 event, 3 stream, …
    pub kind: u32,
    pub serial: u32,
    /// `virNetMessageStatus`: 0 OK, 1 error, 2 continue.
    pub status: u32,
}

impl Header {
    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            program: d.u32("header program")?,
            version: d.u32("header version")?,
            procedure: d.i32("header procedure")?,
            kind: d.u32("header type")?,
            serial: d.u32("header serial")?,
            status: d.u32("header status")?,
        })
    }
}

/// The whole length of a message from its length word, if within the protocol's
/// bounds: at least length word and header, at most `VIR_NET_MESSAGE_MAX` more than
/// the length word. Checked before anything is allocated for the message.
pub(crate) fn check_length(word: [u8; LEN_WORD]) -> Result<usize, ProtocolError> {
    let len = u32::from_be_bytes(word);
    let min = LEN_WORD + HEADER_LEN;
    let max = MESSAGE_MAX + LEN_WORD;
    match usize::try_from(len) {
        Ok(n) if n < min => Err(ProtocolError::ShortFrame {
            len: u64::from(len),
            min: min as u64,
        }),
        Ok(n) if n <= max => Ok(n),
        _ => Err(ProtocolError::FrameTooLarge {
            len: u64::from(len),
            limit: MESSAGE_MAX as u64,
        }),
    }
}

/// A call's message: length word, header, arguments.
pub(crate) fn encode_call(procedure: Procedure, serial: u32, args: &[u8]) -> Vec<u8> {
    let mut msg = Enc::default();
    msg.u32(0)
        .u32(PROGRAM)
        .u32(PROTOCOL_VERSION)
        .i32(procedure.number())
        .u32(TYPE_CALL)
        .u32(serial)
        .u32(STATUS_OK);
    msg.0.extend_from_slice(args);
    // Arguments are names and flags, far below the 32 MiB a message may have.
    let len = msg.0.len() as u32;
    msg.0[..LEN_WORD].copy_from_slice(&len.to_be_bytes());
    msg.0
}

/// One message from the daemon, after its length word.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// An asynchronous message (an event or a keepalive), nobody's reply.
    Event,
    /// A reply of libvirt's remote program: its header and its body.
    Reply { header: Header, body: &'a [u8] },
}

/// Decodes the header of `message` (the bytes after the length word) and tells a
/// reply from an event; a reply must be of libvirt's remote program and version.
pub(crate) fn classify(message: &[u8]) -> Result<Incoming<'_>, ProtocolError> {
    let mut d = Dec::new(message);
    let header = Header::decode(&mut d)?;
    match header.kind {
        TYPE_MESSAGE => return Ok(Incoming::Event),
        TYPE_REPLY => {}
        found => return Err(ProtocolError::UnexpectedType { found }),
    }
    if header.program != PROGRAM {
        return Err(ProtocolError::WrongProgram {
            found: header.program,
            expected: PROGRAM,
        });
    }
    if header.version != PROTOCOL_VERSION {
        return Err(ProtocolError::WrongVersion {
            found: header.version,
            expected: PROTOCOL_VERSION,
        });
    }
    Ok(Incoming::Reply {
        header,
        body: d.rest(),
    })
}

/// Checks that a reply answers the call waiting (its serial, its procedure).
pub(crate) fn check_reply(
    header: &Header,
    procedure: Procedure,
    serial: u32,
) -> Result<(), ProtocolError> {
    if header.serial != serial {
        return Err(ProtocolError::WrongSerial {
            expected: serial,
            found: header.serial,
        });
    }
    if header.procedure != procedure.number() {
        return Err(ProtocolError::WrongProcedure {
            expected: procedure.number(),
            found: header.procedure,
        });
    }
    Ok(())
}

/// The answer's body if the call succeeded, libvirt's error if it was refused.
pub(crate) fn reply_body<'a>(
    procedure: Procedure,
    header: &Header,
    body: &'a [u8],
) -> Result<&'a [u8], Error> {
    let protocol = |problem| Error::Protocol {
        procedure: procedure.api_name(),
        problem,
    };
    match header.status {
        STATUS_OK => Ok(body),
        STATUS_ERROR => Err(Error::Remote(
            decode_remote_error(procedure, body).map_err(protocol)?,
        )),
        found => Err(protocol(ProtocolError::UnknownStatus { found })),
    }
}

/// `remote_error`: code, domain, message, level, dom, str1-3, int1-2, net. All of it
/// is decoded (so that a malformed one is noticed); the number, the domain and the
/// message are kept.
pub(crate) fn decode_remote_error(
    procedure: Procedure,
    body: &[u8],
) -> Result<RemoteError, ProtocolError> {
    let mut d = Dec::new(body);
    let code = d.i32("error code")?;
    let domain = d.i32("error domain")?;
    let message = d.optional_string("error message")?;
    d.i32("error level")?;
    d.optional_domain("error domain object")?;
    for what in ["error str1", "error str2", "error str3"] {
        d.optional_string(what)?;
    }
    d.i32("error int1")?;
    d.i32("error int2")?;
    if d.bool("error network")? {
        d.string("error network name")?;
        d.uuid("error network UUID")?;
    }
    Ok(RemoteError {
        procedure: procedure.api_name(),
        code,
        domain,
        message: message.unwrap_or_else(|| "(libvirt gave no message)".to_string()),
    })
}

/// `remote_auth_list_ret`: the schemes the daemon accepts.
pub(crate) fn decode_auth_list(body: &[u8]) -> Result<Vec<AuthType>, ProtocolError> {
    let mut d = Dec::new(body);
    let n = d.count(
        "auth types",
        AUTH_TYPE_LIST_MAX,
        "REMOTE_AUTH_TYPE_LIST_MAX",
        4,
    )?;
    (0..n)
        .map(|_| d.u32("auth type").map(AuthType::from_number))
        .collect()
}

/// `remote_connect_list_all_domains_ret`: the domains, then their count.
pub(crate) fn decode_domain_list(body: &[u8]) -> Result<Vec<Domain>, ProtocolError> {
    let mut d = Dec::new(body);
    // A domain is at least a length word, a UUID and an id.
    let min = 4 + UUID_LEN + 4;
    let n = d.count(
        "domain list",
        DOMAIN_LIST_MAX,
        "REMOTE_DOMAIN_LIST_MAX",
        min,
    )?;
    let domains = (0..n).map(|_| d.domain()).collect::<Result<Vec<_>, _>>()?;
    d.u32("domain count")?;
    Ok(domains)
}

/// `remote_connect_list_all_node_devices_ret`: the devices' names (each a
/// `remote_nonnull_node_device`), then their count.
pub(crate) fn decode_node_device_list(body: &[u8]) -> Result<Vec<String>, ProtocolError> {
    let mut d = Dec::new(body);
    let n = d.count(
        "node device list",
        NODE_DEVICE_LIST_MAX,
        "REMOTE_NODE_DEVICE_LIST_MAX",
        4,
    )?;
    let names = (0..n)
        .map(|_| d.string("node device name"))
        .collect::<Result<Vec<_>, _>>()?;
    d.u32("node device count")?;
    Ok(names)
}

/// `remote_nonnull_domain` alone (the lookups' answers).
pub(crate) fn decode_domain(body: &[u8]) -> Result<Domain, ProtocolError> {
    Dec::new(body).domain()
}

/// `remote_domain_get_info_ret`.
pub(crate) fn decode_domain_info(body: &[u8]) -> Result<DomainInfo, ProtocolError> {
    let mut d = Dec::new(body);
    Ok(DomainInfo {
        state: DomainState::from_number(d.u32("domain state")?),
        max_memory_kib: d.u64("domain maximum memory")?,
        memory_kib: d.u64("domain memory")?,
        vcpus: d.u32("domain vCPU count")?,
        cpu_time_ns: d.u64("domain CPU time")?,
    })
}

/// One `remote_nonnull_string` (capabilities, domain XML).
pub(crate) fn decode_string(body: &[u8], what: &'static str) -> Result<String, ProtocolError> {
    Dec::new(body).string(what)
}

/// One `int` used as a boolean (autostart, persistence).
pub(crate) fn decode_flag(body: &[u8], what: &'static str) -> Result<bool, ProtocolError> {
    Dec::new(body).bool(what)
}

/// A decoded message from the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// An asynchronous message (an event or a keepalive), which the client skips.
    Event,
    /// A successful call with nothing to return.
    Done,
    AuthTypes(Vec<AuthType>),
    Domains(Vec<Domain>),
    Domain(Domain),
    Info(DomainInfo),
    Text(String),
    Flag(bool),
    /// Names (of host devices).
    Names(Vec<String>),
    Snapshot(crate::Snapshot),
    Snapshots(Vec<crate::Snapshot>),
    Pool(crate::StoragePool),
    Pools(Vec<crate::StoragePool>),
    PoolInfo(crate::PoolInfo),
    Vol(crate::StorageVol),
    Vols(Vec<crate::StorageVol>),
    VolInfo(crate::VolInfo),
    Network(crate::Network),
    Networks(Vec<crate::Network>),
    BlockInfo(crate::BlockInfo),
    BlockStats(crate::BlockStats),
    InterfaceStats(crate::InterfaceStats),
}

/// Decodes one whole message from the daemon (length word included) as the client
/// does: the length word against the bytes and the protocol's bounds, the header,
/// then the body as the answer of the procedure the header names, or as libvirt's
/// error. Malformed input is an [`Error::Protocol`] (never a panic); a refusal is an
/// [`Error::Remote`].
pub fn decode_reply(frame: &[u8]) -> Result<Answer, Error> {
    let protocol = |procedure: &'static str| move |problem| Error::Protocol { procedure, problem };
    let unknown = "an unknown procedure";
    let word = frame
        .first_chunk::<LEN_WORD>()
        .ok_or(ProtocolError::ShortFrame {
            len: frame.len() as u64,
            min: (LEN_WORD + HEADER_LEN) as u64,
        })
        .map_err(protocol(unknown))?;
    let len = check_length(*word).map_err(protocol(unknown))?;
    if len != frame.len() {
        return Err(protocol(unknown)(ProtocolError::LengthMismatch {
            declared: len as u64,
            actual: frame.len() as u64,
        }));
    }
    let (header, body) = match classify(&frame[LEN_WORD..]).map_err(protocol(unknown))? {
        Incoming::Event => return Ok(Answer::Event),
        Incoming::Reply { header, body } => (header, body),
    };
    let procedure = Procedure::from_number(header.procedure)
        .ok_or(ProtocolError::UnknownProcedure {
            found: header.procedure,
        })
        .map_err(protocol(unknown))?;
    let body = reply_body(procedure, &header, body)?;
    decode_answer(procedure, body).map_err(protocol(procedure.api_name()))
}

/// The body of a successful answer to `procedure`.
fn decode_answer(procedure: Procedure, body: &[u8]) -> Result<Answer, ProtocolError> {
    use crate::objects as o;
    use AnswerKind as K;
    Ok(match procedure.answer() {
        K::Done => Answer::Done,
        K::Text(what) => Answer::Text(decode_string(body, what)?),
        K::Flag(what) => Answer::Flag(decode_flag(body, what)?),
        K::AuthTypes => Answer::AuthTypes(decode_auth_list(body)?),
        K::Domain => Answer::Domain(decode_domain(body)?),
        K::Domains => Answer::Domains(decode_domain_list(body)?),
        K::Info => Answer::Info(decode_domain_info(body)?),
        K::Names => Answer::Names(decode_node_device_list(body)?),
        K::Snapshot => Answer::Snapshot(o::decode_snapshot(body)?),
        K::Snapshots => Answer::Snapshots(o::decode_snapshots(body)?),
        K::Pool => Answer::Pool(o::decode_pool(body)?),
        K::Pools => Answer::Pools(o::decode_pools(body)?),
        K::PoolInfo => Answer::PoolInfo(o::decode_pool_info(body)?),
        K::Vol => Answer::Vol(o::decode_vol(body)?),
        K::Vols => Answer::Vols(o::decode_vols(body)?),
        K::VolInfo => Answer::VolInfo(o::decode_vol_info(body)?),
        K::Network => Answer::Network(o::decode_network(body)?),
        K::Networks => Answer::Networks(o::decode_networks(body)?),
        K::BlockInfo => Answer::BlockInfo(o::decode_block_info(body)?),
        K::BlockStats => Answer::BlockStats(o::decode_block_stats(body)?),
        K::InterfaceStats => Answer::InterfaceStats(o::decode_interface_stats(body)?),
    })
}

#[cfg(test)]
#[path = "wire_tests.rs"]
pub(crate) mod tests;
