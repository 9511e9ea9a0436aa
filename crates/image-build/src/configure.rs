//! The configure stage: SELinux enforcing with sVirt, libvirt, an empty
//! machine-id, enabled services, the login banner, image identity.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;

use crate::payload::installable;
use crate::recipe::Recipe;
use crate::rootfs::{Chroot, Root};

pub use hostinfo::ImageIdentity;

/// Sets `key = value` in a config file of `key = value` lines, replacing an
/// existing (possibly commented-out) line or appending one.
pub fn set_conf_line(text: &str, key: &str, value: &str) -> String {
    let wanted = format!("{key} = {value}");
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        let bare = line.trim_start().trim_start_matches('#').trim_start();
        let is_key = bare
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_key && !done && !line.trim_start().starts_with('#') {
            out.push_str(&wanted);
            done = true;
        } else if is_key && !done && bare.len() < 80 {
            // Keep the documented default, put ours right after it.
            out.push_str(line);
            out.push('\n');
            out.push_str(&wanted);
            done = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !done {
        let _ = writeln!(out, "{wanted}");
    }
    out
}

/// The SELinux `booleans.local` file libsemanage reads when rebuilding.
pub fn booleans_local(booleans: &std::collections::BTreeMap<String, bool>) -> String {
    booleans
        .iter()
        .map(|(k, v)| format!("{k}={}\n", u8::from(*v)))
        .collect()
}

/// The banner on the console login prompt: agetty expands `\4` to the
/// machine's IPv4 address.
/// libvirt's SELinux driver labels a KVM guest's qemu with the first line
/// of this file and an emulated (TCG) guest's with the second. TCG's code
/// generator needs executable memory: the reference policy's
/// svirt_prot_exec_t allows it, svirt_t does not (the boolean
/// `virt_use_execmem` would give it to every guest). The policy ships only the
/// first line; image/selinux/hvnode.te gives svirt_prot_exec_t what svirt_t
/// has besides.
pub const VIRTUAL_DOMAIN_CONTEXT: &str =
    "system_u:system_r:svirt_t:s0\nsystem_u:system_r:svirt_prot_exec_t:s0\n";

pub fn issue(nvr: &str) -> String {
    format!("hvnode {nvr} (\\l)\n\nNode console: https://\\4:9090/\n\n")
}

pub fn configure(root: &Root, recipe: &Recipe, units: &[String], epoch: i64) -> Result<()> {
    let nvr = recipe.nvr();
    // SELinux mode and policy type.
    root.write(
        "/etc/selinux/config",
        format!(
            "SELINUX={}\nSELINUXTYPE=default\n",
            recipe.selinux.mode.as_str()
        )
        .as_bytes(),
        0o644,
    )?;
    // libvirt confines each VM with sVirt.
    let qemu_conf = root
        .read_to_string("/etc/libvirt/qemu.conf")
        .unwrap_or_default();
    root.write(
        "/etc/libvirt/qemu.conf",
        set_conf_line(&qemu_conf, "security_driver", "\"selinux\"").as_bytes(),
        0o600,
    )?;
    // Booleans and local policy modules, compiled into the image's policy.
    {
        let chroot = Chroot::enter(root)?;
        if !recipe.selinux.booleans.is_empty() {
            root.write(
                "/var/lib/selinux/default/active/booleans.local",
                booleans_local(&recipe.selinux.booleans).as_bytes(),
                0o644,
            )?;
        }
        let modules: Vec<String> = std::fs::read_dir(root.join("/usr/share/hvnode/selinux"))
            .map(|d| {
                let mut v: Vec<String> = d
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.ends_with(".cil") || n.ends_with(".pp"))
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        // Installing modules rebuilds the policy (booleans included); with
        // none to install, rebuild it explicitly.
        let mut c = chroot.command("semodule");
        c.arg("-n");
        if modules.is_empty() {
            c.arg("-B");
        }
        for m in &modules {
            c.arg("-i").arg(format!("/usr/share/hvnode/selinux/{m}"));
        }
        c.run()
            .context("building the image's SELinux policy (semodule -B)")?;
        root.write(
            "/etc/selinux/default/contexts/virtual_domain_context",
            VIRTUAL_DOMAIN_CONTEXT.as_bytes(),
            0o644,
        )?;
    }
    // A machine-id is made on first boot, never shipped.
    root.write("/etc/machine-id", b"", 0o444)?;
    let dbus_id = root.join("/var/lib/dbus/machine-id");
    if dbus_id.exists() && !dbus_id.is_symlink() {
        std::fs::remove_file(&dbus_id)?;
    }
    // SSH host keys are made on first boot (hvnode-ssh-keygen.service).
    for e in std::fs::read_dir(root.join("/etc/ssh"))?.filter_map(Result::ok) {
        if e.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(e.path())?;
        }
    }
    root.write("/etc/hostname", b"hvnode\n", 0o644)?;
    root.write(
        "/etc/hosts",
        b"127.0.0.1\tlocalhost\n127.0.1.1\thvnode\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        0o644,
    )?;
    root.write("/etc/issue", issue(&nvr).as_bytes(), 0o644)?;
    let identity = ImageIdentity {
        name: recipe.name.clone(),
        version: recipe.version.clone(),
        release: recipe.release.clone(),
        nvr,
        build_epoch: epoch,
        kernel_args: recipe.kernel.args.clone(),
    };
    root.write(
        hostinfo::IMAGE_IDENTITY,
        identity.to_file_text()?.as_bytes(),
        0o644,
    )?;
    // Services.
    let mut enable: Vec<String> = recipe.services.enable.clone();
    for u in units {
        let text = root.read_to_string(&format!("/usr/lib/systemd/system/{u}"))?;
        if installable(&text) && !u.contains('@') {
            enable.push(u.clone());
        }
    }
    let systemctl = |verb: &str, what: &[String]| -> Result<()> {
        if what.is_empty() {
            return Ok(());
        }
        Command::new("systemctl")
            .arg(format!("--root={}", root.path.display()))
            .arg(verb)
            .args(what)
            .run()
            .with_context(|| format!("systemctl {verb} in the image"))
    };
    systemctl("enable", &enable)?;
    systemctl("disable", &recipe.services.disable)?;
    systemctl("set-default", &["multi-user.target".to_string()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_lines_are_replaced_or_added() {
        let text = "# The security driver\n#security_driver = \"selinux\"\nuser = \"qemu\"\n";
        let out = set_conf_line(text, "security_driver", "\"selinux\"");
        assert_eq!(
            out,
            "# The security driver\n#security_driver = \"selinux\"\nsecurity_driver = \"selinux\"\nuser = \"qemu\"\n"
        );
        let out = set_conf_line(
            "security_driver = \"none\"\n",
            "security_driver",
            "\"selinux\"",
        );
        assert_eq!(out, "security_driver = \"selinux\"\n");
        let out = set_conf_line("a = 1\n", "security_driver", "\"selinux\"");
        assert_eq!(out, "a = 1\nsecurity_driver = \"selinux\"\n");
        // A longer key that starts the same is left alone.
        let out = set_conf_line("security_driver_x = 1\n", "security_driver", "\"selinux\"");
        assert_eq!(
            out,
            "security_driver_x = 1\nsecurity_driver = \"selinux\"\n"
        );
    }

    #[test]
    fn booleans_and_banner() {
        let mut b = std::collections::BTreeMap::new();
        b.insert("virt_use_execmem".to_string(), true);
        b.insert("virt_use_nfs".to_string(), false);
        assert_eq!(booleans_local(&b), "virt_use_execmem=1\nvirt_use_nfs=0\n");
        assert!(issue("hvnode-1.0-1").contains("https://\\4:9090/"));
    }
}
