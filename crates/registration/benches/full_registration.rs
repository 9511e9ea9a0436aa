//! Prints how long a full registration takes against the loopback test engine:
//! CA fetch, fingerprint check, verified get-version and get-ssh-trust, CA and key
//! installation, unique id, register, state file. Target: at most 200 ms.
//!
//! `cargo bench -p hvnode-registration --bench full_registration [-- RUNS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::time::{Duration, Instant};

use registration::{EngineAddr, RegisterOptions, Sysroot, Trust, register};
use test_engine::TestEngine;

fn scratch() -> (tempfile::TempDir, Sysroot) {
    let dir = tempfile::tempdir().expect("scratch directory");
    let root = Sysroot::new(dir.path());
    let passwd = root.path("/etc/passwd");
    fs::create_dir_all(passwd.parent().expect("parent")).expect("etc");
    fs::write(passwd, "root:x:0:0:root:/root:/bin/bash\n").expect("passwd");
    (dir, root)
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50);
    let engine = TestEngine::start();
    let fingerprint = engine.ca_sha256_hex().parse().expect("fingerprint");
    let options =
        RegisterOptions::new(EngineAddr::new(&engine.host(), engine.port()).expect("engine"));

    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for i in 0..=runs {
        let (_dir, root) = scratch();
        let start = Instant::now();
        register(&root, &options, Trust::Fingerprint(fingerprint)).expect("registration");
        let elapsed = start.elapsed();
        if i > 0 {
            // The first run warms up caches; it is not counted.
            times.push(elapsed);
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
    println!(
        "full registration on loopback ({runs} runs): median {:.1} ms, p95 {:.1} ms, min {:.1} ms, max {:.1} ms (target <= 200 ms)",
        ms(median),
        ms(p95),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
    println!(
        "requests per registration: {}",
        engine.requests().len() / (runs + 1)
    );
}
