//! `hvnode-helper`: the privileged side of the console ([`helper`]). It runs as root
//! and answers, on a local socket, the typed requests of the console's web process:
//! logins and their PAM sessions, password checks, the sudo policy
//! ([`console::auth::remote::PamBackend`]), for the users it is told to serve.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use helper::{Options, Server};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{Group, User};

use crate::setup::load_config;

/// What the helper is started with.
#[derive(Debug, Clone)]
pub struct HelperArgs {
    /// The console's configuration (PAM service, admin groups, disallowed users).
    pub config: PathBuf,
    /// Where to listen.
    pub socket: PathBuf,
    /// Users, besides root, whose processes may ask.
    pub allow_users: Vec<String>,
    /// The group the socket belongs to (mode 0660); root only (0600) without one.
    pub group: Option<String>,
    /// The engine link's user, served on `engine_socket` (its alone, mode 0600)
    /// with the engine's actions only; no such socket without one.
    pub engine_user: Option<String>,
    /// Where to listen for the engine's link.
    pub engine_socket: PathBuf,
}

/// Makes or renews the console's certificate in the certificates directory of the
/// configuration `config` and copies the one that wins to `out` for the owner of
/// `out` (`hvnode-helper --install-certificate`).
pub fn install_certificate(config: &Path, out: &Path) -> Result<()> {
    let config = load_config(config)?;
    console::tls::install_for_this_host(&config.certs_dir, out).with_context(|| {
        format!(
            "installing the console's certificate from {} in {}",
            config.certs_dir.display(),
            out.display()
        )
    })?;
    Ok(())
}

/// The uid of each of `users`; an unknown name is an error naming it.
pub fn uids_of(users: &[String]) -> Result<Vec<u32>> {
    users
        .iter()
        .map(|name| match User::from_name(name) {
            Ok(Some(u)) => Ok(u.uid.as_raw()),
            Ok(None) => bail!(
                "--allow-user {name}: no such user; create it (the image's sysusers.d \
                 makes the console's) or leave the flag out"
            ),
            Err(e) => Err(e).with_context(|| format!("looking up --allow-user {name}")),
        })
        .collect()
}

/// How long a stop waits, at most, for the connections to end and the PAM sessions
/// to close: within the unit's `TimeoutStopSec=10s`, after which systemd kills.
pub const STOP_WAIT: Duration = Duration::from_secs(8);

/// Binds the socket and serves until the process is stopped (SIGTERM or SIGINT):
/// then every connection is closed, and the login sessions with them (their PAM
/// sessions closed, their shells ended) before the process exits.
pub fn run(args: &HelperArgs) -> Result<()> {
    // Blocked here, before any thread starts, so that every thread inherits the
    // mask and only the stopping thread below receives them.
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    stop_signals
        .thread_block()
        .context("blocking SIGTERM and SIGINT for an orderly stop")?;
    let config = load_config(&args.config)?;
    let allowed_uids = uids_of(&args.allow_users)?;
    let group = match &args.group {
        None => None,
        Some(name) => Some(
            Group::from_name(name)
                .with_context(|| format!("looking up --group {name}"))?
                .with_context(|| format!("--group {name}: no such group"))?
                .gid,
        ),
    };
    if let Some(dir) = args.socket.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {}, the socket's folder", dir.display()))?;
    }
    let listener = helper::server::bind(&args.socket, group)
        .with_context(|| format!("listening on {}", args.socket.display()))?;
    let backend = console::auth::remote::PamBackend::from_config(&config);
    tracing::info!(
        socket = %args.socket.display(),
        pam_service = %config.pam_service,
        users = ?args.allow_users,
        "helper listening"
    );
    // Not under systemd: nothing to notify, which is fine.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let options = Options {
        allowed_uids,
        ..Options::default()
    };
    let server = Server::new(listener, backend, options);
    let stopper = server.stopper();
    // The console is served even when the engine's link cannot be: a missing user
    // or socket is logged, and the engine's VM actions then fail with the reason.
    let engine_stopper = args.engine_user.as_ref().and_then(|user| {
        serve_engine(args, &config, user)
            .inspect_err(|e| {
                tracing::error!("{e:#}; the engine's VM actions are not served");
            })
            .ok()
    });
    std::thread::Builder::new()
        .name("hvnode-helper-stop".into())
        .spawn(move || {
            let signal = stop_signals.wait();
            tracing::info!(
                ?signal,
                "stopping: closing every connection and login session"
            );
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            let deadline = std::time::Instant::now() + STOP_WAIT;
            if let Some(engine) = &engine_stopper {
                engine.stop(Duration::from_secs(1));
            }
            let left = stopper.stop(deadline.saturating_duration_since(std::time::Instant::now()));
            let open = console::auth::pam_session::wait_closed(
                deadline.saturating_duration_since(std::time::Instant::now()),
            );
            if left > 0 || open > 0 {
                tracing::warn!(
                    connections = left,
                    pam_sessions = open,
                    "stopped with connections or PAM sessions still open after {} s",
                    STOP_WAIT.as_secs()
                );
            } else {
                tracing::info!("stopped: every login session closed");
            }
            std::process::exit(0);
        })
        .context("starting the thread that stops the helper")?;
    server
        .serve()
        .with_context(|| format!("accepting connections on {}", args.socket.display()))
}

/// Listens for the engine's link on its own socket, owned by `user` (mode 0600),
/// and serves it on a thread: the engine's actions only, for that user only.
fn serve_engine(
    args: &HelperArgs,
    config: &console::Config,
    user: &str,
) -> Result<helper::Stopper> {
    let uid = match User::from_name(user) {
        Ok(Some(u)) => u.uid,
        Ok(None) => bail!(
            "--engine-user {user}: no such user; create it (the image's sysusers.d makes \
             vdsm) or leave the flag out"
        ),
        Err(e) => return Err(e).with_context(|| format!("looking up --engine-user {user}")),
    };
    let listener = helper::server::bind_for_user(&args.engine_socket, uid)
        .with_context(|| format!("listening on {}", args.engine_socket.display()))?;
    let options = Options {
        engine_uids: vec![uid.as_raw()],
        ..Options::default()
    };
    let server = Server::new(
        listener,
        console::auth::remote::PamBackend::from_config(config),
        options,
    );
    let stopper = server.stopper();
    let socket = args.engine_socket.clone();
    std::thread::Builder::new()
        .name("hvnode-helper-engine".into())
        .spawn(move || {
            if let Err(e) = server.serve() {
                tracing::error!(socket = %socket.display(), "the engine link's socket failed: {e}");
            }
        })
        .context("starting the thread that serves the engine's link")?;
    tracing::info!(socket = %args.engine_socket.display(), user, "listening for the engine's link");
    Ok(stopper)
}
