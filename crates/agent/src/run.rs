//! Wiring: configuration, logging, the runtime, systemd notifications.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use console::{Config, Console, Metrics};
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};

use crate::Args;

pub use hvnode_agent::setup::{DEFAULT_CONFIG, load_config};

/// Logs to the journal under systemd, to stderr otherwise.
pub fn init_logging() {
    hvnode_agent::setup::init_logging("hvnode-agent");
}

/// Applies the command-line flags over the file's settings.
pub fn apply_flags(mut config: Config, args: &Args) -> Config {
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(u) = &args.libvirt_uri {
        config.libvirt_uri = u.clone();
    }
    if let Some(d) = &args.state_dir {
        config.state_dir = d.clone();
    }
    if let Some(d) = &args.certs_dir {
        config.certs_dir = d.clone();
    }
    if !args.admin_groups.is_empty() {
        config.admin_groups = args.admin_groups.clone();
    }
    if args.insecure_http {
        config.insecure_http = true;
    }
    if let Some(s) = &args.pam_service {
        config.pam_service = s.clone();
    }
    if let Some(t) = args.idle_timeout {
        config.idle_timeout_secs = t;
    }
    config
}

pub fn run(args: Args) -> Result<()> {
    let config = apply_flags(load_config(&args.config)?, &args);
    if !running_as_root() && config.helper_socket.is_none() {
        tracing::warn!(
            "not running as root and no helper_socket: PAM can check only this user's \
             own password, and unit actions, lvs and terminals for other users will fail"
        );
    }
    if config.insecure_http && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "serving plain HTTP on a non-loopback address");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .thread_name("hvnode-agent")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<()> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating {}", config.state_dir.display()))?;
    let metrics = Arc::new(Metrics::default());
    let sampler = console::spawn_sampler(metrics.clone());
    let listen = config.listen;
    let console = Console::bind(config, metrics)
        .await
        .context("starting the console")?;
    let addr = console.local_addr().context("reading the bound address")?;
    match &console.certificate {
        Some(cert) => {
            tracing::info!(%addr, certificate = %cert.display(), "console listening (TLS)")
        }
        None => tracing::info!(%addr, "console listening (plain HTTP)"),
    }
    // Not under systemd: nothing to notify, which is fine.
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
    let watchdog = spawn_watchdog();
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    console
        .serve(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
        .await;
    tracing::info!(%listen, "stopping");
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
    sampler.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    Ok(())
}

/// Whether the effective user is root (from `/proc/self/status`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_string();
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// Pings systemd's watchdog at half its interval, when one is set.
fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let period = Duration::from_micros(usec / 2).max(Duration::from_millis(100));
    tracing::info!(?period, "watchdog enabled");
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9191\"\nadmin_groups = [\"wheel\"]\nlibvirt_uri = \"test:///default\"\n",
        )
        .unwrap();
        let args = Args::parse_from([
            "hvnode-agent",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9999",
            "--admin-group",
            "ops",
            "--admin-group",
            "kvm",
            "--insecure-http",
        ]);
        let c = apply_flags(load_config(&args.config).unwrap(), &args);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(c.admin_groups, ["ops", "kvm"]);
        assert_eq!(c.libvirt_uri, "test:///default");
        assert!(c.insecure_http);
    }

    #[test]
    fn the_shipped_configuration_spells_out_the_defaults() {
        let shipped = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../image/files/etc/hvnode/agent.toml");
        let c = load_config(&shipped).unwrap();
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.libvirt_uri, d.libvirt_uri);
        assert_eq!(c.state_dir, d.state_dir);
        assert_eq!(c.certs_dir, d.certs_dir);
        assert_eq!(c.admin_groups, d.admin_groups);
        assert_eq!(c.pam_service, d.pam_service);
        assert_eq!(c.idle_timeout_secs, d.idle_timeout_secs);
        assert_eq!(c.ssh_dir, d.ssh_dir);
        assert_eq!(c.sysroot, d.sysroot);
        assert_eq!(c.max_connections, d.max_connections);
        assert_eq!(c.max_connections_per_client, d.max_connections_per_client);
        assert_eq!(c.tls_handshake_timeout_secs, d.tls_handshake_timeout_secs);
        assert_eq!(c.header_read_timeout_secs, d.header_read_timeout_secs);
        assert_eq!(c.keep_alive_timeout_secs, d.keep_alive_timeout_secs);
        assert_eq!(c.body_timeout_secs, d.body_timeout_secs);
        assert_eq!(c.upload_stall_timeout_secs, d.upload_stall_timeout_secs);
        assert!(!c.insecure_http);
    }

    #[test]
    fn unknown_keys_and_missing_explicit_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = format!("{:#}", load_config(&file).unwrap_err());
        assert!(err.contains("agent.toml") && err.contains("lisen"), "{err}");
        assert!(load_config(&dir.path().join("missing.toml")).is_err());
    }
}
