//! The engine's link as the engine sees it, for the node's own tools: the service
//! writes a [`Status`] to [`STATUS_PATH`] as it changes (certificates loaded or not,
//! a connection opened or closed, a request answered), and `nodectl register
//! --status`, `nodectl check` and the console's Registration page read it.
//!
//! The file lives in the service's runtime directory: systemd removes it when the
//! service stops, so a missing file means the service is not running. Every field
//! has a default, so that a reader and a writer of different versions still
//! understand each other; fields a reader does not know are ignored.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Where the service keeps its status (its RuntimeDirectory, `hvnode-vdsm`).
pub const STATUS_PATH: &str = "/run/hvnode-vdsm/status.json";

/// The mode of the status file: every local user may read it (it holds no secret;
/// the console's web process and nodectl read it), only the service writes it.
const MODE: u32 = 0o644;

/// The service as the engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Status {
    /// The certificates are loaded and TLS connections are served.
    pub serving: bool,
    /// What the service waits for while it does not serve (`keys/vdsmkey.pem is
    /// missing`).
    pub waiting_for: Option<String>,
    /// Engine connections open now.
    pub connections: u32,
    /// The addresses of those connections (`192.0.2.5:40212`).
    pub peers: Vec<String>,
    /// When the last connection was accepted (seconds since the Unix epoch).
    pub last_connected: Option<u64>,
    /// When the last request arrived (seconds since the Unix epoch).
    pub last_request: Option<u64>,
    /// The verb of that request (`Host.getStats`).
    pub last_method: Option<String>,
    /// Requests answered since the service started.
    pub requests: u64,
    /// The cluster levels `Host.getCapabilities` offers (`4.7`).
    pub cluster_levels: Vec<String>,
    /// The cluster level the engine uses; `None` while its verbs do not say.
    pub engine_cluster_level: Option<String>,
    /// The service's process id.
    pub pid: u32,
    /// When the service started (seconds since the Unix epoch).
    pub started: u64,
}

impl Status {
    /// Replaces the file at `path` with this status: a temporary file beside it,
    /// mode 0644 whatever the umask, renamed over it, so that a reader sees the old
    /// status or the new one, never a part.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(self).context("encoding the status")?;
        json.push(b'\n');
        fsutil::write_atomic(
            path,
            &json,
            fsutil::Options {
                mode: MODE,
                owner: None,
                create_parents: false,
            },
        )
        .with_context(|| {
            format!(
                "writing the engine link's status to {} (the service's runtime directory, \
                 RuntimeDirectory=hvnode-vdsm in its unit, must exist and be its own)",
                path.display()
            )
        })
    }

    /// The status at `path`; `None` when there is no file (the service is not
    /// running: systemd removes its runtime directory when it stops).
    pub fn read(path: &Path) -> Result<Option<Status>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading the engine link's status {}", path.display())
                });
            }
        };
        serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "reading the engine link's status {}: not a status hvnode-vdsm writes \
                 (restarting hvnode-vdsm writes it anew)",
                path.display()
            )
        })
    }

    /// What the status says about the engine, at `now` (seconds since the epoch).
    pub fn summary(&self, now: u64) -> Managed {
        if !self.serving {
            return Managed::NotServing {
                waiting_for: self.waiting_for.clone(),
            };
        }
        if self.connections > 0 {
            return Managed::Connected {
                since: self.last_connected.unwrap_or(self.started),
                last_request: self.last_request,
                last_method: self.last_method.clone(),
                connections: self.connections,
                peers: self.peers.clone(),
                now,
            };
        }
        if self.last_connected.is_none() && self.last_request.is_none() {
            return Managed::NoEngineYet {
                started: self.started,
                now,
            };
        }
        Managed::Disconnected {
            last_connected: self.last_connected,
            last_request: self.last_request,
            last_method: self.last_method.clone(),
            now,
        }
    }
}

/// Whether the engine manages the node through the link, as a person asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Managed {
    /// No status file: the service is not running.
    NotRunning,
    /// The status file could not be read.
    Unknown { error: String },
    /// The service does not serve: the engine's certificates are not there (or not
    /// usable).
    NotServing { waiting_for: Option<String> },
    /// It serves, and no engine has connected since it started.
    NoEngineYet { started: u64, now: u64 },
    /// An engine is connected now.
    Connected {
        /// When the last connection was accepted.
        since: u64,
        last_request: Option<u64>,
        last_method: Option<String>,
        connections: u32,
        peers: Vec<String>,
        now: u64,
    },
    /// An engine connected since the service started, and none is connected now.
    Disconnected {
        last_connected: Option<u64>,
        last_request: Option<u64>,
        last_method: Option<String>,
        now: u64,
    },
}

