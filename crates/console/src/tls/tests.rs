//! The certificate's life across starts: made, served, kept, renewed or left alone,
//! through the module's public functions.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::self_signed::{marker_text, sha256_hex};
use super::*;

/// 2027-01-15 08:00:00 UTC.
const NOW: u64 = 1_799_995_200;

fn node1() -> NodeNames {
    NodeNames {
        host: "node1".into(),
        fqdn: Some("node1.example.org".into()),
        addresses: vec!["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()],
    }
}

fn facts_of(path: &Path) -> Facts {
    let pem = fs::read(path).unwrap();
    let der = CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap();
    facts(&der).unwrap()
}

use hvnode_testutil::names_in;

#[test]
fn first_start_generates_and_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("ws-certs.d");
    let (_, path) = server_config(&certs, &NodeNames::new("node1")).unwrap();
    assert_eq!(path, certs.join("0-self-signed.cert"));
    let key = certs.join("0-self-signed.key");
    let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mode = fs::metadata(&certs).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a directory made here is private");
    let first = fs::read(&path).unwrap();
    let (_, again) = server_config(&certs, &NodeNames::new("node1")).unwrap();
    assert_eq!(again, path);
    assert_eq!(fs::read(&again).unwrap(), first, "not regenerated");
}

#[test]
fn the_self_signed_certificate_names_the_node_for_a_year_from_yesterday() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
    let f = facts_of(&path);
    assert_eq!(f.common_name.as_deref(), Some("node1"));
    assert_eq!(f.dns_names, ["node1", "node1.example.org", "localhost"]);
    let ips: Vec<String> = f.ip_addresses.iter().map(ToString::to_string).collect();
    assert_eq!(ips, ["127.0.0.1", "::1", "192.0.2.7", "2001:db8::7"]);
    assert_eq!(f.not_before, NOW as i64 - 86_400);
    assert_eq!(f.not_after, NOW as i64 + 365 * 86_400);
    // Key 0600, the marker names the certificate, nothing temporary is left.
    let mode = fs::metadata(dir.path().join("0-self-signed.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        names_in(dir.path()),
        [
            "0-self-signed.cert",
            "0-self-signed.generated",
            "0-self-signed.key"
        ]
    );
    let marker = fs::read_to_string(dir.path().join("0-self-signed.generated")).unwrap();
    let hash = sha256_hex(&fs::read(&path).unwrap());
    assert!(marker.contains(&format!("sha256 {hash}\n")), "{marker}");
    // And it serves.
    let (_, served) = server_config(dir.path(), &node1()).unwrap();
    assert_eq!(served, path);
    // A host without a name, or called localhost, is localhost once.
    let (pem, _) = make_self_signed(&NodeNames::new(""), NOW).unwrap();
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let f = facts(&der).unwrap();
    assert_eq!(f.common_name.as_deref(), Some("localhost"));
    assert_eq!(f.dns_names, ["localhost"]);
}

#[test]
fn renewed_at_start_within_30_days_of_expiry_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
    let made = fs::read(&path).unwrap();
    let expiry = NOW + 365 * 86_400;
    // 31 days before: kept.
    let early = expiry - 31 * 86_400;
    assert_eq!(renewal(dir.path(), &path, &node1(), early), None);
    ensure_certificate(dir.path(), &node1(), early).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        made,
        "renewed 31 days before expiry"
    );
    // 29 days before: made anew, for a year from then.
    let late = expiry - 29 * 86_400;
    assert_eq!(
        renewal(dir.path(), &path, &node1(), late),
        Some(Renewal::Expiring(expiry as i64))
    );
    assert_eq!(
        ensure_certificate(dir.path(), &node1(), late).unwrap(),
        path
    );
    let f = facts_of(&path);
    assert_eq!(f.not_after, late as i64 + 365 * 86_400);
    assert_eq!(renewal(dir.path(), &path, &node1(), late), None);
    // Long expired: made anew too.
    let much_later = late + 3 * 365 * 86_400;
    assert!(matches!(
        renewal(dir.path(), &path, &node1(), much_later),
        Some(Renewal::Expiring(_))
    ));
    ensure_certificate(dir.path(), &node1(), much_later).unwrap();
    assert_eq!(facts_of(&path).not_before, much_later as i64 - 86_400);
    server_config(dir.path(), &node1()).unwrap();
}

