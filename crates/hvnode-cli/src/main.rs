//! `hvnode`: the build-host command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hvnode_cli::{build, iso, ks};

#[derive(Debug, Parser)]
#[command(
    name = "hvnode",
    version,
    about = "hvnode build-host tools: kickstarts, node images"
)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Kickstart files: validate, render, show the install plan.
    #[command(subcommand)]
    Ks(KsCommand),
    /// Build the node image from a recipe: squashfs, ISO, PXE tree, update
    /// bundle, manifest and checksums (needs root).
    Build(build::BuildArgs),
    /// A built ISO customised in place, without a rebuild: kickstart,
    /// kernel arguments, boot menu, trusted key, engine.
    #[command(subcommand)]
    Iso(IsoCommand),
}

#[derive(Debug, Subcommand)]
enum IsoCommand {
    /// Write a copy of the ISO with a kickstart, kernel arguments, a default
    /// entry, a timeout, trusted keys or an engine embedded.
    Customize(iso::CustomizeArgs),
    /// Print what an ISO embeds.
    Show(iso::ShowArgs),
    /// Write a copy of the ISO as it was built (byte for byte).
    Reset(iso::ResetArgs),
}

#[derive(Debug, Subcommand)]
enum KsCommand {
    /// Check kickstarts against the F40 syntax and hvnode's node rules.
    /// Exit 0 when every file is valid (warnings allowed), 1 when any is not.
    Validate(ks::ValidateArgs),
    /// Print a kickstart in canonical form (includes resolved).
    Render(ks::RenderArgs),
    /// Show what the installer would do with a kickstart.
    Plan(ks::PlanArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Top::Ks(KsCommand::Validate(a)) => ks::validate(&a),
        Top::Ks(KsCommand::Render(a)) => ks::render(&a),
        Top::Ks(KsCommand::Plan(a)) => ks::plan(&a),
        Top::Build(a) => build::build(&a),
        Top::Iso(IsoCommand::Customize(a)) => iso::customize(&a),
        Top::Iso(IsoCommand::Show(a)) => iso::show(&a),
        Top::Iso(IsoCommand::Reset(a)) => iso::reset(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hvnode: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
