//! One VM console streaming through the console: its memory and the relay's added
//! latency per frame.
//!
//! A console in a process of its own, as the agent runs it (two worker threads, the
//! host sampler), on libvirt's test driver with one running VM whose VNC display
//! listens on a unix socket of this benchmark: a fake VNC server that writes frames
//! stamped with the time they were written. A WebSocket client opens
//! `/vms/bench/vnc` with an administrative session, as noVNC does, and reads them
//! back; the same frames are also read straight from the server's socket, in the
//! same run, as the baseline. The added latency is the relayed median less the
//! direct one (the time from the server's write of a frame's first byte to the
//! client's read of its last, on one clock).
//!
//! Rounds: small frames (64 B, a cursor move or a character) far apart, then a
//! stream of large ones (64 KiB at 60 frames a second, a busy screen) for
//! `HVNODE_BENCH_SECONDS` (10), during which the console's RSS is read every 250 ms.
//! Prints figures and never asserts. Needs libvirtd (tests/deps.sh starts it) and
//! root, as the console's tests do.
//!
//!     cargo bench -p hvnode-console --bench vm_console     (make bench-console)
//!
//! Settings (environment): `HVNODE_BENCH_SECONDS` of streaming (10),
//! `HVNODE_BENCH_FRAMES` small frames per path (500).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set in the child process: serve a console on this test driver node file.
const SERVE: &str = "HVNODE_BENCH_SERVE";
/// A frame's header: its length (u32, the header included) and the time it was
/// written (u64, ns since the epoch of the parent's clock).
const HEADER: usize = 12;

fn number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v}: {e}")))
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to choose.
    if let Ok(node) = std::env::var(SERVE) {
        serve(&node);
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        println!(
            "vm_console: needs root (libvirt's test driver through libvirtd, as the tests use it); skipped"
        );
        return;
    }
    let seconds = number("HVNODE_BENCH_SECONDS", 10);
    let frames = number("HVNODE_BENCH_FRAMES", 500) as usize;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("vnc.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let node = dir.path().join("node.xml");
    std::fs::write(
        &node,
        format!(
            "<node><domain type='test'><name>bench</name><memory>65536</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os><devices><graphics type='vnc'>\
             <listen type='socket' socket='{}'/></graphics></devices></domain></node>",
            sock.display()
        ),
    )
    .unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SERVE, &node)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut port = 0u16;
    let mut cookie = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(p) = line.strip_prefix("PORT ") {
            port = p.parse().unwrap();
        } else if let Some(c) = line.strip_prefix("COOKIE ") {
            cookie = c.to_string();
            break;
        }
    }
    assert!(port > 0 && !cookie.is_empty(), "the console did not start");
    // A page first, as a browser would, so the idle figure is a console that served.
    let _ = std::net::TcpStream::connect(("127.0.0.1", port)).map(|mut t| {
        let _ = write!(
            t,
            "GET /vms/bench HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        let _ = std::io::copy(&mut t, &mut std::io::sink());
    });
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss_kib(pid);
    println!(
        "console (pid {pid}, 2 worker threads, host sampler): RSS {} idle",
        mib(idle)
    );

    let epoch = Instant::now();
    // Relayed: the console connects to the fake server when the socket opens.
    let ws = open_socket(port, &cookie);
    let (relayed_server, _) = listener.accept().unwrap();
    let direct_client = UnixStream::connect(&sock).unwrap();
    let (direct_server, _) = listener.accept().unwrap();
    let mut relayed = Client::Ws(Box::new(ws), Vec::new());
    let mut direct = Client::Unix(direct_client);

    // Small frames, far apart: the latency of one update.
    let small_relay = round(
        &relayed_server,
        &mut relayed,
        epoch,
        64,
        frames,
        Duration::from_millis(4),
    );
    let small_direct = round(
        &direct_server,
        &mut direct,
        epoch,
        64,
        frames,
        Duration::from_millis(4),
    );
    report("64 B frames", &small_relay, &small_direct);

    // A busy screen for a while, the console's memory read all along.
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            let mut last = 0;
            while sampling.load(Ordering::SeqCst) {
                last = rss_kib(pid);
                peak.fetch_max(last, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(250));
            }
            last
        })
    };
    let n = (seconds * 60) as usize;
    let t = Instant::now();
    let big_relay = round(
        &relayed_server,
        &mut relayed,
        epoch,
        64 * 1024,
        n,
        Duration::from_micros(16_667),
    );
    let elapsed = t.elapsed();
    sampling.store(false, Ordering::SeqCst);
    let last = sampler.join().unwrap();
    let big_direct = round(
        &direct_server,
        &mut direct,
        epoch,
        64 * 1024,
        120,
        Duration::from_micros(16_667),
    );
    report("64 KiB frames at 60/s", &big_relay, &big_direct);
    let hwm = status_kib(pid, "VmHWM:");
    println!(
        "streaming {n} frames of 64 KiB in {:.1} s ({:.1} MiB/s through the relay): console RSS {} at the end, {} at most while streaming (high-water mark {}), {} idle before",
        elapsed.as_secs_f64(),
        (n * 64 * 1024) as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0),
        mib(last),
        mib(peak.load(Ordering::SeqCst)),
        mib(hwm),
        mib(idle),
    );
    println!("goal: ≤ 12 MiB RSS with one VNC console streaming");

    drop(relayed);
    drop(child.stdin.take());
    let _ = child.wait();
}

