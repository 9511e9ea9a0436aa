//! The assemble stage: the hybrid ISO (BIOS and UEFI, CD and USB), the PXE
//! tree and the update bundle, each written under a temporary name and
//! renamed when complete.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use hostinfo::boot_chain::{self, Loader};
use hostinfo::units::UtcTime;

use crate::recipe::Recipe;

/// The boot files every output carries.
#[derive(Debug, Clone)]
pub struct BootFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub squashfs: PathBuf,
    /// `kickstart/interactive-defaults.ks`, embedded in the ISO.
    pub kickstart: PathBuf,
    /// The image tree the signed UEFI loaders are taken from
    /// ([`boot_chain`]'s paths below it; the build has checked them).
    pub loaders: PathBuf,
}

impl BootFiles {
    /// Where `loader` is in the image tree.
    pub fn loader(&self, loader: &Loader) -> PathBuf {
        self.loaders.join(loader.path.trim_start_matches('/'))
    }
}

/// Kernel arguments of a live boot from a medium labelled `label`.
pub fn live_args(recipe: &Recipe, root: &str) -> String {
    let mut args = vec![format!("root=live:{root}"), "rd.live.image".to_string()];
    args.extend(recipe.kernel.args.iter().cloned());
    args.join(" ")
}

/// The grub variable holding every menu entry's kernel arguments.
pub const KARGS_VAR: &str = "hvnode_kargs";

/// `s` as one grub word in single quotes (grub expands nothing there).
pub fn grub_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The ISO's grub menu: install, live, and a troubleshooting submenu.
/// Every entry boots with `$hvnode_kargs`, the build's arguments, which
/// the grub customisation area (`custom.cfg`, sourced before the menu)
/// may change, with the default entry and the timeout.
pub fn iso_grub_cfg(recipe: &Recipe) -> String {
    let nvr = recipe.nvr();
    let kargs = grub_quote(&live_args(
        recipe,
        &format!("CDLABEL={}", recipe.outputs.iso_label),
    ));
    let live = format!("${KARGS_VAR}");
    let custom = iso_custom::AreaKind::Grub.path();
    format!(
        r#"# hvnode {nvr}: boot menu of the installer ISO (BIOS and UEFI).
set default=0
set timeout=10
set {KARGS_VAR}={kargs}
# `hvnode iso customize` writes its changes there (`hvnode iso show` lists them).
source ($root)/{custom}
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

/// Where Debian's grub-pc-bin keeps grub's images and modules.
const GRUB_LIB: &str = "/usr/lib/grub";
/// grub's BIOS platform, on the ISO beside UEFI's signed chain.
const BIOS: &str = "i386-pc";

/// The ISO's modification date as xorriso takes it (`YYYYMMDDhhmmsscc`)
/// and the file system UUID grub derives from it
/// (`YYYY-MM-DD-hh-mm-ss-cc`), both from the build epoch.
pub fn iso_date_and_uuid(epoch: i64) -> (String, String) {
    let UtcTime {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: s,
    } = UtcTime::from_unix(epoch);
    (
        format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}00"),
        format!("{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}-{s:02}-00"),
    )
}

/// The configuration built into the BIOS grub image: find the ISO's own
/// file system (on a CD, or on the disk the ISO was written to) and read
/// `/boot/grub/grub.cfg` and the modules from there.
fn grub_early_cfg(uuid: &str) -> String {
    format!("search --no-floppy --fs-uuid --set=root {uuid}\nset prefix=($root)/boot/grub\n")
}

/// The first configuration Debian's signed CD grub reads
/// ([`boot_chain::CD_GRUB_CFG`]), on whichever medium it found by
/// [`boot_chain::DISK_INFO`]: it goes on to this ISO's own file system, by
/// its UUID (another hvnode medium in the machine may have been found
/// first), and its menu.
pub fn signed_grub_cfg(uuid: &str) -> String {
    format!(
        "# hvnode: Debian's signed grub (UEFI, Secure Boot) reads this first.\n\
         search --no-floppy --fs-uuid --set=root {uuid}\n\
         set prefix=($root)/boot/grub\n\
         source $prefix/grub.cfg\n"
    )
}

/// Copies grub's modules for `platform` to `dest` (grub loads what
/// grub.cfg asks for from there).
fn copy_grub_modules(platform: &str, dest: &Path) -> Result<()> {
    let src = Path::new(GRUB_LIB).join(platform);
    let entries = fs::read_dir(&src).with_context(|| {
        format!(
            "reading {} (grub-pc-bin and grub-efi-amd64-bin install it)",
            src.display()
        )
    })?;
    fs::create_dir_all(dest)?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "mod" || e == "lst") {
            if let Some(name) = path.file_name() {
                copy(&path, &dest.join(name))?;
            }
        }
    }
    Ok(())
}

