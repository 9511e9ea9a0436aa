//! The report's archive: a gzip'd tar written as it is made, one member at a
//! time, each read from its source as it is written (a file, a program's
//! output) and at most the cap long. What could not be read, and what was
//! shortened, is noted for the report's README.
//!
//! A tar member's header carries its size before its data, and a program's
//! output has no size until it ends. Output that fits in [`SMALL`] is held and
//! written; longer output is read twice: once to count it, once to write it
//! (its last `cap` bytes, from a line's start), so that nothing long is held in
//! memory and nothing is written to the node's disk.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use command::{CommandError, CommandExt};
use flate2::Compression;
use flate2::write::GzEncoder;
use hostinfo::units::human_bytes;

/// Program output up to this long is held in memory and written in one read.
pub const SMALL: u64 = 8 << 20;

/// The longest line start looked for when a shortened member is cut.
const MAX_LINE: u64 = 64 << 10;

/// How much of a failing program's error output is kept for the README.
const STDERR_KEPT: usize = 16 << 10;

/// One member of the report, for the README's contents.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub what: String,
    pub size: u64,
}

/// The report being written.
pub struct Archive<W: Write> {
    tar: tar::Builder<GzEncoder<W>>,
    top: String,
    mtime: u64,
    /// The most bytes a member holds.
    pub cap: u64,
    /// What logs may add up to; a log past it is left out.
    logs_left: u64,
    pub members: Vec<Member>,
    /// What could not be read, and why.
    pub missing: Vec<(String, String)>,
    /// What is there but not whole or not as read, and why.
    pub notes: Vec<(String, String)>,
}

