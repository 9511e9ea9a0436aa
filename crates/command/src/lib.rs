//! Running external programs the one way hvnode does, on the build host (mmdebstrap,
//! mksquashfs, xorriso, dracut, setfiles, qemu, …) and on the node (lsblk, lvs, ip,
//! systemctl, journalctl, restorecon, …): the command line is logged, stderr is
//! captured, and a failure becomes an error that names the program, its arguments and
//! the last lines it printed, so that an error shown in the console or by a build
//! tells exactly what was run and what it said.
//!
//! Programs whose output is parsed run with [`CommandExt::stdin_closed`] and
//! [`CommandExt::c_locale`]: nothing waits on a prompt, and no message or number is
//! translated.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;

/// At most this many trailing lines of a failing program's stderr (or log) are kept…
pub const TAIL_LINES: usize = 12;
/// …and at most this many bytes of them.
pub const TAIL_BYTES: usize = 2048;

/// An external program that could not be started, failed, or printed something we
/// could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command_line}: {what}{}", tail_suffix(.stderr))]
pub struct CommandError {
    /// The program and its arguments, as a shell would show them.
    pub command_line: String,
    /// "could not be started: …", "failed (exit status: 1)", "printed JSON we cannot
    /// read: …".
    pub what: String,
    /// The last lines of its standard error (of its log, for
    /// [`CommandExt::run_logged`], where stdout and stderr both go).
    pub stderr: String,
    /// Whether the program itself is missing (not installed on this host).
    pub not_found: bool,
}

impl CommandError {
    /// An error about `command` that is not the program's own failure (its output
    /// could not be used, the thread running it died, …).
    pub fn new(command: &Command, what: impl Into<String>) -> Self {
        Self {
            command_line: command_line(command),
            what: what.into(),
            stderr: String::new(),
            not_found: false,
        }
    }

    /// The last line the program printed on stderr, or else what went wrong: the
    /// shortest useful summary, for a one-line health check.
    pub fn last_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or(&self.what)
    }
}

fn tail_suffix(stderr: &str) -> String {
    match stderr.lines().count() {
        0 => String::new(),
        1 => format!(": {stderr}"),
        _ => format!(":\n{stderr}"),
    }
}

/// Shows a command as a shell would (arguments with blanks or quotes quoted).
pub fn command_line(cmd: &Command) -> String {
    let mut s = String::new();
    for (i, part) in std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .enumerate()
    {
        if i > 0 {
            s.push(' ');
        }
        let p = part.to_string_lossy();
        if p.is_empty() || p.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
            s.push('\'');
            s.push_str(&p.replace('\'', "'\\''"));
            s.push('\'');
        } else {
            s.push_str(&p);
        }
    }
    s
}

struct Shown<'a>(&'a Command);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&command_line(self.0))
    }
}

/// The last [`TAIL_LINES`] lines of `bytes`, at most [`TAIL_BYTES`] bytes, starting at
/// a line boundary where the byte limit cuts a line.
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if kept.len() > TAIL_BYTES {
        let mut start = kept.len() - TAIL_BYTES;
        while !kept.is_char_boundary(start) {
            start += 1;
        }
        kept = match kept[start..].find('\n') {
            Some(i) if i + 1 < kept.len() - start => kept[start + i + 1..].to_string(),
            _ => kept[start..].to_string(),
        };
    }
    kept
}

