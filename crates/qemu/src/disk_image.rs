//! `NVR.qcow2`: an installed node as a disk image for VMs, made the way
//! livemedia-creator makes one — the ISO boots in a qemu guest with the
//! kickstart on an `OEMDRV` disk (or embedded in the ISO by `hvnode iso
//! customize`), `hvnode-install` installs on an empty virtual disk and
//! powers off, and the disk is compacted into qcow2.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use kickstart::commands::RebootAction;
use kickstart::source::FsLoader;

use crate::image::Image;
use crate::install::{InstallTimes, wait_installed};
use crate::{Boot, Config, Firmware, Vm, blank_disk, oemdrv_disk, serial_log};

/// Virtual size of the disk (above RHVH's 55 GB minimum; qcow2 keeps only
/// what is written).
pub const DISK_GIB: u64 = 64;

/// What was made.
#[derive(Debug, Clone)]
pub struct DiskImage {
    pub path: PathBuf,
    pub bytes: u64,
    pub times: InstallTimes,
}

/// The image's own payload: the live medium's root image, with its sha256.
fn liveimg_line(img: &Image) -> String {
    format!(
        "liveimg --url=file:///run/initramfs/live/LiveOS/squashfs.img --checksum={}",
        img.squashfs_sha256
    )
}

/// Makes `text` (from `name`) the kickstart of a disk-image install: the
/// medium's own image when it names none, and it must be unattended and
/// end with `poweroff` (the guest's exit is how the builder knows the
/// install finished).
pub fn prepare_kickstart(name: &str, text: &str, img: &Image) -> Result<String> {
    let has_liveimg = text
        .lines()
        .any(|l| l.split_whitespace().next() == Some("liveimg"));
    let ks = if has_liveimg {
        text.to_string()
    } else {
        format!(
            "# Added by hvnode build: the image on the install medium.\n{}\n{text}",
            liveimg_line(img)
        )
    };
    let parse = kickstart::parse_str(name, &ks, &FsLoader);
    if !parse.is_valid() {
        let errors: Vec<String> = parse.diagnostics.0.iter().map(|d| d.to_string()).collect();
        bail!(
            "{name} is not a valid kickstart:\n{}\nfix it (`hvnode ks validate {name}` checks it)",
            errors.join("\n")
        );
    }
    let (plan, diags) = kickstart::node::plan(&parse.kickstart);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == kickstart::Severity::Error)
        .map(|d| d.to_string())
        .collect();
    if !errors.is_empty() {
        bail!("{name} cannot install a node:\n{}", errors.join("\n"));
    }
    if !plan.unattended {
        bail!(
            "{name} leaves questions open (storage, root password or text mode): a disk image is made without anyone at the console; make it unattended"
        );
    }
    if !matches!(
        plan.finish,
        Some(RebootAction::Poweroff) | Some(RebootAction::Shutdown)
    ) {
        bail!(
            "{name} must end the install with `poweroff`: the builder waits for the guest to stop"
        );
    }
    Ok(ks)
}

/// Installs `img` with `kickstart` in a qemu guest and writes the disk to
/// `out` as compressed qcow2 (through a temporary file: `out` is complete
/// or absent). `work` keeps the serial log and the scratch disks.
pub fn make(img: &Image, kickstart: &str, out: &Path, work: &Path) -> Result<DiskImage> {
    make_on(Firmware::Bios, img, kickstart, out, work)
}

/// [`make`], with the ISO booted on `firmware`.
pub fn make_on(
    firmware: Firmware,
    img: &Image,
    kickstart: &str,
    out: &Path,
    work: &Path,
) -> Result<DiskImage> {
    make_from(
        firmware,
        &img.iso,
        KickstartSource::Oemdrv(kickstart),
        out,
        work,
    )
}

/// Where the installer in the guest finds its kickstart.
#[derive(Debug, Clone, Copy)]
pub enum KickstartSource<'a> {
    /// This text, as `ks.cfg` on an OEMDRV disk beside the medium.
    Oemdrv(&'a str),
    /// The medium itself: a kickstart `hvnode iso customize` embedded
    /// (unattended, ending with `poweroff`: see [`prepare_kickstart`]).
    /// The guest has no disk but the one it installs on.
    Medium,
}

