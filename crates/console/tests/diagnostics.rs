//! "Download diagnostic report": `POST /api/v1/diagnostics` streams `nodectl
//! diagnostics -o -` as a gzip'd tar, run by this process when no helper holds
//! the session; administrative access and the CSRF token are needed, and a
//! report that cannot be made is an error, not an empty download.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Server, Session, client, post_form};

/// The `nodectl` cargo built beside this test (`target/<profile>/nodectl`), which the
/// workspace's test run builds; missing, the test is skipped (a failure under CI).
fn built_nodectl() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let nodectl = exe.parent()?.parent()?.join("nodectl");
    hvnode_testutil::require_path(&nodectl).then_some(nodectl)
}

/// The names in a .tar.gz, as `tar` lists them.
fn tar_names(gz: &[u8]) -> Vec<String> {
    let mut tar = Command::new("tar")
        .args(["-tzf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = tar.stdin.take().unwrap();
    let gz = gz.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&gz));
    let out = tar.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "not a .tar.gz: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// A POST of `body` as `content_type`: status, headers, the body's bytes.
fn post(
    server: &Server,
    s: &Session,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &str,
) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let mut req = client()
        .post(server.url("/api/v1/diagnostics"))
        .header("Cookie", &s.cookie)
        .header("Content-Type", content_type);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.send(body).unwrap();
    let bytes = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    (r.status().as_u16(), r.headers().clone(), bytes)
}

#[test]
fn an_administrator_downloads_the_report_as_a_gzipped_tar() {
    let Some(nodectl) = built_nodectl() else {
        return;
    };
    let server = Server::start(|c| c.nodectl = nodectl);
    let s = server.admin_session("root");

    // By the API, with the token in its header.
    let (status, headers, body) = post(
        &server,
        &s,
        &[("X-CSRF-Token", &s.csrf)],
        "application/json",
        "",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/gzip");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"hvnode-diagnostics-")
            && disposition.ends_with(".tar.gz\""),
        "{disposition}"
    );
    let names = tar_names(&body);
    let top = names[0].trim_end_matches('/').to_string();
    assert!(top.starts_with("hvnode-diagnostics-"), "{names:?}");
    for member in ["README.txt", "uname.txt", "mounts.txt"] {
        assert!(
            names.contains(&format!("{top}/{member}")),
            "{member} missing from {names:?}"
        );
    }
    // nodectl info reads this host's layers; on a host without any it is named
    // missing in the README instead.
    assert!(
        names.contains(&format!("{top}/nodectl-info.json")),
        "nodectl-info.json missing from {names:?}"
    );

    // By the Node page's form, with the token as a field.
    let page = common::get(&server.url("/node"), Some(&s), &[]);
    assert!(
        page.body.contains(r#"action="/api/v1/diagnostics""#)
            && page.body.contains("Download diagnostic report"),
        "{}",
        page.body
    );
    let form = format!("csrf={}", common::enc(&s.csrf));
    let (status, _, body) = post(&server, &s, &[], "application/x-www-form-urlencoded", &form);
    assert_eq!(status, 200);
    assert!(tar_names(&body).iter().any(|n| n.ends_with("/README.txt")));
}

#[test]
fn a_limited_session_or_a_missing_token_gets_no_report() {
    let server = Server::start(|c| c.nodectl = "/nonexistent/nodectl".into());
    let limited = server.session("root");
    let r = post_form(
        &server.url("/api/v1/diagnostics"),
        Some(&limited),
        &[("X-CSRF-Token", &limited.csrf)],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let page = common::get(&server.url("/node"), Some(&limited), &[]);
    assert!(
        page.body
            .contains(r#"id="action-diagnostics" disabled title="Needs administrative access""#),
        "{}",
        page.body
    );
    let admin = server.admin_session("root");
    let r = post_form(&server.url("/api/v1/diagnostics"), Some(&admin), &[], "");
    assert_eq!(r.status, 403, "without the CSRF token: {}", r.body);

    // A report that cannot be made is an error: JSON for the API, a page for the
    // form.
    let r = post_form(
        &server.url("/api/v1/diagnostics"),
        Some(&admin),
        &[("X-CSRF-Token", &admin.csrf)],
        "",
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("is nodectl installed"), "{}", r.body);
    let form = format!("csrf={}", common::enc(&admin.csrf));
    let r = post_form(&server.url("/api/v1/diagnostics"), Some(&admin), &[], &form);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("<html") && r.body.contains("is nodectl installed"),
        "{}",
        r.body
    );
}
