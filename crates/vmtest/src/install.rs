//! Unattended installs in a guest: the kickstart the tests and the install
//! benchmark use, waiting for `hvnode-install` to finish, and booting the
//! installed disk to a root shell.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{Boot, Config, Firmware, Vm};

/// The root password of the test kickstarts.
pub const ROOT_PASSWORD: &str = "hvnode-test-pw";
/// The host name the test kickstarts set.
pub const HOSTNAME: &str = "node1.example.com";

/// What an unattended test install does.
#[derive(Debug, Clone)]
pub struct Unattended {
    /// `liveimg --url=` (the live medium's image, or one served over http).
    pub url: String,
    pub sha256: String,
    /// `autopart --type=` (thinp, btrfs, plain).
    pub scheme: String,
    /// The disk to install on (`vda`).
    pub drive: String,
    /// The last command: `poweroff`, or none when run from a shell.
    pub poweroff: bool,
}

impl Unattended {
    /// An install of the image on the live medium on `vda`, powering off.
    pub fn from_medium(sha256: &str, scheme: &str) -> Unattended {
        Unattended {
            url: "file:///run/initramfs/live/LiveOS/squashfs.img".into(),
            sha256: sha256.into(),
            scheme: scheme.into(),
            drive: "vda".into(),
            poweroff: true,
        }
    }

    /// The kickstart: the whole disk, the given layout, DHCP, a root
    /// password, a time zone, SELinux enforcing and a `%post` that leaves a
    /// trace (`/etc/hvnode-post-ran`) and the live system's kernel log up to
    /// then (`/var/log/hvnode/install-dmesg.log`: the installed node's
    /// checks find the installer's SELinux denials there).
    pub fn kickstart(&self) -> String {
        let Unattended {
            url,
            sha256,
            scheme,
            drive,
            poweroff,
        } = self;
        let last = if *poweroff { "poweroff\n" } else { "" };
        format!(
            r#"# hvnode install test: unattended, {scheme} layout on {drive}.
liveimg --url={url} --checksum={sha256}
ignoredisk --only-use={drive}
zerombr
clearpart --all --initlabel --drives={drive}
autopart --type={scheme}
bootloader --location=mbr --boot-drive={drive} --append="console=ttyS0,115200"
network --bootproto=dhcp --device=link --hostname={HOSTNAME} --activate
rootpw --plaintext {ROOT_PASSWORD}
timezone --utc Europe/Paris
selinux --enforcing
text
{last}
%post --erroronfail --log=/var/log/hvnode/post.log
echo "post ran in $(cat /etc/hostname)" > /etc/hvnode-post-ran
mkdir -p /var/log/hvnode
dmesg > /var/log/hvnode/install-dmesg.log
%end
"#
        )
    }
}

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

/// A guest booted from an installed disk, logged in as root with a
/// prepared shell.
#[derive(Debug)]
pub struct Installed {
    pub vm: Vm,
    pub log: PathBuf,
    /// Seconds from qemu's start to the login prompt.
    pub login_prompt: f64,
}

/// Boots `disk` with `firmware` and logs in as root.
pub fn boot_installed(
    firmware: Firmware,
    disk: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<Installed> {
    let mut cfg = Config::new(firmware, Boot::Disk);
    cfg.disks = vec![disk.to_path_buf()];
    let mut vm = Vm::start(&cfg, log)?;
    vm.console
        .expect("login:", timeout)
        .map_err(|e| anyhow::anyhow!("no login prompt ({e}); serial log {}", log.display()))?;
    let login_prompt = vm.uptime();
    vm.console.send("root\n")?;
    vm.console.expect("Password:", Duration::from_secs(120))?;
    vm.console.send(&format!("{ROOT_PASSWORD}\n"))?;
    vm.console.expect(":~#", Duration::from_secs(300))?;
    vm.console.prepare_shell()?;
    Ok(Installed {
        vm,
        log: log.to_path_buf(),
        login_prompt,
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

    #[test]
    fn the_kickstart_powers_off_only_when_asked() {
        let mut u = Unattended::from_medium(&"a".repeat(64), "thinp");
        assert!(u.kickstart().contains("\npoweroff\n"));
        assert!(u.kickstart().contains("autopart --type=thinp"));
        u.poweroff = false;
        assert!(!u.kickstart().contains("poweroff"));
    }
}
