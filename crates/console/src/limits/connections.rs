//! How many connections from whom: the caps on connections open at once, in all and
//! per client that has not logged in, counted by guards that give a place back
//! however a connection ends, and the choice of the connection to close when a
//! newcomer finds the total cap full.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::client_key;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counts stay right even if a holder panicked: nothing is left half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a connection was closed as soon as it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections` are open and every one of them is logged in.
    Full,
    /// The client holds `max_connections_per_client` connections that have not
    /// carried a logged-in request.
    Client,
}

/// The open connections: how many in all, how many of each client have not carried
/// a logged-in request, and, oldest first, those that may be closed to make room.
#[derive(Debug)]
pub struct Connections {
    max_total: usize,
    max_per_client: usize,
    counts: Mutex<Counts>,
    refused: Notes,
    evicted: Notes,
}

#[derive(Debug, Default)]
struct Counts {
    /// Connections whose [`Slot`] is alive: their sockets are open. It may pass
    /// `max_total` for the moment between choosing a connection to close and its
    /// task closing it.
    total: usize,
    /// By [`client_key`]; a client with none is not in the map.
    per_client: HashMap<IpAddr, usize>,
    /// The connections that have not carried a logged-in request and are not being
    /// closed yet, by the order they were accepted in: the first is the oldest.
    evictable: BTreeMap<u64, Evictable>,
    /// The number the next accepted connection gets.
    next_id: u64,
}

/// A connection that may be closed to make room.
#[derive(Debug)]
struct Evictable {
    client: IpAddr,
    close: Arc<Notify>,
}

/// Events of one kind, each in the debug log, and at most once a minute a warning
/// with how many there were.
#[derive(Debug, Default)]
struct Notes {
    count: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Notes {
    /// Counts one; the number since the last warning when one is due now.
    fn add(&self) -> Option<u64> {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = lock(&self.last_warning);
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return None;
        }
        *last = Some(Instant::now());
        self.count.store(0, Ordering::Relaxed);
        Some(n)
    }
}

impl Connections {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_client: max_per_client.max(1),
            counts: Mutex::new(Counts::default()),
            refused: Notes::default(),
            evicted: Notes::default(),
        })
    }

    /// A place for a connection from `peer`, or why there is none. When the total
    /// cap is full, the oldest connection that has not carried a logged-in request
    /// is told to close (its [`Eviction`] completes) and its place goes to `peer`.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let key = client_key(peer);
        let mut counts = lock(&self.counts);
        let of_client = counts.per_client.get(&key).copied().unwrap_or(0);
        // A client over its own cap closes none of the others' connections.
        if of_client >= self.max_per_client {
            return Err(Refused::Client);
        }
        let mut evicted = None;
        if counts.total >= self.max_total {
            // The victim keeps counting until its task has closed its socket.
            let Some((_, victim)) = counts.evictable.pop_first() else {
                return Err(Refused::Full);
            };
            victim.close.notify_one();
            evicted = Some(victim.client);
        }
        counts.total += 1;
        counts.per_client.insert(key, of_client + 1);
        let id = counts.next_id;
        counts.next_id += 1;
        let close = Arc::new(Notify::new());
        counts.evictable.insert(
            id,
            Evictable {
                client: key,
                close: close.clone(),
            },
        );
        drop(counts);
        if let Some(victim) = evicted {
            self.note_evicted(peer, victim);
        }
        Ok(Slot(Arc::new(Held {
            connections: self.clone(),
            id,
            client: Mutex::new(Some(key)),
            close,
        })))
    }

    /// Connections open now (for a moment one more than the cap for each connection
    /// told to close and not closed yet).
    pub fn open(&self) -> usize {
        lock(&self.counts).total
    }

    /// Connections of `peer`'s client that have not carried a logged-in request.
    pub fn open_for(&self, peer: IpAddr) -> usize {
        lock(&self.counts)
            .per_client
            .get(&client_key(peer))
            .copied()
            .unwrap_or(0)
    }

    /// Connections that have not carried a logged-in request and may be closed to
    /// make room.
    pub fn evictable(&self) -> usize {
        lock(&self.counts).evictable.len()
    }

    /// Notes a refused connection: each in the debug log, and at most once a minute
    /// a warning with how many there were.
    pub fn note_refused(&self, peer: SocketAddr, why: Refused) {
        tracing::debug!(%peer, ?why, "connection refused");
        let Some(n) = self.refused.add() else {
            return;
        };
        tracing::warn!(
            refused = n,
            last_client = %peer.ip(),
            max_connections = self.max_total,
            max_connections_per_client = self.max_per_client,
            "connections closed at once: the console's connection caps were reached \
             (a client opening many connections, or more logged-in users than \
             max_connections)"
        );
    }

    /// Notes a connection of `victim` closed to make room for one from `newcomer`,
    /// as [`Connections::note_refused`] does.
    fn note_evicted(&self, newcomer: IpAddr, victim: IpAddr) {
        tracing::debug!(%newcomer, %victim, "oldest connection not logged in closed to make room");
        let Some(n) = self.evicted.add() else {
            return;
        };
        tracing::warn!(
            closed = n,
            last_client = %victim,
            max_connections = self.max_total,
            "max_connections were open: the oldest connections that had not logged in \
             were closed to make room for new ones (many clients connecting at once, \
             or clients holding connections open)"
        );
    }

    /// The connection `id` of client `key` carried a logged-in request or closed: it
    /// no longer counts against its client and is no longer one to close.
    fn release_client(&self, key: IpAddr, id: u64) {
        let mut counts = lock(&self.counts);
        counts.evictable.remove(&id);
        if let Some(n) = counts.per_client.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_client.remove(&key);
            }
        }
    }

    fn release_total(&self) {
        let mut counts = lock(&self.counts);
        counts.total = counts.total.saturating_sub(1);
    }
}

