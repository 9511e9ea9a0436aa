//! The configure stage: SELinux enforcing with sVirt, libvirt, an empty
//! machine-id, enabled services, the login banner, image identity, the
//! os-release variant.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
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

/// The image's os-release `VARIANT`, for people.
pub const OS_RELEASE_VARIANT: &str = "hvnode hypervisor node";

/// The image's os-release `VARIANT_ID`, for programs. oVirt Engine's host
/// deploy roles take a host whose os-release has the line
/// `VARIANT_ID="ovirt-node"` for an oVirt Node (an imgbased image); hvnode is
/// not one, so it names itself (docs/engine.md, "The node's os-release").
pub const OS_RELEASE_VARIANT_ID: &str = "hvnode";

/// Where os-release lives; on Debian a symlink to `/usr/lib/os-release`.
pub const OS_RELEASE: &str = "/etc/os-release";

/// `text`, an os-release file, with `VARIANT` and `VARIANT_ID` set: a line
/// that assigns either is replaced where it stands (a second one dropped), a
/// missing one is appended; every other byte is kept.
pub fn os_release_with_variant(text: &str) -> String {
    let wanted = [
        ("VARIANT", OS_RELEASE_VARIANT),
        ("VARIANT_ID", OS_RELEASE_VARIANT_ID),
    ];
    let mut done = [false; 2];
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let key = line
            .trim_start()
            .split_once('=')
            .map(|(key, _)| key.trim_end());
        match wanted.iter().position(|(k, _)| Some(*k) == key) {
            Some(i) if !done[i] => {
                let (k, v) = wanted[i];
                let _ = writeln!(out, "{k}=\"{v}\"");
                done[i] = true;
            }
            Some(_) => {}
            None => out.push_str(line),
        }
    }
    for (i, (k, v)) in wanted.iter().enumerate() {
        if !done[i] {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            let _ = writeln!(out, "{k}=\"{v}\"");
        }
    }
    out
}

/// `rel`, a path inside the image, with every symlink along it resolved
/// inside the image: an absolute link target is taken from the image's
/// root, `..` never climbs above it, so nothing on the build host is read
/// or written. The last component need not exist.
pub fn resolve_in_image(root: &Root, rel: &str) -> Result<String> {
    const MAX_LINKS: usize = 40;
    // Components still to walk, the next one last.
    let mut todo: Vec<OsString> = Vec::new();
    let push_all = |todo: &mut Vec<OsString>, path: &Path| {
        let parts: Vec<_> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        todo.extend(parts.into_iter().rev());
    };
    push_all(&mut todo, Path::new(rel));
    let mut done = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&part);
        let on_host = root
            .path
            .join(candidate.strip_prefix("/").unwrap_or(&candidate));
        let is_link = std::fs::symlink_metadata(&on_host)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if !is_link {
            done = candidate;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            bail!(
                "resolving {rel} inside the image: more than {MAX_LINKS} symlinks (a loop?); \
                 look at the links along it in the image tree {}",
                root.path.display()
            );
        }
        let target = std::fs::read_link(&on_host)
            .with_context(|| format!("reading the symlink {}", on_host.display()))?;
        if target.is_absolute() {
            done = PathBuf::from("/");
        }
        push_all(&mut todo, &target);
    }
    done.to_str().map(str::to_string).with_context(|| {
        format!(
            "resolving {rel} inside the image: it leads to {}, which is not UTF-8",
            done.display()
        )
    })
}

