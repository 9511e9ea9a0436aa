//! The assemble stage: the hybrid ISO (BIOS and UEFI, CD and USB), the PXE
//! tree and the update bundle, each written under a temporary name and
//! renamed when complete.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;

use crate::recipe::Recipe;

/// The boot files every output carries.
#[derive(Debug, Clone)]
pub struct BootFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub squashfs: PathBuf,
    /// `kickstart/interactive-defaults.ks`, embedded in the ISO.
    pub kickstart: PathBuf,
}

/// Kernel arguments of a live boot from a medium labelled `label`.
pub fn live_args(recipe: &Recipe, root: &str) -> String {
    let mut args = vec![format!("root=live:{root}"), "rd.live.image".to_string()];
    args.extend(recipe.kernel.args.iter().cloned());
    args.join(" ")
}

/// The ISO's grub menu: install, live, and a troubleshooting submenu.
pub fn iso_grub_cfg(recipe: &Recipe) -> String {
    let nvr = recipe.nvr();
    let live = live_args(recipe, &format!("CDLABEL={}", recipe.outputs.iso_label));
    format!(
        r#"# hvnode {nvr}: boot menu of the installer ISO (BIOS and UEFI).
set default=0
set timeout=10
insmod all_video
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial

menuentry "Install hvnode {nvr}" --id install --hotkey=i {{
    linux /boot/vmlinuz {live} hvnode.install
    initrd /boot/initrd.img
}}

menuentry "Start hvnode {nvr} live" --id live --hotkey=l {{
    linux /boot/vmlinuz {live}
    initrd /boot/initrd.img
}}

submenu "Troubleshooting" --id troubleshooting {{
    menuentry "Start hvnode live in rescue mode (root shell)" --id rescue {{
        linux /boot/vmlinuz {live} systemd.unit=rescue.target
        initrd /boot/initrd.img
    }}
    menuentry "Start hvnode live with SELinux permissive" --id permissive {{
        linux /boot/vmlinuz {live} enforcing=0
        initrd /boot/initrd.img
    }}
    menuentry "Check the medium, then start live" --id check {{
        linux /boot/vmlinuz {live} rd.live.check
        initrd /boot/initrd.img
    }}
    menuentry "Boot from the first hard disk" --id disk {{
        exit
    }}
}}
"#
    )
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(p) = to.parent() {
        fs::create_dir_all(p)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Writes `out` (an `.iso`) via a temporary name.
pub fn iso(
    recipe: &Recipe,
    boot: &BootFiles,
    work: &Path,
    out: &Path,
    epoch: i64,
    log: &Path,
) -> Result<()> {
    let tree = work.join("iso");
    if tree.exists() {
        fs::remove_dir_all(&tree)?;
    }
    copy(&boot.kernel, &tree.join("boot/vmlinuz"))?;
    copy(&boot.initrd, &tree.join("boot/initrd.img"))?;
    copy(&boot.squashfs, &tree.join("LiveOS/squashfs.img"))?;
    copy(&boot.kickstart, &tree.join("ks/interactive-defaults.ks"))?;
    fs::create_dir_all(tree.join("boot/grub"))?;
    fs::write(tree.join("boot/grub/grub.cfg"), iso_grub_cfg(recipe))?;
    // Same times on every file, for reproducible ISOs.
    crate::rootfs::set_times(&tree, epoch, false)?;
    let partial = partial_name(out);
    Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&partial)
        .arg(&tree)
        .args(["--", "-volid", &recipe.outputs.iso_label])
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run_logged(log)
        .context("making the hybrid ISO with grub-mkrescue")?;
    fs::rename(&partial, out)?;
    fs::remove_dir_all(&tree)?;
    Ok(())
}

/// `dir/.name.partial` for `dir/name`.
pub fn partial_name(p: &Path) -> PathBuf {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    p.with_file_name(format!(".{name}.partial"))
}

/// The PXE tree: kernel, initrd, squashfs and boot configurations for
/// pxelinux (BIOS), grub (UEFI) and iPXE.
pub fn pxe(recipe: &Recipe, boot: &BootFiles, out_dir: &Path) -> Result<()> {
    let base = recipe.outputs.pxe_base_url.trim_end_matches('/');
    let url = format!("{base}/squashfs.img");
    let net = "rd.neednet=1 ip=dhcp";
    let ipxe_args = format!("{} {net}", live_args(recipe, &url));
    let grub_args = format!(
        "{} {net}",
        live_args(
            recipe,
            &url.replace("${next-server}", "${net_default_server}")
        )
    );
    let pxelinux_args = format!(
        "{} {net}",
        live_args(recipe, &url.replace("${next-server}", "PXE-SERVER"))
    );
    let nvr = recipe.nvr();
    let partial = partial_name(out_dir);
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    copy(&boot.kernel, &partial.join("vmlinuz"))?;
    copy(&boot.initrd, &partial.join("initrd.img"))?;
    copy(&boot.squashfs, &partial.join("squashfs.img"))?;
    fs::write(
        partial.join("boot.ipxe"),
        format!(
            "#!ipxe\n# hvnode {nvr}: iPXE boot script. Kernel, initramfs and root image come over\n# HTTP from {base}/ (this folder served there).\nkernel {base}/vmlinuz {ipxe_args}\ninitrd {base}/initrd.img\nboot\n"
        ),
    )?;
    fs::write(
        partial.join("grub.cfg"),
        format!(
            "# hvnode {nvr}: UEFI network boot with grub (grubnetx64.efi).\nset timeout=5\nmenuentry \"Start hvnode {nvr} live\" {{\n    linux vmlinuz {grub_args}\n    initrd initrd.img\n}}\n"
        ),
    )?;
    fs::create_dir_all(partial.join("pxelinux.cfg"))?;
    fs::write(
        partial.join("pxelinux.cfg/default"),
        format!(
            "# hvnode {nvr}: BIOS network boot with pxelinux.\n# Replace PXE-SERVER with the host serving squashfs.img over HTTP.\nDEFAULT hvnode\nPROMPT 0\nTIMEOUT 50\nLABEL hvnode\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img {pxelinux_args}\n"
        ),
    )?;
    fs::write(
        partial.join("README.txt"),
        format!(
            "hvnode {nvr}: PXE tree\n\nServe this folder over HTTP at {base}/ and over TFTP. iPXE (boot.ipxe)\nfetches everything over HTTP; grub (grub.cfg) and pxelinux\n(pxelinux.cfg/default) load vmlinuz and initrd.img over TFTP. The root\nimage always comes over HTTP: root=live:{url}\n\nKernel arguments:\n  root=live:URL      where the root image is (HTTP, HTTPS, FTP or TFTP)\n  rd.live.image      boot it as a live image\n  rd.neednet=1 ip=dhcp  bring the network up in the initramfs\n  {}\n  inst.ks=URL        add to install with that kickstart\n  hvnode.engine=FQDN[:PORT] hvnode.engine_fingerprint=FP  zero-touch registration\n",
            recipe.kernel.args.join(" ")
        ),
    )?;
    if out_dir.exists() {
        fs::remove_dir_all(out_dir)?;
    }
    fs::rename(&partial, out_dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> Recipe {
        Recipe::parse(
            Path::new("r.toml"),
            "name = \"hvnode\"\nversion = \"1.0\"\nrelease = \"1\"\n[base]\nsuite = \"bookworm\"\n[packages]\ninclude = [\"x\"]\n[kernel]\nargs = [\"security=selinux\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn grub_menu_has_the_three_entries_and_selinux() {
        let cfg = iso_grub_cfg(&recipe());
        assert!(cfg.contains("menuentry \"Install hvnode hvnode-1.0-1\""));
        assert!(cfg.contains("menuentry \"Start hvnode hvnode-1.0-1 live\""));
        assert!(cfg.contains("submenu \"Troubleshooting\""));
        assert!(cfg.contains("root=live:CDLABEL=HVNODE rd.live.image security=selinux"));
        assert!(cfg.contains("inst.ks=cdrom:/ks/interactive-defaults.ks"));
    }

    #[test]
    fn pxe_tree_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["k", "i", "s", "ks"] {
            fs::write(d.join(f), f).unwrap();
        }
        let boot = BootFiles {
            kernel: d.join("k"),
            initrd: d.join("i"),
            squashfs: d.join("s"),
            kickstart: d.join("ks"),
        };
        let out = d.join("pxe");
        pxe(&recipe(), &boot, &out).unwrap();
        for f in [
            "vmlinuz",
            "initrd.img",
            "squashfs.img",
            "boot.ipxe",
            "grub.cfg",
            "pxelinux.cfg/default",
            "README.txt",
        ] {
            assert!(out.join(f).is_file(), "{f}");
        }
        let ipxe = fs::read_to_string(out.join("boot.ipxe")).unwrap();
        assert!(ipxe.starts_with("#!ipxe\n"));
        assert!(ipxe.contains("kernel http://${next-server}/hvnode/vmlinuz root=live:http://${next-server}/hvnode/squashfs.img rd.live.image security=selinux rd.neednet=1 ip=dhcp"));
        assert!(ipxe.contains("initrd http://${next-server}/hvnode/initrd.img"));
        let grub = fs::read_to_string(out.join("grub.cfg")).unwrap();
        assert!(grub.contains("${net_default_server}"));
        assert!(!partial_name(&out).exists());
    }
}