#[derive(Debug)]
struct Held {
    connections: Arc<Connections>,
    /// The connection's place in the order of acceptance.
    id: u64,
    /// The client the connection counts against, until it carries a logged-in request.
    client: Mutex<Option<IpAddr>>,
    /// Told when the connection is to close to make room for a newcomer.
    close: Arc<Notify>,
}

impl Held {
    fn leave_client(&self) {
        let key = lock(&self.client).take();
        if let Some(key) = key {
            self.connections.release_client(key, self.id);
        }
    }
}

/// A connection's place in the counts, held by its I/O: given back when the
/// connection is dropped, however it ends (closed, timed out, failed, or a WebSocket
/// that ends long after its request).
#[derive(Debug)]
pub struct Slot(Arc<Held>);

impl Slot {
    /// What the connection's requests carry to say that it is logged in.
    pub fn standing(&self) -> Standing {
        Standing(Arc::downgrade(&self.0))
    }

    /// What completes when the connection is chosen to close to make room for a
    /// newcomer; the task serving the connection waits for it beside its work and
    /// drops the connection (and this slot) when it completes.
    pub fn eviction(&self) -> Eviction {
        Eviction(self.0.close.clone())
    }
}

/// See [`Slot::eviction`]. Never completes for a connection that carried a
/// logged-in request before it was chosen.
#[derive(Debug)]
pub struct Eviction(Arc<Notify>);

impl Eviction {
    /// Completes when the connection is to close, even if it was chosen before this
    /// was first awaited.
    pub async fn chosen(self) {
        self.0.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.leave_client();
        self.0.connections.release_total();
    }
}

/// In every request: once the request shows a logged-in session
/// ([`crate::guard::require_session`]), its connection no longer counts against its
/// client's cap (it still counts towards the total) and is never closed to make room
/// for a newcomer.
#[derive(Debug, Clone)]
pub struct Standing(Weak<Held>);

impl Standing {
    pub fn logged_in(&self) {
        if let Some(held) = self.0.upgrade() {
            held.leave_client();
        }
    }
}
