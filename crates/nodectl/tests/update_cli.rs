//! `nodectl update` as a command: its options, and a failpoint name that
//! is no step refused before anything is looked at.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::Command;

#[test]
fn update_is_a_command_with_its_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(["update", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "<SOURCE>",
        "--yes",
        "--json",
        "--signature",
        "--no-verify",
        "--allow-downgrade",
    ] {
        assert!(help.contains(opt), "{opt} missing from:\n{help}");
    }
}

#[test]
fn a_failpoint_that_names_no_step_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(["update", "/nonexistent/hvnode-9-9.update.tar", "--yes"])
        .env("HVNODE_UPDATE_FAILPOINT", "etc_merge")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not an update step") && err.contains("etc-merge"),
        "{err}"
    );
}