/// Sets `VARIANT` and `VARIANT_ID` in the image's os-release: in the file
/// `/etc/os-release` links to (Debian's `/usr/lib/os-release`), leaving the
/// link and every other line as they are. Running it again changes nothing.
pub fn set_os_release_variant(root: &Root) -> Result<()> {
    let file = resolve_in_image(root, OS_RELEASE)?;
    let on_host = root.join(&file);
    let text = std::fs::read_to_string(&on_host).with_context(|| {
        format!(
            "reading the image's os-release ({OS_RELEASE}, which leads to {file}): Debian's \
             base-files package provides it; check that the bootstrap stage installed it"
        )
    })?;
    let updated = os_release_with_variant(&text);
    if updated == text {
        return Ok(());
    }
    let mode = std::fs::metadata(&on_host)
        .with_context(|| format!("looking at {}", on_host.display()))?
        .permissions()
        .mode()
        & 0o7777;
    root.write(&file, updated.as_bytes(), mode)
        .with_context(|| format!("setting VARIANT_ID in the image's os-release ({file})"))
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
    // What the node is, for the engine's roles and anyone reading os-release.
    set_os_release_variant(root)?;
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
    systemctl("mask", &recipe.services.mask)?;
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

    /// /usr/lib/os-release as Debian 12's base-files ships it.
    const DEBIAN_OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\
        NAME=\"Debian GNU/Linux\"\n\
        VERSION_ID=\"12\"\n\
        VERSION=\"12 (bookworm)\"\n\
        VERSION_CODENAME=bookworm\n\
        ID=debian\n\
        HOME_URL=\"https://www.debian.org/\"\n\
        SUPPORT_URL=\"https://www.debian.org/support\"\n\
        BUG_REPORT_URL=\"https://bugs.debian.org/\"\n";

    const VARIANT_LINES: &str = "VARIANT=\"hvnode hypervisor node\"\nVARIANT_ID=\"hvnode\"\n";

    /// An image tree with Debian's os-release: the file in /usr/lib and
    /// /etc/os-release a symlink to it, `link` as its target.
    fn debian_root(link: &str) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root {
            path: dir.path().to_path_buf(),
        };
        root.write("/usr/lib/os-release", DEBIAN_OS_RELEASE.as_bytes(), 0o644)
            .unwrap();
        std::fs::create_dir_all(root.join("/etc")).unwrap();
        std::os::unix::fs::symlink(link, root.join(OS_RELEASE)).unwrap();
        (dir, root)
    }

    #[test]
    fn os_release_gets_the_variant_in_the_file_the_link_names() {
        let (_dir, root) = debian_root("../usr/lib/os-release");
        set_os_release_variant(&root).unwrap();
        let target = root.join("/usr/lib/os-release");
        let text = std::fs::read_to_string(&target).unwrap();
        // Debian's lines byte for byte, then ours.
        assert_eq!(text, format!("{DEBIAN_OS_RELEASE}{VARIANT_LINES}"));
        // The symlink is still the symlink it was.
        let link = root.join(OS_RELEASE);
        assert!(link.is_symlink());
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../usr/lib/os-release")
        );
        assert_eq!(
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
            0o644
        );
        // The exact line the engine's roles test for an oVirt Node is absent.
        assert!(!text.lines().any(|l| l == "VARIANT_ID=\"ovirt-node\""));
        // What the node's own reader makes of it.
        let parsed = hostinfo::system::parse_os_release(&text);
        let value = |key: &str| {
            parsed
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value("VARIANT_ID"), Some("hvnode"));
        assert_eq!(value("PRETTY_NAME"), Some("Debian GNU/Linux 12 (bookworm)"));

        // Again: the same bytes, the file not even rewritten.
        let before = std::fs::metadata(&target).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        set_os_release_variant(&root).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), text);
        assert_eq!(
            std::fs::metadata(&target).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn an_absolute_link_is_followed_inside_the_image() {
        // "/usr/lib/os-release" must be the image's, never the build host's.
        let (_dir, root) = debian_root("/usr/lib/os-release");
        assert_eq!(
            resolve_in_image(&root, OS_RELEASE).unwrap(),
            "/usr/lib/os-release"
        );
        set_os_release_variant(&root).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("/usr/lib/os-release")).unwrap(),
            format!("{DEBIAN_OS_RELEASE}{VARIANT_LINES}")
        );
        // `..` does not climb out of the image either.
        std::fs::remove_file(root.join(OS_RELEASE)).unwrap();
        std::os::unix::fs::symlink("../../../../../usr/lib/os-release", root.join(OS_RELEASE))
            .unwrap();
        assert_eq!(
            resolve_in_image(&root, OS_RELEASE).unwrap(),
            "/usr/lib/os-release"
        );
    }

    #[test]
    fn a_plain_os_release_file_is_edited_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root {
            path: dir.path().to_path_buf(),
        };
        root.write(OS_RELEASE, b"NAME=x\nID=x", 0o444).unwrap();
        set_os_release_variant(&root).unwrap();
        let target = root.join(OS_RELEASE);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            format!("NAME=x\nID=x\n{VARIANT_LINES}")
        );
        assert_eq!(
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
            0o444
        );
    }

    #[test]
    fn existing_variant_lines_are_replaced_where_they_stand() {
        let text = "NAME=x\nVARIANT=Server\nID=x\nVARIANT_ID=\"ovirt-node\"\n# VARIANT_ID=kept\nVARIANT_ID=again\n";
        assert_eq!(
            os_release_with_variant(text),
            "NAME=x\nVARIANT=\"hvnode hypervisor node\"\nID=x\nVARIANT_ID=\"hvnode\"\n# VARIANT_ID=kept\n"
        );
        // A longer key that starts the same is left alone.
        assert_eq!(
            os_release_with_variant("VARIANT_IDX=1\n"),
            format!("VARIANT_IDX=1\n{VARIANT_LINES}")
        );
        assert_eq!(os_release_with_variant(""), VARIANT_LINES);
    }

    #[test]
    fn a_missing_os_release_says_where_it_comes_from() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root {
            path: dir.path().to_path_buf(),
        };
        let err = format!("{:#}", set_os_release_variant(&root).unwrap_err());
        assert!(err.contains("/etc/os-release"), "{err}");
        assert!(err.contains("base-files"), "{err}");
    }

    #[test]
    fn a_symlink_loop_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root {
            path: dir.path().to_path_buf(),
        };
        std::fs::create_dir_all(root.join("/etc")).unwrap();
        std::os::unix::fs::symlink("os-release", root.join(OS_RELEASE)).unwrap();
        let err = format!("{:#}", resolve_in_image(&root, OS_RELEASE).unwrap_err());
        assert!(err.contains("symlinks"), "{err}");
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
