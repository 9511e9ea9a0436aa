//! The guest's serial console: wait for text, type, run a command and read
//! its output and exit status.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[derive(Debug)]
pub struct Console {
    stream: UnixStream,
    /// Everything read and not yet consumed by an expect.
    pending: String,
    log: File,
    counter: u32,
}

/// Drops terminal escape sequences (bracketed paste, colours) from text.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if n.is_ascii_alphabetic() || n == '~' {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

impl Console {
    pub fn new(stream: UnixStream, log: &Path) -> Result<Console> {
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(Console {
            stream,
            pending: String::new(),
            log: File::create(log).with_context(|| format!("creating {}", log.display()))?,
            counter: 0,
        })
    }

    fn fill(&mut self) -> Result<bool> {
        let mut buf = [0u8; 8192];
        match self.stream.read(&mut buf) {
            Ok(0) => bail!("the guest's console closed (qemu exited)"),
            Ok(n) => {
                self.log.write_all(&buf[..n])?;
                self.pending
                    .push_str(&strip_escapes(&String::from_utf8_lossy(&buf[..n])));
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until `needle` appears; returns everything up to and including it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.find(needle) {
                let end = i + needle.len();
                let got: String = self.pending[..end].to_string();
                self.pending.drain(..end);
                return Ok(got);
            }
            if Instant::now() >= deadline {
                let tail: String = self
                    .pending
                    .chars()
                    .rev()
                    .take(1500)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                bail!(
                    "waited {} s for {needle:?} on the serial console; last output:\n{tail}",
                    timeout.as_secs()
                );
            }
            self.fill()?;
        }
    }

    pub fn send(&mut self, text: &str) -> Result<()> {
        self.stream.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Runs a shell command at a root prompt; returns its exit status and
    /// output (stdout and stderr as the terminal showed them).
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        self.counter += 1;
        let n = self.counter;
        // The marker is assembled by the shell, so the echo of the typed
        // line does not match it.
        self.send(&format!("{cmd}; echo \"@@{n}\"\"@@rc=$?@@\"\n"))?;
        let out = self.expect(&format!("@@{n}@@rc="), timeout)?;
        let rc_text = self.expect("@@", Duration::from_secs(10))?;
        let rc = rc_text.trim_end_matches("@@").trim().parse().unwrap_or(-1);
        // Drop the echoed command line.
        let body = match out.find('\n') {
            Some(i) => out[i + 1..].to_string(),
            None => String::new(),
        };
        let body = body.trim_end_matches(&format!("@@{n}@@rc=")).to_string();
        Ok((rc, body))
    }

    /// Like [`Console::run`] but a non-zero status is an error.
    pub fn check(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let (rc, out) = self.run(cmd, timeout)?;
        if rc != 0 {
            bail!("`{cmd}` in the guest exited with {rc}:\n{out}");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            strip_escapes("\u{1b}[?2004hroot@hvnode:~# \r\n"),
            "root@hvnode:~# \n"
        );
        assert_eq!(strip_escapes("a\u{1b}[0;32mgreen\u{1b}[0m"), "agreen");
    }
}
