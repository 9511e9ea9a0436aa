//! Unattended installs in a guest: the kickstart the tests and the install
//! benchmark use, waiting for `hvnode-install` to finish (the driver's
//! [`wait_installed`]), and booting the installed disk to a root shell.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
pub use qemu::install::{InstallTimes, wait_installed};

use crate::{Boot, Config, Firmware, Vm};

/// The root password of the test kickstarts.
pub const ROOT_PASSWORD: &str = "hvnode-test-pw";
/// The admin account the test kickstart makes (member of `sudo`, its
/// password root's): the web console refuses root.
pub const ADMIN_USER: &str = "nodeadmin";
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
    /// password, an admin account ([`ADMIN_USER`]), a time zone, SELinux enforcing and a `%post` that leaves a
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
user --name={ADMIN_USER} --groups=sudo --plaintext --password={ROOT_PASSWORD}
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
    fn the_kickstart_powers_off_only_when_asked() {
        let mut u = Unattended::from_medium(&"a".repeat(64), "thinp");
        assert!(u.kickstart().contains("\npoweroff\n"));
        assert!(u.kickstart().contains("autopart --type=thinp"));
        u.poweroff = false;
        assert!(!u.kickstart().contains("poweroff"));
    }
}
