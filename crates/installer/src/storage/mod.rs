//! The storage plan (what `--dry-run` prints) and carrying it out: new
//! GPT on the selected disk, BIOS boot + EFI + `/boot` partitions, and the
//! rest for the layer store — an LVM thin pool (`thinp`) or one btrfs file
//! system (`btrfs`) — with the separate volumes in it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use kickstart::commands::AutopartType;
use kickstart::node::{Clear, Disks, Layout};
use layers::lvm::{DEFAULT_POOL, DEFAULT_VG};
use layers::volumes::{
    BIOS_BOOT_SIZE, BOOT_SIZE, EFI_SIZE, POOL_RESERVE_PERCENT, ROOT_MIN, VOLUMES, min_disk_bytes,
};

use crate::disks::{self, Device, human};

const GIB: u64 = 1 << 30;

/// How the layer store is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Thinp,
    Btrfs,
}

/// One separate volume with its size (thin virtual size, or none on btrfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVolume {
    pub name: &'static str,
    pub mountpoint: &'static str,
    pub bytes: u64,
}

/// What the installer will do to the disks.
#[derive(Debug, Clone)]
pub struct StoragePlan {
    pub scheme: Scheme,
    /// The disk that gets the partitions and the boot loaders.
    pub disk: Device,
    /// Whether existing partitions and signatures are wiped.
    pub wipe: bool,
    pub no_home: bool,
    pub no_swap: bool,
    /// Size of the store's partition.
    pub store_bytes: u64,
    /// Thin pool size (thinp).
    pub pool_bytes: u64,
    /// Virtual size of the root (each base and layer).
    pub root_bytes: u64,
    pub volumes: Vec<PlannedVolume>,
}

/// The partitions, in order: number, name, sgdisk type code, size (None:
/// the rest of the disk).
pub fn partitions(scheme: Scheme) -> [(u32, &'static str, &'static str, Option<u64>); 4] {
    [
        (1, "biosboot", "EF02", Some(BIOS_BOOT_SIZE)),
        (2, "efi", "EF00", Some(EFI_SIZE)),
        (3, "boot", "8300", Some(BOOT_SIZE)),
        (
            4,
            "hvnode",
            match scheme {
                Scheme::Thinp => "8E00",
                Scheme::Btrfs => "8300",
            },
            None,
        ),
    ]
}

/// The device node of partition `n` of `disk` (`vda3`, `nvme0n1p3`).
pub fn partition_path(disk: &Path, n: u32) -> PathBuf {
    let s = disk.to_string_lossy();
    if s.ends_with(|c: char| c.is_ascii_digit()) {
        PathBuf::from(format!("{s}p{n}"))
    } else {
        PathBuf::from(format!("{s}{n}"))
    }
}

/// Anaconda's swap recommendation for `ram` bytes of memory.
pub fn swap_bytes(ram: u64) -> u64 {
    let g = ram.div_ceil(GIB);
    let gib = match g {
        0..=2 => 2 * g,
        3..=8 => g,
        9..=64 => g / 2,
        _ => 4,
    };
    gib.max(1) * GIB
}

