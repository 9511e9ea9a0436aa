//! `hvnode-vdsm`: serves vdsm's wire protocol to oVirt Engine on TCP 54321, once the
//! engine's host deploy has left the node's certificates (until then it waits, and
//! says so), reloading them when they change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio_rustls::TlsAcceptor;

/// The engine's side of an hvnode node: a vdsm-compatible host service.
#[derive(Debug, Parser)]
#[command(name = "hvnode-vdsm", version)]
struct Args {
    /// Address and port to listen on (`[::]` also takes IPv4 connections; without
    /// IPv6, 0.0.0.0 is used instead).
    #[arg(long, value_name = "ADDR:PORT", default_value = "[::]:54321")]
    listen: SocketAddr,
    /// Where the engine's host deploy leaves the certificates: keys/vdsmkey.pem,
    /// certs/vdsmcert.pem, certs/cacert.pem.
    #[arg(long, value_name = "DIR", default_value = "/etc/pki/vdsm")]
    pki_dir: PathBuf,
    /// The libvirt connection the VM verbs read (read-only).
    #[arg(long, value_name = "URI", default_value = "qemu:///system")]
    libvirt_uri: String,
    /// The root of the node's files the verbs read (DMI facts, …).
    #[arg(long, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,
    /// The privileged helper's socket for this service (hvnode-helper
    /// --engine-user), which makes the VM actions the engine asks for
    /// (VM.destroy, VM.shutdown).
    #[arg(long, value_name = "PATH", default_value = helper::DEFAULT_ENGINE_SOCKET)]
    helper_socket: PathBuf,
    /// Where the service keeps its status for the node's tools (nodectl register
    /// --status, nodectl check, the console's Registration page).
    #[arg(long, value_name = "PATH", default_value = vdsm::status::STATUS_PATH)]
    status_file: PathBuf,
}

/// How often the certificates are looked at for a change.
const PKI_CHECK: Duration = Duration::from_secs(5);
/// How often, at most, the status file is written.
const STATUS_EVERY: Duration = Duration::from_secs(1);

fn main() -> std::process::ExitCode {
    // Under systemd the journal stamps each line itself.
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        fmt.without_time().with_ansi(false).init();
    } else {
        fmt.init();
    }
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hvnode-vdsm: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hvnode-vdsm: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Err(e) if args.listen.ip().is_unspecified() && args.listen.is_ipv6() => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], args.listen.port()));
            tracing::info!("IPv6 unavailable ({e}); listening on {v4}");
            tokio::net::TcpListener::bind(v4).await
        }
        other => other,
    }
    .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "listening");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let packages = vdsm::caps::packages(&args.sysroot);
    let levels = vdsm::caps::cluster_levels(packages.get("libvirt"), packages.get("qemu-kvm"));
    let status = vdsm::status::Tracker::new(levels.iter().map(|l| l.to_string()).collect());
    tokio::spawn(
        status
            .clone()
            .write_on_change(args.status_file.clone(), STATUS_EVERY),
    );
    let tls: vdsm::Tls = Arc::new(RwLock::new(None));
    let watched = tls.clone();
    let tracked = status.clone();
    let pki_dir = args.pki_dir.clone();
    tokio::spawn(async move {
        let mut seen = None;
        loop {
            let stamp = vdsm::pki::stamp(&pki_dir);
            if seen.as_ref() != Some(&stamp) {
                seen = Some(stamp);
                let config = vdsm::pki::server_config(&pki_dir);
                let (acceptor, status) = match config {
                    Ok(c) => {
                        tracing::info!(pki = %pki_dir.display(), "certificates loaded; serving the engine");
                        tracked.serving(None);
                        (Some(TlsAcceptor::from(c)), "serving the engine".to_string())
                    }
                    Err(e) => {
                        tracing::warn!("not serving yet: {e}");
                        tracked.serving(Some(e.to_string()));
                        (None, format!("not serving yet: {e}"))
                    }
                };
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(&status)]);
                if let Ok(mut t) = watched.write() {
                    *t = acceptor;
                }
            }
            tokio::time::sleep(PKI_CHECK).await;
        }
    });
    let verbs = Arc::new(
        vdsm::host::HostVerbs::new(&args.sysroot, &args.libvirt_uri)
            .with_helper(&args.helper_socket)
            .with_status(status.clone()),
    );
    let mut options = vdsm::ServeOptions {
        status: Some(status),
        ..vdsm::ServeOptions::default()
    };
    options.connection.events = Some(verbs.watch_vms());
    vdsm::serve(listener, tls, verbs, options)
        .await
        .context("serving")
}
