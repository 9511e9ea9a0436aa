//! Accepting connections: TLS (rustls) or, when asked for, plain HTTP; HTTP/1.1 with
//! upgrades for the terminal's WebSocket.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::state::ClientAddr;

/// How long a client may take to send its request headers or finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes. With `tls` set every
/// connection must complete a TLS handshake first.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match acceptor {
                // Plain HTTP on the TLS port (someone typed http://): send it to https.
                Some(_) if !starts_with_tls(&stream).await => redirect_to_https(stream, peer).await,
                Some(acceptor) => {
                    let tls =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match tls {
                        Ok(Ok(tls)) => connection(TokioIo::new(tls), peer, router).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => connection(TokioIo::new(stream), peer, router).await,
            }
        });
    }
}

/// Whether the client's first byte is a TLS handshake record (0x16).
async fn starts_with_tls(stream: &tokio::net::TcpStream) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == 0x16,
        // Closed or silent: let the TLS acceptor deal with it.
        _ => true,
    }
}

/// Answers every request of a plain-HTTP connection with a redirect to the same
/// path over https on the same host and port.
async fn redirect_to_https(stream: tokio::net::TcpStream, peer: SocketAddr) {
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
        .header_read_timeout(HANDSHAKE_TIMEOUT);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, "plain HTTP on the TLS port: {e}");
    }
}

async fn connection<I>(io: TokioIo<I>, peer: SocketAddr, router: Router)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(64 * 1024);
    if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
        tracing::debug!(%peer, "connection: {e}");
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
