//! Updating the node from the console: what `nodectl update` does, run by
//! the console and shown from its JSON lines.
//!
//! - **check**: `nodectl update SOURCE --json` without `--yes` downloads and
//!   verifies the bundle (signature, manifest), checks space and plans, then
//!   stops: its lines (the plan, the space checks, the warnings) are shown on
//!   a confirmation page, or its refusal as the error;
//! - **apply**: `nodectl update SOURCE --json --yes` runs as the node's one
//!   update job; the Node page's update page follows its lines until the
//!   result (the layer on trial, the `/etc` conflicts) or the error.
//!
//! Under systemd `nodectl` runs in a transient unit of its own
//! (`systemd-run --wait --pipe`), outside the agent's sandbox, which may not
//! write the layer store or mount images; elsewhere it runs directly.

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;

/// Where `nodectl` is on a node.
pub const NODECTL: &str = "/usr/bin/nodectl";

/// The longest SOURCE accepted.
const MAX_SOURCE: usize = 2048;

/// A bundle's place as the admin typed it: an http(s) URL or an absolute
/// path on the node, nothing a command line could take for an option.
pub fn check_source(source: &str) -> Result<String, ApiError> {
    let s = source.trim();
    let shape_ok = s.starts_with("https://") || s.starts_with("http://") || s.starts_with('/');
    if s.is_empty() || s.len() > MAX_SOURCE || !shape_ok || s.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{s:?} is not an update bundle's place: give an http(s) URL or an absolute path \
             on the node of NVR.update.tar (its .minisig beside it)"
        )));
    }
    Ok(s.to_string())
}

/// One line of `nodectl update --json`, as the pages show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub step: Option<String>,
    pub state: Option<String>,
    pub message: String,
}

/// What `nodectl update --json` said, line by line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Run {
    pub lines: Vec<Line>,
    /// The plan (`details.plan` of the plan line).
    pub plan: Option<Value>,
    /// The last line's `result` (applied).
    pub result: Option<Value>,
    /// The last line's `error`, unless it only says the plan was not applied.
    pub error: Option<String>,
    /// Whether the plan was shown and not applied (a check).
    pub cancelled: bool,
    /// Whether the node is as it was after an error.
    pub node_unchanged: Option<bool>,
}

