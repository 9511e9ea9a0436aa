#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::error::code;

/// A whole message: length word, header, body.
pub(crate) fn frame(program: u32, version: u32, header: [u32; 4], body: &[u8]) -> Vec<u8> {
    let [procedure, kind, serial, status] = header;
    let mut e = Enc::default();
    e.u32(0)
        .u32(program)
        .u32(version)
        .u32(procedure)
        .u32(kind)
        .u32(serial)
        .u32(status);
    e.0.extend_from_slice(body);
    let n = e.0.len() as u32;
    e.0[..4].copy_from_slice(&n.to_be_bytes());
    e.0
}

/// A successful reply to `procedure`.
pub(crate) fn ok_reply(procedure: Procedure, serial: u32, body: &[u8]) -> Vec<u8> {
    let header = [procedure.number() as u32, TYPE_REPLY, serial, STATUS_OK];
    frame(PROGRAM, PROTOCOL_VERSION, header, body)
}

/// `remote_error` with `code` and `message`, everything else empty.
pub(crate) fn error_body(code: i32, message: &str) -> Vec<u8> {
    let mut e = Enc::default();
    e.i32(code).i32(10).optional_string(Some(message)).i32(2);
    e.u32(0).u32(0).u32(0).u32(0).i32(0).i32(0).u32(0);
    e.0
}

