//! A console on loopback for integration tests, an HTTP client, and a real local user
//! with a PAM service for login tests. Everything listens on 127.0.0.1 only.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err
)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use console::auth::{Authenticator, Pam};
use console::clock::{Clock, ManualClock};
use console::sudo::{AdminPolicy, PolicyError};
use console::{AppState, Config, Console, Metrics};
use ureq::Agent;

/// libvirt's test driver with two domains ("test" with a static sVirt label, "idle"),
/// private to each server so that tests running at once do not share VM state.
pub const TEST_NODE_XML: &str = include_str!("../fixtures/test-node.xml");

/// How often the test console samples the host (the console: once a second), so that
/// a test waits a moment, not seconds, for the history's first points.
pub const SAMPLE_PERIOD: std::time::Duration = std::time::Duration::from_millis(50);

/// A stand-in for sudo's policy of administrative access: allows every account but
/// those [`SudoPolicy::deny`] names, and counts the questions. Tests that are not
/// about sudo use it; `tests/admin_access.rs` also asks the real sudo.
#[derive(Debug, Default)]
pub struct SudoPolicy {
    denied: Mutex<HashSet<String>>,
    asked: AtomicUsize,
}

impl SudoPolicy {
    /// From now on `user`'s sudo rules allow only some commands.
    pub fn deny(&self, user: &str) {
        self.denied.lock().unwrap().insert(user.to_string());
    }

    /// How often the console asked.
    pub fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl AdminPolicy for SudoPolicy {
    fn allows(&self, user: &str) -> Result<bool, PolicyError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(!self.denied.lock().unwrap().contains(user))
    }
}

/// A running console; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    /// The clock of sessions and the login throttle: it stands still until a test
    /// advances it past an idle timeout or the throttle's window.
    pub clock: Arc<ManualClock>,
    /// The sudo policy's stand-in (unused by a server started with the real sudo).
    pub policy: Arc<SudoPolicy>,
    pub tls: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dirs: tempfile::TempDir,
}

