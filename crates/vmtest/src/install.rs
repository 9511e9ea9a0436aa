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
/// The boot loader password of the test kickstarts (`bootloader
/// --password`): every boot of an installed node, trial boots included,
/// must go through grub's menu without it.
pub const GRUB_PASSWORD: &str = "hvnode-grub-pw";

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

    /// The kickstart: the whole disk, the given layout, a boot loader
    /// password ([`GRUB_PASSWORD`]), DHCP, a root password, an admin account ([`ADMIN_USER`]), a time zone, SELinux enforcing and a `%post` that leaves a
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
bootloader --location=mbr --boot-drive={drive} --append="console=ttyS0,115200" --password={GRUB_PASSWORD}
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

/// What grub's menu prints under the entries (on the serial console the
/// lines come between escape sequences, so one phrase of each).
const GRUB_MENU: [&str; 2] = ["`e' to edit", "Press enter to boot"];

/// At grub's menu of a node installed with [`GRUB_PASSWORD`]: editing the
/// default entry asks for grub's superuser, a wrong password is refused,
/// the right one opens the entry; then back to the menu and boot it, as
/// every unattended boot does without a password (the entries are
/// `--unrestricted`).
pub fn check_grub_password(vm: &mut Vm, timeout: Duration) -> Result<()> {
    let step = Duration::from_secs(30);
    let c = &mut vm.console;
    c.expect_any(&GRUB_MENU, timeout)
        .map_err(|e| anyhow::anyhow!("no grub menu: {e}"))?;
    // The wrong password must be refused once; the right one may be tried
    // again when it was refused, since grub does not echo it and OVMF's
    // serial console can lose a key even typed slowly: three refusals of
    // the right password fail the check.
    let mut tries = 0;
    for (password, want) in [
        ("wrong-password", "access denied"),
        (GRUB_PASSWORD, "vmlinuz"),
    ] {
        loop {
            tries += 1;
            if tries > 1 {
                // Back at the menu after the refusal, and settled: a key
                // sent while grub still shows its error only dismisses it,
                // and on UEFI the firmware's console repeats on the serial
                // line all that grub draws.
                c.expect_any(&GRUB_MENU, step)
                    .map_err(|e| anyhow::anyhow!("no grub menu after the refusal: {e}"))?;
                std::thread::sleep(Duration::from_secs(3));
            }
            c.send("e")?;
            c.expect("Enter username:", step)
                .map_err(|e| anyhow::anyhow!("editing an entry asked for no user: {e}"))?;
            c.type_slowly("root\r", KEY_PAUSE)?;
            c.expect("Enter password:", step)?;
            c.type_slowly(&format!("{password}\r"), KEY_PAUSE)?;
            let (got, _) = c.expect_any(&[want, "access denied"], step).map_err(|e| {
                anyhow::anyhow!("grub's answer to the password {password:?} is not {want:?}: {e}")
            })?;
            if got == 0 {
                break;
            }
            if tries >= 4 {
                anyhow::bail!("grub refused the right password {password:?} three times");
            }
        }
    }
    // Out of the editor without booting what it holds, then the default
    // entry (the menu's countdown stopped at the first key).
    c.send("\x1b")?;
    c.expect_any(&GRUB_MENU, step)
        .map_err(|e| anyhow::anyhow!("no grub menu after leaving the editor: {e}"))?;
    std::thread::sleep(Duration::from_secs(3));
    c.send("\r")?;
    Ok(())
}

/// Time between keys typed at grub's prompts (see the console's `type_slowly`).
const KEY_PAUSE: Duration = Duration::from_millis(150);

/// Boots `disk` with `firmware` and logs in as root.
pub fn boot_installed(
    firmware: Firmware,
    disk: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<Installed> {
    boot_installed_with(firmware, disk, log, timeout, false)
}

/// [`boot_installed`], first trying grub's password at its menu
/// ([`check_grub_password`]) when `grub_password` is set.
pub fn boot_installed_with(
    firmware: Firmware,
    disk: &Path,
    log: &Path,
    timeout: Duration,
    grub_password: bool,
) -> Result<Installed> {
    let mut cfg = Config::new(firmware, Boot::Disk);
    cfg.disks = vec![disk.to_path_buf()];
    let mut vm = Vm::start(&cfg, log)?;
    if grub_password {
        check_grub_password(&mut vm, timeout)
            .map_err(|e| anyhow::anyhow!("{e:#}; serial log {}", log.display()))?;
    }
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
