//! `nodectl`: the node administrator's command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nodectl::{diagnostics, layout, register, rollback, trial, update};

/// Administer an hvnode hypervisor host.
#[derive(Debug, Parser)]
#[command(name = "nodectl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register this node with an oVirt / RHV engine, or show the registration state.
    Register(register::RegisterArgs),
    /// The image, its layers, the boot entries and the current layer.
    Info {
        /// JSON output (oVirt nodectl's key names where they overlap).
        #[arg(long)]
        json: bool,
    },
    /// Check the node's health: boot entries, volumes, thin pool, SELinux, services,
    /// the engine's link (vdsm).
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Print the login message (image, layer, health, console URL).
    Motd,
    /// Write the console URL into the login banner (/etc/issue.d/hvnode.issue).
    GenerateBanner,
    /// Update to a signed update bundle: the new image is tried once at the next boot.
    Update(update::UpdateArgs),
    /// Make the previous layer (or --to LAYER) the default from the next boot.
    Rollback(rollback::RollbackArgs),
    /// Judge a trial boot after an update (run at boot by hvnode-trial.service):
    /// the layer on trial becomes the default if the node is healthy, else the
    /// node goes back to its default layer.
    Trial,
    /// Print the node's unique id for the engine (vdsm's), writing it to
    /// /etc/vdsm/vdsm.id first when the node has none (the firmware's system
    /// UUID, else a random one); run at first boot by hvnode-unique-id.service.
    UniqueId,
    /// Write a diagnostic report for support (a .tar.gz): nodectl info and check,
    /// the volumes, the journal since boot, the kernel's messages, libvirt's and the
    /// installer's logs, and hvnode's settings with their secrets removed.
    Diagnostics(diagnostics::DiagnosticsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Register(args) => register::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Info { json } => layout::info(json),
        Command::Check { json } => layout::check(json),
        Command::Motd => layout::motd(),
        Command::GenerateBanner => layout::generate_banner(std::path::Path::new("/")),
        Command::Update(args) => update::run(&args),
        Command::Rollback(args) => rollback::run(&args),
        Command::Trial => trial::run(),
        Command::Diagnostics(args) => diagnostics::run(&args),
        Command::UniqueId => registration::unique_id(&registration::Sysroot::new("/"))
            .map(|u| {
                println!("{}", u.id);
                ExitCode::SUCCESS
            })
            .map_err(|e| anyhow::anyhow!("the node's unique id: {e}")),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("nodectl: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
