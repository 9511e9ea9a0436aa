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

/// The newest kernel that has an initramfs in an image tree's `/boot`
/// (`vmlinuz-V` beside `initrd.img-V`), versions compared number by number
/// (`6.1.0-40` is newer than `6.1.0-9`): what the installer and an update put
/// in `/boot/<layer>/`.
pub fn image_kernel(tree: &Path) -> Result<(PathBuf, PathBuf)> {
    let boot = tree.join("boot");
    let kernels: Vec<String> = fs::read_dir(&boot)
        .with_context(|| format!("listing {}", boot.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_prefix("vmlinuz-").map(String::from))
        .filter(|v| boot.join(format!("initrd.img-{v}")).is_file())
        .collect();
    let Some(v) = kernels.into_iter().max_by_key(|v| version_key(v)) else {
        anyhow::bail!(
            "{} has no kernel with an initramfs (vmlinuz-V and initrd.img-V): not a bootable \
             image",
            boot.display()
        );
    };
    Ok((
        boot.join(format!("vmlinuz-{v}")),
        boot.join(format!("initrd.img-{v}")),
    ))
}

/// A kernel version as its runs of digits (numbers) and of other characters,
/// so that versions compare as numbers where they are numbers.
fn version_key(v: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut rest = v;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let other = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            out.push((0, rest[..other].to_string()));
            rest = &rest[other..];
        }
    }
    out
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

/// The grub variable that holds [`TRIAL_ARGS`] on a one-time boot and is
/// empty otherwise; every menu entry's kernel line ends with it.
pub const TRIAL_VAR: &str = "hvnode_trial";

/// Kernel arguments of a one-time boot (grub's `next_entry`): `hvnode.trial=1`
/// for the trial's health unit, and a reboot instead of a wait wherever
/// the boot can stop: a kernel panic (`panic=`), systemd crashing
/// (`systemd.crash_reboot`), the initramfs's emergency shell
/// (`rd.emergency=reboot`, `rd.shell=0`). grub has already cleared
/// `next_entry`, so that reboot starts the default layer.
pub const TRIAL_ARGS: &str =
    "hvnode.trial=1 panic=30 systemd.crash_reboot=1 rd.shell=0 rd.emergency=reboot";

