//! `autopart --type=thinp|lvm|btrfs|plain` (and the console's choice of a
//! disk): BIOS boot, EFI and `/boot` partitions, the rest of the disk for
//! the store, RHVH's separate volumes at their minimum sizes and what is
//! left given to `/var`.

use anyhow::{Result, bail};
use kickstart::commands::AutopartType;
use kickstart::node::{Disks, Layout};
use layers::lvm::{DEFAULT_POOL, DEFAULT_VG, PoolSize, PoolSpec};
use layers::volumes::{
    BIOS_BOOT_SIZE, BOOT_SIZE, EFI_SIZE, PLAIN_STORE_MIN, POOL_RESERVE_PERCENT, ROOT_MIN, VOLUMES,
    min_disk_bytes,
};

use super::{
    Backing, DISK_OVERHEAD, GIB, PlannedPartition, PlannedVolume, Role, Scheme, StoragePlan,
    StorePlan, VgPlan, choose_disk, swap_bytes,
};
use crate::disks::{Device, human};

/// The platform partitions every node has, numbered 1 to 3.
pub fn platform_partitions() -> Vec<PlannedPartition> {
    let part =
        |number, name: &str, code, bytes, role, label: &str, options: &str| PlannedPartition {
            number,
            name: name.into(),
            code,
            bytes,
            to_end: false,
            role,
            label: label.into(),
            options: options.into(),
            from: None,
        };
    vec![
        part(
            1,
            "biosboot",
            "EF02",
            BIOS_BOOT_SIZE,
            Role::BiosBoot,
            "",
            "",
        ),
        part(
            2,
            "efi",
            "EF00",
            EFI_SIZE,
            Role::Efi,
            "EFI",
            "umask=0077,shortname=winnt",
        ),
        part(
            3,
            "boot",
            "8300",
            BOOT_SIZE,
            Role::Boot,
            "boot",
            "defaults,discard",
        ),
    ]
}

/// The plan of an `autopart` (or interactive) layout.
pub fn plan(
    layout: &Layout,
    sel: &Disks,
    all: &[Device],
    boot_medium: Option<&str>,
    ram: u64,
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
                AutopartType::Plain | AutopartType::Partition => Scheme::Plain,
            };
            (s, *nohome, *noswap)
        }
        Layout::Interactive => (Scheme::Thinp, false, false),
        Layout::Manual { .. } => bail!("a part/volgroup/logvol layout is not an autopart"),
    };
    let (disk, wipe) = choose_disk(sel, all, boot_medium, None)?;
    if scheme == Scheme::Plain {
        return plain(disk, wipe, no_home, no_swap, ram);
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
    let store_bytes = disk.size - BIOS_BOOT_SIZE - EFI_SIZE - BOOT_SIZE - DISK_OVERHEAD;
    let pool_bytes = store_bytes / 100 * (100 - POOL_RESERVE_PERCENT);
    let thin = scheme == Scheme::Thinp;
    let mut volumes = if thin {
        separate_volumes(no_home, no_swap, ram, "ext4", Backing::Thin)
    } else {
        separate_volumes(no_home, no_swap, ram, "btrfs", Backing::Subvolume)
    };
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
    let mut partitions = platform_partitions();
    partitions.push(PlannedPartition {
        number: 4,
        name: "hvnode".into(),
        code: if thin { "8E00" } else { "8300" },
        bytes: store_bytes,
        to_end: true,
        role: if thin { Role::Pv } else { Role::Btrfs },
        label: "hvnode".into(),
        options: String::new(),
        from: None,
    });
    let store = if thin {
        StorePlan::Lvm(VgPlan {
            spec: PoolSpec {
                vg: DEFAULT_VG.into(),
                pool: DEFAULT_POOL.into(),
                size: PoolSize::PercentOfVg(100 - POOL_RESERVE_PERCENT),
                extent_bytes: None,
                metadata_bytes: None,
                chunk_bytes: None,
            },
            pvs: vec![4],
            vg_bytes: store_bytes,
            reserved_bytes: store_bytes - pool_bytes,
            reserved_why: format!("{POOL_RESERVE_PERCENT}% of the group, as RHVH keeps"),
            pool_bytes,
        })
    } else {
        StorePlan::Btrfs { partition: 4 }
    };
    Ok(StoragePlan {
        disk,
        wipe,
        partitions,
        store,
        root_bytes: ROOT_MIN,
        root_options: None,
        volumes,
        notes: Vec::new(),
    })
}

