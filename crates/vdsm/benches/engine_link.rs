//! `Host.getStats` round trips and the daemon's memory with the engine's connections
//! open: the real `hvnode-vdsm` binary in a process of its own (on loopback, with a
//! PKI of a CA made here, libvirt's test driver), and clients that connect as the
//! engine does (TLS with a client certificate, STOMP `CONNECT` with heart-beat
//! `0,15000`, `SUBSCRIBE` to the answers and the events).
//!
//! Prints figures and never asserts. Latency of `Host.getStats` (median, p95, p99,
//! max) two ways: one call at a time, taking the connections in turn; and every
//! connection calling at once, each waiting for its answer before the next call. The
//! daemon's memory (`VmRSS`, `VmHWM` from `/proc/PID/status`, `Pss` from
//! `smaps_rollup`) idle after its start, with the connections open, and after the
//! calls.
//!
//!     cargo bench -p hvnode-vdsm --bench engine_link
//!
//! Settings (environment): `HVNODE_BENCH_CONNECTIONS` (10), `HVNODE_BENCH_CALLS`
//! calls of each round (200), `HVNODE_BENCH_LIBVIRT_URI` (`test:///default`, through
//! libvirtd).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use test_engine::pki::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vdsm::stomp::{Decoder, Frame};

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn number(name: &str, default: usize) -> usize {
    setting(name, &default.to_string())
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The engine's CA, the daemon's certificate and key under `dir` (as the host
/// deploy leaves them), and a client certificate and key of that CA (PEM).
fn write_pki(dir: &Path) -> (String, String, String) {
    let ca = Ca::named("engine CA");
    let issue = |name: &str| ca.issue(name);
    let (cert, key) = issue("localhost");
    for (path, text) in [
        (vdsm::pki::KEY, key),
        (vdsm::pki::CERT, cert),
        (vdsm::pki::CA, ca.pem()),
    ] {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let (client_cert, client_key) = issue("engine.example.com");
    (ca.pem(), client_cert, client_key)
}

/// The daemon, killed when dropped.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hvnode-vdsm` on a free loopback port and waits until it serves.
fn start_daemon(pki: &Path, libvirt_uri: &str) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hvnode-vdsm"))
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--pki-dir")
        .arg(pki)
        .arg("--libvirt-uri")
        .arg(libvirt_uri)
        // No helper here: getStats does not ask it.
        .arg("--helper-socket")
        .arg(pki.join("no-helper"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hvnode-vdsm");
    // Its log is read to the end, so that the pipe never fills.
    let (lines, log) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let daemon = Daemon { child, addr };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains("certificates loaded") => break,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "hvnode-vdsm did not load its certificates within 10 s; its log:\n{}",
                seen.join("\n")
            ),
        }
    }
    // Keep reading (and dropping) the log.
    std::thread::spawn(move || for _ in log {});
    daemon
}

/// Memory of process `pid`, in KiB: VmRSS, VmHWM, Pss.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss: u64,
    hwm: u64,
    pss: u64,
}

fn memory(pid: u32) -> Memory {
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}"))
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    Memory {
        rss: field(&status, "VmRSS:"),
        hwm: field(&status, "VmHWM:"),
        pss: field(&rollup, "Pss:"),
    }
}

fn print_memory(what: &str, m: Memory) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "memory {what:<40} VmRSS {:6.1} MiB  VmHWM {:6.1} MiB  Pss {:6.1} MiB",
        mib(m.rss),
        mib(m.hwm),
        mib(m.pss)
    );
}

/// A connection as the engine opens it.
struct Engine {
    stream: TlsStream<TcpStream>,
    decoder: Decoder,
    calls: u64,
}

