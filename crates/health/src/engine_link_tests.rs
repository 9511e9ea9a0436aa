//! The vdsm group on recorded facts, and the facts read from a node's files.

use super::*;
use crate::{Report, render};

const NOW: u64 = 1_764_100_000;
const DAY: i64 = 86_400;

/// The service serving one engine connection.
fn serving() -> LinkStatus {
    LinkStatus {
        serving: true,
        connections: 1,
        peers: vec!["192.0.2.5:40212".into()],
        last_connected: Some(NOW - 600),
        last_request: Some(NOW - 3),
        last_method: Some("Host.getStats".into()),
        requests: 1_234,
        cluster_levels: vec!["4.6".into(), "4.7".into()],
        pid: 812,
        started: NOW - 7_200,
        ..LinkStatus::default()
    }
}

/// A node an engine enrolled and manages.
pub(crate) fn enrolled() -> VdsmFacts {
    VdsmFacts {
        active_state: "active".into(),
        pki: [vdsm::pki::KEY, vdsm::pki::CERT, vdsm::pki::CA]
            .into_iter()
            .map(|n| (n, Found::Present))
            .collect(),
        cert_not_after: Some(Ok(NOW as i64 + 365 * DAY)),
        vdsm_id: Ok(Some("4c4c4544-0042-3510-8052-b4c04f4a4d32".into())),
        status: Ok(Some(serving())),
        now: NOW,
    }
}

/// A node no engine enrolled yet: the service waits for its certificates.
fn not_enrolled() -> VdsmFacts {
    VdsmFacts {
        pki: enrolled()
            .pki
            .into_iter()
            .map(|(n, _)| (n, Found::Missing))
            .collect(),
        cert_not_after: None,
        vdsm_id: Ok(None),
        status: Ok(Some(LinkStatus {
            serving: false,
            waiting_for: Some("/etc/pki/vdsm/keys/vdsmkey.pem is missing".into()),
            pid: 812,
            started: NOW - 60,
            ..LinkStatus::default()
        })),
        ..enrolled()
    }
}

fn report(f: &VdsmFacts) -> Report {
    Report::new(vec![group_of(f)])
}

#[test]
fn an_enrolled_node_checks_ok() {
    let r = report(&enrolled());
    let text = render(&r);
    assert_eq!(r.status, Status::Ok, "{text}");
    assert_eq!(
        text,
        "Status: OK\n\
         vdsm ... OK\n  \
         hvnode-vdsm.service ... OK (active)\n  \
         Certificates ... OK (keys/vdsmkey.pem, certs/vdsmcert.pem, certs/cacert.pem in /etc/pki/vdsm)\n  \
         Certificate validity ... OK (valid until 2026-11-25 19:46:40 UTC)\n  \
         vdsm.id ... OK (/etc/vdsm/vdsm.id: 4c4c4544-0042-3510-8052-b4c04f4a4d32)\n  \
         Serving ... OK (the engine is connected (1 connection from 192.0.2.5:40212), last asked 3 s ago (Host.getStats))\n"
    );
}

#[test]
fn a_node_not_enrolled_yet_only_warns() {
    let r = report(&not_enrolled());
    let text = render(&r);
    assert_eq!(r.status, Status::Warning, "{text}");
    for (name, status, detail) in [
        ("hvnode-vdsm.service", Status::Ok, "active"),
        (
            "Certificates",
            Status::Warning,
            "not yet enrolled by an engine: the engine's host deploy puts keys/vdsmkey.pem, \
             certs/vdsmcert.pem, certs/cacert.pem in /etc/pki/vdsm",
        ),
        (
            "vdsm.id",
            Status::Warning,
            "/etc/vdsm/vdsm.id is missing: the node's registration writes it (nodectl \
             register, or the console's Registration page)",
        ),
        (
            "Serving",
            Status::Warning,
            "no, the engine's link is not serving yet: /etc/pki/vdsm/keys/vdsmkey.pem is \
             missing",
        ),
    ] {
        let c = r.find(name).unwrap_or_else(|| panic!("{name}: {text}"));
        assert_eq!((c.status, c.detail.as_str()), (status, detail), "{name}");
    }
    assert!(r.find("Certificate validity").is_none(), "{text}");
}

