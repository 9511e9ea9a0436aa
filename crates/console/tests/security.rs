//! Walks every route the router declares (read from `src/router.rs`, so a new route cannot
//! be forgotten here) and checks the session, CSRF and Origin rules and the headers.
//! The sessions that change something have administrative access, so that what
//! refuses them here is the rule under test (`tests/admin_access.rs` walks the routes
//! with a limited session).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Reply, Server, get, post_form, request, routes};

const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/static/console.css"),
];

fn assert_headers(r: &Reply, what: &str, tls: bool) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe-inline'"),
        "{what}: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("same-origin"), "{what}");
    assert!(r.header("permissions-policy").is_some(), "{what}");
    if tls {
        assert!(
            r.header("strict-transport-security").is_some(),
            "{what}: no HSTS"
        );
    }
}

#[test]
fn without_a_session_only_login_and_static_files_answer() {
    let server = Server::start_tls(|_| {});
    let mut walked = 0;
    for (method, path) in routes() {
        let what = format!("{method} {path}");
        let r = request(&server, &method, &path, None, &[], "username=&password=");
        assert_headers(&r, &what, true);
        if PUBLIC.contains(&(method.as_str(), path.as_str())) {
            assert!(r.status == 200 || r.status == 401, "{what}: {}", r.status);
            continue;
        }
        if method == "GET" && !path.starts_with("/api/") {
            assert_eq!(r.status, 303, "{what}");
            assert_eq!(r.header("location"), Some("/login"), "{what}");
        } else {
            assert_eq!(r.status, 401, "{what}: {}", r.body);
            assert!(r.json()["error"].is_string(), "{what}");
        }
        walked += 1;
    }
    assert!(walked >= 25, "{walked}");
    // Unknown paths are no exception.
    let r = get(&server.url("/no/such/page"), None, &[]);
    assert_eq!(r.status, 303);
    let r = get(&server.url("/api/v1/nothing"), None, &[]);
    assert_eq!(r.status, 401);
    // A forged cookie is no session either.
    let forged = common::Session {
        cookie: "__Host-hvnode-session=forged".into(),
        csrf: String::new(),
    };
    assert_eq!(
        get(&server.url("/api/v1/vms"), Some(&forged), &[]).status,
        401
    );
}

