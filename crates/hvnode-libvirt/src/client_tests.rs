//! The client against a fake daemon on a local socket: our framing, deadlines and
//! error handling, with a peer that answers, refuses, stays silent, trickles or lies.
//! The real daemon is exercised by `tests/libvirtd.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::*;
use crate::error::code;
use crate::wire::tests::{error_body, frame, ok_reply};
use crate::wire::{PROGRAM, PROTOCOL_VERSION, TYPE_MESSAGE};

/// The daemon's side of one connection.
struct Daemon {
    stream: UnixStream,
}

impl Daemon {
    /// The next call: its procedure number, serial and arguments; `None` once the
    /// client hung up.
    fn next_call(&mut self) -> Option<(i32, u32, Vec<u8>)> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut msg = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        self.stream.read_exact(&mut msg).unwrap();
        let word = |i: usize| u32::from_be_bytes(msg[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((word(0), word(1)), (PROGRAM, PROTOCOL_VERSION));
        assert_eq!((word(3), word(5)), (0, 0), "a call, status OK");
        Some((word(2) as i32, word(4), msg[24..].to_vec()))
    }

    /// The next call, which must be to `expected`; its serial.
    fn expect(&mut self, expected: Procedure) -> u32 {
        let (procedure, serial, _) = self.next_call().expect("a call");
        assert_eq!(procedure, expected.number(), "{expected:?}");
        serial
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn reply(&mut self, p: Procedure, serial: u32, body: &[u8]) {
        self.send(&ok_reply(p, serial, body));
    }

    fn refuse(&mut self, p: Procedure, serial: u32, code: i32, message: &str) {
        let header = [p.number() as u32, 1, serial, 1];
        let f = frame(
            PROGRAM,
            PROTOCOL_VERSION,
            header,
            &error_body(code, message),
        );
        self.send(&f);
    }

    /// Answers the connection's opening: no authentication, then the open.
    fn handshake(&mut self) {
        let serial = self.expect(Procedure::AuthList);
        self.reply(
            Procedure::AuthList,
            serial,
            Enc::default().u32(1).u32(0).0.as_slice(),
        );
        let serial = self.expect(Procedure::ConnectOpen);
        self.reply(Procedure::ConnectOpen, serial, &[]);
    }
}

/// A fake daemon on a socket in a temporary folder, running `script` on the first
/// connection.
fn fake_daemon(
    script: impl FnOnce(&mut Daemon) + Send + 'static,
) -> (tempfile::TempDir, JoinHandle<()>) {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(dir.path().join("sock")).unwrap();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        script(&mut Daemon { stream });
    });
    (dir, thread)
}

fn target(dir: &tempfile::TempDir) -> Target {
    Target {
        socket: dir.path().join("sock"),
        name: "test:///default".into(),
    }
}

fn connect(dir: &tempfile::TempDir, timeout: Duration) -> Client {
    Client::connect_to(
        target(dir),
        Options {
            call_timeout: timeout,
            read_only: false,
        },
    )
    .unwrap()
}

fn string(s: &str) -> Vec<u8> {
    Enc::default().string(s).0.clone()
}

fn domains(names: &[&str]) -> Vec<Domain> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Domain {
            name: (*n).into(),
            uuid: [i as u8; 16],
            id: i as i32 + 1,
        })
        .collect()
}

fn domain_list(doms: &[Domain]) -> Vec<u8> {
    let mut e = Enc::default();
    e.u32(doms.len() as u32);
    for d in doms {
        e.domain(d);
    }
    e.u32(doms.len() as u32);
    e.0
}

fn info_body() -> Vec<u8> {
    let mut e = Enc::default();
    e.u32(1)
        .u32(0)
        .u32(1024)
        .u32(0)
        .u32(1024)
        .u32(1)
        .u32(0)
        .u32(99);
    e.0
}

#[test]
fn a_session_with_a_daemon_and_its_end() {
    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        let s = d.expect(Procedure::ConnectGetCapabilities);
        d.reply(
            Procedure::ConnectGetCapabilities,
            s,
            &string("<capabilities/>"),
        );
        let (p, s, args) = d.next_call().unwrap();
        assert_eq!(p, Procedure::DomainLookupByName.number());
        assert_eq!(args, string("x"));
        let msg = "Domain not found: no domain with matching name 'x'";
        d.refuse(Procedure::DomainLookupByName, s, code::NO_DOMAIN, msg);
    });
    let client = connect(&dir, Duration::from_secs(5));
    client.check_alive().unwrap();
    assert_eq!(client.capabilities().unwrap(), "<capabilities/>");
    let err = client.lookup_domain("x").unwrap_err();
    assert!(err.is_no_domain(), "{err}");
    assert!(!err.is_connection_error());
    assert!(
        err.to_string().contains("no domain with matching name 'x'"),
        "{err}"
    );
    daemon.join().unwrap();
    // The daemon went away: the client notices before the next call, and stays broken.
    let err = client.check_alive().unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err:?}");
    let err = client.capabilities().unwrap_err();
    assert!(
        matches!(err, Error::Broken { .. }) && err.is_connection_error(),
        "{err:?}"
    );
}

