//! The terminal page: a login shell on a pty, carried over a WebSocket to xterm.js.
//!
//! Binary frames carry bytes both ways; a text frame from the browser is a control
//! message, `{"resize":[rows, cols]}`. The shell runs as the logged-in user through
//! `systemd-run` or `runuser -l`, so it gets that user's groups, home and environment.
//! Opening it needs administrative access, as every change does; it is ended when the
//! socket closes, the session is logged out, or its administrative access is turned
//! off or found revoked (checked every 5 s, as for every change: [`admin::authorize`]).

use std::time::Duration;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::admin;
use crate::guard::allow_inline_styles;
use crate::pages::{PageCtx, render};
use crate::state::{Authed, Shared};

#[derive(Template)]
#[template(path = "terminal.html")]
struct TerminalPage {
    page: PageCtx,
}

/// `GET /terminal`. xterm.js's renderer sets inline styles, so this page (and only
/// this one) allows them; scripts stay restricted to our own files.
pub async fn page(Extension(authed): Extension<Authed>) -> Response {
    let mut resp = render(&TerminalPage {
        page: PageCtx::new(&authed, "/terminal"),
    })
    .into_response();
    allow_inline_styles(&mut resp);
    resp
}

/// `GET /terminal/socket` (WebSocket; the Origin was checked by the session layer).
pub async fn socket(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            if let Err(e) = run(socket, &state, &authed).await {
                tracing::warn!(user = %authed.session.user, "terminal: {e}");
            }
        })
}

#[derive(Deserialize)]
struct Control {
    resize: Option<(u16, u16)>,
}

/// The command line that gives `user` a login shell on this host.
///
/// Under systemd the shell runs in a transient unit of its own (`systemd-run --pty`),
/// outside the sandbox of the service that starts it, so that service can be
/// hardened without limiting what an administrator does in the terminal. Elsewhere
/// `runuser -l` starts it.
pub fn login_shell_argv(user: &str) -> Option<Vec<String>> {
    let find = |names: &[&'static str]| {
        names
            .iter()
            .copied()
            .find(|p| std::path::Path::new(p).exists())
    };
    let under_systemd = std::path::Path::new("/run/systemd/system").is_dir()
        && std::env::var_os("INVOCATION_ID").is_some();
    let shell = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| u.shell.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    shell_argv(
        user,
        &shell,
        under_systemd,
        find(&["/usr/bin/systemd-run", "/bin/systemd-run"]),
        find(&["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]),
    )
}

/// A login shell for `user` on a new pty of `rows` × `cols`, started here (the
/// privileged helper does this for the console, [`crate::auth::remote`]): the pty's
/// controlling side and the shell.
pub fn open_login_shell(
    user: &str,
    rows: u16,
    cols: u16,
) -> Result<helper::server::Terminal, String> {
    let argv = login_shell_argv(user).ok_or("neither systemd-run nor runuser can start a shell")?;
    let (program, args) = argv.split_first().ok_or("an empty shell command line")?;
    let (pty, pts) = pty_process::blocking::open().map_err(|e| format!("opening a pty: {e}"))?;
    pty.resize(pty_process::Size::new(
        rows.clamp(2, 500),
        cols.clamp(2, 1000),
    ))
    .map_err(|e| format!("sizing the pty: {e}"))?;
    let child = pty_process::blocking::Command::new(program)
        .args(args)
        .env("TERM", "xterm-256color")
        .spawn(pts)
        .map_err(|e| format!("starting a shell with {program}: {e}"))?;
    let master = std::os::fd::AsFd::as_fd(&pty)
        .try_clone_to_owned()
        .map_err(|e| format!("keeping the pty: {e}"))?;
    Ok(helper::server::Terminal { master, child })
}

/// The PAM service systemd runs for a terminal's shell unit.
pub const TERMINAL_PAM_SERVICE: &str = "hvnode-terminal";

/// The command line of [`login_shell_argv`], decided from what the host offers.
pub fn shell_argv(
    user: &str,
    shell: &str,
    under_systemd: bool,
    systemd_run: Option<&str>,
    runuser: Option<&str>,
) -> Option<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match (under_systemd, systemd_run, runuser) {
        (true, Some(run), _) => Some(v(&[
            run,
            "--quiet",
            "--pty",
            "--collect",
            "--service-type=exec",
            &format!("--uid={user}"),
            // A login of its own: the user's SELinux domain, audit login uid and
            // limits (image/files/etc/pam.d/hvnode-terminal).
            &format!("--property=PAMName={TERMINAL_PAM_SERVICE}"),
            "--property=WorkingDirectory=~",
            "--setenv=TERM=xterm-256color",
            "--",
            shell,
            "-l",
        ])),
        (_, _, Some(r)) => Some(v(&[r, "-l", "--", user])),
        _ if user == "root" => Some(v(&["/bin/sh", "-l"])),
        _ => None,
    }
}

/// Opens the session's shell (by the privileged helper when it holds the session,
/// here otherwise) and relays it until the socket or the shell ends, or the session
/// may no longer keep it open.
async fn run(socket: WebSocket, state: &Shared, authed: &Authed) -> Result<(), String> {
    let held = state.helper_of(&authed.token);
    let user = authed.session.user.clone();
    let (master, child, pid) = match held {
        Some(held) => {
            let (fd, pid) = tokio::task::spawn_blocking(move || held.open_terminal(24, 80))
                .await
                .map_err(|e| format!("asking the helper for a terminal: {e}"))?
                .map_err(|e| e.to_string())?;
            (fd, None, pid)
        }
        None => {
            let t = tokio::task::spawn_blocking(move || open_login_shell(&user, 24, 80))
                .await
                .map_err(|e| format!("starting a shell: {e}"))??;
            let pid = t.child.id();
            (t.master, Some(t.child), pid)
        }
    };
    relay::run(socket, state, authed, master, pid).await?;
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    }
    Ok(())
}

