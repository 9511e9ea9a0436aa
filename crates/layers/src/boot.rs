//! Boot entries: every layer has its kernel and initramfs under
//! `/boot/<layer>/` and a grub menu entry with the id of its name. grub
//! boots `next_entry` once if set (a trial boot after an update), else
//! `saved_entry` (the default layer), so switching layers is one write to
//! grub's environment block and never rewrites the menu under a boot.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use serde::Serialize;

use crate::nvr::LayerName;

/// One entry of the boot menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEntry {
    pub layer: LayerName,
    /// Kernel arguments, root first.
    pub args: Vec<String>,
}

impl BootEntry {
    pub fn title(&self) -> String {
        let b = &self.layer.base;
        format!(
            "{} {} ({}+{})",
            b.name, b.version, b.release, self.layer.number
        )
    }
}

/// The directory of a layer's kernel and initramfs under `boot`.
pub fn layer_dir(boot: &Path, layer: &LayerName) -> PathBuf {
    boot.join(layer.to_string())
}

/// Copies a layer's kernel and initramfs to `boot/<layer>/`.
pub fn install_kernel(boot: &Path, layer: &LayerName, kernel: &Path, initrd: &Path) -> Result<()> {
    let dir = layer_dir(boot, layer);
    for (src, name) in [(kernel, "vmlinuz"), (initrd, "initrd.img")] {
        let data = fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        fsutil::write_atomic(&dir.join(name), &data, fsutil::Options::default())?;
    }
    Ok(())
}

/// grub's menu for `entries`, finding `/boot` by its file-system UUID.
pub fn grub_cfg(boot_uuid: &str, entries: &[BootEntry], timeout_s: u32) -> String {
    let mut s = format!(
        "# hvnode boot menu: one entry per layer. Written by hvnode; the default\n\
         # layer is grub's saved_entry, a one-time trial boot its next_entry\n\
         # (`nodectl info` shows them).\n\
         set timeout={timeout_s}\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n\
         insmod part_gpt\n\
         insmod ext2\n\
         search --no-floppy --fs-uuid --set=root {boot_uuid}\n\
         load_env\n\
         if [ -n \"${{next_entry}}\" ]; then\n\
         \x20   set default=\"${{next_entry}}\"\n\
         \x20   set next_entry=\n\
         \x20   save_env next_entry\n\
         elif [ -n \"${{saved_entry}}\" ]; then\n\
         \x20   set default=\"${{saved_entry}}\"\n\
         fi\n"
    );
    for e in entries {
        s.push_str(&format!(
            "\nmenuentry \"{}\" --id {} {{\n    linux /{}/vmlinuz {}\n    initrd /{}/initrd.img\n}}\n",
            e.title(),
            e.layer,
            e.layer,
            e.args.join(" "),
            e.layer
        ));
    }
    s
}

/// Writes `boot/grub/grub.cfg`.
pub fn write_grub_cfg(boot: &Path, boot_uuid: &str, entries: &[BootEntry]) -> Result<()> {
    fsutil::write_atomic(
        &boot.join("grub/grub.cfg"),
        grub_cfg(boot_uuid, entries, 5).as_bytes(),
        fsutil::Options::default(),
    )
    .map_err(Into::into)
}

/// Makes `layer` the default boot entry.
pub fn set_default(boot: &Path, layer: &LayerName) -> Result<()> {
    grub_env(boot, &format!("saved_entry={layer}"))
}

/// Boots `layer` once at the next boot.
pub fn set_next(boot: &Path, layer: &LayerName) -> Result<()> {
    grub_env(boot, &format!("next_entry={layer}"))
}

fn grub_env(boot: &Path, assignment: &str) -> Result<()> {
    let env = boot.join("grub/grubenv");
    Command::new("grub-editenv")
        .arg(&env)
        .args(["set", assignment])
        .run()
        .with_context(|| format!("setting {assignment} in {}", env.display()))?;
    Ok(())
}

