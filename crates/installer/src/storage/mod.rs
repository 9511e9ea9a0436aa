//! The storage plan (what `--dry-run` prints) and carrying it out. Both
//! `autopart` ([`autopart`]) and explicit `part`/`volgroup`/`logvol`
//! layouts ([`manual`]) become one [`StoragePlan`]: the GPT partitions of
//! the selected disk, the layer store on them — a volume group with a thin
//! pool, or one btrfs file system — the root's size, and the separate
//! volumes with their mount points. [`execute`] carries out any such plan.

pub mod autopart;
pub mod execute;
pub mod manual;
#[cfg(test)]
mod tests;
mod volgroup;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use kickstart::node::{Clear, Disks, Layout};
use layers::lvm::PoolSpec;

pub use execute::{check_vg_name_free, clear_disk, format_platform, mkfs, partition};

use crate::disks::{self, Device, human};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Room kept at the end of the disk (backup GPT) and before the first
/// partition (alignment) when sizes are worked out.
pub const DISK_OVERHEAD: u64 = 4 * MIB;

/// How the layer store is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Thinp,
    Btrfs,
    /// Partitions only: the layers are folders of one XFS file system.
    Plain,
}

/// What a partition is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// grub's core image on GPT disks booted by a BIOS.
    BiosBoot,
    /// The EFI system partition, `/boot/efi`.
    Efi,
    /// `/boot`: a kernel and initramfs per layer.
    Boot,
    /// An LVM physical volume of the store's volume group.
    Pv,
    /// The btrfs file system of the store.
    Btrfs,
    /// The XFS file system of the plain store.
    PlainStore,
    /// A plain file system (or swap): the [`PlannedVolume`] on it says where.
    Volume,
}

/// One GPT partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPartition {
    pub number: u32,
    /// The GPT partition name.
    pub name: String,
    /// sgdisk type code.
    pub code: &'static str,
    pub bytes: u64,
    /// Made to the end of the disk (`bytes` is then what it will at least
    /// have).
    pub to_end: bool,
    pub role: Role,
    /// File-system label (EFI, /boot).
    pub label: String,
    /// fstab options (EFI, /boot).
    pub options: String,
    /// The kickstart line it comes from (`ks.cfg:12: part pv.01`).
    pub from: Option<String>,
}

/// The volume group and thin pool (thin LVM store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgPlan {
    pub spec: PoolSpec,
    /// Partitions that are its physical volumes.
    pub pvs: Vec<u32>,
    /// The group's size (from its partitions, whole extents).
    pub vg_bytes: u64,
    /// Kept free in the group, and why (`20% of the group`).
    pub reserved_bytes: u64,
    pub reserved_why: String,
    /// The pool's data size.
    pub pool_bytes: u64,
}

/// Where the layers are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorePlan {
    Lvm(VgPlan),
    Btrfs { partition: u32 },
    Plain { partition: u32 },
}

/// What a separate volume is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// A thin volume in the store's pool (virtual size).
    Thin,
    /// A plain logical volume in the store's group.
    Thick,
    /// A partition of the disk.
    Partition(u32),
    /// A btrfs subvolume of the store.
    Subvolume,
}

/// One separate volume with its size (thin virtual size; swap file size on
/// btrfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVolume {
    /// The LV or subvolume name (`var_log`).
    pub name: String,
    /// Where it is mounted; `swap` for swap.
    pub mountpoint: String,
    pub bytes: u64,
    /// `ext4`, `xfs`, `swap`, or `btrfs` (a subvolume).
    pub fstype: String,
    pub backing: Backing,
    /// fstab options.
    pub options: String,
    /// File-system (or swap) label.
    pub label: String,
    /// Extra `mkfs` arguments (`--mkfsoptions`).
    pub mkfs_options: Vec<String>,
}

impl PlannedVolume {
    pub fn is_swap(&self) -> bool {
        self.mountpoint == "swap"
    }
}

/// What the installer will do to the disks.
#[derive(Debug, Clone)]
pub struct StoragePlan {
    /// The disk that gets the partitions and the boot loaders.
    pub disk: Device,
    /// Whether existing partitions and signatures are wiped.
    pub wipe: bool,
    /// In order of their numbers.
    pub partitions: Vec<PlannedPartition>,
    pub store: StorePlan,
    /// Virtual size of the root (each base and layer).
    pub root_bytes: u64,
    /// fstab options of the root.
    pub root_options: Option<String>,
    /// Mounted in this order (parents first).
    pub volumes: Vec<PlannedVolume>,
    /// Things the administrator should know (names replaced, options
    /// ignored, mount points RHVH keeps apart that are not).
    pub notes: Vec<String>,
}

