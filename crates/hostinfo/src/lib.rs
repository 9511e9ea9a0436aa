//! Facts and health of the running host, for the agent and its console.
//!
//! Everything is read from `/proc`, `/sys`, `/etc` and a few programs (`lsblk`, `lvs`,
//! `ip`), the programs through the one wrapper in [`command`]. Each source has a pure
//! `parse_*` function, tested on captured real output under `tests/fixtures/`, and a
//! thin function that reads the live host.

pub mod command;
pub mod counters;
pub mod network;
pub mod security;
pub mod storage;
pub mod system;

use std::path::{Path, PathBuf};

pub use command::{CommandError, run, run_json};
pub use counters::{Counters, Rates, interface_rates, rates, read_counters};
pub use network::{Interface, interfaces};
pub use security::{HostKey, Selinux, host_key_fingerprints, selinux};
pub use storage::{
    BlockDevice, Filesystem, THIN_POOL_WARN_PERCENT, ThinPool, block_devices, filesystems,
    thin_pools,
};
pub use system::{CpuInfo, LoadAvg, MemInfo, SystemInfo, format_uptime, system_info};

/// A host fact that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Command(#[from] CommandError),
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}