/// A control message's size, as the pty takes it.
fn size(rows: u16, cols: u16) -> (u16, u16) {
    (rows.clamp(2, 500), cols.clamp(2, 1000))
}

/// Whether a terminal may stay open: its session lives and keeps administrative
/// access, whose rights are checked as for every change (a check that cannot be made
/// now, sudo failing, leaves it open; the next change is refused anyway).
pub(crate) async fn may_stay_open(state: &Shared, token: &str, idle: Duration) -> bool {
    let session = state
        .sessions
        .lock()
        .ok()
        .and_then(|mut s| s.get(token, idle, false));
    let Some(session) = session else {
        return false;
    };
    match admin::authorize(state, token, &session).await {
        Ok(()) => true,
        Err(e) => e.status() == StatusCode::SERVICE_UNAVAILABLE,
    }
}

pub(crate) mod relay;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_systemd_the_shell_gets_a_unit_of_its_own() {
        let argv = shell_argv(
            "ops",
            "/bin/bash",
            true,
            Some("/usr/bin/systemd-run"),
            Some("/usr/sbin/runuser"),
        )
        .unwrap();
        assert_eq!(argv[0], "/usr/bin/systemd-run");
        assert!(argv.contains(&"--pty".to_string()));
        assert!(argv.contains(&"--uid=ops".to_string()));
        assert!(argv.contains(&"--property=PAMName=hvnode-terminal".to_string()));
        assert_eq!(&argv[argv.len() - 3..], ["--", "/bin/bash", "-l"]);
    }

    /// The stack the shell's unit names is in the image, and puts the shell in
    /// the user's SELinux domain: pam_selinux closes first and opens last, as
    /// in login's and sshd's stacks.
    #[test]
    fn the_terminal_pam_stack_is_in_the_image() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../image/files/etc/pam.d")
            .join(TERMINAL_PAM_SERVICE);
        let text = std::fs::read_to_string(&path).unwrap();
        let session: Vec<&str> = text.lines().filter(|l| l.starts_with("session")).collect();
        assert!(session.first().unwrap().ends_with("pam_selinux.so close"));
        assert!(
            session
                .last()
                .unwrap()
                .ends_with("pam_selinux.so nottys open")
        );
        for module in ["pam_loginuid.so", "pam_limits.so"] {
            assert!(session.iter().any(|l| l.contains(module)), "{module}");
        }
    }

    #[test]
    fn elsewhere_runuser_or_nothing() {
        let argv = shell_argv(
            "ops",
            "/bin/bash",
            false,
            Some("/usr/bin/systemd-run"),
            Some("/sbin/runuser"),
        );
        assert_eq!(argv.unwrap(), ["/sbin/runuser", "-l", "--", "ops"]);
        assert_eq!(
            shell_argv("root", "/bin/bash", false, None, None).unwrap(),
            ["/bin/sh", "-l"]
        );
        assert!(shell_argv("ops", "/bin/bash", true, None, None).is_none());
    }
}
