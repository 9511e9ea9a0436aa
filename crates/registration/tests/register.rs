//! The registration flow against the loopback test engine, fault by fault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use registration::{
    CA_PATH, EngineAddr, Error, Fingerprint, MANAGED_CERT_PATH, RegisterOptions, RegistrationState,
    STATE_PATH, Sysroot, Trust, load_state, refresh_managed, register,
};
use test_engine::{Faults, TestEngine, pem_body};

const DMI_UUID: &str = "4C4C4544-0042-3510-8052-B4C04F4A4D32";
const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERERERERERER root@node";

fn scratch() -> (tempfile::TempDir, Sysroot) {
    let dir = tempfile::tempdir().unwrap();
    let root = Sysroot::new(dir.path());
    for (path, text) in [
        (
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n".to_string(),
        ),
        ("/etc/ssh/ssh_host_ed25519_key.pub", format!("{HOST_KEY}\n")),
        ("/sys/class/dmi/id/product_uuid", format!("{DMI_UUID}\n")),
    ] {
        let p = root.path(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    (dir, root)
}

fn options(engine: &TestEngine) -> RegisterOptions {
    let mut o = RegisterOptions::new(EngineAddr::new(&engine.host(), engine.port()).unwrap());
    o.timeout = Duration::from_secs(5);
    o
}

fn fingerprint(engine: &TestEngine) -> Trust<'static> {
    Trust::Fingerprint(engine.ca_sha256_hex().parse().unwrap())
}

fn exists(root: &Sysroot, path: &str) -> bool {
    root.path(path).exists()
}

fn authorized_keys(root: &Sysroot) -> String {
    fs::read_to_string(root.path("/root/.ssh/authorized_keys")).unwrap()
}

#[test]
fn registers_with_every_fingerprint_spelling() {
    let engine = TestEngine::start();
    for fp in [
        engine.ca_sha256_hex(),
        engine.ca_sha256_base64(),
        engine.ca_sha1_colon(),
        engine.ca_sha1_colon().to_uppercase(),
    ] {
        let (_d, root) = scratch();
        let trust = Trust::Fingerprint(fp.parse::<Fingerprint>().unwrap());
        let outcome = register(&root, &options(&engine), trust).unwrap();
        assert_eq!(outcome.state.name(), "registered", "{fp}");
        assert_eq!(outcome.ca_confirmed_by, "fingerprint");
    }
}

#[test]
fn full_registration_sends_what_the_contract_asks() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let mut opts = options(&engine);
    opts.node_name = Some("node 1 & co".into());
    opts.node_address = Some("node1.example.com".into());
    opts.ssh_port = 2222;
    let outcome = register(&root, &opts, fingerprint(&engine)).unwrap();

    assert_eq!(
        engine.commands(),
        ["get-pki-trust", "get-version", "get-ssh-trust", "register"]
    );
    let register_request = engine.requests().pop().unwrap();
    assert!(!register_request.raw_query.contains(' '));
    assert!(
        register_request
            .raw_query
            .contains("name=node%201%20%26%20co")
    );
    assert!(
        register_request
            .raw_query
            .contains("sshKeyFingerprint=SHA256%3A")
    );
    assert!(!register_request.raw_query.contains("&port="));

    let hosts = engine.hosts();
    let host = hosts
        .get(&DMI_UUID.to_lowercase())
        .expect("registered by lower-case id");
    assert_eq!(host.param("name"), Some("node 1 & co"));
    assert_eq!(host.param("address"), Some("node1.example.com"));
    assert_eq!(host.param("sshUser"), Some("root"));
    assert_eq!(host.param("sshPort"), Some("2222"));
    assert_eq!(host.param("vdsPort"), Some("54321"));
    let expected_fp = registration::SshPublicKey::parse_line(HOST_KEY)
        .unwrap()
        .fingerprint();
    assert_eq!(host.param("sshKeyFingerprint"), Some(expected_fp.as_str()));

    assert_eq!(
        pem_body(&fs::read_to_string(root.path(CA_PATH)).unwrap()),
        pem_body(&engine.ca_pem())
    );
    assert_eq!(authorized_keys(&root), format!("{}\n", engine.ssh_key()));
    assert_eq!(
        fs::read_to_string(root.path("/etc/vdsm/vdsm.id")).unwrap(),
        format!("{}\n", DMI_UUID.to_lowercase())
    );
    let state = load_state(&root).unwrap().status;
    assert_eq!(state, outcome.state);
    let reg = state.registration().unwrap();
    assert_eq!(reg.ca.sha256, engine.ca_sha256_hex());
    assert_eq!(reg.ca.sha1, engine.ca_sha1_colon());
}

