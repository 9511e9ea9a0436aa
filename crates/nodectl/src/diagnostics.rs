//! `nodectl diagnostics`: one `.tar.gz` of what support asks for about a node,
//! written as it is gathered, to a file or to standard output (what the web
//! console's "Download diagnostic report" streams; the privileged helper runs
//! `nodectl diagnostics -o -` as root).
//!
//! In its folder `hvnode-diagnostics-HOST-YYYYmmddTHHMMSSZ/`:
//! `nodectl-info.json` and `nodectl-check.json` (what `nodectl info --json`
//! and `check --json` print), `lvs.json`, `journal-since-boot.txt`,
//! `dmesg.txt`, `uname.txt`, `os-release`, `mounts.txt`, libvirt's logs
//! (`var/log/libvirt/**/*.log`), the installer's (`var/log/hvnode/**/*.log`),
//! hvnode's settings (`etc/hvnode/**/*.toml`, `*.conf`) with their secrets
//! removed ([`redact`]) and the names of every file under `/etc/hvnode`, and a
//! `README.txt` listing what is there, what could not be read and why. A member
//! is at most [`CAP`] long (the end of a longer one is kept); nothing is
//! written to the node's disk but the report itself, and nothing to it with
//! `-o -`.

mod archive;
pub mod redact;

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hostinfo::units::{UtcTime, human_bytes, now_unix};
use layers::status;

use crate::output::to_json;
use archive::Archive;

/// The most bytes one member of the report holds.
pub const CAP: u64 = 64 << 20;

/// What the logs of a report add up to at most.
pub const LOGS_BUDGET: u64 = 1 << 30;

/// How long one run of a program may take before it is stopped.
const PROGRAM_TIME: Duration = Duration::from_secs(300);

/// `nodectl diagnostics`.
#[derive(Debug, clap::Args)]
pub struct DiagnosticsArgs {
    /// Where the report goes: a file, a folder (the report gets its own name
    /// there), or `-` for standard output. Default: hvnode-diagnostics-HOST-TIME.tar.gz
    /// in the current folder.
    #[arg(short = 'o', long = "output", value_name = "FILE|-")]
    pub output: Option<PathBuf>,
}

/// What a report is made from and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the node's files are read (`/etc/hvnode`, `/var/log/…`,
    /// `/etc/os-release`): `/` on a node, a scratch tree in tests. Programs
    /// (journalctl, dmesg, lvs, uname), `/proc` and the info and check reports
    /// are the running system's whatever it is.
    pub root: PathBuf,
    /// The most bytes one member holds.
    pub cap: u64,
    /// What the logs add up to at most.
    pub logs_budget: u64,
    /// The node's name, in the report's folder name.
    pub host: String,
    /// When the report is made (seconds since the epoch).
    pub now: u64,
    /// Print a line on standard error as each part is gathered.
    pub progress: bool,
}

impl Options {
    /// The running node's report.
    pub fn for_node() -> Self {
        Self {
            root: "/".into(),
            cap: CAP,
            logs_budget: LOGS_BUDGET,
            host: crate::layout::host_name(),
            now: now_unix(),
            progress: io::stderr().is_terminal(),
        }
    }

    /// The report's folder: `hvnode-diagnostics-HOST-YYYYmmddTHHMMSSZ`.
    pub fn folder(&self) -> String {
        let t = UtcTime::from_unix(self.now);
        let host: String = self
            .host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let host = if host.is_empty() { "node".into() } else { host };
        format!(
            "hvnode-diagnostics-{host}-{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }

    fn under_root(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The files in the report (the README among them).
    pub members: usize,
    /// What they hold together, uncompressed.
    pub bytes: u64,
    /// What could not be read (named in the README).
    pub missing: usize,
}

/// `nodectl diagnostics [-o FILE|-]`.
pub fn run(args: &DiagnosticsArgs) -> Result<ExitCode> {
    let options = Options::for_node();
    let started = Instant::now();
    let name = format!("{}.tar.gz", options.folder());
    let target = match &args.output {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) if p.is_dir() => Some(p.join(&name)),
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from(&name)),
    };
    let Some(path) = target else {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            bail!(
                "standard output is a terminal, and the report is a .tar.gz: redirect it \
                 (nodectl diagnostics -o - > {name}) or give a file (-o FILE)"
            );
        }
        let out = Counting::new(io::BufWriter::new(stdout.lock()));
        let (out, summary) =
            write(out, &options).context("writing the report to standard output")?;
        eprintln!("nodectl: {}", said(&summary, out.count, started));
        return Ok(ExitCode::SUCCESS);
    };
    let (written, summary) = write_file(&path, &options)?;
    println!(
        "wrote {} ({})",
        path.display(),
        said(&summary, written, started)
    );
    Ok(ExitCode::SUCCESS)
}