#[test]
fn a_silent_daemon_ends_the_call_at_its_deadline() {
    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        d.expect(Procedure::ConnectGetCapabilities);
        // Says nothing until the client gives up.
        assert!(d.next_call().is_none(), "the client hangs up");
    });
    let client = connect(&dir, Duration::from_millis(300));
    let start = Instant::now();
    let err = client.capabilities().unwrap_err();
    let took = start.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("within 300 ms"), "{err}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A late answer could be taken for the next call's: the connection is done.
    assert!(matches!(
        client.capabilities().unwrap_err(),
        Error::Broken { .. }
    ));
    drop(client);
    daemon.join().unwrap();
}

#[test]
fn a_trickling_daemon_still_ends_the_call_at_its_deadline() {
    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        let s = d.expect(Procedure::ConnectGetCapabilities);
        // A valid answer, one byte every 20 ms: 40 s in all. Each read gets a byte
        // long before a per-read timeout would strike.
        let answer = ok_reply(
            Procedure::ConnectGetCapabilities,
            s,
            &string(&"x".repeat(2000)),
        );
        for b in answer {
            if d.stream.write_all(&[b]).is_err() {
                return; // the client gave up
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the client waited for the whole answer");
    });
    let client = connect(&dir, Duration::from_millis(400));
    let start = Instant::now();
    let err = client.capabilities().unwrap_err();
    let took = start.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(client);
    daemon.join().unwrap();
}

#[test]
fn the_deadline_covers_connecting_and_can_be_changed() {
    // Silent from the start: connecting times out too.
    let (dir, daemon) = fake_daemon(|d| {
        d.expect(Procedure::AuthList);
        assert!(d.next_call().is_none());
    });
    let options = Options {
        call_timeout: Duration::from_millis(200),
        read_only: false,
    };
    let err = Client::connect_to(target(&dir), options).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    daemon.join().unwrap();

    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        let s = d.expect(Procedure::ConnectGetCapabilities);
        std::thread::sleep(Duration::from_millis(400));
        d.reply(Procedure::ConnectGetCapabilities, s, &string("<c/>"));
        let s = d.expect(Procedure::ConnectGetCapabilities);
        d.reply(Procedure::ConnectGetCapabilities, s, &string("<c/>"));
    });
    let client = connect(&dir, Duration::from_millis(100));
    assert_eq!(client.call_timeout(), Duration::from_millis(100));
    client.set_call_timeout(Duration::from_secs(5));
    assert_eq!(
        client.capabilities().unwrap(),
        "<c/>",
        "answered within the new deadline"
    );
    client.set_call_timeout(Duration::MAX);
    assert_eq!(client.capabilities().unwrap(), "<c/>", "no overflow");
    daemon.join().unwrap();
    assert_eq!(Options::default().call_timeout, Duration::from_secs(60));
}

#[test]
fn a_reply_with_a_wrong_serial_breaks_the_connection() {
    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        let s = d.expect(Procedure::ConnectGetCapabilities);
        d.reply(Procedure::ConnectGetCapabilities, s + 1, &string("<c/>"));
    });
    let client = connect(&dir, Duration::from_secs(5));
    let err = client.capabilities().unwrap_err();
    let Error::Protocol { problem, procedure } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*procedure, "virConnectGetCapabilities");
    assert!(
        matches!(problem, crate::ProtocolError::WrongSerial { .. }),
        "{problem}"
    );
    assert!(matches!(
        client.capabilities().unwrap_err(),
        Error::Broken { .. }
    ));
    daemon.join().unwrap();
}

#[test]
fn an_oversized_length_is_rejected_before_it_is_read() {
    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        d.expect(Procedure::ConnectGetCapabilities);
        d.send(&u32::MAX.to_be_bytes());
        assert!(d.next_call().is_none());
    });
    let client = connect(&dir, Duration::from_secs(5));
    let err = client.capabilities().unwrap_err();
    assert!(err.to_string().contains("VIR_NET_MESSAGE_MAX"), "{err}");
    drop(client);
    daemon.join().unwrap();
}

#[test]
fn events_before_the_reply_are_skipped() {
    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        let s = d.expect(Procedure::ConnectGetCapabilities);
        // A lifecycle event (procedure 107), then a keepalive ping.
        d.send(&frame(
            PROGRAM,
            PROTOCOL_VERSION,
            [107, TYPE_MESSAGE, 0, 0],
            &[0; 12],
        ));
        d.send(&frame(0x6b65_6570, 1, [1, TYPE_MESSAGE, 0, 0], &[]));
        d.reply(Procedure::ConnectGetCapabilities, s, &string("<c/>"));
    });
    let client = connect(&dir, Duration::from_secs(5));
    assert_eq!(client.capabilities().unwrap(), "<c/>");
    daemon.join().unwrap();
}

