//! The trimmed interactive installer: asks only what the kickstart leaves
//! open (the disk, a root password when there is no account), then shows
//! the plan and asks for confirmation. Plain lines on the console, so it
//! works the same on a serial console and on tty1.

use std::io::{BufRead, Write};
use std::process::Command;

use anyhow::{Context, Result, bail};
use kickstart::node::{Layout, NodePlan};

use crate::disks::{self, Device};
use crate::storage::StoragePlan;

/// What the administrator answered.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub disk: Option<String>,
    pub root_password: Option<String>,
}

fn read_line(prompt: &str) -> Result<String> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut s = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut s)
        .context("reading the console")?;
    if n == 0 {
        bail!(
            "the console closed (no one to answer the installer's questions); use an unattended kickstart"
        );
    }
    Ok(s.trim().to_string())
}

fn echo(on: bool) {
    let _ = Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .status();
}

/// Waits for Enter.
pub fn pause(msg: &str) -> Result<()> {
    read_line(&format!("{msg} "))?;
    Ok(())
}

/// Chooses from a numbered list of candidate disks.
pub fn choose_disk(all: &[Device], medium: Option<&str>) -> Result<String> {
    let free: Vec<&Device> = disks::candidates(all)
        .into_iter()
        .filter(|d| disks::busy_reason(d, medium).is_none())
        .collect();
    if free.is_empty() {
        bail!("there is no disk this machine could install on");
    }
    println!("\nDisks:");
    for (i, d) in free.iter().enumerate() {
        println!("  {}) {}", i + 1, d.describe());
    }
    loop {
        let a = read_line(&format!("Install on which disk [1-{}]? ", free.len()))?;
        if let Ok(n) = a.parse::<usize>()
            && (1..=free.len()).contains(&n)
        {
            return Ok(free[n - 1].name.clone());
        }
        println!("Type a number from the list.");
    }
}

/// Asks what the kickstart left open.
pub fn ask(plan: &NodePlan, all: &[Device], medium: Option<&str>) -> Result<Answers> {
    println!("hvnode installer: the kickstart leaves some choices to you.");
    let mut a = Answers::default();
    let has_disk = !plan.disks.only_use.is_empty() || !plan.disks.clear_drives.is_empty();
    if matches!(plan.layout, Layout::Interactive) || !has_disk {
        a.disk = Some(choose_disk(all, medium)?);
    }
    let has_account = plan.root_password || plan.root_ssh_keys > 0 || !plan.users.is_empty();
    if !has_account {
        loop {
            echo(false);
            let p1 = read_line("Root password: ");
            println!();
            let p2 = read_line("Again: ");
            println!();
            echo(true);
            let (p1, p2) = (p1?, p2?);
            if p1.len() < 8 {
                println!("Use at least 8 characters.");
            } else if p1 != p2 {
                println!("The two do not match.");
            } else {
                a.root_password = Some(p1);
                break;
            }
        }
    }
    Ok(a)
}

/// Shows the plan and asks for `yes`.
pub fn confirm(plan: &StoragePlan) -> Result<bool> {
    let a = read_line(&format!(
        "\nEverything on {} will be lost. Type yes to install: ",
        plan.disk.describe()
    ))?;
    Ok(a == "yes")
}
