//! The end of an install: reboot, power off or halt as the kickstart says.

use std::process::Command;

use anyhow::{Context, Result};
use kickstart::commands::RebootAction;
use kickstart::node::NodePlan;

use crate::interactive;

/// What the kickstart says to do once installed (`reboot`, `poweroff`,
/// `halt`), when the boot started the installer; asked when interactive.
pub fn finish(plan: &NodePlan, from_boot: bool) -> Result<()> {
    if !from_boot {
        return Ok(());
    }
    let verb = match plan.finish {
        Some(RebootAction::Poweroff) | Some(RebootAction::Shutdown) => "poweroff",
        Some(RebootAction::Halt) => "halt",
        Some(RebootAction::Reboot) => "reboot",
        None if plan.unattended => return Ok(()),
        None => {
            interactive::pause(
                "Installed. Remove the install medium, then press Enter to reboot.",
            )?;
            "reboot"
        }
    };
    power(verb)
}

/// Asks systemd to `verb` (poweroff, reboot, halt); when it does not take
/// over within a minute (seen in the live system: the request never came
/// back), the disks are synced and the kernel is asked directly — the
/// installed system is already unmounted and synced, and the live system
/// keeps nothing.
pub fn power(verb: &str) -> Result<()> {
    use std::time::{Duration, Instant};
    let mut child = Command::new("systemctl")
        .args(["--no-block", "--no-ask-password", verb])
        .stdin(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("asking systemd to {verb}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                // systemd stops this service as part of the shutdown.
                std::thread::sleep(Duration::from_secs(60));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    println!("systemd did not {verb}; asking the kernel directly");
    nix::unistd::sync();
    let how = match verb {
        "reboot" => nix::sys::reboot::RebootMode::RB_AUTOBOOT,
        "halt" => nix::sys::reboot::RebootMode::RB_HALT_SYSTEM,
        _ => nix::sys::reboot::RebootMode::RB_POWER_OFF,
    };
    nix::sys::reboot::reboot(how).with_context(|| format!("{verb} (reboot(2))"))?;
    Ok(())
}
