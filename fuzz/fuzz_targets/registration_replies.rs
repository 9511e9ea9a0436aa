//! Fuzzes what registration parses from the engine's answers: the SSH key of
//! `get-ssh-trust`, the CA certificate of `get-pki-trust`, a fingerprint as the
//! user or the zero-touch configuration gives it, and the message of an error page.
//!
//! The first byte picks the parser; the rest is the answer's body.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use registration::{CaFingerprints, FetchedCa, Fingerprint, SshPublicKey, engine_message};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 4 {
        0 => ssh_key(&text),
        1 => ca(&text),
        2 => fingerprint(&text),
        _ => message(&text),
    }
});

/// A key that parses renders to one line that parses to the same key.
fn ssh_key(text: &str) {
    let Ok(key) = SshPublicKey::parse_line(text) else {
        return;
    };
    let line = key.to_line();
    assert!(
        !line.contains(['\n', '\r']),
        "rendered key spans lines: {line:?}"
    );
    assert_eq!(
        SshPublicKey::parse_line(&line).as_ref(),
        Ok(&key),
        "via {line:?}"
    );
    assert!(key.fingerprint().starts_with("SHA256:"));
}

/// A CA that parses keeps only its certificate: its PEM parses to the same DER,
/// and its own fingerprints parse and match it.
fn ca(text: &str) {
    let Ok(ca) = FetchedCa::from_pem(text) else {
        return;
    };
    let again = FetchedCa::from_pem(&ca.pem).expect("the re-encoded PEM parses");
    assert_eq!(again.der, ca.der);
    assert_eq!(again.pem, ca.pem);
    for printed in [
        &ca.fingerprints.sha256,
        &ca.fingerprints.sha1,
        &ca.fingerprints.sha256_base64(),
    ] {
        let fp = Fingerprint::from_str(printed).expect("own fingerprint parses");
        assert!(fp.matches(&ca.der), "{printed} does not match");
    }
}

/// Any fingerprint text: one that parses prints and parses back to itself; the
/// fingerprints of the input's own bytes parse and match them.
fn fingerprint(text: &str) {
    if let Ok(fp) = Fingerprint::from_str(text) {
        let printed = fp.to_string();
        assert_eq!(
            Fingerprint::from_str(&printed).ok(),
            Some(fp),
            "via {printed:?}"
        );
    }
    let own = CaFingerprints::of_der(text.as_bytes());
    for printed in [own.sha256.clone(), own.sha1.clone(), own.sha256_base64()] {
        let fp = Fingerprint::from_str(&printed).expect("own fingerprint parses");
        assert!(fp.matches(text.as_bytes()), "{printed}");
    }
}

/// The message of an error page: never empty, one line of single-spaced words.
fn message(text: &str) {
    let m = engine_message(text);
    assert!(!m.is_empty());
    assert_eq!(
        m,
        m.split_whitespace().collect::<Vec<_>>().join(" "),
        "from {text:?}"
    );
}
