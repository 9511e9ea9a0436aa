//! `autopart --type=thinp|lvm|btrfs|plain` (and the console's choice of a
//! disk): BIOS boot, EFI and `/boot` partitions, the rest of the disk for
//! the store, RHVH's separate volumes at their minimum sizes and what is
//! left given to `/var`.

use anyhow::{Result, bail};
use kickstart::commands::AutopartType;
use kickstart::node::Layout;
use layers::lvm::{DEFAULT_POOL, DEFAULT_VG, PoolSize, PoolSpec};
use layers::volumes::{
    BIOS_BOOT_SIZE, BOOT_SIZE, EFI_SIZE, PLAIN_STORE_MIN, POOL_RESERVE_PERCENT, ROOT_MIN, VOLUMES,
};

use super::sizing::{self, LayeredShortfall, LayeredSizes, PlainShortfall, VolumeStart};
use super::{
    Backing, ChosenDisk, PlanInput, PlannedPartition, PlannedVolume, Role, Scheme, StoragePlan,
    StorePlan, VgPlan, choose_disk, swap_bytes,
};
use crate::disks::human;

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

/// What an `autopart` line (or the console's default) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AutoRequest {
    scheme: Scheme,
    /// `--nohome`: no `/home` volume.
    no_home: bool,
    /// `--noswap`: no swap.
    no_swap: bool,
}

impl AutoRequest {
    /// Reads the layout; refuses what a node cannot have.
    fn of(layout: &Layout) -> Result<Self> {
        match layout {
            Layout::Auto {
                scheme,
                encrypted,
                nohome,
                noswap,
                ..
            } => {
                if *encrypted {
                    bail!(
                        "autopart --encrypted is not supported on a node yet; remove --encrypted"
                    );
                }
                let scheme = match scheme {
                    AutopartType::Thinp | AutopartType::Lvm => Scheme::Thinp,
                    AutopartType::Btrfs => Scheme::Btrfs,
                    AutopartType::Plain | AutopartType::Partition => Scheme::Plain,
                };
                Ok(AutoRequest {
                    scheme,
                    no_home: *nohome,
                    no_swap: *noswap,
                })
            }
            Layout::Interactive => Ok(AutoRequest {
                scheme: Scheme::Thinp,
                no_home: false,
                no_swap: false,
            }),
            Layout::Manual { .. } => bail!("a part/volgroup/logvol layout is not an autopart"),
        }
    }

    /// RHVH's separate volumes at their minimum sizes (swap: Anaconda's
    /// recommendation for the memory), as `fstype` on `backing`.
    fn separate_volumes(&self, ram: u64, fstype: &str, backing: Backing) -> Vec<PlannedVolume> {
        VOLUMES
            .iter()
            .filter(|v| !(self.no_home && v.mountpoint == "/home"))
            .filter(|v| !(self.no_swap && v.is_swap()))
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
}

/// The volumes' starting sizes, as [`sizing`] takes them.
fn starts(volumes: &[PlannedVolume]) -> Vec<VolumeStart<'_>> {
    volumes
        .iter()
        .map(|v| VolumeStart {
            mountpoint: &v.mountpoint,
            bytes: v.bytes,
        })
        .collect()
}

/// The plan of an `autopart` (or interactive) layout.
pub fn plan(input: &PlanInput) -> Result<StoragePlan> {
    let request = AutoRequest::of(input.layout)?;
    let chosen = choose_disk(input.disks, input.devices, input.boot_medium, None)?;
    match request.scheme {
        Scheme::Plain => plain(chosen, request, input.ram),
        Scheme::Thinp | Scheme::Btrfs => layered(chosen, request, input.ram),
    }
}

/// Thin LVM or btrfs: the store partition to the end of the disk, the
/// volumes thin (or subvolumes) in it.
fn layered(chosen: ChosenDisk, request: AutoRequest, ram: u64) -> Result<StoragePlan> {
    let ChosenDisk { disk, wipe } = chosen;
    let thin = request.scheme == Scheme::Thinp;
    let mut volumes = if thin {
        request.separate_volumes(ram, "ext4", Backing::Thin)
    } else {
        request.separate_volumes(ram, "btrfs", Backing::Subvolume)
    };
    let sizes = match sizing::layered_sizes(disk.size, &starts(&volumes)) {
        Ok(sizes) => sizes,
        Err(LayeredShortfall::BelowMinimum { need }) => bail!(
            "{} is too small for a node: it needs at least {} ({} GB; RHVH's minimum is 55 GB)",
            disk.describe(),
            human(need),
            need / 1_000_000_000
        ),
        Err(LayeredShortfall::VolumesOverPool { need, pool }) => bail!(
            "{}: the volumes need {} but the pool would hold {}",
            disk.describe(),
            human(need),
            human(pool)
        ),
    };
    for (v, bytes) in volumes.iter_mut().zip(&sizes.volume_bytes) {
        v.bytes = *bytes;
    }
    let LayeredSizes {
        store_bytes,
        pool_bytes,
        ..
    } = sizes;
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

/// `autopart --type=plain`: partitions only, no LVM. Each separate volume
/// is an ext4 partition of RHVH's minimum size (swap a swap partition);
/// the layer store is an XFS partition to the end of the disk with at
/// least [`PLAIN_STORE_MIN`] or a tenth of the disk, whichever is more;
/// `/var` gets what is left. Unlike thin volumes these sizes are real, and
/// growing one later means moving partitions.
fn plain(chosen: ChosenDisk, request: AutoRequest, ram: u64) -> Result<StoragePlan> {
    let ChosenDisk { disk, wipe } = chosen;
    let mut volumes = request.separate_volumes(ram, "ext4", Backing::Partition(0));
    let sizes = match sizing::plain_sizes(disk.size, &starts(&volumes)) {
        Ok(sizes) => sizes,
        Err(PlainShortfall { need, volumes }) => bail!(
            "{} is too small for the plain layout: it needs at least {} ({} for the separate volumes, {} for the image layers); use a larger disk or autopart --type=thinp, whose volumes only take what is written",
            disk.describe(),
            human(need),
            human(volumes),
            human(PLAIN_STORE_MIN)
        ),
    };
    let mut partitions = platform_partitions();
    let mut number = partitions.len() as u32;
    for (v, bytes) in volumes.iter_mut().zip(&sizes.volume_bytes) {
        number += 1;
        v.bytes = *bytes;
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
    partitions.push(PlannedPartition {
        number,
        name: "hvnode".into(),
        code: "8300",
        bytes: sizes.store_bytes,
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
        root_bytes: sizes.store_bytes,
        root_options: None,
        volumes,
        notes: Vec::new(),
    })
}
