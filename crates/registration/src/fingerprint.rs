//! Fingerprints of the engine's CA certificate, and parsing of the ones administrators
//! type.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::Error;

/// Both fingerprints of a CA certificate, computed over its DER bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaFingerprints {
    /// `SHA256:` followed by 64 lower-case hex digits.
    pub sha256: String,
    /// Lower-case hex pairs joined by `:`, as `vdsm-tool register` prints it.
    pub sha1: String,
}

impl CaFingerprints {
    /// Fingerprints of the certificate `der`.
    pub fn of_der(der: &[u8]) -> Self {
        Self {
            sha256: format!("SHA256:{}", hex(&Sha256::digest(der), "")),
            sha1: hex(&Sha1::digest(der), ":"),
        }
    }

    /// The SHA-256 fingerprint as OpenSSH writes digests: `SHA256:` and unpadded base64.
    pub fn sha256_base64(&self) -> String {
        match Fingerprint::from_str(&self.sha256) {
            Ok(Fingerprint::Sha256(d)) => format!("SHA256:{}", STANDARD_NO_PAD.encode(d)),
            _ => self.sha256.clone(),
        }
    }
}

/// A fingerprint an administrator gave to confirm the engine's CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fingerprint {
    /// SHA-1 over the DER, as `vdsm-tool register` prints it.
    Sha1([u8; 20]),
    /// SHA-256 over the DER.
    Sha256([u8; 32]),
}

impl Fingerprint {
    /// Whether the certificate `der` has this fingerprint.
    pub fn matches(&self, der: &[u8]) -> bool {
        match self {
            Self::Sha1(d) => Sha1::digest(der).as_slice() == d.as_slice(),
            Self::Sha256(d) => Sha256::digest(der).as_slice() == d.as_slice(),
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha1(d) => f.write_str(&hex(d, ":")),
            Self::Sha256(d) => write!(f, "SHA256:{}", hex(d, "")),
        }
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Accepts `SHA256:` + hex (colons allowed) or base64 (padded or not), `SHA1:` + hex,
    /// or bare hex: 20 bytes are SHA-1, 32 bytes SHA-256. Case does not matter in hex.
    fn from_str(input: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadFingerprint {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let text = input.trim();
        let (prefix, rest) = match text.split_once(':') {
            Some((p, r)) if p.eq_ignore_ascii_case("sha256") => (Some(256), r),
            Some((p, r)) if p.eq_ignore_ascii_case("sha1") => (Some(1), r),
            _ => (None, text),
        };
        if rest.is_empty() {
            return Err(bad("it is empty"));
        }
        let from_hex = parse_hex(rest);
        match (prefix, from_hex) {
            (Some(256) | None, Some(bytes)) if bytes.len() == 32 => Ok(Self::Sha256(array(&bytes))),
            (Some(1) | None, Some(bytes)) if bytes.len() == 20 => Ok(Self::Sha1(array(&bytes))),
            (Some(256), _) => {
                let b64 = rest.trim_end_matches('=');
                match STANDARD_NO_PAD
                    .decode(b64)
                    .or_else(|_| STANDARD.decode(rest))
                {
                    Ok(bytes) if bytes.len() == 32 => Ok(Self::Sha256(array(&bytes))),
                    Ok(bytes) => Err(bad(&format!(
                        "a SHA-256 digest has 32 bytes, this has {}",
                        bytes.len()
                    ))),
                    Err(_) => Err(bad("it is neither hex nor base64")),
                }
            }
            (Some(1), _) => Err(bad("a SHA-1 fingerprint is 20 hex pairs")),
            (_, Some(bytes)) => Err(bad(&format!(
                "{} bytes of hex is neither SHA-1 (20) nor SHA-256 (32)",
                bytes.len()
            ))),
            (_, None) => Err(bad("it is not hex; prefix base64 digests with SHA256:")),
        }
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

/// Hex digits, optionally separated by colons (either all pairs or none).
fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: String = if text.contains(':') {
        let pairs: Vec<&str> = text.split(':').collect();
        if pairs.iter().any(|p| p.len() != 2) {
            return None;
        }
        pairs.concat()
    } else {
        text.to_string()
    };
    if digits.is_empty() || digits.len() % 2 != 0 {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Lower-case hex of `bytes`, pairs joined by `sep`.
pub(crate) fn hex(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DER: &[u8] = b"not really a certificate, but bytes are bytes";

    fn fps() -> CaFingerprints {
        CaFingerprints::of_der(DER)
    }

    #[test]
    fn fingerprints_have_the_documented_shapes() {
        let f = fps();
        assert!(f.sha256.starts_with("SHA256:"));
        assert_eq!(f.sha256.len(), 7 + 64);
        assert_eq!(f.sha1.len(), 20 * 3 - 1);
        assert!(f.sha1.split(':').all(|p| p.len() == 2));
        assert_eq!(f.sha1, f.sha1.to_lowercase());
        assert_eq!(f.sha256_base64().len(), 7 + 43);
    }

    #[test]
    fn every_accepted_spelling_matches() {
        let f = fps();
        let sha256_hex = f.sha256.trim_start_matches("SHA256:").to_string();
        let colon_256 = parse_hex(&sha256_hex).map(|b| hex(&b, ":")).unwrap();
        let padded = format!("{}=", f.sha256_base64());
        for good in [
            f.sha256.clone(),
            f.sha256.to_uppercase().replacen("SHA256:", "sha256:", 1),
            format!("SHA256:{colon_256}"),
            f.sha256_base64(),
            padded,
            f.sha1.clone(),
            f.sha1.to_uppercase(),
            format!("SHA1:{}", f.sha1),
            f.sha1.replace(':', ""),
            sha256_hex,
            format!("  {}\n", f.sha1),
        ] {
            let parsed: Fingerprint = good.parse().unwrap_or_else(|e| panic!("{good}: {e}"));
            assert!(parsed.matches(DER), "{good}");
            assert!(!parsed.matches(b"other"), "{good}");
        }
    }

    #[test]
    fn malformed_fingerprints_are_rejected() {
        for bad in [
            "",
            "SHA256:",
            "SHA256:abcd",
            "SHA1:abcd",
            "zz:zz",
            "ab:cd:e",
            "abc",
            "SHA256:!!!!",
            "MD5:ab:cd",
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn display_round_trips() {
        for fp in [
            Fingerprint::Sha1([0xab; 20]),
            Fingerprint::Sha256([0x01; 32]),
        ] {
            assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
        }
    }
}