/// `grub-mkimage` for `platform`, with `cfg` built in.
fn grub_mkimage(
    platform: &str,
    format: &str,
    cfg: &Path,
    out: &Path,
    modules: &[&str],
    log: &Path,
) -> Result<()> {
    Command::new("grub-mkimage")
        .arg("--directory")
        .arg(Path::new(GRUB_LIB).join(platform))
        .args(["--prefix", "/boot/grub", "--format", format])
        .arg("--config")
        .arg(cfg)
        .arg("--output")
        .arg(out)
        .args(modules)
        .run_logged(log)
        .with_context(|| format!("making grub's {format} image"))
}

/// The El Torito UEFI boot image: a FAT file system holding the signed
/// chain in `EFI/BOOT` (shim as `BOOTX64.EFI`, grub and the MOK manager
/// under the names shim looks for), with a serial number and every time
/// stamp fixed.
fn efi_image(boot: &BootFiles, scratch: &Path, out: &Path, epoch: i64, log: &Path) -> Result<()> {
    let mut files = Vec::new();
    for loader in boot_chain::MEDIUM {
        // A copy with the build's time stamp (mcopy -m keeps it).
        let copy_of = scratch.join(boot_chain::placed_name(&loader));
        copy(&boot.loader(&loader), &copy_of)?;
        crate::rootfs::set_times(&copy_of, epoch, false)?;
        files.push(copy_of);
    }
    let mut bytes = 0;
    for f in &files {
        bytes += fs::metadata(f)?.len();
    }
    // The binaries plus 1 MiB for the file system, in whole MiB.
    let kib = (bytes / 1024 + 1024).div_ceil(1024) * 1024;
    if out.exists() {
        fs::remove_file(out)?;
    }
    Command::new("mkfs.vfat")
        .args(["--invariant", "-i"])
        .arg(format!("{:08x}", epoch.rem_euclid(1 << 32)))
        .args(["-n", "EFIBOOT", "-C"])
        .arg(out)
        .arg(kib.to_string())
        .run_logged(log)
        .context("making the UEFI boot image's FAT file system")?;
    // mtools takes "now" from SOURCE_DATE_EPOCH; -m keeps the file's time.
    let mtools = |c: &mut Command| {
        c.arg("-i")
            .arg(out)
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("MTOOLS_SKIP_CHECK", "1");
    };
    let mut mmd = Command::new("mmd");
    mtools(&mut mmd);
    mmd.args(["::/EFI", "::/EFI/BOOT"])
        .run_logged(log)
        .context("making EFI/BOOT in the UEFI boot image")?;
    for f in &files {
        let mut mcopy = Command::new("mcopy");
        mcopy.arg("-m");
        mtools(&mut mcopy);
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        mcopy
            .arg(f)
            .arg(format!("::/EFI/BOOT/{name}"))
            .run_logged(log)
            .with_context(|| format!("copying {name} into the UEFI boot image"))?;
    }
    Ok(())
}