#[test]
fn registering_again_changes_nothing_and_adds_no_duplicate_key() {
    let engine = TestEngine::builder()
        .faults(Faults {
            ssh_key_newline: true,
            ..Faults::default()
        })
        .start();
    let (_d, root) = scratch();
    register(&root, &options(&engine), fingerprint(&engine)).unwrap();
    // The second time the stored CA is enough: nobody needs to confirm it again.
    let again = register(&root, &options(&engine), Trust::Confirmed).unwrap();
    assert_eq!(again.ca_confirmed_by, "earlier-registration");
    assert!(!again.authorized_key.added);
    assert_eq!(authorized_keys(&root).lines().count(), 1);
    assert!(authorized_keys(&root).ends_with('\n'));
    let hosts = engine.hosts();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts.values().next().unwrap().registrations, 2);
}

#[test]
fn wrong_fingerprint_stores_nothing() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let wrong = Fingerprint::Sha256([7; 32]);
    let err = register(&root, &options(&engine), Trust::Fingerprint(wrong)).unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&engine.ca_sha256_hex()), "{err}");
    for path in [STATE_PATH, CA_PATH, "/root/.ssh", "/etc/vdsm/vdsm.id"] {
        assert!(!exists(&root, path), "{path} was written");
    }
    assert_eq!(engine.commands(), ["get-pki-trust"]);
}

#[test]
fn no_confirmation_and_declined_confirmation_store_nothing() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let err = register(&root, &options(&engine), Trust::Confirmed).unwrap_err();
    assert!(matches!(err, Error::ConfirmationRequired), "{err}");
    let mut asked = Vec::new();
    let mut ask = |c: &registration::Confirmation<'_>| {
        asked.push(c.ca.clone());
        false
    };
    let err = register(&root, &options(&engine), Trust::Ask(&mut ask)).unwrap_err();
    assert!(matches!(err, Error::Declined), "{err}");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].sha1, engine.ca_sha1_colon());
    for path in [STATE_PATH, CA_PATH, "/root/.ssh"] {
        assert!(!exists(&root, path), "{path} was written");
    }
}

#[test]
fn asking_records_awaiting_confirmation_while_waiting() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let root2 = root.clone();
    let mut ask = |_: &registration::Confirmation<'_>| {
        assert_eq!(
            load_state(&root2).unwrap().status.name(),
            "awaiting-confirmation"
        );
        true
    };
    let outcome = register(&root, &options(&engine), Trust::Ask(&mut ask)).unwrap();
    assert_eq!(outcome.ca_confirmed_by, "administrator");
    assert_eq!(outcome.state.name(), "registered");
}

#[test]
fn certificate_for_another_name_is_a_plain_host_mismatch() {
    let engine = TestEngine::builder()
        .certificate_names(&["engine.other.test"])
        .start();
    let (_d, root) = scratch();
    let err = register(&root, &options(&engine), fingerprint(&engine)).unwrap_err();
    match &err {
        Error::HostMismatch {
            expected,
            presented,
        } => {
            assert_eq!(expected, "127.0.0.1");
            assert_eq!(presented, &["engine.other.test".to_string()]);
        }
        other => panic!("expected a host mismatch, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("does not name 127.0.0.1 (it names engine.other.test)"),
        "{text}"
    );
    assert!(!exists(&root, CA_PATH));
    assert!(!exists(&root, "/root/.ssh"));
    assert_eq!(load_state(&root).unwrap().status.name(), "failed");
}

#[test]
fn later_requests_are_verified_against_the_confirmed_ca() {
    // An impostor serves its own CA; the administrator confirms that CA's fingerprint
    // by mistake; the engine's real certificate is then not signed by it.
    let engine = TestEngine::start();
    let decoy = engine.serve_decoy_ca();
    let (_d, root) = scratch();
    let trust = Trust::Fingerprint(decoy.parse().unwrap());
    let err = register(&root, &options(&engine), trust).unwrap_err();
    assert!(matches!(err, Error::Untrusted { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the engine CA confirmed for this node did not sign it"),
        "{err}"
    );
    assert!(!exists(&root, CA_PATH));
    assert!(!exists(&root, "/root/.ssh"));
    assert_eq!(engine.commands(), ["get-pki-trust"]);
}

#[test]
fn unreachable_engine_is_recorded_with_attempts_then_recovers() {
    let engine = TestEngine::builder()
        .faults(Faults {
            drop_connections: 2,
            ..Faults::default()
        })
        .start();
    let (_d, root) = scratch();
    for attempt in 1..=2 {
        let err = register(&root, &options(&engine), fingerprint(&engine)).unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err}");
        match load_state(&root).unwrap().status {
            RegistrationState::Failed {
                attempts,
                next_retry_at,
                failed_at,
                error_kind,
                ..
            } => {
                assert_eq!(attempts, attempt);
                assert!(next_retry_at > failed_at);
                assert_eq!(error_kind, registration::ErrorKind::Unreachable);
            }
            other => panic!("expected failed, got {other:?}"),
        }
    }
    let outcome = register(&root, &options(&engine), fingerprint(&engine)).unwrap();
    assert_eq!(outcome.state.name(), "registered");
}

#[test]
fn slow_engine_within_the_timeout_works_beyond_it_is_unreachable() {
    let engine = TestEngine::builder()
        .faults(Faults {
            delay: Duration::from_millis(300),
            ..Faults::default()
        })
        .start();
    let (_d, root) = scratch();
    let mut opts = options(&engine);
    opts.timeout = Duration::from_millis(100);
    let err = register(&root, &opts, fingerprint(&engine)).unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("in time"), "{err}");
    opts.timeout = Duration::from_secs(5);
    register(&root, &opts, fingerprint(&engine)).unwrap();
}

#[test]
fn changed_ca_needs_a_new_confirmation() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    register(&root, &options(&engine), fingerprint(&engine)).unwrap();
    let old = engine.ca_sha256_hex();
    engine.rotate_ca();

    // Unattended: refused, and the registration is kept as it was.
    let err = register(&root, &options(&engine), Trust::Confirmed).unwrap_err();
    assert!(matches!(err, Error::CaChanged { .. }), "{err}");
    assert!(err.to_string().contains(&old));
    assert_eq!(load_state(&root).unwrap().status.name(), "registered");

    // The old fingerprint no longer matches.
    let stale = Trust::Fingerprint(old.parse().unwrap());
    let err = register(&root, &options(&engine), stale).unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err}");

    // Asked, the administrator sees that it changed, and confirms.
    let mut saw_previous = None;
    let mut ask = |c: &registration::Confirmation<'_>| {
        saw_previous = c.previous.map(|p| p.sha256.clone());
        true
    };
    register(&root, &options(&engine), Trust::Ask(&mut ask)).unwrap();
    assert_eq!(saw_previous, Some(old));
    assert_eq!(
        pem_body(&fs::read_to_string(root.path(CA_PATH)).unwrap()),
        pem_body(&engine.ca_pem())
    );
}

