//! The test engine answers as the contract says; these tests pin that down with raw
//! requests, so the client tests below rest on a faithful engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use test_engine::{Faults, TestEngine};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

fn agent(engine: &TestEngine) -> ureq::Agent {
    let ca = Certificate::from_der(&engine.ca_der()).to_owned();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent()
}

fn get(engine: &TestEngine, path_and_query: &str) -> (u16, String, String) {
    let url = format!("https://127.0.0.1:{}{path_and_query}", engine.port());
    let mut response = agent(engine).get(&url).call().unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.body_mut().read_to_string().unwrap(),
    )
}

const REG: &str = "/ovirt-engine/services/host-register";

#[test]
fn commands_answer_as_the_contract_says() {
    let engine = TestEngine::start();
    let (status, ctype, body) = get(&engine, &format!("{REG}?version=1&command=get-version"));
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (200, "text/plain", "1")
    );

    let (status, ctype, body) = get(&engine, &format!("{REG}?version=1&command=get-pki-trust"));
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/x-x509-ca-cert");
    assert_eq!(body, engine.ca_pem());
    assert!(
        body.lines().any(|l| l.len() == 76),
        "76-character lines: {body}"
    );

    let (status, _, body) = get(&engine, &format!("{REG}?version=1&command=get-ssh-trust"));
    assert_eq!(status, 200);
    assert!(body.ends_with(" ovirt-engine"), "{body}");
    assert!(!body.ends_with('\n'));

    let (status, _, body) = get(
        &engine,
        &format!("{REG}?version=1&command=register&uniqueId=ABC%2Fdef!&vdsPort=54321"),
    );
    assert_eq!((status, body.as_str()), (200, "OK\n"));
    assert!(
        engine.hosts().contains_key("ABCdef"),
        "{:?}",
        engine.hosts()
    );
}

#[test]
fn errors_answer_as_the_contract_says() {
    let engine = TestEngine::start();
    for (query, message) in [
        (
            "command=get-version",
            "Invalid registration protocol version -1",
        ),
        (
            "version=x&command=get-version",
            "Invalid registration protocol version -1",
        ),
        (
            "version=2&command=get-version",
            "Invalid registration protocol version 2",
        ),
        ("version=1", "command parameter is missing"),
        ("version=1&command=nope", "Invalid command"),
        ("version=1&command=register", "Unique id was not provided"),
        (
            "version=1&command=register&uniqueId=a&sshPort=x",
            "For input string: \"x\"",
        ),
        (
            "version=1&command=register&uniqueId=a&vdsPort=1.5",
            "For input string: \"1.5\"",
        ),
    ] {
        let (status, _, body) = get(&engine, &format!("{REG}?{query}"));
        assert_eq!((status, body.as_str()), (400, message), "{query}");
    }
    engine.set_faults(Faults {
        html_errors: true,
        ..Faults::default()
    });
    let (status, ctype, body) = get(&engine, &format!("{REG}?version=1&command=nope"));
    assert_eq!(status, 400);
    assert!(ctype.starts_with("text/html"));
    assert!(body.contains("<body>Invalid command</body>"), "{body}");
}

#[test]
fn pki_resource_serves_the_same_ca_and_key() {
    let engine = TestEngine::start();
    let pki = "/ovirt-engine/services/pki-resource";
    let (_, _, ca) = get(
        &engine,
        &format!("{pki}?resource=ca-certificate&format=X509-PEM-CA"),
    );
    assert_eq!(ca, engine.ca_pem());
    let (_, _, key) = get(
        &engine,
        &format!("{pki}?resource=engine-certificate&format=OPENSSH-PUBKEY"),
    );
    assert_eq!(key, engine.ssh_key());
}

#[test]
fn head_has_no_body_post_is_refused_and_requests_are_recorded() {
    let engine = TestEngine::start();
    let url = format!(
        "https://127.0.0.1:{}{REG}?version=1&command=get-version",
        engine.port()
    );
    let head = agent(&engine).head(&url).call().unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let post = agent(&engine).post(&url).send("").unwrap();
    assert_eq!(post.status().as_u16(), 405);
    let methods: Vec<_> = engine.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "POST"]);
}

#[test]
fn dropped_connections_look_unreachable_then_recover() {
    let engine = TestEngine::builder()
        .faults(Faults {
            drop_connections: 2,
            ..Faults::default()
        })
        .start();
    let url = format!(
        "https://127.0.0.1:{}{REG}?version=1&command=get-version",
        engine.port()
    );
    assert!(agent(&engine).get(&url).call().is_err());
    assert!(agent(&engine).get(&url).call().is_err());
    assert_eq!(
        agent(&engine).get(&url).call().unwrap().status().as_u16(),
        200
    );
}
