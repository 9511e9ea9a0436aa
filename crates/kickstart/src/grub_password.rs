//! grub's superuser password, as `bootloader --password` gives it: plain
//! text (hashed by the installer) or, with `--iscrypted` (or `--md5pass`),
//! a hash in the form `grub-mkpasswd-pbkdf2` prints:
//! `grub.pbkdf2.sha512.ITERATIONS.SALT.HASH`, salt and hash in hex.
//!
//! The plain text is never shown: [`BootPassword`]'s `Debug` hides it and
//! it serializes as the word `plain`, and the messages of
//! [`parse_pbkdf2`] say what is wrong without repeating the value (a plain
//! password given with `--iscrypted` by mistake is still a password).

use std::fmt;

use serde::{Serialize, Serializer};

/// How every grub PBKDF2 hash begins (grub's `password_pbkdf2` takes no
/// other digest).
pub const PBKDF2_PREFIX: &str = "grub.pbkdf2.sha512.";

/// The fewest hash bytes accepted: grub compares only as many bytes as the
/// hash has, so a short hash is a guessable password (grub-mkpasswd-pbkdf2
/// writes 64).
pub const MIN_HASH_BYTES: usize = 16;

/// The boot loader password of a kickstart.
#[derive(Clone, PartialEq, Eq)]
pub enum BootPassword {
    /// `--password=TEXT`: hashed at install time.
    Plain(String),
    /// `--password=HASH --iscrypted` or `--md5pass=HASH`: a grub PBKDF2
    /// hash (checked by the parser: see [`parse_pbkdf2`]).
    Pbkdf2(String),
}

impl fmt::Debug for BootPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootPassword::Plain(_) => f.write_str("Plain(<hidden>)"),
            BootPassword::Pbkdf2(h) => f.debug_tuple("Pbkdf2").field(h).finish(),
        }
    }
}

/// Serialized as what it is (`plain` or `pbkdf2`), never its value.
impl Serialize for BootPassword {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            BootPassword::Plain(_) => "plain",
            BootPassword::Pbkdf2(_) => "pbkdf2",
        })
    }
}

/// The parts of a grub PBKDF2 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pbkdf2Hash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Reads `grub.pbkdf2.sha512.ITERATIONS.SALT.HASH` as grub's
/// `password_pbkdf2` does (a decimal count of at least 1, hex of either
/// case), a little stricter: the salt is not empty and the hash has at
/// least [`MIN_HASH_BYTES`]. The error says what is wrong, without the value.
pub fn parse_pbkdf2(text: &str) -> Result<Pbkdf2Hash, String> {
    let Some(rest) = text.strip_prefix(PBKDF2_PREFIX) else {
        return Err(format!("it does not begin with {PBKDF2_PREFIX}"));
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let [iterations, salt, hash] = parts[..] else {
        return Err(format!(
            "after {PBKDF2_PREFIX} it needs three parts separated by dots (ITERATIONS.SALT.HASH), not {}",
            parts.len()
        ));
    };
    let iterations = (!iterations.is_empty() && iterations.bytes().all(|b| b.is_ascii_digit()))
        .then(|| iterations.parse::<u32>().ok())
        .flatten()
        .filter(|&n| n >= 1)
        .ok_or("the iteration count is not a whole number from 1 to 4294967295")?;
    let salt = hex_bytes(salt).ok_or("the salt is not an even number of hex digits")?;
    if salt.is_empty() {
        return Err("the salt is empty".into());
    }
    let hash = hex_bytes(hash).ok_or("the hash is not an even number of hex digits")?;
    if hash.len() < MIN_HASH_BYTES {
        return Err(format!(
            "the hash has {} bytes, fewer than {MIN_HASH_BYTES}",
            hash.len()
        ));
    }
    Ok(Pbkdf2Hash {
        iterations,
        salt,
        hash,
    })
}

/// Hex digits (either case) as bytes; `None` for anything else or an odd
/// count.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What grub-mkpasswd-pbkdf2 printed for the password `hvnode-test`.
    const GRUB_MADE: &str = "grub.pbkdf2.sha512.10000.5B1693EE3721657F6AB764DD747BE7912CCBD37D0513E5A923513F2F9B4F15F7F2E0818E7314E6E6B23FFBA74FBC54DD6C1847F4159CD4CF30648167F0F263C0.2B3A02B6BB67545C7F292312EBAE01D70DC5C48CE10747DE55BDE19E799091693AA8F6D949EF21822020B02B913673159E3EF83F0BC64CDBA5E9EE8E7AFA03EA";

    #[test]
    fn a_hash_grub_made_is_read() {
        let h = parse_pbkdf2(GRUB_MADE).unwrap();
        assert_eq!(h.iterations, 10_000);
        assert_eq!((h.salt.len(), h.hash.len()), (64, 64));
        assert_eq!(&h.salt[..2], [0x5B, 0x16]);
        assert_eq!(&h.hash[62..], [0x03, 0xEA]);
        // grub reads hex of either case.
        assert_eq!(parse_pbkdf2(&GRUB_MADE.to_lowercase()).unwrap(), h);
    }

    #[test]
    fn anything_else_is_refused_without_repeating_it() {
        let salt = "AB".repeat(64);
        let hash = "CD".repeat(64);
        for (text, why) in [
            ("my-secret", "does not begin with"),
            ("$6$salt$my-secret", "does not begin with"),
            ("grub.pbkdf2.sha256.10000.AB.CD", "does not begin with"),
            ("grub.pbkdf2.sha512.10000.AB", "three parts"),
            (
                &format!("grub.pbkdf2.sha512.1.{salt}.{hash}.x"),
                "three parts",
            ),
            (
                &format!("grub.pbkdf2.sha512.0.{salt}.{hash}"),
                "iteration count",
            ),
            (
                &format!("grub.pbkdf2.sha512.0x10.{salt}.{hash}"),
                "iteration count",
            ),
            (
                &format!("grub.pbkdf2.sha512.-1.{salt}.{hash}"),
                "iteration count",
            ),
            (
                &format!("grub.pbkdf2.sha512.99999999999.{salt}.{hash}"),
                "iteration count",
            ),
            (
                &format!("grub.pbkdf2.sha512..{salt}.{hash}"),
                "iteration count",
            ),
            (
                &format!("grub.pbkdf2.sha512.10000.ABC.{hash}"),
                "salt is not",
            ),
            (
                &format!("grub.pbkdf2.sha512.10000.XY.{hash}"),
                "salt is not",
            ),
            (
                &format!("grub.pbkdf2.sha512.10000..{hash}"),
                "salt is empty",
            ),
            (
                &format!("grub.pbkdf2.sha512.10000.{salt}.my secret"),
                "hash is not",
            ),
            (
                &format!("grub.pbkdf2.sha512.10000.{salt}."),
                "fewer than 16",
            ),
            (
                &format!("grub.pbkdf2.sha512.10000.{salt}.ABCD"),
                "fewer than 16",
            ),
        ] {
            let e = parse_pbkdf2(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
            assert!(!e.contains("secret") && !e.contains(&salt), "{e}");
        }
    }

    #[test]
    fn the_plain_text_is_never_shown() {
        let p = BootPassword::Plain("grub-secret".into());
        assert_eq!(format!("{p:?}"), "Plain(<hidden>)");
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"plain\"");
        let h = BootPassword::Pbkdf2(GRUB_MADE.into());
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"pbkdf2\"");
    }
}