fn said(summary: &Summary, written: u64, started: Instant) -> String {
    let missing = match summary.missing {
        0 => String::new(),
        n => format!("; {n} could not be read, see README.txt"),
    };
    format!(
        "{} compressed from {} in {} files, in {:.1} s{missing}",
        human_bytes(written as f64),
        human_bytes(summary.bytes as f64),
        summary.members,
        started.elapsed().as_secs_f64()
    )
}

/// Writes the report to `path` through a temporary name beside it, renamed
/// once whole: what was written, compressed, and the summary.
pub fn write_file(path: &Path, options: &Options) -> Result<(u64, Summary)> {
    let file_name = path
        .file_name()
        .with_context(|| format!("{} names no file for the report", path.display()))?;
    let partial = path.with_file_name(format!(".{}.partial", file_name.to_string_lossy()));
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
    };
    let file = match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A report that failed part way left it.
            fs::remove_file(&partial).and_then(|()| create())
        }
        other => other,
    }
    .with_context(|| {
        format!(
            "creating {}: give a folder the report may be written to (-o FILE)",
            partial.display()
        )
    })?;
    let written = (|| -> Result<(u64, Summary)> {
        let out = Counting::new(io::BufWriter::new(file));
        let (out, summary) = write(out, options)?;
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((out.count, summary))
    })()
    .with_context(|| format!("writing the report to {}", partial.display()));
    let renamed = written.and_then(|w| {
        fs::rename(&partial, path)
            .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(w)
    });
    if renamed.is_err() {
        let _ = fs::remove_file(&partial);
    }
    renamed
}

/// Writes the report, gzip'd, to `out`: `out` back, flushed, and the summary.
/// An error is `out`'s; whatever could not be read is in the README instead.
pub fn write<W: Write>(out: W, options: &Options) -> Result<(W, Summary)> {
    let mut a = Archive::new(
        out,
        &options.folder(),
        options.now,
        options.cap,
        options.logs_budget,
    )?;
    let progress = |what: &str| {
        if options.progress {
            eprintln!("nodectl: diagnostics: {what}…");
        }
    };
    progress("nodectl info and check");
    node_reports(&mut a)?;
    // The first bytes go out early: the console answers once it has them.
    a.flush()?;
    progress("logical volumes");
    a.add_command(
        "lvs.json",
        "logical volumes (lvs --reportformat json -a -o +lv_layout,pool_lv,origin,data_percent,metadata_percent)",
        || {
            let mut c = Command::new("lvs");
            c.args([
                "--reportformat",
                "json",
                "-a",
                "-o",
                "+lv_layout,pool_lv,origin,data_percent,metadata_percent",
            ]);
            c
        },
        PROGRAM_TIME,
    )?;
    progress("the journal since boot");
    a.add_command(
        "journal-since-boot.txt",
        "the journal since boot (journalctl -b -o short-iso-precise --no-pager)",
        || {
            let mut c = Command::new("journalctl");
            c.args(["-b", "-o", "short-iso-precise", "--no-pager"]);
            c
        },
        PROGRAM_TIME,
    )?;
    progress("the kernel's messages");
    a.add_command(
        "dmesg.txt",
        "the kernel's ring buffer (dmesg --time-format=iso)",
        || {
            let mut c = Command::new("dmesg");
            c.arg("--time-format=iso");
            c
        },
        PROGRAM_TIME,
    )?;
    a.add_command(
        "uname.txt",
        "the kernel (uname -a)",
        || {
            let mut c = Command::new("uname");
            c.arg("-a");
            c
        },
        PROGRAM_TIME,
    )?;
    let os_release = options.under_root("/etc/os-release");
    a.add_file(
        "os-release",
        "the system (/etc/os-release)",
        &os_release,
        false,
    )?;
    match fs::read("/proc/self/mounts") {
        Ok(m) => a.add_bytes("mounts.txt", "what is mounted (/proc/self/mounts)", &m)?,
        Err(e) => a.missing("mounts.txt", format!("reading /proc/self/mounts: {e}")),
    }
    progress("hvnode's settings");
    settings(&mut a, options)?;
    progress("libvirt's and the installer's logs");
    logs(&mut a, options, "/var/log/libvirt", |rel| {
        match rel.strip_prefix("qemu") {
            Ok(vm) => format!("qemu's log of VM {}", vm.with_extension("").display()),
            Err(_) => "libvirt's log".into(),
        }
    })?;
    logs(&mut a, options, "/var/log/hvnode", |_| {
        "the installer's log, kept on the installed node".into()
    })?;
    let missing = a.missing.len();
    let readme = readme(&a, options);
    let members = a.members.len() + 1;
    let bytes = a.members.iter().map(|m| m.size).sum::<u64>() + readme.len() as u64;
    let out = a.finish(&readme)?;
    Ok((
        out,
        Summary {
            members,
            bytes,
            missing,
        },
    ))
}