impl Run {
    /// Adds one line of output; text that is not JSON is kept as a message.
    pub fn push(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            self.lines.push(Line {
                step: None,
                state: None,
                message: line.to_string(),
            });
            return;
        };
        if let Some(r) = v.get("result") {
            self.result = Some(r.clone());
            return;
        }
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            self.cancelled = v.get("cancelled").and_then(Value::as_bool) == Some(true);
            self.node_unchanged = v.get("node_unchanged").and_then(Value::as_bool);
            if !self.cancelled {
                self.error = Some(e.to_string());
            }
            return;
        }
        if let Some(p) = v.pointer("/details/plan") {
            self.plan = Some(p.clone());
        }
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        self.lines.push(Line {
            step: text("step"),
            state: text("state"),
            message: text("message").unwrap_or_default(),
        });
    }

    /// The `/etc` conflicts of an applied update, as paths.
    pub fn conflicts(&self) -> Vec<String> {
        self.result
            .as_ref()
            .and_then(|r| r.pointer("/merge/conflicts"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("path").and_then(Value::as_str))
                    .map(|p| format!("/etc/{p}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The layer on trial after an applied update.
    pub fn trial(&self) -> Option<String> {
        self.result
            .as_ref()
            .and_then(|r| r.pointer("/plan/trial"))
            .and_then(Value::as_str)
            .map(String::from)
    }
}

/// The command line that runs `nodectl update` for `source`.
pub fn command(nodectl: &Path, source: &str, apply: bool, under_systemd: bool) -> Command {
    let mut argv: Vec<String> = vec![
        nodectl.to_string_lossy().into_owned(),
        "update".into(),
        source.into(),
        "--json".into(),
    ];
    if apply {
        argv.push("--yes".into());
    }
    let mut cmd = if under_systemd {
        let mut c = transient_unit("hvnode update from the web console");
        c.args(&argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `systemd-run` starting what follows in a transient unit of its own, described as
/// `description`, with its standard input and output connected to this process's
/// (`--pipe`), waited for and collected when it ends.
pub fn transient_unit(description: &str) -> Command {
    let mut c = Command::new("systemd-run");
    c.args(["--quiet", "--wait", "--pipe", "--collect"])
        .arg(format!("--description={description}"))
        .arg("--");
    c
}

/// Whether the agent runs as a systemd service (then `nodectl` gets a unit
/// of its own).
pub fn under_systemd() -> bool {
    Path::new("/run/systemd/system").is_dir() && std::env::var_os("INVOCATION_ID").is_some()
}

/// Runs `cmd`, feeding each stdout line to `on_line`; stderr becomes the
/// error when the run ended without a JSON verdict.
pub fn run(mut cmd: Command, mut on_line: impl FnMut(&str)) -> Result<(), ApiError> {
    let line = command::command_line(&cmd);
    let mut child = cmd.spawn().map_err(|e| {
        ApiError::Failed(format!(
            "starting `{line}`: {e}: is nodectl installed (the image has it at {NODECTL})?"
        ))
    })?;
    if let Some(out) = child.stdout.take() {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            on_line(&l);
        }
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let status = child
        .wait()
        .map_err(|e| ApiError::Failed(format!("waiting for `{line}`: {e}")))?;
    if !status.success() && !stderr.trim().is_empty() {
        on_line(stderr.trim());
    }
    Ok(())
}

/// Starts `nodectl update` for `source` (checked, or applied with `apply`) with
/// its standard output and error on one pipe: the pipe's read end and the process.
/// What the privileged helper runs for a session it holds.
pub fn spawn(
    nodectl: &Path,
    source: &str,
    apply: bool,
) -> Result<(OwnedFd, std::process::Child), ApiError> {
    let source = check_source(source)?;
    let mut cmd = command(nodectl, &source, apply, under_systemd());
    let line = command::command_line(&cmd);
    let pipe = |e: std::io::Error| ApiError::Failed(format!("a pipe for `{line}`: {e}"));
    let (reader, writer) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| pipe(e.into()))?;
    cmd.stdout(writer.try_clone().map_err(pipe)?).stderr(writer);
    let child = cmd.spawn().map_err(|e| {
        ApiError::Failed(format!(
            "starting `{line}`: {e}: is nodectl installed (the image has it at {NODECTL})?"
        ))
    })?;
    // The command keeps the pipe's write ends: dropped, the read end ends with the
    // process.
    drop(cmd);
    Ok((reader, child))
}

/// Starts `cmd` (a nodectl command line with its standard output piped): the read
/// end of its standard output and the process. What the privileged helper runs
/// for a diagnostic report or a registration step.
pub fn spawn_piped(mut cmd: Command) -> Result<(OwnedFd, std::process::Child), helper::Failure> {
    use helper::{Failure, FailureKind};
    let line = command::command_line(&cmd);
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(
            FailureKind::Unavailable,
            format!(
                "starting `{line}`: {e}: is nodectl installed (the image has it at {NODECTL})?"
            ),
        )
    })?;
    let Some(out) = child.stdout.take() else {
        let _ = child.kill();
        return Err(Failure::new(
            FailureKind::Failed,
            format!("`{line}` started without its output"),
        ));
    };
    Ok((OwnedFd::from(out), child))
}

/// Feeds each line read from `output` to `on_line` until it ends.
pub fn read_lines(output: OwnedFd, mut on_line: impl FnMut(&str)) {
    for l in BufReader::new(std::fs::File::from(output))
        .lines()
        .map_while(Result::ok)
    {
        on_line(&l);
    }
}

/// Runs an update for `source` (checked, or applied with `apply`): through the
/// privileged helper when it holds the session (`held`), in this process
/// otherwise; each line of its output goes to `on_line`.
pub fn run_for(
    held: Option<&helper::Held>,
    nodectl: &Path,
    source: &str,
    apply: bool,
    on_line: impl FnMut(&str),
) -> Result<(), ApiError> {
    match held {
        Some(held) => {
            let (output, _pid) = held.run_update(source, apply).map_err(ApiError::from)?;
            read_lines(output, on_line);
            Ok(())
        }
        None => run(command(nodectl, source, apply, under_systemd()), on_line),
    }
}

/// A check: the plan, or why the update is refused; through the helper when it
/// holds the session (`held`).
pub fn check(held: Option<&helper::Held>, nodectl: &Path, source: &str) -> Result<Run, ApiError> {
    let source = check_source(source)?;
    let mut r = Run::default();
    run_for(held, nodectl, &source, false, |l| r.push(l))?;
    if let Some(e) = &r.error {
        return Err(ApiError::Conflict(format!("the update is refused: {e}")));
    }
    if !r.cancelled || r.plan.is_none() {
        let said: Vec<&str> = r.lines.iter().map(|l| l.message.as_str()).collect();
        return Err(ApiError::Failed(format!(
            "nodectl update gave no plan: {}",
            said.join(" / ")
        )));
    }
    Ok(r)
}

/// The node's update job, as the update page and `GET /api/v1/node/update`
/// show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Job {
    pub source: String,
    pub running: bool,
    pub run: Run,
    /// The `/etc` conflicts, once applied.
    pub conflicts: Vec<String>,
    /// The layer on trial, once applied.
    pub trial: Option<String>,
}

/// The one update job of the node (the last one, while the agent runs).
#[derive(Debug, Default)]
pub struct Jobs {
    job: Mutex<Option<Job>>,
}

impl Jobs {
    /// The current or last job.
    pub fn get(&self) -> Option<Job> {
        self.job.lock().ok().and_then(|j| j.clone())
    }

    /// Starts applying `source` on a thread of its own; refused while a job
    /// runs.
    /// Applies it through the privileged helper when it holds the session (`held`).
    pub fn start(
        self: &Arc<Self>,
        held: Option<Arc<helper::Held>>,
        nodectl: PathBuf,
        source: &str,
    ) -> Result<(), ApiError> {
        let source = check_source(source)?;
        {
            let mut slot = self
                .job
                .lock()
                .map_err(|_| ApiError::Failed("the update job's lock is poisoned".into()))?;
            if slot.as_ref().is_some_and(|j| j.running) {
                return Err(ApiError::Conflict(
                    "an update is running already: follow it on the update page".into(),
                ));
            }
            *slot = Some(Job {
                source: source.clone(),
                running: true,
                ..Job::default()
            });
        }
        let jobs = Arc::clone(self);
        std::thread::spawn(move || {
            let outcome = run_for(held.as_deref(), &nodectl, &source, true, |l| {
                jobs.update(|j| j.run.push(l))
            });
            jobs.update(|j| {
                if let Err(e) = &outcome {
                    j.run.error = Some(e.to_string());
                }
                if j.run.result.is_none() && j.run.error.is_none() {
                    j.run.error = Some("nodectl update ended without a result".into());
                }
                j.conflicts = j.run.conflicts();
                j.trial = j.run.trial();
                j.running = false;
            });
        });
        Ok(())
    }

    /// Puts `job` in the slot, as if it had run (tests show recorded runs).
    pub fn set(&self, job: Job) {
        if let Ok(mut slot) = self.job.lock() {
            *slot = Some(job);
        }
    }

    fn update(&self, f: impl FnOnce(&mut Job)) {
        if let Ok(mut slot) = self.job.lock()
            && let Some(j) = slot.as_mut()
        {
            f(j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `nodectl update --json` wrote for a check on a node (the
    /// plan line shortened), then for the update applied.
    const CHECK: &str = r#"{"step":"verify","state":"start","message":"checking and extracting the bundle"}
{"step":"verify","state":"done","message":"signed by key 1A2B3C4D5E6F7081 (test.pub)"}
{"step":"space","state":"done","message":"checking free space"}
{"message":"store: lvm\nnew layer: hvnode-1.0-0.20261125.0.2+1","details":{"plan":{"new_layer":"hvnode-1.0-0.20261125.0.2+1","trial":"hvnode-1.0-0.20261125.0.2+1","space":[],"warnings":[]}}}
{"error":"update cancelled; nothing on the node was changed","node_unchanged":true,"cancelled":true}"#;

    const APPLIED: &str = r#"{"step":"trial","state":"done","message":"arming the trial boot"}
{"result":{"plan":{"trial":"hvnode-1.0-0.20261125.0.2+1"},"merge":{"conflicts":[{"path":"ssh/sshd_config.d/hvnode.conf","kind":"modified"}]}}}"#;

    #[test]
    fn a_check_shows_the_plan_and_is_not_an_error() {
        let mut r = Run::default();
        CHECK.lines().for_each(|l| r.push(l));
        assert!(r.cancelled && r.error.is_none());
        assert_eq!(
            r.plan.as_ref().unwrap()["trial"],
            "hvnode-1.0-0.20261125.0.2+1"
        );
        assert_eq!(r.lines.len(), 4);
        assert!(r.lines[1].message.contains("signed by key"));
        let mut a = Run::default();
        APPLIED.lines().for_each(|l| a.push(l));
        assert_eq!(a.conflicts(), ["/etc/ssh/sshd_config.d/hvnode.conf"]);
        assert_eq!(a.trial().as_deref(), Some("hvnode-1.0-0.20261125.0.2+1"));
    }

    #[test]
    fn a_refusal_is_the_error() {
        let mut r = Run::default();
        r.push(r#"{"error":"the bundle is signed by a key this node does not trust. Nothing on the node was changed","node_unchanged":true,"cancelled":false}"#);
        assert!(!r.cancelled);
        assert!(r.error.as_deref().unwrap().contains("does not trust"));
        assert_eq!(r.node_unchanged, Some(true));
        r.push("nodectl: plain text");
        assert_eq!(r.lines[0].message, "nodectl: plain text");
    }

    #[test]
    fn only_urls_and_absolute_paths_are_sources() {
        assert!(check_source("https://updates.example.com/hvnode-1.1-1.update.tar").is_ok());
        assert_eq!(
            check_source(" /var/tmp/b.update.tar ").unwrap(),
            "/var/tmp/b.update.tar"
        );
        for bad in [
            "--no-verify",
            "b.update.tar",
            "",
            "ftp://x/y",
            "/a\nb",
            &"/x".repeat(2000),
        ] {
            assert!(check_source(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nodectl_runs_in_a_unit_of_its_own_under_systemd() {
        let c = command(Path::new(NODECTL), "/b.update.tar", true, true);
        let line = command::command_line(&c);
        assert!(
            line.starts_with("systemd-run --quiet --wait --pipe --collect"),
            "{line}"
        );
        assert!(
            line.ends_with("-- /usr/bin/nodectl update /b.update.tar --json --yes"),
            "{line}"
        );
        let c = command(Path::new(NODECTL), "/b.update.tar", false, false);
        assert_eq!(
            command::command_line(&c),
            "/usr/bin/nodectl update /b.update.tar --json"
        );
    }

    #[test]
    fn a_missing_nodectl_is_a_clear_error_and_ends_the_job() {
        let e = check(None, Path::new("/nonexistent/nodectl"), "/b.update.tar").unwrap_err();
        assert!(e.to_string().contains("is nodectl installed"), "{e}");
        let jobs = Arc::new(Jobs::default());
        jobs.start(None, "/nonexistent/nodectl".into(), "/b.update.tar")
            .unwrap();
        for _ in 0..100 {
            if jobs.get().is_some_and(|j| !j.running) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let j = jobs.get().unwrap();
        assert!(!j.running);
        assert!(j.run.error.unwrap().contains("is nodectl installed"));
    }
}
