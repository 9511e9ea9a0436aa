//! Side-by-side figures for hvnode-agent and Debian's Cockpit on this machine: memory
//! with one and with more logged-in sessions, login-page throughput, latency of the
//! authenticated overview, and the agent's idle CPU with its sampler running.
//!
//! Prints figures and never asserts. Needs root (it makes a local user for the PAM
//! logins), `wrk`, and for the Cockpit half `cockpit-ws` and `cockpit-bridge`; a
//! missing piece is reported and skipped. Both servers listen on 127.0.0.1 only and
//! get the same `wrk -t2 -c32 -d10s`.
//!
//!     cargo bench -p hvnode-agent --bench cockpit_comparison

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WRK: &[&str] = &["-t2", "-c32", "-d10s", "--latency"];
const EXTRA_SESSIONS: usize = 10;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A process and all its descendants.
fn tree(root: u32) -> Vec<u32> {
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(1)?.parse::<u32>().ok());
                if ppid == Some(parent) && !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
        i += 1;
    }
    all
}

/// Proportional set size in KiB: shared library pages divided among their users.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn tree_pss_mib(root: u32) -> f64 {
    tree(root).into_iter().map(pss_kib).sum::<u64>() as f64 / 1024.0
}

fn tree_rss_mib(root: u32) -> f64 {
    tree(root).into_iter().map(rss_kib).sum::<u64>() as f64 / 1024.0
}

/// CPU time (user + system) of a process in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

struct Wrk {
    rps: f64,
    p50: String,
    p99: String,
}

fn wrk(url: &str, header: Option<&str>) -> Option<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.args(WRK);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let find = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    if text.contains("Non-2xx") {
        println!("  note: wrk saw non-2xx answers for {url}");
    }
    Some(Wrk {
        rps: find("Requests/sec:")?.parse().ok()?,
        p50: find("50%").unwrap_or_default(),
        p99: find("99%").unwrap_or_default(),
    })
}