#[test]
fn renewed_at_start_when_the_host_name_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
    let renamed = NodeNames {
        host: "node2".into(),
        fqdn: Some("node2.example.org".into()),
        ..node1()
    };
    assert_eq!(
        renewal(dir.path(), &path, &renamed, NOW),
        Some(Renewal::Renamed("node1".into()))
    );
    ensure_certificate(dir.path(), &renamed, NOW).unwrap();
    let f = facts_of(&path);
    assert_eq!(f.common_name.as_deref(), Some("node2"));
    assert_eq!(f.dns_names, ["node2", "node2.example.org", "localhost"]);
    // The same host name, now with a fully qualified name in /etc/hosts.
    let short = NodeNames::new("node2");
    ensure_certificate(dir.path(), &short, NOW).unwrap();
    assert_eq!(
        renewal(dir.path(), &path, &short, NOW),
        None,
        "a name less is fine"
    );
    let qualified = NodeNames {
        fqdn: Some("node2.lab.example".into()),
        ..short
    };
    assert!(matches!(
        renewal(dir.path(), &path, &qualified, NOW),
        Some(Renewal::Renamed(_))
    ));
    // Case does not make a host name another.
    assert_eq!(
        renewal(dir.path(), &path, &NodeNames::new("NODE2"), NOW),
        None
    );
}

/// Writes an administrator's certificate for `host`, expiring `days` after NOW, to
/// `name` (with its key inside).
fn admin_certificate(dir: &Path, name: &str, host: &str, days: u64) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(NOW - 300 * 86_400);
    params.not_after = epoch + Duration::from_secs(NOW + days * 86_400);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let combined = format!("{}{}", cert.pem(), key.serialize_pem());
    fs::write(dir.join(name), &combined).unwrap();
    combined.into_bytes()
}

#[test]
fn an_administrators_certificate_is_never_touched() {
    // Its own file, winning by name, about to expire and for another host; the
    // console's own beside it is not served and so not renewed either.
    let dir = tempfile::tempdir().unwrap();
    let own = generate_self_signed(dir.path(), &node1(), NOW - 360 * 86_400).unwrap();
    let own_bytes = fs::read(&own).unwrap();
    let admin = admin_certificate(dir.path(), "50-admin.cert", "other.example", 1);
    let path = ensure_certificate(dir.path(), &NodeNames::new("node9"), NOW).unwrap();
    assert_eq!(path, dir.path().join("50-admin.cert"));
    assert_eq!(
        renewal(dir.path(), &path, &NodeNames::new("node9"), NOW),
        None
    );
    assert_eq!(fs::read(&path).unwrap(), admin);
    assert_eq!(fs::read(&own).unwrap(), own_bytes);

    // In place of the console's own, where no marker names it.
    let dir = tempfile::tempdir().unwrap();
    let admin = admin_certificate(dir.path(), "0-self-signed.cert", "other.example", 1);
    let path = ensure_certificate(dir.path(), &node1(), NOW).unwrap();
    assert_eq!(renewal(dir.path(), &path, &node1(), NOW), None);
    assert_eq!(fs::read(&path).unwrap(), admin);
    assert!(!dir.path().join("0-self-signed.generated").exists());

    // Over the console's own, whose marker names the one it replaced.
    let dir = tempfile::tempdir().unwrap();
    generate_self_signed(dir.path(), &node1(), NOW).unwrap();
    let admin = admin_certificate(dir.path(), "0-self-signed.cert", "other.example", 1);
    let path = ensure_certificate(dir.path(), &node1(), NOW).unwrap();
    assert_eq!(renewal(dir.path(), &path, &node1(), NOW), None);
    assert_eq!(fs::read(&path).unwrap(), admin);

    // The console's own, kept as it is once its marker is removed.
    let dir = tempfile::tempdir().unwrap();
    let path = generate_self_signed(dir.path(), &node1(), NOW - 360 * 86_400).unwrap();
    let kept = fs::read(&path).unwrap();
    fs::remove_file(dir.path().join("0-self-signed.generated")).unwrap();
    ensure_certificate(dir.path(), &NodeNames::new("node9"), NOW).unwrap();
    assert_eq!(fs::read(&path).unwrap(), kept);
}

#[test]
fn the_old_certificate_of_earlier_versions_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let old = rcgen::generate_simple_self_signed(vec![
        "node1".to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ])
    .unwrap();
    let path = dir.path().join("0-self-signed.cert");
    fs::write(&path, old.cert.pem()).unwrap();
    fs::write(
        dir.path().join("0-self-signed.key"),
        old.key_pair.serialize_pem(),
    )
    .unwrap();
    assert_eq!(
        renewal(dir.path(), &path, &node1(), NOW),
        Some(Renewal::Old)
    );
    let (_, served) = server_config(dir.path(), &node1()).unwrap();
    assert_eq!(served, path);
    let f = facts_of(&path);
    assert_eq!(f.common_name.as_deref(), Some("node1"));
    assert!(
        f.not_after < 4_000_000_000,
        "still valid until {}",
        f.not_after
    );
    assert!(dir.path().join("0-self-signed.generated").is_file());
}

