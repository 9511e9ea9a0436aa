//! The few facts of an X.509 certificate the console checks of the self-signed one it
//! made: the subject's common name, the names and addresses it is valid for and its
//! validity, read with `x509-parser`. A certificate it cannot read makes the console
//! make a new one (when the certificate is its own).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;

/// What [`facts`] reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The subject's common name (CN).
    pub common_name: Option<String>,
    /// The subject alternative names of type DNS name.
    pub dns_names: Vec<String>,
    /// The subject alternative names of type IP address.
    pub ip_addresses: Vec<IpAddr>,
    /// Seconds since the epoch.
    pub not_before: i64,
    /// Seconds since the epoch.
    pub not_after: i64,
}

/// Why [`read`] could not read a certificate.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unreadable {
    #[error("reading it as DER X.509: {0}")]
    Der(X509Error),
    #[error("reading it as DER X.509: it ends early")]
    Truncated,
    #[error("reading its subject alternative names: {0}")]
    AltNames(X509Error),
    #[error("reading its subject alternative names: an IP address of {0} bytes")]
    IpLength(usize),
    #[error("reading its subject alternative names: a DNS name that is not an IA5String")]
    DnsName,
}

/// The facts of the DER certificate `der`, or `None` if it cannot be read.
pub fn facts(der: &[u8]) -> Option<Facts> {
    read(der).ok()
}

/// The facts of the DER certificate `der` (bytes after it are ignored), or why it
/// cannot be read.
pub(super) fn read(der: &[u8]) -> Result<Facts, Unreadable> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| match e {
        x509_parser::nom::Err::Incomplete(_) => Unreadable::Truncated,
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => Unreadable::Der(e),
    })?;
    let validity = cert.validity();
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let mut facts = Facts {
        common_name,
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    };
    let alt_names = cert
        .subject_alternative_name()
        .map_err(Unreadable::AltNames)?;
    for name in alt_names.iter().flat_map(|san| &san.value.general_names) {
        match name {
            GeneralName::DNSName(dns) => facts.dns_names.push((*dns).to_string()),
            GeneralName::IPAddress(ip) => facts.ip_addresses.push(ip_address(ip)?),
            // x509-parser keeps a name it cannot read as `Invalid`, with its tag:
            // [2] is a DNS name.
            GeneralName::Invalid(tag, _) if tag.0 == 2 => return Err(Unreadable::DnsName),
            _ => {}
        }
    }
    Ok(facts)
}