#[test]
fn each_fault_has_its_verdict() {
    type Breaker = fn(&mut VdsmFacts);
    let cases: [(&str, Status, &str, Breaker); 14] = [
        ("hvnode-vdsm.service", Status::Failed, "failed", |f| {
            f.active_state = "failed".into()
        }),
        (
            "hvnode-vdsm.service",
            Status::Failed,
            "unknown to systemd",
            |f| f.active_state.clear(),
        ),
        (
            "Certificates",
            Status::Failed,
            "certs/cacert.pem missing from /etc/pki/vdsm (there: keys/vdsmkey.pem, \
             certs/vdsmcert.pem): the engine cannot connect; enrol",
            |f| f.pki[2].1 = Found::Missing,
        ),
        // The host key's folder is the vdsm user's: the console cannot look.
        (
            "Certificates",
            Status::Ok,
            "in /etc/pki/vdsm (not looked at: keys/vdsmkey.pem: Permission denied (os error \
             13); root may)",
            |f| f.pki[0].1 = Found::Unknown("Permission denied (os error 13)".into()),
        ),
        (
            "Certificate validity",
            Status::Failed,
            "/etc/pki/vdsm/certs/vdsmcert.pem expired on 2024-11-25 19:46:40 UTC: the \
             engine cannot connect; enrol the host's certificate again",
            |f| f.cert_not_after = Some(Ok(NOW as i64 - 365 * DAY)),
        ),
        (
            "Certificate validity",
            Status::Failed,
            "expired on 2025-11-25 19:46:40 UTC",
            |f| f.cert_not_after = Some(Ok(NOW as i64)),
        ),
        (
            "Certificate validity",
            Status::Warning,
            "expires on 2025-12-04 19:48:20 UTC, in 9 days: enrol",
            |f| f.cert_not_after = Some(Ok(NOW as i64 + 9 * DAY + 100)),
        ),
        (
            "Certificate validity",
            Status::Ok,
            "valid until 2025-12-25 19:46:40 UTC",
            |f| f.cert_not_after = Some(Ok(NOW as i64 + 30 * DAY)),
        ),
        (
            "Certificate validity",
            Status::Failed,
            "cannot be read: not an X.509 certificate",
            |f| f.cert_not_after = Some(Err("not an X.509 certificate".into())),
        ),
        ("vdsm.id", Status::Warning, "is empty", |f| {
            f.vdsm_id = Ok(Some(String::new()))
        }),
        ("vdsm.id", Status::Failed, "cannot be read: denied", |f| {
            f.vdsm_id = Err("denied".into())
        }),
        (
            "Serving",
            Status::Failed,
            "no, the engine's link is not serving yet: certs/vdsmcert.pem: cannot be served \
             with the key, though the certificates are there: journalctl -u hvnode-vdsm",
            |f| {
                f.status = Ok(Some(LinkStatus {
                    waiting_for: Some("certs/vdsmcert.pem: cannot be served with the key".into()),
                    ..LinkStatus::default()
                }))
            },
        ),
        (
            "Serving",
            Status::Warning,
            "hvnode-vdsm has written no status (/run/hvnode-vdsm/status.json): it is not \
             running",
            |f| {
                f.status = Ok(None);
                f.active_state = "inactive".into();
            },
        ),
        (
            "Serving",
            Status::Failed,
            "reading the engine link's status: unreadable",
            |f| f.status = Err("reading the engine link's status: unreadable".into()),
        ),
    ];
    for (name, status, detail, breaker) in cases {
        let mut f = enrolled();
        breaker(&mut f);
        let r = report(&f);
        let c = r
            .find(name)
            .unwrap_or_else(|| panic!("{name}: {}", render(&r)));
        assert_eq!(c.status, status, "{name}: {}", c.detail);
        assert!(c.detail.contains(detail), "{name}: {}", c.detail);
    }
    // The service up, no engine yet, and one that came and went: both serve.
    for (status, detail) in [
        (
            LinkStatus {
                connections: 0,
                last_connected: None,
                last_request: None,
                ..serving()
            },
            "not yet, the engine's link serves and no engine has connected since it \
             started 2 h ago",
        ),
        (
            LinkStatus {
                connections: 0,
                ..serving()
            },
            "the engine is not connected now; it last asked 3 s ago (Host.getStats)",
        ),
    ] {
        let mut f = enrolled();
        f.status = Ok(Some(status));
        let r = report(&f);
        let c = r.find("Serving").unwrap();
        assert_eq!((c.status, c.detail.as_str()), (Status::Ok, detail));
    }
}

/// The facts of a node's files: none at all, then an enrolled node's.
#[test]
fn facts_are_read_from_the_node() {
    let root = tempfile::tempdir().unwrap();
    let f = VdsmFacts::read(root.path(), "active".into(), NOW);
    assert!(f.pki.iter().all(|(_, found)| *found == Found::Missing));
    assert_eq!(f.cert_not_after, None);
    assert_eq!(f.vdsm_id, Ok(None));
    assert_eq!(f.status, Ok(None));
    assert_eq!(f.now, NOW);

    let put = |path: &str, text: &[u8]| {
        let p = root.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let mut params = rcgen::CertificateParams::new(vec!["node1.example.com".into()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    put(
        "/etc/pki/vdsm/keys/vdsmkey.pem",
        key.serialize_pem().as_bytes(),
    );
    put("/etc/pki/vdsm/certs/vdsmcert.pem", cert.pem().as_bytes());
    put("/etc/pki/vdsm/certs/cacert.pem", cert.pem().as_bytes());
    put(VDSM_ID, b"4c4c4544-0042-3510-8052-b4c04f4a4d32\n");
    let status_path = root
        .path()
        .join(vdsm::status::STATUS_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(status_path.parent().unwrap()).unwrap();
    serving().write(&status_path).unwrap();

    let f = VdsmFacts::read(root.path(), "active".into(), NOW);
    assert!(f.pki.iter().all(|(_, found)| *found == Found::Present));
    assert_eq!(f.cert_not_after, Some(Ok(1_893_456_000)));
    assert_eq!(
        f.vdsm_id,
        Ok(Some("4c4c4544-0042-3510-8052-b4c04f4a4d32".into()))
    );
    assert_eq!(f.status, Ok(Some(serving())));
    assert_eq!(report(&f).status, Status::Ok, "{}", render(&report(&f)));

    put("/etc/pki/vdsm/certs/vdsmcert.pem", b"not a certificate\n");
    let f = VdsmFacts::read(root.path(), "active".into(), NOW);
    assert!(
        matches!(&f.cert_not_after, Some(Err(e)) if e.starts_with("no PEM certificate in it")),
        "{:?}",
        f.cert_not_after
    );
}

#[test]
fn only_the_certificate_checks_are_the_engines_enrolment() {
    use crate::engine_link::is_enrolment;
    assert!(is_enrolment("vdsm", "Certificates"));
    assert!(is_enrolment("vdsm", "Certificate validity"));
    assert!(!is_enrolment("vdsm", "hvnode-vdsm.service"));
    assert!(!is_enrolment("vdsm", "Serving"));
    assert!(!is_enrolment("SELinux", "Certificates"));
}
