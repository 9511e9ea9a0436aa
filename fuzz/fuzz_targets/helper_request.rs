//! Fuzzes what the privileged helper reads from its clients: frames on its socket
//! (a length, then JSON) decoded into requests. Its clients are the web console and,
//! later, the VDSM service: processes that parse the network, so the helper must
//! hold against whatever a compromised one writes.
//!
//! Whatever the bytes, reading ends in a request or an error, never a panic, and
//! never reads past the announced length; a request that decodes encodes to a frame
//! that decodes to the same request.
#![no_main]

use helper::frame::{self, FrameError, MAX_FRAME};
use helper::proto::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Several frames may come one after another on a connection.
    for _ in 0..4 {
        let before = rest.len();
        match frame::read::<Request>(&mut rest) {
            Ok(request) => {
                let mut encoded = Vec::new();
                frame::write(&mut encoded, &request).expect("a read request encodes");
                let again: Request =
                    frame::read(&mut encoded.as_slice()).expect("an encoded request reads");
                assert_eq!(again, request);
                assert!(before - rest.len() <= 4 + MAX_FRAME);
            }
            Err(FrameError::TooLarge(n, max)) => {
                assert!(n > max);
                return;
            }
            Err(_) => return,
        }
    }
});
