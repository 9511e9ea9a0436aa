//! The helper on a real socket, with a backend that counts: sessions live exactly as
//! long as their connections, peers are checked by the kernel's credentials, and bad
//! frames, silence and crowds end connections without stopping the helper.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helper::proto::{
    Change, EngineAction, EngineFacts, Failure, FailureKind, Password, Refusal, RegisterStep,
    Reply, Request,
};
use helper::server::Terminal;
use helper::{Backend, Client, Options, Server, frame};

#[derive(Debug, Default)]
struct Counts {
    open: AtomicUsize,
    clients: Mutex<Vec<IpAddr>>,
    policy_asked: AtomicUsize,
    changes: Mutex<Vec<(String, Change)>>,
    engine_actions: Mutex<Vec<EngineAction>>,
}

/// Accepts `admin` with `good`, refuses others as PAM would.
#[derive(Debug, Default, Clone)]
struct Fake(Arc<Counts>);

#[derive(Debug)]
struct Open(Arc<Counts>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Backend for Fake {
    type Session = Open;

    fn login(&self, user: &str, password: &str, client: IpAddr) -> Result<Open, Refusal> {
        self.0.clients.lock().unwrap().push(client);
        match (user, password) {
            ("admin" | "limited", "good") => {
                self.0.open.fetch_add(1, Ordering::SeqCst);
                Ok(Open(self.0.clone()))
            }
            ("guest", _) => Err(Refusal::NotAdmin {
                groups: "wheel".into(),
            }),
            _ => Err(Refusal::BadCredentials),
        }
    }

    fn authenticate(&self, user: &str, password: &str) -> Result<(), Refusal> {
        self.login(user, password, IpAddr::from([127, 0, 0, 1]))
            .map(|_| ())
    }

    /// `cat` on one end of a socket pair, the other end for the client: what is
    /// written to the "terminal" comes back.
    fn open_terminal(&self, user: &str, rows: u16, cols: u16) -> Result<Terminal, String> {
        assert_eq!((user, rows, cols), ("admin", 24, 80));
        let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
        let child = std::process::Command::new("cat")
            .stdin(std::os::fd::OwnedFd::from(
                theirs.try_clone().map_err(|e| e.to_string())?,
            ))
            .stdout(std::os::fd::OwnedFd::from(theirs))
            .spawn()
            .map_err(|e| e.to_string())?;
        Ok(Terminal {
            master: ours.into(),
            child,
        })
    }

    fn change(&self, user: &str, change: &Change) -> Result<(), Failure> {
        if let Change::Vm { name, .. } = change {
            if name == "missing" {
                return Err(Failure::new(FailureKind::NotFound, "no VM named missing"));
            }
        }
        self.0
            .changes
            .lock()
            .unwrap()
            .push((user.to_string(), change.clone()));
        Ok(())
    }

    /// A socket pair standing in for a VNC server: its greeting, then silence.
    fn open_vm_console(
        &self,
        user: &str,
        vm: &str,
        kind: helper::VmConsoleKind,
    ) -> Result<std::os::fd::OwnedFd, Failure> {
        assert_eq!(user, "admin");
        if vm == "missing" {
            return Err(Failure::new(FailureKind::NotFound, "no VM named missing"));
        }
        assert_eq!(kind, helper::VmConsoleKind::Vnc);
        let (mut server, client) =
            UnixStream::pair().map_err(|e| Failure::new(FailureKind::Failed, e.to_string()))?;
        server.write_all(b"RFB 003.008\n").unwrap();
        std::thread::spawn(move || {
            let mut b = [0u8; 1];
            let _ = server.read(&mut b);
        });
        Ok(client.into())
    }

    /// A shell that prints a progress line and an error line, as nodectl would.
    fn run_update(
        &self,
        _user: &str,
        source: &str,
        apply: bool,
    ) -> Result<(std::os::fd::OwnedFd, std::process::Child), Failure> {
        let failed = |e: std::io::Error| Failure::new(FailureKind::Failed, e.to_string());
        let (reader, writer) = rustix::pipe::pipe().map_err(|e| failed(e.into()))?;
        let child = std::process::Command::new("sh")
            .args([
                "-c",
                "echo \"{\\\"source\\\":\\\"$0\\\",\\\"apply\\\":$1}\"; echo oops >&2",
            ])
            .args([source, &apply.to_string()])
            .stdout(writer.try_clone().map_err(failed)?)
            .stderr(writer)
            .spawn()
            .map_err(failed)?;
        Ok((reader, child))
    }

    /// A shell that prints the step it was given as nodectl's JSON would come.
    fn register(
        &self,
        _user: &str,
        step: &RegisterStep,
    ) -> Result<(std::os::fd::OwnedFd, std::process::Child), Failure> {
        let failed = |e: std::io::Error| Failure::new(FailureKind::Failed, e.to_string());
        let json = serde_json::to_string(step).map_err(|e| failed(e.into()))?;
        let (reader, writer) = rustix::pipe::pipe().map_err(|e| failed(e.into()))?;
        let child = std::process::Command::new("sh")
            .args(["-c", "printf '%s' \"$0\"", &json])
            .stdout(writer)
            .spawn()
            .map_err(failed)?;
        Ok((reader, child))
    }

    /// A shell that writes a few bytes as nodectl would write the report.
    fn diagnostics(
        &self,
        user: &str,
    ) -> Result<(std::os::fd::OwnedFd, std::process::Child), Failure> {
        let failed = |e: std::io::Error| Failure::new(FailureKind::Failed, e.to_string());
        let (reader, writer) = rustix::pipe::pipe().map_err(|e| failed(e.into()))?;
        let child = std::process::Command::new("sh")
            .args(["-c", "printf 'report for %s' \"$0\"", user])
            .stdout(writer)
            .spawn()
            .map_err(failed)?;
        Ok((reader, child))
    }

    /// Facts of a node with a long trial history: more than a request's frame
    /// holds, as an answer may be.
    fn layer_facts(&self) -> Result<layers::status::Facts, String> {
        let mut facts = layers::status::Facts {
            backend: Some(layers::status::Backend::Lvm),
            vg: "hvnode".into(),
            current_layer: Some("hvnode-1.0-1+1".parse().unwrap()),
            ..Default::default()
        };
        facts.boot_files = (0..4000)
            .map(|i| format!("hvnode-1.0-{i}+1/vmlinuz"))
            .collect();
        Ok(facts)
    }

    fn thin_pools(&self) -> Result<Vec<hostinfo::ThinPool>, String> {
        Err("lvs failed: no LVM here".into())
    }

    fn engine(&self, action: &EngineAction) -> Result<(), Failure> {
        if let EngineAction::VmDestroy { vm_id } = action {
            if vm_id == "missing" {
                return Err(Failure::new(FailureKind::NotFound, "no VM with id missing"));
            }
        }
        self.0.engine_actions.lock().unwrap().push(action.clone());
        Ok(())
    }

    fn engine_facts(&self) -> Result<EngineFacts, String> {
        Ok(EngineFacts {
            system_serial: Some("S3R1AL".into()),
            system_uuid: None,
            cpu_models: vec!["EPYC".into()],
        })
    }

    fn may_administer(&self, user: &str) -> Result<bool, String> {
        self.0.policy_asked.fetch_add(1, Ordering::SeqCst);
        match user {
            "admin" => Ok(true),
            "broken" => Err("sudo failed: syntax error in /etc/sudoers".into()),
            _ => Ok(false),
        }
    }
}

struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    counts: Arc<Counts>,
    connections: Arc<AtomicUsize>,
    stopper: helper::Stopper,
}

