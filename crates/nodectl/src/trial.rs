//! `nodectl trial`: the verdict on a trial boot after an update, run at
//! every boot by `hvnode-trial.service` (the library is
//! [`update::trial`]). Exit status 1 only when the layer on trial failed:
//! on a trial boot the unit then reboots the node into its default layer.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use health::Status;
use layers::history::History;
use layers::status;
use update::trial::{Checks, Verdict};

/// The agent's settings, for the console's port.
const AGENT_CONFIG: &str = "/etc/hvnode/agent.toml";
const DEFAULT_CONSOLE_PORT: u16 = 9090;

pub fn run() -> Result<ExitCode> {
    let boot = status::boot_dir();
    // An update cut short (killed, a power cut) is taken back first; a
    // failure to is reported and does not stop the verdict.
    if let Err(e) = recover(&boot) {
        eprintln!("nodectl: taking back an interrupted update: {e:#}");
    }
    let config = update::Config::load(Path::new(update::CONFIG_FILE))?;
    let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    let mut checks = NodeChecks {
        console_port: console_port(Path::new(AGENT_CONFIG)),
    };
    let now = hostinfo::units::UtcTime::from_unix(hostinfo::units::now_unix()).to_string();
    let verdict = update::trial::judge(
        &boot,
        &History::default(),
        &cmdline,
        &mut checks,
        config.trial_patience(),
        &now,
    )?;
    Ok(match verdict {
        Verdict::NoTrial(kind) => {
            println!("no layer on trial ({kind:?})");
            ExitCode::SUCCESS
        }
        Verdict::Passed(r) => {
            println!("{} passed its trial boot: {}", r.layer, r.reason);
            // The node is healthy on the new image: old ones may go. A
            // failure here is reported and leaves the verdict standing.
            match collect(&boot, config.images_to_keep) {
                Ok(removed) => removed.iter().for_each(|l| println!("{l}")),
                Err(e) => eprintln!("nodectl: removing old images after the trial: {e:#}"),
            }
            ExitCode::SUCCESS
        }
        Verdict::Abandoned(r) => {
            println!("{} FAILED its trial boot: {}", r.layer, r.reason);
            ExitCode::SUCCESS
        }
        Verdict::Failed(r) => {
            println!("{} FAILED its trial boot: {}", r.layer, r.reason);
            ExitCode::FAILURE
        }
    })
}

/// Takes back what an interrupted update left, when its journal is there.
fn recover(boot: &Path) -> Result<()> {
    let journal = Path::new(layers::history::STATE_DIR).join("update-journal.json");
    if !journal.exists() {
        return Ok(());
    }
    let live = update::detect(Path::new("/"), boot).context("finding the layer store")?;
    let mut progress = update::Human(std::io::stdout().lock());
    let r = update::recover(
        &live.node.journal(),
        &live.node.current_layer,
        live.node.store.store(),
        &mut progress,
    )?;
    println!("interrupted update: {r:?}");
    Ok(())
}

/// Removes the images beyond `keep` (see [`update::gc`]).
fn collect(boot: &Path, keep: u32) -> Result<Vec<String>> {
    let live = update::detect(Path::new("/"), boot).context("finding the layer store")?;
    let facts = status::gather(boot)?;
    let info = status::info(&facts, None);
    let layer = |s: Option<String>| s.and_then(|s| s.parse().ok());
    let protected = update::gc::Protected {
        booted: facts.current_layer.clone(),
        default: layer(info.bootloader.default),
        trial: layer(info.bootloader.trial),
    };
    let inventory = live.node.store.store().inventory()?;
    let failed = info.failed_trials.iter().map(|t| t.layer.clone()).collect();
    let plan = update::gc::plan_gc(&inventory, &protected, keep, &failed);
    update::gc::apply_gc(&plan, live.node.store.store(), boot, &History::default())
}

/// The console's port from the agent's `listen` setting.
fn console_port(config: &Path) -> u16 {
    std::fs::read_to_string(config)
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .and_then(|t| t.get("listen")?.as_str()?.parse::<SocketAddr>().ok())
        .map_or(DEFAULT_CONSOLE_PORT, |a| a.port())
}

/// What a trial boot must show: `nodectl check` with nothing failed, the
/// console answering, libvirtd answering.
struct NodeChecks {
    console_port: u16,
}

impl Checks for NodeChecks {
    fn problems(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        match status::gather(&status::boot_dir()) {
            Ok(facts) => {
                let report = crate::layout::node_health(&facts);
                out.extend(
                    report
                        .problems()
                        .into_iter()
                        .filter(|(_, c)| c.status == Status::Failed)
                        // The engine's certificates are the same in every
                        // layer: not the update's to mend.
                        .filter(|(g, c)| !health::engine_link::is_enrolment(g, &c.name))
                        .map(|(group, c)| format!("{group}: {}: {}", c.name, c.detail)),
                );
            }
            Err(e) => out.push(format!("reading the node's layers: {e:#}")),
        }
        let port = self.console_port;
        let answers = [
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ]
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(3)).is_ok());
        if !answers {
            out.push(format!(
                "the web console (hvnode-agent.service) does not answer on port {port}"
            ));
        }
        if let Err(e) = crate::libvirt::security_models() {
            out.push(format!("libvirtd does not answer: {e}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_port_comes_from_the_agent_settings() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("agent.toml");
        assert_eq!(console_port(&p), DEFAULT_CONSOLE_PORT);
        std::fs::write(&p, "listen = \"[::]:9443\"\n").unwrap();
        assert_eq!(console_port(&p), 9443);
        std::fs::write(&p, "listen = \"nonsense\"\n").unwrap();
        assert_eq!(console_port(&p), DEFAULT_CONSOLE_PORT);
    }
}
