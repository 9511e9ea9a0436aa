//! The project's systemd units as tests read them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support fails loudly

use std::path::{Path, PathBuf};
use std::process::Command;

/// The text of `systemd/NAME` in the repository.
pub fn unit(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../systemd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of the unit's line `KEY=` (the last one given).
pub fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let key = format!("{key}=");
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key.as_str()))
}

/// Panics unless `systemd-analyze verify` accepts the unit `name` whose text is `text`
/// without a word, with `/usr/bin/PROGRAM` pointed at the built `binary` (verify
/// checks that the programs exist), and any other `/usr/bin/` program the unit runs
/// at the build's binary of that name, where it was built beside `binary`.
pub fn verify(name: &str, text: &str, binary: &str) {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let program = Path::new(binary)
        .file_name()
        .and_then(|p| p.to_str())
        .expect("a binary's file name");
    let mut text = text.replace(&format!("/usr/bin/{program}"), binary);
    if let Some(built) = Path::new(binary).parent() {
        let others: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == '=' || c == '+')
            .filter_map(|w| w.strip_prefix("/usr/bin/"))
            .filter(|p| built.join(p).is_file())
            .map(String::from)
            .collect();
        for p in others {
            text = text.replace(&format!("/usr/bin/{p}"), &built.join(&p).to_string_lossy());
        }
    }
    assert!(
        text.contains(binary),
        "{name} does not run {program}: {text}"
    );
    let file = dir.path().join(name);
    std::fs::write(&file, text).expect("writing the unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&file)
        .output()
        .expect("systemd-analyze (package systemd, installed by tests/deps.sh)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "systemd complains about {name}: {stderr}"
    );
}