fn start(options: Options) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("socket");
    let listener = helper::server::bind(&path, None).unwrap();
    let fake = Fake::default();
    let counts = fake.0.clone();
    let server = Server::new(listener, fake, options);
    let connections = server.open_connections();
    let stopper = server.stopper();
    std::thread::spawn(move || server.serve());
    Running {
        _dir: dir,
        path,
        counts,
        connections,
        stopper,
    }
}

/// `admin`'s session, held by the helper `h`.
fn admin_login(h: &Running) -> helper::Held {
    Client::new(&h.path)
        .login("admin", "good", "::1".parse().unwrap())
        .unwrap()
        .unwrap()
}

/// Waits up to 5 s for `f` to hold.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_stale_socket_is_replaced_and_anything_else_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("socket");
    let first = helper::server::bind(&path, None).unwrap();
    drop(first);
    // The socket file an earlier helper left: replaced, and only root may use it.
    helper::server::bind(&path, None).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let file = dir.path().join("file");
    std::fs::write(&file, "not a socket").unwrap();
    let e = helper::server::bind(&file, None).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a socket");
}

#[test]
fn a_login_session_lasts_as_long_as_its_connection() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let from: IpAddr = "2001:db8::7".parse().unwrap();
    let first = client.login("admin", "good", from).unwrap().unwrap();
    let second = client.login("admin", "good", from).unwrap().unwrap();
    assert_eq!(h.counts.open.load(Ordering::SeqCst), 2);
    assert_eq!(h.counts.clients.lock().unwrap()[0], from);
    drop(first);
    eventually("the first session closes with its connection", || {
        h.counts.open.load(Ordering::SeqCst) == 1
    });
    // A session's connection stays open however long it is silent.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(h.counts.open.load(Ordering::SeqCst), 1);
    drop(second);
    eventually("the second closes too", || {
        h.counts.open.load(Ordering::SeqCst) == 0
    });
    eventually("and their threads end", || {
        h.connections.load(Ordering::SeqCst) == 0
    });
}

