//! The node's local web console: server-rendered pages (axum + askama) with a little of
//! our own JavaScript for the live parts, and the same data as JSON under `/api/v1`.
//!
//! Security model, in short: TLS always (a self-signed certificate naming the node is
//! generated on first start and renewed before it expires, unless the administrator
//! provides one), PAM login for members of the admin groups (root only when
//! `disallowed_users` leaves it out), refusals that all look like a wrong password
//! and never log the name typed, sessions that start limited (read-only) until their
//! user turns on administrative access with the password, given only when sudo lets
//! the user run every command as root and checked again on each change ([`admin`]),
//! an `HttpOnly; Secure; SameSite=Strict` session cookie
//! with an idle timeout and a maximum age, a CSRF token on every state change, an
//! `Origin` check on the login, state changes, streams and WebSockets, logins throttled
//! per client and per account from the moment they start and checked a few at a time,
//! strict security headers on every response and size-limited bodies; connections
//! capped in all and per client that has not logged in, the oldest that has not
//! logged in closed to make room for a newcomer when the total is full, and every
//! phase of a connection timed ([`limits`]).
//!
//! The privilege boundary: with `helper_socket` set (the image sets it), logins and
//! their PAM sessions, password checks, the sudo policy, terminals, VM, unit and
//! layer changes and updates are the privileged helper's (`hvnode-helper`, the
//! `helper` crate): it holds each login's session on a connection of its own and
//! decides every change itself, for the session's user ([`auth::remote`],
//! [`privileged`]). What this process still does as root (libvirt, journal and
//! layer reads, the Registration page, uploads) moves there next, and then this
//! process runs as an unprivileged user in its own SELinux domain.

pub mod access;
pub mod admin;
pub mod api;
pub mod assets;
pub mod auth;
pub mod clock;
pub mod config;
pub mod diagnostics;
pub mod error;
pub mod facts;
pub mod guard;
pub mod journal;
pub mod layer_actions;
pub mod limits;
pub mod login;
pub mod metrics;
pub mod node_layers;
pub mod node_update;
pub mod pages;
pub mod privileged;
pub mod register;
pub mod register_run;
pub mod router;
pub mod selinux;
pub mod server;
pub mod services;
pub mod session;
pub mod state;
pub mod sudo;
pub mod terminal;
pub mod tls;
pub mod update_actions;
pub mod update_upload;
pub mod views;
pub mod vm_api;
pub mod vm_console;
pub mod vm_detail;
pub mod vm_manage;
pub mod vm_pages;
pub mod vms;

use std::future::Future;
use std::sync::Arc;

pub use config::Config;
pub use metrics::{Metrics, spawn_sampler, spawn_sampler_every};
pub use router::router;
pub use state::{AppState, Shared};

/// A console that failed to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS certificate: {0}")]
    Tls(#[from] tls::TlsError),
}

/// A console bound to its address, ready to serve.
#[derive(Debug)]
pub struct Console {
    pub state: Shared,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The certificate in use, if serving TLS.
    pub certificate: Option<std::path::PathBuf>,
}

impl Console {
    /// Binds the listening socket and loads (or generates, or renews) the TLS
    /// certificate.
    pub async fn bind(config: Config, metrics: Arc<Metrics>) -> Result<Self, StartError> {
        Self::bind_with_clock(config, metrics, Arc::new(clock::SystemClock)).await
    }

    /// [`Console::bind`] with sessions and the login throttle on `clock`.
    pub async fn bind_with_clock(
        config: Config,
        metrics: Arc<Metrics>,
        clock: Arc<dyn clock::Clock>,
    ) -> Result<Self, StartError> {
        let (auth, policy) = config.checks();
        Self::bind_with_checks(config, metrics, clock, auth, policy).await
    }

    /// [`Console::bind_with_clock`] with logins checked by `authenticator` instead of
    /// PAM (tests use a stand-in).
    pub async fn bind_with_authenticator(
        config: Config,
        metrics: Arc<Metrics>,
        clock: Arc<dyn clock::Clock>,
        authenticator: Arc<dyn auth::Authenticator>,
    ) -> Result<Self, StartError> {
        let sudo = Arc::new(sudo::Sudo::default());
        Self::bind_with_checks(config, metrics, clock, authenticator, sudo).await
    }

    /// [`Console::bind_with_authenticator`] with the sudo policy of administrative
    /// access asked of `policy` instead of sudo (tests use a stand-in).
    pub async fn bind_with_checks(
        config: Config,
        metrics: Arc<Metrics>,
        clock: Arc<dyn clock::Clock>,
        authenticator: Arc<dyn auth::Authenticator>,
        policy: Arc<dyn sudo::AdminPolicy>,
    ) -> Result<Self, StartError> {
        let (tls, certificate) = if config.insecure_http {
            (None, None)
        } else {
            let names = tls::NodeNames::of_this_host();
            let (c, path) = tls::server_config(&config.certs_dir, &names)?;
            (Some(c), Some(path))
        };
        let listener = match server::bind(config.listen).await {
            // `[::]` on a host with IPv6 switched off: all IPv4 addresses instead.
            Err(e) if config.listen.ip().is_unspecified() && config.listen.is_ipv6() => {
                let v4 = std::net::SocketAddr::from(([0, 0, 0, 0], config.listen.port()));
                tracing::info!("IPv6 unavailable ({e}); listening on {v4}");
                server::bind(v4).await
            }
            other => other,
        }
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        Ok(Self {
            state: AppState::with_checks(config, metrics, clock, authenticator, policy),
            listener,
            tls,
            certificate,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, expiring idle sessions once a minute.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let state = self.state.clone();
        let expiry = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let idle = state.config.idle_timeout();
                if let Ok(mut s) = state.sessions.lock() {
                    s.expire(idle);
                }
            }
        });
        let router = router(self.state.clone());
        let limits = limits::Limits::from_config(&self.state.config);
        server::serve(self.listener, router, self.tls, limits, shutdown).await;
        expiry.abort();
    }
}
