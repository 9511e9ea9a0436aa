//! Every page with real host data, the live metrics, input validation, and TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};

use common::{Server, get, post_form};

#[test]
fn every_page_renders_with_the_navigation() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    for (path, must) in [
        ("/", "SSH host keys"),
        ("/vms", "sVirt label"),
        ("/services", "Filter"),
        ("/logs", "Priority"),
        ("/storage", "LVM thin pools"),
        ("/networking", "Interface"),
        ("/node", "SELinux"),
        ("/registration", "Not registered with an engine"),
        ("/terminal", "id=\"terminal\""),
    ] {
        let r = get(&server.url(path), Some(&s), &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.body.contains(must), "{path} lacks {must:?}");
        assert!(
            r.body.contains(r#"aria-current="page""#),
            "{path}: nav marks the page"
        );
        assert!(
            r.body
                .contains(&format!(r#"<meta name="csrf-token" content="{}">"#, s.csrf))
        );
        assert!(!r.body.contains("<script>"), "{path}: no inline script");
        assert!(!r.body.contains(" onclick="), "{path}: no inline handlers");
    }
}

/// This build host does not boot from a layer: the Node page and `/api/v1/node` say
/// so instead of failing, and a layer cannot be chosen for the next boot. Skipped on
/// a host that does boot from a layer (a failure in CI, whose hosts do not).
/// Whether this host runs from a layer (then the tests of a live host's Node page
/// are skipped, saying so).
fn runs_from_a_layer() -> bool {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap();
    let layered = layers::status::layer_from_cmdline(&cmdline).is_some();
    if layered {
        hvnode_testutil::skip(format!("this host runs from a layer ({})", cmdline.trim()));
    }
    layered
}

#[test]
fn the_node_page_says_a_live_host_is_not_installed_on_a_layered_root() {
    if runs_from_a_layer() {
        return;
    }
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let page = get(&server.url("/node"), Some(&s), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(
            r#"<p class="note" id="layers-notice">Not installed on a layered root: running live."#
        ),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Boot this layer next time"));
    let r = get(&server.url("/api/v1/node"), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let l = &r.json()["data"]["layers"];
    assert_eq!(l["installed"], false, "{l}");
    assert!(
        l["notice"]
            .as_str()
            .unwrap()
            .starts_with("Not installed on a layered root")
    );
    assert!(l["error"].is_null() && l["health"].is_null(), "{l}");
    assert_eq!(l["layers"], serde_json::json!([]));
    // Choosing a layer for the next boot is refused with the reason, by the API and
    // by the page (before any confirmation); a malformed name is a 400.
    let layer = "hvnode-1.0-0.20261125.0+1";
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let r = post_form(
        &server.url(&format!("/api/v1/node/layers/{layer}/boot-next")),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("not installed on a layered root"),
        "{}",
        r.body
    );
    let url = server.url(&format!("/node/layers/{layer}/boot-next"));
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}", s.csrf));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("not installed on a layered root"));
    assert!(r.body.contains(r#"class="sidebar""#));
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}&confirm=yes", s.csrf));
    assert_eq!(r.status, 409, "{}", r.body);
    let r = post_form(
        &server.url("/api/v1/node/layers/hvnode-1.0/boot-next"),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not a layer name")
    );
    // Rolling back is refused the same way, by the API and by the page.
    let r = post_form(&server.url("/api/v1/node/rollback"), Some(&s), &csrf, "");
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("does not run from a layer"),
        "{}",
        r.body
    );
    let url = server.url("/node/rollback");
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}", s.csrf));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("does not run from a layer"), "{}", r.body);
    // Without the session's CSRF token nothing is done.
    let r = post_form(&url, Some(&s), &[], "confirm=yes");
    assert_eq!(r.status, 403, "{}", r.body);

    // An update: a source that is not a URL or an absolute path is a 400
    // before anything runs; on this host nodectl is not where a node has it,
    // and the console says so, by the API, the page and the job.
    let api = server.url("/api/v1/node/update");
    let r = post_form(&api, Some(&s), &csrf, r#"{"source":"--no-verify"}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post_form(
        &api,
        Some(&s),
        &csrf,
        r#"{"source":"/var/tmp/b.update.tar"}"#,
    );
    assert!(r.body.contains("is nodectl installed"), "{}", r.body);
    let page = server.url("/node/update");
    let r = post_form(
        &page,
        Some(&s),
        &[],
        &format!("csrf={}&source=%2Fvar%2Ftmp%2Fb.update.tar", s.csrf),
    );
    assert!(r.body.contains("is nodectl installed"), "{}", r.body);
    let r = get(&page, Some(&s), &[]);
    assert!(r.body.contains("No update has run"), "{}", r.body);
    let r = post_form(
        &api,
        Some(&s),
        &csrf,
        r#"{"source":"/var/tmp/b.update.tar","confirm":true}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let mut job = serde_json::Value::Null;
    for _ in 0..100 {
        job = get(&api, Some(&s), &[]).json();
        if job["data"]["running"] == false {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        job["data"]["run"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is nodectl installed"),
        "{job}"
    );
    let r = get(&page, Some(&s), &[]);
    assert!(r.body.contains(r#"id="update-error""#), "{}", r.body);
}

#[test]
fn overview_shows_this_host() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let r = get(&server.url("/api/v1/overview"), Some(&s), &[]);
    assert_eq!(r.status, 200);
    let d = &r.json()["data"];
    let hostname = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(d["info"]["hostname"], hostname.as_str());
    assert!(d["info"]["cpu"]["count"].as_u64().unwrap() >= 1);
    assert!(d["info"]["memory"]["total"].as_u64().unwrap() > 0);
    // The same report as `nodectl check`: this host's groups, each with checks.
    let groups: Vec<&str> = d["health"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for want in ["SELinux", "Virtualization", "Resources", "Services"] {
        assert!(groups.contains(&want), "{want}: {groups:?}");
    }
    assert!(
        ["ok", "warning", "failed"].contains(&d["health"]["status"].as_str().unwrap()),
        "{}",
        d["health"]
    );
    // Host key fingerprints only, in ssh-keygen's format.
    for k in d["host_keys"].as_array().unwrap() {
        assert!(k["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    }
    let page = get(&server.url("/"), Some(&s), &[]);
    assert!(page.body.contains(&hostname));
    assert_eq!(
        page.body.matches("<polyline").count(),
        6,
        "cpu, memory, 2 network, 2 disk"
    );
}

#[test]
fn the_sampler_fills_the_history_and_streams_points() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let first = server.first_sample();
    let r = get(&server.url("/api/v1/metrics"), Some(&s), &[]);
    let points = r.json()["data"].as_array().unwrap().clone();
    assert!(
        !points.is_empty(),
        "one point a sample period after the first reading: {points:?}"
    );
    assert_eq!(
        points[0]["t"], first.t,
        "the history starts with the first point"
    );
    let p = &points[0];
    assert!(p["mem_total"].as_u64().unwrap() > 0);
    assert!((0.0..=100.0).contains(&p["cpu_percent"].as_f64().unwrap()));
    // Each interface's current traffic comes from the same sampler.
    let net = get(&server.url("/api/v1/network"), Some(&s), &[]);
    assert!(
        net.json()["data"]["rates"]["lo"]["rx_bps"].is_number(),
        "{}",
        net.body
    );
    let page = get(&server.url("/networking"), Some(&s), &[]);
    assert!(page.body.contains("↓ ") && page.body.contains("/s ↑ "));
    // The stream delivers the next point as a server-sent event.
    let mut resp = common::client()
        .get(&server.url("/api/v1/metrics/stream"))
        .header("Cookie", &s.cookie)
        .header("Origin", &server.origin())
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut lines = BufReader::new(resp.body_mut().as_reader()).lines();
    let mut saw_event = false;
    for _ in 0..20 {
        let line = lines.next().unwrap().unwrap();
        if line == "event: point" {
            saw_event = true;
        }
        if saw_event && line.starts_with("data: ") {
            let v: serde_json::Value = serde_json::from_str(&line[6..]).unwrap();
            assert!(v["t"].as_u64().unwrap() > 1_700_000_000);
            return;
        }
    }
    panic!("no point streamed");
}

#[test]
fn malformed_input_is_a_400_with_a_message() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    for path in [
        "/api/v1/logs?priority=9",
        "/api/v1/logs?priority=high",
        "/api/v1/logs?unit=--all",
        "/api/v1/logs?lines=-1",
        "/logs?priority=99",
    ] {
        let r = get(&server.url(path), Some(&s), &[]);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
    }
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    for path in [
        "/api/v1/services/--now/start",
        "/api/v1/services/ssh.service/mask",
        "/api/v1/services/a%20b.service/stop",
    ] {
        let r = post_form(&server.url(path), Some(&s), &csrf, "");
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.json()["error"].is_string());
    }
    let r = post_form(&server.url("/login"), None, &[], "username=root");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post_form(&server.url("/login"), None, &[], "nothing=here");
    assert_eq!(r.status, 400);
    let r = post_form(&server.url("/login"), None, &[], &"x".repeat(100 * 1024));
    assert_eq!(r.status, 413);
}

#[test]
fn storage_network_and_logs_answer_with_data_or_the_failing_command() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let r = get(&server.url("/api/v1/storage"), Some(&s), &[]);
    assert_eq!(r.status, 200);
    let d = &r.json()["data"];
    let fs = d["filesystems"].as_array().unwrap();
    assert!(fs.iter().any(|f| f["target"] == "/"), "{fs:?}");
    assert!(d["block_devices"].is_array(), "{}", d["block_devices"]);
    // lvs may be missing or find no device-mapper: then it is an array or says why.
    assert!(d["thin_pools"].is_array() || d["thin_pools"]["error"].is_string());
    let r = get(&server.url("/api/v1/network"), Some(&s), &[]);
    assert_eq!(r.status, 200);
    let items = r.json()["data"]["items"].as_array().unwrap().clone();
    assert!(
        items
            .iter()
            .any(|i| i["name"] == "lo" && i["addresses"][0] == "127.0.0.1/8")
    );
    let page = get(&server.url("/networking"), Some(&s), &[]);
    assert!(page.body.contains("127.0.0.1/8"));
    // Without systemd or a journal the pages say which command failed.
    for path in ["/services", "/logs"] {
        let r = get(&server.url(path), Some(&s), &[]);
        assert_eq!(r.status, 200);
        assert!(r.body.contains("<table"), "{path}");
    }
    let r = get(&server.url("/api/v1/services"), Some(&s), &[]);
    assert!(r.status == 200 || r.status == 502, "{}", r.body);
    if r.status == 502 {
        assert!(
            r.json()["error"].as_str().unwrap().contains("systemctl"),
            "{}",
            r.body
        );
    }
}

#[test]
fn a_failing_unit_action_names_the_command_and_what_it_said() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    // No such unit exists: systemctl fails with or without a running systemd.
    let unit = "hvnode-test-no-such-unit.service";
    let r = post_form(
        &server.url(&format!("/api/v1/services/{unit}/restart")),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 502, "{}", r.body);
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        err.contains(&format!("systemctl restart --no-ask-password -- {unit}")),
        "{err}"
    );
    // The page asks before stopping; once confirmed it shows the same failure inside
    // the console's frame.
    let url = server.url(&format!("/services/{unit}/stop"));
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}", s.csrf));
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(&format!("Stop the unit {unit}?")),
        "{}",
        r.body
    );
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}&confirm=yes", s.csrf));
    assert_eq!(r.status, 502);
    assert!(r.body.contains("systemctl stop"), "{}", r.body);
    assert!(r.body.contains(r#"class="sidebar""#));
}

#[test]
fn tls_with_a_generated_certificate_and_hsts() {
    let server = Server::start_tls(|_| {});
    let r = get(&server.url("/login"), None, &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("strict-transport-security")
            .unwrap()
            .contains("max-age=")
    );
    assert!(r.body.contains(r#"name="username""#) && r.body.contains(r#"name="password""#));
    // Plain HTTP to the TLS port is sent to https, path kept, and gets no page.
    let plain = get(&format!("http://{}/vms?x=1", server.addr), None, &[]);
    assert_eq!(plain.status, 301);
    assert_eq!(
        plain.header("location"),
        Some(format!("https://{}/vms?x=1", server.addr).as_str())
    );
    assert!(plain.body.is_empty());
    assert_eq!(plain.header("x-frame-options"), Some("DENY"));
}

#[test]
fn static_files_and_xterm_are_bundled() {
    let server = Server::start(|_| {});
    let r = get(&server.url("/static/console.js"), None, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(get(&server.url("/static/nope.js"), None, &[]).status, 404);
    assert_eq!(
        get(&server.url("/static/..%2Fsrc%2Flib.rs"), None, &[]).status,
        404
    );
    let x = get(&server.url("/static/xterm.js"), None, &[]);
    assert_eq!(x.status, 200);
    assert!(
        console::assets::XTERM_BUNDLED && x.body.len() > 100_000,
        "xterm.js from npm is not bundled: run tests/deps.sh, then rebuild"
    );
}

/// With a helper configured, the facts only root can read (the layer store, the thin
/// pools) come from it: served through it, and, when it is down, the pages say so
/// instead of reading them in the web process.
#[test]
fn with_a_helper_the_layer_facts_and_thin_pools_come_through_it() {
    if runs_from_a_layer() {
        return;
    }
    let helper = common::Helper::unstarted();
    let socket = helper.socket.clone();
    let server = Server::start(|c| c.helper_socket = Some(socket));
    let s = server.admin_session("root");

    // Down: the web side does not fall back to reading them itself.
    let r = get(&server.url("/api/v1/storage"), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let error = r.json()["data"]["thin_pools"]["error"].clone();
    assert!(
        error.as_str().is_some_and(|e| e.contains("hvnode-helper")),
        "{error}"
    );
    let r = get(&server.url("/api/v1/node"), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("hvnode-helper"), "{}", r.body);

    // Up: the same answers as read here (a live host: no layered root).
    helper.serve(&console::Config::default(), None);
    let r = get(&server.url("/api/v1/storage"), Some(&s), &[]);
    let pools = &r.json()["data"]["thin_pools"];
    assert!(
        pools.is_array()
            || pools["error"]
                .as_str()
                .is_some_and(|e| !e.contains("hvnode-helper")),
        "{pools}"
    );
    // The layer facts are cached for seconds: a new console asks afresh.
    let socket = helper.socket.clone();
    let server = Server::start(|c| c.helper_socket = Some(socket));
    let s = server.admin_session("root");
    let r = get(&server.url("/api/v1/node"), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["layers"]["installed"], false, "{}", r.body);
}
