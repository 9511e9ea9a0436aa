//! `hvnode-vdsm`: the engine's side of the node, a host service that speaks vdsm's
//! wire protocol so that an oVirt Engine manages the node as it manages a vdsm host.
//!
//! The layers, each with its own module: TLS with a client certificate chained to
//! the engine's CA ([`pki`]), STOMP 1.2 frames as vdsm and the engine's Java client
//! write them ([`stomp`]), one connection's conversation ([`server`]), JSON-RPC 2.0
//! as vdsm answers it ([`jsonrpc`]) and the verbs ([`host`]). [`serve`] accepts
//! connections and serves each on a task of its own, within a cap.

pub mod actions;
pub mod caps;
pub mod events;
pub mod host;
pub mod hostdev;
pub mod jsonrpc;
pub mod network;
pub mod pki;
pub mod server;
pub mod stats;
pub mod status;
pub mod stomp;
pub mod vms;

/// A scratch tree of a host's files for the verbs' tests.
#[cfg(test)]
pub(crate) fn put(root: &std::path::Path, path: &str, text: &str) {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().expect("a file in a folder")).expect("making the folder");
    std::fs::write(p, text).expect("writing the file");
}

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// The default port, vdsm's.
pub const PORT: u16 = 54321;

/// How connections are accepted.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub connection: server::Options,
    /// Connections served at once; more are closed as they come (the engine keeps
    /// one or two).
    pub max_connections: usize,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Where the connections are counted for the node's tools ([`status`]).
    pub status: Option<Arc<status::Tracker>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            connection: server::Options::default(),
            max_connections: 64,
            handshake_timeout: Duration::from_secs(10),
            status: None,
        }
    }
}

/// The TLS configuration in use; `None` until the engine's certificates are there
/// (connections are then closed as they come). Swapped when they change.
pub type Tls = Arc<RwLock<Option<TlsAcceptor>>>;

/// Accepts connections on `listener` for ever, serving each with `verbs` over the
/// TLS configuration `tls` holds at the time.
pub async fn serve(
    listener: TcpListener,
    tls: Tls,
    verbs: Arc<dyn jsonrpc::Verbs>,
    options: ServeOptions,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let options = Arc::new(options);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or a connection reset before it was accepted:
                // the listener itself is fine.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Frames go out as they are made: an event and an answer back to back
        // must not wait for the client's delayed acknowledgement (Nagle).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "TCP_NODELAY: {e}");
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = options.max_connections, "too many connections; closed");
            continue;
        };
        let acceptor = tls.read().ok().and_then(|t| t.clone());
        let Some(acceptor) = acceptor else {
            tracing::info!(%peer, "no certificates yet; connection closed");
            continue;
        };
        let verbs = verbs.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let handshake =
                tokio::time::timeout(options.handshake_timeout, acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%peer, "TLS handshake refused: {e}");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake too slow; closed");
                    return;
                }
            };
            tracing::info!(%peer, "engine connected");
            if let Some(t) = &options.status {
                t.connected(peer);
            }
            match server::serve_connection(stream, verbs, &options.connection).await {
                Ok(()) => tracing::info!(%peer, "connection closed"),
                Err(e) => tracing::warn!(%peer, "connection closed: {e}"),
            }
            if let Some(t) = &options.status {
                t.disconnected(peer);
            }
        });
    }
}
