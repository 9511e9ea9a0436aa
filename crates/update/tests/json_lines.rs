//! The lines of `nodectl update --json` against `docs/schemas/nodectl-UpdateLine.json`:
//! real updates on a plain (XFS) store on a loop device write their progress with
//! [`update::JsonLines`], and each ends with the last line nodectl writes (the
//! result or the error, shaped as `crates/nodectl/src/update.rs` does) — a kill at a
//! step, a plan said no to (after taking the kill back from its journal), a failure
//! at the last step (every step undone), a success (the plan in `details`, an /etc
//! conflict, a fifo the merge skips, an account renumbered), and the same bundle
//! again, refused. Every line is validated, every property the schema declares must
//! have been seen, the step and state words must be the code's, and wrong shapes
//! are refused. Needs root and loop devices (skipped with a message otherwise; a
//! failure in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;
#[path = "../../nodectl/tests/schema_check/mod.rs"]
mod schema_check;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Fixture, Kind, NEW, OLD};
use schema_check::Schemas;
use serde_json::{Value, json};
use update::{Failpoint, JsonLines, Outcome, Plan, Step, UpdateError};

const FILE: &str = "nodectl-UpdateLine.json";

/// The last line of `nodectl update --json`, as `crates/nodectl/src/update.rs`
/// writes it.
fn last_line(result: &Result<Outcome, UpdateError>) -> Value {
    match result {
        Ok(outcome) => json!({ "result": outcome }),
        Err(e) => json!({
            "error": format!("{e:#}"),
            "node_unchanged": e.node_unchanged(),
            "cancelled": matches!(e, UpdateError::Cancelled),
        }),
    }
}

/// Runs an update with `opts`, the plan answered by `yes`, progress as JSON lines:
/// every line it wrote, then nodectl's last line; and the result.
fn run(
    fx: &Fixture,
    opts: &update::Options,
    yes: bool,
) -> (Vec<Value>, Result<Outcome, UpdateError>) {
    let mut out = JsonLines(Vec::new());
    let mut confirm = |_: &Plan| yes;
    let result = update::update(&fx.node, opts, &mut confirm, &mut out);
    let text = String::from_utf8(out.0).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    assert_eq!(lines.len(), text.matches('\n').count(), "{text}");
    lines.push(last_line(&result));
    (lines, result)
}

/// A real three-way merge of small `/etc`s whose new image adds a member to a
/// group and drops one, and renumbers an account the node has: what the
/// fixture's images do not do.
fn membership_merge(dir: &Path) -> etc_merge::MergeReport {
    let write = |side: &str, passwd: &str, group: &str| {
        let etc = dir.join(side);
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("passwd"), passwd).unwrap();
        fs::write(etc.join("group"), group).unwrap();
    };
    let users = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n\
                 bob:x:1001:1001::/home/bob:/bin/sh\nmessagebus:x:100:101::/:/bin/false\n";
    let groups = "root:x:0:\nkvm:x:36:alice\nmessagebus:x:101:\n";
    write("old", users, groups);
    write("current", users, groups);
    write(
        "new",
        &users.replace("messagebus:x:100:101", "messagebus:x:103:104"),
        &groups
            .replace("kvm:x:36:alice", "kvm:x:36:bob")
            .replace("messagebus:x:101:", "messagebus:x:104:"),
    );
    etc_merge::merge(
        &dir.join("old"),
        &dir.join("current"),
        &dir.join("new"),
        &dir.join("out"),
    )
    .unwrap()
}

