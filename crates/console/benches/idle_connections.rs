//! The login page's latency while a client holds idle connections: a console in a
//! process of its own, with a given file descriptor limit (1024 is what a service gets
//! from systemd when its unit does not say, 8192 what `hvnode-agent.service` sets), and
//! a flood of TCP connections that never start TLS, each opened again a second after
//! the console closes it. An administrator on another loopback address fetches the
//! login page (a new connection, TLS handshake and `GET /login` each time, a quarter
//! of a second apart).
//!
//! Prints figures and never asserts. Rounds, for each limit: no flood; the flood from
//! one address; the flood spread over 100 addresses (20 connections each, under the
//! per-client cap, so only the total cap holds it: when it is full, each newcomer
//! closes the oldest connection that has not logged in, the login page's too if it
//! waits long enough). Each round also says how many flood connections the console
//! closed (refused at once, closed to make room, or timed out), per second.
//!
//!     cargo bench -p hvnode-console --bench idle_connections
//!
//! Settings (environment): `HVNODE_BENCH_FLOOD` connections (2000),
//! `HVNODE_BENCH_REQUESTS` login page fetches per round (20), `HVNODE_BENCH_LIMITS`
//! the console's descriptor limits ("1024,8192"), `HVNODE_BENCH_TIMEOUT_SECS` for one
//! fetch (10).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Set in the child process: serve a console with this descriptor limit.
const SERVE: &str = "HVNODE_BENCH_SERVE";

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn number(name: &str, default: u64) -> u64 {
    setting(name, &default.to_string())
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn set_descriptor_limit(soft: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard).unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to choose.
    if let Ok(limit) = std::env::var(SERVE) {
        serve(limit.parse().unwrap());
        return;
    }
    let flood = number("HVNODE_BENCH_FLOOD", 2000) as usize;
    let requests = number("HVNODE_BENCH_REQUESTS", 20) as usize;
    let timeout = Duration::from_secs(number("HVNODE_BENCH_TIMEOUT_SECS", 10));
    let limits: Vec<u64> = setting("HVNODE_BENCH_LIMITS", "1024,8192")
        .split(',')
        .map(|l| l.trim().parse().unwrap())
        .collect();
    // The flood's own descriptors, in this process.
    set_descriptor_limit(flood as u64 * 2 + 512);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "login page (new TLS connection + GET /login from 127.0.0.2), {requests} fetches \
         per round, {timeout:?} each at most; flood: {flood} idle TCP connections, each \
         reopened 1 s after the console closes it"
    );
    for limit in limits {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(SERVE, limit.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("the console said {line:?}"))
            .parse()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        println!("\nconsole with a limit of {limit} file descriptors");
        let pid = child.id();
        rt.block_on(async {
            round("no flood", addr, pid, &[], requests, timeout).await;
            let one: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1]); flood];
            round("flood from 1 address", addr, pid, &one, requests, timeout).await;
            let spread: Vec<IpAddr> = (0..flood)
                .map(|i| IpAddr::from([127, 0, 1, (i % 100) as u8 + 1]))
                .collect();
            round(
                "flood from 100 addresses",
                addr,
                pid,
                &spread,
                requests,
                timeout,
            )
            .await;
        });
        drop(child.stdin.take());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Fetches the login page `requests` times while `flood` (one connection per entry,
/// from that address) is held, and prints the figures, with the most descriptors the
/// console process (`console`) had open meanwhile.
async fn round(
    what: &str,
    addr: SocketAddr,
    console: u32,
    flood: &[IpAddr],
    requests: usize,
    timeout: Duration,
) {
    let mut holders = tokio::task::JoinSet::new();
    let closed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    for from in flood.iter().copied() {
        holders.spawn(hold(from, addr, closed.clone()));
    }
    if !flood.is_empty() {
        // Let the flood arrive and settle.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let mut times = Vec::new();
    let mut failures = Vec::new();
    let mut most_open = 0;
    for _ in 0..requests {
        most_open = most_open.max(descriptors(console));
        let start = Instant::now();
        match tokio::time::timeout(timeout, login_page(addr)).await {
            Ok(Ok(200)) => times.push(start.elapsed()),
            Ok(Ok(status)) => failures.push(format!("status {status}")),
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(_) => failures.push(format!("no answer within {timeout:?}")),
        }
        // Spread over the flood's life rather than one burst.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let closed = closed.load(Ordering::Relaxed);
    let flood_secs = started.elapsed().as_secs_f64();
    holders.shutdown().await;
    println!("  {what:<26} the console's open file descriptors: up to {most_open}");
    if !flood.is_empty() {
        println!(
            "  {what:<26} flood connections closed by the console: {closed} in {flood_secs:.0} s \
             ({:.0}/s)",
            closed as f64 / flood_secs
        );
    }
    times.sort();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    if times.is_empty() {
        println!("  {what:<26} answered 0/{requests}");
    } else {
        println!(
            "  {what:<26} answered {}/{requests}: median {}, p90 {}, max {}",
            times.len(),
            ms(at(0.5)),
            ms(at(0.9)),
            ms(at(1.0)),
        );
    }
    failures.sort();
    failures.dedup();
    for f in failures.iter().take(3) {
        println!("  {:<26} failed: {f}", "");
    }
    // Let the console see the flood go before the next round.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// One connection of the flood: open, silent; opened again a second after the console
/// closes it (each close counted in `closed`).
async fn hold(from: IpAddr, to: SocketAddr, closed: Arc<AtomicUsize>) {
    loop {
        if let Ok(mut s) = connect_from(from, to).await {
            until_closed(&mut s).await;
            closed.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// File descriptors process `pid` has open.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Reads (and drops) what arrives until the console closes the connection.
async fn until_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// The status of `GET /login` on a new TLS connection from 127.0.0.2.
async fn login_page(addr: SocketAddr) -> std::io::Result<u16> {
    let stream = connect_from(IpAddr::from([127, 0, 0, 2]), addr).await?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCertificate))
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await?;
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    // The console closes without close_notify at times: what arrived counts.
    let _ = tls.read_to_end(&mut answer).await;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(32)]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no answer ({head:?})")))
}

/// Accepts the console's self-signed certificate.
#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The child: a console on 127.0.0.1 with TLS and the shipped settings, under
/// `limit` descriptors, until its standard input closes.
fn serve(limit: u64) {
    set_descriptor_limit(limit);
    let dir = tempfile::tempdir().unwrap();
    let config = console::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        libvirt_uri: "test:///default".into(),
        state_dir: dir.path().join("state"),
        certs_dir: dir.path().join("ws-certs.d"),
        sysroot: dir.path().join("sysroot"),
        ..console::Config::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let metrics = Arc::new(console::Metrics::default());
        let console = console::Console::bind(config, metrics).await.unwrap();
        println!("PORT {}", console.local_addr().unwrap().port());
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        console
            .serve(async move {
                let _ = stdin_closed.await;
            })
            .await;
    });
}