impl Server {
    /// Plain HTTP on loopback, libvirt's test driver, PAM, the sudo policy's
    /// stand-in ([`Server::policy`]), the given tweaks.
    pub fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(true, None, None, tweak)
    }

    pub fn start_tls(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(false, None, None, tweak)
    }

    /// Plain HTTP on loopback with logins checked by `auth` instead of PAM.
    pub fn start_with_auth(auth: Arc<dyn Authenticator>, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(true, Some(auth), None, tweak)
    }

    /// Plain HTTP on loopback, PAM, and the sudo policy asked of `policy` (the real
    /// [`console::sudo::Sudo`]) instead of the stand-in.
    pub fn start_with_policy(
        policy: Arc<dyn AdminPolicy>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_with(true, None, Some(policy), tweak)
    }

    fn start_with(
        insecure: bool,
        auth: Option<Arc<dyn Authenticator>>,
        real_policy: Option<Arc<dyn AdminPolicy>>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let dirs = tempfile::tempdir().unwrap();
        let node = dirs.path().join("test-node.xml");
        std::fs::write(&node, TEST_NODE_XML).unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            libvirt_uri: format!("test://{}", node.display()),
            state_dir: dirs.path().join("state"),
            certs_dir: dirs.path().join("ws-certs.d"),
            // The registration files of a scratch node, never the build host's.
            sysroot: dirs.path().join("sysroot"),
            insecure_http: insecure,
            ..Config::default()
        };
        tweak(&mut config);
        let clock = Arc::new(ManualClock::new());
        let console_clock = clock.clone();
        let stand_in = Arc::new(SudoPolicy::default());
        let policy: Arc<dyn AdminPolicy> = real_policy.unwrap_or_else(|| stand_in.clone());
        let auth = auth.unwrap_or_else(|| {
            Arc::new(Pam {
                service: config.pam_service.clone(),
                admin_groups: config.admin_groups.clone(),
            })
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let metrics = Arc::new(Metrics::default());
                let sampler = console::spawn_sampler_every(metrics.clone(), SAMPLE_PERIOD);
                let c = Console::bind_with_checks(config, metrics, console_clock, auth, policy)
                    .await
                    .unwrap();
                tx.send((c.local_addr().unwrap(), c.state.clone())).unwrap();
                c.serve(async move {
                    let _ = stop_rx.await;
                })
                .await;
                sampler.abort();
            });
        });
        let (addr, state) = rx.recv().unwrap();
        Self {
            addr,
            state,
            clock,
            policy: stand_in,
            tls: !insecure,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dirs: dirs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn origin(&self) -> String {
        self.url("")
    }

    /// Waits until the sampler has taken its first point (it reads the host twice,
    /// a sample period apart, for the first rates).
    pub fn first_sample(&self) -> console::metrics::Point {
        let mut live = self.state.metrics.subscribe();
        if let Some(p) = self.state.metrics.history().first() {
            return *p;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(live.blocking_recv());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the sampler took no sample within 10 s")
            .expect("the sampler stopped")
    }

    /// A session made directly in the store (for tests that are not about PAM):
    /// limited, as every session starts.
    pub fn session(&self, user: &str) -> Session {
        let (token, csrf) = self.state.sessions.lock().unwrap().create(user).unwrap();
        Session {
            cookie: format!("{}={token}", console::session::COOKIE),
            csrf,
        }
    }

    /// A session made directly in the store with administrative access turned on,
    /// for tests that change something and are not about the access itself. The
    /// console still checks its rights on each change: use root (always in an admin
    /// group) or a member of one.
    pub fn admin_session(&self, user: &str) -> Session {
        let mut sessions = self.state.sessions.lock().unwrap();
        let (token, csrf) = sessions.create(user).unwrap();
        assert!(sessions.grant_admin(&token, self.clock.now()));
        Session {
            cookie: format!("{}={token}", console::session::COOKIE),
            csrf,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A logged-in client's cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// An HTTP client that reports every status as a response and follows no redirect.
pub fn client() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .build()
        .into()
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.unwrap();
    Reply {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

pub fn get(url: &str, session: Option<&Session>, headers: &[(&str, &str)]) -> Reply {
    let mut req = client().get(url);
    if let Some(s) = session {
        req = req.header("Cookie", &s.cookie);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.call())
}

pub fn post_form(
    url: &str,
    session: Option<&Session>,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut req = client()
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(s) = session {
        req = req.header("Cookie", &s.cookie);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.send(body))
}

/// A form POST sent from the loopback address `from` (any of 127.0.0.0/8), so that
/// tests can be several clients: a plain HTTP/1.1 request on a socket bound there.
pub fn post_form_from(
    from: std::net::IpAddr,
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    use std::io::{Read, Write};
    assert!(!server.tls, "post_form_from speaks plain HTTP");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = server.addr;
    let stream = rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        socket.connect(addr).await.unwrap()
    });
    let mut stream = {
        let _guard = rt.enter();
        stream.into_std().unwrap()
    };
    stream.set_nonblocking(false).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let mut map = ureq::http::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            map.append(
                ureq::http::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                ureq::http::HeaderValue::from_str(v.trim()).unwrap(),
            );
        }
    }
    Reply {
        status,
        headers: map,
        body: body.to_string(),
    }
}

/// A login through the form from loopback address `from`.
pub fn login_from(from: std::net::IpAddr, server: &Server, user: &str, password: &str) -> Reply {
    post_form_from(
        from,
        server,
        "/login",
        &[],
        &format!("username={}&password={}", enc(user), enc(password)),
    )
}

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The session cookie (`name=value`) of a login response.
pub fn session_cookie(r: &Reply) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| {
            v.starts_with(&format!("{}=", console::session::COOKIE))
                && !v.starts_with(&format!("{}=;", console::session::COOKIE))
        })
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// Logs in through the form and returns the session with its CSRF token.
pub fn login(server: &Server, user: &str, password: &str) -> Result<Session, Reply> {
    let r = post_form(
        &server.url("/login"),
        None,
        &[],
        &format!("username={}&password={}", enc(user), enc(password)),
    );
    let Some(cookie) = session_cookie(&r).filter(|_| r.status == 303) else {
        return Err(r);
    };
    let s = get(
        &server.url("/api/v1/session"),
        Some(&Session {
            cookie: cookie.clone(),
            csrf: String::new(),
        }),
        &[],
    );
    assert_eq!(s.status, 200, "{}", s.body);
    let csrf = s.json()["data"]["csrf"].as_str().unwrap().to_string();
    Ok(Session { cookie, csrf })
}

