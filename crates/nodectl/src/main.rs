//! `nodectl`: the node administrator's command line.

mod output;
mod register;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Register(args) => register::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nodectl: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
