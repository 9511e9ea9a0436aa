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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::config::Config;
use crate::session::client_key;

/// File descriptors the agent needs besides its connections: the libvirt socket, the
/// journal readers, terminals (a pty each), uploads, PAM and the files of `/proc`. The
/// process's descriptor limit (`LimitNOFILE=` in the unit) must leave this much above
/// `max_connections`; a lower limit lowers the cap (see [`connection_cap`]).
pub const FD_RESERVE: usize = 256;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counts stay right even if a holder panicked: nothing is left half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

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

/// What a connection's I/O knows of its requests: whether one is being answered,
/// whether the connection became a WebSocket, and whether the client sent anything
/// since the last answer ended.
#[derive(Debug, Default)]
pub struct Activity {
    in_flight: AtomicUsize,
    upgraded: AtomicBool,
    heard: AtomicBool,
}

impl Activity {
    /// Waiting for the next request, none of it read yet.
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && !self.upgraded.load(Ordering::SeqCst)
            && !self.heard.load(Ordering::SeqCst)
    }

    /// A request is being answered until the guard (carried by its answer's body)
    /// is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// The connection is now a WebSocket: it lives as long as its handler wants.
    pub fn upgraded(&self) {
        self.upgraded.store(true, Ordering::SeqCst);
    }
}

/// A request being answered; see [`Activity::request`].
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.heard.store(false, Ordering::SeqCst);
        }
    }
}

/// A connection's I/O: holds its [`Slot`], and fails a read with `TimedOut` when the
/// connection has been idle (no answer being sent, not a WebSocket, no byte of a next
/// request) for the keep-alive timeout.
#[derive(Debug)]
pub struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
    keep_alive: Duration,
    idle: Option<Pin<Box<Sleep>>>,
    _slot: Slot,
}

impl<I> Watched<I> {
    pub fn new(io: I, slot: Slot, activity: Arc<Activity>, keep_alive: Duration) -> Self {
        Self {
            io,
            activity,
            keep_alive,
            idle: None,
            _slot: slot,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.activity.heard.store(true, Ordering::SeqCst);
                    this.idle = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending if !this.activity.idle() => {
                this.idle = None;
                Poll::Pending
            }
            Poll::Pending => {
                let keep_alive = this.keep_alive;
                let timer = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(keep_alive)));
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no request for {} s", keep_alive.as_secs()),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// An answer's body that holds its request's [`InFlight`] until it is sent whole
/// (or dropped).
#[derive(Debug)]
pub struct Answering<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Answering<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Answering<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// In every request: lets the handler of a long upload have its body timed by pauses
/// alone instead of by its total time.
#[derive(Debug, Clone)]
pub struct BodyTimer(Arc<AtomicBool>);

impl BodyTimer {
    /// From now on only a pause of `upload_stall_timeout_secs` ends this request's
    /// body, however long it takes in all.
    pub fn streamed_upload(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A request body that arrived too slowly.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Read(BoxError),
    #[error(
        "no byte of the request body arrived for {0} s; the connection was closed, \
         send the request again"
    )]
    Stalled(u64),
    #[error(
        "the request body did not arrive whole within {0} s; the connection was closed, \
         send the request again"
    )]
    TooSlow(u64),
}

/// Whether `e`, or an error it wraps, is a request body that arrived too slowly.
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if matches!(
            e.downcast_ref::<BodyError>(),
            Some(BodyError::Stalled(_) | BodyError::TooSlow(_))
        ) {
            return true;
        }
        next = e.source();
    }
    false
}

/// A request body with the body timeouts: it fails when no byte arrives for the
/// stall timeout, or, unless [`BodyTimer::streamed_upload`] was called, when it is not
/// whole by the body timeout after the request's headers arrived.
#[derive(Debug)]
pub struct TimedBody<B> {
    inner: B,
    deadline: Instant,
    total: Duration,
    stall: Duration,
    streamed: Arc<AtomicBool>,
    total_timer: Option<Pin<Box<Sleep>>>,
    stall_timer: Option<Pin<Box<Sleep>>>,
    failed: bool,
}

