//! Running external programs (mmdebstrap, mksquashfs, xorriso, dracut,
//! setfiles, qemu, …) the one way hvnode does: the command line is logged,
//! stderr is captured, and a failure becomes an error that names the
//! program, its arguments and the last lines it printed.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;

/// How much of a failing program's output an error keeps.
const TAIL: u64 = 2048;

/// An external program that could not be started, failed, or printed
/// something we could not read.
#[derive(Debug, thiserror::Error)]
#[error("{command_line}: {what}{}", tail(.output))]
pub struct CommandError {
    /// The program and its arguments, as a shell would show them.
    pub command_line: String,
    /// "could not be started: …", "exited with status …", "printed …".
    pub what: String,
    /// The last lines of its standard error (or log).
    pub output: String,
}

fn tail(output: &str) -> String {
    if output.trim().is_empty() {
        String::new()
    } else {
        format!("\n{}", output.trim_end())
    }
}

/// Shows a command as a shell would (arguments with blanks quoted).
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

fn last_bytes(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(TAIL as usize);
    let s = String::from_utf8_lossy(&bytes[start..]);
    // Start at a line boundary when one is near.
    match s.find('\n') {
        Some(i) if start > 0 && i < s.len() - 1 => s[i + 1..].to_string(),
        _ => s.into_owned(),
    }
}

/// The extension every hvnode crate uses to run programs.
pub trait CommandExt {
    /// Runs to completion; stdout is discarded, stderr kept for the error.
    fn run(&mut self) -> Result<(), CommandError>;
    /// Runs to completion and returns stdout as text.
    fn run_capture(&mut self) -> Result<String, CommandError>;
    /// Runs to completion and parses stdout as JSON.
    fn run_json<T: DeserializeOwned>(&mut self) -> Result<T, CommandError>;
    /// Runs to completion with stdout and stderr appended to `log`; the
    /// error carries the log's last lines.
    fn run_logged(&mut self, log: &Path) -> Result<(), CommandError>;
}

fn start_error(cmd: &Command, e: std::io::Error) -> CommandError {
    let hint = if e.kind() == std::io::ErrorKind::NotFound {
        " (is it installed? `make deps` or `make image` install the build tools)"
    } else {
        ""
    };
    CommandError {
        command_line: command_line(cmd),
        what: format!("could not be started: {e}{hint}"),
        output: String::new(),
    }
}

impl CommandExt for Command {
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
            command_line: command_line(self),
            what: format!("failed ({})", out.status),
            output: last_bytes(&out.stderr),
        })
    }

    fn run_json<T: DeserializeOwned>(&mut self) -> Result<T, CommandError> {
        let text = self.run_capture()?;
        serde_json::from_str(&text).map_err(|e| CommandError {
            command_line: command_line(self),
            what: format!("printed JSON we cannot read: {e}"),
            output: last_bytes(text.as_bytes()),
        })
    }

    fn run_logged(&mut self, log: &Path) -> Result<(), CommandError> {
        tracing::debug!(command = %Shown(self), log = %log.display(), "running");
        let open = || {
            File::options()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| CommandError {
                    command_line: command_line(self),
                    what: format!("cannot open its log {}: {e}", log.display()),
                    output: String::new(),
                })
        };
        let out = open()?;
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
            let from = end.saturating_sub(TAIL).max(start);
            if f.seek(SeekFrom::Start(from)).is_ok() {
                let _ = f.read_to_end(&mut tail_text);
            }
        }
        Err(CommandError {
            command_line: command_line(self),
            what: format!("failed ({status}); full output in {}", log.display()),
            output: last_bytes(&tail_text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(e.output.trim(), "boom");
    }

    #[test]
    fn missing_program_says_so() {
        let e = Command::new("/nonexistent/prog").run().unwrap_err();
        assert!(e.what.starts_with("could not be started"), "{e}");
        assert!(e.what.contains("is it installed"), "{e}");
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
        assert!(e.output.contains("out\nerr"), "{e}");
        assert!(!e.output.contains("first"), "{e}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nout\nerr\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
