//! The helper end to end: the probe below needs a program no machine has, and
//! is run in a child process (this test binary again) with a workstation's
//! environment and with CI's: a skip, shown, in the one; a failure in the
//! other.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::{Command, Output};

const ABSENT: &str = "hvnode-testutil-absent-program";

#[test]
#[ignore = "the probe: run by the tests below in a child process"]
fn probe() {
    if !hvnode_testutil::require_tools(&["sh", ABSENT]) {
        return;
    }
    panic!("{ABSENT} was found");
}

/// Runs the probe with `env` on top of an environment cleared of CI's variables.
fn run_probe(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "probe", "--ignored", "--nocapture"]);
    for var in [
        "CI",
        "HVNODE_REQUIRE_IMAGE",
        "HVNODE_REQUIRE_ORACLE",
        hvnode_testutil::MISSING_VAR,
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_missing_program_is_a_visible_skip_on_a_workstation() {
    let out = run_probe(&[]);
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("SKIP probe: {ABSENT} is not installed\n")),
        "{text}"
    );
}

#[test]
fn a_missing_program_fails_in_ci() {
    for strict in [
        ("CI", "true"),
        ("HVNODE_REQUIRE_IMAGE", "1"),
        ("HVNODE_REQUIRE_ORACLE", "1"),
    ] {
        let out = run_probe(&[strict]);
        let text = text(&out);
        assert!(!out.status.success(), "{strict:?}: {text}");
        assert!(
            text.contains(&format!(
                "{ABSENT} is not installed ({}={}: a skipped test is a failure; install it with tests/deps.sh)",
                strict.0, strict.1
            )),
            "{strict:?}: {text}"
        );
    }
}

#[test]
fn a_program_named_missing_counts_as_missing() {
    let out = run_probe(&[("CI", "true"), (hvnode_testutil::MISSING_VAR, "sh")]);
    let text = text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("sh, {ABSENT} are not installed (CI=true")),
        "{text}"
    );
}