/// The extension every hvnode crate runs programs through.
pub trait CommandExt {
    /// Runs with standard input closed: a program that would ask something fails
    /// instead of waiting for an answer nobody gives.
    fn stdin_closed(&mut self) -> &mut Self;
    /// Runs in the C locale, so that messages and numbers we read are not translated.
    fn c_locale(&mut self) -> &mut Self;
    /// Runs to completion; stdout is discarded, stderr kept for the error.
    fn run(&mut self) -> Result<(), CommandError>;
    /// Runs to completion and returns stdout as text.
    fn run_capture(&mut self) -> Result<String, CommandError>;
    /// Runs to completion and parses stdout as JSON.
    fn run_json<T: DeserializeOwned>(&mut self) -> Result<T, CommandError>;
    /// Runs to completion with stdout and stderr appended to `log`; the error carries
    /// the log's last lines.
    fn run_logged(&mut self, log: &Path) -> Result<(), CommandError>;
    /// Like [`CommandExt::run_logged`], but the program writes into pipes and
    /// its output is appended to `log` afterwards (with the command line), so
    /// a program that runs in a confined SELinux domain never needs access
    /// to the log file itself.
    fn run_appending(&mut self, log: &Path) -> Result<(), CommandError>;
}

fn start_error(cmd: &Command, e: std::io::Error) -> CommandError {
    let not_found = e.kind() == std::io::ErrorKind::NotFound;
    CommandError {
        what: format!(
            "could not be started: {e}{}",
            if not_found { " (is it installed?)" } else { "" }
        ),
        not_found,
        ..CommandError::new(cmd, "")
    }
}

impl CommandExt for Command {
    fn stdin_closed(&mut self) -> &mut Self {
        self.stdin(Stdio::null())
    }

    fn c_locale(&mut self) -> &mut Self {
        self.env("LC_ALL", "C")
    }

    fn run(&mut self) -> Result<(), CommandError> {
        self.stdout(Stdio::null());
        self.run_capture().map(|_| ())
    }

    fn run_capture(&mut self) -> Result<String, CommandError> {
        tracing::debug!(command = %Shown(self), "running");
        let out = self.output().map_err(|e| start_error(self, e))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(CommandError {
            stderr: tail(&out.stderr),
            ..CommandError::new(self, format!("failed ({})", out.status))
        })
    }

    fn run_json<T: DeserializeOwned>(&mut self) -> Result<T, CommandError> {
        let text = self.run_capture()?;
        serde_json::from_str(&text).map_err(|e| CommandError {
            stderr: tail(text.as_bytes()),
            ..CommandError::new(self, format!("printed JSON we cannot read: {e}"))
        })
    }

