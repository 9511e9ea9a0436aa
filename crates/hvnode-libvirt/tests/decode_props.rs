//! The decoder against arbitrary input: whatever arrives, `decode_reply` answers with
//! a value or an error and never panics. The same entry point as the cargo-fuzz target
//! (`fuzz/fuzz_targets/xdr_decode.rs`), which needs a nightly toolchain; this runs on
//! stable with every `cargo test`.

use hvnode_libvirt::wire::{PROGRAM, PROTOCOL_VERSION, Procedure};
use hvnode_libvirt::{Error, decode_reply};
use proptest::prelude::*;

/// A message with a correct length word and the given header, then `body`.
fn framed(program: u32, header: [u32; 4], body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(28 + body.len());
    f.extend_from_slice(&((28 + body.len()) as u32).to_be_bytes());
    f.extend_from_slice(&program.to_be_bytes());
    f.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    for word in header {
        f.extend_from_slice(&word.to_be_bytes());
    }
    f.extend_from_slice(body);
    f
}

/// Only malformed input or libvirt's refusal: nothing about sockets or deadlines.
fn decoded_or_rejected(result: &Result<hvnode_libvirt::Answer, Error>) -> bool {
    matches!(
        result,
        Ok(_) | Err(Error::Protocol { .. } | Error::Remote(_))
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let result = decode_reply(&bytes);
        prop_assert!(decoded_or_rejected(&result), "{result:?}");
    }

    /// Well-framed replies with arbitrary bodies reach every body decoder.
    #[test]
    fn arbitrary_bodies_never_panic(
        procedure in proptest::sample::select(Procedure::ALL.to_vec()),
        kind in 0u32..4,
        status in 0u32..3,
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let header = [procedure.number() as u32, kind, 1, status];
        let result = decode_reply(&framed(PROGRAM, header, &body));
        prop_assert!(decoded_or_rejected(&result), "{result:?}");
    }

    /// Bodies made of small words, so that counts and lengths are often plausible and
    /// the decoders go deep (strings, domain lists, libvirt's errors).
    #[test]
    fn plausible_bodies_never_panic(
        procedure in proptest::sample::select(Procedure::ALL.to_vec()),
        status in 0u32..2,
        words in proptest::collection::vec(0u32..40, 0..64),
    ) {
        let body: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let header = [procedure.number() as u32, 1, 1, status];
        let result = decode_reply(&framed(PROGRAM, header, &body));
        prop_assert!(decoded_or_rejected(&result), "{result:?}");
    }
}
