//! What a booted node must be, checked from a root shell inside it: SELinux
//! enforcing, libvirtd up with the selinux security model, every enabled
//! hvnode unit up, the serial console's long device timeout, the image's
//! identity, and no AVC denial since boot. The live system and installed
//! nodes are checked alike.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail, ensure};

use crate::profile::{BootProfile, boot_profile};
use crate::{Console, Image};

const CMD: Duration = Duration::from_secs(300);

/// Waits for the boot to finish, keeps its profile in `dir` (see
/// [`crate::profile`]), and fails with the failed units' status and
/// journal unless the system is `running`.
pub fn boot_finished(
    c: &mut Console,
    dir: &Path,
    name: &str,
    timeout: Duration,
) -> Result<BootProfile> {
    let state = c.run("systemctl is-system-running --wait", timeout)?.1;
    let profile = boot_profile(c, dir, name)?;
    eprintln!(
        "{name}: {} (plot {})",
        profile.summary,
        profile.svg.display()
    );
    if !state.trim().ends_with("running") {
        let failed = c.failed_units(CMD)?;
        bail!(
            "{name}: system state {:?}, failed units:\n{failed}",
            state.trim()
        );
    }
    Ok(profile)
}

/// The node's own checks (see the module's text); `slow` bounds libvirt's
/// first capability probe, which runs qemu (TCG inside TCG).
pub fn check_node(c: &mut Console, name: &str, img: &Image, slow: Duration) -> Result<()> {
    ensure!(
        c.check("getenforce", CMD)?.trim() == "Enforcing",
        "{name}: SELinux is not enforcing"
    );
    let active = c.check(
        "systemctl is-active libvirtd.service hvnode-helper.service hvnode-agent.service",
        CMD,
    )?;
    ensure!(
        active.split_whitespace().collect::<Vec<_>>() == ["active", "active", "active"],
        "{name}: libvirtd, hvnode-helper and hvnode-agent: {active}"
    );
    let secmodel = c.check(
        "virsh -c qemu:///system capabilities | grep -c '<model>selinux</model>'",
        slow,
    )?;
    ensure!(
        secmodel.trim() == "1",
        "{name}: libvirt's security model is not selinux"
    );
    // Every hvnode unit that is enabled is up (or, for one-shot units that
    // found nothing to do, not failed).
    let units = c.check(
        "systemctl list-unit-files 'hvnode-*' --state=enabled --no-legend --plain | cut -d' ' -f1",
        CMD,
    )?;
    let units: Vec<&str> = units.split_whitespace().collect();
    ensure!(
        units.contains(&"hvnode-agent.service"),
        "{name}: enabled hvnode units {units:?}"
    );
    for u in &units {
        let (rc, _) = c.run(&format!("systemctl is-failed --quiet {u}"), CMD)?;
        ensure!(rc != 0, "{name}: {u} failed");
    }
    // The serial console's device waits past systemd's 90 s default, so a
    // slow boot still gets its serial login.
    let timeout = c.check(
        "systemctl show -p JobRunningTimeoutUSec dev-ttyS0.device",
        CMD,
    )?;
    ensure!(
        timeout.trim() == "JobRunningTimeoutUSec=10min",
        "{name}: {}",
        timeout.trim()
    );
    let identity = c.check("cat /usr/lib/hvnode/image.json", CMD)?;
    ensure!(identity.contains(&img.nvr), "{name}: {identity}");
    no_avc(c, name)
}

/// No SELinux denial since boot.
pub fn no_avc(c: &mut Console, name: &str) -> Result<()> {
    let avcs = c.run("dmesg | grep 'avc:  denied'", CMD)?.1;
    let count = avcs.lines().filter(|l| l.contains("avc:")).count();
    eprintln!("{name}: {count} AVC denials since boot");
    ensure!(count == 0, "{name}: AVC denials since boot:\n{avcs}");
    Ok(())
}

/// The node's web console as a browser on the node reaches it.
pub const CONSOLE_URL: &str = "https://127.0.0.1:9090";

/// Logs in to the node's web console as the kickstart's admin
/// ([`crate::install::ADMIN_USER`]) with curl inside the guest (PAM, over
/// TLS), after checking that root is refused, and turns on the session's
/// administrative access with the same password (sudo's rules for the
/// `sudo` group allow it); the session's cookie is kept in `/tmp/jar` for
/// [`console_post`]. The login's PAM session must be held by the privileged
/// helper (hvnode-helper.service), not by the web process.
pub fn console_login(c: &mut Console) -> Result<()> {
    let login = |user: &str| {
        format!(
            "curl -sk -c /tmp/jar -o /dev/null -w '%{{http_code}}' -H 'Origin: {CONSOLE_URL}' --data-urlencode username={user} --data-urlencode password={} {CONSOLE_URL}/login",
            crate::install::ROOT_PASSWORD
        )
    };
    let root = c.check(&login("root"), CMD)?;
    ensure!(
        root.trim() == "401",
        "the console's login answered {root} to root's right password (root is refused)"
    );
    let answer = c.check(&login(crate::install::ADMIN_USER), CMD)?;
    ensure!(
        answer.trim().starts_with('3'),
        "the console's login answered {answer}"
    );
    // Every session starts limited (read-only).
    let admin = c.check(
        &console_post(
            "/api/v1/session/admin",
            &format!(
                "--data-urlencode password={}",
                crate::install::ROOT_PASSWORD
            ),
        ),
        CMD,
    )?;
    ensure!(
        admin.trim_end().ends_with("200"),
        "turning on the console session's administrative access answered {admin}"
    );
    // The login's PAM session is the privileged helper's, not the web process's.
    let opened = |unit: &str| {
        format!(
            "journalctl -b -u {unit} -o cat | grep -c 'session opened for user {}' || true",
            crate::install::ADMIN_USER
        )
    };
    let helper = c.check(&opened("hvnode-helper.service"), CMD)?;
    let agent = c.check(&opened("hvnode-agent.service"), CMD)?;
    ensure!(
        helper.trim() != "0" && agent.trim() == "0",
        "the console login's PAM session was opened {} times by hvnode-helper and {} by \
         hvnode-agent (the helper must hold it)",
        helper.trim(),
        agent.trim()
    );
    Ok(())
}

/// A shell command that POSTs to the console's `path` in the session of
/// [`console_login`], with its CSRF token and Origin, `curl_args` added
/// (a body, its type); it prints the answer, then its status code on a
/// line of its own.
pub fn console_post(path: &str, curl_args: &str) -> String {
    console_request("POST", path, curl_args)
}

/// As [`console_post`], with another method (`PUT` for an upload).
pub fn console_request(method: &str, path: &str, curl_args: &str) -> String {
    format!(
        "token=$(curl -sk -b /tmp/jar {CONSOLE_URL}/api/v1/session | sed -n 's/.*\"csrf\" *: *\"\\([^\"]*\\)\".*/\\1/p'); curl -sk -b /tmp/jar -w '\\n%{{http_code}}' -X {method} -H \"X-CSRF-Token: $token\" -H 'Origin: {CONSOLE_URL}' {curl_args} {CONSOLE_URL}{path}"
    )
}
