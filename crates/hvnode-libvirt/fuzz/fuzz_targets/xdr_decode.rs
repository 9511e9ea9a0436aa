//! Fuzzes the decoder of libvirtd's messages: any bytes, taken as one whole message
//! (length word, header, body), must decode to an answer or an error, never panic,
//! never allocate more than the protocol's limits allow.
#![no_main]

use hvnode_libvirt::{Error, decode_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_reply(data) {
        Ok(_) | Err(Error::Protocol { .. } | Error::Remote(_)) => {}
        Err(other) => panic!("a decoder reported a transport failure: {other:?}"),
    }
});
