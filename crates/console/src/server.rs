//! Accepting connections: TLS (rustls) or, when asked for, plain HTTP; HTTP/1.1 with
//! upgrades for the terminal's WebSocket. Every connection takes a place in the
//! connection caps before anything else and keeps it until it is closed; each phase
//! of a connection has its timeout ([`crate::limits`]). A connection that has not
//! logged in is closed at once, in whatever phase, when it is chosen to make room for
//! a newcomer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::limits::{Activity, Answering, Connections, Limits, Slot, TimedBody, Watched};
use crate::state::ClientAddr;

/// Serves `router` on `listener` until `shutdown` completes, within `limits`. With
/// `tls` set every connection must complete a TLS handshake first.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let connections = Connections::new(limits.max_connections, limits.max_connections_per_client);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Before TLS or anything else that costs: a client over its cap, or a full
        // house of logged-in connections, is closed at once.
        let slot = match connections.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                drop(stream);
                connections.note_refused(peer, why);
                continue;
            }
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        let eviction = slot.eviction();
        tokio::spawn(async move {
            // Dropping the connection's future closes its socket and gives back its
            // place, in whatever phase it is.
            tokio::select! {
                () = handle(stream, peer, slot, router, acceptor, limits) => {}
                () = eviction.chosen() => {
                    tracing::debug!(%peer, "closed to make room for a newer connection");
                }
            }
        });
    }
}

/// One accepted connection, from the TLS handshake to its close.
async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    router: Router,
    acceptor: Option<TlsAcceptor>,
    limits: Limits,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = acceptor else {
        return connection(stream, peer, slot, router, limits).await;
    };
    // One deadline for the first byte and the whole handshake.
    let deadline = tokio::time::Instant::now() + limits.tls_handshake;
    match tokio::time::timeout_at(deadline, starts_with_tls(&stream)).await {
        Err(_) => {
            tracing::debug!(%peer, "no TLS handshake within {:?}", limits.tls_handshake);
            return;
        }
        // Plain HTTP on the TLS port (someone typed http://): send it to https.
        Ok(false) => return redirect_to_https(stream, peer, slot, limits).await,
        Ok(true) => {}
    }
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => connection(tls, peer, slot, router, limits).await,
        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake: {e}"),
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake not finished within {:?}", limits.tls_handshake)
        }
    }
}

/// Whether the client's first byte is a TLS handshake record (0x16).
async fn starts_with_tls(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) => first[0] == 0x16,
        // Closed: let the TLS acceptor say so.
        _ => true,
    }
}

/// Answers the request of a plain-HTTP connection with a redirect to the same path
/// over https on the same host and port, then closes it; the connection keeps its
/// place in the caps (`_slot`) until then.
async fn redirect_to_https(stream: TcpStream, peer: SocketAddr, _slot: Slot, limits: Limits) {
    let service = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost")
            .to_string();
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let resp = hyper::Response::builder()
            .status(hyper::StatusCode::MOVED_PERMANENTLY)
            .header(hyper::header::LOCATION, format!("https://{host}{path}"))
            .header(hyper::header::CONTENT_LENGTH, "0")
            .header(hyper::header::CONTENT_SECURITY_POLICY, crate::guard::CSP)
            .header(hyper::header::X_FRAME_OPTIONS, "DENY")
            .header(hyper::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(hyper::header::REFERRER_POLICY, "no-referrer")
            .body(String::new());
        resp.map_err(|e| std::io::Error::other(e.to_string()))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(false);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, "plain HTTP on the TLS port: {e}");
    }
}

/// Serves HTTP/1.1 on `io` (plain or after the TLS handshake): requests carry the
/// client's address, their body's timer and the connection's standing, and the
/// connection is closed when idle for the keep-alive timeout.
async fn connection<I>(io: I, peer: SocketAddr, slot: Slot, router: Router, limits: Limits)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let standing = slot.standing();
    let io = Watched::new(io, slot, activity.clone(), limits.keep_alive);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = activity.request();
        let activity = activity.clone();
        let (mut parts, body) = req.into_parts();
        let (body, timer) = TimedBody::new(body, limits.body, limits.upload_stall);
        parts.extensions.insert(ClientAddr(peer));
        parts.extensions.insert(timer);
        parts.extensions.insert(standing.clone());
        let req = hyper::Request::from_parts(parts, axum::body::Body::new(body));
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await?;
            if resp.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
                activity.upgraded();
            }
            Ok::<_, std::convert::Infallible>(
                resp.map(|body| axum::body::Body::new(Answering::new(body, in_flight))),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(64 * 1024);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, "connection: {e}");
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
