//! "Download diagnostic report" (`POST /api/v1/diagnostics`, the Node page's
//! button): `nodectl diagnostics -o -` streamed as the answer's body, a gzip'd
//! tar (`Content-Disposition: attachment`). The report reads what only root may
//! (the journal, libvirt's logs, the volumes): the privileged helper runs
//! nodectl for an administrator's session and passes the read end of its
//! output ([`helper::Held::diagnostics`]); without a helper (tests, an agent
//! running as root) this process runs it the same way.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use helper::Failure;
use tokio::io::AsyncReadExt;

use crate::api::blocking;
use crate::error::ApiError;
use crate::pages::{self, PageCtx};
use crate::state::{Authed, Shared};

/// What one read of the report passes on at most.
const CHUNK: usize = 64 << 10;

/// The command that writes the report on its standard output: in a transient
/// unit of its own under systemd (outside the helper's sandbox, which may not
/// read the kernel's log), nodectl itself otherwise. Its error output goes
/// where the caller's does (the journal).
pub fn command(nodectl: &Path, under_systemd: bool) -> Command {
    let mut cmd = if under_systemd {
        let mut c =
            crate::node_update::transient_unit("hvnode diagnostic report from the web console");
        c.arg(nodectl);
        c
    } else {
        Command::new(nodectl)
    };
    cmd.args(["diagnostics", "-o", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// Starts `nodectl diagnostics -o -`: the read end of its standard output and
/// the process. What the privileged helper does for an administrator's session.
pub fn spawn(nodectl: &Path) -> Result<(OwnedFd, Child), Failure> {
    crate::node_update::spawn_piped(command(nodectl, crate::node_update::under_systemd()))
}

/// The report's file name as the browser saves it, as nodectl names its
/// folder: `hvnode-diagnostics-HOST-YYYYmmddTHHMMSSZ.tar.gz`.
pub fn file_name(host: &str, now: u64) -> String {
    let t = hostinfo::units::UtcTime::from_unix(now);
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let host = if host.is_empty() { "node".into() } else { host };
    format!(
        "hvnode-diagnostics-{host}-{:04}{:02}{:02}T{:02}{:02}{:02}Z.tar.gz",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A process this one started: waited for when the report ends, however it
/// ends (a browser that goes away ends nodectl's writes with a broken pipe).
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("hvnode-diagnostics-wait".into())
                .spawn(move || child.wait());
        }
    }
}

/// `POST /api/v1/diagnostics` (`X-CSRF-Token`, or the form field `csrf` from the
/// Node page; administrative access): the report as `application/gzip`, streamed
/// as nodectl writes it. Answered once nodectl has written the report's first
/// bytes, so that a report that cannot be made is an error, not an empty file;
/// an error is a page for the form, JSON otherwise.
pub async fn download(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    headers: HeaderMap,
) -> Response {
    let from_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let fail = |e: ApiError| {
        tracing::warn!(user = %authed.session.user, "diagnostic report: {e}");
        if from_form {
            pages::error_page(PageCtx::new(&authed, "/node"), &e, "/node")
        } else {
            e.into_response()
        }
    };
    let held = state.helper_of(&authed.token);
    let nodectl = state.config.nodectl.clone();
    let started = blocking(move || match held {
        Some(held) => held
            .diagnostics()
            .map(|(fd, _pid)| (fd, None))
            .map_err(ApiError::from),
        None => spawn(&nodectl)
            .map(|(fd, child)| (fd, Some(child)))
            .map_err(ApiError::from),
    })
    .await;
    let (output, child) = match started {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let child = Reaped(child);
    let mut pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd(output) {
        Ok(p) => p,
        Err(e) => return fail(ApiError::Failed(format!("reading nodectl's report: {e}"))),
    };
    let mut first = vec![0; CHUNK];
    let n = match pipe.read(&mut first).await {
        Ok(n) => n,
        Err(e) => return fail(ApiError::Failed(format!("reading nodectl's report: {e}"))),
    };
    if n == 0 {
        return fail(ApiError::Failed(
            "nodectl diagnostics ended without writing a report; its messages are in the \
             journal (journalctl -u hvnode-helper, or -u hvnode-agent without the helper)"
                .into(),
        ));
    }
    first.truncate(n);
    tracing::info!(user = %authed.session.user, "diagnostic report started");
    let chunks = futures_util::stream::unfold(
        (pipe, Some(Bytes::from(first)), child),
        |(mut pipe, first, child)| async move {
            if let Some(first) = first {
                return Some((Ok(first), (pipe, None, child)));
            }
            let mut buf = vec![0; CHUNK];
            match pipe.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (pipe, None, child)))
                }
                Err(e) => Some((Err(e), (pipe, None, child))),
            }
        },
    );
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = file_name(&host, hostinfo::units::now_unix());
    let mut resp = (StatusCode::OK, Body::from_stream(chunks)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/gzip"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_named_for_the_host_and_the_time() {
        assert_eq!(
            file_name("node1.example.com", 1_795_000_000),
            "hvnode-diagnostics-node1.example.com-20261118T110640Z.tar.gz"
        );
        assert_eq!(
            file_name("a\"b", 0),
            "hvnode-diagnostics-a_b-19700101T000000Z.tar.gz"
        );
    }

    #[test]
    fn nodectl_writes_to_standard_output_in_a_unit_of_its_own_under_systemd() {
        let c = command(Path::new("/usr/bin/nodectl"), true);
        let line = command::command_line(&c);
        assert!(line.starts_with("systemd-run "), "{line}");
        assert!(
            line.ends_with("-- /usr/bin/nodectl diagnostics -o -"),
            "{line}"
        );
        let c = command(Path::new("/usr/bin/nodectl"), false);
        assert_eq!(
            command::command_line(&c),
            "/usr/bin/nodectl diagnostics -o -"
        );
    }
}