#[test]
fn a_stop_closes_every_session_and_its_shells_and_serves_no_one_after() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let held = client
        .login("admin", "good", "::1".parse().unwrap())
        .unwrap()
        .unwrap();
    let other = client
        .login("limited", "good", "::1".parse().unwrap())
        .unwrap()
        .unwrap();
    let (_term, pid) = held.open_terminal(24, 80).unwrap();
    // A connection in the middle of nothing (no session): closed too.
    let _idle = UnixStream::connect(&h.path).unwrap();
    eventually("three connections served", || {
        h.connections.load(Ordering::SeqCst) == 3
    });
    assert!(held.is_open() && other.is_open());
    assert_eq!(h.counts.open.load(Ordering::SeqCst), 2);

    let left = h.stopper.stop(Duration::from_secs(5));
    assert_eq!(left, 0, "every connection ended within the wait");
    assert_eq!(
        h.counts.open.load(Ordering::SeqCst),
        0,
        "both login sessions closed before stop returned"
    );
    eventually("the session's shell ends with it", || !running(pid));
    // The web side sees it: the sessions' connections are closed.
    assert!(!held.is_open() && !other.is_open());
    // Nobody is served any more: a new connection is closed unanswered.
    let e = client.may_administer("admin").unwrap_err();
    assert!(
        matches!(e, helper::ClientError::Frame { .. }),
        "a connection after the stop is closed: {e}"
    );
}

#[test]
fn an_open_session_connection_reads_as_open_while_the_helper_holds_it() {
    let h = start(Options::default());
    let held = admin_login(&h);
    std::thread::sleep(Duration::from_millis(100));
    assert!(held.is_open());
    // Requests leave it open.
    held.change(Change::BootNext {
        layer: "hvnode-1.0-1+1".into(),
    })
    .unwrap();
    assert!(held.is_open());
}

/// Whether process `pid` still runs (not a zombie either).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_session_opens_terminals_whose_shells_end_with_it() {
    let h = start(Options::default());
    let held = admin_login(&h);
    let (fd, pid) = held.open_terminal(24, 80).unwrap();
    let mut term = UnixStream::from(fd);
    term.write_all(b"echo\n").unwrap();
    let mut back = [0u8; 5];
    term.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"echo\n");
    assert!(running(pid));
    let (_second, pid2) = held.open_terminal(24, 80).unwrap();
    // Logout: the session's connection closes, and its shells are killed.
    drop(held);
    eventually("the session's shells end with it", || {
        !running(pid) && !running(pid2)
    });
}

