//! The engine's networks on the node, as vdsm keeps them: the **running**
//! configuration (what the network daemon is given now) and the **safe** one
//! (what the engine confirmed with `Host.setSafeNetworkConfig`, or with
//! `commitOnSuccess`). A change the engine does not confirm is rolled back to the
//! configuration before it; a boot starts from the safe one
//! ([`Store::restore_at_boot`]), so an unconfirmed change never outlives a
//! reboot.
//!
//! Under the store's root (`/` on a node):
//! - `etc/systemd/network/05-hvnode-engine-*`: the running networks' files
//!   ([`crate::render`]);
//! - `etc/hvnode/networks/running.json`, `safe.json`: the two configurations;
//!   `previous.json`: the running one before the last change, while it is not
//!   confirmed.
//!
//! Every file is replaced whole ([`fsutil::write_atomic`]).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use command::{CommandError, CommandExt};

use crate::{Change, FILE_PREFIX, Invalid, Links, Networks, SysLinks, render};

/// What went wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("reading {}: {source} (remove it to start over with no engine networks)", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a network configuration: {source} (remove it to start over with no engine networks)", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing the network configuration: {0}")]
    Write(#[from] fsutil::Error),
    #[error("removing {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no change to roll back: the running networks are the last confirmed ones")]
    NothingToRollBack,
}

/// Why a setup was not made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change of the running networks, from `before` to `after`, written; what
/// the network daemon must do about it is [`activate`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub before: Networks,
    pub after: Networks,
}

impl Transition {
    /// The devices the networks before made and those after do not (bridges,
    /// VLAN devices): deleted, since networkd leaves a device whose file is gone.
    pub fn gone(&self) -> Vec<String> {
        let keep = self.after.made_devices();
        self.before
            .made_devices()
            .into_iter()
            .filter(|d| !keep.contains(d))
            .collect()
    }

    /// Whether the change changes nothing.
    pub fn is_empty(&self) -> bool {
        self.before == self.after
    }
}

/// The store under `root`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn state(&self, name: &str) -> PathBuf {
        self.root.join("etc/hvnode/networks").join(name)
    }

    fn network_dir(&self) -> PathBuf {
        self.root.join("etc/systemd/network")
    }

    /// The host's links, under the same root.
    pub fn links(&self) -> SysLinks {
        SysLinks(self.root.clone())
    }

    fn read(&self, name: &str) -> Result<Option<Networks>, StoreError> {
        let path = self.state(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Parse { path, source }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path, source }),
        }
    }

    fn write(&self, name: &str, networks: &Networks) -> Result<(), StoreError> {
        let mut text = serde_json::to_vec_pretty(networks).unwrap_or_default();
        text.push(b'\n');
        fsutil::write_atomic(&self.state(name), &text, fsutil::Options::mode(0o644))?;
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<(), StoreError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(StoreError::Remove {
                path: path.to_path_buf(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// The running networks (none before the engine set any up).
    pub fn running(&self) -> Result<Networks, StoreError> {
        Ok(self.read("running.json")?.unwrap_or_default())
    }

    /// The safe networks: what a boot comes up with.
    pub fn safe(&self) -> Result<Networks, StoreError> {
        Ok(self.read("safe.json")?.unwrap_or_default())
    }

    /// Whether a change is waiting to be confirmed or rolled back.
    pub fn pending(&self) -> Result<bool, StoreError> {
        Ok(self.read("previous.json")?.is_some())
    }

    /// Makes `changes` to the running networks, checked first: their files
    /// written, the configuration before kept for [`Store::rollback`].
    pub fn setup(&self, changes: &[Change]) -> Result<Transition, SetupError> {
        let before = self.running()?;
        let after = before.with(changes, &self.links())?;
        // A change on top of one not yet confirmed rolls back to the first's
        // starting point.
        if self.read("previous.json")?.is_none() {
            self.write("previous.json", &before)?;
        }
        self.put(&after)?;
        Ok(Transition { before, after })
    }

    /// The running networks back to what they were before the changes not
    /// confirmed.
    pub fn rollback(&self) -> Result<Transition, StoreError> {
        let previous = self
            .read("previous.json")?
            .ok_or(StoreError::NothingToRollBack)?;
        let before = self.running()?;
        self.put(&previous)?;
        self.remove(&self.state("previous.json"))?;
        Ok(Transition {
            before,
            after: previous,
        })
    }

    /// The running networks become the safe ones (`Host.setSafeNetworkConfig`).
    pub fn commit(&self) -> Result<(), StoreError> {
        let running = self.running()?;
        self.write("safe.json", &running)?;
        self.remove(&self.state("previous.json"))
    }

    /// At boot, before the network daemon starts: the safe networks become the
    /// running ones, their files written. Whether anything changed.
    pub fn restore_at_boot(&self) -> Result<bool, StoreError> {
        let safe = self.safe()?;
        let changed = self.running()? != safe || !self.files_match(&safe);
        if changed {
            self.put(&safe)?;
        }
        self.remove(&self.state("previous.json"))?;
        Ok(changed)
    }

    fn files_match(&self, networks: &Networks) -> bool {
        let want = render(networks, &self.links());
        want.iter().all(|(name, text)| {
            std::fs::read_to_string(self.network_dir().join(name)).is_ok_and(|t| &t == text)
        }) && self.written_files().len() == want.len()
    }

    /// The engine's files now in the network directory.
    fn written_files(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.network_dir()) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(FILE_PREFIX))
            .collect()
    }

    /// Writes `networks` as the running ones: their files, the others of the
    /// engine's removed, then `running.json`.
    fn put(&self, networks: &Networks) -> Result<(), StoreError> {
        let files = render(networks, &self.links());
        let dir = self.network_dir();
        for (name, text) in &files {
            fsutil::write_atomic(
                &dir.join(name),
                text.as_bytes(),
                fsutil::Options::mode(0o644),
            )?;
        }
        for stale in self.written_files() {
            if !files.iter().any(|(n, _)| *n == stale) {
                self.remove(&dir.join(stale))?;
            }
        }
        self.write("running.json", networks)
    }
}

/// Has systemd-networkd take up a [`Transition`]: the devices no network makes
/// any more deleted (networkd leaves a device whose file is gone), then the
/// daemon restarted, which reads every file again and configures each link by
/// the first that matches (a NIC leaves its old address for the bridge's port;
/// a new bridge is made and takes the address).
///
/// Not `networkctl reload`: on a node that D-Bus call to networkd waits for
/// D-Bus's timeout and fails ("Connection timed out"), for root in a shell too;
/// networkd authorizes it by the caller's capabilities or by polkit, which the
/// node does not run.
pub fn activate(t: &Transition, links: &dyn Links) -> Result<(), CommandError> {
    for device in t.gone() {
        if links.exists(&device) {
            // rtnetlink from networkctl itself, no D-Bus.
            run("networkctl", &["delete", &device])?;
        }
    }
    run("systemctl", &["restart", "systemd-networkd.service"])
}

fn run(program: &str, args: &[&str]) -> Result<(), CommandError> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    // A child of a Type=notify service must not speak for it.
    cmd.env_remove("NOTIFY_SOCKET");
    cmd.stdin_closed().run()
}