impl StoragePlan {
    pub fn scheme(&self) -> Scheme {
        match self.store {
            StorePlan::Lvm(_) => Scheme::Thinp,
            StorePlan::Btrfs { .. } => Scheme::Btrfs,
            StorePlan::Plain { .. } => Scheme::Plain,
        }
    }

    /// The volume group of the store (thin LVM).
    pub fn vg(&self) -> Option<&VgPlan> {
        match &self.store {
            StorePlan::Lvm(v) => Some(v),
            StorePlan::Btrfs { .. } | StorePlan::Plain { .. } => None,
        }
    }

    /// The (first) partition with `role`.
    pub fn partition(&self, role: Role) -> Option<&PlannedPartition> {
        self.partitions.iter().find(|p| p.role == role)
    }

    /// The device of the (first) partition with `role`.
    pub fn device(&self, role: Role) -> Result<PathBuf> {
        match self.partition(role.clone()) {
            Some(p) => Ok(partition_path(&self.disk.path, p.number)),
            None => bail!("the storage plan has no {role:?} partition"),
        }
    }
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
) -> Result<StoragePlan> {
    match layout {
        Layout::Manual { .. } => manual::plan(layout, sel, all, boot_medium, ram),
        _ => autopart::plan(layout, sel, all, boot_medium, ram),
    }
}

/// The one disk the node goes on, and whether it is wiped. `hint` is the
/// disk the layout itself names (`part --ondisk`), used when the kickstart
/// selects none.
pub fn choose_disk(
    sel: &Disks,
    all: &[Device],
    boot_medium: Option<&str>,
    hint: Option<&str>,
) -> Result<(Device, bool)> {
    // The disk: --only-use, else clearpart --drives, else the one the
    // administrator chose, else the one the layout names, else the only
    // disk there is.
    let mut names: Vec<String> = if !sel.only_use.is_empty() {
        sel.only_use.clone()
    } else if !sel.clear_drives.is_empty() {
        sel.clear_drives.clone()
    } else if let Some(d) = hint {
        vec![d.to_string()]
    } else {
        // A disk holding the kickstart (OEMDRV) is never taken unasked.
        let free: Vec<&Device> = disks::candidates(all)
            .into_iter()
            .filter(|d| disks::busy_reason(d, boot_medium).is_none())
            .filter(|d| !sel.ignore.iter().any(|i| disks::find(all, i) == Some(*d)))
            .filter(|d| {
                !d.walk()
                    .iter()
                    .any(|p| p.label.as_deref() == Some(crate::source::OEMDRV))
            })
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
        Clear::Nothing => sel.zerombr,
    };
    if has_data && !wipe {
        bail!(
            "{} is not empty and the kickstart does not clear it; add `clearpart --all --initlabel --drives={}` (everything on it is lost)",
            disk.describe(),
            disk.name
        );
    }
    Ok((disk, wipe))
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
        for p in &self.partitions {
            let what = match p.role {
                Role::BiosBoot => "BIOS boot (grub for BIOS)".to_string(),
                Role::Efi => "EFI system partition, vfat, /boot/efi".to_string(),
                Role::Boot => "ext4, /boot (a kernel and initramfs per layer)".to_string(),
                Role::Pv => match self.vg() {
                    Some(v) => format!("LVM physical volume of volume group {}", v.spec.vg),
                    None => "LVM physical volume".to_string(),
                },
                Role::Btrfs => "btrfs: the layer store and the separate volumes".to_string(),
                Role::PlainStore => "xfs: the layer store".to_string(),
                Role::Volume => self
                    .volumes
                    .iter()
                    .find(|v| v.backing == Backing::Partition(p.number))
                    .map(|v| format!("{}, {}", v.fstype, v.mountpoint))
                    .unwrap_or_default(),
            };
            let size = if p.to_end {
                format!("{}+", human(p.bytes))
            } else {
                human(p.bytes)
            };
            write!(
                f,
                "    {} {:>10}  {}  {what}",
                partition_path(&d.path, p.number).display(),
                size,
                p.code
            )?;
            match &p.from {
                Some(from) => writeln!(f, "  [{from}]")?,
                None => writeln!(f)?,
            }
        }
        match &self.store {
            StorePlan::Lvm(v) => {
                let s = &v.spec;
                let extents = s
                    .extent_bytes
                    .map(|e| format!(", {} extents", human(e)))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "  Volume group {} of {}{extents}, {} kept free ({})",
                    s.vg,
                    human(v.vg_bytes),
                    human(v.reserved_bytes),
                    v.reserved_why
                )?;
                let mut pool = format!("  Thin pool {} of {}", s.pool, human(v.pool_bytes));
                if let Some(m) = s.metadata_bytes {
                    pool.push_str(&format!(", metadata {}", human(m)));
                }
                if let Some(c) = s.chunk_bytes {
                    pool.push_str(&format!(", chunks of {}", human(c)));
                }
                writeln!(f, "{pool}")?;
                writeln!(
                    f,
                    "    {:<28} {:>9}  thin, ext4, read-only image base, then its writable layer NVR+1 (/{})",
                    "NVR",
                    human(self.root_bytes),
                    self.root_options
                        .as_deref()
                        .map(|o| format!(", {o}"))
                        .unwrap_or_default()
                )?;
                for v in self
                    .volumes
                    .iter()
                    .filter(|v| v.backing != Backing::Subvolume)
                {
                    let kind = match v.backing {
                        Backing::Thin => "thin, ",
                        Backing::Thick => "",
                        _ => continue,
                    };
                    let place = if v.is_swap() {
                        String::new()
                    } else {
                        format!(", {}", v.mountpoint)
                    };
                    writeln!(
                        f,
                        "    {:<28} {:>9}  {kind}{}{place} ({})",
                        v.name,
                        human(v.bytes),
                        v.fstype,
                        v.options
                    )?;
                }
            }
            StorePlan::Plain { .. } => {
                writeln!(
                    f,
                    "  Layer store: folders of the xfs partition, hvnode/bases/NVR (the image, read-only at /sysroot) and hvnode/layers/NVR+1 (/, a reflinked copy of it)"
                )?;
            }
            StorePlan::Btrfs { .. } => {
                writeln!(f, "  btrfs subvolumes:")?;
                writeln!(
                    f,
                    "    hvnode/bases/NVR (read-only), hvnode/layers/NVR+1 (/)"
                )?;
                for v in &self.volumes {
                    let what = if v.is_swap() {
                        format!("swap file of {} at /swap/swapfile", human(v.bytes))
                    } else {
                        v.mountpoint.clone()
                    };
                    writeln!(f, "    hvnode/volumes/{:<20} {what}", v.name)?;
                }
            }
        }
        if let Some(bios) = self.partition(Role::BiosBoot) {
            writeln!(
                f,
                "  Boot loaders: grub for BIOS in {} and for UEFI at EFI/BOOT/BOOTX64.EFI",
                partition_path(&d.path, bios.number).display()
            )?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "  Notes:")?;
            for n in &self.notes {
                writeln!(f, "    - {n}")?;
            }
        }
        Ok(())
    }
}