/// Writes `out` (an `.iso`) via a temporary name: an ISO 9660 file system
/// with grub for BIOS (El Torito, and a hybrid MBR for USB disks) and for
/// UEFI (an El Torito FAT image, also a GPT partition for USB disks). The
/// same inputs and epoch give the same bytes: every time stamp, the
/// volume's UUID, the GPT's GUIDs and the FAT serial come from `epoch`.
pub fn iso(
    recipe: &Recipe,
    boot: &BootFiles,
    work: &Path,
    out: &Path,
    epoch: i64,
    log: &Path,
) -> Result<()> {
    let tree = work.join("iso");
    let scratch = work.join("iso-boot");
    for d in [&tree, &scratch] {
        if d.exists() {
            fs::remove_dir_all(d)?;
        }
    }
    fs::create_dir_all(&scratch)?;
    copy(&boot.kernel, &tree.join("boot/vmlinuz"))?;
    copy(&boot.initrd, &tree.join("boot/initrd.img"))?;
    copy(&boot.squashfs, &tree.join("LiveOS/squashfs.img"))?;
    copy(&boot.kickstart, &tree.join("ks/interactive-defaults.ks"))?;
    fs::create_dir_all(tree.join("boot/grub"))?;
    fs::write(tree.join("boot/grub/grub.cfg"), iso_grub_cfg(recipe))?;
    let (date, uuid) = iso_date_and_uuid(epoch);
    // What Debian's signed CD grub looks for, and reads first.
    fs::create_dir_all(tree.join(".disk"))?;
    fs::write(
        tree.join(boot_chain::DISK_INFO),
        format!("{} (UEFI and BIOS)\n", recipe.nvr()),
    )?;
    let signed_cfg = tree.join(boot_chain::CD_GRUB_CFG);
    fs::create_dir_all(signed_cfg.parent().unwrap_or(&tree))?;
    fs::write(&signed_cfg, signed_grub_cfg(&uuid))?;
    // The customisation areas, pristine: `hvnode iso customize` rewrites
    // their bytes in place.
    for kind in iso_custom::AreaKind::ALL {
        let p = tree.join(kind.path());
        fs::create_dir_all(p.parent().unwrap_or(&tree))?;
        fs::write(&p, iso_custom::pristine(kind))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let grub_dir = tree.join("boot/grub");
    copy_grub_modules(BIOS, &grub_dir.join(BIOS))?;
    let early = scratch.join("early.cfg");
    fs::write(&early, grub_early_cfg(&uuid))?;
    grub_mkimage(
        BIOS,
        "i386-pc-eltorito",
        &early,
        &grub_dir.join(BIOS).join("eltorito.img"),
        &["biosdisk", "iso9660", "search"],
        log,
    )?;
    efi_image(boot, &scratch, &grub_dir.join("efi.img"), epoch, log)?;
    // Same times on every file, for reproducible ISOs.
    crate::rootfs::set_times(&tree, epoch, false)?;
    let partial = partial_name(out);
    if partial.exists() {
        fs::remove_file(&partial)?;
    }
    Command::new("xorriso")
        .args(["-as", "mkisofs", "-r", "-V", &recipe.outputs.iso_label])
        .arg(format!("--modification-date={date}"))
        // BIOS: El Torito no-emulation boot of grub's core image; the MBR
        // that boots it from a USB disk.
        .args(["-b", &format!("boot/grub/{BIOS}/eltorito.img")])
        .args(["-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"])
        .arg("--grub2-boot-info")
        .arg("--grub2-mbr")
        .arg(Path::new(GRUB_LIB).join(BIOS).join("boot_hybrid.img"))
        // UEFI: the FAT image, as El Torito entry and as GPT partition.
        .args(["--efi-boot", "boot/grub/efi.img", "-efi-boot-part"])
        .args(["--efi-boot-image", "--protective-msdos-label"])
        // The boot files first on the medium.
        .args(["--sort-weight", "0", "/", "--sort-weight", "1", "/boot"])
        .arg("-o")
        .arg(&partial)
        .arg(&tree)
        // xorriso then sets every file's other time stamps to its
        // modification time and derives the GPT GUIDs from the volume date.
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run_logged(log)
        .context("making the hybrid ISO with xorriso")?;
    fs::rename(&partial, out)?;
    fs::remove_dir_all(&tree)?;
    fs::remove_dir_all(&scratch)?;
    Ok(())
}

/// Boot files for tests: one-word files in `d`, and stand-ins for the
/// signed loaders in a tree below it (their contents are their paths).
#[cfg(test)]
pub(crate) fn test_boot_files(d: &Path) -> BootFiles {
    for f in ["k", "i", "s", "ks"] {
        fs::write(d.join(f), f).unwrap();
    }
    let boot = BootFiles {
        kernel: d.join("k"),
        initrd: d.join("i"),
        squashfs: d.join("s"),
        kickstart: d.join("ks"),
        loaders: d.join("tree"),
    };
    for l in boot_chain::MEDIUM.iter().chain(&boot_chain::NETWORK) {
        let p = boot.loader(l);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, l.path).unwrap();
    }
    boot
}