/// Reads grub's environment block (`saved_entry`, `next_entry`).
pub fn read_env(boot: &Path) -> Result<Vec<(String, String)>> {
    let env = boot.join("grub/grubenv");
    let text = match fs::read_to_string(&env) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", env.display())),
    };
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Installs grub on `disk` for BIOS (into its BIOS boot partition) and for
/// UEFI (the removable-media path `EFI/BOOT/BOOTX64.EFI` on the ESP mounted
/// at `efi`, so no firmware variable is needed), both reading `boot/grub`.
pub fn install_grub(disk: &Path, boot: &Path, efi: &Path, log: &Path) -> Result<()> {
    Command::new("grub-install")
        .args(["--target=i386-pc", "--modules=part_gpt ext2"])
        .arg(format!("--boot-directory={}", boot.display()))
        .arg(disk)
        .run_appending(log)
        .with_context(|| format!("installing grub for BIOS on {}", disk.display()))?;
    // grub-install copies BOOTX64.EFI into EFI/BOOT without always making
    // the folder first (seen on a fresh ESP).
    fs::create_dir_all(efi.join("EFI/BOOT"))
        .with_context(|| format!("creating EFI/BOOT on {}", efi.display()))?;
    Command::new("grub-install")
        .args(["--target=x86_64-efi", "--removable", "--no-nvram"])
        .arg(format!("--efi-directory={}", efi.display()))
        .arg(format!("--boot-directory={}", boot.display()))
        .run_appending(log)
        .with_context(|| format!("installing grub for UEFI on {}", efi.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_has_an_entry_per_layer_and_honours_next_entry() {
        let l1: LayerName = "hvnode-1.0-0.20261125.0+1".parse().unwrap();
        let l2: LayerName = "hvnode-1.1-0.20261201.0+1".parse().unwrap();
        let entries = [
            BootEntry {
                layer: l1.clone(),
                args: vec![
                    "root=/dev/hvnode/hvnode-1.0-0.20261125.0+1".into(),
                    "ro".into(),
                ],
            },
            BootEntry {
                layer: l2,
                args: vec!["root=/dev/hvnode/hvnode-1.1-0.20261201.0+1".into()],
            },
        ];
        let cfg = grub_cfg("1234-abcd", &entries, 5);
        assert!(cfg.contains("search --no-floppy --fs-uuid --set=root 1234-abcd"));
        assert!(cfg.contains(
            "menuentry \"hvnode 1.0 (0.20261125.0+1)\" --id hvnode-1.0-0.20261125.0+1 {\n    linux /hvnode-1.0-0.20261125.0+1/vmlinuz root=/dev/hvnode/hvnode-1.0-0.20261125.0+1 ro\n    initrd /hvnode-1.0-0.20261125.0+1/initrd.img\n}"
        ));
        assert_eq!(cfg.matches("menuentry").count(), 2);
        let next = cfg.find("next_entry}\" ]").unwrap();
        let saved = cfg.find("saved_entry}\" ]").unwrap();
        assert!(next < saved, "a trial boot wins over the default");
    }

    #[test]
    fn kernels_land_in_the_layer_folder() {
        let d = tempfile::tempdir().unwrap();
        let (k, i) = (d.path().join("k"), d.path().join("i"));
        fs::write(&k, b"kernel").unwrap();
        fs::write(&i, b"initrd").unwrap();
        let boot = d.path().join("boot");
        let l: LayerName = "hvnode-1.0-1+1".parse().unwrap();
        install_kernel(&boot, &l, &k, &i).unwrap();
        assert_eq!(
            fs::read(boot.join("hvnode-1.0-1+1/vmlinuz")).unwrap(),
            b"kernel"
        );
        assert_eq!(
            fs::read(boot.join("hvnode-1.0-1+1/initrd.img")).unwrap(),
            b"initrd"
        );
        assert_eq!(
            fs::read_dir(boot.join("hvnode-1.0-1+1")).unwrap().count(),
            2
        );
    }
}