fn protocol_problem(frame: &[u8]) -> ProtocolError {
    match decode_reply(frame) {
        Err(Error::Protocol { problem, .. }) => problem,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// The numbers of `enum remote_procedure` in libvirt's `src/remote/remote_protocol.x`,
/// copied by hand from that file: the client must send exactly these.
const REMOTE_PROTOCOL_X: &[(&str, i32)] = &[
    ("REMOTE_PROC_CONNECT_OPEN", 1),
    ("REMOTE_PROC_CONNECT_CLOSE", 2),
    ("REMOTE_PROC_CONNECT_GET_CAPABILITIES", 7),
    ("REMOTE_PROC_DOMAIN_CREATE", 9),
    ("REMOTE_PROC_DOMAIN_DESTROY", 12),
    ("REMOTE_PROC_DOMAIN_GET_XML_DESC", 14),
    ("REMOTE_PROC_DOMAIN_GET_AUTOSTART", 15),
    ("REMOTE_PROC_DOMAIN_GET_INFO", 16),
    ("REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME", 23),
    ("REMOTE_PROC_DOMAIN_LOOKUP_BY_UUID", 24),
    ("REMOTE_PROC_DOMAIN_REBOOT", 27),
    ("REMOTE_PROC_DOMAIN_SHUTDOWN", 33),
    ("REMOTE_PROC_AUTH_LIST", 66),
    ("REMOTE_PROC_AUTH_POLKIT", 70),
    ("REMOTE_PROC_DOMAIN_IS_PERSISTENT", 151),
    ("REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS", 273),
    ("REMOTE_PROC_NODE_DEVICE_GET_XML_DESC", 114),
    ("REMOTE_PROC_CONNECT_LIST_ALL_NODE_DEVICES", 285),
    ("REMOTE_PROC_CONNECT_GET_DOMAIN_CAPABILITIES", 342),
    ("REMOTE_PROC_DOMAIN_SUSPEND", 34),
    ("REMOTE_PROC_DOMAIN_RESUME", 28),
    ("REMOTE_PROC_DOMAIN_DEFINE_XML", 11),
    ("REMOTE_PROC_DOMAIN_UNDEFINE_FLAGS", 231),
    ("REMOTE_PROC_DOMAIN_SET_AUTOSTART", 29),
    ("REMOTE_PROC_DOMAIN_SET_VCPUS_FLAGS", 199),
    ("REMOTE_PROC_DOMAIN_SET_MEMORY_FLAGS", 204),
    ("REMOTE_PROC_DOMAIN_GET_BLOCK_INFO", 194),
    ("REMOTE_PROC_DOMAIN_BLOCK_STATS", 64),
    ("REMOTE_PROC_DOMAIN_INTERFACE_STATS", 65),
    ("REMOTE_PROC_DOMAIN_OPEN_CONSOLE", 201),
    ("REMOTE_PROC_DOMAIN_SNAPSHOT_CREATE_XML", 185),
    ("REMOTE_PROC_DOMAIN_SNAPSHOT_GET_XML_DESC", 186),
    ("REMOTE_PROC_DOMAIN_SNAPSHOT_LOOKUP_BY_NAME", 189),
    ("REMOTE_PROC_DOMAIN_REVERT_TO_SNAPSHOT", 192),
    ("REMOTE_PROC_DOMAIN_SNAPSHOT_DELETE", 193),
    ("REMOTE_PROC_DOMAIN_LIST_ALL_SNAPSHOTS", 274),
    ("REMOTE_PROC_STORAGE_POOL_DEFINE_XML", 77),
    ("REMOTE_PROC_STORAGE_POOL_CREATE", 78),
    ("REMOTE_PROC_STORAGE_POOL_BUILD", 79),
    ("REMOTE_PROC_STORAGE_POOL_DESTROY", 80),
    ("REMOTE_PROC_STORAGE_POOL_UNDEFINE", 82),
    ("REMOTE_PROC_STORAGE_POOL_REFRESH", 83),
    ("REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME", 84),
    ("REMOTE_PROC_STORAGE_POOL_GET_INFO", 87),
    ("REMOTE_PROC_STORAGE_POOL_GET_XML_DESC", 88),
    ("REMOTE_PROC_STORAGE_POOL_GET_AUTOSTART", 89),
    ("REMOTE_PROC_STORAGE_POOL_SET_AUTOSTART", 90),
    ("REMOTE_PROC_STORAGE_VOL_CREATE_XML", 93),
    ("REMOTE_PROC_STORAGE_VOL_DELETE", 94),
    ("REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_PATH", 97),
    ("REMOTE_PROC_STORAGE_VOL_GET_INFO", 98),
    ("REMOTE_PROC_STORAGE_VOL_GET_PATH", 100),
    ("REMOTE_PROC_CONNECT_LIST_ALL_STORAGE_POOLS", 281),
    ("REMOTE_PROC_STORAGE_POOL_LIST_ALL_VOLUMES", 282),
    ("REMOTE_PROC_NETWORK_CREATE", 39),
    ("REMOTE_PROC_NETWORK_DESTROY", 42),
    ("REMOTE_PROC_NETWORK_GET_XML_DESC", 43),
    ("REMOTE_PROC_NETWORK_GET_AUTOSTART", 44),
    ("REMOTE_PROC_NETWORK_LOOKUP_BY_NAME", 46),
    ("REMOTE_PROC_NETWORK_IS_ACTIVE", 152),
    ("REMOTE_PROC_CONNECT_LIST_ALL_NETWORKS", 283),
];

#[test]
fn procedure_numbers_are_those_of_remote_protocol_x() {
    let ours: Vec<(&str, i32)> = Procedure::ALL
        .iter()
        .map(|p| (p.remote_name(), p.number()))
        .collect();
    assert_eq!(ours, REMOTE_PROTOCOL_X);
    for &(name, number) in REMOTE_PROTOCOL_X {
        let p = Procedure::from_number(number).unwrap();
        assert_eq!(p.remote_name(), name);
    }
    assert_eq!(Procedure::from_number(3), None);
    // The program and the limits of remote_protocol.x and virnetprotocol.x.
    assert_eq!(PROGRAM, 0x2000_8086);
    assert_eq!(PROTOCOL_VERSION, 1);
    assert_eq!(MESSAGE_MAX, 33_554_432);
    assert_eq!(HEADER_LEN, 24);
    assert_eq!(DOMAIN_LIST_MAX, 16_384);
    assert_eq!(AUTH_TYPE_LIST_MAX, 20);
    assert_eq!(crate::xdr::STRING_MAX, 4_194_304);
}

#[test]
fn calls_are_framed_with_their_length_and_header() {
    let msg = encode_call(Procedure::DomainGetInfo, 7, &[0, 0, 0, 9]);
    assert_eq!(msg.len(), 4 + 24 + 4);
    let mut d = Dec::new(&msg);
    assert_eq!(d.u32("len").unwrap(), 32);
    let h = Header::decode(&mut d).unwrap();
    assert_eq!(
        h,
        Header {
            program: PROGRAM,
            version: PROTOCOL_VERSION,
            procedure: 16,
            kind: TYPE_CALL,
            serial: 7,
            status: STATUS_OK,
        }
    );
    assert_eq!(d.u32("arg").unwrap(), 9);
}

#[test]
fn a_node_device_listing_decodes_and_is_bounded() {
    let mut e = Enc::default();
    e.u32(2)
        .string("computer")
        .string("pci_0000_00_1f_2")
        .u32(2);
    let answer = decode_reply(&ok_reply(Procedure::ConnectListAllNodeDevices, 5, &e.0)).unwrap();
    assert_eq!(
        answer,
        Answer::Names(vec!["computer".into(), "pci_0000_00_1f_2".into()])
    );
    // A count past REMOTE_NODE_DEVICE_LIST_MAX is refused before anything is read.
    let mut e = Enc::default();
    e.u32(NODE_DEVICE_LIST_MAX as u32 + 1);
    let err = decode_reply(&ok_reply(Procedure::ConnectListAllNodeDevices, 5, &e.0)).unwrap_err();
    assert!(
        err.to_string().contains("REMOTE_NODE_DEVICE_LIST_MAX"),
        "{err}"
    );
}

#[test]
fn a_good_reply_decodes() {
    let dom = Domain {
        name: "vm1".into(),
        uuid: [7; 16],
        id: -1,
    };
    let mut e = Enc::default();
    e.u32(1).domain(&dom).u32(1);
    let answer = decode_reply(&ok_reply(Procedure::ConnectListAllDomains, 4, &e.0)).unwrap();
    assert_eq!(answer, Answer::Domains(vec![dom]));
    let mut e = Enc::default();
    e.u32(1)
        .u32(0)
        .u32(1 << 20)
        .u32(0)
        .u32(1 << 19)
        .u32(2)
        .u32(0)
        .u32(5);
    let answer = decode_reply(&ok_reply(Procedure::DomainGetInfo, 1, &e.0)).unwrap();
    assert_eq!(
        answer,
        Answer::Info(DomainInfo {
            state: DomainState::Running,
            max_memory_kib: 1 << 20,
            memory_kib: 1 << 19,
            vcpus: 2,
            cpu_time_ns: 5,
        })
    );
}

#[test]
fn an_error_reply_is_libvirts_refusal() {
    let header = [
        Procedure::DomainGetInfo.number() as u32,
        TYPE_REPLY,
        3,
        STATUS_ERROR,
    ];
    let body = error_body(code::NO_DOMAIN, "Domain not found");
    let err = decode_reply(&frame(PROGRAM, PROTOCOL_VERSION, header, &body)).unwrap_err();
    assert!(err.is_no_domain(), "{err}");
    let remote = err.remote().unwrap();
    assert_eq!(remote.message, "Domain not found");
    assert_eq!(remote.domain, 10);
    assert_eq!(remote.procedure, "virDomainGetInfo");
    // An error without its last fields is malformed, not a refusal.
    let cut = &body[..body.len() - 4];
    let f = frame(PROGRAM, PROTOCOL_VERSION, header, cut);
    assert!(matches!(
        protocol_problem(&f),
        ProtocolError::Truncated { .. }
    ));
}

#[test]
fn short_headers_are_rejected() {
    for len in [0, 3] {
        let problem = protocol_problem(&vec![0; len]);
        assert!(
            matches!(problem, ProtocolError::ShortFrame { min: 28, .. }),
            "{problem}"
        );
    }
    // A length word that counts fewer bytes than length word and header.
    let mut f = ok_reply(Procedure::ConnectOpen, 1, &[]);
    f[..4].copy_from_slice(&20u32.to_be_bytes());
    assert_eq!(
        protocol_problem(&f),
        ProtocolError::ShortFrame { len: 20, min: 28 }
    );
    assert!(check_length(27u32.to_be_bytes()).is_err());
    assert_eq!(check_length(28u32.to_be_bytes()), Ok(28));
}

#[test]
fn lengths_over_the_message_limit_are_rejected_by_name() {
    let max = (MESSAGE_MAX + LEN_WORD) as u32;
    assert_eq!(check_length(max.to_be_bytes()), Ok(max as usize));
    let problem = check_length((max + 1).to_be_bytes()).unwrap_err();
    assert!(matches!(problem, ProtocolError::FrameTooLarge { .. }));
    assert!(
        problem.to_string().contains("VIR_NET_MESSAGE_MAX"),
        "{problem}"
    );
    assert!(check_length(u32::MAX.to_be_bytes()).is_err());
    let mut f = ok_reply(Procedure::ConnectOpen, 1, &[]);
    f[..4].copy_from_slice(&(max + 1).to_be_bytes());
    assert!(matches!(
        protocol_problem(&f),
        ProtocolError::FrameTooLarge { .. }
    ));
}

#[test]
fn a_length_word_must_match_the_bytes() {
    let mut f = ok_reply(Procedure::ConnectOpen, 1, &[]);
    f.push(0);
    assert_eq!(
        protocol_problem(&f),
        ProtocolError::LengthMismatch {
            declared: 28,
            actual: 29
        }
    );
}

#[test]
fn wrong_program_and_version_are_rejected() {
    let header = [1, TYPE_REPLY, 1, STATUS_OK];
    assert_eq!(
        protocol_problem(&frame(0x1234_5678, PROTOCOL_VERSION, header, &[])),
        ProtocolError::WrongProgram {
            found: 0x1234_5678,
            expected: PROGRAM
        }
    );
    assert_eq!(
        protocol_problem(&frame(PROGRAM, 2, header, &[])),
        ProtocolError::WrongVersion {
            found: 2,
            expected: 1
        }
    );
}

#[test]
fn types_statuses_and_procedures_are_checked() {
    let call = [1, TYPE_CALL, 1, STATUS_OK];
    assert_eq!(
        protocol_problem(&frame(PROGRAM, PROTOCOL_VERSION, call, &[])),
        ProtocolError::UnexpectedType { found: 0 }
    );
    let status = [1, TYPE_REPLY, 1, 2];
    assert_eq!(
        protocol_problem(&frame(PROGRAM, PROTOCOL_VERSION, status, &[])),
        ProtocolError::UnknownStatus { found: 2 }
    );
    let unknown = [3, TYPE_REPLY, 1, STATUS_OK];
    assert_eq!(
        protocol_problem(&frame(PROGRAM, PROTOCOL_VERSION, unknown, &[])),
        ProtocolError::UnknownProcedure { found: 3 }
    );
    // Events, of any program (keepalive's too), are nobody's reply.
    let event = [1, TYPE_MESSAGE, 0, STATUS_OK];
    assert_eq!(
        decode_reply(&frame(0x6b65_6570, 1, event, &[])).unwrap(),
        Answer::Event
    );
}

#[test]
fn a_reply_with_a_wrong_serial_or_procedure_is_not_the_calls() {
    let f = ok_reply(Procedure::DomainGetInfo, 5, &[]);
    let Incoming::Reply { header, .. } = classify(&f[4..]).unwrap() else {
        panic!("a reply");
    };
    assert_eq!(
        check_reply(&header, Procedure::DomainGetInfo, 6),
        Err(ProtocolError::WrongSerial {
            expected: 6,
            found: 5
        })
    );
    assert_eq!(
        check_reply(&header, Procedure::DomainGetXmlDesc, 5),
        Err(ProtocolError::WrongProcedure {
            expected: 14,
            found: 16
        })
    );
    assert_eq!(check_reply(&header, Procedure::DomainGetInfo, 5), Ok(()));
}

#[test]
fn truncated_strings_are_rejected() {
    let mut e = Enc::default();
    e.u32(100);
    e.0.extend_from_slice(b"<capabilities>");
    let f = ok_reply(Procedure::ConnectGetCapabilities, 1, &e.0);
    assert_eq!(
        protocol_problem(&f),
        ProtocolError::Truncated {
            what: "capabilities",
            needed: 100,
            left: 14
        }
    );
}

#[test]
fn truncated_arrays_are_rejected() {
    let dom = Domain {
        name: "a".into(),
        uuid: [0; 16],
        id: 1,
    };
    // Says two domains, carries one and the count.
    let mut e = Enc::default();
    e.u32(2).domain(&dom).u32(2);
    let problem = protocol_problem(&ok_reply(Procedure::ConnectListAllDomains, 1, &e.0));
    assert!(
        matches!(problem, ProtocolError::Truncated { .. }),
        "{problem}"
    );
    // Says three authentication types, carries one.
    let mut e = Enc::default();
    e.u32(3).u32(0);
    let problem = protocol_problem(&ok_reply(Procedure::AuthList, 1, &e.0));
    assert_eq!(
        problem,
        ProtocolError::Truncated {
            what: "auth types",
            needed: 12,
            left: 4
        }
    );
}

#[test]
fn counts_over_their_limits_are_rejected_not_clamped() {
    let mut e = Enc::default();
    e.u32(DOMAIN_LIST_MAX as u32 + 1);
    let problem = protocol_problem(&ok_reply(Procedure::ConnectListAllDomains, 1, &e.0));
    assert_eq!(
        problem,
        ProtocolError::OverLimit {
            what: "domain list",
            len: DOMAIN_LIST_MAX as u64 + 1,
            limit: DOMAIN_LIST_MAX as u64,
            limit_name: "REMOTE_DOMAIN_LIST_MAX"
        }
    );
    let mut e = Enc::default();
    e.u32(21);
    e.0.extend_from_slice(&[0; 21 * 4]);
    let problem = protocol_problem(&ok_reply(Procedure::AuthList, 1, &e.0));
    assert!(
        problem
            .to_string()
            .contains("REMOTE_AUTH_TYPE_LIST_MAX (20)"),
        "{problem}"
    );
    let mut e = Enc::default();
    e.u32(crate::xdr::STRING_MAX as u32 + 1);
    let problem = protocol_problem(&ok_reply(Procedure::DomainGetXmlDesc, 1, &e.0));
    assert!(matches!(
        problem,
        ProtocolError::OverLimit {
            limit_name: "REMOTE_STRING_MAX",
            ..
        }
    ));
}

#[test]
fn flags_are_zero_or_one() {
    let mut e = Enc::default();
    e.i32(-1);
    let problem = protocol_problem(&ok_reply(Procedure::DomainIsPersistent, 1, &e.0));
    assert!(matches!(problem, ProtocolError::BadDiscriminant { .. }));
    let mut e = Enc::default();
    e.i32(1);
    assert_eq!(
        decode_reply(&ok_reply(Procedure::DomainGetAutostart, 1, &e.0)).unwrap(),
        Answer::Flag(true)
    );
}
