//! The Registration page's views of recorded states.

use super::*;

fn form(engine: &str, port: &str) -> RegisterForm {
    RegisterForm {
        engine: engine.into(),
        port: port.into(),
        ..RegisterForm::default()
    }
}

#[test]
fn engine_address_and_port() {
    let e = engine_of(&form("Engine.Example.com", "")).unwrap();
    assert_eq!((e.host.as_str(), e.port), ("engine.example.com", 443));
    let e = engine_of(&form("engine.example.com:8443", "")).unwrap();
    assert_eq!(e.port, 8443);
    let e = engine_of(&form(" engine.example.com ", "8443")).unwrap();
    assert_eq!(e.port, 8443);
    let e = engine_of(&form("[2001:db8::1]", "443")).unwrap();
    assert_eq!(e.host, "2001:db8::1");
    for (host, port) in [
        ("", "443"),
        ("engine:8443", "443"),
        ("engine", "http"),
        ("engine", "0"),
        ("a b", ""),
        ("<script>", ""),
    ] {
        let err = engine_of(&form(host, port)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput, "{host} {port}");
    }
}

#[test]
fn every_state_has_a_headline() {
    let engine = EngineAddr::new("engine.example.com", 443).unwrap();
    let ca = CaFingerprints::of_der(b"ca");
    let file = |status| StateFile {
        updated_at: 1_700_000_000,
        ..StateFile::new(status)
    };
    let v = state_view(&file(RegistrationState::Unregistered));
    assert_eq!(v.headline, "Not registered with an engine");
    let v = state_view(&file(RegistrationState::AwaitingConfirmation {
        engine: engine.clone(),
        ca: ca.clone(),
        previous_ca: None,
        since: 1,
    }));
    assert_eq!(v.awaiting.unwrap().sha256, ca.sha256);
    let v = state_view(&file(RegistrationState::Failed {
        engine,
        ca: None,
        attempts: 2,
        error_kind: ErrorKind::Unreachable,
        last_error: "cannot reach".into(),
        failed_at: 1_700_000_000,
        next_retry_at: 1_700_000_004,
    }));
    assert!(v.failed);
    assert!(v.rows.iter().any(|r| r.value == "cannot reach"));
    assert!(
        v.rows.iter().any(|r| r.value == "2023-11-14 22:13:20 UTC"),
        "{:?}",
        v.rows
    );
}

#[test]
fn the_engine_link_is_shown_as_its_status_says() {
    let now = 1_764_100_000;
    let serving = LinkStatus {
        serving: true,
        connections: 1,
        peers: vec!["192.0.2.5:40212".into()],
        last_connected: Some(now - 600),
        last_request: Some(now - 3),
        last_method: Some("Host.getStats".into()),
        requests: 1_234,
        cluster_levels: vec!["4.6".into(), "4.7".into()],
        pid: 812,
        started: now - 7_200,
        ..LinkStatus::default()
    };
    let v = link_view(&serving.summary(now), Some(&serving));
    assert_eq!((v.state, v.warn), ("connected", false));
    assert_eq!(
        v.summary,
        "managed: the engine is connected (1 connection from 192.0.2.5:40212), last asked \
         3 s ago (Host.getStats)"
    );
    let rows: Vec<(&str, &str)> = v.rows.iter().map(|r| (r.id, r.value.as_str())).collect();
    assert_eq!(
        rows,
        [
            ("reg-vdsm-connections", "1 (192.0.2.5:40212)"),
            (
                "reg-vdsm-last-request",
                "2025-11-25 19:46:37 UTC (Host.getStats)"
            ),
            (
                "reg-vdsm-requests",
                "1234 since the service started (2025-11-25 17:46:40 UTC)"
            ),
            ("reg-vdsm-levels", "4.6, 4.7"),
        ]
    );
    let known = LinkStatus {
        engine_cluster_level: Some("4.7".into()),
        ..serving
    };
    let v = link_view(&known.summary(now), Some(&known));
    assert!(
        v.rows
            .iter()
            .any(|r| (r.id, r.value.as_str()) == ("reg-vdsm-engine-level", "4.7"))
    );

    // No status file: the service is not running; nothing but the line to show.
    let v = link_view(&Managed::NotRunning, None);
    assert_eq!((v.state, v.warn, v.rows.len()), ("not-running", true, 0));
    let waiting = LinkStatus {
        waiting_for: Some("/etc/pki/vdsm/keys/vdsmkey.pem is missing".into()),
        started: now,
        ..LinkStatus::default()
    };
    let v = link_view(&waiting.summary(now), Some(&waiting));
    assert_eq!((v.state, v.warn), ("not-serving", true));
    assert!(
        v.rows
            .iter()
            .any(|r| (r.id, r.value.as_str()) == ("reg-vdsm-levels", "none yet"))
    );
}