/// An IP address subject alternative name: 4 bytes for IPv4, 16 for IPv6.
fn ip_address(bytes: &[u8]) -> Result<IpAddr, Unreadable> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Ok(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Ok(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        Err(Unreadable::IpLength(bytes.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostinfo::units::UtcTime;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use std::time::Duration;

    /// A self-signed certificate for `node1` valid from `not_before` to `not_after`
    /// (seconds since the epoch), in DER.
    fn valid_between(not_before: i64, not_after: i64) -> Vec<u8> {
        let at = |secs: i64| {
            let epoch = rcgen::date_time_ymd(1970, 1, 1);
            let d = Duration::from_secs(secs.unsigned_abs());
            if secs < 0 { epoch - d } else { epoch + d }
        };
        let mut params = rcgen::CertificateParams::new(vec!["node1".to_string()]).unwrap();
        params.not_before = at(not_before);
        params.not_after = at(not_after);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// Where `bytes` are in `der`.
    fn find(der: &[u8], bytes: &[u8]) -> Option<usize> {
        der.windows(bytes.len()).position(|w| w == bytes)
    }

    /// `der` with `from` replaced by `to`, of the same length.
    fn patched(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = find(der, from).unwrap();
        let mut der = der.to_vec();
        der[at..at + to.len()].copy_from_slice(to);
        der
    }

    #[test]
    fn dates_are_read_in_both_encodings_and_agree_with_the_calendar_of_hostinfo() {
        // rcgen writes a UTCTime (two-digit year, 1950 to 2049) for the years that
        // have one and a GeneralizedTime for the others, as RFC 5280 wants.
        for (secs, text) in [
            (-631_152_001_i64, "1949-12-31 23:59:59"),
            (-631_152_000, "1950-01-01 00:00:00"),
            (0, "1970-01-01 00:00:00"),
            (951_782_400, "2000-02-29 00:00:00"),
            (1_709_164_800, "2024-02-29 00:00:00"),
            (1_735_689_599, "2024-12-31 23:59:59"),
            (2_524_607_999, "2049-12-31 23:59:59"),
            (2_524_608_000, "2050-01-01 00:00:00"),
            (4_107_542_400, "2100-03-01 00:00:00"),
            (67_090_118_399, "4095-12-31 23:59:59"),
        ] {
            let f = facts(&valid_between(secs, secs + 1)).unwrap();
            assert_eq!((f.not_before, f.not_after), (secs, secs + 1), "{text}");
            assert_eq!(UtcTime::from_unix(f.not_before).to_string(), text);
        }
        // Both encodings were there to read.
        let der = valid_between(2_524_607_999, 2_524_608_000);
        assert!(find(&der, b"\x17\x0d491231235959Z").is_some(), "no UTCTime");
        assert!(
            find(&der, b"\x18\x0f20500101000000Z").is_some(),
            "no GeneralizedTime"
        );
        // A date that is not one makes the certificate unreadable.
        for (from, to) in [
            (&b"491231235959Z"[..], &b"491331235959Z"[..]),
            (b"491231235959Z", b"4912312359+9Z"),
            (b"20500101000000Z", b"20500132000000Z"),
        ] {
            let bad = patched(&der, from, to);
            let e = read(&bad).unwrap_err();
            assert!(
                matches!(e, Unreadable::Der(X509Error::InvalidDate)),
                "{}: {e}",
                String::from_utf8_lossy(to)
            );
            assert_eq!(facts(&bad), None);
        }
    }

    #[test]
    fn reads_what_rcgen_wrote() {
        let mut params = rcgen::CertificateParams::new(vec![
            "node1".to_string(),
            "node1.example.org".to_string(),
            "192.0.2.7".to_string(),
            "2001:db8::7".to_string(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "hvnode");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "node1");
        params.not_before = rcgen::date_time_ymd(2024, 2, 29);
        params.not_after = rcgen::date_time_ymd(2051, 3, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let f = facts(cert.der()).unwrap();
        assert_eq!(f.common_name.as_deref(), Some("node1"));
        assert_eq!(f.dns_names, ["node1", "node1.example.org"]);
        assert_eq!(
            f.ip_addresses,
            [
                "192.0.2.7".parse::<IpAddr>().unwrap(),
                "2001:db8::7".parse().unwrap()
            ]
        );
        assert_eq!(
            UtcTime::from_unix(f.not_before).to_string(),
            "2024-02-29 00:00:00"
        );
        assert_eq!(
            UtcTime::from_unix(f.not_after).to_string(),
            "2051-03-01 00:00:00"
        );
        // Through PEM, as the file holds it.
        let again = CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap();
        assert_eq!(facts(&again), Some(f));
    }

    #[test]
    fn reads_rcgens_defaults_and_gives_up_on_garbage() {
        let old = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let f = facts(old.cert.der()).unwrap();
        assert_eq!(f.common_name.as_deref(), Some("rcgen self signed cert"));
        assert_eq!(
            UtcTime::from_unix(f.not_after).to_string(),
            "4096-01-01 00:00:00"
        );
        assert_eq!(f.dns_names, ["localhost"]);
        let der = old.cert.der().to_vec();
        for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
            assert_eq!(facts(&der[..cut]), None, "cut at {cut}");
        }
        assert_eq!(facts(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(facts(b"not a certificate"), None);
        // Why, for the journal.
        let e = read(&der[..der.len() / 2]).unwrap_err().to_string();
        assert!(e.starts_with("reading it as DER X.509: "), "{e}");
    }

    #[test]
    fn an_ip_address_name_is_4_or_16_bytes() {
        assert_eq!(
            ip_address(&[192, 0, 2, 7]).unwrap().to_string(),
            "192.0.2.7"
        );
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 7;
        assert_eq!(ip_address(&v6).unwrap().to_string(), "2001:db8::7");
        for len in [0, 5, 8, 32] {
            let e = ip_address(&vec![1; len]).unwrap_err();
            assert!(matches!(e, Unreadable::IpLength(n) if n == len), "{e}");
        }
    }
}