/// Shares `extra` bytes among growing requests in proportion to their
/// base sizes, each up to its maximum (as Anaconda grows partitions and
/// LVs), in whole `unit`s. Requests are (base, max); returns the sizes.
pub fn grow(requests: &[(u64, Option<u64>)], extra: u64, unit: u64) -> Vec<u64> {
    let mut size: Vec<u64> = requests.iter().map(|r| r.0).collect();
    let mut left = extra;
    let mut open: Vec<usize> = (0..requests.len())
        .filter(|&i| requests[i].1.is_none_or(|m| m > requests[i].0))
        .collect();
    while left >= unit && !open.is_empty() {
        let weight: u128 = open.iter().map(|&i| requests[i].0.max(1) as u128).sum();
        let mut given = 0;
        let mut capped = false;
        for &i in &open {
            let share = (left as u128 * requests[i].0.max(1) as u128 / weight) as u64 / unit * unit;
            let room = requests[i].1.map_or(u64::MAX, |m| m - size[i]);
            let add = share.min(room);
            capped |= room <= share;
            size[i] += add;
            given += add;
        }
        left -= given;
        open.retain(|&i| requests[i].1.is_none_or(|m| size[i] < m));
        if !capped {
            // Rounding leftovers (less than a unit per request) go to the first.
            if let Some(&i) = open.first() {
                let room = requests[i].1.map_or(u64::MAX, |m| m - size[i]);
                size[i] += (left / unit * unit).min(room);
            }
            break;
        }
    }
    size
}

/// Whole MiB from a kickstart size (MiB), refusing negative numbers.
pub fn mib(v: i64) -> u64 {
    v.max(0) as u64 * MIB
}
