//! The helper's side: accepts connections on its socket, checks who connected, and
//! answers requests with a [`Backend`], a thread per connection.

use std::collections::HashMap;
use std::fs;
use std::io::{self, ErrorKind};
use std::net::IpAddr;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{Gid, Pid, Uid, chown};

use crate::frame::{self, FrameError};
use crate::proto::{
    Change, EngineAction, EngineFacts, Failure, FailureKind, Refusal, RegisterStep, Reply, Request,
    VmConsoleKind,
};

/// How long the helper trusts its answer that a session's user may administer the
/// node before it asks again (on that session's next change).
pub const ADMIN_RECHECK: Duration = Duration::from_secs(60);

/// What the helper does for each request: the privileged work itself. The node's
/// helper uses PAM and sudo; tests put in one that counts and answers as told.
pub trait Backend: Send + Sync + 'static {
    /// What keeps an open login session open; dropping it closes the session.
    type Session: Send + 'static;

    /// Checks a login and opens its session ([`Request::Login`]). Blocking.
    fn login(&self, user: &str, password: &str, client: IpAddr) -> Result<Self::Session, Refusal>;

    /// Checks a password and the account without opening a session
    /// ([`Request::Authenticate`]). Blocking.
    fn authenticate(&self, user: &str, password: &str) -> Result<(), Refusal>;

    /// Whether `user` may run every command as root by the sudo policy
    /// ([`Request::MayAdminister`]); an error says why it could not be learned.
    /// Blocking.
    fn may_administer(&self, user: &str) -> Result<bool, String>;

    /// Starts a login shell for `user` on a new terminal of `rows` × `cols`
    /// ([`Request::OpenTerminal`]); `user` is the one whose login opened the
    /// connection's session.
    fn open_terminal(&self, user: &str, rows: u16, cols: u16) -> Result<Terminal, String>;

    /// Makes `change` ([`Request::Change`]) for `user`, whom the helper has found
    /// may administer the node. Blocking.
    fn change(&self, user: &str, change: &Change) -> Result<(), Failure>;

    /// Opens VM `vm`'s console of `kind` ([`Request::OpenVmConsole`]) for `user`,
    /// whom the helper has found may administer the node: the descriptor passed
    /// to the client. Blocking.
    fn open_vm_console(
        &self,
        user: &str,
        vm: &str,
        kind: VmConsoleKind,
    ) -> Result<OwnedFd, Failure>;

    /// Starts `nodectl update` for `source` ([`Request::RunUpdate`]) for `user`,
    /// whom the helper has found may administer the node: the read end of its
    /// output and the process.
    fn run_update(
        &self,
        user: &str,
        source: &str,
        apply: bool,
    ) -> Result<(OwnedFd, std::process::Child), Failure>;

    /// Starts `nodectl register` for `step` ([`Request::Register`]) for `user`,
    /// whom the helper has found may administer the node: the read end of its
    /// standard output and the process.
    fn register(
        &self,
        user: &str,
        step: &RegisterStep,
    ) -> Result<(OwnedFd, std::process::Child), Failure>;

    /// Starts `nodectl diagnostics -o -` ([`Request::Diagnostics`]) for `user`,
    /// whom the helper has found may administer the node: the read end of its
    /// standard output (the report) and the process.
    fn diagnostics(&self, user: &str) -> Result<(OwnedFd, std::process::Child), Failure>;

    /// The layer store's facts ([`Request::LayerFacts`]); an error says why they
    /// could not be read. Blocking.
    fn layer_facts(&self) -> Result<layers::status::Facts, String>;

    /// The thin pools ([`Request::ThinPools`]); an error says why they could not be
    /// read. Blocking.
    fn thin_pools(&self) -> Result<Vec<hostinfo::ThinPool>, String>;

    /// Does what the engine asked through its link ([`Request::Engine`]), for a
    /// connection of the engine link's user. Blocking.
    fn engine(&self, action: &EngineAction) -> Result<(), Failure>;

    /// The facts only root may read that the engine asks for
    /// ([`Request::EngineFacts`]); an error says why they could not be read.
    /// Blocking.
    fn engine_facts(&self) -> Result<EngineFacts, String>;
}

/// A shell on a terminal, as [`Backend::open_terminal`] started it.
#[derive(Debug)]
pub struct Terminal {
    /// The terminal's controlling side (the pty master), passed to the client.
    pub master: OwnedFd,
    /// The shell (or what starts it: `systemd-run`, `runuser`).
    pub child: std::process::Child,
}