/// A console serving on loopback with libvirt's test driver on `node`, and one
/// administrative session for root; prints `PORT` and `COOKIE`, and stops when
/// its standard input closes.
fn serve(node: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = console::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        libvirt_uri: format!("test://{node}"),
        state_dir: dir.path().join("state"),
        certs_dir: dir.path().join("ws-certs.d"),
        sysroot: dir.path().join("sysroot"),
        insecure_http: true,
        ..console::Config::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let metrics = Arc::new(console::Metrics::default());
        let sampler = console::spawn_sampler(metrics.clone());
        let console = console::Console::bind(config, metrics).await.unwrap();
        let (token, _csrf) = {
            let mut sessions = console.state.sessions.lock().unwrap();
            let (token, csrf) = sessions.create("root").unwrap();
            assert!(sessions.grant_admin(&token, console.state.clock.now()));
            (token, csrf)
        };
        println!("PORT {}", console.local_addr().unwrap().port());
        println!("COOKIE {}={token}", console::session::COOKIE);
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        console
            .serve(async move {
                let _ = stdin_closed.await;
            })
            .await;
        sampler.abort();
    });
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// `/vms/bench/vnc` as noVNC opens it.
fn open_socket(port: u16, cookie: &str) -> Ws {
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://127.0.0.1:{port}/vms/bench/vnc")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Cookie", cookie.parse().unwrap());
    h.insert(
        "Origin",
        format!("http://127.0.0.1:{port}").parse().unwrap(),
    );
    h.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    let (ws, resp) = tungstenite::connect(req).unwrap_or_else(|e| match e {
        tungstenite::Error::Http(r) => panic!(
            "the console refused the VNC socket: {} {}",
            r.status(),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default())
        ),
        e => panic!("opening the VNC socket: {e}"),
    });
    assert_eq!(resp.status(), 101);
    if let tungstenite::stream::MaybeTlsStream::Plain(t) = ws.get_ref() {
        t.set_nodelay(true).unwrap();
    }
    ws
}

/// Where frames are read: through the console, or straight from the socket.
enum Client {
    Ws(Box<Ws>, Vec<u8>),
    Unix(UnixStream),
}

impl Client {
    /// Reads one whole frame; returns its stamp.
    fn frame(&mut self) -> u64 {
        match self {
            Client::Ws(ws, buf) => loop {
                if buf.len() >= HEADER {
                    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    if buf.len() >= len {
                        let stamp = u64::from_be_bytes(buf[4..12].try_into().unwrap());
                        buf.drain(..len);
                        return stamp;
                    }
                }
                match ws.read().unwrap() {
                    tungstenite::Message::Binary(b) => buf.extend_from_slice(&b),
                    tungstenite::Message::Close(c) => {
                        panic!("the console closed the socket: {c:?}")
                    }
                    _ => {}
                }
            },
            Client::Unix(s) => {
                let mut head = [0u8; HEADER];
                s.read_exact(&mut head).unwrap();
                let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
                let mut rest = vec![0u8; len - HEADER];
                s.read_exact(&mut rest).unwrap();
                u64::from_be_bytes(head[4..12].try_into().unwrap())
            }
        }
    }
}

/// Writes `n` frames of `size` bytes, `gap` apart, from a thread on `server`, and
/// reads them on `client`: each frame's latency in µs.
fn round(
    server: &UnixStream,
    client: &mut Client,
    epoch: Instant,
    size: usize,
    n: usize,
    gap: Duration,
) -> Vec<f64> {
    let mut server = server.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut frame = vec![0u8; size];
        frame[..4].copy_from_slice(&(size as u32).to_be_bytes());
        let start = Instant::now();
        for i in 0..n {
            let due = start + gap * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let stamp = epoch.elapsed().as_nanos() as u64;
            frame[4..12].copy_from_slice(&stamp.to_be_bytes());
            server.write_all(&frame).unwrap();
        }
    });
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let stamp = client.frame();
        let now = epoch.elapsed().as_nanos() as u64;
        out.push(now.saturating_sub(stamp) as f64 / 1000.0);
    }
    writer.join().unwrap();
    out
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn report(what: &str, relayed: &[f64], direct: &[f64]) {
    let (rm, dm) = (percentile(relayed, 0.5), percentile(direct, 0.5));
    println!(
        "{what}: relayed median {rm:.0} µs (p90 {:.0}, p99 {:.0}), direct median {dm:.0} µs (p90 {:.0}); the relay adds {:.0} µs a frame (median)",
        percentile(relayed, 0.9),
        percentile(relayed, 0.99),
        percentile(direct, 0.9),
        rm - dm
    );
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
