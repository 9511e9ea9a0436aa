//! The SELinux page (`GET /selinux`) and `GET /api/v1/selinux/denials`: the AVC
//! denials of the last week from the journal (the kernel's audit lines, and
//! journald's audit records where its audit socket runs), folded into one entry per
//! process, permission and object, each explained in one line with the boolean or
//! label that would allow it where one exists (crate `avc`). The node sells
//! "SELinux enforcing with sVirt": when it refuses something, the admin sees why.

use std::process::Command;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use command::{CommandError, CommandExt};
use serde::Serialize;
use serde_json::json;

use crate::api::{blocking, ok};
use crate::error::ApiError;
use crate::pages::{PageCtx, render};
use crate::state::{Authed, Shared};

/// How far back the page looks, as `journalctl --since` takes it.
pub const SINCE: &str = "-7d";
/// The most journal lines read, the newest (kernel and audit messages only).
const MAX_LINES: &str = "20000";

/// One folded denial as the page and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct DenialView {
    pub summary: String,
    pub count: u64,
    /// Seconds since the epoch.
    pub first: Option<f64>,
    pub last: Option<f64>,
    pub process: Option<String>,
    pub pid: Option<u32>,
    pub permissions: Vec<String>,
    pub class: String,
    pub object: Option<String>,
    pub source_context: String,
    pub target_context: String,
    pub permissive: bool,
    pub fix: avc::Fix,
}

/// The denials in `lines` (journal messages), folded and explained, most recent
/// first.
pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<DenialView> {
    avc::group(lines.into_iter().filter_map(avc::parse))
        .into_iter()
        .map(|g| {
            let e = avc::explain(&g.denial);
            let d = g.denial;
            DenialView {
                summary: e.summary,
                count: g.count,
                first: g.first,
                last: g.last,
                process: d.comm,
                pid: d.pid,
                permissions: d.permissions,
                class: d.tclass,
                object: d.path.or(d.name),
                source_context: d.scontext,
                target_context: d.tcontext,
                permissive: d.permissive,
                fix: e.fix,
            }
        })
        .collect()
}

/// The kernel's and the audit subsystem's journal messages of the last week.
fn journal_lines() -> Result<String, CommandError> {
    Command::new("journalctl")
        .args([
            "--no-pager",
            "--quiet",
            "--reverse",
            "-o",
            "cat",
            &format!("--since={SINCE}"),
            "-n",
            MAX_LINES,
            "_TRANSPORT=kernel",
            "_TRANSPORT=audit",
        ])
        .stdin_closed()
        .c_locale()
        .run_capture()
}

/// SELinux's mode and the denials.
pub fn read() -> Result<(String, Vec<DenialView>), ApiError> {
    let mode = hostinfo::selinux().mode;
    let text = journal_lines().map_err(|e| {
        ApiError::Failed(format!(
            "reading the journal for SELinux denials: {e}; check that the console's user may \
             read the journal (group systemd-journal)"
        ))
    })?;
    Ok((mode, from_lines(text.lines())))
}

/// `GET /api/v1/selinux/denials`.
pub async fn api(State(_state): State<Shared>) -> Result<Response, ApiError> {
    let (mode, items) = blocking(read).await?;
    Ok(ok(
        "SelinuxDenialList",
        json!({ "mode": mode, "since": SINCE, "items": items }),
    ))
}

#[derive(Template)]
#[template(path = "selinux.html")]
struct SelinuxPage {
    page: PageCtx,
    mode: String,
    denials: Vec<DenialView>,
    error: Option<String>,
}

/// `GET /selinux`.
pub async fn page(Extension(authed): Extension<Authed>) -> Response {
    let page = PageCtx::new(&authed, "/selinux");
    let (mode, denials, error) = match blocking(read).await {
        Ok((m, d)) => (m, d, None),
        Err(e) => (hostinfo::selinux().mode, Vec::new(), Some(e.to_string())),
    };
    render(&SelinuxPage {
        page,
        mode,
        denials,
        error,
    })
    .into_response()
}

/// A time as the page shows it (UTC).
pub fn when(t: &Option<f64>) -> String {
    t.and_then(|s| chrono_like(s as i64)).unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS` UTC of a Unix time.
fn chrono_like(secs: i64) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Some(format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn journal_messages_become_explained_entries() {
        let lines = [
            "eth0: link up",
            "audit: type=1400 audit(1767225600.512:231): avc:  denied  { read } for  pid=812 \
             comm=\"qemu-system-x86\" path=\"/srv/vm/a.img\" dev=\"vda3\" ino=131 \
             scontext=system_u:system_r:svirt_t:s0:c1,c2 tcontext=system_u:object_r:var_t:s0 \
             tclass=file permissive=0",
            "audit: type=1400 audit(1767225660.000:232): avc:  denied  { read } for  pid=812 \
             comm=\"qemu-system-x86\" path=\"/srv/vm/a.img\" dev=\"vda3\" ino=131 \
             scontext=system_u:system_r:svirt_t:s0:c1,c2 tcontext=system_u:object_r:var_t:s0 \
             tclass=file permissive=0",
        ];
        let d = from_lines(lines);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].count, 2);
        assert_eq!(d[0].object.as_deref(), Some("/srv/vm/a.img"));
        assert_eq!(d[0].fix.kind, avc::FixKind::Label);
        assert_eq!(when(&d[0].first), "2026-01-01 00:00:00");
        assert_eq!(when(&d[0].last), "2026-01-01 00:01:00");
    }
}