/// A shell started for a session: killed when the session ends, if still running.
#[derive(Debug)]
struct Running {
    pid: Pid,
    done: Arc<AtomicBool>,
}

impl Running {
    /// Waits for `child` on a thread of its own (so it never lingers as a zombie).
    fn watch(mut child: std::process::Child) -> io::Result<Self> {
        let pid = Pid::from_raw(child.id() as i32);
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::Builder::new()
            .name("hvnode-helper-shell".into())
            .spawn(move || {
                let _ = child.wait();
                flag.store(true, Ordering::SeqCst);
            })?;
        Ok(Self { pid, done })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done.load(Ordering::SeqCst) {
            // The waiting thread reaps it; until then the pid is still the shell's.
            let _ = kill(self.pid, Signal::SIGKILL);
        }
    }
}

/// How the helper serves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The users, besides root, whose processes may connect (the console's user).
    pub allowed_uids: Vec<u32>,
    /// The users whose connections are the engine's link (hvnode-vdsm's user):
    /// they may connect and ask [`Request::Engine`] and [`Request::EngineFacts`],
    /// nothing else, and no one else may ask those.
    pub engine_uids: Vec<u32>,
    /// Most connections open at once; each is a thread, and each open login session
    /// holds one.
    pub max_connections: usize,
    /// How long a connection that holds no session may stay silent (waiting for a
    /// request or in the middle of one) before it is closed.
    pub idle_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allowed_uids: Vec::new(),
            engine_uids: Vec::new(),
            max_connections: 512,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A helper bound to its socket.
#[derive(Debug)]
pub struct Server<B> {
    listener: UnixListener,
    backend: Arc<B>,
    options: Options,
    open: Arc<AtomicUsize>,
    connections: Connections,
}

/// The connections being served, each by a copy of its socket, so that a stop can
/// close them all ([`Stopper`]).
#[derive(Debug, Clone, Default)]
struct Connections {
    by_id: Arc<Mutex<HashMap<u64, UnixStream>>>,
    next: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
}

impl Connections {
    /// Keeps a copy of `stream` until [`Connections::forget`]; `None` once the
    /// helper is stopping (the connection is then not served).
    fn register(&self, stream: &UnixStream) -> Option<u64> {
        let copy = stream.try_clone().ok()?;
        let mut by_id = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        by_id.insert(id, copy);
        Some(id)
    }

