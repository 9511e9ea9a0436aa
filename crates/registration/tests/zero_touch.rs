//! Zero-touch registration: retried with backoff until it succeeds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::time::Duration;

use registration::{
    BACKOFF_CAP, BACKOFF_FLOOR, EngineAddr, Error, Fingerprint, RegistrationState, STATE_PATH,
    Sysroot, ZeroTouch, ZeroTouchEnd, ZeroTouchSource, load_state, register_until_done,
};
use test_engine::{Faults, TestEngine};

fn scratch() -> (tempfile::TempDir, Sysroot) {
    let dir = tempfile::tempdir().unwrap();
    let root = Sysroot::new(dir.path());
    let passwd = root.path("/etc/passwd");
    fs::create_dir_all(passwd.parent().unwrap()).unwrap();
    fs::write(passwd, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    (dir, root)
}

fn config(engine: &TestEngine, fingerprint: Option<Fingerprint>) -> ZeroTouch {
    ZeroTouch {
        engine: EngineAddr::new(&engine.host(), engine.port()).unwrap(),
        fingerprint,
        node_name: Some("zt-node".into()),
        node_address: None,
        source: ZeroTouchSource::KernelCommandLine,
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn retries_with_growing_capped_waits_until_registered() {
    let engine = TestEngine::builder()
        .faults(Faults {
            drop_connections: 4,
            ..Faults::default()
        })
        .start();
    let (_d, root) = scratch();
    let fp = engine.ca_sha256_hex().parse().unwrap();
    let mut waits = Vec::new();
    let mut attempts_seen = Vec::new();
    let end = register_until_done(&root, &config(&engine, Some(fp)), TIMEOUT, &mut |d, e| {
        assert!(matches!(e, Error::Unreachable { .. }), "{e}");
        if let RegistrationState::Failed { attempts, .. } = load_state(&root).unwrap().status {
            attempts_seen.push(attempts);
        }
        waits.push(d);
        true
    })
    .unwrap();
    assert!(matches!(
        end,
        ZeroTouchEnd::Registered(RegistrationState::Registered(_))
    ));
    assert_eq!(attempts_seen, [1, 2, 3, 4]);
    assert_eq!(waits.len(), 4);
    assert!(
        waits
            .iter()
            .all(|w| *w >= BACKOFF_FLOOR && *w <= BACKOFF_CAP),
        "{waits:?}"
    );
    // Recorded in whole seconds: the 4th wait (ceiling 8 s, at least 4 s) is longer
    // than the 1st (at most 1 s, rounded up to the 1 s floor).
    assert!(waits[3] > waits[0], "{waits:?}");
    assert_eq!(engine.hosts().len(), 1);
}

#[test]
fn already_registered_returns_without_contacting_the_engine() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let fp: Fingerprint = engine.ca_sha256_hex().parse().unwrap();
    let mut never = |_: Duration, e: &Error| panic!("no wait expected: {e}");
    register_until_done(&root, &config(&engine, Some(fp)), TIMEOUT, &mut never).unwrap();
    let before = engine.requests().len();
    let end = register_until_done(&root, &config(&engine, Some(fp)), TIMEOUT, &mut never).unwrap();
    assert!(matches!(end, ZeroTouchEnd::Registered(_)));
    assert_eq!(engine.requests().len(), before);
}

#[test]
fn without_fingerprint_the_node_awaits_an_administrator() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let mut never = |_: Duration, e: &Error| panic!("no wait expected: {e}");
    let end = register_until_done(&root, &config(&engine, None), TIMEOUT, &mut never).unwrap();
    match end {
        ZeroTouchEnd::AwaitingConfirmation(RegistrationState::AwaitingConfirmation {
            ca, ..
        }) => assert_eq!(ca.sha256, engine.ca_sha256_hex()),
        other => panic!("expected awaiting confirmation, got {other:?}"),
    }
    assert_eq!(
        load_state(&root).unwrap().status.name(),
        "awaiting-confirmation"
    );
    assert_eq!(engine.commands(), ["get-pki-trust"]);
}

#[test]
fn stopping_hands_back_the_last_error_and_a_mismatch_stores_nothing() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let wrong = Fingerprint::Sha1([1; 20]);
    let mut calls = 0;
    let err = register_until_done(
        &root,
        &config(&engine, Some(wrong)),
        TIMEOUT,
        &mut |d, _| {
            calls += 1;
            assert!(d >= BACKOFF_FLOOR);
            calls < 3
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err}");
    assert_eq!(calls, 3);
    assert!(!root.path(STATE_PATH).exists());
}

#[test]
fn a_ca_fetched_for_confirmation_is_recorded_but_not_trusted() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let addr = EngineAddr::new(&engine.host(), engine.port()).unwrap();
    let fetched = registration::fetch_ca_to_confirm(&root, &addr, None, TIMEOUT).unwrap();
    assert_eq!(fetched.ca.fingerprints.sha1, engine.ca_sha1_colon());
    assert_eq!(fetched.previous, None);
    let other: Fingerprint = TestEngine::start().ca_sha256_hex().parse().unwrap();
    let err = registration::fetch_ca_to_confirm(&root, &addr, Some(&other), TIMEOUT).unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err}");
    match load_state(&root).unwrap().status {
        RegistrationState::AwaitingConfirmation {
            engine: e, ca: f, ..
        } => {
            assert_eq!(e, addr);
            assert_eq!(f.sha256, engine.ca_sha256_hex());
        }
        other => panic!("expected awaiting-confirmation, got {other:?}"),
    }
    assert!(
        !root.path(registration::CA_PATH).exists(),
        "nothing trusted yet"
    );
}

#[test]
fn fetching_a_ca_again_leaves_a_registration_alone_and_names_a_changed_ca() {
    let engine = TestEngine::start();
    let (_d, root) = scratch();
    let fp: Fingerprint = engine.ca_sha256_hex().parse().unwrap();
    let mut never = |_: Duration, e: &Error| panic!("no wait expected: {e}");
    register_until_done(&root, &config(&engine, Some(fp)), TIMEOUT, &mut never).unwrap();
    let old = engine.ca_sha256_hex();
    engine.rotate_ca();
    let addr = EngineAddr::new(&engine.host(), engine.port()).unwrap();
    let fetched = registration::fetch_ca_to_confirm(&root, &addr, None, TIMEOUT).unwrap();
    assert_eq!(fetched.previous.unwrap().sha256, old);
    assert_eq!(fetched.ca.fingerprints.sha256, engine.ca_sha256_hex());
    assert_eq!(load_state(&root).unwrap().status.name(), "registered");
}

#[test]
fn a_registration_made_by_hand_wins_over_the_boot_settings() {
    let by_hand = TestEngine::start();
    let configured = TestEngine::start();
    let (_d, root) = scratch();
    let fp: Fingerprint = by_hand.ca_sha256_hex().parse().unwrap();
    let mut never = |_: Duration, e: &Error| panic!("no wait expected: {e}");
    register_until_done(&root, &config(&by_hand, Some(fp)), TIMEOUT, &mut never).unwrap();
    let other: Fingerprint = configured.ca_sha256_hex().parse().unwrap();
    let end = register_until_done(
        &root,
        &config(&configured, Some(other)),
        TIMEOUT,
        &mut never,
    )
    .unwrap();
    match end {
        ZeroTouchEnd::Registered(state) => assert_eq!(state.engine().unwrap().port, by_hand.port()),
        other => panic!("expected registered, got {other:?}"),
    }
    assert!(configured.requests().is_empty());
}
