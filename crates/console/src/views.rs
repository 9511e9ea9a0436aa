//! Data gathered for a page and its JSON twin, shaped once for both.

use serde::Serialize;

use crate::error::ApiError;
use crate::facts::SlowFacts;
use crate::journal::{self, Entry, LogQuery};
use crate::metrics::human_bytes;
use crate::services::{ServiceFilter, Unit};
use crate::state::AppState;
use crate::vms::SecModel;

/// Everything the overview shows except the graphs.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub info: hostinfo::SystemInfo,
    /// The node's health, as `nodectl check` reports it.
    pub health: health::Report,
    pub host_keys: Vec<hostinfo::HostKey>,
    pub sessions: usize,
}

/// The node's health: the layered root's checks when it runs from a layer,
/// and the host's (the same report as `nodectl check`).
pub fn node_health(state: &AppState, slow: &SlowFacts) -> health::Report {
    let snap = state.layers.get(&state.reader);
    health::report(snap.facts.as_ref().ok(), &slow.host)
}

/// Gathers the overview (blocking).
pub fn overview(state: &AppState) -> Result<Overview, ApiError> {
    let info = hostinfo::system_info()?;
    let slow = state
        .facts
        .get(&state.config.ssh_dir, &state.libvirt, &state.reader);
    Ok(Overview {
        health: node_health(state, &slow),
        host_keys: slow.host_keys.clone(),
        sessions: state.session_count(),
        info,
    })
}

/// Serializes a part that may have failed as its value or as `{"error": "..."}`.
fn value_or_error<T: Serialize, S: serde::Serializer>(
    r: &Result<T, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match r {
        Ok(v) => v.serialize(s),
        Err(e) => serde_json::json!({ "error": e }).serialize(s),
    }
}

/// Storage facts, each part with its own error.
#[derive(Debug, Serialize)]
pub struct Storage {
    #[serde(serialize_with = "value_or_error")]
    pub thin_pools: Result<Vec<hostinfo::ThinPool>, String>,
    #[serde(serialize_with = "value_or_error")]
    pub filesystems: Result<Vec<hostinfo::Filesystem>, String>,
    #[serde(serialize_with = "value_or_error")]
    pub block_devices: Result<Vec<hostinfo::BlockDevice>, String>,
}

/// Gathers storage facts, the thin pools through `reader` (blocking).
pub fn storage(reader: &crate::facts::Reader) -> Storage {
    Storage {
        thin_pools: reader.thin_pools(),
        filesystems: hostinfo::filesystems().map_err(|e| e.to_string()),
        block_devices: hostinfo::block_devices().map_err(|e| e.to_string()),
    }
}

#[derive(Debug)]
pub struct PoolRow {
    pub vg: String,
    pub name: String,
    pub size: String,
    pub data_percent: f64,
    pub metadata_percent: f64,
    pub warning: bool,
}

impl From<&hostinfo::ThinPool> for PoolRow {
    fn from(p: &hostinfo::ThinPool) -> Self {
        Self {
            vg: p.vg.clone(),
            name: p.name.clone(),
            size: human_bytes(p.size as f64),
            data_percent: p.data_percent,
            metadata_percent: p.metadata_percent,
            warning: p.warning(),
        }
    }
}

#[derive(Debug)]
pub struct FsRow {
    pub target: String,
    pub source: String,
    pub fstype: String,
    pub size: String,
    pub used_percent: f64,
}

impl From<&hostinfo::Filesystem> for FsRow {
    fn from(f: &hostinfo::Filesystem) -> Self {
        Self {
            target: f.target.clone(),
            source: f.source.clone(),
            fstype: f.fstype.clone(),
            size: human_bytes(f.size as f64),
            used_percent: f.used_percent(),
        }
    }
}

#[derive(Debug)]
pub struct DiskRow {
    pub depth: usize,
    pub name: String,
    pub kind: String,
    pub size: String,
    pub fstype: String,
    pub mounts: String,
    pub model: String,
}

