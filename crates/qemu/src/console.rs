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
    /// Bytes held back: an incomplete UTF-8 character or escape sequence
    /// at the end of the last read.
    carry: Vec<u8>,
    log: File,
    counter: u32,
}

/// Splits `bytes` into the text that is complete and what must wait for
/// the next read (a cut UTF-8 character or escape sequence).
fn complete_prefix(bytes: &[u8]) -> (String, Vec<u8>) {
    let (valid, rest) = match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), Vec::new()),
        Err(e) if e.error_len().is_none() => (
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
            bytes[e.valid_up_to()..].to_vec(),
        ),
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), Vec::new()),
    };
    if let Some(i) = valid.rfind('\u{1b}') {
        let tail = &valid[i + 1..];
        let finished = match tail.strip_prefix('[') {
            Some(t) => t.chars().any(|c| c.is_ascii_alphabetic() || c == '~'),
            None => !tail.is_empty(),
        };
        if !finished && tail.len() < 32 {
            let mut carry = valid.as_bytes()[i..].to_vec();
            carry.extend(rest);
            return (valid[..i].to_string(), carry);
        }
    }
    (valid, rest)
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
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .context("setting a read timeout on the guest's serial console")?;
        Ok(Console {
            stream,
            pending: String::new(),
            carry: Vec::new(),
            log: File::create(log).with_context(|| format!("creating {}", log.display()))?,
            counter: 0,
        })
    }

    pub(crate) fn fill(&mut self) -> Result<bool> {
        let mut buf = [0u8; 8192];
        match self.stream.read(&mut buf) {
            Ok(0) => bail!("the guest's console closed (qemu exited)"),
            Ok(n) => {
                self.log
                    .write_all(&buf[..n])
                    .context("copying the guest's serial console to its log (is the disk full?)")?;
                self.carry.extend_from_slice(&buf[..n]);
                let (text, carry) = complete_prefix(&self.carry);
                self.carry = carry;
                self.pending.push_str(&strip_escapes(&text));
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
            Err(e) => Err(e).context("reading the guest's serial console"),
        }
    }

    /// Waits until `needle` appears; returns everything up to and including it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        self.expect_any(&[needle], timeout).map(|(_, got)| got)
    }

    /// Waits until one of `needles` appears; returns its index and
    /// everything up to and including it.
    pub fn expect_any(&mut self, needles: &[&str], timeout: Duration) -> Result<(usize, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let first = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.pending.find(n).map(|at| (at, i)))
                .min();
            if let Some((at, i)) = first {
                let end = at + needles[i].len();
                let got: String = self.pending[..end].to_string();
                self.pending.drain(..end);
                return Ok((i, got));
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
                    "waited {} s for any of {needles:?} on the serial console; last output:\n{tail}",
                    timeout.as_secs()
                );
            }
            self.fill()?;
        }
    }

    /// Logs in at a `login:` prompt.
    pub fn login(&mut self, user: &str, password: &str, timeout: Duration) -> Result<()> {
        self.expect("login:", timeout)?;
        self.send(&format!("{user}\n"))?;
        self.expect("Password:", Duration::from_secs(120))?;
        self.send(&format!("{password}\n"))?;
        self.expect(":~#", Duration::from_secs(300))?;
        Ok(())
    }

    pub fn send(&mut self, text: &str) -> Result<()> {
        self.stream
            .write_all(text.as_bytes())
            .context("typing on the guest's serial console (has qemu exited? see its log)")?;
        Ok(())
    }

    /// Types `text` one key at a time, `pause` apart: firmware consoles
    /// (OVMF's serial terminal under TCG) poll the port and drop keys that
    /// arrive faster than they read them.
    pub fn type_slowly(&mut self, text: &str, pause: Duration) -> Result<()> {
        let mut buf = [0u8; 4];
        for ch in text.chars() {
            self.send(ch.encode_utf8(&mut buf))?;
            std::thread::sleep(pause);
        }
        Ok(())
    }

    /// Makes the shell at the prompt quiet for [`Console::run`]: no echo of
    /// typed lines, no prompt, no bracketed-paste sequences.
    pub fn prepare_shell(&mut self) -> Result<()> {
        // Kernel messages on the console would land in the middle of
        // command output: keep them in the journal only.
        self.send("dmesg -n 1 2>/dev/null; stty -echo; bind 'set enable-bracketed-paste off' 2>/dev/null; PS1=''; PS2=''; unset PROMPT_COMMAND; export SYSTEMD_PAGER= PAGER=cat\n")?;
        self.counter += 1;
        let n = self.counter;
        self.send(&format!("echo \"@@ready\"\"{n}@@\"\n"))?;
        self.expect(&format!("@@ready{n}@@"), Duration::from_secs(60))?;
        Ok(())
    }

    /// Runs a shell command at a prepared root shell (see
    /// [`Console::prepare_shell`]); returns its exit status and output
    /// (stdout and stderr as the terminal showed them).
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        self.counter += 1;
        let n = self.counter;
        // Markers are assembled by the shell, so an echo of the typed line
        // could never match them.
        self.send(&format!(
            "echo \"@@begin\"\"{n}@@\"; {cmd}; echo \"@@end\"\"{n}@@rc=$?@@\"\n"
        ))?;
        self.expect(&format!("@@begin{n}@@\n"), timeout)?;
        let out = self.expect(&format!("@@end{n}@@rc="), timeout)?;
        let rc_text = self.expect("@@", Duration::from_secs(10))?;
        let rc = rc_text.trim_end_matches("@@").trim().parse().unwrap_or(-1);
        let body = out.trim_end_matches(&format!("@@end{n}@@rc=")).to_string();
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

    /// The failed units of the guest with, for each, its status and the
    /// last lines of its journal: what a failing boot test must show to be
    /// diagnosed from its log alone. Empty when no unit failed.
    pub fn failed_units(&mut self, timeout: Duration) -> Result<String> {
        let names = self.check(
            "systemctl --failed --no-legend --plain | cut -d' ' -f1",
            timeout,
        )?;
        let mut report = String::new();
        for unit in names.split_whitespace() {
            let detail = self
                .run(
                    &format!(
                        "systemctl status --no-pager --full --lines=0 {unit}; journalctl -b --no-pager -o short-monotonic -n 40 -u {unit}"
                    ),
                    timeout,
                )?
                .1;
            report.push_str(&format!("--- {unit}\n{detail}\n"));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_sequences_wait_for_the_next_read() {
        let (t, c) = complete_prefix(b"abc\x1b[?20");
        assert_eq!((t.as_str(), c.as_slice()), ("abc", &b"\x1b[?20"[..]));
        let (t, c) = complete_prefix(b"x\xc3");
        assert_eq!((t.as_str(), c.as_slice()), ("x", &b"\xc3"[..]));
        let (t, c) = complete_prefix(b"ok\x1b[0m");
        assert_eq!((t.as_str(), c.len()), ("ok\x1b[0m", 0));
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            strip_escapes("\u{1b}[?2004hroot@hvnode:~# \r\n"),
            "root@hvnode:~# \n"
        );
        assert_eq!(strip_escapes("a\u{1b}[0;32mgreen\u{1b}[0m"), "agreen");
    }
}
