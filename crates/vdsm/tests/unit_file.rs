//! The shipped unit: systemd accepts it, the service runs as the user the image
//! makes, with no capabilities, and waits for the engine's certificates where the
//! binary looks for them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use hvnode_testutil::units::{unit, value, verify};

#[test]
fn systemd_accepts_every_line() {
    verify(
        "hvnode-vdsm.service",
        &unit("hvnode-vdsm.service"),
        env!("CARGO_BIN_EXE_hvnode-vdsm"),
    );
}

#[test]
fn the_service_runs_as_vdsm_with_no_capabilities() {
    let text = unit("hvnode-vdsm.service");
    assert_eq!(value(&text, "User"), Some("vdsm"));
    assert_eq!(value(&text, "Group"), Some("kvm"));
    assert_eq!(value(&text, "CapabilityBoundingSet"), Some(""));
    assert_eq!(value(&text, "AmbientCapabilities"), Some(""));
    assert_eq!(value(&text, "Type"), Some("notify"));
    assert_eq!(value(&text, "ExecStart"), Some("/usr/bin/hvnode-vdsm"));
    let sysusers = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../image/files/usr/lib/sysusers.d/hvnode.conf"),
    )
    .unwrap();
    let line = sysusers
        .lines()
        .find(|l| l.split_whitespace().take(2).eq(["u", "vdsm"]))
        .expect("sysusers.d makes vdsm");
    assert_eq!(line.split_whitespace().nth(2), Some("36:kvm"), "{line}");
}
