//! `nodectl update SOURCE`: applies a signed update bundle (the library
//! is `hvnode-update`). The plan is shown first and confirmed (`--yes`
//! skips the question); progress goes to the terminal, or as JSON lines
//! with `--json`, the last line holding the result or the error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use update::{Failpoint, Human, JsonLines, Outcome, Plan, Progress, UpdateError};

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The update bundle: a path or an http(s) URL of NVR.update.tar.
    pub source: String,
    /// Do not ask before applying the plan.
    #[arg(long)]
    pub yes: bool,
    /// Progress as JSON lines; the last line is the result (or the error).
    /// Nothing is asked: without --yes the plan is shown and not applied.
    #[arg(long)]
    pub json: bool,
    /// The bundle's minisign signature, when not SOURCE.minisig (path or URL).
    #[arg(long, value_name = "FILE")]
    pub signature: Option<String>,
    /// Do NOT check the bundle's signature (only its manifest). Use only
    /// for a bundle whose origin you have checked yourself.
    #[arg(long)]
    pub no_verify: bool,
    /// Accept an image older than the running one.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// The folder of trusted minisign public keys.
    #[arg(long, value_name = "DIR", default_value = update::TRUSTED_KEYS_DIR)]
    pub trusted_keys: PathBuf,
}

pub fn run(args: &UpdateArgs) -> Result<ExitCode> {
    let (opts, live) = match start(args) {
        Ok(started) => started,
        Err(e) if args.json => {
            print_error(&format!("{e:#}"), true, false);
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e),
    };
    let stdout = std::io::stdout();
    let mut progress: Box<dyn Progress> = if args.json {
        Box::new(JsonLines(stdout.lock()))
    } else {
        Box::new(Human(stdout.lock()))
    };
    if args.no_verify {
        progress.note(
            None,
            "WARNING: --no-verify: the bundle's signature will NOT be checked",
        );
    }
    let (yes, json) = (args.yes, args.json);
    let mut confirm = |_: &Plan| yes || (!json && crate::output::ask("Apply this update?"));
    let result = update::update(&live.node, &opts, &mut confirm, progress.as_mut());
    drop(progress);
    drop(live);
    match result {
        Ok(outcome) => {
            if json {
                let line = serde_json::json!({ "result": outcome });
                println!("{line}");
            } else {
                summary(&outcome);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if json => {
            print_error(
                &format!("{e:#}"),
                e.node_unchanged(),
                matches!(e, UpdateError::Cancelled),
            );
            Ok(ExitCode::FAILURE)
        }
        Err(UpdateError::Cancelled) if !yes && !std::io::stdin().is_terminal() => {
            eprintln!(
                "nodectl: update not applied: no terminal to confirm the plan on; pass --yes \
                 to apply it"
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// The options, after the checks that need no node, and the node.
fn start(args: &UpdateArgs) -> Result<(update::Options, update::LiveNode)> {
    let failpoint = Failpoint::from_env()?;
    // /proc/self belongs to the process's effective user.
    let euid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if euid.is_ok_and(|uid| uid != 0) {
        anyhow::bail!(
            "nodectl update must run as root: it writes the layer store, /var and /boot \
             (try sudo nodectl update …)"
        );
    }
    let opts = update::Options {
        source: args.source.clone(),
        signature: args.signature.clone(),
        trusted_keys: args.trusted_keys.clone(),
        no_verify: args.no_verify,
        allow_downgrade: args.allow_downgrade,
        failpoint,
    };
    let live = update::detect(Path::new("/"), &layers::status::boot_dir())
        .context("finding the node's layer store")?;
    Ok((opts, live))
}

/// The last JSON line of a failed update.
fn print_error(error: &str, node_unchanged: bool, cancelled: bool) {
    let line = serde_json::json!({
        "error": error,
        "node_unchanged": node_unchanged,
        "cancelled": cancelled,
    });
    println!("{line}");
}

fn summary(o: &Outcome) {
    let p = &o.plan;
    println!(
        "{} is installed as the layer {}. The next boot tries it once; the default stays {}.",
        p.new_base,
        p.new_layer,
        p.default.as_deref().unwrap_or("grub's first entry")
    );
    if o.merge.has_conflicts() {
        println!("/etc conflicts (your version kept; the new image's beside it as NAME.hvnew):");
        for c in &o.merge.conflicts {
            let what = match c.kind {
                etc_merge::ConflictKind::BothChanged | etc_merge::ConflictKind::BothAdded => "",
                etc_merge::ConflictKind::BothChangedMetadata => {
                    " (owner, mode or extended attributes; yours kept, nothing beside it)"
                }
                etc_merge::ConflictKind::AdminDeletedImageChanged => {
                    " (you deleted it, the new image changed it: it stays deleted)"
                }
                etc_merge::ConflictKind::AdminChangedImageRemoved => {
                    " (the new image removed it: yours kept)"
                }
            };
            println!("  /etc/{}{what}", c.path.display());
        }
        for u in &o.merge.accounts.users.conflicts {
            println!("  user {u}");
        }
        for g in &o.merge.accounts.groups.conflicts {
            println!("  group {g}");
        }
    }
    for a in &o.var_added {
        println!("added /var/{}", a.display());
    }
    if !o.labels.checked {
        println!("WARNING: the new image has no SELinux policy: /etc labels not checked");
    }
    for r in &o.labels.relabeled {
        println!("relabelled {r}");
    }
    for w in &o.warnings {
        println!("WARNING: {w}");
    }
    println!("Reboot to try {}.", p.new_layer);
}