#[test]
fn changes_are_made_as_the_sessions_user_only_when_they_may_administer() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let ip: IpAddr = "::1".parse().unwrap();
    let admin = client.login("admin", "good", ip).unwrap().unwrap();
    let start_vm = Change::Vm {
        name: "web1".into(),
        action: "start".into(),
    };
    admin.change(start_vm.clone()).unwrap();
    let restart = Change::Unit {
        unit: "chrony.service".into(),
        action: "restart".into(),
    };
    admin.change(restart.clone()).unwrap();
    // The policy's answer is kept for a minute: asked once for both.
    assert_eq!(h.counts.policy_asked.load(Ordering::SeqCst), 1);
    let e = admin
        .change(Change::Vm {
            name: "missing".into(),
            action: "start".into(),
        })
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::NotFound, "{e}");

    // A session whose user the sudo policy refuses changes nothing.
    let limited = client.login("limited", "good", ip).unwrap().unwrap();
    let e = limited.change(start_vm.clone()).unwrap_err();
    assert_eq!(e.kind, FailureKind::NotAllowed, "{e}");
    assert!(e.message.contains("limited may not administer"), "{e}");
    assert_eq!(
        *h.counts.changes.lock().unwrap(),
        [
            ("admin".to_string(), start_vm.clone()),
            ("admin".to_string(), restart)
        ]
    );

    // Nor does a connection without a session.
    let mut s = UnixStream::connect(&h.path).unwrap();
    frame::write(&mut s, &Request::Change { change: start_vm }).unwrap();
    let Reply::Failed { failure } = frame::read::<Reply>(&mut s).unwrap() else {
        panic!("a change without a session was not refused");
    };
    assert_eq!(failure.kind, FailureKind::NotAllowed);
    assert_eq!(h.counts.changes.lock().unwrap().len(), 2);
}

#[test]
fn a_vm_console_is_passed_to_an_administrators_session_only() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let ip: IpAddr = "::1".parse().unwrap();
    let admin = client.login("admin", "good", ip).unwrap().unwrap();
    let fd = admin
        .open_vm_console("web1", helper::VmConsoleKind::Vnc)
        .unwrap();
    let mut vnc = UnixStream::from(fd);
    let mut greeting = [0u8; 12];
    vnc.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"RFB 003.008\n");
    let e = admin
        .open_vm_console("missing", helper::VmConsoleKind::Vnc)
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::NotFound, "{e}");
    let limited = client.login("limited", "good", ip).unwrap().unwrap();
    let e = limited
        .open_vm_console("web1", helper::VmConsoleKind::Vnc)
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::NotAllowed, "{e}");
}

#[test]
fn an_update_runs_for_an_administrator_and_its_output_comes_back() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let ip: IpAddr = "::1".parse().unwrap();
    let admin = client.login("admin", "good", ip).unwrap().unwrap();
    let (fd, _pid) = admin.run_update("/var/tmp/b.tar", true).unwrap();
    let mut out = String::new();
    std::fs::File::from(fd).read_to_string(&mut out).unwrap();
    assert_eq!(
        out,
        "{\"source\":\"/var/tmp/b.tar\",\"apply\":true}\noops\n"
    );
    let limited = client.login("limited", "good", ip).unwrap().unwrap();
    let e = limited.run_update("/var/tmp/b.tar", false).unwrap_err();
    assert_eq!(e.kind, FailureKind::NotAllowed, "{e}");
}

#[test]
fn a_diagnostic_report_is_passed_to_an_administrators_session_only() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let ip: IpAddr = "::1".parse().unwrap();
    let admin = client.login("admin", "good", ip).unwrap().unwrap();
    let (fd, _pid) = admin.diagnostics().unwrap();
    let mut out = String::new();
    std::fs::File::from(fd).read_to_string(&mut out).unwrap();
    assert_eq!(out, "report for admin");
    let limited = client.login("limited", "good", ip).unwrap().unwrap();
    let e = limited.diagnostics().unwrap_err();
    assert_eq!(e.kind, FailureKind::NotAllowed, "{e}");
    // Without a session: refused before the backend is asked.
    let mut s = UnixStream::connect(&h.path).unwrap();
    frame::write(&mut s, &Request::Diagnostics).unwrap();
    let (reply, fd) = frame::read_with_fd::<Reply>(&s).unwrap();
    assert!(fd.is_none());
    let Reply::Failed { failure } = reply else {
        panic!("a report without a session was not refused: {reply:?}");
    };
    assert_eq!(failure.kind, FailureKind::NotAllowed);
}