/// RHVH's separate volumes at their minimum sizes (swap: Anaconda's
/// recommendation for the memory), as `fstype` on `backing`.
fn separate_volumes(
    no_home: bool,
    no_swap: bool,
    ram: u64,
    fstype: &str,
    backing: Backing,
) -> Vec<PlannedVolume> {
    VOLUMES
        .iter()
        .filter(|v| !(no_home && v.mountpoint == "/home"))
        .filter(|v| !(no_swap && v.is_swap()))
        .map(|v| PlannedVolume {
            name: v.name.into(),
            mountpoint: v.mountpoint.into(),
            bytes: if v.is_swap() {
                swap_bytes(ram).max(v.min_bytes)
            } else {
                v.min_bytes
            },
            fstype: if v.is_swap() { "swap" } else { fstype }.into(),
            backing,
            options: "defaults,discard".into(),
            label: v.name.into(),
            mkfs_options: Vec::new(),
        })
        .collect()
}

/// `autopart --type=plain`: partitions only, no LVM. Each separate volume
/// is an ext4 partition of RHVH's minimum size (swap a swap partition);
/// the layer store is an XFS partition to the end of the disk with at
/// least [`PLAIN_STORE_MIN`] or a tenth of the disk, whichever is more;
/// `/var` gets what is left. Unlike thin volumes these sizes are real, and
/// growing one later means moving partitions.
fn plain(disk: Device, wipe: bool, no_home: bool, no_swap: bool, ram: u64) -> Result<StoragePlan> {
    let mut volumes = separate_volumes(no_home, no_swap, ram, "ext4", Backing::Partition(0));
    let fixed = BIOS_BOOT_SIZE + EFI_SIZE + BOOT_SIZE + DISK_OVERHEAD;
    let vols: u64 = volumes.iter().map(|v| v.bytes).sum();
    let need = fixed + vols + PLAIN_STORE_MIN;
    if disk.size < need {
        bail!(
            "{} is too small for the plain layout: it needs at least {} ({} for the separate volumes, {} for the image layers); use a larger disk or autopart --type=thinp, whose volumes only take what is written",
            disk.describe(),
            human(need),
            human(vols),
            human(PLAIN_STORE_MIN)
        );
    }
    let store_min = PLAIN_STORE_MIN.max(disk.size / 10 / GIB * GIB);
    let spare = disk.size.saturating_sub(fixed + vols + store_min) / GIB * GIB;
    if let Some(var) = volumes.iter_mut().find(|v| v.mountpoint == "/var") {
        var.bytes += spare;
    }
    let mut partitions = platform_partitions();
    let mut number = partitions.len() as u32;
    for v in &mut volumes {
        number += 1;
        v.backing = Backing::Partition(number);
        partitions.push(PlannedPartition {
            number,
            name: v.name.clone(),
            code: if v.is_swap() { "8200" } else { "8300" },
            bytes: v.bytes,
            to_end: false,
            role: Role::Volume,
            label: String::new(),
            options: String::new(),
            from: None,
        });
    }
    number += 1;
    let store_bytes = disk.size - fixed - volumes.iter().map(|v| v.bytes).sum::<u64>();
    partitions.push(PlannedPartition {
        number,
        name: "hvnode".into(),
        code: "8300",
        bytes: store_bytes,
        to_end: true,
        role: Role::PlainStore,
        label: "hvnode".into(),
        options: String::new(),
        from: None,
    });
    Ok(StoragePlan {
        disk,
        wipe,
        partitions,
        store: StorePlan::Plain { partition: number },
        root_bytes: store_bytes,
        root_options: None,
        volumes,
        notes: Vec::new(),
    })
}