impl<B> TimedBody<B> {
    /// `inner` timed from now, and the handle handlers find in the request.
    pub fn new(inner: B, total: Duration, stall: Duration) -> (Self, BodyTimer) {
        let streamed = Arc::new(AtomicBool::new(false));
        let body = Self {
            inner,
            deadline: Instant::now() + total,
            total,
            stall,
            streamed: streamed.clone(),
            total_timer: None,
            stall_timer: None,
            failed: false,
        };
        (body, BodyTimer(streamed))
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.stall_timer = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let stall = this.stall;
                let timer = this
                    .stall_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(BodyError::Stalled(stall.as_secs()))));
                }
                if !this.streamed.load(Ordering::SeqCst) {
                    let deadline = this.deadline;
                    let timer = this
                        .total_timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if timer.as_mut().poll(cx).is_ready() {
                        this.failed = true;
                        return Poll::Ready(Some(Err(BodyError::TooSlow(this.total.as_secs()))));
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_over_its_cap_leaves_room_for_others() {
        let c = Connections::new(10, 2);
        let a1 = c.admit(ip("192.0.2.1")).unwrap();
        let _a2 = c.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(c.admit(ip("192.0.2.1")).unwrap_err(), Refused::Client);
        // IPv4 from a dual-stack socket is the same client.
        assert_eq!(
            c.admit(ip("::ffff:192.0.2.1")).unwrap_err(),
            Refused::Client
        );
        let _b = c.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(c.open(), 3);
        drop(a1);
        assert_eq!(c.open(), 2);
        assert_eq!(c.open_for(ip("192.0.2.1")), 1);
        let _a3 = c.admit(ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn an_ipv6_64_is_one_client_and_its_neighbours_are_others() {
        let c = Connections::new(10, 1);
        let _a = c.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            c.admit(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
            Refused::Client
        );
        let _b = c.admit(ip("2001:db8:1:3::1")).unwrap();
    }

    #[test]
    fn the_total_cap_holds_when_all_are_logged_in_and_slots_come_back() {
        let c = Connections::new(3, 3);
        let slots: Vec<Slot> = (1..=3)
            .map(|i| c.admit(ip(&format!("198.51.100.{i}"))).unwrap())
            .collect();
        for s in &slots {
            s.standing().logged_in();
        }
        assert_eq!(c.admit(ip("198.51.100.9")).unwrap_err(), Refused::Full);
        assert_eq!(c.open(), 3, "a refusal takes no place");
        drop(slots);
        assert_eq!(c.open(), 0);
        assert!(c.admit(ip("198.51.100.9")).is_ok());
    }

    /// Whether `slot`'s connection has been told to close.
    fn chosen(slot: &Slot) -> bool {
        use futures_util::FutureExt;
        slot.eviction().chosen().now_or_never().is_some()
    }

    #[test]
    fn a_full_house_closes_its_oldest_connection_not_logged_in() {
        let c = Connections::new(3, 10);
        let admin = c.admit(ip("198.51.100.1")).unwrap();
        let old = c.admit(ip("198.51.100.2")).unwrap();
        let young = c.admit(ip("198.51.100.3")).unwrap();
        // The oldest of all, but logged in.
        admin.standing().logged_in();
        assert_eq!(c.evictable(), 2);
        let newcomer = c.admit(ip("198.51.100.4")).expect("a full house refused");
        assert!(
            chosen(&old),
            "the oldest connection not logged in was not told to close"
        );
        assert!(!chosen(&young) && !chosen(&admin) && !chosen(&newcomer));
        // It counts until its task has closed it.
        assert_eq!((c.open(), c.evictable()), (4, 2));
        drop(old);
        assert_eq!(c.open(), 3);
        // The next newcomer closes the next oldest; the connection chosen before it
        // is never chosen twice.
        let later = c.admit(ip("198.51.100.5")).unwrap();
        assert!(chosen(&young));
        assert!(!chosen(&newcomer) && !chosen(&later) && !chosen(&admin));
        drop(young);
        // A connection that logs in is no longer one to close.
        newcomer.standing().logged_in();
        let last = c.admit(ip("198.51.100.6")).unwrap();
        assert!(chosen(&later));
        assert!(!chosen(&newcomer) && !chosen(&last) && !chosen(&admin));
        drop((later, last, newcomer, admin));
        assert_eq!((c.open(), c.evictable()), (0, 0), "every place came back");
        for i in 1..=6 {
            assert_eq!(c.open_for(ip(&format!("198.51.100.{i}"))), 0);
        }
    }

    #[test]
    fn a_client_over_its_own_cap_closes_nobody() {
        let c = Connections::new(2, 1);
        let a = c.admit(ip("192.0.2.1")).unwrap();
        let b = c.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(c.admit(ip("192.0.2.1")).unwrap_err(), Refused::Client);
        assert!(!chosen(&a) && !chosen(&b));
        assert_eq!(c.open(), 2);
    }

    #[tokio::test]
    async fn a_connection_told_to_close_hears_it_however_late_it_listens() {
        let c = Connections::new(1, 10);
        let victim = c.admit(ip("192.0.2.1")).unwrap();
        let eviction = victim.eviction();
        let _newcomer = c.admit(ip("192.0.2.2")).unwrap();
        tokio::time::timeout(Duration::from_secs(5), eviction.chosen())
            .await
            .expect("the eviction was lost");
    }

    #[test]
    fn a_logged_in_connection_leaves_its_clients_count_once() {
        let c = Connections::new(10, 1);
        let a = c.admit(ip("203.0.113.5")).unwrap();
        let standing = a.standing();
        standing.logged_in();
        standing.logged_in();
        assert_eq!(c.open_for(ip("203.0.113.5")), 0);
        let b = c.admit(ip("203.0.113.5")).unwrap();
        assert_eq!(c.open(), 2);
        drop(a);
        // The first connection's end does not free the second's place.
        assert_eq!(c.open_for(ip("203.0.113.5")), 1);
        drop(b);
        assert_eq!((c.open(), c.open_for(ip("203.0.113.5"))), (0, 0));
        // A request that outlives its connection changes nothing.
        standing.logged_in();
        assert_eq!(c.open(), 0);
    }

    #[test]
    fn the_cap_stays_within_the_descriptor_limit() {
        assert_eq!(cap_within(1024, 8192), 1024);
        assert_eq!(cap_within(1024, 1024), 1024 - FD_RESERVE);
        assert_eq!(cap_within(1024, 300), 150);
        assert_eq!(cap_within(1024, 0), 1);
        let shipped = Config::default();
        assert_eq!(
            cap_within(shipped.max_connections, 8192),
            shipped.max_connections
        );
    }

    #[tokio::test]
    async fn an_idle_connection_times_out_but_not_while_answering_or_upgraded() {
        let keep_alive = Duration::from_millis(100);
        let c = Connections::new(10, 10);
        for case in ["idle", "answering", "upgraded"] {
            let (client, server) = tokio::io::duplex(64);
            let activity = Arc::new(Activity::default());
            let slot = c.admit(ip("192.0.2.7")).unwrap();
            let mut io = Watched::new(server, slot, activity.clone(), keep_alive);
            let in_flight = (case == "answering").then(|| activity.request());
            if case == "upgraded" {
                activity.upgraded();
            }
            let mut buf = [0u8; 8];
            let read = tokio::time::timeout(Duration::from_millis(500), io.read(&mut buf)).await;
            match case {
                "idle" => {
                    let e = read.unwrap().unwrap_err();
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                }
                _ => assert!(read.is_err(), "{case}: the read ended: {read:?}"),
            }
            drop((client, in_flight));
        }
        assert_eq!(c.open(), 0, "every slot came back with its I/O");
    }

    #[tokio::test]
    async fn bytes_keep_a_connection_busy_until_its_answer_ends() {
        let (mut client, server) = tokio::io::duplex(64);
        let activity = Arc::new(Activity::default());
        let slot = Connections::new(1, 1).admit(ip("192.0.2.8")).unwrap();
        let keep_alive = Duration::from_millis(100);
        let mut io = Watched::new(server, slot, activity.clone(), keep_alive);
        client.write_all(b"GET").await.unwrap();
        let mut buf = [0u8; 3];
        io.read_exact(&mut buf).await.unwrap();
        // Part of a request arrived: hyper's header timeout governs, not this one.
        let wait = tokio::time::timeout(Duration::from_millis(400), io.read(&mut buf)).await;
        assert!(wait.is_err(), "{wait:?}");
        let answer = activity.request();
        drop(answer);
        let e = io.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    /// A body that sends `chunks` one by one, each after `pause`, then ends.
    #[derive(Debug)]
    struct Trickle {
        chunks: usize,
        pause: Duration,
        timer: Option<Pin<Box<Sleep>>>,
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            let this = self.get_mut();
            if this.chunks == 0 {
                return Poll::Ready(None);
            }
            let pause = this.pause;
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.timer = None;
            this.chunks -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    async fn collect<B: Body<Data = Bytes> + Unpin>(mut body: B) -> Result<usize, B::Error> {
        let mut n = 0;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            n += frame?.into_data().map_or(0, |d| d.len());
        }
        Ok(n)
    }

    #[tokio::test]
    async fn a_body_is_timed_in_all_and_an_upload_by_its_pauses() {
        let ms = Duration::from_millis;
        let trickle = |chunks, pause| Trickle {
            chunks,
            pause,
            timer: None,
        };
        // Ten chunks 50 ms apart: 500 ms in all, over a total of 200 ms.
        let (body, _) = TimedBody::new(trickle(10, ms(50)), ms(200), ms(150));
        let e = collect(body).await.unwrap_err();
        assert!(matches!(e, BodyError::TooSlow(_)), "{e}");
        assert!(is_body_timeout(&e));
        // The same as an upload: no pause reaches 150 ms.
        let (body, timer) = TimedBody::new(trickle(10, ms(50)), ms(200), ms(150));
        timer.streamed_upload();
        assert_eq!(collect(body).await.unwrap(), 10);
        // An upload that stops.
        let (body, timer) = TimedBody::new(trickle(2, ms(400)), ms(200), ms(150));
        timer.streamed_upload();
        let e = collect(body).await.unwrap_err();
        assert!(matches!(e, BodyError::Stalled(_)), "{e}");
        // A wrapped timeout is still recognised, a read error is not one.
        let wrapped = axum::Error::new(e);
        assert!(is_body_timeout(&wrapped));
        let read = BodyError::Read("reset".into());
        assert!(!is_body_timeout(&read));
    }
}
