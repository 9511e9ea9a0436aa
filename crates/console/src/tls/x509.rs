//! The few facts of an X.509 certificate the console checks of the self-signed one it
//! made: the subject's common name, the names and addresses it is valid for and its
//! validity. A DER reader just large enough for that (RFC 5280, section 4.1); anything
//! it does not understand makes it give up, and the console then makes a new
//! certificate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version` of the TBSCertificate.
const VERSION: u8 = 0xa0;
/// `[3] EXPLICIT Extensions` of the TBSCertificate.
const EXTENSIONS: u8 = 0xa3;
/// GeneralName `[2] IMPLICIT IA5String`.
const DNS_NAME: u8 = 0x82;
/// GeneralName `[7] IMPLICIT OCTET STRING`.
const IP_ADDRESS: u8 = 0x87;
/// 2.5.4.3, id-at-commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.29.17, id-ce-subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// The next element of `input` (its tag and content), which moves past it.
fn next<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    // Tag numbers above 30 take more bytes; no element read here has one.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |len, b| (len << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    *input = after;
    Some((tag, content))
}

/// The content of the next element of `input`, which must have `tag`.
fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
    let (found, content) = next(input)?;
    (found == tag).then_some(content)
}

/// The facts of the DER certificate `der`, or `None` if it is not one this reader
/// understands.
pub fn facts(der: &[u8]) -> Option<Facts> {
    let mut input = der;
    let mut certificate = expect(&mut input, SEQUENCE)?;
    let mut tbs = expect(&mut certificate, SEQUENCE)?;
    let (mut tag, _) = next(&mut tbs)?;
    if tag == VERSION {
        (tag, _) = next(&mut tbs)?;
    }
    if tag != INTEGER {
        return None;
    }
    let _signature = expect(&mut tbs, SEQUENCE)?;
    let _issuer = expect(&mut tbs, SEQUENCE)?;
    let mut validity = expect(&mut tbs, SEQUENCE)?;
    let subject = expect(&mut tbs, SEQUENCE)?;
    let _key = expect(&mut tbs, SEQUENCE)?;
    let mut extensions = None;
    while let Some((tag, content)) = next(&mut tbs) {
        if tag == EXTENSIONS {
            extensions = Some(content);
        }
    }
    let not_before = time(next(&mut validity)?)?;
    let not_after = time(next(&mut validity)?)?;
    let mut facts = Facts {
        common_name: common_name(subject),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        not_before,
        not_after,
    };
    if let Some(mut extensions) = extensions {
        let mut list = expect(&mut extensions, SEQUENCE)?;
        while !list.is_empty() {
            let mut extension = expect(&mut list, SEQUENCE)?;
            let oid = expect(&mut extension, OID)?;
            let (mut tag, mut value) = next(&mut extension)?;
            if tag == BOOLEAN {
                (tag, value) = next(&mut extension)?;
            }
            if tag != OCTET_STRING {
                return None;
            }
            if oid == SUBJECT_ALT_NAME {
                alt_names(value, &mut facts)?;
            }
        }
    }
    Some(facts)
}

/// The first common name of a Name (a sequence of sets of type-and-value pairs).
fn common_name(mut name: &[u8]) -> Option<String> {
    while !name.is_empty() {
        let mut set = expect(&mut name, SET)?;
        while !set.is_empty() {
            let mut pair = expect(&mut set, SEQUENCE)?;
            let oid = expect(&mut pair, OID)?;
            let (_, value) = next(&mut pair)?;
            if oid == COMMON_NAME {
                return String::from_utf8(value.to_vec()).ok();
            }
        }
    }
    None
}

/// Adds the DNS names and IP addresses of a SubjectAltName extension's value.
fn alt_names(mut value: &[u8], facts: &mut Facts) -> Option<()> {
    let mut names = expect(&mut value, SEQUENCE)?;
    while !names.is_empty() {
        match next(&mut names)? {
            (DNS_NAME, name) => facts.dns_names.push(String::from_utf8(name.to_vec()).ok()?),
            (IP_ADDRESS, ip) => facts.ip_addresses.push(match ip.len() {
                4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?)),
                16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
                _ => return None,
            }),
            _ => {}
        }
    }
    Some(())
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950 to 2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) as seconds since the epoch.
fn time((tag, text): (u8, &[u8])) -> Option<i64> {
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(0..2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (GENERALIZED_TIME, 15) => (digits(0..4)?, 4),
        _ => return None,
    };
    if text.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(rest + 2 * i..rest + 2 * i + 2);
    let (month, day) = (field(0)?, field(1)?);
    let (hour, minute, second) = (field(2)?, field(3)?, field(4)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date, counted in 400-year eras that
/// start on 0000-03-01 (the inverse of the calendar arithmetic in `hostinfo::units`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostinfo::units::UtcTime;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn dates_round_trip_with_the_calendar_of_hostinfo() {
        for secs in [
            0_i64,
            951_782_400,
            1_709_164_800,
            1_735_689_599,
            4_107_542_400,
            67_075_286_400,
        ] {
            let t = UtcTime::from_unix(secs);
            let back = days_from_civil(t.year, i64::from(t.month), i64::from(t.day)) * 86_400
                + i64::from(t.hour * 3600 + t.minute * 60 + t.second);
            assert_eq!(back, secs, "{t}");
        }
        assert_eq!(time((UTC_TIME, b"491231235959Z")), Some(2_524_607_999));
        assert_eq!(time((UTC_TIME, b"500101000000Z")), Some(-631_152_000));
        assert_eq!(
            time((GENERALIZED_TIME, b"20500101000000Z")),
            Some(2_524_608_000)
        );
        assert_eq!(time((UTC_TIME, b"4912312359Z")), None);
        assert_eq!(time((UTC_TIME, b"491331235959Z")), None);
        assert_eq!(time((GENERALIZED_TIME, b"2050010100000+Z")), None);
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
    }
}
