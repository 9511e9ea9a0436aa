//! Facts and health of the running host, for the agent and its console.
//!
//! Everything is read from `/proc`, `/sys`, `/etc` and a few programs (`lsblk`, `lvs`,
//! `ip`), the programs through the workspace's one wrapper (crate `command`), with
//! standard input closed and the C locale. Each source has a pure
//! `parse_*` function, tested on captured real output under `tests/fixtures/`, and a
//! thin function that reads the live host.

pub mod blockdev;
pub mod boot_chain;
pub mod counters;
pub mod firmware;
pub mod image;
pub mod network;
pub mod security;
pub mod storage;
pub mod system;
pub mod units;

use std::path::{Path, PathBuf};
use std::process::Command;

use command::{CommandError, CommandExt};

pub use blockdev::{BlockDevice, LsblkError, block_devices};
pub use counters::{Counters, Rates, interface_rates, rates, read_counters};
pub use firmware::Firmware;
pub use image::{IMAGE_IDENTITY, IdentityError, ImageIdentity};
pub use network::{Interface, interfaces};
pub use security::{HostKey, Selinux, host_key_fingerprints, selinux};
pub use storage::{
    BadLvsRow, Filesystem, Lv, THIN_POOL_WARN_PERCENT, ThinPool, filesystems, thin_pools,
};
pub use system::{CpuInfo, LoadAvg, MemInfo, SystemInfo, format_uptime, system_info};
pub use units::{human_bytes, now_unix};

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

/// A program whose output is read: standard input closed, C locale.
pub(crate) fn tool(program: &str) -> Command {
    let mut command = Command::new(program);
    command.stdin_closed().c_locale();
    command
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}