async fn connect(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Engine {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let stream = TlsConnector::from(tls)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with hvnode-vdsm");
    let mut engine = Engine {
        stream,
        decoder: Decoder::default(),
        calls: 0,
    };
    engine
        .send(
            Frame::new("CONNECT")
                .header("accept-version", "1.2")
                .header("host", "engine")
                .header("heart-beat", "0,15000"),
        )
        .await;
    let connected = engine.frame().await;
    assert_eq!(connected.command, "CONNECTED", "{connected:?}");
    for (id, destination) in [
        ("sub-responses", vdsm::server::RESPONSE_QUEUE),
        ("sub-events", vdsm::server::EVENT_QUEUE),
    ] {
        engine
            .send(
                Frame::new("SUBSCRIBE")
                    .header("destination", destination)
                    .header("id", id)
                    .header("ack", "auto"),
            )
            .await;
    }
    engine
}

impl Engine {
    async fn send(&mut self, frame: Frame) {
        self.stream.write_all(&frame.encode()).await.unwrap();
    }

    async fn frame(&mut self) -> Frame {
        loop {
            if let Some(f) = self.decoder.next_frame().unwrap() {
                return f;
            }
            let mut buf = [0u8; 16 * 1024];
            let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut buf))
                .await
                .expect("hvnode-vdsm answers within 30 s")
                .unwrap();
            assert!(n > 0, "hvnode-vdsm closed the connection");
            self.decoder.push(&buf[..n]);
        }
    }

    /// One `Host.getStats` round trip: its time (events in between are skipped).
    async fn get_stats(&mut self) -> Duration {
        self.calls += 1;
        let id = format!("stats-{}", self.calls);
        let body = json!({"jsonrpc": "2.0", "method": "Host.getStats", "params": {}, "id": id});
        let started = Instant::now();
        self.send(
            Frame::new("SEND")
                .header("destination", "jms.topic.vdsm_requests")
                .header("reply-to", vdsm::server::RESPONSE_QUEUE)
                .body(serde_json::to_vec(&body).unwrap()),
        )
        .await;
        loop {
            let frame = self.frame().await;
            if frame.get("destination") != Some(vdsm::server::RESPONSE_QUEUE) {
                continue;
            }
            let elapsed = started.elapsed();
            let answer: Value = serde_json::from_slice(&frame.body).unwrap();
            assert_eq!(answer["id"], id, "{answer}");
            assert!(answer["result"]["cpuIdle"].is_string(), "{answer}");
            return elapsed;
        }
    }
}

fn client_config(ca: &str, cert: &str, key: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

fn print_latency(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // The q-quantile: the smallest time at least a share q of the calls took.
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "Host.getStats {what:<40} median {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} calls)",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(0.99)),
        ms(times[times.len() - 1]),
        times.len()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to choose.
    let connections = number("HVNODE_BENCH_CONNECTIONS", 10).max(1);
    let calls = number("HVNODE_BENCH_CALLS", 200).max(connections);
    let libvirt_uri = setting("HVNODE_BENCH_LIBVIRT_URI", "test:///default");
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = write_pki(dir.path());
    let tls = client_config(&ca, &cert, &key);
    let daemon = start_daemon(dir.path(), &libvirt_uri);
    let pid = daemon.child.id();
    println!(
        "hvnode-vdsm on {} (libvirt {libvirt_uri}); {connections} engine connections over TLS, \
         STOMP heart-beat 0,15000",
        daemon.addr
    );
    // Let it settle: the first usage sample, the VM watcher's first look.
    std::thread::sleep(Duration::from_secs(1));
    print_memory("idle after start", memory(pid));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut engines = Vec::new();
        for _ in 0..connections {
            engines.push(connect(daemon.addr, tls.clone()).await);
        }
        // Every connection answered once before counting.
        for e in &mut engines {
            e.get_stats().await;
        }
        print_memory(&format!("with {connections} connections open"), memory(pid));

        let mut times = Vec::with_capacity(calls);
        for i in 0..calls {
            times.push(engines[i % connections].get_stats().await);
        }
        print_latency("one at a time, connections in turn", times);

        let each = calls / connections;
        let mut tasks = tokio::task::JoinSet::new();
        for mut e in engines.drain(..) {
            tasks.spawn(async move {
                let mut times = Vec::with_capacity(each);
                for _ in 0..each {
                    times.push(e.get_stats().await);
                }
                (e, times)
            });
        }
        let mut times = Vec::with_capacity(calls);
        while let Some(done) = tasks.join_next().await {
            let (e, t) = done.unwrap();
            engines.push(e);
            times.extend(t);
        }
        print_latency(&format!("{connections} connections at once"), times);
        print_memory(
            &format!("with {connections} connections, after the calls"),
            memory(pid),
        );
        drop(engines);
    });
}