#[test]
fn state_changes_need_the_csrf_token_and_a_matching_origin() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let other = server.admin_session("root");
    let posts: Vec<_> = routes()
        .into_iter()
        .filter(|(m, p)| m != "GET" && p != "/login")
        .collect();
    assert!(posts.len() >= 5, "{posts:?}");
    for (method, path) in &posts {
        let what = format!("{method} {path}");
        // No token at all.
        let r = request(&server, method, path, Some(&s), &[], "confirm=yes");
        assert_eq!(r.status, 403, "{what} without token: {}", r.body);
        assert_headers(&r, &what, false);
        // Another session's token.
        let body = format!("csrf={}&confirm=yes", other.csrf);
        let r = request(&server, method, path, Some(&s), &[], &body);
        assert_eq!(r.status, 403, "{what} with a foreign token");
        // The right token in the header, but from a foreign page.
        let r = request(
            &server,
            method,
            path,
            Some(&s),
            &[
                ("X-CSRF-Token", &s.csrf),
                ("Origin", "https://evil.example"),
            ],
            "",
        );
        assert_eq!(r.status, 403, "{what} from a foreign origin");
        // A wrong token in the header.
        let r = request(
            &server,
            method,
            path,
            Some(&s),
            &[("X-CSRF-Token", "nope")],
            "",
        );
        assert_eq!(r.status, 403, "{what} with a wrong header token");
    }
    // The session survived all of that and a correct request passes the checks.
    let r = post_form(
        &server.url("/api/v1/vms/test/reboot"),
        Some(&s),
        &[("X-CSRF-Token", &s.csrf), ("Origin", &server.origin())],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn streams_and_websockets_refuse_foreign_origins() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    for path in ["/api/v1/metrics/stream", "/api/v1/logs/stream"] {
        let r = get(
            &server.url(path),
            Some(&s),
            &[("Origin", "https://evil.example")],
        );
        assert_eq!(r.status, 403, "{path}");
    }
    let r = get(
        &server.url("/terminal/socket"),
        Some(&s),
        &[
            ("Origin", "http://evil.example"),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    );
    assert_eq!(r.status, 403);
    // A foreign login form is refused too (login CSRF).
    let r = post_form(
        &server.url("/login"),
        None,
        &[("Origin", "https://evil.example")],
        "username=root&password=x",
    );
    assert_eq!(r.status, 403);
}

#[test]
fn authenticated_pages_carry_the_headers_and_no_private_key() {
    let server = Server::start_tls(|_| {});
    let s = server.session("root");
    for (method, path) in routes()
        .into_iter()
        .filter(|(m, p)| m == "GET" && !p.ends_with("/stream") && !p.ends_with("/socket"))
    {
        let r = get(&server.url(&path), Some(&s), &[]);
        assert_headers(&r, &format!("{method} {path}"), true);
        assert!(
            !r.body.contains("PRIVATE KEY"),
            "{path} shows a private key"
        );
        assert!(
            r.status < 500 || r.status == 502 || r.status == 503,
            "{path}: {}",
            r.status
        );
    }
}

#[test]
fn hostile_inputs_never_crash_the_server() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let long = "a".repeat(4000);
    let names = [
        "",
        "%00",
        "%2e%2e",
        "..",
        "%FF%FE",
        "%F0%9F%98%80",
        "a%0Ab",
        "-rf",
        "'",
        "%22%3E%3Cscript%3E",
        &long,
    ];
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    for name in names {
        for path in [
            format!("/api/v1/vms/{name}"),
            format!("/api/v1/vms/{name}/start"),
            format!("/api/v1/vms/test/{name}"),
            format!("/api/v1/services/{name}/stop"),
            format!("/vms/{name}/reboot"),
            format!("/static/{name}"),
            format!("/api/v1/logs?unit={name}&grep={name}&priority={name}"),
            format!("/api/v1/services?filter={name}&state={name}"),
            format!("/registration/fetch?engine={name}"),
            format!("/node/layers/{name}/boot-next"),
            format!("/api/v1/node/layers/{name}/boot-next"),
            "/registration/register".to_string(),
            "/node/rollback".to_string(),
            "/api/v1/node/rollback".to_string(),
            format!("/node/update?source={name}"),
        ] {
            let url = server.url(&path);
            for r in [
                get(&url, Some(&s), &[]),
                post_form(&url, Some(&s), &csrf, name),
            ] {
                assert!(
                    r.status != 500 && r.status < 600,
                    "{path}: {} {}",
                    r.status,
                    r.body
                );
                assert!(r.header("content-security-policy").is_some(), "{path}");
                let html = r
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("text/html"));
                assert!(
                    !(html && r.body.contains("<script>")),
                    "{path} reflects markup"
                );
            }
        }
    }
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        200
    );
}

#[test]
fn only_a_persons_requests_keep_a_session_alive() {
    let server = Server::start(|c| c.idle_timeout_secs = 2);
    let person = server.session("root");
    let poller = server.session("root");
    let background = [("X-Hvnode-Background", "1")];
    // 3.2 s of activity on the console's clock: the person clicks, the open page only
    // polls.
    for _ in 0..8 {
        assert_eq!(
            get(&server.url("/api/v1/vms"), Some(&person), &[]).status,
            200
        );
        let _ = get(&server.url("/api/v1/vms"), Some(&poller), &background);
        server.clock.advance(std::time::Duration::from_millis(400));
    }
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&person), &[]).status,
        200
    );
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&poller), &[]).status,
        401,
        "polling alone does not keep a session"
    );
}

#[test]
fn origin_null_is_refused_for_websockets_and_the_login() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let r = get(
        &server.url("/terminal/socket"),
        Some(&s),
        &[
            ("Origin", "null"),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post_form(
        &server.url("/login"),
        None,
        &[("Origin", "null")],
        "username=ops&password=x",
    );
    assert_eq!(r.status, 403, "{}", r.body);
}

#[test]
fn sessions_end_after_their_absolute_lifetime_however_busy() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    // Someone clicks every 10 minutes for 8 hours (the default lifetime).
    for step in 1..=48 {
        server.clock.advance(std::time::Duration::from_secs(600));
        let r = get(&server.url("/api/v1/session"), Some(&s), &[]);
        assert_eq!(r.status, 200, "after {} min", step * 10);
    }
    server.clock.advance(std::time::Duration::from_secs(600));
    let r = get(&server.url("/api/v1/session"), Some(&s), &[]);
    assert_eq!(r.status, 401, "a session lives 8 hours at most");
    assert_eq!(server.state.session_count(), 0);
}
