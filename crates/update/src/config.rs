//! `/etc/hvnode/update.toml`: the admin's settings for updates. Every key
//! may be left out.
//!
//! ```toml
//! # Images kept in the store besides the booted, the default and the one
//! # on trial (older ones are removed after an update).
//! images_to_keep = 2
//!
//! [trial]
//! # Seconds a trial boot's health checks may take to pass.
//! check_seconds = 120
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

/// Where the settings live on a node.
pub const CONFIG_FILE: &str = "/etc/hvnode/update.toml";

/// How long a trial boot's checks may take by default: the agent and
/// libvirtd start within seconds of `multi-user.target`, and a unit that
/// restarts on failure gets a few tries.
pub const DEFAULT_TRIAL_CHECK_SECS: u64 = 120;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub images_to_keep: u32,
    pub trial: Trial,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Trial {
    pub check_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            images_to_keep: 2,
            trial: Trial::default(),
        }
    }
}

impl Default for Trial {
    fn default() -> Self {
        Trial {
            check_seconds: DEFAULT_TRIAL_CHECK_SECS,
        }
    }
}

impl Config {
    /// The settings in `path`; the defaults when it does not exist.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Config::parse(&text).with_context(|| format!("{}: fix or remove it", path.display()))
    }

    /// Parses the settings; an error names the line and the key.
    pub fn parse(text: &str) -> Result<Config> {
        let c: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            anyhow::anyhow!(
                "{}{}",
                line.map(|l| format!("line {l}: ")).unwrap_or_default(),
                e.message()
            )
        })?;
        if c.trial.check_seconds == 0 {
            anyhow::bail!("trial.check_seconds must be more than 0");
        }
        Ok(c)
    }

    /// How long a trial boot's checks may take.
    pub fn trial_patience(&self) -> crate::trial::Patience {
        crate::trial::Patience {
            timeout: Duration::from_secs(self.trial.check_seconds),
            ..crate::trial::Patience::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_their_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let c = Config::parse("[trial]\ncheck_seconds = 30\n").unwrap();
        assert_eq!(c.trial.check_seconds, 30);
        assert_eq!(c.images_to_keep, 2);
        assert_eq!(c.trial_patience().timeout, Duration::from_secs(30));
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(&d.path().join("none.toml")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn a_mistake_names_its_line_and_file() {
        let e = Config::parse("images_to_keep = 2\n[trial]\ncheck_secs = 30\n").unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("line 3") && e.contains("check_secs"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("update.toml");
        std::fs::write(&p, "[trial]\ncheck_seconds = 0\n").unwrap();
        let e = format!("{:#}", Config::load(&p).unwrap_err());
        assert!(
            e.contains("update.toml") && e.contains("more than 0"),
            "{e}"
        );
    }
}
