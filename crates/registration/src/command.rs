//! The one wrapper through which this crate runs external programs.

use std::fmt;
use std::process::Command;

/// How much of a failing program's stderr an error keeps.
const STDERR_TAIL: usize = 1024;

/// An external program that could not be started or that failed.
#[derive(Debug, thiserror::Error)]
#[error("{command_line} {what}{}", stderr_suffix(.stderr))]
pub struct CommandError {
    /// The program and its arguments, as a shell would show them.
    pub command_line: String,
    /// "could not be started: …" or "exited with status …".
    pub what: String,
    /// The last KiB of its standard error.
    pub stderr: String,
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

struct Shown<'a>(&'a Command);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.get_program().to_string_lossy())?;
        for arg in self.0.get_args() {
            write!(f, " {}", arg.to_string_lossy())?;
        }
        Ok(())
    }
}

/// Runs `command` to completion and returns its standard output; a failure names the
/// command line and carries the tail of its standard error.
pub fn run_capture(command: &mut Command) -> Result<String, CommandError> {
    let command_line = Shown(command).to_string();
    let output = command.output().map_err(|e| CommandError {
        command_line: command_line.clone(),
        what: format!("could not be started: {e}"),
        stderr: String::new(),
    })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let trimmed = stderr.trim_end();
    let start = trimmed.len().saturating_sub(STDERR_TAIL);
    let start = (start..=trimmed.len())
        .find(|i| trimmed.is_char_boundary(*i))
        .unwrap_or(trimmed.len());
    Err(CommandError {
        command_line,
        what: format!("failed ({})", output.status),
        stderr: trimmed[start..].to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_returns_stdout() {
        let out = run_capture(Command::new("sh").args(["-c", "echo hi"])).unwrap();
        assert_eq!(out, "hi\n");
    }

    #[test]
    fn failure_names_command_and_stderr() {
        let err = run_capture(Command::new("sh").args(["-c", "echo boom >&2; exit 3"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sh -c echo boom >&2; exit 3"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.ends_with(": boom"), "{err}");
    }

    #[test]
    fn missing_program_is_reported() {
        let err = run_capture(&mut Command::new("/nonexistent/prog")).unwrap_err();
        assert!(err.what.contains("could not be started"), "{err}");
    }
}