impl<W: Write> std::fmt::Debug for Archive<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("top", &self.top)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl<W: Write> Archive<W> {
    /// Starts the archive on `out` with its top folder `top`.
    pub fn new(out: W, top: &str, mtime: u64, cap: u64, logs_budget: u64) -> io::Result<Self> {
        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
        let mut header = header(mtime, 0);
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o700);
        tar.append_data(&mut header, format!("{top}/"), io::empty())?;
        Ok(Self {
            tar,
            top: top.to_string(),
            mtime,
            cap,
            logs_left: logs_budget,
            members: Vec::new(),
            missing: Vec::new(),
            notes: Vec::new(),
        })
    }

    pub fn missing(&mut self, name: &str, why: impl Into<String>) {
        self.missing.push((name.to_string(), why.into()));
    }

    pub fn note(&mut self, name: &str, why: impl Into<String>) {
        self.notes.push((name.to_string(), why.into()));
    }

    /// Writes a member of `size` bytes read from `data` (which gives exactly
    /// that many). An error is the output's: the report cannot go on.
    fn append(&mut self, name: &str, what: &str, size: u64, data: impl Read) -> io::Result<()> {
        let mut header = header(self.mtime, size);
        self.tar
            .append_data(&mut header, format!("{}/{name}", self.top), data)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("writing {name} into the report: {e}"))
            })?;
        self.members.push(Member {
            name: name.to_string(),
            what: what.to_string(),
            size,
        });
        Ok(())
    }

    /// Adds `bytes` as member `name`: its end when it is longer than the cap.
    pub fn add_bytes(&mut self, name: &str, what: &str, bytes: &[u8]) -> io::Result<()> {
        let kept = self.tail(name, bytes);
        self.append(name, what, kept.len() as u64, kept)
    }

    /// The last `cap` bytes of `bytes` from a line's start, noting the cut.
    fn tail<'a>(&mut self, name: &str, bytes: &'a [u8]) -> &'a [u8] {
        let len = bytes.len() as u64;
        if len <= self.cap {
            return bytes;
        }
        let from = (len - self.cap) as usize;
        let rest = &bytes[from..];
        let line = rest
            .iter()
            .take(MAX_LINE as usize)
            .position(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let kept = &rest[line..];
        self.note(name, shortened(len, kept.len() as u64));
        kept
    }

    /// Adds the file at `path` as member `name`, as long as it was when opened
    /// (a log written meanwhile keeps its later lines out); its end when it is
    /// longer than the cap. With `log`, it counts towards the logs' budget.
    pub fn add_file(&mut self, name: &str, what: &str, path: &Path, log: bool) -> io::Result<()> {
        let (file, len) = match File::open(path).and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((len, f)) => (f, len),
            Err(e) => {
                self.missing(name, format!("reading {}: {e}", path.display()));
                return Ok(());
            }
        };
        let kept_max = len.min(self.cap);
        if log && kept_max > self.logs_left {
            self.missing(
                name,
                format!(
                    "{} ({}) left out: the report's logs reached their total",
                    path.display(),
                    human_bytes(len as f64)
                ),
            );
            return Ok(());
        }
        let mut reader = BufReader::new(file);
        let mut size = len;
        if len > self.cap {
            let cut = match reader.seek(SeekFrom::Start(len - self.cap)) {
                Ok(_) => skip_to_line(&mut reader),
                Err(e) => {
                    self.missing(name, format!("reading {}: {e}", path.display()));
                    return Ok(());
                }
            };
            size = self.cap - cut;
            self.note(name, shortened(len, size));
        }
        if log {
            self.logs_left -= size;
        }
        let mut exact = Exact::new(reader, size);
        self.append(name, what, size, &mut exact)?;
        exact.report(self, name, &format!("{}", path.display()));
        Ok(())
    }

    /// Adds the standard output of the program `make` makes as member `name`,
    /// stopped after `timeout` per run: its end when longer than the cap. A
    /// program that cannot be run, or fails without output, is noted missing.
    pub fn add_command(
        &mut self,
        name: &str,
        what: &str,
        make: impl Fn() -> Command,
        timeout: Duration,
    ) -> io::Result<()> {
        let mut run = match Running::start(make(), timeout) {
            Ok(r) => r,
            Err(e) if e.not_found => {
                self.missing(name, format!("not installed on this node: {e}"));
                return Ok(());
            }
            Err(e) => {
                self.missing(name, e.to_string());
                return Ok(());
            }
        };
        let mut held = Vec::new();
        let read = run
            .stdout()
            .take(SMALL.min(self.cap) + 1)
            .read_to_end(&mut held);
        if let Err(e) = read {
            self.note(name, format!("reading `{}`'s output: {e}", run.line));
        }
        if held.len() as u64 <= SMALL.min(self.cap) {
            return match run.finish(false) {
                Err(e) if held.is_empty() => {
                    self.missing(name, e.to_string());
                    Ok(())
                }
                done => {
                    if let Err(e) = done {
                        self.note(name, e.to_string());
                    }
                    self.add_bytes(name, what, &held)
                }
            };
        }
        // Too long to hold: count it, then read it again for its end.
        let counted = io::copy(run.stdout(), &mut io::sink());
        let total = held.len() as u64 + counted.as_ref().map_or(0, |n| *n);
        drop(held);
        if let Err(e) = counted {
            self.note(name, format!("reading `{}`'s output: {e}", run.line));
        }
        if let Err(e) = run.finish(false) {
            self.note(name, e.to_string());
        }
        let mut run = match Running::start(make(), timeout) {
            Ok(r) => r,
            Err(e) => {
                self.missing(name, e.to_string());
                return Ok(());
            }
        };
        let keep = total.min(self.cap);
        let mut reader = BufReader::new(run.stdout.take().ok_or_else(|| {
            io::Error::other(format!("`{}` started without its output", run.line))
        })?);
        let mut size = keep;
        if total > keep {
            let skipped = io::copy(&mut (&mut reader).take(total - keep), &mut io::sink())
                .unwrap_or_else(|e| {
                    self.note(name, format!("reading `{}`'s output again: {e}", run.line));
                    0
                });
            let cut = if skipped == total - keep {
                skip_to_line(&mut reader)
            } else {
                0
            };
            size = keep - cut;
            self.note(name, shortened(total, size));
        }
        let mut exact = Exact::new(reader, size);
        self.append(name, what, size, &mut exact)?;
        let line = run.line.clone();
        exact.report(self, name, &format!("`{line}`'s second run"));
        if let Err(e) = run.finish(true) {
            self.note(name, e.to_string());
        }
        Ok(())
    }

    /// Sends what is compressed so far on (a reader of a stream sees the report
    /// begin).
    pub fn flush(&mut self) -> io::Result<()> {
        self.tar.get_mut().flush()
    }

    /// Adds the README last and ends the archive: the output, flushed.
    pub fn finish(mut self, readme: &str) -> io::Result<W> {
        self.append(
            "README.txt",
            "this file",
            readme.len() as u64,
            readme.as_bytes(),
        )?;
        let mut gz = self.tar.into_inner()?;
        gz.flush()?;
        let mut out = gz.finish()?;
        out.flush()?;
        Ok(out)
    }
}

/// A member's tar header: root's, readable by its owner only, as the node's
/// logs are.
fn header(mtime: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    h
}