/// Chooses the disk and sizes everything; refuses what cannot work.
pub fn plan(
    layout: &Layout,
    sel: &Disks,
    all: &[Device],
    boot_medium: Option<&str>,
    ram: u64,
    interactive_disk: Option<&str>,
) -> Result<StoragePlan> {
    let (scheme, no_home, no_swap) = match layout {
        Layout::Auto {
            scheme,
            encrypted,
            nohome,
            noswap,
            ..
        } => {
            if *encrypted {
                bail!("autopart --encrypted is not supported on a node yet; remove --encrypted");
            }
            let s = match scheme {
                AutopartType::Thinp | AutopartType::Lvm => Scheme::Thinp,
                AutopartType::Btrfs => Scheme::Btrfs,
                AutopartType::Plain | AutopartType::Partition => bail!(
                    "autopart --type=plain has no room for image layers (updates and rollback need them); use --type=thinp or --type=btrfs"
                ),
            };
            (s, *nohome, *noswap)
        }
        Layout::Interactive => (Scheme::Thinp, false, false),
        Layout::Manual { .. } => bail!(
            "part/volgroup/logvol layouts are not supported by this installer yet; use autopart --type=thinp or --type=btrfs"
        ),
    };
    // The disk: --only-use, else clearpart --drives, else the one the
    // administrator chose, else the only disk there is.
    let mut names: Vec<String> = if !sel.only_use.is_empty() {
        sel.only_use.clone()
    } else if !sel.clear_drives.is_empty() {
        sel.clear_drives.clone()
    } else if let Some(d) = interactive_disk {
        vec![d.to_string()]
    } else {
        let free: Vec<&Device> = disks::candidates(all)
            .into_iter()
            .filter(|d| disks::busy_reason(d, boot_medium).is_none())
            .filter(|d| !sel.ignore.iter().any(|i| disks::find(all, i) == Some(*d)))
            .collect();
        match free.as_slice() {
            [one] => vec![one.name.clone()],
            [] => bail!("there is no disk to install on"),
            many => bail!(
                "several disks could take the node ({}); choose with ignoredisk --only-use=",
                many.iter()
                    .map(|d| d.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    names.retain(|n| !sel.ignore.contains(n));
    let selected = disks::check_selected(all, &names, boot_medium)?;
    let Some(disk) = selected.first().cloned() else {
        bail!("every selected disk is also in ignoredisk --drives");
    };
    if selected.len() > 1 {
        bail!(
            "the node goes on one disk; the kickstart selects {} ({})",
            selected.len(),
            names.join(", ")
        );
    }
    let has_data = !disk.children.is_empty() || disk.fstype.is_some();
    let wipe = match sel.clear {
        Clear::All => true,
        Clear::Linux | Clear::List => true,
        Clear::Nothing => sel.zerombr || interactive_disk.is_some(),
    };
    if has_data && !wipe {
        bail!(
            "{} is not empty and the kickstart does not clear it; add `clearpart --all --initlabel --drives={}` (everything on it is lost)",
            disk.describe(),
            disk.name
        );
    }
    let min = min_disk_bytes();
    if disk.size < min {
        bail!(
            "{} is too small for a node: it needs at least {} ({} GB; RHVH's minimum is 55 GB)",
            disk.describe(),
            human(min),
            min / 1_000_000_000
        );
    }
    let store_bytes = disk.size - BIOS_BOOT_SIZE - EFI_SIZE - BOOT_SIZE - (4 << 20);
    let pool_bytes = store_bytes / 100 * (100 - POOL_RESERVE_PERCENT);
    let mut volumes: Vec<PlannedVolume> = VOLUMES
        .iter()
        .filter(|v| !(no_home && v.mountpoint == "/home"))
        .filter(|v| !(no_swap && v.is_swap()))
        .map(|v| PlannedVolume {
            name: v.name,
            mountpoint: v.mountpoint,
            bytes: if v.is_swap() {
                swap_bytes(ram).max(v.min_bytes)
            } else {
                v.min_bytes
            },
        })
        .collect();
    let used: u64 = ROOT_MIN + volumes.iter().map(|v| v.bytes).sum::<u64>();
    if used > pool_bytes {
        bail!(
            "{}: the volumes need {} but the pool would hold {}",
            disk.describe(),
            human(used),
            human(pool_bytes)
        );
    }
    // What is left goes to /var, where logs, cores and local VM disks live.
    if let Some(var) = volumes.iter_mut().find(|v| v.mountpoint == "/var") {
        var.bytes += (pool_bytes - used) / GIB * GIB;
    }
    Ok(StoragePlan {
        scheme,
        disk,
        wipe,
        no_home,
        no_swap,
        store_bytes,
        pool_bytes,
        root_bytes: ROOT_MIN,
        volumes,
    })
}

impl fmt::Display for StoragePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.disk;
        if self.wipe {
            writeln!(
                f,
                "Disk {}: WIPED (every partition and signature on it is lost)",
                d.describe()
            )?;
        } else {
            writeln!(f, "Disk {}: new partition table", d.describe())?;
        }
        writeln!(f, "  GPT partitions:")?;
        for (n, name, code, size) in partitions(self.scheme) {
            let what = match name {
                "biosboot" => "BIOS boot (grub for BIOS)".to_string(),
                "efi" => "EFI system partition, vfat, /boot/efi".to_string(),
                "boot" => "ext4, /boot (a kernel and initramfs per layer)".to_string(),
                _ => match self.scheme {
                    Scheme::Thinp => format!("LVM physical volume of volume group {DEFAULT_VG}"),
                    Scheme::Btrfs => "btrfs: the layer store and the separate volumes".to_string(),
                },
            };
            let size = size.map(human).unwrap_or_else(|| human(self.store_bytes));
            writeln!(
                f,
                "    {} {:>9}  {code}  {what}",
                partition_path(&d.path, n).display(),
                size
            )?;
        }
        match self.scheme {
            Scheme::Thinp => {
                writeln!(
                    f,
                    "  Volume group {DEFAULT_VG}, thin pool {DEFAULT_POOL} of {} ({}% of the group kept free)",
                    human(self.pool_bytes),
                    POOL_RESERVE_PERCENT
                )?;
                writeln!(
                    f,
                    "    {:<28} {:>9}  ext4, read-only image base, then its writable layer NVR+1 (/)",
                    "NVR",
                    human(self.root_bytes)
                )?;
                for v in &self.volumes {
                    let fs = if v.mountpoint == "swap" {
                        "swap"
                    } else {
                        "ext4, discard"
                    };
                    writeln!(
                        f,
                        "    {:<28} {:>9}  {fs}, {}",
                        v.name,
                        human(v.bytes),
                        v.mountpoint
                    )?;
                }
            }
            Scheme::Btrfs => {
                writeln!(f, "  btrfs subvolumes:")?;
                writeln!(
                    f,
                    "    hvnode/bases/NVR (read-only), hvnode/layers/NVR+1 (/)"
                )?;
                for v in &self.volumes {
                    let what = if v.mountpoint == "swap" {
                        format!("swap file of {} at /swap/swapfile", human(v.bytes))
                    } else {
                        v.mountpoint.to_string()
                    };
                    writeln!(f, "    hvnode/volumes/{:<20} {what}", v.name)?;
                }
            }
        }
        writeln!(
            f,
            "  Boot loaders: grub for BIOS in {} and for UEFI at EFI/BOOT/BOOTX64.EFI",
            partition_path(&d.path, 1).display()
        )
    }
}

fn lvm(sub: &str) -> Command {
    let mut c = Command::new("lvm");
    c.arg(sub);
    c
}

/// Deactivates and removes LVM volume groups with a physical volume on
/// `disk` (a previous install), then wipes every signature and the
/// partition table. Refuses when such a group spans other disks.
pub fn clear_disk(disk: &Device, log: &Path) -> Result<()> {
    let pvs = lvm("pvs")
        .args(["--reportformat", "json", "-o", "pv_name,vg_name"])
        .run_capture()
        .context("listing LVM physical volumes")?;
    let v: serde_json::Value = serde_json::from_str(&pvs).context("reading the output of pvs")?;
    let rows: Vec<(String, String)> = v["report"][0]["pv"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["pv_name"].as_str().unwrap_or("").to_string(),
                        r["vg_name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ours: Vec<String> = disk
        .walk()
        .iter()
        .map(|d| d.path.to_string_lossy().into_owned())
        .collect();
    let mut vgs: Vec<String> = rows
        .iter()
        .filter(|(pv, vg)| ours.contains(pv) && !vg.is_empty())
        .map(|(_, vg)| vg.clone())
        .collect();
    vgs.sort();
    vgs.dedup();
    for vg in &vgs {
        if let Some((pv, _)) = rows.iter().find(|(pv, g)| g == vg && !ours.contains(pv)) {
            bail!(
                "volume group {vg} on {} also uses {pv}, which is not selected; refusing to break it",
                disk.name
            );
        }
        lvm("vgchange")
            .args(["-an", vg])
            .run_appending(log)
            .with_context(|| format!("deactivating the volume group {vg} of a previous install"))?;
        lvm("vgremove")
            .args(["-ff", "-y", vg])
            .run_appending(log)
            .with_context(|| format!("removing the volume group {vg}"))?;
    }
    let mut parts: Vec<&Device> = disk.walk();
    parts.reverse();
    for d in parts {
        Command::new("wipefs")
            .arg("-a")
            .arg(&d.path)
            .run_appending(log)
            .with_context(|| format!("wiping the signatures on {}", d.path.display()))?;
    }
    Command::new("sgdisk")
        .arg("--zap-all")
        .arg(&disk.path)
        .run_appending(log)
        .with_context(|| format!("clearing the partition tables of {}", disk.path.display()))?;
    Ok(())
}

/// Writes the GPT and waits for the partition devices.
pub fn partition(plan: &StoragePlan, log: &Path) -> Result<()> {
    let mut c = Command::new("sgdisk");
    for (n, name, code, size) in partitions(plan.scheme) {
        let end = size
            .map(|s| format!("+{}K", s / 1024))
            .unwrap_or_else(|| "0".into());
        c.arg(format!("--new={n}:0:{end}"))
            .arg(format!("--typecode={n}:{code}"))
            .arg(format!("--change-name={n}:{name}"));
    }
    c.arg(&plan.disk.path)
        .run_appending(log)
        .with_context(|| format!("partitioning {}", plan.disk.path.display()))?;
    Command::new("partx")
        .args(["-u"])
        .arg(&plan.disk.path)
        .run_appending(log)
        .ok();
    Command::new("udevadm")
        .args(["settle", "--timeout=60"])
        .run_appending(log)
        .context("waiting for the new partitions")?;
    for (n, ..) in partitions(plan.scheme) {
        let p = partition_path(&plan.disk.path, n);
        if !p.exists() {
            bail!("{} did not appear after partitioning", p.display());
        }
    }
    Ok(())
}

/// `mkfs` wrapper: `mkfs.TYPE ARGS DEVICE`.
pub fn mkfs(fstype: &str, args: &[&str], dev: &Path, log: &Path) -> Result<()> {
    Command::new(format!("mkfs.{fstype}"))
        .args(args)
        .arg(dev)
        .run_appending(log)
        .with_context(|| format!("making a {fstype} file system on {}", dev.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, size: u64, data: bool) -> Device {
        let mut d: Device = serde_json::from_value(serde_json::json!({
            "name": name, "path": format!("/dev/{name}"), "type": "disk", "size": size,
        }))
        .unwrap();
        if data {
            d.fstype = Some("LVM2_member".into());
        }
        d
    }

    fn auto(scheme: AutopartType) -> Layout {
        Layout::Auto {
            scheme,
            fstype: None,
            encrypted: false,
            nohome: false,
            noswap: false,
        }
    }

    fn only(disk: &str) -> Disks {
        Disks {
            only_use: vec![disk.into()],
            clear: Clear::All,
            ..Disks::default()
        }
    }

    #[test]
    fn thin_plan_sizes_from_the_disk() {
        let all = [disk("vda", 64 << 30, false)];
        let p = plan(
            &auto(AutopartType::Thinp),
            &only("vda"),
            &all,
            None,
            3 << 30,
            None,
        )
        .unwrap();
        assert_eq!(p.scheme, Scheme::Thinp);
        assert!(p.pool_bytes < p.store_bytes * 81 / 100);
        let total: u64 = p.root_bytes + p.volumes.iter().map(|v| v.bytes).sum::<u64>();
        assert!(total <= p.pool_bytes, "{total} > {}", p.pool_bytes);
        let var = p.volumes.iter().find(|v| v.mountpoint == "/var").unwrap();
        assert!(var.bytes > 5 << 30, "the rest goes to /var");
        let swap = p.volumes.iter().find(|v| v.name == "swap").unwrap();
        assert_eq!(swap.bytes, 3 << 30);
        let text = p.to_string();
        assert!(text.contains("/dev/vda4"), "{text}");
        assert!(text.contains("var_log_audit"), "{text}");
        assert!(text.contains("WIPED"), "{text}");
    }

    #[test]
    fn a_small_disk_is_refused_with_the_minimum() {
        let all = [disk("vda", 20 << 30, false)];
        let e = plan(
            &auto(AutopartType::Thinp),
            &only("vda"),
            &all,
            None,
            2 << 30,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("too small") && e.contains("55 GB"), "{e}");
    }

    #[test]
    fn a_disk_with_data_needs_clearpart() {
        let all = [disk("vda", 64 << 30, true)];
        let sel = Disks {
            only_use: vec!["vda".into()],
            ..Disks::default()
        };
        let e = plan(&auto(AutopartType::Thinp), &sel, &all, None, 2 << 30, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("clearpart --all --initlabel --drives=vda"),
            "{e}"
        );
    }

    #[test]
    fn several_disks_without_a_choice_are_an_error() {
        let all = [disk("vda", 64 << 30, false), disk("vdb", 64 << 30, false)];
        let e = plan(
            &auto(AutopartType::Btrfs),
            &Disks::default(),
            &all,
            None,
            2 << 30,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ignoredisk --only-use="), "{e}");
        let p = plan(
            &auto(AutopartType::Btrfs),
            &Disks::default(),
            &all[..1],
            None,
            2 << 30,
            None,
        )
        .unwrap();
        assert_eq!(p.scheme, Scheme::Btrfs);
        assert!(p.to_string().contains("hvnode/volumes/var_log"));
    }

    #[test]
    fn plain_and_encrypted_are_refused_with_an_alternative() {
        let all = [disk("vda", 64 << 30, false)];
        let e = plan(
            &auto(AutopartType::Plain),
            &only("vda"),
            &all,
            None,
            1 << 30,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--type=thinp"), "{e}");
    }

    #[test]
    fn partition_names_follow_the_kernel() {
        assert_eq!(
            partition_path(Path::new("/dev/vda"), 3),
            Path::new("/dev/vda3")
        );
        assert_eq!(
            partition_path(Path::new("/dev/nvme0n1"), 3),
            Path::new("/dev/nvme0n1p3")
        );
    }

    #[test]
    fn swap_follows_anacondas_table() {
        assert_eq!(swap_bytes(1 << 30), 2 << 30);
        assert_eq!(swap_bytes(4 << 30), 4 << 30);
        assert_eq!(swap_bytes(32 << 30), 16 << 30);
        assert_eq!(swap_bytes(256 << 30), 4 << 30);
    }
}
