//! `hvnode-install`: install hvnode on this machine from a kickstart.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Install hvnode on a disk, driven by an Anaconda-syntax kickstart.
#[derive(Debug, Parser)]
#[command(name = "hvnode-install", version, about)]
struct Cli {
    /// The kickstart (a file). Without it, --from-boot finds one as Anaconda does.
    #[arg(long, short = 'k', value_name = "FILE", conflicts_with = "from_boot")]
    kickstart: Option<PathBuf>,
    /// Find the kickstart from the boot: inst.ks= on the kernel command line, a
    /// volume labelled OEMDRV, else the medium's interactive-defaults.ks.
    #[arg(long)]
    from_boot: bool,
    /// Check everything and print the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where the installer keeps its work files and log.
    #[arg(long, default_value = "/run/hvnode-install", value_name = "DIR")]
    work: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = installer::install::Options {
        kickstart: cli.kickstart,
        from_boot: cli.from_boot,
        dry_run: cli.dry_run,
        work: cli.work,
    };
    match installer::install::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hvnode-install: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
