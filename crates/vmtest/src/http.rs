//! A small static file server on 127.0.0.1 for guests to fetch from (the
//! PXE root image, kickstarts): qemu's user-mode network maps the guest's
//! 10.0.2.2 to the host's loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

/// Serves `root` under URL `prefix` until dropped.
#[derive(Debug)]
pub struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn respond(mut s: TcpStream, root: &Path, prefix: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(s.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let file = path
        .strip_prefix(prefix)
        .filter(|rel| !rel.split('/').any(|c| c == ".."))
        .map(|rel| root.join(rel.trim_start_matches('/')));
    match file.filter(|f| f.is_file()) {
        Some(f) if method == "GET" || method == "HEAD" => {
            let len = std::fs::metadata(&f)?.len();
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            )?;
            if method == "GET" {
                std::io::copy(&mut std::fs::File::open(&f)?, &mut s)?;
            }
        }
        _ => {
            write!(
                s,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
    }
    s.flush()
}

impl Server {
    /// Listens on 127.0.0.1:`port` (0: any free port).
    pub fn start(root: &Path, prefix: &str, port: u16) -> Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let root: PathBuf = root.to_path_buf();
        let prefix = prefix.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let root = root.clone();
                        let prefix = prefix.clone();
                        std::thread::spawn(move || {
                            if let Err(e) = respond(s, &root, &prefix) {
                                tracing::debug!("http: {e}");
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
                }
            }
        });
        Ok(Server {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
