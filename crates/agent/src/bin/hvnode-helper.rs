//! `hvnode-helper`: the console's privileged helper (see `hvnode_agent::helper_service`).

use std::path::PathBuf;

use clap::Parser;
use hvnode_agent::helper_service::{HelperArgs, run};
use hvnode_agent::setup::{DEFAULT_CONFIG, init_logging};

/// The privileged helper of the node's web console: logins, PAM sessions and the
/// sudo policy, answered on a local socket to the users it serves.
#[derive(Debug, Parser)]
#[command(name = "hvnode-helper", version)]
struct Args {
    /// The console's configuration file (PAM service, admin groups, disallowed users).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Where to listen.
    #[arg(long, default_value = helper::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// A user, besides root, whose processes may ask (repeatable).
    #[arg(long = "allow-user", value_name = "NAME")]
    allow_users: Vec<String>,
    /// The socket's group (mode 0660); without it only root may connect.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logging("hvnode-helper");
    let args = HelperArgs {
        config: args.config,
        socket: args.socket,
        allow_users: args.allow_users,
        group: args.group,
    };
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hvnode-helper: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
