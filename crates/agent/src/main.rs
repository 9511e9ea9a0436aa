//! `hvnode-agent`: reads its configuration, then runs the console and the sampler.

use std::path::PathBuf;

use clap::Parser;

mod run;

/// The hvnode node agent: the local web console on port 9090, the metrics sampler,
/// and readiness and watchdog notifications to systemd.
#[derive(Debug, Parser)]
#[command(name = "hvnode-agent", version)]
pub struct Args {
    /// Configuration file (TOML); flags override it.
    #[arg(long, default_value = run::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Address and port to listen on, e.g. 0.0.0.0:9090.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// libvirt connection URI, e.g. qemu:///system.
    #[arg(long, value_name = "URI")]
    pub libvirt_uri: Option<String>,
    /// Directory for the agent's state.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Directory of TLS certificates (highest-named *.cert wins).
    #[arg(long, value_name = "DIR")]
    pub certs_dir: Option<PathBuf>,
    /// A group whose members may log in (repeatable; replaces the configured list).
    #[arg(long = "admin-group", value_name = "NAME")]
    pub admin_groups: Vec<String>,
    /// Serve plain HTTP instead of TLS (for tests on loopback only).
    #[arg(long)]
    pub insecure_http: bool,
    /// PAM service used for logins.
    #[arg(long, value_name = "NAME")]
    pub pam_service: Option<String>,
    /// Log out sessions idle for this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    run::init_logging();
    match run::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hvnode-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
