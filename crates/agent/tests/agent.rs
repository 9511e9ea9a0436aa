//! The `hvnode-agent` binary: flags, TLS on first start, readiness and watchdog
//! notifications to a systemd-like socket, clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
}

/// A socket in `dir` for systemd-like notifications (`NOTIFY_SOCKET`), and its path.
fn notify_socket(dir: &std::path::Path) -> (std::path::PathBuf, UnixDatagram) {
    let notify = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    (notify, sock)
}

/// How `child` (`what`) exited, within 10 s.
fn wait_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn messages(sock: &UnixDatagram, want: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = m.contains(want);
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
    panic!("{want:?} not received; got {seen:?}");
}

#[test]
fn starts_with_tls_notifies_systemd_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (notify, sock) = notify_socket(dir.path());
    let node = dir.path().join("node.xml");
    std::fs::write(&node, "<node><domain type='test'><name>a</name><memory>1024</memory><os><type>hvm</type></os></domain></node>").unwrap();
    let port = free_port();
    let certs = dir.path().join("certs");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "admin_groups = [\"nobody-group\"]\nidle_timeout_secs = 60\n",
    )
    .unwrap();
    // systemd passes the watchdog to the process it started: WATCHDOG_PID is that pid,
    // which `exec` from a shell keeps.
    let child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_hvnode-agent"))
        .args(["--config", config.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--libvirt-uri", &format!("test://{}", node.display())])
        .args(["--state-dir", dir.path().join("state").to_str().unwrap()])
        .args(["--certs-dir", certs.to_str().unwrap()])
        .args(["--admin-group", "wheel"])
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut agent = Agent(child);
    let got = messages(&sock, "READY=1", Duration::from_secs(20));
    assert!(got.iter().any(|m| m.contains("READY=1")));
    // The watchdog is pinged at half the interval.
    messages(&sock, "WATCHDOG=1", Duration::from_secs(5));
    assert!(
        certs.join("0-self-signed.cert").exists(),
        "a certificate was generated"
    );
    assert!(certs.join("0-self-signed.key").exists());

    // TLS on the port; the login page answers.
    let agent_http = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .build()
        .new_agent();
    let mut r = agent_http
        .get(&format!("https://127.0.0.1:{port}/login"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains("Log in"));

    sigterm(&agent.0);
    let status = wait_exit(&mut agent.0, "the agent");
    assert!(status.success(), "{status}");
    messages(&sock, "STOPPING=1", Duration::from_secs(2));
}

#[test]
fn bad_configuration_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "listen = 9090\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hvnode-agent"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.toml"), "{err}");
}

#[test]
fn a_port_in_use_is_reported() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hvnode-agent"))
        .args(["--config", config.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--insecure-http"])
        .args(["--state-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// SHA-256 fingerprint of a PEM certificate, as openssl prints it.
fn fingerprint(pem: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), pem).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn an_administrators_certificate_wins_over_the_generated_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    // An administrator's certificate and key, made with openssl.
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=node1.example", "-days", "30"])
        .arg("-keyout")
        .arg(certs.join("50-admin.key"))
        .arg("-out")
        .arg(certs.join("50-admin.cert"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "").unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_hvnode-agent"))
        .args(["--config", config.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--state-dir", dir.path().join("state").to_str().unwrap()])
        .args(["--certs-dir", certs.to_str().unwrap()])
        .args(["--libvirt-uri", "test:///default"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = Agent(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "agent did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let served = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-showcerts",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&served.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate was served");
    let end = text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    let admin = std::fs::read(certs.join("50-admin.cert")).unwrap();
    assert_eq!(
        fingerprint(text[begin..end].as_bytes()),
        fingerprint(&admin)
    );
    assert!(
        !certs.join("0-self-signed.cert").exists(),
        "nothing generated"
    );
}

/// The `hvnode-helper` binary stops in order on SIGTERM: it tells systemd it is
/// stopping, closes every connection (so each login session's PAM session is closed
/// by its thread before the process ends) and exits with success, not by the signal.
#[test]
fn the_helper_closes_its_connections_and_exits_cleanly_on_sigterm() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let (notify, sock) = notify_socket(dir.path());
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "admin_groups = [\"nobody-group\"]\n").unwrap();
    let socket = dir.path().join("run/helper.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_hvnode-helper"))
        .args(["--config", config.to_str().unwrap()])
        .args(["--socket", socket.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &notify)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut helper = Agent(child);
    messages(&sock, "READY=1", Duration::from_secs(20));
    // A client in the middle of nothing: the helper does not wait for it to speak.
    let mut held = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The connection is served (on its thread) before the stop.
    std::thread::sleep(Duration::from_millis(200));

    sigterm(&helper.0);
    messages(&sock, "STOPPING=1", Duration::from_secs(5));
    let status = wait_exit(&mut helper.0, "the helper");
    assert!(
        status.success(),
        "exited by itself, not by the signal: {status}"
    );
    let mut rest = Vec::new();
    assert_eq!(
        held.read_to_end(&mut rest).unwrap(),
        0,
        "the connection was closed"
    );
    let mut stderr = String::new();
    helper
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