fn http(port: u16, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // Headers are enough: read until the blank line.
    loop {
        match std::io::Read::read(&mut s, &mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn cookie(resp: &str, name: &str) -> Option<String> {
    resp.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim()))
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

struct User {
    name: String,
    password: String,
}
impl Drop for User {
    fn drop(&mut self) {
        // Cockpit's bridge starts a session D-Bus daemon that outlives cockpit-ws: end
        // what still runs as this user before the account goes.
        if let Some(uid) = uid_of(&self.name) {
            for pid in processes_of(uid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .output();
    }
}

/// The uid of account `name`.
fn uid_of(name: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", name]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The processes whose real uid is `uid`.
fn processes_of(uid: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(uid)
        })
        .collect()
}

fn make_user() -> User {
    let name = format!("hvbench{}", std::process::id());
    let password = format!("Bench-{}-pw", std::process::id());
    let _ = Command::new("useradd")
        .args(["-m", "-G", "sudo", &name])
        .status();
    let hash = Command::new("openssl")
        .args(["passwd", "-6", &password])
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_string();
    let _ = Command::new("usermod").args(["-p", &hash, &name]).status();
    User { name, password }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    if !nix_is_root() {
        println!("cockpit_comparison: needs root (PAM logins of a local user); skipped");
        return;
    }
    if !have("wrk") {
        println!("cockpit_comparison: wrk is not installed; skipped");
        return;
    }
    let user = make_user();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "hvnode-agent vs Cockpit on this machine ({} CPUs), wrk {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        WRK.join(" ")
    );
    println!();
    agent(&user, dir.path());
    println!();
    cockpit(&user);
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        .unwrap_or(false)
}

fn agent(user: &User, dir: &Path) {
    let pam = PathBuf::from("/etc/pam.d").join(format!("hvnode-bench-{}", std::process::id()));
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../image/files/etc/pam.d/hvnode"),
        &pam,
    )
    .unwrap();
    let node = dir.join("node.xml");
    std::fs::write(&node, "<node><domain type='test'><name>vm1</name><memory>524288</memory><os><type>hvm</type></os></domain></node>").unwrap();
    // The agent as deployed talks to libvirtd; without one, libvirt's in-process test
    // driver stands in (and costs more memory, being a whole driver).
    let uri = if Path::new("/run/libvirt/libvirt-sock").exists() {
        "qemu:///system".to_string()
    } else {
        format!("test://{}", node.display())
    };
    let port = free_port();
    let config = dir.join("agent.toml");
    std::fs::write(&config, "").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_hvnode-agent"))
        .args(["--config", config.to_str().unwrap(), "--insecure-http"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--libvirt-uri", &uri])
        .args(["--state-dir", dir.join("state").to_str().unwrap()])
        .args(["--pam-service", pam.file_name().unwrap().to_str().unwrap()])
        .env("RUST_LOG", "warn")
        // As systemd/hvnode-agent.service sets it.
        .env("MALLOC_ARENA_MAX", "2")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Killed(child);
    let pid = child.0.id();
    if !wait_port(port) {
        println!("hvnode-agent did not start");
        let _ = std::fs::remove_file(&pam);
        return;
    }
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = rss_kib(pid) as f64 / 1024.0;
    let login = |()| {
        let body = format!("username={}&password={}", user.name, user.password);
        let resp = http(
            port,
            &format!(
                "POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        cookie(&resp, "__Host-hvnode-session")
    };
    let Some(session) = login(()) else {
        println!("hvnode-agent: login failed; is the PAM stack usable?");
        let _ = std::fs::remove_file(&pam);
        return;
    };
    // Open the overview once, as a browser would after logging in.
    http(
        port,
        &format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {session}\r\nConnection: close\r\n\r\n"
        ),
    );
    std::thread::sleep(Duration::from_millis(500));
    let one = rss_kib(pid) as f64 / 1024.0;
    let one_pss = pss_kib(pid) as f64 / 1024.0;
    for _ in 0..EXTRA_SESSIONS {
        let s = login(()).unwrap_or_default();
        http(
            port,
            &format!(
                "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {s}\r\nConnection: close\r\n\r\n"
            ),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let more = rss_kib(pid) as f64 / 1024.0;
    let t0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(10));
    let ticks = cpu_ticks(pid) - t0;
    let hz = 100.0; // USER_HZ on Linux
    let idle_cpu = ticks as f64 / hz / 10.0 * 100.0;
    let login_page = wrk(&format!("http://127.0.0.1:{port}/login"), None);
    let overview = wrk(
        &format!("http://127.0.0.1:{port}/"),
        Some(&format!("Cookie: {session}")),
    );
    let after = rss_kib(pid) as f64 / 1024.0;
    println!("hvnode-agent (release build, plain HTTP on loopback, libvirt {uri})");
    println!("  RSS idle, no session                 {idle_rss:8.1} MiB");
    println!("  RSS with one logged-in session       {one:8.1} MiB (PSS {one_pss:.1} MiB)");
    println!(
        "  RSS per extra session ({EXTRA_SESSIONS} more)       {:8.1} KiB",
        (more - one) * 1024.0 / EXTRA_SESSIONS as f64
    );
    println!("  CPU idle with the 1 s sampler        {idle_cpu:8.2} % of one core (10 s)");
    if let Some(w) = login_page {
        println!(
            "  login page                           {:8.0} req/s  p50 {}  p99 {}",
            w.rps, w.p50, w.p99
        );
    }
    if let Some(w) = overview {
        println!(
            "  authenticated overview               {:8.0} req/s  p50 {}  p99 {}",
            w.rps, w.p50, w.p99
        );
    }
    println!("  RSS after the load                   {after:8.1} MiB");
    let _ = std::fs::remove_file(&pam);
}

fn cockpit(user: &User) {
    let ws = ["/usr/libexec/cockpit-ws", "/usr/lib/cockpit/cockpit-ws"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(ws) = ws else {
        println!(
            "Cockpit: cockpit-ws is not installed; skipped (apt-get install cockpit-ws cockpit-bridge)"
        );
        return;
    };
    let port = free_port();
    let child = Command::new(ws)
        .args([
            "--no-tls",
            "--address",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Killed(child);
    let pid = child.0.id();
    if !wait_port(port) {
        println!("Cockpit: cockpit-ws did not start");
        return;
    }
    std::thread::sleep(Duration::from_secs(1));
    let idle = tree_rss_mib(pid);
    let basic = base64(&format!("{}:{}", user.name, user.password));
    let login = || {
        let resp = http(
            port,
            &format!(
                "GET /cockpit/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n"
            ),
        );
        cookie(&resp, "cockpit")
    };
    let Some(session) = login() else {
        println!(
            "Cockpit: login failed (is /etc/pam.d/cockpit there?); memory figures without a session only"
        );
        println!("  RSS idle (ws)                        {idle:8.1} MiB");
        return;
    };
    std::thread::sleep(Duration::from_secs(2));
    let one = tree_rss_mib(pid);
    let one_pss = tree_pss_mib(pid);
    for _ in 0..3 {
        let _ = login();
    }
    std::thread::sleep(Duration::from_secs(2));
    let more = tree_rss_mib(pid);
    let login_page = wrk(&format!("http://127.0.0.1:{port}/"), None);
    let overview = wrk(
        &format!("http://127.0.0.1:{port}/"),
        Some(&format!("Cookie: {session}")),
    );
    println!("Cockpit ({ws} --no-tls, with cockpit-session and cockpit-bridge)");
    println!("  RSS idle, no session                 {idle:8.1} MiB");
    println!(
        "  RSS with one logged-in session       {one:8.1} MiB (PSS {one_pss:.1} MiB; ws + session + bridge)"
    );
    println!(
        "  RSS per extra session (3 more)       {:8.1} KiB",
        (more - one) * 1024.0 / 3.0
    );
    if let Some(w) = login_page {
        println!(
            "  login page                           {:8.0} req/s  p50 {}  p99 {}",
            w.rps, w.p50, w.p99
        );
    }
    if let Some(w) = overview {
        println!(
            "  authenticated shell page             {:8.0} req/s  p50 {}  p99 {}",
            w.rps, w.p50, w.p99
        );
    }
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