// Longer than the workspace's 120 lines on purpose: one node walked through every
// ending of an update, each run's lines checked as they come.
#[test]
fn update_json_lines_match_their_schema() {
    let Some(fx) = Fixture::new(Kind::Plain) else {
        return;
    };
    let schemas = Schemas::load();
    let mut all: Vec<Value> = Vec::new();

    // Killed at var: the var step failed, nothing taken back, the node changed.
    let mut opts = fx.options();
    opts.failpoint = Failpoint::crash(Step::Var);
    let (lines, result) = run(&fx, &opts, true);
    assert!(
        matches!(result, Err(UpdateError::Crashed { .. })),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap()["node_unchanged"], false);
    all.extend(lines);

    // The plan said no to (as `--json` without `--yes`): the kill is taken back from
    // its journal first, each of its steps undone.
    let (lines, result) = run(&fx, &fx.options(), false);
    assert!(matches!(result, Err(UpdateError::Cancelled)), "{lines:?}");
    assert_eq!(lines.last().unwrap()["cancelled"], true);
    assert!(
        lines.iter().any(|l| l["state"] == "undone"),
        "the kill was not taken back: {lines:?}"
    );
    all.extend(lines);

    // A failure at the last step: every step before it undone.
    let mut opts = fx.options();
    opts.failpoint = Failpoint::fail(Step::Trial);
    let (lines, result) = run(&fx, &opts, true);
    assert!(
        matches!(result, Err(UpdateError::RolledBack { .. })),
        "{lines:?}"
    );
    let last = lines.last().unwrap();
    assert_eq!(
        (&last["node_unchanged"], &last["cancelled"]),
        (&json!(true), &json!(false))
    );
    all.extend(lines);

    // A success: the admin's /etc also holds a fifo, which the merge skips.
    common::sh(Command::new("mkfifo").arg(fx.node.root.join("etc/initctl")));
    let (lines, result) = run(&fx, &fx.options(), true);
    let outcome = result.unwrap();
    let plan = lines
        .iter()
        .find_map(|l| l.get("details").and_then(|d| d.get("plan")))
        .expect("no event carries the plan");
    assert_eq!(plan["new_layer"], format!("{NEW}+1"));
    assert_eq!(plan["current_layer"], format!("{OLD}+1"));
    let result = &lines.last().unwrap()["result"];
    assert_eq!(result["merge"]["skipped"][0]["path"], "initctl", "{result}");
    assert_eq!(result["merge"]["conflicts"][0]["path"], "motd", "{result}");
    assert!(result["signed_by"].is_string(), "{result}");
    all.extend(lines);

    // The same bundle again: refused before anything is written.
    let (lines, result) = run(&fx, &fx.options(), true);
    assert!(matches!(result, Err(UpdateError::Refused(_))), "{lines:?}");
    all.extend(lines);

    // Every line is one of the shapes.
    for line in &all {
        schemas.check(FILE, line);
    }
    // The merge parts the fixture does not produce, from a real merge.
    let scratch = tempfile::tempdir().unwrap();
    let merge = membership_merge(scratch.path());
    assert!(
        !merge.accounts.members_added.is_empty() && !merge.accounts.members_removed.is_empty(),
        "{merge:?}"
    );
    let other = Outcome {
        merge,
        signed_by: None,
        ..outcome.clone()
    };
    schemas.check(FILE, &last_line(&Ok(other)));
    schemas.assert_covered(&[FILE]);

    // The words of the schema are the code's, and all of them were written.
    let schema: Value =
        serde_json::from_str(&fs::read_to_string(schema_check::dir().join(FILE)).unwrap()).unwrap();
    let words = |def: &str| -> BTreeSet<String> {
        schema["$defs"][def]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let written = |key: &str| -> BTreeSet<String> {
        all.iter()
            .filter_map(|l| l.get(key).and_then(Value::as_str))
            .map(String::from)
            .collect()
    };
    let steps: BTreeSet<String> = Step::ALL.iter().map(|s| s.name().to_string()).collect();
    assert_eq!(words("step"), steps);
    assert_eq!(written("step"), steps);
    assert_eq!(written("state"), words("state"));

    // Wrong shapes are refused.
    let step_line = all.iter().find(|l| l["state"] == "done").unwrap().clone();
    let mut typo = step_line.clone();
    typo["step"] = json!("etc_merge");
    schemas.rejects(FILE, &typo);
    let mut state = step_line.clone();
    state["state"] = json!("running");
    schemas.rejects(FILE, &state);
    let mut no_message = step_line.clone();
    no_message.as_object_mut().unwrap().remove("message");
    schemas.rejects(FILE, &no_message);
    let mut details = step_line;
    details["details"] = json!({ "bytes": 1 });
    schemas.rejects(FILE, &details);
    let plan_line = all.iter().find(|l| l.get("details").is_some()).unwrap();
    let mut no_trial = plan_line.clone();
    no_trial["details"]["plan"]
        .as_object_mut()
        .unwrap()
        .remove("trial");
    schemas.rejects(FILE, &no_trial);
    let result_line = last_line(&Ok(outcome));
    let mut no_accounts = result_line.clone();
    no_accounts["result"]["merge"]
        .as_object_mut()
        .unwrap()
        .remove("accounts");
    schemas.rejects(FILE, &no_accounts);
    let mut extra = result_line.clone();
    extra["result"]["rebooted"] = json!(false);
    schemas.rejects(FILE, &extra);
    let mut kind = result_line;
    kind["result"]["merge"]["conflicts"][0]["kind"] = json!("both-changed");
    schemas.rejects(FILE, &kind);
    let error_line = all.last().unwrap().clone();
    let mut no_unchanged = error_line.clone();
    no_unchanged
        .as_object_mut()
        .unwrap()
        .remove("node_unchanged");
    schemas.rejects(FILE, &no_unchanged);
    let mut both = error_line;
    both["result"] = json!(null);
    schemas.rejects(FILE, &both);
}
