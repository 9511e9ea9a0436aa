//! XDR (RFC 4506) encoding of what the client sends and decoding of what the daemon
//! answers. Decoding never trusts a length or a count: each is checked against the
//! bytes left and against the limit `remote_protocol.x` declares for it, and a value
//! over its limit is a [`ProtocolError::OverLimit`] naming that limit, never clamped.

use crate::error::ProtocolError;
use crate::types::Domain;

/// `REMOTE_STRING_MAX`: the longest string the protocol carries (4 MiB).
pub const STRING_MAX: usize = 4 * 1024 * 1024;
/// `VIR_UUID_BUFLEN`: the bytes of a UUID.
pub const UUID_LEN: usize = 16;

type Result<T> = std::result::Result<T, ProtocolError>;

/// An XDR encoder into a growing buffer.
#[derive(Debug, Default)]
pub(crate) struct Enc(pub(crate) Vec<u8>);

impl Enc {
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A string: its length, its bytes, zero padding to a multiple of four. The
    /// client checks every string it sends against [`STRING_MAX`] first
    /// (`client::check_arg`), so the length fits.
    pub(crate) fn string(&mut self, s: &str) -> &mut Self {
        debug_assert!(s.len() <= STRING_MAX);
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.pad();
        self
    }

    /// `remote_string`: an optional string (a discriminant, then the string).
    pub(crate) fn optional_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.u32(1).string(s),
            None => self.u32(0),
        }
    }

    pub(crate) fn uuid(&mut self, uuid: &[u8; UUID_LEN]) -> &mut Self {
        self.0.extend_from_slice(uuid);
        self
    }

    /// `remote_nonnull_domain`: name, UUID, id.
    pub(crate) fn domain(&mut self, d: &Domain) -> &mut Self {
        self.string(&d.name).uuid(&d.uuid).i32(d.id)
    }

    fn pad(&mut self) {
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }
}

/// An XDR decoder over a borrowed buffer; running out of bytes is a protocol error.
#[derive(Debug)]
pub(crate) struct Dec<'a> {
    rest: &'a [u8],
}

