//! Fuzzes what the VDSM service reads from the engine's side of the network: STOMP
//! frames from a byte stream, split at any point, and the JSON-RPC requests in their
//! bodies, answered by a stand-in for the verbs.
//!
//! Whatever the bytes, decoding ends in frames or an error, never a panic, and never
//! holds more than the limits allow; a decoded frame encodes to bytes that decode to
//! the same command and body; every JSON-RPC body gets an answer or none (notifications only).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use vdsm::jsonrpc::{self, RpcError, Verbs};
use vdsm::stomp::{Decoder, Limits};

struct Echo;

impl Verbs for Echo {
    fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Value, RpcError> {
        match method {
            "Host.ping2" => Ok(Value::Bool(true)),
            _ => Ok(Value::Object(params.clone())),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head: 512,
        max_body: 2048,
        max_headers: 16,
    };
    // The first byte says where the stream is split into reads.
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(bytes.len());
    let mut d = Decoder::new(limits);
    for chunk in [&bytes[..at], &bytes[at..]] {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.body.len() <= limits.max_body);
                    assert!(frame.headers.len() <= limits.max_headers);
                    // Encoding adds content-length to a body read without one.
                    let mut again = Decoder::new(Limits {
                        max_head: limits.max_head + 32,
                        max_headers: limits.max_headers + 1,
                        ..limits
                    });
                    again.push(&frame.encode());
                    let back = again.next_frame().expect("an encoded frame decodes");
                    assert_eq!(back.map(|f| (f.command, f.body)), Some((frame.command.clone(), frame.body.clone())));
                    let _ = jsonrpc::answer(&frame.body, &Echo);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(d.pending() <= limits.max_head + limits.max_body + 64);
    }
});
