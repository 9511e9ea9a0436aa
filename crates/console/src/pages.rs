//! The server-rendered pages.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use health::Status;
use serde::Deserialize;

use crate::error::{ApiError, parse_form};
use crate::journal::{self, LogQuery};
use crate::metrics::{Point, human_bytes, nice_max, polyline};
use crate::services::{self, ServiceFilter};
use crate::state::{Authed, Shared};
use crate::views;
use crate::vms::{VirtError, Vm, VmAction};

/// The sections of the left navigation: path and label.
pub const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/vms", "Virtual machines"),
    ("/pools", "Pools and networks"),
    ("/services", "Services"),
    ("/logs", "Logs"),
    ("/selinux", "SELinux"),
    ("/storage", "Storage"),
    ("/networking", "Networking"),
    ("/node", "Node"),
    ("/registration", "Registration"),
    ("/terminal", "Terminal"),
];

/// What the frame around every page needs.
#[derive(Debug, Clone)]
pub struct PageCtx {
    pub title: &'static str,
    pub active: &'static str,
    pub user: String,
    pub csrf: String,
    pub hostname: String,
    /// Whether the session has administrative access: the top bar says which mode it
    /// is in, and the actions of a limited session are disabled.
    pub admin: bool,
}

impl PageCtx {
    pub fn new(authed: &Authed, active: &'static str) -> Self {
        let title = NAV
            .iter()
            .find(|(href, _)| *href == active)
            .map(|(_, label)| *label)
            .unwrap_or("hvnode");
        Self {
            title,
            active,
            user: authed.session.user.clone(),
            csrf: authed.session.csrf.clone(),
            admin: authed.session.is_admin(),
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    pub fn nav(&self) -> &'static [(&'static str, &'static str)] {
        NAV
    }
}

/// Renders a template; a rendering failure (a bug, not bad input) is logged and shown
/// as a short message rather than a panic.
pub fn render<T: Template>(t: &T) -> Html<String> {
    match t.render() {
        Ok(s) => Html(s),
        Err(e) => {
            tracing::error!("rendering a page: {e}");
            Html(
                "<!doctype html><title>Error</title><p>This page could not be rendered.</p>".into(),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: PageCtx,
    message: String,
    back: &'static str,
}

/// An error shown inside the console's frame with the right status.
pub fn error_page(page: PageCtx, err: &ApiError, back: &'static str) -> Response {
    let status = err.status();
    let t = ErrorPage {
        page,
        message: err.to_string(),
        back,
    };
    (status, render(&t)).into_response()
}

/// One live graph of the overview.
#[derive(Debug)]
pub struct Graph {
    pub id: &'static str,
    pub title: &'static str,
    /// Point fields drawn, comma-separated (the script redraws from them).
    pub keys: &'static str,
    /// `percent`, `memory` or `rate`.
    pub scale: &'static str,
    pub series: Vec<String>,
    pub now: String,
    pub legend: &'static str,
    /// What the top of the graph stands for.
    pub top: String,
}

/// The four graphs of the overview from the sampler's history.
pub fn graphs(history: &[Point]) -> Vec<Graph> {
    let col = |f: fn(&Point) -> f64| history.iter().map(f).collect::<Vec<f64>>();
    let last = history.last().copied().unwrap_or_default();
    let cpu = col(|p| p.cpu_percent);
    let mem = col(|p| p.mem_used as f64);
    let mem_max = history
        .iter()
        .map(|p| p.mem_total as f64)
        .fold(0.0, f64::max);
    let (rx, tx) = (col(|p| p.net_rx_bps), col(|p| p.net_tx_bps));
    let (rd, wr) = (col(|p| p.disk_read_bps), col(|p| p.disk_write_bps));
    let net_max = nice_max(&[rx.clone(), tx.clone()].concat());
    let disk_max = nice_max(&[rd.clone(), wr.clone()].concat());
    vec![
        Graph {
            id: "cpu",
            title: "CPU",
            keys: "cpu_percent",
            scale: "percent",
            series: vec![polyline(&cpu, 100.0)],
            now: format!("{:.0} %", last.cpu_percent),
            legend: "busy, % of all processors",
            top: "100 %".into(),
        },
        Graph {
            id: "memory",
            title: "Memory",
            keys: "mem_used",
            scale: "memory",
            series: vec![polyline(&mem, mem_max)],
            now: format!(
                "{} of {}",
                human_bytes(last.mem_used as f64),
                human_bytes(last.mem_total as f64)
            ),
            legend: "in use",
            top: human_bytes(mem_max),
        },
        Graph {
            id: "network",
            title: "Network",
            keys: "net_rx_bps,net_tx_bps",
            scale: "rate",
            series: vec![polyline(&rx, net_max), polyline(&tx, net_max)],
            now: format!(
                "↓ {}/s ↑ {}/s",
                human_bytes(last.net_rx_bps),
                human_bytes(last.net_tx_bps)
            ),
            legend: "received (solid), sent (dashed)",
            top: format!("{}/s", human_bytes(net_max)),
        },
        Graph {
            id: "disk",
            title: "Disk I/O",
            keys: "disk_read_bps,disk_write_bps",
            scale: "rate",
            series: vec![polyline(&rd, disk_max), polyline(&wr, disk_max)],
            now: format!(
                "r {}/s w {}/s",
                human_bytes(last.disk_read_bps),
                human_bytes(last.disk_write_bps)
            ),
            legend: "read (solid), written (dashed)",
            top: format!("{}/s", human_bytes(disk_max)),
        },
    ]
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    page: PageCtx,
    info: hostinfo::SystemInfo,
    image: String,
    uptime: String,
    memory: String,
    health: health::Report,
    host_keys: Vec<hostinfo::HostKey>,
    graphs: Vec<Graph>,
}

/// `GET /`.
pub async fn overview(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
) -> Response {
    let page = PageCtx::new(&authed, "/");
    let st = state.clone();
    let data = tokio::task::spawn_blocking(move || views::overview(&st)).await;
    let data = match data {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return error_page(page, &e, "/"),
        Err(e) => return error_page(page, &ApiError::Failed(e.to_string()), "/"),
    };
    let t = OverviewPage {
        page,
        image: data
            .info
            .image_nvr
            .clone()
            .unwrap_or_else(|| "not an hvnode image".into()),
        uptime: hostinfo::format_uptime(data.info.uptime_secs),
        memory: format!(
            "{} of {} in use",
            human_bytes(data.info.memory.used() as f64),
            human_bytes(data.info.memory.total as f64)
        ),
        health: data.health,
        host_keys: data.host_keys,
        graphs: graphs(&state.metrics.history()),
        info: data.info,
    };
    render(&t).into_response()
}

#[derive(Template)]
#[template(path = "vms.html")]
struct VmsPage {
    page: PageCtx,
    uri: String,
    vms: Vec<Vm>,
    error: Option<String>,
}

/// `GET /vms`.
pub async fn vms(State(state): State<Shared>, Extension(authed): Extension<Authed>) -> Response {
    let lv = state.libvirt.clone();
    let result = tokio::task::spawn_blocking(move || lv.list())
        .await
        .unwrap_or_else(|e| Err(VirtError::Failed(e.to_string())));
    let (vms, error) = match result {
        Ok(v) => (v, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let t = VmsPage {
        page: PageCtx::new(&authed, "/vms"),
        uri: state.libvirt.uri().to_string(),
        vms,
        error,
    };
    render(&t).into_response()
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    page: PageCtx,
    question: String,
    action: String,
    button: &'static str,
    back: &'static str,
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// Whether a form posted `confirm=yes` (the confirmation page's button).
pub fn confirmed(body: &[u8]) -> Result<bool, ApiError> {
    let f: ConfirmForm = parse_form(body)?;
    Ok(f.confirm.as_deref() == Some("yes"))
}

/// A confirmation page whose button posts to `action` again with `confirm=yes`.
pub fn confirm(
    page: PageCtx,
    question: String,
    action: String,
    button: &'static str,
    back: &'static str,
) -> Response {
    render(&ConfirmPage {
        page,
        question,
        action,
        button,
        back,
    })
    .into_response()
}

/// `POST /vms/{name}/{action}`: asks for confirmation, then acts.
pub async fn vm_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/vms");
    let action: VmAction = match action.parse() {
        Ok(a) => a,
        Err(e) => return error_page(page, &ApiError::BadRequest(e), "/vms"),
    };
    let confirm = match confirmed(&body) {
        Ok(c) => c,
        Err(e) => return error_page(page, &e, "/vms"),
    };
    let lv = state.libvirt.clone();
    if !confirm {
        let n = name.clone();
        let exists = tokio::task::spawn_blocking(move || lv.get(&n))
            .await
            .unwrap_or_else(|e| Err(VirtError::Failed(e.to_string())));
        if let Err(e) = exists {
            return error_page(page, &e.into(), "/vms");
        }
        let warning = match action {
            VmAction::ForceOff => {
                " This is like pulling the power plug: unsaved data in the guest is lost."
            }
            VmAction::Shutdown => " The guest is asked to shut down by itself.",
            VmAction::Reboot => " The guest is asked to reboot.",
            VmAction::Pause => " Its vCPUs stop; its memory is kept until it resumes.",
            VmAction::Start | VmAction::Resume => "",
        };
        let t = ConfirmPage {
            question: format!("{} virtual machine “{name}”?{warning}", action.label()),
            action: format!("/vms/{}/{}", views::path_segment(&name), action.as_str()),
            button: action.label(),
            back: "/vms",
            page,
        };
        return render(&t).into_response();
    }
    match crate::privileged::vm_action(&state, &authed.token, &name, action).await {
        Ok(()) => Redirect::to("/vms").into_response(),
        Err(e) => error_page(page, &e, "/vms"),
    }
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage {
    page: PageCtx,
    filter: String,
    states: Vec<(&'static str, &'static str, bool)>,
    units: Vec<services::Unit>,
    error: Option<String>,
}

/// `GET /services`.
pub async fn services(
    Extension(authed): Extension<Authed>,
    query: Result<Query<ServiceFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let page = PageCtx::new(&authed, "/services");
    let Ok(Query(q)) = query else {
        return error_page(
            page,
            &ApiError::BadRequest("malformed query".into()),
            "/services",
        );
    };
    let result = tokio::task::spawn_blocking(services::list_units)
        .await
        .unwrap_or_else(|e| {
            Err(command::CommandError::new(
                &std::process::Command::new("systemctl"),
                e.to_string(),
            ))
        });
    let (units, error) = match result {
        Ok(u) => (views::filter_units(u, &q), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let states = ["", "active", "inactive", "failed"]
        .into_iter()
        .map(|s| (s, if s.is_empty() { "all states" } else { s }, s == q.state))
        .collect();
    let t = ServicesPage {
        page,
        filter: q.filter,
        states,
        units,
        error,
    };
    render(&t).into_response()
}

/// `POST /services/{unit}/{action}`: stopping, restarting or disabling a unit asks
/// for confirmation first.
pub async fn service_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((unit, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/services");
    let confirm = match confirmed(&body) {
        Ok(c) => c,
        Err(e) => return error_page(page, &e, "/services"),
    };
    let disruptive = matches!(action.as_str(), "stop" | "restart" | "disable");
    if disruptive && !confirm && services::valid_unit_name(&unit) {
        let warning = if unit == "hvnode-agent.service" {
            " This console runs in that service: the page goes away with it."
        } else if matches!(unit.as_str(), "ssh.service" | "sshd.service") {
            " Remote shells depend on it."
        } else {
            ""
        };
        let t = ConfirmPage {
            question: format!("{} the unit {unit}?{warning}", capitalised(&action)),
            action: format!("/services/{}/{action}", views::path_segment(&unit)),
            button: match action.as_str() {
                "stop" => "Stop",
                "restart" => "Restart",
                _ => "Disable",
            },
            back: "/services",
            page,
        };
        return render(&t).into_response();
    }
    match crate::privileged::unit_action(&state, &authed.token, &unit, &action).await {
        Ok(()) => Redirect::to("/services").into_response(),
        Err(e) => error_page(page, &e, "/services"),
    }
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    page: PageCtx,
    priorities: Vec<(String, &'static str, bool)>,
    unit: String,
    grep: String,
    query: String,
    entries: Vec<views::LogRow>,
    error: Option<String>,
}

/// `GET /logs`.
pub async fn logs(
    Extension(authed): Extension<Authed>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let page = PageCtx::new(&authed, "/logs");
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error_page(page, &ApiError::BadRequest(e.body_text()), "/logs"),
    };
    if let Err(e) = q.validate() {
        return error_page(page, &ApiError::BadRequest(e), "/logs");
    }
    let q2 = q.clone();
    let result = tokio::task::spawn_blocking(move || journal::read(&q2))
        .await
        .unwrap_or_else(|e| {
            Err(command::CommandError::new(
                &std::process::Command::new("journalctl"),
                e.to_string(),
            ))
        });
    let (entries, error) = match result {
        Ok(e) => (e.iter().rev().map(views::LogRow::from).collect(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let mut priorities = vec![(String::new(), "all priorities", q.priority.is_none())];
    priorities.extend((0..=7u8).map(|p| {
        (
            p.to_string(),
            journal::priority_name(p),
            q.priority == Some(p),
        )
    }));
    let t = LogsPage {
        page,
        priorities,
        unit: q.unit.clone().unwrap_or_default(),
        grep: q.grep.clone().unwrap_or_default(),
        query: views::log_query_string(&q),
        entries,
        error,
    };
    render(&t).into_response()
}

#[derive(Template)]
#[template(path = "storage.html")]
struct StoragePage {
    page: PageCtx,
    pools: Vec<views::PoolRow>,
    pools_error: Option<String>,
    filesystems: Vec<views::FsRow>,
    fs_error: Option<String>,
    disks: Vec<views::DiskRow>,
    disks_error: Option<String>,
    warn_percent: f64,
}

/// `GET /storage`.
pub async fn storage(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
) -> Response {
    let page = PageCtx::new(&authed, "/storage");
    let s = tokio::task::spawn_blocking(move || views::storage(&state.reader)).await;
    let Ok(s) = s else {
        return error_page(page, &ApiError::Failed("storage scan failed".into()), "/");
    };
    let (pools, pools_error) = split(
        s.thin_pools
            .map(|p| p.iter().map(views::PoolRow::from).collect()),
    );
    let (filesystems, fs_error) = split(
        s.filesystems
            .map(|f| f.iter().map(views::FsRow::from).collect()),
    );
    let (disks, disks_error) = split(s.block_devices.map(|d| views::disk_rows(&d)));
    let t = StoragePage {
        page,
        pools,
        pools_error,
        filesystems,
        fs_error,
        disks,
        disks_error,
        warn_percent: hostinfo::THIN_POOL_WARN_PERCENT,
    };
    render(&t).into_response()
}

#[derive(Template)]
#[template(path = "networking.html")]
struct NetworkingPage {
    page: PageCtx,
    interfaces: Vec<views::IfRow>,
    error: Option<String>,
}

/// `GET /networking`.
pub async fn networking(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
) -> Response {
    let page = PageCtx::new(&authed, "/networking");
    let r = tokio::task::spawn_blocking(hostinfo::interfaces).await;
    let (interfaces, error) = match r {
        Ok(Ok(i)) => (
            i.iter()
                .map(|i| views::IfRow::new(i, &state.metrics))
                .collect(),
            None,
        ),
        Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    render(&NetworkingPage {
        page,
        interfaces,
        error,
    })
    .into_response()
}

#[derive(Template)]
#[template(path = "node.html")]
pub(crate) struct NodePage {
    pub(crate) page: PageCtx,
    pub(crate) image: String,
    pub(crate) os: String,
    pub(crate) kernel: String,
    pub(crate) selinux: hostinfo::Selinux,
    pub(crate) libvirt_uri: String,
    pub(crate) secmodels: String,
    pub(crate) registration: String,
    /// [`hostinfo::Firmware::summary`].
    pub(crate) firmware: String,
    pub(crate) layers: crate::node_layers::LayersView,
}

/// `GET /node`.
pub async fn node(State(state): State<Shared>, Extension(authed): Extension<Authed>) -> Response {
    let page = PageCtx::new(&authed, "/node");
    let st = state.clone();
    let n = match tokio::task::spawn_blocking(move || views::node(&st)).await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return error_page(page, &e, "/"),
        Err(e) => return error_page(page, &ApiError::Failed(e.to_string()), "/"),
    };
    let secmodels = match &n.security_models {
        Ok(m) if m.is_empty() => "none".to_string(),
        Ok(m) => m
            .iter()
            .map(|m| m.model.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => e.clone(),
    };
    render(&NodePage {
        page,
        image: n.image.clone(),
        os: n.os.clone(),
        kernel: n.kernel.clone(),
        selinux: n.selinux.clone(),
        libvirt_uri: state.libvirt.uri().to_string(),
        secmodels,
        registration: n.registration.clone(),
        firmware: n.firmware.summary(),
        layers: n.layers,
    })
    .into_response()
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn split<T>(r: Result<Vec<T>, String>) -> (Vec<T>, Option<String>) {
    match r {
        Ok(v) => (v, None),
        Err(e) => (Vec::new(), Some(e)),
    }
}

/// The point fields the overview's script reads (kept in one place with the graphs).
pub const METRIC_KEYS: &[&str] = &[
    "cpu_percent",
    "mem_used",
    "net_rx_bps",
    "net_tx_bps",
    "disk_read_bps",
    "disk_write_bps",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphs_from_history() {
        let h: Vec<Point> = (0..3)
            .map(|i| Point {
                t: i,
                cpu_percent: 50.0,
                mem_used: 1 << 30,
                mem_total: 2 << 30,
                net_rx_bps: 2048.0,
                ..Point::default()
            })
            .collect();
        let g = graphs(&h);
        assert_eq!(g.len(), 4);
        assert_eq!(g[0].series[0], "297,50.0 298,50.0 299,50.0");
        assert_eq!(g[1].now, "1.0 GiB of 2.0 GiB");
        assert_eq!(g[1].top, "2.0 GiB");
        assert_eq!(g[2].top, "2.0 KiB/s");
        assert_eq!(g[2].series.len(), 2);
        for gr in &g {
            for key in gr.keys.split(',') {
                assert!(METRIC_KEYS.contains(&key), "{key}");
            }
        }
        assert_eq!(crate::metrics::HISTORY, 300);
    }
}
