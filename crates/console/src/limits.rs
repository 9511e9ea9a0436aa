//! What keeps clients from holding the console's connections, and with them the
//! agent's file descriptors: a cap on connections open at once and a smaller one per
//! client that has not logged in, counted by guards that give a place back however
//! its connection ends; and a timeout for each phase of a connection — the TLS
//! handshake, an idle keep-alive connection and a request body (hyper times the
//! request headers itself). Event streams and WebSockets are never idle: they end
//! with their session.
//!
//! When the total cap is full, a newcomer still gets in: the oldest connection that
//! has not carried a logged-in request is closed to make room (sshd's `MaxStartups`
//! idea, but deterministic). Clients spread over many addresses can then no longer
//! keep an administrator out by filling the cap; logged-in connections are never
//! closed for a newcomer, and only when every open connection is logged in is a
//! newcomer refused.
//!
//! The parts: `connections` (the caps and the choice of the connection to close),
//! `keep_alive` (a connection's I/O and its idle timeout) and `body` (the request
//! body's timeouts).

mod body;
mod connections;
mod keep_alive;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::config::Config;
// For `connections`, which names it `super::client_key`: imported here so that
// tests/module_graph.rs, which reads only the top-level files of src, sees this
// module's dependency on the session.
use crate::session::client_key;

pub use body::{BodyError, BodyTimer, TimedBody, is_body_timeout};
pub use connections::{Connections, Eviction, Refused, Slot, Standing};
pub use keep_alive::{Activity, Answering, InFlight, Watched};

/// File descriptors the agent needs besides its connections: the libvirt socket, the
/// journal readers, terminals (a pty each), uploads, PAM and the files of `/proc`. The
/// process's descriptor limit (`LimitNOFILE=` in the unit) must leave this much above
/// `max_connections`; a lower limit lowers the cap (see [`connection_cap`]).
pub const FD_RESERVE: usize = 256;

/// The caps and timeouts of the console's connections, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub tls_handshake: Duration,
    pub header_read: Duration,
    pub keep_alive: Duration,
    pub body: Duration,
    pub upload_stall: Duration,
}

impl Limits {
    /// The configured limits, with every timeout at least a second and the total cap
    /// within the process's descriptor limit.
    pub fn from_config(c: &Config) -> Self {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Self {
            max_connections: connection_cap(c.max_connections.max(1)),
            max_connections_per_client: c.max_connections_per_client.max(1),
            tls_handshake: secs(c.tls_handshake_timeout_secs),
            header_read: secs(c.header_read_timeout_secs),
            keep_alive: secs(c.keep_alive_timeout_secs),
            body: secs(c.body_timeout_secs),
            upload_stall: secs(c.upload_stall_timeout_secs),
        }
    }
}

/// `configured`, or less when the process may not open that many descriptors and
/// [`FD_RESERVE`] more (said in the journal with what to change).
pub fn connection_cap(configured: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => {
            let soft = usize::try_from(soft).unwrap_or(usize::MAX);
            let cap = cap_within(configured, soft);
            if cap < configured {
                tracing::warn!(
                    max_connections = configured,
                    limit = soft,
                    cap,
                    "the process may open only {soft} file descriptors: at most {cap} \
                     connections at once instead of {configured}; raise LimitNOFILE= in \
                     hvnode-agent.service to at least {} or lower max_connections",
                    configured.saturating_add(FD_RESERVE)
                );
            }
            cap
        }
        Err(e) => {
            tracing::warn!("reading the file descriptor limit: {e}; keeping max_connections");
            configured
        }
    }
}

/// The cap that leaves [`FD_RESERVE`] descriptors of `limit` (half of a limit smaller
/// than twice that) for everything else.
pub fn cap_within(configured: usize, limit: usize) -> usize {
    let usable = limit.saturating_sub(FD_RESERVE).max(limit / 2).max(1);
    configured.min(usable)
}