/// The grub environment variable naming the layer on trial: set with
/// `next_entry` by an update, removed when its trial ends (passed: the layer
/// becomes `saved_entry`; failed: it is recorded as bad).
pub const TRIAL_KEY: &str = "trial_entry";

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
         \x20   set {TRIAL_VAR}=\"{TRIAL_ARGS}\"\n\
         elif [ -n \"${{saved_entry}}\" ]; then\n\
         \x20   set default=\"${{saved_entry}}\"\n\
         fi\n"
    );
    for e in entries {
        s.push_str(&format!(
            "\nmenuentry \"{}\" --id {} {{\n    linux /{}/vmlinuz {} ${TRIAL_VAR}\n    initrd /{}/initrd.img\n}}\n",
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
    set_env(boot, "saved_entry", Some(&layer.to_string()))
}

/// Boots `layer` once at the next boot.
pub fn set_next(boot: &Path, layer: &LayerName) -> Result<()> {
    set_env(boot, "next_entry", Some(&layer.to_string()))
}

/// Forgets a one-time boot that has not happened yet, and the trial it was.
pub fn clear_next(boot: &Path) -> Result<()> {
    edit_env(boot, &[("next_entry", None), (TRIAL_KEY, None)])
}

/// Arms the trial of `layer`: booted once at the next boot (`next_entry`)
/// and named the layer on trial ([`TRIAL_KEY`]), in one write; the default
/// is unchanged.
pub fn arm_trial(boot: &Path, layer: &LayerName) -> Result<()> {
    let l = layer.to_string();
    edit_env(boot, &[("next_entry", Some(&l)), (TRIAL_KEY, Some(&l))])
}

/// The trial of `layer` passed: it becomes the default and is no longer
/// on trial, in one write.
pub fn bless(boot: &Path, layer: &LayerName) -> Result<()> {
    let l = layer.to_string();
    edit_env(boot, &[("saved_entry", Some(&l)), (TRIAL_KEY, None)])
}

/// The trial ended without passing: no layer is on trial any more (grub
/// cleared `next_entry` when it booted it; a pending one is cleared too).
pub fn end_trial(boot: &Path) -> Result<()> {
    edit_env(boot, &[("next_entry", None), (TRIAL_KEY, None)])
}

/// The size of grub's environment block: grub rewrites it in place and
/// refuses a file of another size.
pub const ENV_BLOCK_SIZE: usize = 1024;

/// What grub-editenv writes first.
const ENV_HEADER: &str = "# GRUB Environment Block\n";

/// grub's environment block holding `vars`, padded with `#` to
/// [`ENV_BLOCK_SIZE`]. Names and values are checked: a newline, a `=` in a
/// name or a backslash would be read back as something else.
pub fn env_block(vars: &[(String, String)]) -> Result<Vec<u8>> {
    let mut text = String::from(ENV_HEADER);
    for (k, v) in vars {
        let bad_name = k.is_empty() || k.contains(['=', '\n', '\\', '#']);
        if bad_name || v.contains(['\n', '\\']) {
            anyhow::bail!(
                "the grub environment cannot hold {k:?}={v:?}: a name without '=', '#' or \
                 newlines and a value without newlines or backslashes is needed"
            );
        }
        text.push_str(&format!("{k}={v}\n"));
    }
    if text.len() > ENV_BLOCK_SIZE {
        anyhow::bail!(
            "the grub environment would take {} bytes, more than grub's {ENV_BLOCK_SIZE}: \
             remove variables from /boot/grub/grubenv",
            text.len()
        );
    }
    let mut block = text.into_bytes();
    block.resize(ENV_BLOCK_SIZE, b'#');
    Ok(block)
}

/// Sets (or, with `None`, removes) one variable of grub's environment,
/// keeping the others. The block is written whole to a new file and renamed
/// over the old one (`grub-editenv` rewrites it in place, and a power cut
/// then can leave it empty, so grub boots its first entry).
fn set_env(boot: &Path, key: &str, value: Option<&str>) -> Result<()> {
    edit_env(boot, &[(key, value)])
}

/// Sets or removes several variables of grub's environment in one write
/// (see [`set_env`]).
fn edit_env(boot: &Path, changes: &[(&str, Option<&str>)]) -> Result<()> {
    let env = boot.join("grub/grubenv");
    let mut vars = read_env(boot)?;
    for (key, value) in changes {
        vars.retain(|(k, _)| k != key);
        if let Some(v) = value {
            vars.push((key.to_string(), v.to_string()));
        }
    }
    let block = env_block(&vars)?;
    let keys: Vec<&str> = changes.iter().map(|(k, _)| *k).collect();
    fsutil::write_atomic(&env, &block, fsutil::Options::default())
        .with_context(|| format!("setting {} in {}", keys.join(", "), env.display()))?;
    Ok(())
}

/// The value of `key` in grub's environment `vars`; `None` when it is
/// missing or empty (grub leaves `next_entry=` behind after its one boot).
pub fn env_value(vars: &[(String, String)], key: &str) -> Option<String> {
    vars.iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.clone())
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
        .filter(|l| !l.starts_with('#') && !l.is_empty())
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
    fn the_environment_block_is_written_whole_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("grub")).unwrap();
        let env = d.path().join("grub/grubenv");
        let (a, b): (LayerName, LayerName) = (
            "hvnode-1.0-1+1".parse().unwrap(),
            "hvnode-1.1-1+1".parse().unwrap(),
        );
        set_default(d.path(), &a).unwrap();
        set_next(d.path(), &b).unwrap();
        let block = fs::read(&env).unwrap();
        assert_eq!(block.len(), ENV_BLOCK_SIZE);
        assert!(block.starts_with(b"# GRUB Environment Block\nsaved_entry=hvnode-1.0-1+1\n"));
        assert!(block.ends_with(b"###"));
        let vars = read_env(d.path()).unwrap();
        assert_eq!(
            vars,
            [
                ("saved_entry".to_string(), a.to_string()),
                ("next_entry".to_string(), b.to_string())
            ]
        );
        clear_next(d.path()).unwrap();
        assert_eq!(read_env(d.path()).unwrap().len(), 1);
        // What grub reads: grub's own tool lists the same.
        if hvnode_testutil::require_tool("grub-editenv") {
            let out = Command::new("grub-editenv")
                .arg(&env)
                .arg("list")
                .run_capture()
                .unwrap();
            assert_eq!(out, "saved_entry=hvnode-1.0-1+1\n");
        }
        assert!(env_block(&[("a\nb".into(), "x".into())]).is_err());
        assert!(env_block(&[("k".into(), "x".repeat(ENV_BLOCK_SIZE))]).is_err());
    }

    #[test]
    fn the_newest_kernel_with_an_initramfs_is_chosen() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("boot");
        fs::create_dir_all(&b).unwrap();
        let kernel =
            |d: &Path| image_kernel(d).map(|(k, i)| (k.file_name().unwrap().to_owned(), i));
        for f in ["vmlinuz-6.1.0-9-amd64", "initrd.img-6.1.0-9-amd64"] {
            fs::write(b.join(f), b"").unwrap();
        }
        // A kernel without its initramfs is not a choice.
        fs::write(b.join("vmlinuz-6.1.0-41-amd64"), b"").unwrap();
        assert_eq!(kernel(d.path()).unwrap().0, "vmlinuz-6.1.0-9-amd64");
        // 40 is newer than 9: compared as numbers, not as text.
        for f in ["vmlinuz-6.1.0-40-amd64", "initrd.img-6.1.0-40-amd64"] {
            fs::write(b.join(f), b"").unwrap();
        }
        let (k, i) = image_kernel(d.path()).unwrap();
        assert!(k.ends_with("vmlinuz-6.1.0-40-amd64"), "{k:?}");
        assert!(i.ends_with("initrd.img-6.1.0-40-amd64"), "{i:?}");
        let empty = tempfile::tempdir().unwrap();
        fs::create_dir_all(empty.path().join("boot")).unwrap();
        let e = image_kernel(empty.path()).unwrap_err().to_string();
        assert!(e.contains("no kernel with an initramfs"), "{e}");
    }

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
            "menuentry \"hvnode 1.0 (0.20261125.0+1)\" --id hvnode-1.0-0.20261125.0+1 {\n    linux /hvnode-1.0-0.20261125.0+1/vmlinuz root=/dev/hvnode/hvnode-1.0-0.20261125.0+1 ro $hvnode_trial\n    initrd /hvnode-1.0-0.20261125.0+1/initrd.img\n}"
        ));
        assert_eq!(cfg.matches("menuentry").count(), 2);
        let next = cfg.find("next_entry}\" ]").unwrap();
        let saved = cfg.find("saved_entry}\" ]").unwrap();
        assert!(next < saved, "a trial boot wins over the default");
        // Only a one-time boot carries the trial's arguments.
        let trial_set = cfg
            .find(&format!("set {TRIAL_VAR}=\"{TRIAL_ARGS}\""))
            .unwrap();
        assert!(next < trial_set && trial_set < saved, "{cfg}");
        assert_eq!(
            cfg.matches(&format!("ro ${TRIAL_VAR}\n")).count(),
            1,
            "{cfg}"
        );
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