impl Managed {
    /// The state of the status file read: `None` is a service that is not running.
    pub fn of(read: &Result<Option<Status>>, now: u64) -> Managed {
        match read {
            Ok(Some(s)) => s.summary(now),
            Ok(None) => Managed::NotRunning,
            Err(e) => Managed::Unknown {
                error: format!("{e:#}"),
            },
        }
    }

    /// The state in one word, as the JSON outputs give it.
    pub fn name(&self) -> &'static str {
        match self {
            Managed::NotRunning => "not-running",
            Managed::Unknown { .. } => "unknown",
            Managed::NotServing { .. } => "not-serving",
            Managed::NoEngineYet { .. } => "no-engine-yet",
            Managed::Connected { .. } => "connected",
            Managed::Disconnected { .. } => "disconnected",
        }
    }

    /// The line [`Managed`]'s `Display` writes, without its `managed: ` label.
    pub fn describe(&self) -> String {
        match self {
            Managed::NotRunning => "no, hvnode-vdsm is not running (systemctl status \
                                    hvnode-vdsm says why)"
                .to_string(),
            Managed::Unknown { error } => format!("unknown, {error}"),
            Managed::NotServing {
                waiting_for: Some(w),
            } => format!("no, the engine's link is not serving yet: {w}"),
            Managed::NotServing { waiting_for: None } => {
                "no, the engine's link is not serving yet".to_string()
            }
            Managed::NoEngineYet { started, now } => format!(
                "not yet, the engine's link serves and no engine has connected since it \
                 started {}",
                ago(*now, *started)
            ),
            Managed::Connected {
                since,
                last_request,
                last_method,
                connections,
                peers,
                now,
            } => {
                let count = match connections {
                    1 => "1 connection".to_string(),
                    n => format!("{n} connections"),
                };
                let from = if peers.is_empty() {
                    String::new()
                } else {
                    format!(" from {}", peers.join(", "))
                };
                let asked = match last_request {
                    Some(t) => format!("last asked {}{}", ago(*now, *t), method(last_method)),
                    None => format!("connected {}, nothing asked yet", ago(*now, *since)),
                };
                format!("the engine is connected ({count}{from}), {asked}")
            }
            Managed::Disconnected {
                last_connected,
                last_request,
                last_method,
                now,
            } => match (last_request, last_connected) {
                (Some(t), _) => format!(
                    "the engine is not connected now; it last asked {}{}",
                    ago(*now, *t),
                    method(last_method)
                ),
                (None, Some(c)) => format!(
                    "the engine is not connected now; it connected {} and asked nothing",
                    ago(*now, *c)
                ),
                (None, None) => "the engine is not connected now".to_string(),
            },
        }
    }
}

impl fmt::Display for Managed {
    /// One line: `managed: the engine is connected (1 connection from
    /// 192.0.2.5:40212), last asked 3 s ago (Host.getStats)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "managed: {}", self.describe())
    }
}

fn method(m: &Option<String>) -> String {
    m.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
}

