//! The Registration page against the loopback test engine (`crates/test-engine`), with
//! a real PAM login and a scratch node tree: the CA's fingerprint is shown first,
//! confirming registers, the state follows, and failures are shown on the page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{PamService, Reply, Server, Session, TestUser, enc, get, login_admin, post_form};
use registration::{MANAGED_CERT_PATH, RegistrationState, STATE_PATH, Sysroot, load_state};
use test_engine::TestEngine;

const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERERERERERER root@node";
const DMI_UUID: &str = "4C4C4544-0042-3510-8052-B4C04F4A4D32";

/// A console whose registration files live in a scratch node tree, and an
/// administrator logged in through PAM.
struct Setup {
    server: Server,
    session: Session,
    root: Sysroot,
    _pam: PamService,
    _user: TestUser,
    _tree: tempfile::TempDir,
}

fn setup() -> Setup {
    let tree = tempfile::tempdir().unwrap();
    let root = Sysroot::new(tree.path());
    for (path, text) in [
        (
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n".to_string(),
        ),
        ("/etc/ssh/ssh_host_ed25519_key.pub", format!("{HOST_KEY}\n")),
        ("/sys/class/dmi/id/product_uuid", format!("{DMI_UUID}\n")),
    ] {
        let p = root.path(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let pam = PamService::install();
    let user = TestUser::create(Some("hvreg"));
    let group = user.group().to_string();
    let sysroot = tree.path().to_path_buf();
    let server = Server::start(|c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![group];
        c.sysroot = sysroot;
    });
    let session = login_admin(&server, &user.name, &user.password).unwrap();
    Setup {
        server,
        session,
        root,
        _pam: pam,
        _user: user,
        _tree: tree,
    }
}

impl Setup {
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut body = format!("csrf={}", enc(&self.session.csrf));
        for (k, v) in fields {
            body.push_str(&format!("&{k}={}", enc(v)));
        }
        post_form(&self.server.url(path), Some(&self.session), &[], &body)
    }

    fn page(&self) -> Reply {
        let r = get(&self.server.url("/registration"), Some(&self.session), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        r
    }

    fn state(&self) -> RegistrationState {
        load_state(&self.root).unwrap().status
    }
}

fn port(engine: &TestEngine) -> String {
    engine.port().to_string()
}

/// The text of the element with `id`, as the page has it (HTML-escaped).
fn text_of<'a>(body: &'a str, id: &str) -> Option<&'a str> {
    let start = body.find(&format!("id=\"{id}\""))?;
    let rest = &body[start..];
    let rest = &rest[rest.find('>')? + 1..];
    Some(&rest[..rest.find('<')?])
}

