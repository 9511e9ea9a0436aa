//! The trimmed interactive installer, shaped like Anaconda's text mode: a
//! hub of numbered spokes (destination, network and host name, time zone,
//! root password, user) that asks only what the kickstart leaves open, then
//! the plan and a typed `yes`. Plain lines and no cursor movement, so it
//! works the same on a serial console and on tty1.
//!
//! Everything talks through a [`Console`] (any `BufRead`, any `Write`, and
//! an [`Env`] for the machine's disks, interfaces and zones), so the tests
//! drive whole dialogues with scripted input. The [`Answers`] become
//! kickstart commands ([`Answers::apply`]): the install then follows the
//! same path as an unattended kickstart.

mod answers;
pub mod hub;
pub mod spokes;
pub mod validate;

#[cfg(test)]
mod tests;

use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use hostinfo::BlockDevice;

pub use answers::{ANSWERS_SOURCE, AdminUser, Answers, LayoutChoice, NetChoice, saved_kickstart};
pub use hub::Given;

use crate::storage::StoragePlan;

/// What the dialogue needs to know about the machine, and the one thing it
/// changes on it (echo, for passwords).
pub trait Env {
    /// Every block device (`lsblk`).
    fn disks(&self) -> &[BlockDevice];
    /// The label of the medium the installer booted from.
    fn boot_medium(&self) -> Option<&str>;
    /// Network interfaces, without `lo`.
    fn interfaces(&self) -> Vec<String>;
    /// Every time zone name, sorted.
    fn zones(&self) -> Vec<String>;
    /// Whether `name` (already checked by [`validate::zone_name`]) is a zone.
    fn zone_exists(&self, name: &str) -> bool;
    /// Whether a user or group of that name is already in the image.
    fn account_exists(&self, name: &str) -> bool;
    /// Turns the terminal's echo on or off.
    fn echo(&mut self, on: bool);
}

/// The live system the installer runs in.
#[derive(Debug)]
pub struct System {
    pub disks: Vec<BlockDevice>,
    pub boot_medium: Option<String>,
    pub zoneinfo: PathBuf,
    pub sys_class_net: PathBuf,
    pub etc: PathBuf,
}

impl System {
    pub fn new(disks: Vec<BlockDevice>, boot_medium: Option<String>) -> System {
        System {
            disks,
            boot_medium,
            zoneinfo: "/usr/share/zoneinfo".into(),
            sys_class_net: "/sys/class/net".into(),
            etc: "/etc".into(),
        }
    }
}

/// A zone file starts with the TZif magic.
fn is_zone_file(p: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"TZif"
}

fn walk_zones(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Proper zone names start with a capital; posix/ and right/ repeat
        // the database, posixrules and the tables are not zones.
        if !name.starts_with(|c: char| c.is_ascii_uppercase()) || name.contains('.') {
            continue;
        }
        let full = format!("{prefix}{name}");
        let path = e.path();
        if path.is_dir() {
            walk_zones(&path, &format!("{full}/"), out);
        } else if is_zone_file(&path) {
            out.push(full);
        }
    }
}

impl Env for System {
    fn disks(&self) -> &[BlockDevice] {
        &self.disks
    }

    fn boot_medium(&self) -> Option<&str> {
        self.boot_medium.as_deref()
    }

    fn interfaces(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.sys_class_net)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "lo")
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn zones(&self) -> Vec<String> {
        let mut v = Vec::new();
        walk_zones(&self.zoneinfo, "", &mut v);
        v.sort();
        v
    }

    fn zone_exists(&self, name: &str) -> bool {
        validate::zone_name(name).is_ok() && is_zone_file(&self.zoneinfo.join(name))
    }

    fn account_exists(&self, name: &str) -> bool {
        ["passwd", "group"].iter().any(|f| {
            fs::read_to_string(self.etc.join(f))
                .is_ok_and(|t| t.lines().any(|l| l.split(':').next() == Some(name)))
        })
    }

    fn echo(&mut self, on: bool) {
        // stty acts on its standard input, the console; off a terminal it
        // fails, and there is no echo to turn off.
        let _ = Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .status();
    }
}

/// The administrator's console: lines in, text out.
pub struct Console<'a> {
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
    pub env: &'a mut dyn Env,
}

impl std::fmt::Debug for Console<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Console")
    }
}

impl<'a> Console<'a> {
    pub fn new(
        input: &'a mut dyn BufRead,
        out: &'a mut dyn Write,
        env: &'a mut dyn Env,
    ) -> Console<'a> {
        Console { input, out, env }
    }

    /// Prints a line.
    pub fn say(&mut self, s: &str) -> Result<()> {
        writeln!(self.out, "{s}").context("writing to the console")
    }

    /// Prints `prompt` and reads one line (trimmed). The console closing
    /// is an error: nobody is there to answer.
    pub fn ask(&mut self, prompt: &str) -> Result<String> {
        write!(self.out, "{prompt}").context("writing to the console")?;
        self.out.flush().context("writing to the console")?;
        let mut s = String::new();
        let n = self
            .input
            .read_line(&mut s)
            .context("reading the console")?;
        if n == 0 {
            bail!(
                "the console closed (no one to answer the installer's questions); use an unattended kickstart (a disk, a layout and an account) to install without questions"
            );
        }
        Ok(s.trim().to_string())
    }

    /// Like [`Console::ask`], with echo off (passwords); the typed line is
    /// not trimmed but for its line end.
    pub fn ask_secret(&mut self, prompt: &str) -> Result<String> {
        // Echo off before the prompt shows: what is typed as soon as it
        // appears must not be echoed either.
        self.env.echo(false);
        write!(self.out, "{prompt}").context("writing to the console")?;
        self.out.flush().context("writing to the console")?;
        let mut s = String::new();
        let read = self.input.read_line(&mut s);
        self.env.echo(true);
        // The Enter the administrator typed was not echoed either.
        writeln!(self.out).context("writing to the console")?;
        let n = read.context("reading the console")?;
        if n == 0 {
            bail!(
                "the console closed (no one to answer the installer's questions); use an unattended kickstart to install without questions"
            );
        }
        Ok(s.trim_end_matches(['\n', '\r']).to_string())
    }
}

/// Runs the hub on the process's console until the administrator begins
/// the install (or quits: an error). `previous` are the answers of an
/// earlier round, kept when the plan sent the administrator back.
pub fn ask(
    given: &Given,
    all: &[BlockDevice],
    medium: Option<&str>,
    previous: Answers,
) -> Result<Answers> {
    let mut env = System::new(all.to_vec(), medium.map(String::from));
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    let mut con = Console::new(&mut input, &mut out, &mut env);
    hub::run(&mut con, given, previous)
}

/// Waits for Enter.
pub fn pause(msg: &str) -> Result<()> {
    let mut env = System::new(Vec::new(), None);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    Console::new(&mut input, &mut out, &mut env).ask(&format!("{msg} "))?;
    Ok(())
}

/// Shows what will be lost and asks for `yes`.
pub fn confirm(plan: &StoragePlan) -> Result<bool> {
    let mut env = System::new(Vec::new(), None);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    confirm_on(&mut Console::new(&mut input, &mut out, &mut env), plan)
}

/// [`confirm`] on any console.
pub fn confirm_on(con: &mut Console<'_>, plan: &StoragePlan) -> Result<bool> {
    let a = con.ask(&format!(
        "\nEverything on {} will be lost. Type yes to install: ",
        plan.disk.describe()
    ))?;
    Ok(a == "yes")
}
