//! `hvnode-install`: puts hvnode on a disk from a kickstart. Everything is
//! read and checked first — the kickstart, the disks, the image and its
//! checksum — and the plan printed; only then is anything written. The
//! boot loaders are the last thing written, so a failure on the way leaves
//! a disk that does not boot half an install, and the installer wipes the
//! partition table it made and says where it stopped.

pub mod accounts;
pub mod disks;
pub mod firewall;
pub mod install;
pub mod interactive;
pub mod labels;
pub mod payload;
pub mod power;
pub mod scripts;
pub mod source;
pub mod storage;
pub mod target;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The install log: every line goes to the console and to the log file,
/// which is copied to the installed system's `/var/log/hvnode/`.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    file: Mutex<File>,
    started: Instant,
}

impl Log {
    pub fn create(path: &Path) -> anyhow::Result<Log> {
        if let Some(d) = path.parent() {
            fs::create_dir_all(d)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("opening the install log {}: {e}", path.display()))?;
        Ok(Log {
            path: path.into(),
            file: Mutex::new(file),
            started: Instant::now(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A line for the administrator (console) and the log.
    pub fn line(&self, s: &str) {
        let t = self.started.elapsed().as_secs();
        let line = format!("[{:>3}:{:02}] {s}", t / 60, t % 60);
        println!("{line}");
        self.raw(&format!("{line}\n"));
    }

    /// Text for the log only (program output).
    pub fn raw(&self, s: &str) {
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(s.as_bytes());
        }
    }
}