#[test]
fn a_registration_step_runs_for_an_administrator_only() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let ip: IpAddr = "::1".parse().unwrap();
    let step = RegisterStep::Register {
        engine: "engine.example.com".into(),
        port: 443,
        fingerprint: format!("SHA256:{}", "ab".repeat(32)),
        node_name: Some("node1".into()),
        node_address: None,
    };
    let admin = client.login("admin", "good", ip).unwrap().unwrap();
    let (fd, _pid) = admin.register(step.clone()).unwrap();
    let mut out = String::new();
    std::fs::File::from(fd).read_to_string(&mut out).unwrap();
    assert_eq!(
        serde_json::from_str::<RegisterStep>(&out).unwrap(),
        step,
        "{out}"
    );
    let limited = client.login("limited", "good", ip).unwrap().unwrap();
    let e = limited.register(step.clone()).unwrap_err();
    assert_eq!(e.kind, FailureKind::NotAllowed, "{e}");
    // Without a session: refused before the backend is asked.
    let mut s = UnixStream::connect(&h.path).unwrap();
    frame::write(&mut s, &Request::Register { step }).unwrap();
    let (reply, fd) = frame::read_with_fd::<Reply>(&s).unwrap();
    assert!(fd.is_none());
    let Reply::Failed { failure } = reply else {
        panic!("a registration without a session was not refused: {reply:?}");
    };
    assert_eq!(failure.kind, FailureKind::NotAllowed);
}

#[test]
fn a_terminal_needs_a_session() {
    let h = start(Options::default());
    let mut s = UnixStream::connect(&h.path).unwrap();
    frame::write(&mut s, &Request::OpenTerminal { rows: 24, cols: 80 }).unwrap();
    let (reply, fd) = frame::read_with_fd::<Reply>(&s).unwrap();
    assert!(fd.is_none());
    let Reply::Error { message } = reply else {
        panic!("a terminal was opened without a session: {reply:?}");
    };
    assert!(
        message.contains("login session's connection only"),
        "{message}"
    );
}

#[test]
fn refusals_and_policy_answers_come_back_as_the_backend_gave_them() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(
        client.login("admin", "bad", ip).unwrap().unwrap_err(),
        Refusal::BadCredentials
    );
    assert_eq!(
        client.login("guest", "x", ip).unwrap().unwrap_err(),
        Refusal::NotAdmin {
            groups: "wheel".into()
        }
    );
    assert_eq!(h.counts.open.load(Ordering::SeqCst), 0);
    assert_eq!(client.authenticate("admin", "good").unwrap(), Ok(()));
    assert_eq!(
        client.authenticate("admin", "bad").unwrap(),
        Err(Refusal::BadCredentials)
    );
    assert_eq!(h.counts.open.load(Ordering::SeqCst), 0);
    assert!(client.may_administer("admin").unwrap());
    assert!(!client.may_administer("limited").unwrap());
    let e = client.may_administer("broken").unwrap_err().to_string();
    assert!(e.contains("syntax error in /etc/sudoers"), "{e}");
}

#[test]
fn a_second_login_on_a_session_connection_is_refused() {
    let h = start(Options::default());
    let mut s = UnixStream::connect(&h.path).unwrap();
    let login = Request::Login {
        user: "admin".into(),
        password: Password("good".into()),
        client: "::1".parse().unwrap(),
    };
    frame::write(&mut s, &login).unwrap();
    assert_eq!(frame::read::<Reply>(&mut s).unwrap(), Reply::LoggedIn);
    frame::write(&mut s, &login).unwrap();
    let Reply::Error { message } = frame::read::<Reply>(&mut s).unwrap() else {
        panic!("a second login on a session's connection was not refused");
    };
    assert!(
        message.contains("holds a login session already"),
        "{message}"
    );
    // The connection and its session stay.
    assert_eq!(h.counts.open.load(Ordering::SeqCst), 1);
    frame::write(
        &mut s,
        &Request::MayAdminister {
            user: "admin".into(),
        },
    )
    .unwrap();
    assert_eq!(
        frame::read::<Reply>(&mut s).unwrap(),
        Reply::Allowed { allowed: true }
    );
}

