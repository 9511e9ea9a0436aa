//! The timeouts of a request body: in all (the body timeout) and, for a long upload
//! whose handler asks for it, only by its pauses (the upload stall timeout).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
