//! The one wrapper through which this crate runs external programs.
//!
//! Every program runs with its standard input closed, a fixed `C` locale and its
//! output captured. A failure names the command line and keeps the last lines of the
//! program's standard error, so that an error shown in the console tells the
//! administrator exactly what was run and what it said.

use std::fmt;
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;

/// How many trailing lines of a failing program's stderr an error keeps.
const STDERR_LINES: usize = 8;
/// And at most this many bytes of them.
const STDERR_BYTES: usize = 2048;

/// An external program that could not be started, failed, or printed output that could
/// not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{command_line}: {what}{}", stderr_suffix(.stderr))]
pub struct CommandError {
    /// The program and its arguments, as a shell would show them.
    pub command_line: String,
    /// "could not be started: …", "failed (exit status: 1)" or "printed unparsable JSON: …".
    pub what: String,
    /// The last lines of its standard error.
    pub stderr: String,
    /// Whether the program itself was missing (not installed on this host).
    pub not_found: bool,
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// Shows a command the way a shell user would type it.
pub fn command_line(command: &Command) -> String {
    struct Shown<'a>(&'a Command);
    impl fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}", self.0.get_program().to_string_lossy())?;
            for arg in self.0.get_args() {
                let arg = arg.to_string_lossy();
                if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
                    write!(f, " '{}'", arg.replace('\'', r"'\''"))?;
                } else {
                    write!(f, " {arg}")?;
                }
            }
            Ok(())
        }
    }
    Shown(command).to_string()
}

/// The last [`STDERR_LINES`] lines of `stderr`, at most [`STDERR_BYTES`] bytes.
pub fn stderr_tail(stderr: &str) -> String {
    let trimmed = stderr.trim_end();
    let lines: Vec<&str> = trimmed.lines().collect();
    let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
    let start = tail.len().saturating_sub(STDERR_BYTES);
    let start = (start..=tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    tail[start..].to_string()
}

/// Runs `command` to completion and returns its standard output.
pub fn run(command: &mut Command) -> Result<String, CommandError> {
    let command_line = command_line(command);
    let output = command
        .stdin(Stdio::null())
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| CommandError {
            command_line: command_line.clone(),
            what: format!("could not be started: {e}"),
            stderr: String::new(),
            not_found: e.kind() == std::io::ErrorKind::NotFound,
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(CommandError {
        command_line,
        what: format!("failed ({})", output.status),
        stderr: stderr_tail(&String::from_utf8_lossy(&output.stderr)),
        not_found: false,
    })
}

/// Runs `command` and parses its standard output as JSON.
pub fn run_json<T: DeserializeOwned>(command: &mut Command) -> Result<T, CommandError> {
    let line = command_line(command);
    let out = run(command)?;
    serde_json::from_str(&out).map_err(|e| CommandError {
        command_line: line,
        what: format!("printed unparsable JSON: {e}"),
        stderr: String::new(),
        not_found: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_returns_stdout() {
        let out = run(Command::new("sh").args(["-c", "echo hi"])).unwrap();
        assert_eq!(out, "hi\n");
    }

    #[test]
    fn failure_names_command_and_last_stderr_lines() {
        let script = "for i in $(seq 1 20); do echo line$i >&2; done; exit 3";
        let err = run(Command::new("sh").args(["-c", script])).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("sh -c 'for i in"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.ends_with("line20"), "{text}");
        assert!(!err.stderr.contains("line12"), "{text}");
        assert_eq!(err.stderr.lines().count(), STDERR_LINES);
    }

    #[test]
    fn missing_program_is_reported() {
        let err = run(&mut Command::new("/nonexistent/prog")).unwrap_err();
        assert!(err.not_found);
        assert!(err.what.contains("could not be started"), "{err}");
    }

    #[test]
    fn json_output_is_parsed_and_garbage_is_an_error() {
        let v: Vec<u32> = run_json(Command::new("echo").arg("[1,2]")).unwrap();
        assert_eq!(v, [1, 2]);
        let err = run_json::<Vec<u32>>(Command::new("echo").arg("nope")).unwrap_err();
        assert!(err.what.contains("unparsable JSON"), "{err}");
        assert!(err.command_line == "echo nope", "{err}");
    }
}
