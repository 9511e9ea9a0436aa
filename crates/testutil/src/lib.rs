//! Preconditions of tests that need something of the machine: a program,
//! root, an environment variable naming an artifact.
//!
//! A test whose precondition is missing returns early, and the harness
//! counts it as passed. On a workstation that is what one wants (the test
//! cannot run there), as long as the reason is shown. In CI it is not: a
//! skip would pass for a test that ran, and a tool dropped from
//! `tests/deps.sh` would go unnoticed. So every such check goes through
//! [`skip`]: it prints `SKIP <test>: <reason>` and returns `false` on a
//! workstation, and panics with the reason in CI.
//!
//! CI is `CI=true` (what CI services set), or one of the variables
//! `tests/run-tests.sh` exports so that the whole suite runs
//! (`HVNODE_REQUIRE_IMAGE=1`, `HVNODE_REQUIRE_ORACLE=1`).
//!
//! ```no_run
//! #[test]
//! fn nft_accepts_the_ruleset() {
//!     if !(hvnode_testutil::require_root() && hvnode_testutil::require_tool("nft")) {
//!         return;
//!     }
//!     // ...
//! }
//! ```
//!
//! To see the CI path on a machine that has everything, name what should
//! count as missing in `HVNODE_TEST_MISSING` (programs, and `root`):
//! `CI=true HVNODE_TEST_MISSING=nft,root cargo test …` must fail.

pub mod loopfs;
pub mod units;

use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Programs (and `root`) that count as missing, comma- or space-separated:
/// lets the skip and CI paths be tried where everything is installed.
pub const MISSING_VAR: &str = "HVNODE_TEST_MISSING";

/// The variables (and values) under which a skip is a failure.
const STRICT: [(&str, &str); 3] = [
    ("CI", "true"),
    ("HVNODE_REQUIRE_IMAGE", "1"),
    ("HVNODE_REQUIRE_ORACLE", "1"),
];

/// What to do when `tests/deps.sh` provides the missing piece.
const DEPS_HINT: &str = "install it with tests/deps.sh";

/// Why a skip is a failure here (`CI=true`, …), or `None` on a workstation.
pub fn strict() -> Option<String> {
    strict_from(|var| std::env::var(var).ok())
}

fn strict_from(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    STRICT.iter().find_map(|(var, value)| {
        get(var)
            .filter(|v| v.eq_ignore_ascii_case(value))
            .map(|v| format!("{var}={v}"))
    })
}

/// Skips the calling test for `reason`: prints `SKIP <test>: <reason>` and
/// returns `false`, for the test to return; in CI (see [`strict`]) panics
/// with the reason instead, since a skipped test would count as passed.
///
/// Returns a `bool` so that it reads as a condition:
/// `if !(have_it || skip("…")) { return; }`.
#[track_caller]
pub fn skip(reason: impl Display) -> bool {
    skip_with(&reason.to_string(), None)
}

#[track_caller]
fn skip_with(reason: &str, hint: Option<&str>) -> bool {
    if let Some(why) = strict() {
        panic!("{}", failure(reason, hint, &why));
    }
    // Straight to the process's stderr, not through `eprintln!`, which the
    // test harness captures and shows only for failures: a skip must be
    // seen. A write error has nowhere better to go, so it is ignored.
    let _ = writeln!(std::io::stderr(), "SKIP {}: {reason}", test_name());
    false
}

/// The panic message of a skip in CI.
fn failure(reason: &str, hint: Option<&str>, strict: &str) -> String {
    match hint {
        Some(hint) => format!("{reason} ({strict}: a skipped test is a failure; {hint})"),
        None => format!("{reason} ({strict}: a skipped test is a failure)"),
    }
}

/// The running test: libtest runs each test on a thread named after it.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "test".to_string(),
    }
}

/// Whether `HVNODE_TEST_MISSING` names `what`.
fn listed_missing(what: &str) -> bool {
    std::env::var(MISSING_VAR).is_ok_and(|list| in_list(&list, what))
}

fn in_list(list: &str, what: &str) -> bool {
    list.split([',', ' ']).any(|item| item.trim() == what)
}