/// Turns on administrative access for `session` through the API, with `password`.
pub fn turn_on_admin(server: &Server, session: &Session, password: &str) -> Reply {
    post_form(
        &server.url("/api/v1/session/admin"),
        Some(session),
        &[("X-CSRF-Token", &session.csrf)],
        &format!("password={}", enc(password)),
    )
}

/// Logs in through the form and turns on administrative access with the same
/// password: what an administrator does before changing anything.
pub fn login_admin(server: &Server, user: &str, password: &str) -> Result<Session, Reply> {
    let s = login(server, user, password)?;
    let r = turn_on_admin(server, &s, password);
    if r.status != 200 {
        return Err(r);
    }
    Ok(s)
}

/// (method, path) of every `.route(...)` in the router, path parameters filled in:
/// read from `src/router.rs`, so that a new route cannot be forgotten by the tests
/// that walk them all.
pub fn routes() -> Vec<(String, String)> {
    let src = include_str!("../../src/router.rs");
    let mut out = Vec::new();
    let starts: Vec<usize> = src.match_indices(".route(").map(|(i, _)| i).collect();
    for (n, start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(src.len());
        let call = &src[*start..end];
        let call = &call[..call
            .find(".fallback(")
            .or(call.find(".merge("))
            .unwrap_or(call.len())];
        let path = &call[call.find('"').unwrap() + 1..];
        let path = &path[..path.find('"').unwrap()];
        let path = path
            .replace("{name}", "test")
            .replace("{action}", "start")
            .replace("{unit}", "ssh.service")
            .replace("{layer}", "hvnode-1.0-0.20261125.0+1")
            .replace("{file}", "console.css");
        for (needle, method) in [
            ("get(", "GET"),
            ("post(", "POST"),
            ("put(", "PUT"),
            ("delete(", "DELETE"),
        ] {
            if call.contains(needle) {
                out.push((method.to_string(), path.clone()));
            }
        }
    }
    assert!(out.len() >= 25, "the router has more routes than {out:?}");
    out
}

/// A request of any method with a form body (`GET` sends none).
pub fn request(
    server: &Server,
    method: &str,
    path: &str,
    session: Option<&Session>,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let url = server.url(path);
    let mut req = match method {
        "GET" => return get(&url, session, headers),
        "POST" => return post_form(&url, session, headers, body),
        "PUT" => client().put(&url),
        "PATCH" => client().patch(&url),
        "DELETE" => client().delete(&url).force_send_body(),
        other => panic!("no such method in the router: {other}"),
    };
    req = req.header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(s) = session {
        req = req.header("Cookie", &s.cookie);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.send(body))
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates a local user and a PAM service: run it as root (CI does)"
    );
}

