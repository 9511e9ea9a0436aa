//! hvnode's own part of the image: the workspace's release binaries, its
//! systemd units, the files under `image/files/` and the kickstarts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use serde::Deserialize;

use crate::cache::{Key, add_tree, file_sha256};
use crate::rootfs::Root;

/// Where hvnode's own inputs are.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Release binaries to install as `/usr/bin/NAME`.
    pub binaries: Vec<PathBuf>,
    /// `systemd/`: unit files.
    pub units_dir: PathBuf,
    /// `image/files/`: laid over `/`.
    pub files_dir: PathBuf,
    /// `kickstart/`: installed under `/usr/share/hvnode/kickstart/`.
    pub kickstart_dir: PathBuf,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    targets: Vec<Target>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The workspace's binaries that belong in the image: every `[[bin]]`,
/// except those of packages with `[package.metadata.hvnode] in-image = false`
/// (test helpers). They must have been built with `--release`.
pub fn workspace_binaries(workspace: &Path) -> Result<Vec<PathBuf>> {
    let meta: Metadata = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .run_json()
        .context("listing the workspace's binaries")?;
    let mut bins = Vec::new();
    for p in &meta.packages {
        let in_image = p
            .metadata
            .as_ref()
            .and_then(|m| m.pointer("/hvnode/in-image"))
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        if !in_image {
            continue;
        }
        for t in p
            .targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k == "bin"))
        {
            let path = meta.target_directory.join("release").join(&t.name);
            if !path.is_file() {
                bail!(
                    "{} (binary {} of {}) is missing: build the workspace first with `cargo build --release --workspace` (`make image` does)",
                    path.display(),
                    t.name,
                    p.name
                );
            }
            bins.push(path);
        }
    }
    bins.sort();
    Ok(bins)
}

impl Payload {
    /// Adds every input to the cache key.
    pub fn key(&self, key: &mut Key) -> Result<()> {
        for b in &self.binaries {
            let name = b.file_name().unwrap_or_default().to_string_lossy();
            key.add(&format!("bin:{name}"), file_sha256(b)?.as_bytes());
        }
        add_tree(key, "units", &self.units_dir)?;
        add_tree(key, "files", &self.files_dir)?;
        add_tree(key, "kickstart", &self.kickstart_dir)?;
        Ok(())
    }

    /// Installs everything; returns the names of the unit files installed.
    pub fn install(&self, root: &Root) -> Result<Vec<String>> {
        for b in &self.binaries {
            let name = b
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let content = fs::read(b).with_context(|| format!("reading {}", b.display()))?;
            root.write(&format!("/usr/bin/{name}"), &content, 0o755)?;
        }
        let mut units = Vec::new();
        if self.units_dir.is_dir() {
            let mut entries: Vec<PathBuf> = fs::read_dir(&self.units_dir)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            for p in entries {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let is_unit = [
                    ".service", ".socket", ".timer", ".path", ".target", ".mount",
                ]
                .iter()
                .any(|s| name.ends_with(s));
                if !is_unit {
                    continue;
                }
                let content = fs::read(&p)?;
                root.write(&format!("/usr/lib/systemd/system/{name}"), &content, 0o644)?;
                units.push(name);
            }
        }
        root.copy_tree(&self.files_dir, "/")
            .with_context(|| format!("laying {} into the image", self.files_dir.display()))?;
        root.copy_tree(&self.kickstart_dir, "/usr/share/hvnode/kickstart")?;
        Ok(units)
    }
}

/// Whether a unit file can be enabled (has an `[Install]` section).
pub fn installable(unit_text: &str) -> bool {
    unit_text.lines().any(|l| l.trim() == "[Install]")
}