fn shortened(total: u64, kept: u64) -> String {
    format!(
        "{} in all: only its last {} are here (the newest lines), as the report's cap \
         allows",
        human_bytes(total as f64),
        human_bytes(kept as f64)
    )
}

/// Reads past the rest of the line `reader` is in (at most [`MAX_LINE`]
/// bytes): how many bytes that was.
fn skip_to_line(reader: &mut impl BufRead) -> u64 {
    let mut partial = Vec::new();
    match reader.take(MAX_LINE).read_until(b'\n', &mut partial) {
        Ok(n) if partial.ends_with(b"\n") => n as u64,
        Ok(n) => n as u64,
        Err(_) => 0,
    }
}

/// Exactly `size` bytes of `inner`: cut there, and filled with empty lines
/// when `inner` ends (or fails) sooner, so that the tar member is as long as
/// its header says whatever the source did meanwhile.
struct Exact<R> {
    inner: R,
    left: u64,
    padded: u64,
    error: Option<io::Error>,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Self {
            inner,
            left: size,
            padded: 0,
            error: None,
        }
    }

    /// Notes in `archive` what happened to member `name` read from `source`.
    fn report<W: Write>(self, archive: &mut Archive<W>, name: &str, source: &str) {
        if let Some(e) = self.error {
            archive.note(name, format!("reading {source} failed part way: {e}"));
        }
        if self.padded > 0 {
            archive.note(
                name,
                format!(
                    "{source} ended {} sooner than expected (rotated or truncated \
                     meanwhile?): the rest is empty lines",
                    human_bytes(self.padded as f64)
                ),
            );
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.left) as usize;
        let mut n = 0;
        if self.padded == 0 && self.error.is_none() {
            n = loop {
                match self.inner.read(&mut buf[..want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.error = Some(e);
                        break 0;
                    }
                }
            };
        }
        if n == 0 {
            buf[..want].fill(b'\n');
            self.padded += want as u64;
            n = want;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A program running with its standard output piped to the report, its error
/// output kept for the README, stopped when it runs past its time.
struct Running {
    stdout: Option<ChildStdout>,
    /// What [`Running::stdout`] reads once the output is taken.
    empty: io::Empty,
    waiter: JoinHandle<io::Result<(ExitStatus, bool)>>,
    stderr: JoinHandle<Vec<u8>>,
    line: String,
    timeout: Duration,
}

impl Running {
    fn start(mut cmd: Command, timeout: Duration) -> Result<Self, CommandError> {
        cmd.stdin_closed()
            .c_locale()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let line = command::command_line(&cmd);
        let mut child = cmd.spawn().map_err(|e| CommandError {
            command_line: line.clone(),
            what: format!("could not be started: {e}"),
            stderr: String::new(),
            not_found: e.kind() == io::ErrorKind::NotFound,
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let thread = |name: &str| std::thread::Builder::new().name(name.into());
        let stderr = thread("diagnostics-stderr")
            .spawn(move || keep_tail(stderr))
            .map_err(|e| CommandError::new(&cmd, format!("no thread to read its errors: {e}")))?;
        let waiter = thread("diagnostics-wait")
            .spawn(move || wait_for(child, Instant::now() + timeout))
            .map_err(|e| CommandError::new(&cmd, format!("no thread to wait for it: {e}")))?;
        Ok(Self {
            stdout,
            empty: io::empty(),
            waiter,
            stderr,
            line,
            timeout,
        })
    }

    /// Its standard output (empty once taken).
    fn stdout(&mut self) -> &mut dyn Read {
        match &mut self.stdout {
            Some(s) => s,
            None => &mut self.empty,
        }
    }

    /// Waits for the end: an error when it ran past its time or, unless the
    /// report `stopped` reading it early, when it failed.
    fn finish(mut self, stopped: bool) -> Result<(), CommandError> {
        // Closed, the pipe ends a program still writing (SIGPIPE).
        drop(self.stdout.take());
        let stderr = self.stderr.join().unwrap_or_default();
        let error = |what: String| CommandError {
            command_line: self.line.clone(),
            what,
            stderr: command::tail(&stderr),
            not_found: false,
        };
        match self.waiter.join() {
            Ok(Ok((_, true))) => Err(error(format!(
                "did not finish within {} s and was stopped",
                self.timeout.as_secs()
            ))),
            Ok(Ok((status, false))) if !status.success() && !stopped => {
                Err(error(format!("failed ({status})")))
            }
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(error(format!("waiting for it: {e}"))),
            Err(_) => Err(error("the thread waiting for it panicked".into())),
        }
    }
}

/// Reads `stderr` to its end, keeping its last [`STDERR_KEPT`] bytes.
fn keep_tail(stderr: Option<std::process::ChildStderr>) -> Vec<u8> {
    let Some(mut stderr) = stderr else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stderr.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * STDERR_KEPT {
            kept.drain(..kept.len() - STDERR_KEPT);
        }
    }
    kept
}

/// Waits for `child`, killing it at `deadline`: its status, and whether it was
/// killed for time.
fn wait_for(mut child: Child, deadline: Instant) -> io::Result<(ExitStatus, bool)> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Ok((child.wait()?, true));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(gz: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        tar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, data)
            })
            .collect()
    }

    fn sh(script: &str) -> impl Fn() -> Command {
        let script = script.to_string();
        move || {
            let mut c = Command::new("sh");
            c.args(["-c", &script]);
            c
        }
    }

    #[test]
    fn long_output_is_read_twice_and_keeps_its_last_lines() {
        let mut a = Archive::new(Vec::new(), "top", 0, 100, 1 << 20).unwrap();
        // 9 MiB: past what is held, so it is counted, then read again.
        let script = "i=0; while [ $i -lt 9 ]; do head -c 1048576 /dev/zero | tr '\\0' x; \
                      i=$((i+1)); done; printf '\\nlast line one\\nlast line two\\n'";
        a.add_command("long.txt", "long", sh(script), Duration::from_secs(60))
            .unwrap();
        a.add_command(
            "short.txt",
            "short",
            sh("echo hi; echo oops >&2; exit 3"),
            Duration::from_secs(60),
        )
        .unwrap();
        a.add_command(
            "none.txt",
            "nothing",
            sh("echo broken >&2; exit 1"),
            Duration::from_secs(60),
        )
        .unwrap();
        a.add_command(
            "slow.txt",
            "slow",
            sh("echo started; exec sleep 30"),
            Duration::from_millis(300),
        )
        .unwrap();
        let missing = a.missing.clone();
        let notes = a.notes.clone();
        let out = a.finish("readme").unwrap();
        let m = members(&out);
        let get = |n: &str| m.iter().find(|(name, _)| name == n).map(|(_, d)| d.clone());
        assert_eq!(
            get("top/long.txt").unwrap(),
            b"last line one\nlast line two\n"
        );
        assert_eq!(get("top/short.txt").unwrap(), b"hi\n");
        assert_eq!(get("top/slow.txt").unwrap(), b"started\n");
        assert!(get("top/none.txt").is_none());
        assert_eq!(get("top/README.txt").unwrap(), b"readme");
        assert!(
            notes
                .iter()
                .any(|(n, w)| n == "long.txt" && w.contains("9.0 MiB in all")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|(n, w)| n == "short.txt" && w.contains("oops")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|(n, w)| n == "slow.txt" && w.contains("did not finish")),
            "{notes:?}"
        );
        assert!(
            missing
                .iter()
                .any(|(n, w)| n == "none.txt" && w.contains("broken")),
            "{missing:?}"
        );
    }

    #[test]
    fn files_past_the_cap_keep_their_end_and_logs_stop_at_their_budget() {
        let d = tempfile::tempdir().unwrap();
        let long = d.path().join("long.log");
        std::fs::write(&long, "first line that goes\nsecond\nthird\n").unwrap();
        let mut a = Archive::new(Vec::new(), "top", 0, 16, 20).unwrap();
        a.add_file("long.log", "a log", &long, true).unwrap();
        a.add_file("again.log", "the same", &long, true).unwrap();
        a.add_file("gone.log", "none", &d.path().join("gone.log"), true)
            .unwrap();
        let (missing, notes) = (a.missing.clone(), a.notes.clone());
        let m = members(&a.finish("").unwrap());
        assert_eq!(
            m[1],
            ("top/long.log".to_string(), b"second\nthird\n".to_vec())
        );
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(missing[0].1.contains("reached their total"), "{missing:?}");
        assert!(missing[1].1.contains("gone.log"), "{missing:?}");
    }

    #[test]
    fn a_source_that_ends_sooner_is_padded_to_its_header() {
        let mut e = Exact::new(&b"abc"[..], 5);
        let mut out = Vec::new();
        e.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\n\n");
        assert_eq!(e.padded, 2);
        let mut e = Exact::new(&b"abcdef"[..], 4);
        out.clear();
        e.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
    }
}