/// Where `program` is on `PATH` (an executable file), as `Command::new`
/// would find it; a name with a `/` is checked as it is. `None` also when
/// `HVNODE_TEST_MISSING` names it.
pub fn which(program: &str) -> Option<PathBuf> {
    if listed_missing(program) {
        return None;
    }
    if program.contains('/') {
        return is_executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `program` is on `PATH`; if not, [`skip`]s (a failure in CI,
/// where `tests/deps.sh` installs every program the tests run).
#[track_caller]
pub fn require_tool(program: &str) -> bool {
    require_tools(&[program])
}

/// Whether every one of `programs` is on `PATH`; if not, [`skip`]s naming
/// all the missing ones at once.
#[track_caller]
pub fn require_tools(programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    match missing.as_slice() {
        [] => true,
        [one] => skip_with(&format!("{one} is not installed"), Some(DEPS_HINT)),
        many => skip_with(
            &format!("{} are not installed", many.join(", ")),
            Some(DEPS_HINT),
        ),
    }
}

/// Whether `path` (a file or folder a package of `tests/deps.sh` installs
/// at a fixed place, such as `/usr/sbin/sshd`) exists; if not, [`skip`]s.
#[track_caller]
pub fn require_path(path: &Path) -> bool {
    let named = path.to_str().is_some_and(listed_missing);
    if !named && path.exists() {
        return true;
    }
    skip_with(&format!("{} is missing", path.display()), Some(DEPS_HINT))
}

/// Whether the test runs as root (effective user); if not, [`skip`]s. CI
/// runs the tests as root. `HVNODE_TEST_MISSING=root` pretends it does not.
#[track_caller]
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() && !listed_missing("root") {
        return true;
    }
    skip_with("needs root", Some("CI runs the tests as root"))
}

/// The value of `var`, a test's opt-in (a folder of built artifacts, say);
/// when it is not set, [`skip`]s with `how` (how to get it) and returns
/// `None`. In CI, where `tests/run-tests.sh` sets it, a missing one fails.
#[track_caller]
pub fn require_env(var: &str, how: &str) -> Option<OsString> {
    match std::env::var_os(var) {
        Some(value) if !listed_missing(var) => Some(value),
        _ => {
            skip_with(&format!("{var} is not set"), Some(how));
            None
        }
    }
}

/// The names of the entries in `dir`, sorted (what a test expects a folder
/// to hold after the code under test wrote to it).
///
/// # Panics
/// When `dir` cannot be read: a test's own scratch folder.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn ci_and_the_full_suite_make_skips_failures() {
        assert_eq!(strict_from(env(&[])), None);
        assert_eq!(strict_from(env(&[("CI", "false")])), None);
        assert_eq!(strict_from(env(&[("CI", "")])), None);
        assert_eq!(
            strict_from(env(&[("CI", "true")])).as_deref(),
            Some("CI=true")
        );
        assert_eq!(
            strict_from(env(&[("CI", "TRUE")])).as_deref(),
            Some("CI=TRUE")
        );
        assert_eq!(
            strict_from(env(&[("HVNODE_REQUIRE_IMAGE", "1")])).as_deref(),
            Some("HVNODE_REQUIRE_IMAGE=1")
        );
        assert_eq!(
            strict_from(env(&[("HVNODE_REQUIRE_ORACLE", "1")])).as_deref(),
            Some("HVNODE_REQUIRE_ORACLE=1")
        );
        assert_eq!(strict_from(env(&[("HVNODE_REQUIRE_IMAGE", "0")])), None);
    }

    #[test]
    fn the_failure_says_why_and_what_to_do() {
        assert_eq!(
            failure("nft is not installed", Some(DEPS_HINT), "CI=true"),
            "nft is not installed (CI=true: a skipped test is a failure; install it with tests/deps.sh)"
        );
        assert_eq!(
            failure("this host runs from a layer", None, "CI=true"),
            "this host runs from a layer (CI=true: a skipped test is a failure)"
        );
    }

    #[test]
    fn the_missing_list_takes_commas_and_spaces() {
        assert!(in_list("nft,root", "root"));
        assert!(in_list("nft, ssh-keygen", "ssh-keygen"));
        assert!(in_list("nft ssh-keygen", "nft"));
        assert!(!in_list("nft-extra", "nft"));
        assert!(!in_list("", "nft"));
    }

    #[test]
    fn which_finds_executables_only() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let path = tool.to_str().unwrap();
        assert_eq!(which(path), None, "not executable yet");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(which(path), Some(tool.clone()));
        assert_eq!(which(dir.path().to_str().unwrap()), None, "a folder");
        assert!(which("sh").is_some(), "sh is on every PATH");
    }
}
