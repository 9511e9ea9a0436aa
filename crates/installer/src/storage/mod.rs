//! The storage plan (what `--dry-run` prints) and carrying it out. Both
//! `autopart` ([`autopart`]) and explicit `part`/`volgroup`/`logvol`
//! layouts ([`manual`], with `volgroup` for the LVM half) become one
//! [`StoragePlan`]: the GPT partitions of the selected disk, the layer
//! store on them — a volume group with a thin pool, or one btrfs file
//! system — the root's size, and the separate volumes with their mount
//! points. Each planner checks the kickstart's lines, leaves the
//! arithmetic to [`sizing`] (pure functions of sizes), then adds its notes.
//! [`execute`] carries out any such plan; `display` prints it.

pub mod autopart;
mod checks;
mod display;
pub mod execute;
pub mod manual;
pub mod sizing;
#[cfg(test)]
mod tests;
mod volgroup;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use kickstart::node::{Clear, Disks, Layout};
use layers::lvm::PoolSpec;

pub use execute::{check_vg_name_free, clear_disk, format_platform, mkfs, partition};
pub use sizing::{GrowRequest, grow};

use crate::disks;
use hostinfo::BlockDevice;

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
    pub disk: BlockDevice,
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

/// What a storage plan is made from: the kickstart's answers and the
/// machine.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// How the kickstart lays the disks out.
    pub layout: &'a Layout,
    /// Which disks it selects and what it clears.
    pub disks: &'a Disks,
    /// The machine's disks (`lsblk`).
    pub devices: &'a [BlockDevice],
    /// The label of the medium the installer booted from: a disk holding
    /// it is never installed on.
    pub boot_medium: Option<&'a str>,
    /// The machine's memory, for recommended swap sizes.
    pub ram: u64,
}

impl PlanInput<'_> {
    /// Chooses the disk and sizes everything; refuses what cannot work.
    pub fn plan(&self) -> Result<StoragePlan> {
        match self.layout {
            Layout::Manual { .. } => manual::plan(self),
            _ => autopart::plan(self),
        }
    }
}

/// Chooses the disk and sizes everything; refuses what cannot work (a
/// [`PlanInput`] spelled out, for the installer's callers).
pub fn plan(
    layout: &Layout,
    disks: &Disks,
    devices: &[BlockDevice],
    boot_medium: Option<&str>,
    ram: u64,
) -> Result<StoragePlan> {
    PlanInput {
        layout,
        disks,
        devices,
        boot_medium,
        ram,
    }
    .plan()
}

/// The disk a node goes on.
#[derive(Debug, Clone)]
pub struct ChosenDisk {
    pub disk: BlockDevice,
    /// Whether its partitions and signatures are wiped first.
    pub wipe: bool,
}

/// The one disk the node goes on, and whether it is wiped. `hint` is the
/// disk the layout itself names (`part --ondisk`), used when the kickstart
/// selects none.
pub fn choose_disk(
    sel: &Disks,
    all: &[BlockDevice],
    boot_medium: Option<&str>,
    hint: Option<&str>,
) -> Result<ChosenDisk> {
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
        vec![the_only_free_disk(sel, all, boot_medium)?]
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
    Ok(ChosenDisk { disk, wipe })
}

/// The name of the one disk that is free and not ignored, when the
/// kickstart selects none. A disk holding the kickstart (OEMDRV) is never
/// taken unasked.
fn the_only_free_disk(
    sel: &Disks,
    all: &[BlockDevice],
    boot_medium: Option<&str>,
) -> Result<String> {
    let free: Vec<&BlockDevice> = disks::candidates(all)
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
        [one] => Ok(one.name.clone()),
        [] => bail!("there is no disk to install on"),
        many => bail!(
            "several disks could take the node ({}); choose with ignoredisk --only-use=",
            many.iter()
                .map(|d| d.describe())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Whole MiB from a kickstart size (MiB), refusing negative numbers.
pub fn mib(v: i64) -> u64 {
    v.max(0) as u64 * MIB
}
