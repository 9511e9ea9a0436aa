//! `hvnode iso …`: a built ISO customised in place (kickstart, kernel
//! arguments, menu, trusted key, engine), shown, and reset to its build.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use image_build::customize::{self, Changes, ShowReport};
use iso_custom::MenuEntry;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Entry {
    Install,
    Live,
}

#[derive(Debug, Args)]
pub struct CustomizeArgs {
    /// The ISO to start from (as built, or customised before: its current
    /// customisation is the starting point).
    #[arg(value_name = "IN.iso")]
    pub input: PathBuf,
    /// Where the customised ISO goes (may be IN.iso itself).
    #[arg(short, long, value_name = "OUT.iso")]
    pub output: PathBuf,
    /// Embed this kickstart (checked as `hvnode ks validate` checks it): the
    /// installer uses it after inst.ks= and before an OEMDRV volume.
    #[arg(long, value_name = "FILE")]
    pub kickstart: Option<PathBuf>,
    /// Add a kernel argument to every menu entry (repeatable).
    #[arg(long, value_name = "ARG")]
    pub kargs_append: Vec<String>,
    /// Remove a kernel argument from every menu entry (repeatable; KEY
    /// removes every KEY and KEY=…, KEY=VALUE only that one). Deletes come
    /// before appends.
    #[arg(long, value_name = "ARG")]
    pub kargs_delete: Vec<String>,
    /// The menu entry started when the timeout runs out.
    #[arg(long, value_name = "ENTRY")]
    pub default_entry: Option<Entry>,
    /// Seconds the menu waits (0: start the default entry at once).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    /// A minisign public key the installed node trusts for update bundles
    /// (and the installer for signed images); repeatable.
    #[arg(long, value_name = "FILE")]
    pub trust_key: Vec<PathBuf>,
    /// Register installed nodes with this oVirt engine at first boot
    /// (zero-touch), unless the kickstart has its own %addon org_hvnode_register.
    #[arg(long, value_name = "FQDN[:PORT]")]
    pub engine_fqdn: Option<String>,
    /// The engine CA's fingerprint (SHA256:HEX, SHA256:BASE64 or SHA-1
    /// colon-hex); without it a node waits for an administrator's confirmation.
    #[arg(long, value_name = "FP")]
    pub engine_fingerprint: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(value_name = "IN.iso")]
    pub input: PathBuf,
    /// Print one JSON document (apiVersion hvnode.io/v1, kind IsoCustomizationStatus).
    #[arg(long, conflicts_with = "kickstart")]
    pub json: bool,
    /// Print the embedded kickstart only.
    #[arg(long)]
    pub kickstart: bool,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    #[arg(value_name = "IN.iso")]
    pub input: PathBuf,
    /// Where the ISO as built goes (may be IN.iso itself).
    #[arg(short, long, value_name = "OUT.iso")]
    pub output: PathBuf,
}

pub fn customize(args: &CustomizeArgs) -> Result<ExitCode> {
    let changes = Changes {
        kickstart: args.kickstart.clone(),
        kargs_append: args.kargs_append.clone(),
        kargs_delete: args.kargs_delete.clone(),
        default_entry: args.default_entry.map(|e| match e {
            Entry::Install => MenuEntry::Install,
            Entry::Live => MenuEntry::Live,
        }),
        timeout: args.timeout,
        trust_keys: args.trust_key.clone(),
        engine: args.engine_fqdn.clone(),
        engine_fingerprint: args.engine_fingerprint.clone(),
    };
    let started = Instant::now();
    let notes = customize::customize(&args.input, &args.output, &changes).with_context(|| {
        format!(
            "customising {} into {}",
            args.input.display(),
            args.output.display()
        )
    })?;
    for n in notes {
        eprintln!("note: {n}");
    }
    eprintln!(
        "{} written in {:.1} s (`hvnode iso show {}` lists what it holds)",
        args.output.display(),
        started.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The text `hvnode iso show` prints.
pub fn show_text(r: &ShowReport) -> String {
    let mut s = String::new();
    let line = |s: &mut String, k: &str, v: &str| s.push_str(&format!("{k:<16}{v}\n"));
    line(&mut s, "iso", &r.iso);
    line(
        &mut s,
        "customised",
        if r.customized { "yes" } else { "no (as built)" },
    );
    line(&mut s, "default entry", r.default_entry.id());
    line(
        &mut s,
        "timeout",
        &r.timeout.map_or("-".into(), |t| format!("{t} s")),
    );
    line(&mut s, "kernel args", &r.kargs.join(" "));
    if r.kargs != r.build_kargs {
        line(&mut s, "  (as built)", &r.build_kargs.join(" "));
    }
    let ks = match &r.kickstart {
        Some(k) => format!(
            "{} ({} lines, {} bytes; `--kickstart` prints it)",
            k.name,
            k.text.lines().count(),
            k.text.len()
        ),
        None => "none (inst.ks=, OEMDRV, or the interactive install)".into(),
    };
    line(&mut s, "kickstart", &ks);
    if r.trust_keys.is_empty() {
        line(&mut s, "trusted keys", "none added");
    }
    for k in &r.trust_keys {
        line(
            &mut s,
            "trusted key",
            &format!("{} (/etc/hvnode/trusted.d/{})", k.key_id, k.file_name()),
        );
    }
    let engine = match &r.engine {
        Some(e) => format!(
            "{} fingerprint {}",
            e.address(),
            e.fingerprint
                .as_deref()
                .unwrap_or("none (confirmed by an administrator)")
        ),
        None => "none".into(),
    };
    line(&mut s, "engine", &engine);
    s
}

pub fn show(args: &ShowArgs) -> Result<ExitCode> {
    let state = customize::read(&args.input)?;
    let report = ShowReport::new(&args.input, &state);
    if args.kickstart {
        match &report.kickstart {
            Some(k) => print!("{}", k.text),
            None => anyhow::bail!("{} embeds no kickstart", args.input.display()),
        }
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", show_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reset(args: &ResetArgs) -> Result<ExitCode> {
    customize::reset(&args.input, &args.output).with_context(|| {
        format!(
            "resetting {} into {}",
            args.input.display(),
            args.output.display()
        )
    })?;
    eprintln!("{} written as built", args.output.display());
    Ok(ExitCode::SUCCESS)
}
