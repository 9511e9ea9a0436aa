//! The console's settings, as the agent reads them from `/etc/hvnode/agent.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Where and how the console serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on: Cockpit's port, 9090, on every IPv6 and IPv4
    /// address by default (`[::]` falls back to `0.0.0.0` where IPv6 is off).
    pub listen: SocketAddr,
    /// The libvirt connection the virtual machine pages use.
    pub libvirt_uri: String,
    /// Where the agent keeps its state.
    pub state_dir: PathBuf,
    /// TLS certificates: the highest-named `*.cert` wins; a self-signed one is made
    /// here on first start when there is none, and made anew at start when it expires
    /// within 30 days or the host name changed ([`crate::tls`]).
    pub certs_dir: PathBuf,
    /// Groups whose members (besides root) may log in.
    pub admin_groups: Vec<String>,
    /// Serve plain HTTP instead of TLS (only for tests on loopback).
    pub insecure_http: bool,
    /// PAM service used for logins (`/etc/pam.d/<name>`).
    pub pam_service: String,
    /// The privileged helper's socket: when set, logins, their PAM sessions and the
    /// sudo questions of administrative access are asked of the helper
    /// (`hvnode-helper`, [`crate::auth::remote`]) instead of being done in this
    /// process.
    pub helper_socket: Option<PathBuf>,
    /// A session without activity for this many seconds is logged out.
    pub idle_timeout_secs: u64,
    /// A session ends this many hours after login, however active.
    pub session_max_hours: u64,
    /// Accounts that may never log in to the console, whatever their password (like
    /// Cockpit's `disallowed-users`): root by default, which logs in by SSH key or on
    /// the machine's console instead. They are refused as a wrong password is, without
    /// asking PAM.
    pub disallowed_users: Vec<String>,
    /// Where the SSH host keys are (only `*.pub` files are read).
    pub ssh_dir: PathBuf,
    /// The root of the tree whose registration files the Registration page reads and
    /// writes (the state `nodectl register --status` shows, the engine CA, the unique
    /// id, the SSH user's `authorized_keys`): `/` on a node, a scratch tree in tests.
    pub sysroot: PathBuf,
    /// Most connections open at once, from all clients together. Each holds a file
    /// descriptor; the agent's unit allows [`crate::limits::FD_RESERVE`] more than this
    /// (`LimitNOFILE=`), and a lower process limit lowers the cap at start. When it is
    /// reached, a new connection closes the oldest one that has not carried a
    /// logged-in request; only when every open connection is logged in is the new one
    /// closed as soon as it is accepted.
    pub max_connections: usize,
    /// Most connections one client (an IPv4 address, or an IPv6 /64) may hold while
    /// none of their requests has carried a logged-in session; more are closed as soon
    /// as they are accepted, before TLS. A connection stops counting here once it
    /// carries a logged-in request (it still counts towards `max_connections`).
    pub max_connections_per_client: usize,
    /// Seconds a client has, from connecting, to finish its TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// Seconds a request's headers have to arrive whole, counted from when the
    /// connection is ready for them (after the TLS handshake or the previous answer).
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay open without sending a byte of a next request
    /// (after the TLS handshake or between requests); the header read timeout counts
    /// from the same moment, so the shorter of the two wins. Answers still being sent
    /// (event streams) and WebSockets (the terminal) are not idle.
    pub keep_alive_timeout_secs: u64,
    /// Seconds a request body (a form, JSON) has to arrive whole.
    pub body_timeout_secs: u64,
    /// Seconds an update upload (`PUT /api/v1/node/update/upload/…`, which may take
    /// long for a large bundle) may go without a byte before it is ended.
    pub upload_stall_timeout_secs: u64,
    /// The `nodectl` the console runs (a diagnostic report) in this process when
    /// no privileged helper holds the session, and the helper runs for it: the
    /// image's `/usr/bin/nodectl`; tests give a built one.
    pub nodectl: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0u16; 8], 9090)),
            libvirt_uri: "qemu:///system".into(),
            state_dir: "/var/lib/hvnode-console".into(),
            certs_dir: "/etc/hvnode/ws-certs.d".into(),
            admin_groups: vec!["sudo".into(), "wheel".into()],
            insecure_http: false,
            pam_service: "hvnode".into(),
            helper_socket: None,
            idle_timeout_secs: 15 * 60,
            session_max_hours: 8,
            disallowed_users: vec!["root".into()],
            ssh_dir: "/etc/ssh".into(),
            sysroot: "/".into(),
            max_connections: 1024,
            max_connections_per_client: 64,
            tls_handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            keep_alive_timeout_secs: 10,
            body_timeout_secs: 30,
            upload_stall_timeout_secs: 30,
            nodectl: crate::node_update::NODECTL.into(),
        }
    }
}

impl Config {
    /// What checks logins and the sudo policy under these settings: the helper at
    /// [`Config::helper_socket`] when it is set, PAM and sudo in this process
    /// otherwise.
    pub fn checks(
        &self,
    ) -> (
        std::sync::Arc<dyn crate::auth::Authenticator>,
        std::sync::Arc<dyn crate::sudo::AdminPolicy>,
    ) {
        match &self.helper_socket {
            Some(socket) => {
                let remote = std::sync::Arc::new(crate::auth::remote::Remote::new(socket));
                (remote.clone(), remote)
            }
            None => (
                std::sync::Arc::new(crate::auth::Pam {
                    service: self.pam_service.clone(),
                    admin_groups: self.admin_groups.clone(),
                }),
                std::sync::Arc::new(crate::sudo::Sudo::default()),
            ),
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// How long a session lives at most (at least an hour).
    pub fn session_max_age(&self) -> Duration {
        Duration::from_secs(self.session_max_hours.max(1).saturating_mul(3600))
    }
}
