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
    /// here on first start when there is none.
    pub certs_dir: PathBuf,
    /// Groups whose members (besides root) may log in.
    pub admin_groups: Vec<String>,
    /// Serve plain HTTP instead of TLS (only for tests on loopback).
    pub insecure_http: bool,
    /// PAM service used for logins (`/etc/pam.d/<name>`).
    pub pam_service: String,
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0u16; 8], 9090)),
            libvirt_uri: "qemu:///system".into(),
            state_dir: "/var/lib/hvnode".into(),
            certs_dir: "/etc/hvnode/ws-certs.d".into(),
            admin_groups: vec!["sudo".into(), "wheel".into()],
            insecure_http: false,
            pam_service: "hvnode".into(),
            idle_timeout_secs: 15 * 60,
            session_max_hours: 8,
            disallowed_users: vec!["root".into()],
            ssh_dir: "/etc/ssh".into(),
            sysroot: "/".into(),
        }
    }
}

impl Config {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// How long a session lives at most (at least an hour).
    pub fn session_max_age(&self) -> Duration {
        Duration::from_secs(self.session_max_hours.max(1).saturating_mul(3600))
    }
}