#[test]
fn bad_frames_end_their_connection_and_the_helper_serves_on() {
    let h = start(Options::default());
    // Too long, announced.
    let mut s = UnixStream::connect(&h.path).unwrap();
    s.write_all(&(10u32 << 20).to_be_bytes()).unwrap();
    let Reply::Error { message } = frame::read::<Reply>(&mut s).unwrap() else {
        panic!("an oversized frame got no error");
    };
    assert!(message.contains("at most 65536"), "{message}");
    assert!(matches!(
        frame::read::<Reply>(&mut s),
        Err(frame::FrameError::Closed | frame::FrameError::Io(_))
    ));
    // Not a request: an argv to run.
    let mut s = UnixStream::connect(&h.path).unwrap();
    let body = br#"{"request": "run", "argv": ["/bin/sh"]}"#;
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
    let Reply::Error { message } = frame::read::<Reply>(&mut s).unwrap() else {
        panic!("an unknown request got no error");
    };
    assert!(
        message.contains("not a message this side knows"),
        "{message}"
    );
    // Garbage.
    let mut s = UnixStream::connect(&h.path).unwrap();
    s.write_all(b"\0\0\0\x05hello").unwrap();
    assert!(matches!(
        frame::read::<Reply>(&mut s).unwrap(),
        Reply::Error { .. }
    ));
    assert!(Client::new(&h.path).may_administer("admin").unwrap());
}

#[test]
fn silent_and_half_sent_requests_are_closed_after_the_idle_timeout() {
    let h = start(Options {
        idle_timeout: Duration::from_millis(300),
        ..Options::default()
    });
    let mut silent = UnixStream::connect(&h.path).unwrap();
    let mut half = UnixStream::connect(&h.path).unwrap();
    half.write_all(&[0, 0, 0, 40, b'{']).unwrap();
    for s in [&mut silent, &mut half] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 16];
        // The helper closes: end of file (or a reset), not our own timeout.
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0);
        assert!(started.elapsed() < Duration::from_secs(4));
    }
    eventually("their threads end", || {
        h.connections.load(Ordering::SeqCst) == 0
    });
}

#[test]
fn connections_past_the_cap_are_answered_with_an_error_and_closed() {
    let h = start(Options {
        max_connections: 3,
        ..Options::default()
    });
    let client = Client::new(&h.path);
    let ip: IpAddr = "::1".parse().unwrap();
    let held: Vec<_> = (0..3)
        .map(|_| client.login("admin", "good", ip).unwrap().unwrap())
        .collect();
    let e = client.may_administer("admin").unwrap_err().to_string();
    assert!(e.contains("at most 3 connections"), "{e}");
    drop(held);
    eventually("room again once sessions end", || {
        client.may_administer("admin").is_ok()
    });
}