/// `nodectl info --json` and `check --json`, as those print them.
fn node_reports<W: Write>(a: &mut Archive<W>) -> io::Result<()> {
    let facts = match status::gather(&status::boot_dir()) {
        Ok(f) => f,
        Err(e) => {
            let why = format!("reading the node's layers and boot entries: {e:#}");
            a.missing("nodectl-info.json", why.clone());
            a.missing("nodectl-check.json", why);
            return Ok(());
        }
    };
    let info = crate::layout::node_info(&facts);
    let check = crate::layout::node_health(&facts);
    for (name, what, json) in [
        (
            "nodectl-info.json",
            "nodectl info --json",
            to_json("NodeInfo", &info),
        ),
        (
            "nodectl-check.json",
            "nodectl check --json",
            to_json("NodeCheck", &check),
        ),
    ] {
        match json {
            Ok(text) => a.add_bytes(name, what, format!("{text}\n").as_bytes())?,
            Err(e) => a.missing(name, format!("{what}: {e:#}")),
        }
    }
    Ok(())
}

/// hvnode's settings with their secrets removed, and the names of every file
/// under `/etc/hvnode` (certificates and keys are never read).
fn settings<W: Write>(a: &mut Archive<W>, options: &Options) -> io::Result<()> {
    let etc = options.under_root("/etc/hvnode");
    let files = match walk(&etc) {
        Ok(f) => f,
        Err(e) => {
            a.missing("etc/hvnode/", format!("listing {}: {e}", etc.display()));
            return Ok(());
        }
    };
    let mut listing = String::new();
    for (rel, meta) in &files {
        let shown = format!("/etc/hvnode/{}", rel.display());
        let kind = if meta.is_symlink() {
            let target = fs::read_link(etc.join(rel)).unwrap_or_default();
            format!(" -> {}", target.display())
        } else {
            String::new()
        };
        listing.push_str(&format!(
            "{:o} {:>10} {shown}{kind}\n",
            meta.mode() & 0o7777,
            meta.len()
        ));
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_toml = name.ends_with(".toml");
        if !meta.is_file() || redact::is_key_file(&name) || !(is_toml || name.ends_with(".conf")) {
            continue;
        }
        let member = format!("etc/hvnode/{}", rel.display());
        let text = match fs::read(etc.join(rel)) {
            Ok(b) if b.len() as u64 > options.cap => {
                a.missing(&member, format!("{shown} is longer than the report's cap"));
                continue;
            }
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                a.missing(&member, format!("reading {shown}: {e}"));
                continue;
            }
        };
        if redact::holds_private_key(&text) {
            a.missing(
                &member,
                format!("{shown} holds a private key: never included"),
            );
            continue;
        }
        let r = if is_toml {
            redact::redact_toml(&text)
        } else {
            redact::redact_lines(&text)
        };
        let what = format!("{shown}, {} secret-looking values removed", r.removed);
        a.add_bytes(&member, &what, r.text.as_bytes())?;
    }
    a.add_bytes(
        "etc-hvnode-files.txt",
        "every file under /etc/hvnode: mode, size, name (only the settings' contents are in the report)",
        listing.as_bytes(),
    )
}

