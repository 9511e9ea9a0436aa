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
use hostinfo::boot_chain;
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

/// The file beside `grub.cfg` that holds the boot loader password
/// (`GRUB2_PASSWORD=grub.pbkdf2.sha512.…`), as on Fedora: the menu is
/// rewritten by every update, this file by none.
pub const USER_CFG: &str = "grub/user.cfg";

/// The part of the menu that reads [`USER_CFG`] from grub's own folder
/// (`$prefix`, where grubenv is read too) and, when it sets a password,
/// makes `root` grub's superuser: editing an entry and grub's shell then
/// ask for the password; the entries, all `--unrestricted`, boot without.
/// Without the file grub has no superuser and everything stays open.
const USERS_BLOCK: &str = "\
if [ -f \"${prefix}/user.cfg\" ]; then
    source \"${prefix}/user.cfg\"
    if [ -n \"${GRUB2_PASSWORD}\" ]; then
        set superusers=\"root\"
        export superusers
        password_pbkdf2 root ${GRUB2_PASSWORD}
    fi
fi
";

/// grub's menu for `entries`, finding `/boot` by its file-system UUID;
/// the boot loader password, if the node has one, comes from [`USER_CFG`].
pub fn grub_cfg(boot_uuid: &str, entries: &[BootEntry], timeout_s: u32) -> String {
    let mut s = format!(
        "# hvnode boot menu: one entry per layer. Written by hvnode; the default\n\
         # layer is grub's saved_entry, a one-time trial boot its next_entry\n\
         # (`nodectl info` shows them). A boot loader password, if any, is in\n\
         # user.cfg beside this file, which updates leave alone.\n\
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
    s.push_str(USERS_BLOCK);
    for e in entries {
        s.push_str(&format!(
            "\nmenuentry \"{}\" --unrestricted --id {} {{\n    linux /{}/vmlinuz {} ${TRIAL_VAR}\n    initrd /{}/initrd.img\n}}\n",
            e.title(),
            e.layer,
            e.layer,
            e.args.join(" "),
            e.layer
        ));
    }
    s
}

/// How long grub shows its menu when the kickstart does not say
/// (`bootloader --timeout`): five seconds, as Anaconda and Debian's grub.
pub const DEFAULT_TIMEOUT_S: u32 = 5;

/// The menu's timeout in a grub.cfg [`grub_cfg`] wrote (`set timeout=N`).
pub fn grub_cfg_timeout(cfg: &str) -> Option<u32> {
    cfg.lines()
        .find_map(|l| l.trim().strip_prefix("set timeout="))
        .and_then(|v| v.trim().parse().ok())
}

/// Writes `boot/grub/grub.cfg`. `timeout_s` is the menu's timeout; `None`
/// keeps the one the file has (an update or a clean-up rewrites the
/// entries, not the node's choice of timeout), else [`DEFAULT_TIMEOUT_S`].
pub fn write_grub_cfg(
    boot: &Path,
    boot_uuid: &str,
    entries: &[BootEntry],
    timeout_s: Option<u32>,
) -> Result<()> {
    let path = boot.join("grub/grub.cfg");
    let timeout_s = timeout_s
        .or_else(|| {
            fs::read_to_string(&path)
                .ok()
                .and_then(|c| grub_cfg_timeout(&c))
        })
        .unwrap_or(DEFAULT_TIMEOUT_S);
    fsutil::write_atomic(
        &path,
        grub_cfg(boot_uuid, entries, timeout_s).as_bytes(),
        fsutil::Options::default(),
    )
    .map_err(Into::into)
}

/// The text of [`USER_CFG`] for a grub PBKDF2 hash. The hash is checked
/// for its prefix and its characters (digits, letters, dots), since grub
/// runs the file as a script.
pub fn user_cfg(pbkdf2: &str) -> Result<String> {
    let ok = pbkdf2.starts_with("grub.pbkdf2.sha512.")
        && pbkdf2
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.');
    if !ok {
        anyhow::bail!(
            "the boot loader password is not a grub PBKDF2 hash (grub.pbkdf2.sha512.…, as \
             grub-mkpasswd-pbkdf2 prints it); {USER_CFG} was not written"
        );
    }
    Ok(format!("GRUB2_PASSWORD={pbkdf2}\n"))
}

/// Writes `boot/grub/user.cfg` holding the boot loader password's hash,
/// readable by root only (mode 0600 from its creation, renamed into place).
pub fn write_user_cfg(boot: &Path, pbkdf2: &str) -> Result<()> {
    let path = boot.join(USER_CFG);
    fsutil::write_atomic(
        &path,
        user_cfg(pbkdf2)?.as_bytes(),
        fsutil::Options::mode(0o600),
    )
    .with_context(|| format!("writing the boot loader password to {}", path.display()))
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

/// Installs the boot loaders on `disk`: grub for BIOS (into its BIOS boot
/// partition, reading `boot/grub`), and for UEFI the signed chain of the
/// image tree `tree` ([`install_uefi_chain`]).
pub fn install_grub(
    disk: &Path,
    boot: &Path,
    efi: &Path,
    tree: &Path,
    boot_uuid: &str,
    log: &Path,
) -> Result<()> {
    Command::new("grub-install")
        .args(["--target=i386-pc", "--modules=part_gpt ext2"])
        .arg(format!("--boot-directory={}", boot.display()))
        .arg(disk)
        .run_appending(log)
        .with_context(|| format!("installing grub for BIOS on {}", disk.display()))?;
    install_uefi_chain(efi, tree, boot_uuid)
}

/// The configuration Debian's signed disk grub reads from the ESP
/// ([`boot_chain::DISK_GRUB_CFG`]): on to the menu in `/boot`'s file
/// system, found by its UUID.
pub fn esp_grub_cfg(boot_uuid: &str) -> String {
    format!(
        "# hvnode: Debian's signed grub reads this from the ESP, then the menu\n\
         # in /boot (grub/grub.cfg there, with grubenv beside it).\n\
         search --no-floppy --fs-uuid --set=root {boot_uuid}\n\
         set prefix=($root)/grub\n\
         configfile $prefix/grub.cfg\n"
    )
}

/// Puts the UEFI Secure Boot chain of the image tree `tree` on the ESP
/// mounted at `efi`: shim at the removable-media path
/// `EFI/BOOT/BOOTX64.EFI` (so no firmware variable is needed), Debian's
/// signed grub and shim's MOK manager beside it, and grub's configuration
/// at `EFI/debian/grub.cfg`. Each file is checked to be signed before
/// anything is written, and written whole under a temporary name, then
/// renamed.
pub fn install_uefi_chain(efi: &Path, tree: &Path, boot_uuid: &str) -> Result<()> {
    boot_chain::check_signed(tree, &boot_chain::INSTALLED).map_err(|e| {
        anyhow::anyhow!(
            "installing the UEFI boot loaders on {}: {e}; the image lacks its Secure Boot \
             chain (an image built before it?): install an image built with shim-signed",
            efi.display()
        )
    })?;
    let dir = efi.join(
        Path::new(boot_chain::REMOVABLE_PATH)
            .parent()
            .unwrap_or(Path::new("EFI/BOOT")),
    );
    for loader in boot_chain::INSTALLED {
        let src = tree.join(loader.path.trim_start_matches('/'));
        let data = fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let dest = dir.join(boot_chain::placed_name(&loader));
        fsutil::write_atomic(&dest, &data, fsutil::Options::default())
            .with_context(|| format!("writing {} on the ESP", dest.display()))?;
    }
    let cfg = efi.join(boot_chain::DISK_GRUB_CFG);
    fsutil::write_atomic(
        &cfg,
        esp_grub_cfg(boot_uuid).as_bytes(),
        fsutil::Options::default(),
    )
    .with_context(|| format!("writing {}", cfg.display()))?;
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
            "menuentry \"hvnode 1.0 (0.20261125.0+1)\" --unrestricted --id hvnode-1.0-0.20261125.0+1 {\n    linux /hvnode-1.0-0.20261125.0+1/vmlinuz root=/dev/hvnode/hvnode-1.0-0.20261125.0+1 ro $hvnode_trial\n    initrd /hvnode-1.0-0.20261125.0+1/initrd.img\n}"
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

    fn two_entries() -> Vec<BootEntry> {
        ["hvnode-1.0-1+1", "hvnode-1.1-1+1"]
            .iter()
            .map(|l| BootEntry {
                layer: l.parse().unwrap(),
                args: vec![format!("root=/dev/hvnode/{l}"), "ro".into()],
            })
            .collect()
    }

    /// A grub PBKDF2 hash as grub-mkpasswd-pbkdf2 prints it.
    const HASH: &str = "grub.pbkdf2.sha512.10000.5B1693EE3721657F6AB764DD747BE7912CCBD37D0513E5A923513F2F9B4F15F7F2E0818E7314E6E6B23FFBA74FBC54DD6C1847F4159CD4CF30648167F0F263C0.2B3A02B6BB67545C7F292312EBAE01D70DC5C48CE10747DE55BDE19E799091693AA8F6D949EF21822020B02B913673159E3EF83F0BC64CDBA5E9EE8E7AFA03EA";

    #[test]
    fn every_entry_boots_without_the_password_and_the_password_comes_from_user_cfg() {
        let cfg = grub_cfg("1234-abcd", &two_entries(), 5);
        let entries: Vec<&str> = cfg
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("menuentry") || l.starts_with("submenu"))
            .collect();
        assert_eq!(entries.len(), 2, "{cfg}");
        for e in &entries {
            assert!(e.contains(" --unrestricted "), "{e}");
        }
        // Read before the first entry, from grub's own folder (where
        // grubenv is read), and a superuser only when the file sets a
        // password: without user.cfg the menu is as open as it was.
        let block = cfg.find("if [ -f \"${prefix}/user.cfg\" ]; then\n    source \"${prefix}/user.cfg\"\n    if [ -n \"${GRUB2_PASSWORD}\" ]; then\n        set superusers=\"root\"\n        export superusers\n        password_pbkdf2 root ${GRUB2_PASSWORD}\n    fi\nfi\n").unwrap();
        assert!(block < cfg.find("menuentry").unwrap(), "{cfg}");
        assert_eq!(cfg.matches("superusers=").count(), 1, "{cfg}");
        assert_eq!(cfg.matches("password_pbkdf2").count(), 1, "{cfg}");
        // The entries are read back the same (updates and `nodectl info`).
        let back = crate::status::parse_grub_cfg(&cfg);
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].id, "hvnode-1.1-1+1");
        assert_eq!(back[1].title, "hvnode 1.1 (1+1)");
        assert_eq!(back[1].args, "root=/dev/hvnode/hvnode-1.1-1+1 ro");
        if hvnode_testutil::require_tool("grub-script-check") {
            let d = tempfile::tempdir().unwrap();
            let f = d.path().join("grub.cfg");
            fs::write(&f, &cfg).unwrap();
            Command::new("grub-script-check").arg(&f).run().unwrap();
            fs::write(&f, user_cfg(HASH).unwrap()).unwrap();
            Command::new("grub-script-check").arg(&f).run().unwrap();
        }
    }

    #[test]
    fn user_cfg_is_private_and_survives_the_menu_being_rewritten() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let boot = d.path();
        write_grub_cfg(boot, "1234-abcd", &two_entries()[..1], Some(2)).unwrap();
        write_user_cfg(boot, HASH).unwrap();
        let path = boot.join(USER_CFG);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("GRUB2_PASSWORD={HASH}\n")
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // An update rewrites the menu from the entries it reads back.
        let cfg = fs::read_to_string(boot.join("grub/grub.cfg")).unwrap();
        let mut entries: Vec<BootEntry> = crate::status::parse_grub_cfg(&cfg)
            .into_iter()
            .map(|e| BootEntry {
                layer: e.id.parse().unwrap(),
                args: e.args.split_whitespace().map(String::from).collect(),
            })
            .collect();
        entries.push(two_entries()[1].clone());
        write_grub_cfg(boot, "1234-abcd", &entries, None).unwrap();
        let cfg = fs::read_to_string(boot.join("grub/grub.cfg")).unwrap();
        assert_eq!(cfg.matches("--unrestricted").count(), 2, "{cfg}");
        assert_eq!(
            grub_cfg_timeout(&cfg),
            Some(2),
            "the node's timeout is kept"
        );
        assert!(cfg.contains("password_pbkdf2 root ${GRUB2_PASSWORD}"));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("GRUB2_PASSWORD={HASH}\n")
        );
        let names: Vec<_> = fs::read_dir(boot.join("grub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }

    #[test]
    fn only_a_grub_hash_goes_into_user_cfg() {
        let d = tempfile::tempdir().unwrap();
        for bad in [
            "grub-secret",
            "$6$salt$hash",
            "grub.pbkdf2.sha512.1.AB.CD\nset superusers=",
            "grub.pbkdf2.sha512.1.AB.CD; echo",
        ] {
            let e = write_user_cfg(d.path(), bad).unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains("not a grub PBKDF2 hash"), "{msg}");
            assert!(!msg.contains("secret") && !msg.contains("salt"), "{msg}");
        }
        assert!(!d.path().join(USER_CFG).exists());
    }

    #[test]
    fn the_esp_gets_the_signed_chain_and_grub_reads_boot_by_its_uuid() {
        let d = tempfile::tempdir().unwrap();
        let (tree, efi) = (d.path().join("tree"), d.path().join("efi"));
        // An image without its chain: refused, nothing written.
        let e = install_uefi_chain(&efi, &tree, "1234-abcd").unwrap_err();
        assert!(format!("{e:#}").contains("shim-signed"), "{e:#}");
        assert!(!efi.exists());
        // Stand-ins with a certificate table: a PE header whose data
        // directory 4 points inside the file.
        let mut pe = vec![0u8; 1024];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        pe[0x98..0x9a].copy_from_slice(&0x20bu16.to_le_bytes());
        pe[0x128..0x12c].copy_from_slice(&512u32.to_le_bytes());
        pe[0x12c..0x130].copy_from_slice(&64u32.to_le_bytes());
        for l in boot_chain::INSTALLED {
            let p = tree.join(l.path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            let mut bytes = pe.clone();
            bytes.extend(l.path.as_bytes());
            fs::write(&p, bytes).unwrap();
        }
        install_uefi_chain(&efi, &tree, "1234-abcd").unwrap();
        let tail = |p: &str| {
            let b = fs::read(efi.join(p)).unwrap();
            String::from_utf8_lossy(&b[1024..]).into_owned()
        };
        assert_eq!(tail("EFI/BOOT/BOOTX64.EFI"), boot_chain::SHIM.path);
        assert_eq!(tail("EFI/BOOT/grubx64.efi"), boot_chain::GRUB_DISK.path);
        assert_eq!(tail("EFI/BOOT/mmx64.efi"), boot_chain::MOK_MANAGER.path);
        let cfg = fs::read_to_string(efi.join("EFI/debian/grub.cfg")).unwrap();
        assert!(cfg.contains("search --no-floppy --fs-uuid --set=root 1234-abcd\n"));
        assert!(cfg.contains("set prefix=($root)/grub\nconfigfile $prefix/grub.cfg\n"));
        if hvnode_testutil::require_tool("grub-script-check") {
            Command::new("grub-script-check")
                .arg(efi.join("EFI/debian/grub.cfg"))
                .run()
                .unwrap();
        }
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