#[test]
fn html_page_instead_of_ssh_key_is_refused_before_writing() {
    let engine = TestEngine::builder()
        .faults(Faults {
            html_instead_of_ssh_key: true,
            ..Faults::default()
        })
        .start();
    let (_d, root) = scratch();
    let err = register(&root, &options(&engine), fingerprint(&engine)).unwrap_err();
    assert!(matches!(err, Error::NotAnSshKey { .. }), "{err}");
    assert!(err.to_string().contains("<!DOCTYPE html>"), "{err}");
    assert!(!exists(&root, "/root/.ssh/authorized_keys"));
    assert!(!engine.commands().contains(&"register".to_string()));
}

#[test]
fn engine_refusal_carries_its_message_without_html() {
    let engine = TestEngine::builder()
        .faults(Faults {
            register_error: Some("Host address is already in use".into()),
            html_errors: true,
            ..Faults::default()
        })
        .start();
    let (_d, root) = scratch();
    let err = register(&root, &options(&engine), fingerprint(&engine)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the engine refused register: Host address is already in use"
    );
    assert_eq!(err.kind(), registration::ErrorKind::EngineRejected);
}

#[test]
fn unknown_ssh_user_fails_before_anything_is_written() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let mut opts = options(&engine);
    opts.ssh_user = "ovirt".into();
    let err = register(&root, &opts, fingerprint(&engine)).unwrap_err();
    assert!(matches!(err, Error::UnknownUser { .. }), "{err}");
    assert!(!exists(&root, CA_PATH));
}

#[test]
fn managed_once_the_engine_deployed_a_host_certificate_it_signed() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    register(&root, &options(&engine), fingerprint(&engine)).unwrap();
    let cert = root.path(MANAGED_CERT_PATH);
    fs::create_dir_all(cert.parent().unwrap()).unwrap();
    let status = || refresh_managed(&root, load_state(&root).unwrap().status);

    // The CA itself is no host certificate.
    fs::write(&cert, engine.ca_pem()).unwrap();
    assert_eq!(status().name(), "registered");

    // A host certificate from another CA (an earlier engine) does not count.
    let other = TestEngine::start();
    fs::write(&cert, other.issue_host_certificate("node1.example.com")).unwrap();
    assert_eq!(status().name(), "registered");

    fs::write(&cert, engine.issue_host_certificate("node1.example.com")).unwrap();
    assert_eq!(status().name(), "managed");
    // Saved once seen, so the time it became managed stays put.
    let first = registration::current_state(&root).unwrap();
    assert_eq!(load_state(&root).unwrap().status, first.status);
    assert_eq!(
        registration::current_state(&root).unwrap().status,
        first.status
    );
    assert!(Path::new(&root.path(STATE_PATH)).exists());
}

#[test]
fn a_second_registration_at_the_same_time_is_refused() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let lock_path = root.path(registration::LOCK_PATH);
    fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let mut held = fd_lock::RwLock::new(fs::File::create(&lock_path).unwrap());
    let guard = held.write().unwrap();
    let err = register(&root, &options(&engine), fingerprint(&engine)).unwrap_err();
    assert!(matches!(err, Error::Busy), "{err}");
    assert!(engine.requests().is_empty());
    drop(guard);
    register(&root, &options(&engine), fingerprint(&engine)).unwrap();
}
