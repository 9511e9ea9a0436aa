//! What both services do first: logging and the configuration file.

use std::path::Path;

use anyhow::{Context, Result};
use console::Config;

/// The configuration both services read.
pub const DEFAULT_CONFIG: &str = "/etc/hvnode/agent.toml";

/// Logs to the journal, as `identifier`, when started by systemd (stderr is then a
/// journal stream), otherwise to stderr. `RUST_LOG` sets the filter (default `info`).
pub fn init_logging(identifier: &str) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(journald.with_syslog_identifier(identifier.into()))
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init();
}

/// Reads the configuration file; a missing default file means defaults.
pub fn load_config(path: &Path) -> Result<Config> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == Path::new(DEFAULT_CONFIG) => {
            Ok(Config::default())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