/// The epoch of the ISOs tests build.
#[cfg(test)]
pub(crate) const TEST_EPOCH: i64 = 1_700_000_000;

/// An ISO of `recipe` made as the build makes it, from
/// [`test_boot_files`] in `d`, at [`TEST_EPOCH`]: `d/built.iso`.
#[cfg(test)]
pub(crate) fn test_iso(recipe: &Recipe, d: &Path) -> PathBuf {
    let boot = test_boot_files(d);
    let out = d.join("built.iso");
    iso(
        recipe,
        &boot,
        &d.join("w"),
        &out,
        TEST_EPOCH,
        &d.join("log"),
    )
    .unwrap();
    out
}

/// shim's name in the PXE tree: the DHCP boot file of a UEFI network boot.
pub const PXE_SHIM: &str = "shimx64.efi";

/// `dir/.name.partial` for `dir/name`.
pub fn partial_name(p: &Path) -> PathBuf {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    p.with_file_name(format!(".{name}.partial"))
}

/// The PXE tree: kernel, initrd, squashfs and boot configurations for
/// pxelinux (BIOS), iPXE, and UEFI's signed chain (shim, Debian's signed
/// network grub reading `grub/grub.cfg` from the TFTP root).
pub fn pxe(recipe: &Recipe, boot: &BootFiles, out_dir: &Path) -> Result<()> {
    let base = recipe.outputs.pxe_base_url.trim_end_matches('/');
    let url = format!("{base}/squashfs.img");
    // The installer checks the image it lays on disk against this sum when
    // it is the image the node booted (`liveimg --url` of root=live:).
    let sha256 = crate::cache::file_sha256(&boot.squashfs).with_context(|| {
        format!(
            "reading the root image {} for its sha256",
            boot.squashfs.display()
        )
    })?;
    let net = format!("rd.neednet=1 ip=dhcp hvnode.image_sha256={sha256}");
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
    for loader in boot_chain::NETWORK {
        // shim by its own name (the DHCP boot file), the rest as shim
        // looks for them beside itself.
        let name = if loader == boot_chain::SHIM {
            PXE_SHIM
        } else {
            boot_chain::placed_name(&loader)
        };
        copy(&boot.loader(&loader), &partial.join(name))?;
    }
    fs::write(
        partial.join("boot.ipxe"),
        format!(
            "#!ipxe\n# hvnode {nvr}: iPXE boot script. Kernel, initramfs and root image come over\n# HTTP from {base}/ (this folder served there).\nkernel {base}/vmlinuz {ipxe_args}\ninitrd {base}/initrd.img\nboot\n"
        ),
    )?;
    let grub_cfg = partial.join(boot_chain::NET_GRUB_CFG);
    fs::create_dir_all(grub_cfg.parent().unwrap_or(&partial))?;
    fs::write(
        &grub_cfg,
        format!(
            "# hvnode {nvr}: UEFI network boot: {PXE_SHIM} (shim) starts Debian's signed\n# network grub (grubx64.efi), which reads this file from the TFTP root.\nset timeout=5\nserial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\nmenuentry \"Start hvnode {nvr} live\" --id live {{\n    linux /vmlinuz {grub_args}\n    initrd /initrd.img\n}}\n"
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
            "hvnode {nvr}: PXE tree\n\nServe this folder over HTTP at {base}/ and as the root of a TFTP server.\nThe DHCP boot file: boot.ipxe for iPXE, which fetches everything over\nHTTP; pxelinux.0 (not included) for BIOS pxelinux, which reads\npxelinux.cfg/default; {PXE_SHIM} for UEFI, with or without Secure Boot:\nshim (signed by Microsoft's UEFI CA) starts grubx64.efi (Debian's signed\nnetwork grub), which reads grub/grub.cfg from the TFTP root; mmx64.efi is\nshim's MOK manager. grub and pxelinux load vmlinuz and initrd.img over\nTFTP. The root image always comes over HTTP: root=live:{url}\n\nKernel arguments:\n  root=live:URL      where the root image is (HTTP, HTTPS, FTP or TFTP)\n  rd.live.image      boot it as a live image\n  rd.neednet=1 ip=dhcp  bring the network up in the initramfs\n  hvnode.image_sha256=HEX  the root image's sha256: the installer checks\n                     the image it installs from root=live: against it\n  {}\n  inst.ks=URL        add to install with that kickstart\n  hvnode.engine=FQDN[:PORT] hvnode.engine_fingerprint=FP  zero-touch registration\n",
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
        // The installer finds its kickstart as Anaconda does: an inst.ks= here
        // would hide an OEMDRV volume.
        assert!(cfg.contains("hvnode.install"));
        assert!(!cfg.contains("inst.ks="));
        assert!(cfg.contains("--id install --hotkey=i"));
        assert!(cfg.contains("--id live --hotkey=l"));
    }

    #[test]
    fn menu_entries_boot_with_the_build_arguments_unless_customised() {
        let cfg = iso_grub_cfg(&recipe());
        let kargs = "root=live:CDLABEL=HVNODE rd.live.image security=selinux";
        assert!(
            cfg.contains(&format!("set {KARGS_VAR}='{kargs}'\n")),
            "{cfg}"
        );
        // With a pristine custom.cfg, the command lines are the build's.
        let expanded = cfg.replace(&format!("${KARGS_VAR}"), kargs);
        assert!(expanded.contains(&format!("linux /boot/vmlinuz {kargs} hvnode.install\n")));
        assert!(expanded.contains(&format!("linux /boot/vmlinuz {kargs}\n")));
        assert!(expanded.contains(&format!("linux /boot/vmlinuz {kargs} rd.live.check\n")));
        assert_eq!(cfg.matches(&format!("${KARGS_VAR}")).count(), 5);
        // custom.cfg comes after the defaults it may change, before the menu.
        let source = cfg.find("source ($root)/boot/grub/custom.cfg\n").unwrap();
        for set in ["set default=0", "set timeout=10", "set hvnode_kargs="] {
            assert!(cfg.find(set).unwrap() < source, "{set}");
        }
        assert!(source < cfg.find("menuentry").unwrap());
    }

    #[test]
    fn iso_dates_and_uuids() {
        for (epoch, date, uuid) in [
            (0, "1970010100000000", "1970-01-01-00-00-00-00"),
            (951_782_400, "2000022900000000", "2000-02-29-00-00-00-00"),
            (1_764_113_031, "2025112523235100", "2025-11-25-23-23-51-00"),
            (4_107_542_399, "2100022823595900", "2100-02-28-23-59-59-00"),
        ] {
            assert_eq!(
                iso_date_and_uuid(epoch),
                (date.to_string(), uuid.to_string()),
                "{epoch}"
            );
        }
    }

    #[test]
    fn isos_of_the_same_inputs_are_identical() {
        if !(hvnode_testutil::require_tools(&["xorriso", "grub-mkimage", "mkfs.vfat", "mcopy"])
            && hvnode_testutil::require_path(&Path::new(GRUB_LIB).join(BIOS)))
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let boot = test_boot_files(d);
        let epoch = 1_700_000_000;
        let log = d.join("log");
        let a = d.join("a.iso");
        let b = d.join("b.iso");
        iso(&recipe(), &boot, &d.join("w1"), &a, epoch, &log).unwrap();
        // A second later: nothing may depend on the time of the build.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        iso(&recipe(), &boot, &d.join("w2"), &b, epoch, &log).unwrap();
        assert!(
            fs::read(&a).unwrap() == fs::read(&b).unwrap(),
            "two ISOs of the same inputs differ"
        );
        assert!(!partial_name(&a).exists());
    }

    #[test]
    fn the_iso_carries_the_signed_chain_where_shim_and_grub_look() {
        if !(hvnode_testutil::require_tools(&["xorriso", "grub-mkimage", "mkfs.vfat", "mcopy"])
            && hvnode_testutil::require_path(&Path::new(GRUB_LIB).join(BIOS)))
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = test_iso(&recipe(), d);
        let extract = |from: &str, to: &Path| {
            Command::new("xorriso")
                .args(["-osirrox", "on", "-indev"])
                .arg(&out)
                .args(["-extract", from])
                .arg(to)
                .run()
                .unwrap();
        };
        // The file the CD grub searches for, and the configuration it
        // reads first there: on to this ISO by its UUID, and its menu.
        extract("/.disk/info", &d.join("info"));
        assert!(
            fs::read_to_string(d.join("info"))
                .unwrap()
                .starts_with("hvnode-1.0-1")
        );
        extract("/boot/grub/x86_64-efi/grub.cfg", &d.join("signed.cfg"));
        let (_, uuid) = iso_date_and_uuid(TEST_EPOCH);
        assert_eq!(
            fs::read_to_string(d.join("signed.cfg")).unwrap(),
            signed_grub_cfg(&uuid)
        );
        if hvnode_testutil::require_tool("grub-script-check") {
            Command::new("grub-script-check")
                .arg(d.join("signed.cfg"))
                .run()
                .unwrap();
        }
        // The UEFI image: shim where the firmware looks, grub and the MOK
        // manager where shim looks.
        extract("/boot/grub/efi.img", &d.join("efi.img"));
        for (name, loader) in [
            ("BOOTX64.EFI", boot_chain::SHIM),
            ("grubx64.efi", boot_chain::GRUB_CD),
            ("mmx64.efi", boot_chain::MOK_MANAGER),
        ] {
            let got = d.join(name);
            Command::new("mcopy")
                .arg("-i")
                .arg(d.join("efi.img"))
                .arg(format!("::/EFI/BOOT/{name}"))
                .arg(&got)
                .env("MTOOLS_SKIP_CHECK", "1")
                .run()
                .unwrap();
            assert_eq!(fs::read(&got).unwrap(), loader.path.as_bytes(), "{name}");
        }
        // No unsigned grub for UEFI any more: the ISO has no x86_64-efi modules.
        let listing = Command::new("xorriso")
            .args(["-indev"])
            .arg(&out)
            .args(["-find", "/boot/grub/x86_64-efi", "-name", "*.mod"])
            .run_capture()
            .unwrap_or_default();
        assert!(!listing.contains(".mod"), "{listing}");
    }

    #[test]
    fn pxe_tree_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let boot = test_boot_files(d);
        let out = d.join("pxe");
        pxe(&recipe(), &boot, &out).unwrap();
        for f in [
            "vmlinuz",
            "initrd.img",
            "squashfs.img",
            "boot.ipxe",
            "grub/grub.cfg",
            "shimx64.efi",
            "grubx64.efi",
            "mmx64.efi",
            "pxelinux.cfg/default",
            "README.txt",
        ] {
            assert!(out.join(f).is_file(), "{f}");
        }
        let ipxe = fs::read_to_string(out.join("boot.ipxe")).unwrap();
        assert!(ipxe.starts_with("#!ipxe\n"));
        assert!(ipxe.contains("kernel http://${next-server}/hvnode/vmlinuz root=live:http://${next-server}/hvnode/squashfs.img rd.live.image security=selinux rd.neednet=1 ip=dhcp"));
        assert!(ipxe.contains("initrd http://${next-server}/hvnode/initrd.img"));
        // sha256 of the root image "s".
        let sum =
            "hvnode.image_sha256=043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf89";
        assert!(ipxe.contains(sum), "{ipxe}");
        let grub = fs::read_to_string(out.join("grub/grub.cfg")).unwrap();
        assert!(grub.contains("${net_default_server}"));
        assert!(grub.contains(sum), "{grub}");
        // From the TFTP root, where the network grub's prefix is.
        assert!(grub.contains("    linux /vmlinuz root=live:"), "{grub}");
        assert!(grub.contains("    initrd /initrd.img\n"), "{grub}");
        // shim under the DHCP boot file's name, Debian's network grub
        // where shim looks for its second stage.
        assert_eq!(
            fs::read(out.join("shimx64.efi")).unwrap(),
            boot_chain::SHIM.path.as_bytes()
        );
        assert_eq!(
            fs::read(out.join("grubx64.efi")).unwrap(),
            boot_chain::GRUB_NET.path.as_bytes()
        );
        let pxelinux = fs::read_to_string(out.join("pxelinux.cfg/default")).unwrap();
        assert!(pxelinux.contains(sum), "{pxelinux}");
        assert!(!partial_name(&out).exists());
    }
}
