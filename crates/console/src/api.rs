//! The JSON API under `/api/v1`: the same data as the pages, behind the same session.
//! Every response is an object; failures are `{"error": "...", "status": N}`.

use std::convert::Infallible;
use std::process::Stdio;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::journal::{self, LogQuery};
use crate::services::ServiceFilter;
use crate::state::{Authed, Shared};
use crate::views;
use crate::vms::{VirtError, VmAction};

/// The version reported in every top-level object.
pub const API_VERSION: &str = "hvnode.console/v1";

impl From<VirtError> for ApiError {
    fn from(e: VirtError) -> Self {
        match e {
            VirtError::NoSuchVm(_) => Self::NotFound(e.to_string()),
            VirtError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            VirtError::Failed(m) => Self::Failed(m),
        }
    }
}

/// Runs blocking work (programs, libvirt calls) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Failed(format!("worker failed: {e}")))?
}

/// A successful answer of `kind`.
pub(crate) fn ok(kind: &str, value: serde_json::Value) -> Response {
    Json(json!({ "apiVersion": API_VERSION, "kind": kind, "data": value })).into_response()
}

pub(crate) fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// What `GET /api/v1/session` answers, with `admin` whether the session has
/// administrative access.
pub(crate) fn session_view(a: &Authed, admin: bool) -> serde_json::Value {
    json!({ "user": a.session.user, "csrf": a.session.csrf, "admin": admin })
}

/// `GET /api/v1/session`: who is logged in, the CSRF token for state changes, and
/// whether the session has administrative access (`admin`; every session starts
/// without, limited to looking).
pub async fn session(Extension(a): Extension<Authed>) -> Response {
    ok("Session", session_view(&a, a.session.is_admin()))
}

/// `GET /api/v1/overview`.
pub async fn overview(State(state): State<Shared>) -> Result<Response, ApiError> {
    let st = state.clone();
    let o = blocking(move || views::overview(&st)).await?;
    Ok(ok("Overview", to_value(&o)))
}

/// `GET /api/v1/metrics`: the last five minutes, one point per second.
pub async fn metrics(State(state): State<Shared>) -> Response {
    ok("Metrics", to_value(&state.metrics.history()))
}

fn session_alive(state: &Shared, token: &str) -> bool {
    let idle = state.config.idle_timeout();
    state
        .sessions
        .lock()
        .ok()
        .and_then(|mut s| s.get(token, idle, false))
        .is_some()
}

/// `GET /api/v1/metrics/stream`: server-sent events, one `point` per second, until
/// the session ends.
pub async fn metrics_stream(
    State(state): State<Shared>,
    Extension(a): Extension<Authed>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.metrics.subscribe();
    let s = stream::unfold((rx, state, a.token), |(mut rx, state, token)| async move {
        loop {
            if !session_alive(&state, &token) {
                return None;
            }
            match rx.recv().await {
                Ok(p) => {
                    let ev = Event::default().event("point").json_data(p).ok()?;
                    return Some((Ok(ev), (rx, state, token)));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /api/v1/vms`.
pub async fn vms(State(state): State<Shared>) -> Result<Response, ApiError> {
    let lv = state.libvirt.clone();
    let vms = blocking(move || lv.list().map_err(ApiError::from)).await?;
    Ok(ok(
        "VirtualMachineList",
        json!({ "uri": state.libvirt.uri(), "items": vms }),
    ))
}

/// `GET /api/v1/vms/{name}`: the list's facts of the VM and what its VM page shows
/// (`crate::vm_detail`).
pub async fn vm(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let lv = state.libvirt.clone();
    let vm = blocking(move || crate::vm_detail::read(&lv, &name).map_err(ApiError::from)).await?;
    Ok(ok("VirtualMachine", to_value(&vm)))
}

/// `POST /api/v1/vms/{name}/{action}` (`X-CSRF-Token` required): start, shutdown,
/// force-off, reboot, pause or resume. The API caller has confirmed by calling.
pub async fn vm_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let action: VmAction = action.parse().map_err(ApiError::BadRequest)?;
    crate::privileged::vm_action(&state, &authed.token, &name, action).await?;
    let lv = state.libvirt.clone();
    let vm = blocking(move || crate::vm_detail::read(&lv, &name).map_err(ApiError::from)).await?;
    Ok(ok("VirtualMachine", to_value(&vm)))
}

/// `GET /api/v1/services?filter=&state=`.
pub async fn services(
    query: Result<Query<ServiceFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let units = blocking(|| crate::services::list_units().map_err(ApiError::from)).await?;
    Ok(ok(
        "UnitList",
        json!({ "items": views::filter_units(units, &q) }),
    ))
}

/// `POST /api/v1/services/{unit}/{action}`.
pub async fn service_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((unit, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let echo = json!({ "unit": unit, "action": action });
    crate::privileged::unit_action(&state, &authed.token, &unit, &action).await?;
    Ok(ok("UnitAction", echo))
}

/// `GET /api/v1/logs?priority=&unit=&grep=&lines=`.
pub async fn logs(query: Result<Query<LogQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    q.validate().map_err(ApiError::BadRequest)?;
    let entries = blocking(move || journal::read(&q).map_err(ApiError::from)).await?;
    Ok(ok("LogEntryList", json!({ "items": entries })))
}

/// `GET /api/v1/logs/stream?…`: new journal entries as server-sent events.
pub async fn logs_stream(
    State(state): State<Shared>,
    Extension(a): Extension<Authed>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    q.validate().map_err(ApiError::BadRequest)?;
    let mut cmd = tokio::process::Command::new("journalctl");
    cmd.args(q.args(true))
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::Failed(format!("journalctl could not be started: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ApiError::Failed("journalctl gave no output pipe".into()))?;
    let lines = BufReader::new(stdout).lines();
    let s = stream::unfold(
        (lines, child, state, a.token),
        |(mut lines, child, state, token)| async move {
            loop {
                if !session_alive(&state, &token) {
                    return None;
                }
                let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await;
                match line {
                    // Nothing new: look at the session again.
                    Err(_) => continue,
                    Ok(Ok(Some(l))) => {
                        let Some(e) = journal::parse_entry(&l) else {
                            continue;
                        };
                        let row = views::LogRow::from(&e);
                        let ev = Event::default().event("entry").json_data(row).ok()?;
                        return Some((Ok::<_, Infallible>(ev), (lines, child, state, token)));
                    }
                    Ok(_) => return None,
                }
            }
        },
    );
    Ok(Sse::new(s)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// `GET /api/v1/storage`.
pub async fn storage(State(state): State<Shared>) -> Result<Response, ApiError> {
    let s = blocking(move || Ok(views::storage(&state.reader))).await?;
    Ok(ok("Storage", to_value(&s)))
}

/// `GET /api/v1/network`: interfaces, and each one's traffic at the last sample.
pub async fn network(State(state): State<Shared>) -> Result<Response, ApiError> {
    let i = blocking(|| hostinfo::interfaces().map_err(ApiError::from)).await?;
    let rates: serde_json::Map<String, serde_json::Value> = i
        .iter()
        .filter_map(|i| {
            let (rx, tx) = state.metrics.interface_rate(&i.name)?;
            Some((i.name.clone(), json!({ "rx_bps": rx, "tx_bps": tx })))
        })
        .collect();
    Ok(ok("InterfaceList", json!({ "items": i, "rates": rates })))
}

/// `GET /api/v1/node`.
pub async fn node(State(state): State<Shared>) -> Result<Response, ApiError> {
    let st = state.clone();
    let n = blocking(move || views::node(&st)).await?;
    Ok(ok("Node", to_value(&n)))
}
