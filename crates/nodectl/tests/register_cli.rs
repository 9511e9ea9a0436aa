//! `nodectl register` against the loopback test engine, with a scratch sysroot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use test_engine::{Faults, TestEngine, pem_body};

const DMI_UUID: &str = "4C4C4544-0042-3510-8052-B4C04F4A4D32";
const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERERERERERER root@node";

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = Self { dir };
        node.put("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
        node.put(
            "/etc/ssh/ssh_host_ed25519_key.pub",
            &format!("{HOST_KEY}\n"),
        );
        node.put("/sys/class/dmi/id/product_uuid", &format!("{DMI_UUID}\n"));
        node
    }

    fn path(&self, path: &str) -> std::path::PathBuf {
        self.dir.path().join(path.trim_start_matches('/'))
    }

    fn put(&self, path: &str, text: &str) {
        let p = self.path(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }

    /// Runs `nodectl register ARGS --sysroot SCRATCH` with no terminal on stdin.
    fn nodectl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nodectl"))
            .arg("register")
            .args(args)
            .arg("--sysroot")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn register(&self, engine: &TestEngine, extra: &[&str]) -> Output {
        let port = engine.port().to_string();
        let mut args = vec![
            "--engine-fqdn",
            "127.0.0.1",
            "--engine-port",
            port.as_str(),
            "--timeout",
            "5",
        ];
        args.extend_from_slice(extra);
        self.nodectl(&args)
    }

    fn status_json(&self) -> Value {
        let out = self.nodectl(&["--status", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "nodectl failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[track_caller]
fn fails_with(out: &Output, needle: &str) {
    assert!(
        !out.status.success(),
        "nodectl succeeded: {}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "errors go to stderr only: {}",
        text(&out.stdout)
    );
}

#[test]
fn registers_with_a_fingerprint_and_reports_status() {
    let engine = TestEngine::start();
    let node = Node::new();
    let fp = engine.ca_sha256_hex();
    let stdout = ok(&node.register(&engine, &["--fingerprint", &fp, "--node-name", "node1"]));
    assert!(stdout.contains("Pending Approval"), "{stdout}");
    assert!(stdout.contains(&DMI_UUID.to_lowercase()), "{stdout}");

    let status = node.status_json();
    assert_eq!(status["apiVersion"], "hvnode.io/v1");
    assert_eq!(status["kind"], "Registration");
    assert_eq!(status["status"]["state"], "registered");
    assert_eq!(status["status"]["engine"]["port"], engine.port());
    assert_eq!(status["status"]["ca"]["sha1"], engine.ca_sha1_colon());

    let human = ok(&node.nodectl(&["--status"]));
    assert!(human.contains("state:    registered"), "{human}");
    assert!(human.contains("pending approval"), "{human}");

    let hosts = engine.hosts();
    let host = &hosts[&DMI_UUID.to_lowercase()];
    assert_eq!(host.param("name"), Some("node1"));
    assert_eq!(host.param("vdsPort"), Some("54321"));
    let keys = fs::read_to_string(node.path("/root/.ssh/authorized_keys")).unwrap();
    assert_eq!(keys, format!("{}\n", engine.ssh_key()));
}

#[test]
fn json_result_is_versioned() {
    let engine = TestEngine::start();
    let node = Node::new();
    let fp = engine.ca_sha1_colon();
    let stdout = ok(&node.register(&engine, &["--fingerprint", &fp, "--json"]));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["apiVersion"], "hvnode.io/v1");
    assert_eq!(json["kind"], "RegistrationResult");
    assert_eq!(json["state"]["state"], "registered");
    assert_eq!(json["caConfirmedBy"], "fingerprint");
    assert_eq!(json["uniqueId"]["source"], "dmi");
    assert_eq!(json["authorizedKey"]["added"], true);
}

#[test]
fn refuses_without_terminal_or_fingerprint_and_contacts_nobody() {
    let engine = TestEngine::start();
    let node = Node::new();
    fails_with(&node.register(&engine, &[]), "pass --fingerprint");
    assert!(engine.requests().is_empty());
    assert!(!node.exists("/var/lib/hvnode/registration.json"));
}

#[test]
fn wrong_or_malformed_fingerprint_stores_nothing() {
    let engine = TestEngine::start();
    let node = Node::new();
    let wrong = format!("SHA256:{}", "ab".repeat(32));
    fails_with(
        &node.register(&engine, &["--fingerprint", &wrong]),
        "fingerprint mismatch",
    );
    fails_with(
        &node.register(&engine, &["--fingerprint", "SHA256:nope"]),
        "is not a fingerprint",
    );
    for path in [
        "/var/lib/hvnode/registration.json",
        "/etc/pki/ovirt-engine/ca.pem",
        "/root/.ssh",
        "/etc/vdsm/vdsm.id",
    ] {
        assert!(!node.exists(path), "{path} was written");
    }
    assert!(engine.hosts().is_empty());
}

#[test]
fn certificate_for_another_name_is_named_plainly() {
    let engine = TestEngine::builder()
        .certificate_names(&["engine.other.test"])
        .start();
    let node = Node::new();
    let fp = engine.ca_sha256_base64();
    fails_with(
        &node.register(&engine, &["--fingerprint", &fp]),
        "does not name 127.0.0.1 (it names engine.other.test)",
    );
}

#[test]
fn unreachable_engine_is_retried_by_running_again() {
    let engine = TestEngine::builder()
        .faults(Faults {
            drop_connections: 2,
            ..Faults::default()
        })
        .start();
    let node = Node::new();
    let fp = engine.ca_sha256_hex();
    for attempt in 1..=2 {
        fails_with(
            &node.register(&engine, &["--fingerprint", &fp]),
            "cannot reach the engine at 127.0.0.1",
        );
        let status = node.status_json();
        assert_eq!(status["status"]["state"], "failed");
        assert_eq!(status["status"]["attempts"], attempt);
        assert_eq!(status["status"]["errorKind"], "unreachable");
    }
    ok(&node.register(&engine, &["--fingerprint", &fp]));
    assert_eq!(node.status_json()["status"]["state"], "registered");
}

#[test]
fn slow_engine_beyond_the_timeout_is_unreachable() {
    let engine = TestEngine::builder()
        .faults(Faults {
            delay: std::time::Duration::from_millis(1500),
            ..Faults::default()
        })
        .start();
    let node = Node::new();
    let fp = engine.ca_sha256_hex();
    let port = engine.port().to_string();
    let out = node.nodectl(&[
        "--engine-fqdn",
        "127.0.0.1",
        "--engine-port",
        &port,
        "--timeout",
        "1",
        "--fingerprint",
        &fp,
    ]);
    fails_with(&out, "no answer in time");
}

#[test]
fn registering_again_needs_yes_and_reuses_the_confirmed_ca() {
    let engine = TestEngine::start();
    let node = Node::new();
    let fp = engine.ca_sha256_hex();
    ok(&node.register(&engine, &["--fingerprint", &fp]));
    fails_with(&node.register(&engine, &[]), "pass --yes to register again");
    let stdout = ok(&node.register(&engine, &["--yes"]));
    assert!(
        stdout.contains("confirmed by earlier-registration"),
        "{stdout}"
    );
    assert!(stdout.contains("already in"), "{stdout}");
    let keys = fs::read_to_string(node.path("/root/.ssh/authorized_keys")).unwrap();
    assert_eq!(keys.lines().count(), 1);
}

#[test]
fn changed_ca_needs_a_new_fingerprint() {
    let engine = TestEngine::start();
    let node = Node::new();
    ok(&node.register(&engine, &["--fingerprint", &engine.ca_sha256_hex()]));
    engine.rotate_ca();
    fails_with(
        &node.register(&engine, &["--yes"]),
        "CA certificate changed since the last registration",
    );
    ok(&node.register(
        &engine,
        &["--yes", "--fingerprint", &engine.ca_sha256_hex()],
    ));
    let ca = fs::read_to_string(node.path("/etc/pki/ovirt-engine/ca.pem")).unwrap();
    assert_eq!(pem_body(&ca), pem_body(&engine.ca_pem()));
    assert!(
        ca.lines().all(|l| l.len() <= 64),
        "stored with 64-character lines"
    );
}

#[test]
fn html_instead_of_ssh_key_is_refused() {
    let engine = TestEngine::builder()
        .faults(Faults {
            html_instead_of_ssh_key: true,
            ..Faults::default()
        })
        .start();
    let node = Node::new();
    fails_with(
        &node.register(&engine, &["--fingerprint", &engine.ca_sha256_hex()]),
        "is not an SSH public key",
    );
    assert!(!node.exists("/root/.ssh/authorized_keys"));
}

#[test]
fn engine_refusal_shows_its_message() {
    let engine = TestEngine::builder()
        .faults(Faults {
            register_error: Some("Cannot add Host. The address is in use.".into()),
            html_errors: true,
            ..Faults::default()
        })
        .start();
    let node = Node::new();
    fails_with(
        &node.register(&engine, &["--fingerprint", &engine.ca_sha256_hex()]),
        "the engine refused register: Cannot add Host. The address is in use.",
    );
}

#[test]
fn managed_once_the_engine_deployed_its_certificate() {
    let engine = TestEngine::start();
    let node = Node::new();
    ok(&node.register(&engine, &["--fingerprint", &engine.ca_sha256_hex()]));
    node.put(
        "/etc/pki/vdsm/certs/vdsmcert.pem",
        &engine.issue_host_certificate("node1.example.com"),
    );
    assert_eq!(node.status_json()["status"]["state"], "managed");
    let human = ok(&node.nodectl(&["--status"]));
    assert!(human.contains("managed by engine 127.0.0.1:"), "{human}");
    assert!(human.contains("\ndeployed: "), "{human}");
    // No status file: the engine's link is not running.
    assert_eq!(node.status_json()["vdsm"]["state"], "not-running");
    assert!(
        human.contains("\nmanaged:  no, hvnode-vdsm is not running"),
        "{human}"
    );

    // The engine's link serves the engine, which asked a moment ago.
    let now = registration::now_unix();
    let link = vdsm::status::Status {
        serving: true,
        connections: 1,
        peers: vec!["192.0.2.5:40212".into()],
        last_connected: Some(now - 600),
        last_request: Some(now - 3),
        last_method: Some("Host.getStats".into()),
        requests: 42,
        cluster_levels: vec!["4.6".into(), "4.7".into()],
        pid: 812,
        started: 1_764_100_000,
        ..Default::default()
    };
    let path = node.path(vdsm::status::STATUS_PATH);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    link.write(&path).unwrap();
    let status = node.status_json();
    assert_eq!(status["vdsm"]["state"], "connected", "{status}");
    assert_eq!(status["vdsm"]["service"]["requests"], 42, "{status}");
    let human = ok(&node.nodectl(&["--status"]));
    for want in [
        "\nmanaged:  the engine is connected (1 connection from 192.0.2.5:40212), last asked ",
        " s ago (Host.getStats)\n",
        "\nrequests: 42 since hvnode-vdsm started (2025-11-25 19:46:40 UTC), the last at ",
        "\nlevels:   4.6, 4.7 offered (which the engine uses is not known)\n",
    ] {
        assert!(human.contains(want), "{want}\n{human}");
    }
}

#[test]
fn port_in_the_fqdn_is_refused_with_advice() {
    let node = Node::new();
    fails_with(
        &node.nodectl(&[
            "--engine-fqdn",
            "engine.example.com:8443",
            "--fingerprint",
            "aa",
        ]),
        "--engine-port",
    );
}

/// On a terminal, the fingerprints are shown and the answer decides. `script` gives
/// the program a pseudo-terminal; skipped where util-linux's `script` is missing
/// (a failure in CI).
#[test]
fn asks_on_a_terminal() {
    if !hvnode_testutil::require_tool("script") {
        return;
    }
    let engine = TestEngine::start();
    for (answer, registered) in [("n", false), ("y", true)] {
        let node = Node::new();
        let command = format!(
            "{} register --engine-fqdn 127.0.0.1 --engine-port {} --timeout 5 --sysroot {}",
            env!("CARGO_BIN_EXE_nodectl"),
            engine.port(),
            node.dir.path().display()
        );
        let mut child = Command::new("script")
            .args(["-qefc", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The prompt waits for a line; sending it early is fine, the terminal buffers it.
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            format!("{answer}\n").as_bytes(),
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        let screen = text(&out.stdout);
        assert!(screen.contains(&engine.ca_sha256_hex()), "{screen}");
        assert!(screen.contains(&engine.ca_sha1_colon()), "{screen}");
        assert!(
            screen.contains("Trust this CA and register? [y/N]"),
            "{screen}"
        );
        assert_eq!(out.status.success(), registered, "{screen}");
        assert_eq!(node.exists("/etc/pki/ovirt-engine/ca.pem"), registered);
        assert_eq!(node.exists("/var/lib/hvnode/registration.json"), registered);
    }
}

#[test]
fn zero_touch_from_kernel_arguments_retries_until_registered() {
    let engine = TestEngine::builder()
        .faults(Faults {
            drop_connections: 1,
            ..Faults::default()
        })
        .start();
    let node = Node::new();
    node.put(
        "/proc/cmdline",
        &format!(
            "BOOT_IMAGE=/vmlinuz quiet hvnode.engine=127.0.0.1:{} hvnode.engine_fingerprint={}\n",
            engine.port(),
            engine.ca_sha256_base64()
        ),
    );
    let out = node.nodectl(&["--zero-touch", "--json", "--timeout", "5"]);
    let stdout = ok(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("from kernel-command-line"), "{stderr}");
    assert!(
        stderr.contains("Attempt failed: cannot reach the engine"),
        "{stderr}"
    );
    assert!(stderr.contains("Next attempt in 1 s."), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["kind"], "Registration");
    assert_eq!(json["status"]["state"], "registered");
}

#[test]
fn zero_touch_from_the_installed_config_without_fingerprint_awaits_confirmation() {
    let engine = TestEngine::start();
    let node = Node::new();
    node.put(
        "/etc/hvnode/registration.conf",
        &format!("# from the kickstart\nengine=127.0.0.1:{}\n", engine.port()),
    );
    let out = node.nodectl(&["--zero-touch", "--timeout", "5"]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("state:    awaiting-confirmation"),
        "{stdout}"
    );
    assert!(stdout.contains(&engine.ca_sha256_hex()), "{stdout}");
    assert!(text(&out.stderr).contains("waits for an administrator"));
}

#[test]
fn zero_touch_without_configuration_does_nothing() {
    let node = Node::new();
    let out = node.nodectl(&["--zero-touch"]);
    let stdout = ok(&out);
    assert!(text(&out.stderr).contains("nothing to do"));
    assert!(stdout.contains("state:    unregistered"), "{stdout}");
}
