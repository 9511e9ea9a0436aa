//! Waiting for an unattended install in a guest: `hvnode-install`, started
//! by the boot, installs and powers the guest off.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::Vm;

/// How long an install took, from the guest's serial console.
#[derive(Debug, Clone, Copy)]
pub struct InstallTimes {
    /// From qemu's start to the installer's first line.
    pub to_installer: f64,
    /// The installer's own clock at "hvnode is installed".
    pub install: f64,
    /// From qemu's start to the guest's exit (after its poweroff).
    pub total: f64,
}

/// Reads the `[ m:ss]` stamp that ends `text` at its last line.
fn last_stamp(text: &str) -> Option<f64> {
    let line = text.lines().last()?;
    let open = line.rfind('[')?;
    let close = open + line[open..].find(']')?;
    let (m, s) = line[open + 1..close].trim().split_once(':')?;
    Some(m.trim().parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// Waits for `hvnode-install` (started by the boot) to finish and the guest
/// to power off; an installer error fails with its message.
pub fn wait_installed(vm: &mut Vm, log: &Path, timeout: Duration) -> Result<InstallTimes> {
    let started = Instant::now();
    vm.console
        .expect_any(&["] kickstart:", "] reading the kickstart"], timeout)
        .map_err(|e| {
            anyhow::anyhow!(
                "the installer never started ({e}); serial log {}",
                log.display()
            )
        })?;
    let to_installer = vm.uptime();
    let (i, got) = vm
        .console
        .expect_any(
            &["hvnode is installed", "hvnode-install: error"],
            timeout.saturating_sub(started.elapsed()),
        )
        .map_err(|e| anyhow::anyhow!("install: {e}; serial log {}", log.display()))?;
    if i == 1 {
        let rest = vm
            .console
            .expect("\n", Duration::from_secs(60))
            .unwrap_or_default();
        bail!("the install failed: {rest}; serial log {}", log.display());
    }
    let install = last_stamp(&got).unwrap_or(f64::NAN);
    vm.wait_exit(Duration::from_secs(600))
        .map_err(|e| anyhow::anyhow!("{e}; serial log {}", log.display()))?;
    Ok(InstallTimes {
        to_installer,
        install,
        total: vm.uptime(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installer_clock_is_read_from_its_last_line() {
        assert_eq!(last_stamp("x\n[  2:11] hvnode is installed"), Some(131.0));
        assert_eq!(last_stamp("[ 0:05] a\n[ 12:01] b"), Some(721.0));
        assert_eq!(last_stamp("no stamp"), None);
    }
}