/// The `*.log` files under `dir`, as they are, each under its own path.
fn logs<W: Write>(
    a: &mut Archive<W>,
    options: &Options,
    dir: &str,
    what: impl Fn(&Path) -> String,
) -> io::Result<()> {
    let base = options.under_root(dir);
    let member_dir = dir.trim_start_matches('/');
    let files = match walk(&base) {
        Ok(f) => f,
        Err(e) => {
            a.missing(&format!("{member_dir}/"), format!("listing {dir}: {e}"));
            return Ok(());
        }
    };
    for (rel, meta) in files {
        let is_log = rel.extension().is_some_and(|e| e == "log");
        if meta.is_file() && is_log {
            let member = format!("{member_dir}/{}", rel.display());
            a.add_file(&member, &what(&rel), &base.join(&rel), true)?;
        }
    }
    Ok(())
}

/// Every entry under `dir`, by path relative to it, sorted; symbolic links
/// are listed, not followed.
fn walk(dir: &Path) -> io::Result<Vec<(PathBuf, fs::Metadata)>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    // The folder itself must be there; what is under it is read as it can be.
    fs::read_dir(dir)?;
    while let Some(rel) = pending.pop() {
        let Ok(entries) = fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let path = rel.join(entry.file_name());
            if meta.is_dir() {
                pending.push(path);
            } else {
                found.push((path, meta));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// The README: what the report is, what is in it, what is not and why.
fn readme<W: Write>(a: &Archive<W>, options: &Options) -> String {
    let mut r = String::new();
    let t = UtcTime::from_unix(options.now);
    r.push_str(&format!(
        "hvnode diagnostic report of {}, made {t} UTC by nodectl diagnostics {}\n\
         image: {}\n\n",
        options.host,
        env!("CARGO_PKG_VERSION"),
        status::image_nvr().unwrap_or_else(|| "unknown".into())
    ));
    r.push_str(&format!(
        "Each file is at most {} long: of a longer one, its end is kept (the newest lines).\n\
         Secrets: in hvnode's settings, every value whose name looks secret (password, secret,\n\
         token, key, private, ...) reads \"{}\", as does the password of a URL; private keys and\n\
         certificates are never included (etc-hvnode-files.txt names them). The journal and\n\
         the logs are as the node wrote them.\n\n",
        human_bytes(options.cap as f64),
        redact::REMOVED
    ));
    r.push_str("Contents:\n");
    for m in &a.members {
        r.push_str(&format!(
            "  {:>10}  {}: {}\n",
            human_bytes(m.size as f64),
            m.name,
            m.what
        ));
    }
    r.push_str(&format!("  {:>10}  README.txt: this file\n", ""));
    if !a.notes.is_empty() {
        r.push_str("\nNot whole or not as read:\n");
        for (name, why) in &a.notes {
            r.push_str(&format!("  {name}: {}\n", why.replace('\n', "\n    ")));
        }
    }
    r.push_str("\nCould not be read:\n");
    if a.missing.is_empty() {
        r.push_str("  nothing: everything above was read\n");
    }
    for (name, why) in &a.missing {
        r.push_str(&format!("  {name}: {}\n", why.replace('\n', "\n    ")));
    }
    r
}

/// A writer that counts what goes through it.
#[derive(Debug)]
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W> Counting<W> {
    fn new(inner: W) -> Self {
        Self { inner, count: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_names_the_host_and_the_time_in_utc() {
        let mut o = Options::for_node();
        o.host = "node 1/a".into();
        o.now = 1_795_000_000;
        assert_eq!(o.folder(), "hvnode-diagnostics-node_1_a-20261118T110640Z");
    }
}