    fn run_logged(&mut self, log: &Path) -> Result<(), CommandError> {
        tracing::debug!(command = %Shown(self), log = %log.display(), "running");
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| {
                CommandError::new(self, format!("cannot open its log {}: {e}", log.display()))
            })?;
        let start = out.metadata().map(|m| m.len()).unwrap_or(0);
        let err = out.try_clone().map_err(|e| start_error(self, e))?;
        let status = self
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| start_error(self, e))?;
        if status.success() {
            return Ok(());
        }
        let mut tail_text = Vec::new();
        if let Ok(mut f) = File::open(log) {
            let end = f.metadata().map(|m| m.len()).unwrap_or(0);
            let from = end.saturating_sub(TAIL_BYTES as u64 * 2).max(start);
            if f.seek(SeekFrom::Start(from)).is_ok() {
                let _ = f.read_to_end(&mut tail_text);
            }
        }
        Err(CommandError {
            stderr: tail(&tail_text),
            ..CommandError::new(
                self,
                format!("failed ({status}); full output in {}", log.display()),
            )
        })
    }

    fn run_appending(&mut self, log: &Path) -> Result<(), CommandError> {
        use std::io::Write;
        tracing::debug!(command = %Shown(self), log = %log.display(), "running");
        let out = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| start_error(self, e))?;
        let mut f = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| {
                CommandError::new(self, format!("cannot open its log {}: {e}", log.display()))
            })?;
        let _ = writeln!(f, "$ {}", command_line(self));
        let _ = f.write_all(&out.stdout);
        let _ = f.write_all(&out.stderr);
        if out.status.success() {
            return Ok(());
        }
        let _ = writeln!(f, "({})", out.status);
        Err(CommandError {
            stderr: tail(&out.stderr),
            ..CommandError::new(
                self,
                format!("failed ({}); full output in {}", out.status, log.display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_keeps_the_command_and_its_output() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("log");
        Command::new("sh")
            .args(["-c", "echo out; echo err >&2"])
            .run_appending(&log)
            .unwrap();
        let e = Command::new("sh")
            .args(["-c", "echo bad >&2; exit 4"])
            .run_appending(&log)
            .unwrap_err();
        assert_eq!(e.stderr, "bad");
        assert!(e.what.contains("exit status: 4"), "{e}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with("$ sh -c 'echo out; echo err >&2'\nout\nerr\n$ sh"),
            "{text}"
        );
    }

    #[test]
    fn capture_and_failure() {
        assert_eq!(
            Command::new("sh")
                .args(["-c", "echo hi"])
                .run_capture()
                .unwrap(),
            "hi\n"
        );
        let e = Command::new("sh")
            .args(["-c", "echo boom >&2; exit 3"])
            .run()
            .unwrap_err();
        assert_eq!(e.command_line, "sh -c 'echo boom >&2; exit 3'");
        assert!(e.what.contains("exit status: 3"), "{e}");
        assert_eq!(e.stderr, "boom");
        assert!(!e.not_found);
        assert_eq!(
            e.to_string(),
            "sh -c 'echo boom >&2; exit 3': failed (exit status: 3): boom"
        );
        assert_eq!(e.last_line(), "boom");
    }

    #[test]
    fn only_the_last_lines_of_stderr_are_kept() {
        let script = "for i in $(seq 1 40); do echo line$i >&2; done; exit 1";
        let e = Command::new("sh")
            .args(["-c", script])
            .run_capture()
            .unwrap_err();
        assert_eq!(e.stderr.lines().count(), TAIL_LINES);
        assert!(e.stderr.ends_with("line40"), "{e}");
        assert!(!e.stderr.contains("line28\n"), "{e}");
        assert!(
            e.to_string().contains("failed (exit status: 1):\nline29\n"),
            "{e}"
        );
    }

    #[test]
    fn long_lines_are_cut_at_a_line_boundary_and_a_character() {
        let long = "é".repeat(3000);
        let text = format!("first\n{long}\nlast\n");
        let kept = tail(text.as_bytes());
        assert!(kept.len() <= TAIL_BYTES, "{}", kept.len());
        assert!(kept.ends_with("last"));
        assert!(!kept.contains("first"));
        assert_eq!(tail(b"one\ntwo\n"), "one\ntwo");
        assert_eq!(tail(b""), "");
    }

    #[test]
    fn missing_program_says_so() {
        let e = Command::new("/nonexistent/prog").run().unwrap_err();
        assert!(e.what.starts_with("could not be started"), "{e}");
        assert!(e.what.contains("is it installed"), "{e}");
        assert!(e.not_found);
        assert_eq!(e.last_line(), e.what);
    }

    #[test]
    fn stdin_is_closed_and_the_locale_is_c_when_asked() {
        let out = Command::new("sh")
            .args(["-c", "read x || echo eof; echo $LC_ALL"])
            .stdin_closed()
            .c_locale()
            .env("LANG", "de_DE.UTF-8")
            .run_capture()
            .unwrap();
        assert_eq!(out, "eof\nC\n");
    }

    #[test]
    fn json() {
        let v: Vec<u32> = Command::new("echo").arg("[1,2]").run_json().unwrap();
        assert_eq!(v, [1, 2]);
        let e = Command::new("echo")
            .arg("nope")
            .run_json::<Vec<u32>>()
            .unwrap_err();
        assert!(e.what.contains("JSON"), "{e}");
        assert_eq!(e.command_line, "echo nope");
    }

    #[test]
    fn logged_keeps_the_tail() {
        let dir = std::env::temp_dir().join(format!("command-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        Command::new("sh")
            .args(["-c", "echo first"])
            .run_logged(&log)
            .unwrap();
        let e = Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 1"])
            .run_logged(&log)
            .unwrap_err();
        assert_eq!(e.stderr, "out\nerr", "{e}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nout\nerr\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
