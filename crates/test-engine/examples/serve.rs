//! Runs the loopback test engine for a manual try of `nodectl register`:
//!
//! ```text
//! cargo run -p test-engine --example serve -- [SECONDS]
//! ```
//!
//! It prints its port and CA fingerprints, serves on 127.0.0.1 for SECONDS (default 120),
//! then prints the hosts that registered and stops.

use std::time::Duration;

use test_engine::TestEngine;

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(120);
    let engine = TestEngine::start();
    println!("engine:  {}:{}", engine.host(), engine.port());
    println!("sha256:  {}", engine.ca_sha256_hex());
    println!("sha1:    {}", engine.ca_sha1_colon());
    println!("serving for {seconds} s");
    std::thread::sleep(Duration::from_secs(seconds));
    for (id, host) in engine.hosts() {
        println!("registered: {id} ({} time(s))", host.registrations);
    }
}
