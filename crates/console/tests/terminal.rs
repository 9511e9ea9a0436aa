//! The terminal: a real login shell on a pty behind the WebSocket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use std::time::{Duration, Instant};

use common::Server;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, connect};

fn open(
    server: &Server,
    s: &common::Session,
    origin: &str,
) -> Result<
    tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    tungstenite::Error,
> {
    let mut req = format!("ws://{}/terminal/socket", server.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Cookie", s.cookie.parse().unwrap());
    req.headers_mut().insert("Origin", origin.parse().unwrap());
    connect(req).map(|(ws, _)| ws)
}

fn read_until(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    needle: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Binary(b)) => seen.push_str(&String::from_utf8_lossy(&b)),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
        if seen.contains(needle) {
            return seen;
        }
    }
    panic!("{needle:?} never appeared in {seen:?}");
}

/// Logs the session out: the terminal's socket closes within 15 s.
fn logout_closes(
    server: &Server,
    s: &common::Session,
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
) {
    let r = common::post_form(
        &server.url("/logout"),
        Some(s),
        &[],
        &format!("csrf={}", s.csrf),
    );
    assert_eq!(r.status, 303);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => assert!(Instant::now() < deadline, "shell outlived the session"),
        }
    }
}

#[test]
fn a_command_runs_in_a_login_shell_and_the_size_follows_the_browser() {
    common::require_root();
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let mut ws = open(&server, &s, &server.origin()).unwrap();
    ws.send(Message::Text(r#"{"resize":[40,132]}"#.into()))
        .unwrap();
    ws.send(Message::Binary(
        b"echo hv-$((40+2)) $(id -un); stty size\n".to_vec().into(),
    ))
    .unwrap();
    let out = read_until(&mut ws, "40 132");
    assert!(out.contains("hv-42 root"), "{out}");
    ws.send(Message::Binary(b"exit\n".to_vec().into())).unwrap();
    // The socket closes when the shell ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => assert!(Instant::now() < deadline, "socket still open"),
        }
    }
}

#[test]
fn a_shell_runs_as_the_logged_in_user() {
    let _pam = common::PamService::install();
    // Opening a terminal needs administrative access, and the rights it is checked
    // against: an admin group.
    let user = common::TestUser::create(Some("hvsh"));
    let group = user.group().to_string();
    let server = Server::start(|c| c.admin_groups = vec![group]);
    let s = server.admin_session(&user.name);
    let mut ws = open(&server, &s, &server.origin()).unwrap();
    ws.send(Message::Binary(
        b"echo me=$(id -un) home=$HOME\n".to_vec().into(),
    ))
    .unwrap();
    let out = read_until(
        &mut ws,
        &format!("me={} home=/home/{}", user.name, user.name),
    );
    assert!(!out.contains("me=root"));
}

#[test]
fn logout_ends_the_shell_and_foreign_pages_cannot_open_one() {
    common::require_root();
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    assert!(open(&server, &s, "http://evil.example").is_err());
    let mut ws = open(&server, &s, &server.origin()).unwrap();
    ws.send(Message::Binary(b"echo ready\n".to_vec().into()))
        .unwrap();
    read_until(&mut ws, "ready");
    logout_closes(&server, &s, &mut ws);
}

/// Through the privileged helper: the login's session is the helper's, the shell is
/// started by the helper as the session's user and only relayed here (its pty comes
/// over the helper's socket), it follows the browser's size, and logout ends it.
#[test]
fn through_the_helper_the_shell_is_the_sessions_user_and_ends_at_logout() {
    let pam = common::PamService::install();
    let user = common::TestUser::create(Some("hvhs"));
    let group = user.group().to_string();
    let tweak = |c: &mut console::Config| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![group.clone()];
    };
    let mut config = console::Config::default();
    tweak(&mut config);
    let helper = common::Helper::start(&config, None);
    let server = Server::start_with_auth(helper.remote(), tweak);
    let s = common::login(&server, &user.name, &user.password).unwrap();
    let token = s.cookie.split_once('=').unwrap().1;
    assert!(
        server
            .state
            .sessions
            .lock()
            .unwrap()
            .helper_of(token)
            .is_some(),
        "the helper holds the login's session"
    );
    // Administrative access (the stand-in policy allows it).
    let on = common::post_form(
        &server.url("/api/v1/session/admin"),
        Some(&s),
        &[],
        &format!("csrf={}&password={}", s.csrf, user.password),
    );
    assert_eq!(on.status, 200, "{}", on.body);
    let mut ws = open(&server, &s, &server.origin()).unwrap();
    ws.send(Message::Text(r#"{"resize":[30,100]}"#.into()))
        .unwrap();
    ws.send(Message::Binary(
        b"echo me=$(id -un) home=$HOME; stty size\n".to_vec().into(),
    ))
    .unwrap();
    let out = read_until(&mut ws, "30 100");
    assert!(
        out.contains(&format!("me={} home=/home/{}", user.name, user.name)),
        "{out}"
    );
    logout_closes(&server, &s, &mut ws);
}