/// How long before `now` the time `then` was: `3 s ago`, `5 min ago`, `2 h ago`,
/// `4 d ago` (a time ahead of the clock is `0 s ago`).
pub fn ago(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..60 => format!("{s} s ago"),
        60..3_600 => format!("{} min ago", s / 60),
        3_600..86_400 => format!("{} h ago", s / 3_600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// The engine's link as `nodectl register --status --json` and the console's
/// registration API give it (the `vdsm` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`Managed::name`].
    pub state: &'static str,
    /// [`Managed`]'s line.
    pub summary: String,
    /// The status file; `None` when there is none or it could not be read.
    pub service: Option<Status>,
}

impl Report {
    /// The report of a status file read at `now`.
    pub fn new(read: Result<Option<Status>>, now: u64) -> Report {
        let managed = Managed::of(&read, now);
        Report {
            state: managed.name(),
            summary: managed.to_string(),
            service: read.ok().flatten(),
        }
    }

    /// Reads the status at `path` (under a sysroot, or [`STATUS_PATH`]).
    pub fn load(path: &Path, now: u64) -> Report {
        Report::new(Status::read(path), now)
    }
}

/// Seconds since the Unix epoch, now.
fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The service's side of the status: kept in memory, changed by the certificate
/// watcher, the connections and the verbs, and written by one task
/// ([`Tracker::write_on_change`]), so that an older status never replaces a newer
/// one.
#[derive(Debug)]
pub struct Tracker {
    status: Mutex<Status>,
    changed: tokio::sync::Notify,
}

impl Tracker {
    /// The status of this process, started now, offering `cluster_levels`.
    pub fn new(cluster_levels: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            status: Mutex::new(Status {
                cluster_levels,
                pid: std::process::id(),
                started: epoch_now(),
                ..Status::default()
            }),
            changed: tokio::sync::Notify::new(),
        })
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_one();
    }

    /// The certificates are loaded (`None`), or what the service waits for.
    pub fn serving(&self, waiting_for: Option<String>) {
        self.update(|s| {
            s.serving = waiting_for.is_none();
            s.waiting_for = waiting_for;
        });
    }

    /// An engine connection from `peer` passed its TLS handshake.
    pub fn connected(&self, peer: SocketAddr) {
        self.update(|s| {
            s.connections += 1;
            s.peers.push(peer.to_string());
            s.last_connected = Some(epoch_now());
        });
    }

    /// The connection from `peer` closed.
    pub fn disconnected(&self, peer: SocketAddr) {
        let peer = peer.to_string();
        self.update(|s| {
            s.connections = s.connections.saturating_sub(1);
            if let Some(i) = s.peers.iter().position(|p| *p == peer) {
                s.peers.remove(i);
            }
        });
    }

    /// A request for `method` arrived.
    pub fn request(&self, method: &str) {
        self.update(|s| {
            s.requests += 1;
            s.last_request = Some(epoch_now());
            s.last_method = Some(method.to_string());
        });
    }

    /// What the service holds now.
    pub fn snapshot(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes the status to `path` now and after each change, at most once per
    /// `every` (the engine asks every few seconds). A failure is logged once
    /// until a write succeeds again.
    pub async fn write_on_change(self: Arc<Self>, path: PathBuf, every: Duration) {
        let mut failing = false;
        loop {
            match self.snapshot().write(&path) {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    tracing::warn!("{e:#}");
                    failing = true;
                }
                Err(_) => {}
            }
            self.changed.notified().await;
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NOW: u64 = 1_764_100_000;

    /// A service serving one engine connection, asked 3 s ago.
    fn connected() -> Status {
        Status {
            serving: true,
            waiting_for: None,
            connections: 1,
            peers: vec!["192.0.2.5:40212".into()],
            last_connected: Some(NOW - 600),
            last_request: Some(NOW - 3),
            last_method: Some("Host.getStats".into()),
            requests: 1_234,
            cluster_levels: ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7"]
                .map(String::from)
                .to_vec(),
            engine_cluster_level: None,
            pid: 812,
            started: NOW - 7_200,
        }
    }

    #[test]
    fn a_status_survives_its_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("status.json");
        let s = connected();
        s.write(&path).unwrap();
        assert_eq!(Status::read(&path).unwrap(), Some(s.clone()));
        // Written again over the first, with nothing left beside it.
        let waiting = Status {
            serving: false,
            waiting_for: Some("keys/vdsmkey.pem is missing".into()),
            ..Status::default()
        };
        waiting.write(&path).unwrap();
        assert_eq!(Status::read(&path).unwrap(), Some(waiting));
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["status.json"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"waitingFor\": \"keys/vdsmkey.pem is missing\""));
    }

    #[test]
    fn a_missing_file_is_a_service_not_running() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("status.json");
        assert_eq!(Status::read(&path).unwrap(), None);
        let r = Report::load(&path, NOW);
        assert_eq!((r.state, r.service), ("not-running", None));
        assert!(
            r.summary
                .starts_with("managed: no, hvnode-vdsm is not running")
        );
        // A folder that cannot be written says where and what.
        let err = connected()
            .write(&d.path().join("gone/status.json"))
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("RuntimeDirectory=hvnode-vdsm"),
            "{err:#}"
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_read_alike() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("status.json");
        // A newer writer's field, and none of the fields an older one lacked.
        std::fs::write(
            &path,
            r#"{"serving": true, "connections": 2, "tlsVersion": "1.3", "pid": 7}"#,
        )
        .unwrap();
        let s = Status::read(&path).unwrap().unwrap();
        assert_eq!(
            s,
            Status {
                serving: true,
                connections: 2,
                pid: 7,
                ..Status::default()
            }
        );
        std::fs::write(&path, "{\"serving\": tru").unwrap();
        let err = Status::read(&path).unwrap_err();
        assert!(
            format!("{err:#}").contains("restarting hvnode-vdsm"),
            "{err:#}"
        );
        let r = Report::load(&path, NOW);
        assert_eq!(r.state, "unknown");
        assert!(
            r.summary.starts_with("managed: unknown, reading"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn each_state_has_its_line() {
        type Change = fn(&mut Status);
        let cases: [(&str, &str, Change); 8] = [
            (
                "connected",
                "managed: the engine is connected (1 connection from 192.0.2.5:40212), \
                 last asked 3 s ago (Host.getStats)",
                |_| {},
            ),
            (
                "connected",
                "managed: the engine is connected (2 connections from 192.0.2.5:40212, \
                 192.0.2.6:51000), connected 10 min ago, nothing asked yet",
                |s| {
                    s.connections = 2;
                    s.peers.push("192.0.2.6:51000".into());
                    s.last_request = None;
                    s.last_method = None;
                },
            ),
            (
                "disconnected",
                "managed: the engine is not connected now; it last asked 3 s ago \
                 (Host.getStats)",
                |s| {
                    s.connections = 0;
                    s.peers.clear();
                },
            ),
            (
                "disconnected",
                "managed: the engine is not connected now; it connected 10 min ago and \
                 asked nothing",
                |s| {
                    s.connections = 0;
                    s.last_request = None;
                },
            ),
            (
                "no-engine-yet",
                "managed: not yet, the engine's link serves and no engine has connected \
                 since it started 2 h ago",
                |s| {
                    s.connections = 0;
                    s.last_connected = None;
                    s.last_request = None;
                },
            ),
            (
                "not-serving",
                "managed: no, the engine's link is not serving yet: keys/vdsmkey.pem is \
                 missing",
                |s| {
                    *s = Status {
                        waiting_for: Some("keys/vdsmkey.pem is missing".into()),
                        started: NOW,
                        ..Status::default()
                    }
                },
            ),
            (
                "not-serving",
                "managed: no, the engine's link is not serving yet",
                |s| *s = Status::default(),
            ),
            (
                "connected",
                "managed: the engine is connected (1 connection), last asked 4 d ago",
                |s| {
                    s.peers.clear();
                    s.last_method = None;
                    s.last_request = Some(NOW - 4 * 86_400 - 5);
                },
            ),
        ];
        for (state, line, change) in cases {
            let mut s = connected();
            change(&mut s);
            let m = s.summary(NOW);
            assert_eq!((m.name(), m.to_string().as_str()), (state, line), "{s:?}");
        }
        assert_eq!(Managed::of(&Ok(None), NOW), Managed::NotRunning);
        assert_eq!(
            Report::new(Ok(Some(connected())), NOW).service,
            Some(connected())
        );
    }

    #[test]
    fn ages_read_as_people_say_them() {
        for (secs, want) in [
            (0, "0 s ago"),
            (59, "59 s ago"),
            (60, "1 min ago"),
            (3_599, "59 min ago"),
            (3_600, "1 h ago"),
            (86_399, "23 h ago"),
            (86_400, "1 d ago"),
        ] {
            assert_eq!(ago(NOW, NOW - secs), want);
        }
        // A clock that went back.
        assert_eq!(ago(NOW, NOW + 5), "0 s ago");
    }

    /// The service's tracker: connections counted by peer, requests with their
    /// verb, and the file written by one task after a change.
    #[test]
    fn the_tracker_writes_what_the_connections_and_verbs_did() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let t = Tracker::new(vec!["4.7".into()]);
            tokio::spawn(
                t.clone()
                    .write_on_change(path.clone(), Duration::from_millis(10)),
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            let first = Status::read(&path).unwrap().unwrap();
            assert!(!first.serving);
            assert_eq!(first.cluster_levels, ["4.7"]);
            let a: SocketAddr = "192.0.2.5:40212".parse().unwrap();
            let b: SocketAddr = "192.0.2.6:40000".parse().unwrap();
            t.serving(None);
            t.connected(a);
            t.connected(b);
            t.request("Host.getStats");
            t.disconnected(a);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let s = Status::read(&path).unwrap().unwrap();
            assert!(s.serving && s.waiting_for.is_none());
            assert_eq!((s.connections, s.peers.clone()), (1, vec![b.to_string()]));
            assert_eq!(
                (s.requests, s.last_method.as_deref()),
                (1, Some("Host.getStats"))
            );
            assert!(matches!(s.summary(epoch_now()), Managed::Connected { .. }));
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        });
    }
}
