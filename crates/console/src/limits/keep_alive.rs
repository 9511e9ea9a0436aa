//! A connection's I/O and what it knows of its requests: the keep-alive timeout of an
//! idle connection, which neither a request being answered nor a WebSocket counts as.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::connections::Slot;

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
