//! `hvnode ks …`: kickstart validation, rendering and install plans.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use kickstart::source::FsLoader;
use kickstart::{Diagnostic, Severity, node, parse_file};
use serde::Serialize;

/// The versioned shape of `hvnode ks validate --json`.
pub const API_VERSION: &str = "hvnode.io/v1";

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Kickstart files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(long)]
    pub json: bool,
    pub file: PathBuf,
}

/// One file's verdict.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub path: String,
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    /// Syntax diagnostics first, then node-level ones, each in file order.
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub valid: bool,
    pub files: Vec<FileReport>,
}

/// Checks one file: F40 syntax, then (when that is valid) the node rules.
pub fn check_file(path: &std::path::Path) -> FileReport {
    let parse = parse_file(path, &FsLoader);
    let mut diagnostics: Vec<Diagnostic> = parse.diagnostics.iter().cloned().collect();
    if parse.is_valid() {
        let (_, node) = node::plan(&parse.kickstart);
        diagnostics.extend(node.iter().cloned());
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    FileReport {
        path: path.display().to_string(),
        valid: errors == 0,
        errors,
        warnings: diagnostics.len() - errors,
        diagnostics,
    }
}

pub fn validate(args: &ValidateArgs) -> Result<ExitCode> {
    let files: Vec<FileReport> = args.files.iter().map(|f| check_file(f)).collect();
    let valid = files.iter().all(|f| f.valid);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let report = ValidateReport {
            api_version: API_VERSION,
            kind: "KickstartValidation",
            valid,
            files,
        };
        serde_json::to_writer_pretty(&mut out, &report).context("writing the JSON report")?;
        writeln!(out)?;
    } else {
        let stderr = std::io::stderr();
        let mut err = stderr.lock();
        for f in &files {
            for d in &f.diagnostics {
                writeln!(err, "{d}")?;
            }
            let verdict = if f.valid { "valid" } else { "invalid" };
            writeln!(
                out,
                "{}: {verdict} ({} errors, {} warnings)",
                f.path, f.errors, f.warnings
            )?;
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn parse_valid(path: &std::path::Path) -> Result<kickstart::Kickstart> {
    let parse = parse_file(path, &FsLoader);
    for d in parse.diagnostics.iter() {
        eprintln!("{d}");
    }
    if !parse.is_valid() {
        anyhow::bail!(
            "{} is not a valid kickstart; fix the errors above (hvnode ks validate lists them)",
            path.display()
        );
    }
    Ok(parse.kickstart)
}

pub fn render(args: &RenderArgs) -> Result<ExitCode> {
    let ks = parse_valid(&args.file)?;
    print!("{}", kickstart::render(&ks));
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanReport {
    api_version: &'static str,
    kind: &'static str,
    plan: node::NodePlan,
    warnings: Vec<Diagnostic>,
}

pub fn plan(args: &PlanArgs) -> Result<ExitCode> {
    let ks = parse_valid(&args.file)?;
    let (plan, warnings) = node::plan(&ks);
    if args.json {
        let report = PlanReport {
            api_version: API_VERSION,
            kind: "NodeInstallPlan",
            plan,
            warnings: warnings.iter().cloned().collect(),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for w in warnings.iter() {
            eprintln!("{w}");
        }
        println!("{}", serde_json::to_string_pretty(&plan)?);
    }
    Ok(ExitCode::SUCCESS)
}