#[test]
fn the_fingerprint_is_shown_then_confirming_registers_and_the_state_follows() {
    let s = setup();
    let engine = TestEngine::start();
    let page = s.page();
    assert!(
        page.body.contains(r#"href="/registration" class="active""#),
        "the page is in the navigation"
    );
    assert_eq!(
        text_of(&page.body, "reg-headline"),
        Some("Not registered with an engine")
    );

    // Step 1: the CA is fetched and its fingerprints shown; nothing is trusted yet.
    let r = s.post(
        "/registration/fetch",
        &[
            ("engine", &engine.host()),
            ("port", &port(&engine)),
            ("node_name", "node one"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        text_of(&r.body, "reg-fingerprint"),
        Some(engine.ca_sha256_hex().as_str())
    );
    assert_eq!(
        text_of(&r.body, "reg-fingerprint-sha1"),
        Some(engine.ca_sha1_colon().as_str())
    );
    assert!(r.body.contains(r#"action="/registration/register""#));
    assert!(r.body.contains(r#"value="node one""#), "the name is kept");
    assert_eq!(engine.commands(), ["get-pki-trust"]);
    assert!(engine.hosts().is_empty());
    assert!(!s.root.path(registration::CA_PATH).exists());
    assert_eq!(s.state().name(), "awaiting-confirmation");
    // The state card offers the same confirmation after a reload.
    let again = s.page();
    assert_eq!(
        text_of(&again.body, "reg-fingerprint"),
        Some(engine.ca_sha256_hex().as_str())
    );

    // Step 2: confirming registers.
    let r = s.post(
        "/registration/register",
        &[
            ("engine", &engine.host()),
            ("port", &port(&engine)),
            ("fingerprint", &engine.ca_sha256_hex()),
            ("node_name", "node one"),
            ("node_address", ""),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let notice = text_of(&r.body, "reg-notice").unwrap();
    assert!(
        notice.starts_with("Registered with engine 127.0.0.1:"),
        "{notice}"
    );
    let engine_addr = format!("127.0.0.1:{}", engine.port());
    assert_eq!(
        text_of(&r.body, "reg-headline"),
        Some(format!("Registered with engine {engine_addr}, pending approval").as_str())
    );
    assert!(r.body.contains("Approve the host in the engine"));
    let unique_id = DMI_UUID.to_lowercase();
    assert_eq!(text_of(&r.body, "reg-unique-id"), Some(unique_id.as_str()));
    assert_eq!(
        text_of(&r.body, "reg-ca"),
        Some(engine.ca_sha256_hex().as_str())
    );
    assert_eq!(text_of(&r.body, "reg-name"), Some("node one"));
    let hosts = engine.hosts();
    let host = hosts.get(&unique_id).expect("the engine knows the node");
    assert_eq!(host.param("name"), Some("node one"));
    assert_eq!(host.param("address"), None);
    assert!(
        std::fs::read_to_string(s.root.path("/root/.ssh/authorized_keys"))
            .unwrap()
            .contains(&engine.ssh_key())
    );

    // The API and the node page read the same state as nodectl register --status.
    let api = get(&s.server.url("/api/v1/registration"), Some(&s.session), &[]);
    assert_eq!(api.status, 200);
    let data = &api.json()["data"];
    assert_eq!(data["status"]["state"], "registered");
    assert_eq!(data["status"]["uniqueId"], unique_id.as_str());
    let node = get(&s.server.url("/node"), Some(&s.session), &[]);
    assert!(
        text_of(&node.body, "node-registration")
            .unwrap()
            .contains("pending approval"),
        "{}",
        node.body
    );

    // The engine approves and deploys the host: the node is managed.
    let cert = s.root.path(MANAGED_CERT_PATH);
    std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
    std::fs::write(&cert, engine.issue_host_certificate("node1")).unwrap();
    let page = s.page();
    assert_eq!(
        text_of(&page.body, "reg-headline"),
        Some(format!("Managed by engine {engine_addr}").as_str())
    );
    // The engine's link has not started here: the page says so.
    assert_eq!(
        text_of(&page.body, "reg-vdsm-summary"),
        Some("managed: no, hvnode-vdsm is not running (systemctl status hvnode-vdsm says why)")
    );
    assert!(
        page.body
            .contains(r#"data-state="not-running" class="warn""#)
    );

    // The engine connects to the link and asks: the page shows what it says.
    let now = registration::now_unix();
    let link = s.root.path(vdsm::status::STATUS_PATH);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    vdsm::status::Status {
        serving: true,
        connections: 1,
        peers: vec!["192.0.2.5:40212".into()],
        last_connected: Some(now - 600),
        last_request: Some(now - 3),
        last_method: Some("Host.getStats".into()),
        requests: 42,
        cluster_levels: vec!["4.6".into(), "4.7".into()],
        pid: 812,
        started: now - 7_200,
        ..Default::default()
    }
    .write(&link)
    .unwrap();
    let page = s.page();
    let summary = text_of(&page.body, "reg-vdsm-summary").unwrap();
    assert!(
        summary.starts_with(
            "managed: the engine is connected (1 connection from 192.0.2.5:40212), last asked"
        ) && summary.ends_with(" s ago (Host.getStats)"),
        "{summary}"
    );
    assert!(page.body.contains(r#"data-state="connected">"#));
    assert_eq!(
        text_of(&page.body, "reg-vdsm-connections"),
        Some("1 (192.0.2.5:40212)")
    );
    assert!(
        text_of(&page.body, "reg-vdsm-last-request")
            .unwrap()
            .ends_with(" UTC (Host.getStats)")
    );
    assert_eq!(text_of(&page.body, "reg-vdsm-levels"), Some("4.6, 4.7"));
    let api = get(&s.server.url("/api/v1/registration"), Some(&s.session), &[]);
    let data = &api.json()["data"];
    assert_eq!(data["vdsm"]["state"], "connected", "{data}");
    assert_eq!(data["vdsm"]["service"]["requests"], 42, "{data}");
}

#[test]
fn a_wrong_csrf_token_is_refused_and_the_engine_is_not_asked() {
    let s = setup();
    let engine = TestEngine::start();
    let other = s.server.session("root");
    for path in ["/registration/fetch", "/registration/register"] {
        for token in ["", "wrong", other.csrf.as_str()] {
            let body = format!(
                "csrf={token}&engine={}&port={}&fingerprint={}",
                engine.host(),
                engine.port(),
                enc(&engine.ca_sha256_hex())
            );
            let r = post_form(&s.server.url(path), Some(&s.session), &[], &body);
            assert_eq!(r.status, 403, "{path} with token {token:?}: {}", r.body);
        }
        // The right token from a foreign page is refused too.
        let r = post_form(
            &s.server.url(path),
            Some(&s.session),
            &[("Origin", "https://evil.example")],
            &format!("csrf={}&engine=127.0.0.1", enc(&s.session.csrf)),
        );
        assert_eq!(r.status, 403, "{path} from a foreign origin");
    }
    assert!(engine.requests().is_empty(), "{:?}", engine.requests());
    assert!(!s.root.path(STATE_PATH).exists());
}

#[test]
fn an_unreachable_engine_is_an_error_on_the_page() {
    let s = setup();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let r = s.post(
        "/registration/fetch",
        &[("engine", "127.0.0.1"), ("port", &closed)],
    );
    assert_eq!(r.status, 502, "{}", r.body);
    let message = text_of(&r.body, "reg-failure-message").unwrap();
    assert!(
        message.starts_with(&format!("cannot reach the engine at 127.0.0.1:{closed}")),
        "{message}"
    );
    assert!(message.contains("check the engine"), "says what to do next");
    assert!(
        r.body.contains(&format!(r#"value="{closed}""#)),
        "the form keeps its values"
    );
    assert!(
        !s.root.path(STATE_PATH).exists(),
        "a failed fetch records nothing"
    );

    // A confirmation that cannot reach the engine is recorded as a failed attempt.
    let engine = TestEngine::start();
    let fingerprint = engine.ca_sha256_hex();
    drop(engine);
    let r = s.post(
        "/registration/register",
        &[
            ("engine", "127.0.0.1"),
            ("port", &closed),
            ("fingerprint", &fingerprint),
        ],
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        text_of(&r.body, "reg-failure-message")
            .unwrap()
            .starts_with("cannot reach the engine")
    );
    assert_eq!(
        text_of(&r.body, "reg-headline"),
        Some(format!("Registration with engine 127.0.0.1:{closed} failed").as_str())
    );
    assert_eq!(text_of(&r.body, "reg-attempts"), Some("1"));
    assert!(
        text_of(&r.body, "reg-last-attempt")
            .unwrap()
            .ends_with(" UTC")
    );
    assert!(
        text_of(&r.body, "reg-error")
            .unwrap()
            .starts_with("cannot reach")
    );
    assert_eq!(s.state().name(), "failed");
}

#[test]
fn fingerprints_that_do_not_match_store_nothing() {
    let s = setup();
    let engine = TestEngine::start();
    let other = TestEngine::start();
    // A fingerprint typed in the first step is checked at once.
    let r = s.post(
        "/registration/fetch",
        &[
            ("engine", &engine.host()),
            ("port", &port(&engine)),
            ("fingerprint", &other.ca_sha256_hex()),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let message = text_of(&r.body, "reg-failure-message").unwrap();
    assert!(message.starts_with("fingerprint mismatch"), "{message}");
    assert!(message.contains("nothing was stored"), "{message}");
    assert!(text_of(&r.body, "reg-failure-next").is_some());
    assert!(!s.root.path(STATE_PATH).exists());

    // One that matches is acknowledged (SHA-1 as vdsm-tool prints it).
    let r = s.post(
        "/registration/fetch",
        &[
            ("engine", &format!("{}:{}", engine.host(), engine.port())),
            ("port", ""),
            ("fingerprint", &engine.ca_sha1_colon().to_uppercase()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        text_of(&r.body, "reg-typed-matches").is_some(),
        "{}",
        r.body
    );

    // The engine's CA changes between the two steps: the confirmation is refused.
    engine.rotate_ca();
    let r = s.post(
        "/registration/register",
        &[
            ("engine", &engine.host()),
            ("port", &port(&engine)),
            ("fingerprint", text_of(&r.body, "reg-fingerprint").unwrap()),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        text_of(&r.body, "reg-failure-message")
            .unwrap()
            .starts_with("fingerprint mismatch")
    );
    assert!(engine.hosts().is_empty());
    assert!(!s.root.path(registration::CA_PATH).exists());

    // A malformed fingerprint or address is a 400 with the reason.
    for fields in [
        [("engine", "127.0.0.1"), ("fingerprint", "SHA256:nothex!")],
        [("engine", "engine.example.com:8443"), ("port", "443")],
        [("engine", "<b>x</b>"), ("port", "")],
    ] {
        let r = s.post("/registration/fetch", &fields);
        assert_eq!(r.status, 400, "{fields:?}: {}", r.body);
        assert!(text_of(&r.body, "reg-failure-message").is_some());
        assert!(!r.body.contains("<b>x</b>"), "input is escaped");
    }
}

#[test]
fn a_registered_node_asked_to_register_again_is_told_so_and_a_wrong_name_is_explained() {
    let s = setup();
    let engine = TestEngine::start();
    let fields = [
        ("engine", engine.host()),
        ("port", port(&engine)),
        ("fingerprint", engine.ca_sha256_hex()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(s.post("/registration/register", &fields).status, 200);
    let r = s.post("/registration/fetch", &fields[..2]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        text_of(&r.body, "reg-replaces")
            .unwrap()
            .contains("registered with engine"),
        "{}",
        r.body
    );
    assert_eq!(s.state().name(), "registered", "fetching again keeps it");

    // The engine's certificate names another host than the one the node was given.
    engine.serve_certificate_for(&["engine.example.com"]);
    let r = s.post("/registration/register", &fields);
    assert_eq!(r.status, 502, "{}", r.body);
    let message = text_of(&r.body, "reg-failure-message").unwrap();
    assert!(
        message.contains("does not name 127.0.0.1")
            && message.contains("engine.example.com")
            && message.contains("fully qualified name"),
        "{message}"
    );
    assert_eq!(
        s.state().name(),
        "registered",
        "a failure keeps the registration"
    );
}

#[test]
fn a_ca_waiting_from_the_boot_time_registration_can_be_confirmed_on_the_page() {
    let s = setup();
    let engine = TestEngine::start();
    let addr = registration::EngineAddr::new(&engine.host(), engine.port()).unwrap();
    registration::fetch_ca_to_confirm(&s.root, &addr, None, std::time::Duration::from_secs(5))
        .unwrap();
    let page = s.page();
    assert!(
        text_of(&page.body, "reg-headline")
            .unwrap()
            .contains("waits for an administrator"),
        "{}",
        page.body
    );
    assert_eq!(
        text_of(&page.body, "reg-fingerprint"),
        Some(engine.ca_sha256_hex().as_str())
    );
    // The page carries what confirming posts.
    for needle in [
        format!(r#"name="port" value="{}""#, engine.port()),
        format!(r#"name="fingerprint" value="{}""#, engine.ca_sha256_hex()),
    ] {
        assert!(page.body.contains(&needle), "{needle}");
    }
    assert!(Path::new(&s.root.path(STATE_PATH)).exists());
}