/// Runs an account tool, retrying while another test holds the passwd lock.
pub fn run(cmd: &mut Command) {
    let mut last = String::new();
    for _ in 0..50 {
        let out = cmd.output().unwrap();
        if out.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        if !last.contains("lock") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{cmd:?}: {last}");
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A PAM service file for the tests, a copy of the one shipped in the image; removed
/// when dropped.
pub struct PamService {
    pub name: String,
    path: PathBuf,
}

impl PamService {
    pub fn install() -> Self {
        require_root();
        let shipped =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../image/files/etc/pam.d/hvnode");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("hvnode-test-{}-{n}", std::process::id());
        let path = PathBuf::from("/etc/pam.d").join(&name);
        std::fs::copy(&shipped, &path).unwrap();
        Self { name, path }
    }

    /// The shipped stack with `extra` lines after it (e.g. a session module the test
    /// watches).
    pub fn install_with(extra: &str) -> Self {
        let service = Self::install();
        let mut text = std::fs::read_to_string(&service.path).unwrap();
        text.push_str(extra);
        std::fs::write(&service.path, text).unwrap();
        service
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A real local account with a password; deleted (with its home) when dropped.
pub struct TestUser {
    pub name: String,
    pub password: String,
    group: Option<String>,
}

impl TestUser {
    /// Creates a user, in `group` if given (the group is created for the test).
    pub fn create(group: Option<&str>) -> Self {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("hvt{}x{n}", std::process::id());
        let group = group.map(|g| {
            let g = format!("{g}{}x{n}", std::process::id());
            run(Command::new("groupadd").arg(&g));
            g
        });
        let mut cmd = Command::new("useradd");
        cmd.args(["-m", "-s", "/bin/bash"]);
        if let Some(g) = &group {
            cmd.args(["-G", g]);
        }
        run(cmd.arg(&name));
        let password = format!("Pw-{}-{n}!x", std::process::id());
        let hash = Command::new("openssl")
            .args(["passwd", "-6", &password])
            .output()
            .unwrap();
        assert!(hash.status.success(), "openssl passwd -6");
        let hash = String::from_utf8(hash.stdout).unwrap();
        run(Command::new("usermod").args(["-p", hash.trim(), &name]));
        Self {
            name,
            password,
            group,
        }
    }

    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // -f: a shell of the user's may still be on its way out.
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .output();
        if let Some(g) = &self.group {
            let _ = Command::new("groupdel").arg(g).output();
        }
    }
}

/// The privileged helper on a socket of its own, serving the console's PAM backend
/// for `config` (its PAM service, admin groups, disallowed users, and the real
/// sudo), making VM changes on `libvirt` (give the server's, so that both see the
/// same test driver's state).
pub struct Helper {
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
    stopper: Mutex<Option<helper::Stopper>>,
}

impl Helper {
    pub fn start(config: &Config, libvirt: Option<Arc<console::vms::Libvirt>>) -> Self {
        let h = Self::unstarted();
        h.serve(config, libvirt);
        h
    }

    /// A socket path for a helper that [`Helper::serve`] starts later (once the
    /// console whose libvirt connection it shares runs).
    pub fn unstarted() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("helper.sock");
        Self {
            _dir: dir,
            socket,
            stopper: Mutex::new(None),
        }
    }

    pub fn serve(&self, config: &Config, libvirt: Option<Arc<console::vms::Libvirt>>) {
        self.serve_with(config, |backend| {
            if let Some(l) = libvirt {
                backend.libvirt = l;
            }
        });
    }

    /// Serves with the backend of `config` as `tweak` changes it.
    pub fn serve_with(
        &self,
        config: &Config,
        tweak: impl FnOnce(&mut console::auth::remote::PamBackend),
    ) {
        let listener = helper::server::bind(&self.socket, None).unwrap();
        let mut backend = console::auth::remote::PamBackend::from_config(config);
        tweak(&mut backend);
        let server = helper::Server::new(listener, backend, helper::Options::default());
        *self.stopper.lock().unwrap() = Some(server.stopper());
        std::thread::spawn(move || server.serve());
    }

    /// Stops the helper as its SIGTERM does: every connection and login session
    /// closed (the PAM sessions on their own threads, waited for).
    pub fn stop(&self) {
        let stopper = self
            .stopper
            .lock()
            .unwrap()
            .take()
            .expect("a helper serves");
        assert_eq!(stopper.stop(std::time::Duration::from_secs(10)), 0);
        assert_eq!(
            console::auth::pam_session::wait_closed(std::time::Duration::from_secs(10)),
            0
        );
    }

    /// The web side's authenticator and sudo policy: this helper.
    pub fn remote(&self) -> Arc<console::auth::remote::Remote> {
        Arc::new(console::auth::remote::Remote::new(&self.socket))
    }
}