/// [`make_on`] from the ISO at `iso`, the kickstart from `source`.
pub fn make_from(
    firmware: Firmware,
    iso: &Path,
    source: KickstartSource<'_>,
    out: &Path,
    work: &Path,
) -> Result<DiskImage> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let oemdrv = match source {
        KickstartSource::Oemdrv(kickstart) => {
            let disk = work.join("oemdrv.img");
            oemdrv_disk(kickstart, &disk)?;
            Some(disk)
        }
        KickstartSource::Medium => None,
    };
    let scratch = work.join("install.qcow2");
    blank_disk(&scratch, DISK_GIB)?;
    let mut cfg = Config::new(firmware, Boot::Cdrom(iso.to_path_buf()));
    cfg.disks = std::iter::once(scratch.clone())
        .chain(oemdrv.clone())
        .collect();
    let log = serial_log(work, "disk-image-install");
    let times = {
        let mut vm = Vm::start(&cfg, &log)?;
        wait_installed(&mut vm, &log, Duration::from_secs(3600))
            .context("installing into the disk image")?
    };
    let tmp = out.with_extension("qcow2.tmp");
    let _ = std::fs::remove_file(&tmp);
    Command::new("qemu-img")
        .args([
            "convert",
            "-q",
            "-O",
            "qcow2",
            "-c",
            "-o",
            "compression_type=zstd",
        ])
        .arg(&scratch)
        .arg(&tmp)
        .run()
        .context("compacting the installed disk into qcow2 (qemu-img convert)")?;
    Command::new("qemu-img")
        .args(["check", "-q"])
        .arg(&tmp)
        .run()
        .context("checking the new qcow2 image")?;
    std::fs::rename(&tmp, out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    let _ = std::fs::remove_file(&scratch);
    if let Some(oemdrv) = &oemdrv {
        let _ = std::fs::remove_file(oemdrv);
    }
    let bytes = std::fs::metadata(out)
        .with_context(|| format!("reading the size of {}", out.display()))?
        .len();
    Ok(DiskImage {
        path: out.to_path_buf(),
        bytes,
        times,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> Image {
        Image {
            dir: "/nonexistent".into(),
            iso: "/nonexistent/x.iso".into(),
            nvr: "hvnode-1.0-0.20261125.0".into(),
            squashfs_sha256: "ab".repeat(32),
        }
    }

    const KS: &str = "zerombr\nclearpart --all --initlabel\nautopart --type=thinp\nrootpw --lock\ntimezone --utc Etc/UTC\ntext\npoweroff\n";

    #[test]
    fn the_medium_image_is_added_when_the_kickstart_names_none() {
        let ks = prepare_kickstart("disk.ks", KS, &img()).unwrap();
        assert!(ks.contains(&format!(
            "liveimg --url=file:///run/initramfs/live/LiveOS/squashfs.img --checksum={}",
            "ab".repeat(32)
        )));
        let own = format!(
            "liveimg --url=http://h/x.img --checksum={}\n{KS}",
            "cd".repeat(32)
        );
        let ks = prepare_kickstart("disk.ks", &own, &img()).unwrap();
        assert_eq!(ks, own);
    }

    #[test]
    fn a_kickstart_that_does_not_power_off_is_refused() {
        let e = prepare_kickstart("disk.ks", &KS.replace("poweroff", "reboot"), &img())
            .unwrap_err()
            .to_string();
        assert!(e.contains("must end the install with `poweroff`"), "{e}");
    }

    #[test]
    fn a_kickstart_with_questions_left_is_refused() {
        let e = prepare_kickstart(
            "disk.ks",
            &KS.replace("autopart --type=thinp\n", ""),
            &img(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("leaves questions open"), "{e}");
    }

    #[test]
    fn an_invalid_kickstart_is_refused_with_its_name() {
        let e = prepare_kickstart("disk.ks", "autopart --type=nonsense\npoweroff\n", &img())
            .unwrap_err()
            .to_string();
        assert!(e.contains("disk.ks"), "{e}");
    }
}
