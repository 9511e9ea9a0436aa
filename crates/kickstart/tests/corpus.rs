//! Corpus test: every kickstart in `tests/kickstart-corpus/` and
//! `kickstart/` is checked by this crate and by pykickstart's
//! `ksvalidator -v F40 -i` (the reference). Same verdict; every line the
//! reference names is a line we name; and when the reference read the whole
//! file, we report errors on as many lines as it counted.
//!
//! The reference is found through `HVNODE_KSVALIDATOR` (set by
//! `tests/run-tests.sh`) or on `PATH`. Without it the test is skipped with a
//! message, and fails in CI (`CI=true`, or `HVNODE_REQUIRE_ORACLE=1` as
//! `tests/run-tests.sh` sets; see `hvnode_testutil`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use kickstart::source::FsLoader;
use kickstart::{Severity, parse_file};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["tests/kickstart-corpus", "kickstart"] {
        let dir = workspace().join(dir);
        for e in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "ks") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn oracle() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("HVNODE_KSVALIDATOR")
        && Path::new(&p).is_file()
    {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ksvalidator"))
            .find(|p| p.is_file())
    })
}

/// What the reference said about one file.
#[derive(Debug)]
struct Verdict {
    valid: bool,
    /// Errors counted (its exit code), when it read the whole file.
    counted: Option<usize>,
    /// Lines its messages name.
    lines: BTreeSet<usize>,
    output: String,
}

/// Line numbers in the reference's messages: "occurred on line N" and
/// "on line N:" (deprecation warnings).
fn lines_named(text: &str) -> BTreeSet<usize> {
    let mut lines = BTreeSet::new();
    for marker in ["occurred on line ", "from line ", " on line "] {
        for (i, _) in text.match_indices(marker) {
            let digits: String = text[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                lines.insert(n);
            }
        }
    }
    lines
}

fn run_oracle(ksvalidator: &Path, file: &Path) -> Verdict {
    // Relative %include paths resolve against the working directory in
    // pykickstart; run it next to the file.
    let out = Command::new(ksvalidator)
        .args(["-v", "F40", "-i"])
        .arg(file.file_name().unwrap())
        .current_dir(file.parent().unwrap())
        .output()
        .expect("running ksvalidator");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // Errors it recovers from go to stderr; a message on stdout (after the
    // "Checking kickstart file" banner) means it stopped reading the file.
    let aborted = stdout
        .lines()
        .any(|l| !l.trim().is_empty() && !l.starts_with("Checking kickstart file"));
    let code = out.status.code().expect("ksvalidator exit code") as usize;
    Verdict {
        valid: code == 0,
        counted: (!aborted).then_some(code),
        lines: lines_named(&format!("{stdout}\n{stderr}")),
        output: format!("{stdout}{stderr}"),
    }
}

#[test]
fn corpus_agrees_with_pykickstart() {
    let Some(ksvalidator) = oracle() else {
        hvnode_testutil::skip(
            "ksvalidator (pykickstart) not found: run `make deps` or set HVNODE_KSVALIDATOR",
        );
        return;
    };
    let files = corpus();
    assert!(files.len() >= 40, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for file in &files {
        let reference = run_oracle(&ksvalidator, file);
        let ours = parse_file(file, &FsLoader);
        let our_lines: BTreeSet<usize> = ours
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.loc.line)
            .collect();
        let name = file.strip_prefix(workspace()).unwrap_or(file).display();
        let mut problems = Vec::new();
        if ours.is_valid() != reference.valid {
            problems.push(format!(
                "verdict: ours {}, reference {}",
                ours.is_valid(),
                reference.valid
            ));
        }
        let missing: Vec<_> = reference.lines.difference(&our_lines).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "lines the reference names and we do not: {missing:?}"
            ));
        }
        if let Some(n) = reference.counted
            && n != our_lines.len()
        {
            problems.push(format!(
                "reference counted {n} errors, we name {} lines {our_lines:?}",
                our_lines.len()
            ));
        }
        if reference.valid {
            valid += 1;
        } else {
            invalid += 1;
        }
        if !problems.is_empty() {
            let ours: Vec<String> = ours.diagnostics.iter().map(|d| d.to_string()).collect();
            failures.push(format!(
                "{name}:\n  {}\n  ours:\n    {}\n  reference:\n    {}",
                problems.join("\n  "),
                ours.join("\n    "),
                reference.output.trim().replace('\n', "\n    ")
            ));
        }
    }
    eprintln!(
        "corpus: {} files ({valid} valid, {invalid} invalid per the reference), {} disagreements",
        files.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn shipped_kickstarts_are_valid_for_a_node() {
    for file in corpus()
        .iter()
        .filter(|f| f.starts_with(workspace().join("kickstart")))
    {
        let parse = parse_file(file, &FsLoader);
        let errors: Vec<String> = parse.diagnostics.errors().map(|d| d.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        let (_, node) = kickstart::node::plan(&parse.kickstart);
        let errors: Vec<String> = node.errors().map(|d| d.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
}