#[test]
fn domains_that_vanish_during_a_listing_are_skipped() {
    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        let s = d.expect(Procedure::ConnectListAllDomains);
        d.reply(
            Procedure::ConnectListAllDomains,
            s,
            &domain_list(&domains(&["a", "b", "c"])),
        );
        for name in ["a", "b", "c"] {
            let (p, s, args) = d.next_call().unwrap();
            assert_eq!(p, Procedure::DomainGetInfo.number());
            assert!(args.starts_with(&string(name)));
            if name == "b" {
                d.refuse(
                    Procedure::DomainGetInfo,
                    s,
                    code::NO_DOMAIN,
                    "Domain not found",
                );
            } else {
                d.reply(Procedure::DomainGetInfo, s, &info_body());
            }
        }
        // The second listing: another failure than a vanished domain ends it.
        let s = d.expect(Procedure::ConnectListAllDomains);
        d.reply(
            Procedure::ConnectListAllDomains,
            s,
            &domain_list(&domains(&["a", "b"])),
        );
        let s = d.expect(Procedure::DomainGetInfo);
        d.refuse(
            Procedure::DomainGetInfo,
            s,
            code::OPERATION_FAILED,
            "qemu is stuck",
        );
    });
    let client = connect(&dir, Duration::from_secs(5));
    let listed = client
        .for_each_domain(|c, dom| Ok((dom.name.clone(), c.domain_info(dom)?)))
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(listed[0].1.cpu_time_ns, 99);
    let err = client
        .for_each_domain(|c, dom| c.domain_info(dom))
        .unwrap_err();
    assert_eq!(err.remote_code(), Some(code::OPERATION_FAILED), "{err}");
    daemon.join().unwrap();
}

#[test]
fn a_slow_listing_lets_other_calls_in_between() {
    // Each domain's facts take 150 ms; a listing of six takes about a second.
    let names = ["a", "b", "c", "d", "e", "f"];
    let (dir, daemon) = fake_daemon(move |d| {
        d.handshake();
        while let Some((p, s, _)) = d.next_call() {
            match Procedure::from_number(p).unwrap() {
                Procedure::ConnectListAllDomains => d.reply(
                    Procedure::ConnectListAllDomains,
                    s,
                    &domain_list(&domains(&names)),
                ),
                Procedure::DomainGetInfo => {
                    std::thread::sleep(Duration::from_millis(150));
                    d.reply(Procedure::DomainGetInfo, s, &info_body());
                }
                Procedure::ConnectGetCapabilities => {
                    d.reply(Procedure::ConnectGetCapabilities, s, &string("<c/>"));
                }
                other => panic!("{other:?}"),
            }
        }
    });
    let client = Arc::new(connect(&dir, Duration::from_secs(10)));
    let start = Instant::now();
    let lister = {
        let client = client.clone();
        std::thread::spawn(move || {
            let n = client
                .for_each_domain(|c, dom| c.domain_info(dom))
                .unwrap()
                .len();
            (n, start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(client.capabilities().unwrap(), "<c/>");
    let other_done = start.elapsed();
    let (n, listing_done) = lister.join().unwrap();
    assert_eq!(n, names.len());
    assert!(
        other_done + Duration::from_millis(300) < listing_done,
        "the other call ({other_done:?}) waited for the listing ({listing_done:?})"
    );
    drop(client);
    daemon.join().unwrap();
}

#[test]
fn a_missing_socket_is_a_connect_error_naming_it() {
    let target = Target {
        socket: "/nonexistent/libvirt-sock".into(),
        name: "test:///default".into(),
    };
    let err = Client::connect_to(target, Options::default()).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_connection_error());
    let text = err.to_string();
    assert!(text.contains("/nonexistent/libvirt-sock"), "{text}");
    assert!(text.contains("check that libvirtd"), "{text}");
}

#[test]
fn sasl_only_is_refused_and_polkit_is_spoken() {
    let (dir, daemon) = fake_daemon(|d| {
        let s = d.expect(Procedure::AuthList);
        d.reply(
            Procedure::AuthList,
            s,
            Enc::default().u32(1).u32(1).0.as_slice(),
        );
    });
    let err = Client::connect_to(target(&dir), Options::default()).unwrap_err();
    assert!(matches!(err, Error::AuthUnsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("auth_unix_rw"), "{err}");
    daemon.join().unwrap();

    let (dir, daemon) = fake_daemon(|d| {
        let s = d.expect(Procedure::AuthList);
        d.reply(
            Procedure::AuthList,
            s,
            Enc::default().u32(2).u32(1).u32(2).0.as_slice(),
        );
        let s = d.expect(Procedure::AuthPolkit);
        d.reply(Procedure::AuthPolkit, s, Enc::default().i32(1).0.as_slice());
        let s = d.expect(Procedure::ConnectOpen);
        d.reply(Procedure::ConnectOpen, s, &[]);
    });
    connect(&dir, Duration::from_secs(5));
    daemon.join().unwrap();
}

#[test]
fn names_libvirtd_cannot_take_are_refused_before_sending() {
    let (dir, daemon) = fake_daemon(|d| {
        d.handshake();
        assert!(d.next_call().is_none(), "nothing sent");
    });
    let client = connect(&dir, Duration::from_secs(5));
    let err = client.lookup_domain("a\0b").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(!err.is_connection_error());
    client.check_alive().unwrap();
    drop(client);
    daemon.join().unwrap();
}