#[test]
fn a_renewal_stopped_half_way_is_finished_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
    let key_path = dir.path().join("0-self-signed.key");
    let marker = dir.path().join("0-self-signed.generated");
    let old_hash = sha256_hex(&fs::read(&path).unwrap());
    let (new_cert, new_key) = make_self_signed(&node1(), NOW).unwrap();
    let new_hash = sha256_hex(new_cert.as_bytes());
    // Stopped after the new key: the old certificate with the new key.
    fs::write(&marker, marker_text(&[&old_hash, &new_hash])).unwrap();
    fs::write(&key_path, &new_key).unwrap();
    assert!(matches!(
        renewal(dir.path(), &path, &node1(), NOW),
        Some(Renewal::Unusable(_))
    ));
    server_config(dir.path(), &node1()).expect("not made anew");
    // Stopped after the new certificate: its marker still names it, it serves.
    let (newer_cert, newer_key) = make_self_signed(&node1(), NOW).unwrap();
    let current = sha256_hex(&fs::read(&path).unwrap());
    let newer_hash = sha256_hex(newer_cert.as_bytes());
    fs::write(&marker, marker_text(&[&current, &newer_hash])).unwrap();
    fs::write(&key_path, &newer_key).unwrap();
    fs::write(&path, &newer_cert).unwrap();
    assert_eq!(renewal(dir.path(), &path, &node1(), NOW), None);
    server_config(dir.path(), &node1()).unwrap();
}

#[test]
fn a_renewal_that_fails_keeps_the_old_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
    // The key inside the certificate's file, and its key file impossible to
    // replace (a directory there).
    let key_path = dir.path().join("0-self-signed.key");
    let combined = format!(
        "{}{}",
        fs::read_to_string(&path).unwrap(),
        fs::read_to_string(&key_path).unwrap()
    );
    let marker = dir.path().join("0-self-signed.generated");
    fs::write(&path, &combined).unwrap();
    fs::write(&marker, marker_text(&[&sha256_hex(combined.as_bytes())])).unwrap();
    fs::remove_file(&key_path).unwrap();
    fs::create_dir(&key_path).unwrap();
    fs::write(key_path.join("x"), "").unwrap();
    let renamed = NodeNames::new("node2");
    assert!(renewal(dir.path(), &path, &renamed, NOW).is_some());
    let e = generate_self_signed(dir.path(), &renamed, NOW).unwrap_err();
    assert!(e.to_string().contains("0-self-signed.key"), "{e}");
    assert!(e.to_string().contains("check that"), "{e}");
    assert_eq!(ensure_certificate(dir.path(), &renamed, NOW).unwrap(), path);
    assert_eq!(fs::read_to_string(&path).unwrap(), combined);
}

#[test]
fn highest_name_wins_with_key_in_same_file() {
    let dir = tempfile::tempdir().unwrap();
    generate_self_signed(dir.path(), &NodeNames::new("a"), NOW).unwrap();
    let admin = rcgen::generate_simple_self_signed(vec!["admin.example".into()]).unwrap();
    let combined = format!("{}{}", admin.cert.pem(), admin.key_pair.serialize_pem());
    fs::write(dir.path().join("50-admin.cert"), combined).unwrap();
    let (_, path) = server_config(dir.path(), &NodeNames::new("node1")).unwrap();
    assert_eq!(path, dir.path().join("50-admin.cert"));
}

#[test]
fn a_crt_with_its_key_beside_it_counts_too() {
    let dir = tempfile::tempdir().unwrap();
    generate_self_signed(dir.path(), &NodeNames::new("a"), NOW).unwrap();
    let admin = rcgen::generate_simple_self_signed(vec!["node.example".into()]).unwrap();
    fs::write(dir.path().join("10-node.crt"), admin.cert.pem()).unwrap();
    fs::write(
        dir.path().join("10-node.key"),
        admin.key_pair.serialize_pem(),
    )
    .unwrap();
    let (_, path) = server_config(dir.path(), &NodeNames::new("node1")).unwrap();
    assert_eq!(path, dir.path().join("10-node.crt"));
    let (chain, _) = load(&path).unwrap();
    assert_eq!(chain.len(), 1);
}

#[test]
fn broken_certificate_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("9-bad.cert"), "not pem").unwrap();
    let err = server_config(dir.path(), &NodeNames::new("n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("9-bad.cert"), "{err}");
}