#[test]
fn only_root_and_the_allowed_users_are_served() {
    if !hvnode_testutil::require_root() {
        return;
    }
    let h = start(Options::default());
    // The file's mode lets anyone connect: the peer's credentials must stop them.
    std::fs::set_permissions(h._dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&h.path, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The test's own executable may sit where another user cannot run it; Python's
    // socket module speaks the frames as well.
    let ask_as = |path: &PathBuf, uid: u32| {
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new("python3")
            .args(["-c", ASK_IN_PYTHON])
            .arg(path)
            .current_dir("/")
            .uid(uid)
            .gid(uid)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let nobody = ask_as(&h.path, 65534);
    assert!(
        nobody.contains(r#"{"reply":"error","message":"uid 65534 may not use the helper"}"#),
        "{nobody}"
    );

    let h = start(Options {
        allowed_uids: vec![65534],
        ..Options::default()
    });
    std::fs::set_permissions(h._dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&h.path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let allowed = ask_as(&h.path, 65534);
    assert!(
        allowed.contains(r#"{"reply":"allowed","allowed":true}"#),
        "{allowed}"
    );
}

/// Connects to the socket named by its argument, asks whether `admin` may
/// administer, and prints the answer's JSON.
const ASK_IN_PYTHON: &str = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
body = json.dumps({"request": "may_administer", "user": "admin"}).encode()
try:
    s.sendall(struct.pack(">I", len(body)) + body)
except BrokenPipeError:
    pass  # refused: the helper answered and closed before reading
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
    if len(data) >= 4 and len(data) >= 4 + struct.unpack(">I", data[:4])[0]:
        break
print(data[4:].decode())
"#;

#[test]
fn the_layer_facts_and_thin_pools_come_back_on_any_connection() {
    let h = start(Options::default());
    let client = Client::new(&h.path);
    let facts = client.layer_facts().unwrap();
    assert_eq!(facts.vg, "hvnode");
    assert_eq!(facts.backend, Some(layers::status::Backend::Lvm));
    assert_eq!(facts.boot_files.len(), 4000);
    let size = serde_json::to_vec(&facts).unwrap().len();
    assert!(
        size > frame::MAX_FRAME,
        "an answer larger than a request may be ({size} bytes)"
    );
    // The backend's failure comes back as its message.
    let e = client.thin_pools().unwrap_err();
    assert!(e.to_string().contains("no LVM here"), "{e}");
    // Neither needs a session, nor asks the sudo policy.
    assert_eq!(h.counts.policy_asked.load(Ordering::SeqCst), 0);
}

/// The engine link's user may ask for engine actions and nothing else; no other
/// user may ask for them.
#[test]
fn engine_actions_are_served_to_the_engine_link_only() {
    let me = nix::unistd::getuid().as_raw();
    let destroy = |id: &str| EngineAction::VmDestroy { vm_id: id.into() };

    let console = start(Options::default());
    let refused = Client::new(&console.path).engine(destroy("a")).unwrap_err();
    assert_eq!(refused.kind, FailureKind::NotAllowed, "{refused}");
    assert!(refused.message.contains("engine's link"), "{refused}");
    assert!(Client::new(&console.path).engine_facts().is_err());
    assert!(console.counts.engine_actions.lock().unwrap().is_empty());

    let engine = start(Options {
        engine_uids: vec![me],
        ..Options::default()
    });
    let client = Client::new(&engine.path);
    let facts = client.engine_facts().unwrap();
    assert_eq!(facts.system_serial.as_deref(), Some("S3R1AL"));
    assert_eq!(facts.cpu_models, ["EPYC"]);
    client.engine(destroy("a")).unwrap();
    let shutdown = EngineAction::VmShutdown {
        vm_id: "b".into(),
        reboot: true,
    };
    client.engine(shutdown.clone()).unwrap();
    let missing = client.engine(destroy("missing")).unwrap_err();
    assert_eq!(missing.kind, FailureKind::NotFound, "{missing}");
    assert_eq!(
        *engine.counts.engine_actions.lock().unwrap(),
        [destroy("a"), shutdown]
    );
    // Nothing else, not even a question that any console connection may ask.
    let err = client.may_administer("admin").unwrap_err().to_string();
    assert!(err.contains("engine actions and facts only"), "{err}");
    assert!(
        client
            .login("admin", "good", "::1".parse().unwrap())
            .is_err()
    );
    assert_eq!(engine.counts.policy_asked.load(Ordering::SeqCst), 0);
    assert_eq!(engine.counts.open.load(Ordering::SeqCst), 0);
}

/// The engine link's socket belongs to its user, mode 0600.
#[test]
fn the_engine_socket_is_its_users_alone() {
    if !hvnode_testutil::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine");
    let _listener =
        helper::server::bind_for_user(&path, nix::unistd::Uid::from_raw(65534)).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), 65534);
    assert_eq!(meta.mode() & 0o777, 0o600);
}