/// Flattens the device tree, children after their parent.
pub fn disk_rows(devs: &[hostinfo::BlockDevice]) -> Vec<DiskRow> {
    fn walk(devs: &[hostinfo::BlockDevice], depth: usize, out: &mut Vec<DiskRow>) {
        for d in devs {
            out.push(DiskRow {
                depth: depth.min(3),
                name: d.name.clone(),
                kind: d.kind.clone(),
                size: human_bytes(d.size as f64),
                fstype: d.fstype.clone().unwrap_or_default(),
                mounts: d.mountpoints.join(", "),
                model: d.model.clone().unwrap_or_default(),
            });
            walk(&d.children, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(devs, 0, &mut out);
    out
}

#[derive(Debug)]
pub struct IfRow {
    pub name: String,
    pub state: String,
    pub addresses: String,
    pub mac: String,
    pub mtu: u32,
    pub rx: String,
    pub tx: String,
    pub errors: u64,
    /// Current traffic, e.g. "↓ 1.2 KiB/s ↑ 300 B/s", from the sampler's last tick.
    pub rate: String,
}

impl IfRow {
    pub fn new(i: &hostinfo::Interface, metrics: &crate::metrics::Metrics) -> Self {
        let c = i.counters.as_ref();
        let rate = metrics
            .interface_rate(&i.name)
            .map(|(rx, tx)| format!("↓ {}/s ↑ {}/s", human_bytes(rx), human_bytes(tx)))
            .unwrap_or_default();
        Self {
            rate,
            name: i.name.clone(),
            state: i.state.clone(),
            addresses: i.addresses.join(", "),
            mac: i.mac.clone(),
            mtu: i.mtu,
            rx: human_bytes(c.map_or(0, |c| c.rx_bytes) as f64),
            tx: human_bytes(c.map_or(0, |c| c.tx_bytes) as f64),
            errors: c.map_or(0, |c| c.rx_errors + c.tx_errors),
        }
    }
}

/// One row of the logs table.
#[derive(Debug, Clone, Serialize)]
pub struct LogRow {
    pub time: String,
    pub priority: u8,
    pub priority_name: &'static str,
    pub source: String,
    pub message: String,
}

impl From<&Entry> for LogRow {
    fn from(e: &Entry) -> Self {
        Self {
            time: format_time_us(e.time_us),
            priority: e.priority,
            priority_name: journal::priority_name(e.priority),
            source: if e.unit.is_empty() {
                e.identifier.clone()
            } else {
                format!("{} ({})", e.identifier, e.unit)
            },
            message: e.message.clone(),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC from microseconds since the epoch.
pub fn format_time_us(us: u64) -> String {
    hostinfo::units::UtcTime::from_unix(us / 1_000_000).to_string()
}

/// The query string that reproduces `q` (for the follow stream).
pub fn log_query_string(q: &LogQuery) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(p) = q.priority {
        pairs.push(("priority", p.to_string()));
    }
    if let Some(u) = q.unit.as_deref().filter(|u| !u.is_empty()) {
        pairs.push(("unit", u.to_string()));
    }
    if let Some(g) = q.grep.as_deref().filter(|g| !g.is_empty()) {
        pairs.push(("grep", g.to_string()));
    }
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// Percent-encodes one path segment.
pub fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Keeps the units that match the filter text and state.
pub fn filter_units(units: Vec<Unit>, q: &ServiceFilter) -> Vec<Unit> {
    let text = q.filter.to_lowercase();
    units
        .into_iter()
        .filter(|u| {
            text.is_empty()
                || u.unit.to_lowercase().contains(&text)
                || u.description.to_lowercase().contains(&text)
        })
        .filter(|u| q.state.is_empty() || u.active == q.state)
        .collect()
}

/// The node page's facts.
#[derive(Debug, Serialize)]
pub struct Node {
    pub image: String,
    pub os: String,
    pub kernel: String,
    pub selinux: hostinfo::Selinux,
    pub libvirt_uri: String,
    #[serde(serialize_with = "value_or_error")]
    pub security_models: Result<Vec<SecModel>, String>,
    pub registration: String,
    /// How the node booted: UEFI or BIOS, Secure Boot, the kernel's lockdown.
    pub firmware: hostinfo::Firmware,
    /// The layered root: layers, boot entries, store and health (`nodectl info` and
    /// `nodectl check`).
    pub layers: crate::node_layers::LayersView,
}

/// One line about the node's registration, from the state `nodectl register --status`
/// reads.
pub fn registration_summary(state: registration::Result<registration::StateFile>) -> String {
    match state {
        Ok(file) => {
            let summary = file.status.summary();
            let mut chars = summary.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        }
        Err(e) => format!("The registration state cannot be read: {e}"),
    }
}

/// Gathers the node page (blocking).
pub fn node(state: &AppState) -> Result<Node, ApiError> {
    let info = hostinfo::system_info()?;
    let mut layers = crate::node_layers::view(&state.layers.get(&state.reader));
    if layers.installed {
        let slow = state
            .facts
            .get(&state.config.ssh_dir, &state.libvirt, &state.reader);
        layers.health = Some(node_health(state, &slow));
    }
    let registration = registration_summary(registration::current_state(
        &registration::Sysroot::new(&state.config.sysroot),
    ));
    Ok(Node {
        image: info
            .image_nvr
            .unwrap_or_else(|| "not an hvnode image".into()),
        os: info.os,
        kernel: info.kernel,
        selinux: hostinfo::selinux(),
        libvirt_uri: state.libvirt.uri().to_string(),
        security_models: state.libvirt.security_models().map_err(|e| e.to_string()),
        registration,
        firmware: hostinfo::firmware::firmware(),
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_lines() {
        let dir = tempfile::tempdir().unwrap();
        let root = registration::Sysroot::new(dir.path());
        assert_eq!(
            registration_summary(registration::current_state(&root)),
            "Not registered with an engine"
        );
        let path = root.path(registration::STATE_PATH);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{").unwrap();
        assert!(
            registration_summary(registration::current_state(&root)).contains("cannot be read")
        );
    }

    #[test]
    fn time_formatting() {
        assert_eq!(format_time_us(0), "1970-01-01 00:00:00");
        assert_eq!(format_time_us(1_764_100_000_000_000), "2025-11-25 19:46:40");
        assert_eq!(format_time_us(951_782_400_000_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("vm 1/x"), "vm%201%2Fx");
        assert_eq!(path_segment("ok-name_1.2"), "ok-name_1.2");
    }

    #[test]
    fn log_query_round_trip() {
        let q = LogQuery {
            priority: Some(3),
            unit: Some("a b".into()),
            grep: None,
            lines: None,
        };
        assert_eq!(log_query_string(&q), "priority=3&unit=a+b");
    }

    #[test]
    fn unit_filter() {
        let u = |n: &str, a: &str| Unit {
            unit: n.into(),
            load: "loaded".into(),
            active: a.into(),
            sub: String::new(),
            description: "Desc".into(),
            enabled: String::new(),
        };
        let all = vec![u("ssh.service", "active"), u("libvirtd.service", "failed")];
        let q = ServiceFilter {
            filter: "LIBVIRT".into(),
            state: String::new(),
        };
        assert_eq!(filter_units(all.clone(), &q).len(), 1);
        let q = ServiceFilter {
            filter: String::new(),
            state: "active".into(),
        };
        assert_eq!(filter_units(all, &q)[0].unit, "ssh.service");
    }
}
