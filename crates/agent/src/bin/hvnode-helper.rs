//! `hvnode-helper`: the console's privileged helper (see `hvnode_agent::helper_service`).

use std::path::PathBuf;

use clap::Parser;
use hvnode_agent::helper_service::{HelperArgs, install_certificate, run};
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
    /// The engine's link's user (hvnode-vdsm runs as vdsm): the helper also listens
    /// on --engine-socket, a socket of that user alone, and does there what the
    /// engine asks of VMs (VM.destroy, VM.shutdown), nothing else.
    #[arg(long, value_name = "NAME")]
    engine_user: Option<String>,
    /// Where to listen for the engine's link.
    #[arg(long, default_value = helper::DEFAULT_ENGINE_SOCKET)]
    engine_socket: PathBuf,
    /// Instead of serving: make or renew the console's certificate in the
    /// configuration's certificates directory when it is due, copy the one that wins
    /// (chain and key) to DIR/console.cert for the owner of DIR, and exit. The
    /// console's unit runs it as root before each start (ExecStartPre=+), in the
    /// helper's SELinux domain: the web process's own domain may not write root's
    /// certificates.
    #[arg(long, value_name = "DIR")]
    install_certificate: Option<PathBuf>,
    /// Instead of serving: the engine's networks as it last confirmed them
    /// (Host.setSafeNetworkConfig) become the running ones, their
    /// systemd-networkd files written, and exit. Run at boot before
    /// systemd-networkd (hvnode-network-restore.service), so that a network change
    /// the engine never confirmed does not outlive a reboot.
    #[arg(long)]
    restore_networks: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logging("hvnode-helper");
    if args.restore_networks {
        return match netconf::store::Store::new("/").restore_at_boot() {
            Ok(changed) => {
                if changed {
                    tracing::warn!(
                        "the engine's networks were not as last confirmed: the confirmed ones are back"
                    );
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hvnode-helper: restoring the engine's confirmed networks: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Some(out) = &args.install_certificate {
        return match install_certificate(&args.config, out) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hvnode-helper: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let args = HelperArgs {
        config: args.config,
        socket: args.socket,
        allow_users: args.allow_users,
        group: args.group,
        engine_user: args.engine_user,
        engine_socket: args.engine_socket,
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
