//! `hvnode-install`: puts hvnode on a disk from a kickstart. Everything is
//! read and checked first — the kickstart, the disks, the image and its
//! signature or checksum — and the plan printed; only then is anything
//! written. The
//! boot loaders are the last thing written, so a failure on the way leaves
//! a disk that does not boot half an install, and the installer wipes the
//! partition table it made and says where it stopped.

pub mod accounts;
pub mod disks;
pub mod firewall;
pub mod grub_password;
pub mod install;
pub mod interactive;
pub mod labels;
pub mod medium;
pub mod payload;
pub mod power;
pub mod scripts;
pub mod source;
pub mod storage;
pub mod target;
pub mod volumes;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Opens a log for appending; one that does not exist yet is created
/// readable by root only (mode 0600), as Anaconda creates its logs: the
/// install's logs may hold what the kickstart's scripts print, secrets
/// included. An existing file keeps its mode.
pub fn open_private_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The install log: every line goes to the console and to the log file
/// (mode 0600), which is copied to the installed system's `/var/log/hvnode/`.
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
        let file = open_private_log(path).map_err(|e| {
            anyhow::anyhow!(
                "opening the install log {}: {e}; give a work folder the installer can write (--work DIR)",
                path.display()
            )
        })?;
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

/// Copies a log to `to` (the installed system's copy), mode 0600 from its
/// creation (temporary file, then rename).
pub fn keep_log(from: &Path, to: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = fs::read(from).with_context(|| format!("reading the log {}", from.display()))?;
    fsutil::write_atomic(to, &text, fsutil::Options::mode(0o600))
        .with_context(|| format!("keeping the log {} as {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_install_log_is_for_root_only() {
        let d = tempfile::tempdir().unwrap();
        let log = Log::create(&d.path().join("work/install.log")).unwrap();
        log.line("reading the kickstart");
        assert_eq!(mode(log.path()), 0o600);
        let kept = d.path().join("sysroot/var/log/hvnode/install.log");
        keep_log(log.path(), &kept).unwrap();
        assert_eq!(mode(&kept), 0o600);
        assert!(
            fs::read_to_string(&kept)
                .unwrap()
                .ends_with("] reading the kickstart\n")
        );
    }

    #[test]
    fn the_commands_log_is_for_root_only() {
        use command::CommandExt;
        let d = tempfile::tempdir().unwrap();
        let devlog = d.path().join("work/commands.log");
        fs::create_dir_all(devlog.parent().unwrap()).unwrap();
        // What the install does before its first command.
        open_private_log(&devlog).unwrap();
        std::process::Command::new("echo")
            .arg("formatted")
            .run_appending(&devlog)
            .unwrap();
        assert_eq!(mode(&devlog), 0o600);
        let kept = d.path().join("sysroot/var/log/hvnode/install-commands.log");
        keep_log(&devlog, &kept).unwrap();
        assert_eq!(
            fs::read_to_string(&kept).unwrap(),
            "$ echo formatted\nformatted\n"
        );
        assert_eq!(mode(&kept), 0o600);
    }
}