    fn forget(&self, id: u64) {
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// Stops a running [`Server`] in an orderly way: what its service manager's stop
/// (SIGTERM) should do before the process ends.
#[derive(Debug, Clone)]
pub struct Stopper {
    connections: Connections,
    open: Arc<AtomicUsize>,
}

impl Stopper {
    /// Closes every connection, so that each login session's thread closes its PAM
    /// session and ends the shells started for it, and waits until all of them
    /// have finished or `wait` has passed; new connections are no longer served.
    /// Returns how many connections were still being served when it gave up (0
    /// when all ended).
    pub fn stop(&self, wait: Duration) -> usize {
        {
            let by_id = self
                .connections
                .by_id
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.connections.stopping.store(true, Ordering::SeqCst);
            for stream in by_id.values() {
                // Its thread's read ends at once; the session closes as it unwinds.
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            let open = self.open.load(Ordering::SeqCst);
            if open == 0 || Instant::now() >= deadline {
                return open;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Binds the helper's socket at `path`: a stale socket left by an earlier helper is
/// replaced (anything else there is an error), and the socket is made readable and
/// writable by root only, or also by `group` when given (the group of the services
/// that may connect; the helper still checks each peer's user).
pub fn bind(path: &Path, group: Option<Gid>) -> io::Result<UnixListener> {
    let listener = bind_fresh(path)?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    if let Some(gid) = group {
        chown(path, None, Some(gid)).map_err(io::Error::from)?;
    }
    Ok(listener)
}

/// Binds a socket at `path` as [`bind`] does, readable and writable by `owner`
/// only (and root): the engine link's socket, whose one client is its service's
/// user.
pub fn bind_for_user(path: &Path, owner: Uid) -> io::Result<UnixListener> {
    let listener = bind_fresh(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    chown(path, Some(owner), None).map_err(io::Error::from)?;
    Ok(listener)
}

/// A new socket at `path`, replacing a stale socket (anything else there is an
/// error).
fn bind_fresh(path: &Path) -> io::Result<UnixListener> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; move it away, it is where the helper listens",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

impl<B: Backend> Server<B> {
    /// A helper answering on `listener` with `backend`.
    pub fn new(listener: UnixListener, backend: B, options: Options) -> Self {
        Self {
            listener,
            backend: Arc::new(backend),
            options,
            open: Arc::new(AtomicUsize::new(0)),
            connections: Connections::default(),
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> Arc<AtomicUsize> {
        self.open.clone()
    }

    /// What stops this server once it serves (from another thread: a signal's).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            connections: self.connections.clone(),
            open: self.open.clone(),
        }
    }

    /// Serves until the listener fails: each accepted connection is checked and then
    /// served on a thread of its own.
    pub fn serve(self) -> io::Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                // A connection that went away before it was accepted, or a short
                // shortage of descriptors: the next one may do.
                Err(e) if is_transient(&e) => {
                    tracing::warn!("accepting a connection to the helper: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.accept(stream);
        }
    }

    fn accept(&self, mut stream: UnixStream) {
        let Some(peer) = self.peer(&stream) else {
            return;
        };
        if self.open.fetch_add(1, Ordering::SeqCst) >= self.options.max_connections {
            self.open.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(
                pid = peer.1,
                "refused a connection: {} are open, the most the helper serves",
                self.options.max_connections
            );
            let _ = frame::write(
                &mut stream,
                &Reply::Error {
                    message: format!(
                        "the helper serves at most {} connections at once; try again when \
                         sessions have ended",
                        self.options.max_connections
                    ),
                },
            );
            return;
        }
        let Some(id) = self.connections.register(&stream) else {
            // Stopping (or out of descriptors for the copy): not served.
            self.open.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        let backend = self.backend.clone();
        let open = self.open.clone();
        let connections = self.connections.clone();
        let idle = self.options.idle_timeout;
        let role = if self.options.engine_uids.contains(&peer.0) {
            Role::Engine
        } else {
            Role::Console
        };
        let spawned = std::thread::Builder::new()
            .name("hvnode-helper".into())
            .spawn(move || {
                serve_connection(stream, &*backend, idle, peer.1, role);
                connections.forget(id);
                open.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            self.connections.forget(id);
            self.open.fetch_sub(1, Ordering::SeqCst);
            tracing::error!("no thread for a helper connection: {e}");
        }
    }

    /// The peer's user and process, when it may connect; otherwise the connection is
    /// answered with an error and closed.
    fn peer(&self, stream: &UnixStream) -> Option<(u32, i32)> {
        let creds = match getsockopt(stream, PeerCredentials) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("reading a helper client's credentials: {e}; closing it");
                return None;
            }
        };
        let (uid, pid) = (creds.uid(), creds.pid());
        if uid == 0
            || self.options.allowed_uids.contains(&uid)
            || self.options.engine_uids.contains(&uid)
        {
            return Some((uid, pid));
        }
        tracing::warn!(
            uid,
            pid,
            "refused a connection from a user the helper does not serve"
        );
        let mut stream = stream;
        let _ = frame::write(
            &mut stream,
            &Reply::Error {
                message: format!("uid {uid} may not use the helper"),
            },
        );
        None
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::ECONNABORTED | nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::EINTR)
    )
}

/// Whose connection it is, by its peer's user: the engine's link may ask
/// [`Request::Engine`] and [`Request::EngineFacts`] only, and only it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Console,
    Engine,
}

impl Role {
    /// Why `request` is not served on a connection of this role, if it is not.
    fn refuses(self, request: &Request) -> Option<&'static str> {
        match (
            self,
            matches!(request, Request::Engine { .. } | Request::EngineFacts),
        ) {
            (Role::Engine, false) => {
                Some("the engine's link may ask for engine actions and facts only")
            }
            (Role::Console, true) => {
                Some("engine actions and facts are served to the engine's link (hvnode-vdsm) only")
            }
            _ => None,
        }
    }
}

/// Answers one connection's requests until it closes, fails, or (while it holds no
/// session) stays silent for `idle`. A login's session lives as long as the
/// connection: it is dropped, and closed, when this returns.
fn serve_connection<B: Backend>(
    mut stream: UnixStream,
    backend: &B,
    idle: Duration,
    pid: i32,
    role: Role,
) {
    let mut session: Option<Held<B::Session>> = None;
    if let Err(e) = stream.set_read_timeout(Some(idle)) {
        tracing::warn!(pid, "setting a helper connection's timeout: {e}");
        return;
    }
    loop {
        let request: Request = match frame::read(&mut stream) {
            Ok(r) => r,
            Err(FrameError::Closed) => break,
            Err(FrameError::Io(e)) => {
                if session.is_none()
                    && !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                {
                    tracing::debug!(pid, "helper connection ended: {e}");
                }
                break;
            }
            Err(e) => {
                tracing::warn!(pid, "a helper client sent {e}; closing its connection");
                let _ = frame::write(
                    &mut stream,
                    &Reply::Error {
                        message: format!("{e}; the connection is closed"),
                    },
                );
                break;
            }
        };
        let name = request.name();
        let (reply, fd) = match role.refuses(&request) {
            Some(why) => {
                tracing::warn!(pid, request = name, "refused: {why}");
                let failure = Failure::new(FailureKind::NotAllowed, why);
                (Reply::Failed { failure }, None)
            }
            None => answer(backend, request, &mut session),
        };
        if matches!(reply, Reply::LoggedIn) {
            // The connection now holds the session: it may stay silent until logout.
            if let Err(e) = stream.set_read_timeout(None) {
                tracing::warn!(pid, "keeping a session's connection open: {e}");
                break;
            }
        }
        let written = match &fd {
            Some(fd) => frame::write_with_fd(&stream, &reply, fd.as_fd()),
            None => frame::write(&mut stream, &reply),
        };
        // The helper's own copy of a passed descriptor closes here.
        drop(fd);
        if let Err(e) = written {
            tracing::warn!(pid, request = name, "answering a helper client: {e}");
            break;
        }
    }
    if let Some(held) = session.take() {
        tracing::debug!(
            pid,
            user = %held.user,
            shells = held.shells.len(),
            "a login session's connection closed; the session and its shells end"
        );
    }
}

/// What a session's connection holds: whose it is, what the login opened, and the
/// shells started for it (killed when this is dropped).
struct Held<S> {
    user: String,
    _session: S,
    shells: Vec<Running>,
    /// When the user was last found allowed to administer the node.
    admin_checked: Option<Instant>,
}

fn answer<B: Backend>(
    backend: &B,
    request: Request,
    session: &mut Option<Held<B::Session>>,
) -> (Reply, Option<OwnedFd>) {
    let reply = match request {
        Request::OpenTerminal { rows, cols } => return open_terminal(backend, session, rows, cols),
        Request::OpenVmConsole { vm, kind } => {
            let what = format!("the {kind:?} console of VM {vm:?}");
            let opened = authorized(backend, session, &what)
                .and_then(|held| backend.open_vm_console(&held.user, &vm, kind));
            return match opened {
                Ok(fd) => {
                    tracing::info!(vm, ?kind, "VM console opened");
                    (Reply::VmConsole, Some(fd))
                }
                Err(failure) => (Reply::Failed { failure }, None),
            };
        }
        Request::Change { change } => match make_change(backend, session, &change) {
            Ok(()) => Reply::Changed,
            Err(failure) => Reply::Failed { failure },
        },
        Request::RunUpdate { source, apply } => {
            let what = format!("nodectl update {source:?} (apply: {apply})");
            return running(start(backend, session, &what, |user| {
                backend.run_update(user, &source, apply)
            }));
        }
        Request::Register { step } => {
            let what = format!("nodectl register ({step:?})");
            return running(start(backend, session, &what, |user| {
                backend.register(user, &step)
            }));
        }
        Request::Diagnostics => {
            return running(start(backend, session, "nodectl diagnostics", |user| {
                backend.diagnostics(user)
            }));
        }
        Request::Login { .. } if session.is_some() => Reply::Error {
            message: "this connection holds a login session already; open another \
                      connection for another login"
                .into(),
        },
        Request::Login {
            user,
            password,
            client,
        } => match backend.login(&user, &password.0, client) {
            Ok(s) => {
                *session = Some(Held {
                    user,
                    _session: s,
                    shells: Vec::new(),
                    admin_checked: None,
                });
                Reply::LoggedIn
            }
            Err(refusal) => Reply::Refused { refusal },
        },
        Request::Authenticate { user, password } => {
            match backend.authenticate(&user, &password.0) {
                Ok(()) => Reply::Authenticated,
                Err(refusal) => Reply::Refused { refusal },
            }
        }
        Request::MayAdminister { user } => match backend.may_administer(&user) {
            Ok(allowed) => Reply::Allowed { allowed },
            Err(message) => Reply::Error { message },
        },
        Request::LayerFacts => match backend.layer_facts() {
            Ok(facts) => Reply::LayerFacts {
                facts: Box::new(facts),
            },
            Err(message) => Reply::Error { message },
        },
        Request::ThinPools => match backend.thin_pools() {
            Ok(pools) => Reply::ThinPools { pools },
            Err(message) => Reply::Error { message },
        },
        Request::EngineFacts => match backend.engine_facts() {
            Ok(facts) => Reply::EngineFacts { facts },
            Err(message) => Reply::Error { message },
        },
        Request::Engine { action } => match backend.engine(&action) {
            Ok(()) => {
                tracing::info!(?action, "engine action made");
                Reply::Changed
            }
            Err(failure) => {
                tracing::warn!(?action, "engine action failed: {failure}");
                Reply::Failed { failure }
            }
        },
    };
    (reply, None)
}

/// Starts a shell for the session's user and hands over its terminal.
fn open_terminal<B: Backend>(
    backend: &B,
    session: &mut Option<Held<B::Session>>,
    rows: u16,
    cols: u16,
) -> (Reply, Option<OwnedFd>) {
    let Some(held) = session else {
        let message = "a terminal is opened on a login session's connection only".into();
        return (Reply::Error { message }, None);
    };
    held.shells.retain(|s| !s.done.load(Ordering::SeqCst));
    match backend.open_terminal(&held.user, rows, cols) {
        Ok(Terminal { master, child }) => {
            let pid = child.id();
            match Running::watch(child) {
                Ok(running) => {
                    held.shells.push(running);
                    tracing::info!(user = %held.user, pid, "terminal opened");
                    (Reply::Terminal { pid }, Some(master))
                }
                Err(e) => {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    let message = format!("no thread to watch the shell: {e}");
                    (Reply::Error { message }, None)
                }
            }
        }
        Err(message) => (Reply::Error { message }, None),
    }
}

/// Makes a change as the session's user, once the helper has found they may
/// administer the node (asked again when the last answer is older than
/// [`ADMIN_RECHECK`]).
fn make_change<B: Backend>(
    backend: &B,
    session: &mut Option<Held<B::Session>>,
    change: &Change,
) -> Result<(), Failure> {
    let held = authorized(backend, session, &format!("{change:?}"))?;
    let result = backend.change(&held.user, change);
    match &result {
        Ok(()) => tracing::info!(user = %held.user, ?change, "change made"),
        Err(f) => tracing::warn!(user = %held.user, ?change, "change not made: {f}"),
    }
    result
}

/// Starts a run (an update, a registration step: `what`) with `spawn` as the
/// session's user, once found allowed: its pid and the read end of its output. The
/// helper's thread reaps it; a run is never killed with the session.
fn start<B: Backend>(
    backend: &B,
    session: &mut Option<Held<B::Session>>,
    what: &str,
    spawn: impl FnOnce(&str) -> Result<(OwnedFd, std::process::Child), Failure>,
) -> Result<(u32, OwnedFd), Failure> {
    let held = authorized(backend, session, what)?;
    let (output, child) = spawn(&held.user)?;
    let pid = child.id();
    std::thread::Builder::new()
        .name("hvnode-helper-run".into())
        .spawn(move || {
            let mut child = child;
            let _ = child.wait();
        })
        .map_err(|e| Failure::new(FailureKind::Failed, format!("no thread for {what}: {e}")))?;
    tracing::info!(user = %held.user, pid, "{what} started");
    Ok((pid, output))
}

/// The answer to a run's start.
fn running(started: Result<(u32, OwnedFd), Failure>) -> (Reply, Option<OwnedFd>) {
    match started {
        Ok((pid, output)) => (Reply::Running { pid }, Some(output)),
        Err(failure) => (Reply::Failed { failure }, None),
    }
}

/// The session of this connection, once the helper has found its user may
/// administer the node (asked again when the last answer is older than
/// [`ADMIN_RECHECK`]); `what` names the request in the journal.
fn authorized<'a, B: Backend>(
    backend: &B,
    session: &'a mut Option<Held<B::Session>>,
    what: &str,
) -> Result<&'a mut Held<B::Session>, Failure> {
    let Some(held) = session else {
        return Err(Failure::new(
            FailureKind::NotAllowed,
            "a change is made on a login session's connection only",
        ));
    };
    let fresh = held
        .admin_checked
        .is_some_and(|t| t.elapsed() < ADMIN_RECHECK);
    if !fresh {
        match backend.may_administer(&held.user) {
            Ok(true) => held.admin_checked = Some(Instant::now()),
            Ok(false) => {
                held.admin_checked = None;
                tracing::warn!(user = %held.user, "refused {what}: the user may not administer the node");
                return Err(Failure::new(
                    FailureKind::NotAllowed,
                    format!(
                        "{} may not administer this node (that takes an admin group and sudo \
                         rules that allow every command as root)",
                        held.user
                    ),
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    FailureKind::Unavailable,
                    format!(
                        "checking whether {} may administer this node: {e}",
                        held.user
                    ),
                ));
            }
        }
    }
    Ok(held)
}