impl<'a> Dec<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The bytes not decoded yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(ProtocolError::Truncated {
                what,
                needed: n,
                left: self.rest.len(),
            });
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `unsigned hyper`.
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut be = [0u8; 8];
        be.copy_from_slice(b);
        Ok(u64::from_be_bytes(be))
    }

    /// An XDR `bool` or an `int` the protocol uses as one: 0 or 1, nothing else.
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool> {
        match self.u32(what)? {
            0 => Ok(false),
            1 => Ok(true),
            found => Err(ProtocolError::BadDiscriminant { what, found }),
        }
    }

    /// A string of at most [`STRING_MAX`] bytes, UTF-8.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String> {
        let len = self.u32(what)?;
        let len = within(what, u64::from(len), STRING_MAX, "REMOTE_STRING_MAX")?;
        let padded = len.next_multiple_of(4);
        let bytes = self.take(padded, what)?;
        String::from_utf8(bytes[..len].to_vec()).map_err(|_| ProtocolError::NotUtf8 { what })
    }

    /// `remote_string`: absent (0) or present (1) then the string.
    pub(crate) fn optional_string(&mut self, what: &'static str) -> Result<Option<String>> {
        if self.bool(what)? {
            self.string(what).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn uuid(&mut self, what: &'static str) -> Result<[u8; UUID_LEN]> {
        let mut uuid = [0u8; UUID_LEN];
        uuid.copy_from_slice(self.take(UUID_LEN, what)?);
        Ok(uuid)
    }

    /// The count of a variable-length array, at most `limit` (named `limit_name`);
    /// also no more elements than the bytes left could hold at `min_size` each, so
    /// that a lying count fails before anything is allocated for it.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        limit: usize,
        limit_name: &'static str,
        min_size: usize,
    ) -> Result<usize> {
        let n = self.u32(what)?;
        let n = within(what, u64::from(n), limit, limit_name)?;
        let needed = n.saturating_mul(min_size);
        if needed > self.rest.len() {
            return Err(ProtocolError::Truncated {
                what,
                needed,
                left: self.rest.len(),
            });
        }
        Ok(n)
    }

    /// `remote_nonnull_domain`.
    pub(crate) fn domain(&mut self) -> Result<Domain> {
        Ok(Domain {
            name: self.string("domain name")?,
            uuid: self.uuid("domain UUID")?,
            id: self.i32("domain id")?,
        })
    }

    /// `remote_domain`: an optional domain.
    pub(crate) fn optional_domain(&mut self, what: &'static str) -> Result<Option<Domain>> {
        if self.bool(what)? {
            self.domain().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// `len` as a `usize` if it is at most `limit`, else the error naming the limit.
fn within(what: &'static str, len: u64, limit: usize, limit_name: &'static str) -> Result<usize> {
    match usize::try_from(len) {
        Ok(n) if n <= limit => Ok(n),
        _ => Err(ProtocolError::OverLimit {
            what,
            len,
            limit: limit as u64,
            limit_name,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn strings_are_padded_and_round_trip() {
        let mut e = Enc::default();
        e.string("abcde").u32(7);
        assert_eq!(e.0.len(), 4 + 8 + 4);
        assert_eq!(&e.0[9..12], &[0, 0, 0], "zero padding");
        let mut d = Dec::new(&e.0);
        assert_eq!(d.string("s").unwrap(), "abcde");
        assert_eq!(d.u32("n").unwrap(), 7);
        assert!(d.u32("more").is_err(), "nothing left");
    }

    #[test]
    fn optional_strings_round_trip() {
        let mut e = Enc::default();
        e.optional_string(Some("x")).optional_string(None);
        let mut d = Dec::new(&e.0);
        assert_eq!(d.optional_string("a").unwrap().as_deref(), Some("x"));
        assert_eq!(d.optional_string("b").unwrap(), None);
    }

    #[test]
    fn domains_round_trip() {
        let dom = Domain {
            name: "vm1".into(),
            uuid: *b"\x6f\x5c\x1e\x2a\x00\x01\x40\x02\x80\x03\x00\x00\x00\x00\x00\x42",
            id: 3,
        };
        let mut e = Enc::default();
        e.domain(&dom);
        assert_eq!(Dec::new(&e.0).domain().unwrap(), dom);
    }

    #[test]
    fn a_truncated_string_names_what_was_short() {
        // Says 10 bytes, carries 3.
        let mut e = Enc::default();
        e.u32(10);
        e.0.extend_from_slice(b"abc");
        let err = Dec::new(&e.0).string("domain name").unwrap_err();
        assert_eq!(
            err,
            ProtocolError::Truncated {
                what: "domain name",
                needed: 12,
                left: 3
            }
        );
        // The padding counts too: 5 bytes need 8.
        let mut e = Enc::default();
        e.u32(5);
        e.0.extend_from_slice(b"abcde");
        assert!(matches!(
            Dec::new(&e.0).string("s").unwrap_err(),
            ProtocolError::Truncated { needed: 8, .. }
        ));
    }

    #[test]
    fn a_string_over_its_limit_is_rejected_by_name() {
        let mut e = Enc::default();
        e.u32(STRING_MAX as u32 + 1);
        let err = Dec::new(&e.0).string("capabilities").unwrap_err();
        assert_eq!(
            err,
            ProtocolError::OverLimit {
                what: "capabilities",
                len: STRING_MAX as u64 + 1,
                limit: STRING_MAX as u64,
                limit_name: "REMOTE_STRING_MAX"
            }
        );
        assert!(err.to_string().contains("REMOTE_STRING_MAX"), "{err}");
    }

    #[test]
    fn counts_are_checked_against_limit_and_bytes_left() {
        let mut e = Enc::default();
        e.u32(21);
        let err = Dec::new(&e.0)
            .count("auth types", 20, "REMOTE_AUTH_TYPE_LIST_MAX", 4)
            .unwrap_err();
        assert!(
            matches!(err, ProtocolError::OverLimit { len: 21, .. }),
            "{err}"
        );
        // Within the limit but more than the bytes left can hold.
        let mut e = Enc::default();
        e.u32(3).u32(0);
        let err = Dec::new(&e.0)
            .count("auth types", 20, "REMOTE_AUTH_TYPE_LIST_MAX", 4)
            .unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Truncated {
                    needed: 12,
                    left: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn booleans_and_discriminants_are_zero_or_one() {
        let mut e = Enc::default();
        e.u32(2);
        let err = Dec::new(&e.0).bool("autostart").unwrap_err();
        assert_eq!(
            err,
            ProtocolError::BadDiscriminant {
                what: "autostart",
                found: 2
            }
        );
        assert!(Dec::new(&e.0).optional_string("message").is_err());
    }

    #[test]
    fn non_utf8_strings_are_rejected() {
        let mut e = Enc::default();
        e.u32(2);
        e.0.extend_from_slice(&[0xff, 0xfe, 0, 0]);
        assert_eq!(
            Dec::new(&e.0).string("name").unwrap_err(),
            ProtocolError::NotUtf8 { what: "name" }
        );
    }
}
