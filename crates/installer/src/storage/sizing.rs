//! The sizing arithmetic of every layout, apart from kickstarts and disks:
//! sizes in, sizes out, so that it can be checked with tables. The
//! planners ([`super::autopart`], [`super::manual`], [`super::volgroup`])
//! check the kickstart's lines, hand the sizes they ask for to these
//! functions, and turn a shortfall into an error that names the lines.
//!
//! - [`layered_sizes`] / [`plain_sizes`]: `autopart` on a disk of a given
//!   size (thin LVM and btrfs share the first).
//! - [`partition_sizes`]: explicit `part` lines on a disk.
//! - [`group_sizes`] / [`thin_sizes`]: the volume group of explicit
//!   `volgroup`/`logvol` lines, then the root and thin volumes in its pool.

use layers::volumes::{
    BIOS_BOOT_SIZE, BOOT_SIZE, EFI_SIZE, PLAIN_STORE_MIN, POOL_RESERVE_PERCENT, ROOT_MIN,
    min_disk_bytes,
};

use super::{DISK_OVERHEAD, GIB, MIB};

#[cfg(test)]
mod tests;

/// What pool metadata is budgeted when lvm chooses its size (its default
/// stays at or below this), twice: the pool's and the spare copy.
pub const METADATA_BUDGET: u64 = 128 * MIB;

/// What the platform partitions (BIOS boot, EFI, `/boot`) and the room
/// kept at the ends of the disk take.
pub const PLATFORM_BYTES: u64 = BIOS_BOOT_SIZE + EFI_SIZE + BOOT_SIZE + DISK_OVERHEAD;

/// A size that grows into spare room: where it starts and the most it may
/// reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowRequest {
    pub base: u64,
    pub max: Option<u64>,
}

/// Shares `extra` bytes among growing requests in proportion to their
/// base sizes, each up to its maximum (as Anaconda grows partitions and
/// LVs), in whole `unit`s. Returns the sizes, in the order of `requests`.
pub fn grow(requests: &[GrowRequest], extra: u64, unit: u64) -> Vec<u64> {
    let mut size: Vec<u64> = requests.iter().map(|r| r.base).collect();
    let mut left = extra;
    let mut open: Vec<usize> = (0..requests.len())
        .filter(|&i| requests[i].max.is_none_or(|m| m > requests[i].base))
        .collect();
    while left >= unit && !open.is_empty() {
        let weight: u128 = open.iter().map(|&i| requests[i].base.max(1) as u128).sum();
        let mut given = 0;
        let mut capped = false;
        for &i in &open {
            let share =
                (left as u128 * requests[i].base.max(1) as u128 / weight) as u64 / unit * unit;
            let room = requests[i].max.map_or(u64::MAX, |m| m - size[i]);
            let add = share.min(room);
            capped |= room <= share;
            size[i] += add;
            given += add;
        }
        left -= given;
        open.retain(|&i| requests[i].max.is_none_or(|m| size[i] < m));
        if !capped {
            // Rounding leftovers (less than a unit per request) go to the first.
            if let Some(&i) = open.first() {
                let room = requests[i].max.map_or(u64::MAX, |m| m - size[i]);
                size[i] += (left / unit * unit).min(room);
            }
            break;
        }
    }
    size
}

// autopart

/// A separate volume `autopart` makes, at its starting size (RHVH's
/// minimum; swap: the recommendation for the memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeStart<'a> {
    pub mountpoint: &'a str,
    pub bytes: u64,
}

/// Thin LVM or btrfs `autopart`: the store partition after the platform
/// ones, the pool in it, and each volume's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayeredSizes {
    /// The store partition (made to the end of the disk).
    pub store_bytes: u64,
    /// What the root and the volumes are sized against: the thin pool,
    /// [`POOL_RESERVE_PERCENT`] of the store short (the same share of the
    /// btrfs store).
    pub pool_bytes: u64,
    /// In the order of the volumes asked for; `/var` has what is left.
    pub volume_bytes: Vec<u64>,
}

/// `autopart --type=plain`: each volume's partition and the store after
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainSizes {
    /// The XFS store partition (made to the end of the disk): the root.
    pub store_bytes: u64,
    /// In the order of the volumes asked for; `/var` has what is left.
    pub volume_bytes: Vec<u64>,
}

/// Why a thin LVM or btrfs `autopart` layout does not fit its disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayeredShortfall {
    /// The disk is smaller than any thin LVM or btrfs node
    /// ([`min_disk_bytes`]).
    BelowMinimum { need: u64 },
    /// The root and the volumes at their starting sizes need more than the
    /// pool (a large swap).
    VolumesOverPool { need: u64, pool: u64 },
}

/// The platform partitions, the volumes and the smallest plain store need
/// more than the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainShortfall {
    pub need: u64,
    /// What the separate volumes take of it.
    pub volumes: u64,
}

/// Adds `spare` to the first `/var` of `volumes`; the sizes of all.
fn with_spare_on_var(volumes: &[VolumeStart], spare: u64) -> Vec<u64> {
    let mut bytes: Vec<u64> = volumes.iter().map(|v| v.bytes).collect();
    if let Some(i) = volumes.iter().position(|v| v.mountpoint == "/var") {
        bytes[i] += spare;
    }
    bytes
}

/// Thin LVM and btrfs `autopart` on a disk of `disk_bytes`: the store
/// takes the disk after the platform partitions, the pool four fifths of
/// it, the root [`ROOT_MIN`], and `/var` the whole GiB the volumes leave.
pub fn layered_sizes(
    disk_bytes: u64,
    volumes: &[VolumeStart],
) -> Result<LayeredSizes, LayeredShortfall> {
    let min = min_disk_bytes();
    if disk_bytes < min {
        return Err(LayeredShortfall::BelowMinimum { need: min });
    }
    let store_bytes = disk_bytes - BIOS_BOOT_SIZE - EFI_SIZE - BOOT_SIZE - DISK_OVERHEAD;
    let pool_bytes = store_bytes / 100 * (100 - POOL_RESERVE_PERCENT);
    let used = ROOT_MIN + volumes.iter().map(|v| v.bytes).sum::<u64>();
    if used > pool_bytes {
        return Err(LayeredShortfall::VolumesOverPool {
            need: used,
            pool: pool_bytes,
        });
    }
    Ok(LayeredSizes {
        store_bytes,
        pool_bytes,
        volume_bytes: with_spare_on_var(volumes, (pool_bytes - used) / GIB * GIB),
    })
}

/// `autopart --type=plain` on a disk of `disk_bytes`: each volume a
/// partition of its starting size, the store at least [`PLAIN_STORE_MIN`]
/// or a tenth of the disk (whole GiB), whichever is more, and `/var` the
/// whole GiB that leaves.
pub fn plain_sizes(disk_bytes: u64, volumes: &[VolumeStart]) -> Result<PlainSizes, PlainShortfall> {
    let vols: u64 = volumes.iter().map(|v| v.bytes).sum();
    let need = PLATFORM_BYTES + vols + PLAIN_STORE_MIN;
    if disk_bytes < need {
        return Err(PlainShortfall {
            need,
            volumes: vols,
        });
    }
    let store_min = PLAIN_STORE_MIN.max(disk_bytes / 10 / GIB * GIB);
    let spare = disk_bytes.saturating_sub(PLATFORM_BYTES + vols + store_min) / GIB * GIB;
    let volume_bytes = with_spare_on_var(volumes, spare);
    let store_bytes = disk_bytes - PLATFORM_BYTES - volume_bytes.iter().sum::<u64>();
    Ok(PlainSizes {
        store_bytes,
        volume_bytes,
    })
}

// Explicit partitions

/// A `part` line's size: `--size` (or its default), `--grow`, `--maxsize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRequest {
    pub base: u64,
    pub grow: bool,
    pub max: Option<u64>,
}

/// The partitions need more than the disk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskShortfall {
    /// The partitions' sizes before growing.
    pub need: u64,
    /// The disk less [`DISK_OVERHEAD`].
    pub usable: u64,
}

/// Explicit partitions on a disk of `disk_bytes`: each of its base size,
/// and the growing ones share the rest in whole MiB. In the order of
/// `parts`.
pub fn partition_sizes(
    disk_bytes: u64,
    parts: &[PartitionRequest],
) -> Result<Vec<u64>, DiskShortfall> {
    let usable = disk_bytes.saturating_sub(DISK_OVERHEAD);
    let fixed: u64 = parts.iter().map(|p| p.base).sum();
    if fixed > usable {
        return Err(DiskShortfall {
            need: fixed,
            usable,
        });
    }
    let growing: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].grow).collect();
    let requests: Vec<GrowRequest> = growing
        .iter()
        .map(|&i| GrowRequest {
            base: parts[i].base,
            max: parts[i].max,
        })
        .collect();
    let grown = grow(&requests, usable - fixed, MIB);
    let mut sizes: Vec<u64> = parts.iter().map(|p| p.base).collect();
    for (&i, bytes) in growing.iter().zip(grown) {
        sizes[i] = bytes;
    }
    Ok(sizes)
}

// The volume group

/// A thick logical volume or the thin pool, as the group's arithmetic
/// sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LvRequest {
    /// `--size` (or the recommended swap size); 0 when not given.
    pub bytes: u64,
    /// `--percent` of what the fixed sizes leave.
    pub percent: Option<i64>,
    pub grow: bool,
    /// `--maxsize`, for a growing one.
    pub max: Option<u64>,
}

/// The space of a volume group and what is asked of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRequest<'a> {
    /// The group's size less what is kept free.
    pub free: u64,
    /// Its extent size: every size is whole extents.
    pub extent: u64,
    /// The pool's `--metadatasize`, if given.
    pub metadata: Option<u64>,
    pub pool: LvRequest,
    /// The thick logical volumes, in kickstart order.
    pub thick: &'a [LvRequest],
}

/// The pool's data size and each thick volume's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSizes {
    pub pool_bytes: u64,
    /// In the order of [`GroupRequest::thick`].
    pub thick_bytes: Vec<u64>,
}

/// Why a volume group's sizes do not work out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupShortfall {
    /// The volumes, the pool and its metadata need more than is free.
    Short { need: u64, metadata: u64 },
    /// This thick volume (index into [`GroupRequest::thick`]) has no size
    /// and does not grow.
    Unsized { thick: usize },
    /// The pool has no size after growing.
    PoolUnsized,
}

/// What the pool's metadata and its spare copy are given room for.
pub fn metadata_budget(metadata: Option<u64>, extent: u64) -> u64 {
    2 * metadata.unwrap_or(METADATA_BUDGET).div_ceil(extent) * extent
}

/// Sizes in a volume group as Anaconda works them out: fixed sizes first,
/// then `--percent` of what is left, then `--grow` shares the rest (the
/// pool first), all in whole extents.
pub fn group_sizes(req: &GroupRequest) -> Result<GroupSizes, GroupShortfall> {
    let pe = req.extent;
    let up = |b: u64| b.div_ceil(pe) * pe;
    let pool = &req.pool;
    let meta_budget = metadata_budget(req.metadata, pe);
    let short = |need| GroupShortfall::Short {
        need,
        metadata: meta_budget,
    };
    let pool_base = up(pool.bytes);
    let fixed: u64 = req
        .thick
        .iter()
        .filter(|t| t.percent.is_none())
        .map(|t| up(t.bytes))
        .sum::<u64>()
        + if pool.percent.is_none() { pool_base } else { 0 }
        + meta_budget;
    if fixed > req.free {
        return Err(short(fixed));
    }
    let after_fixed = req.free - fixed;
    let pct = |n: i64| after_fixed / 100 * n as u64 / pe * pe;
    let mut pool_bytes = match pool.percent {
        Some(n) => pct(n),
        None => pool_base,
    };
    let mut thick_bytes = Vec::with_capacity(req.thick.len());
    for (i, t) in req.thick.iter().enumerate() {
        let bytes = match t.percent {
            Some(n) => pct(n),
            None => up(t.bytes),
        };
        if bytes == 0 && !t.grow {
            return Err(GroupShortfall::Unsized { thick: i });
        }
        thick_bytes.push(bytes);
    }
    let used = fixed - meta_budget
        + (0..req.thick.len())
            .filter(|&i| req.thick[i].percent.is_some())
            .map(|i| thick_bytes[i])
            .sum::<u64>()
        + if pool.percent.is_some() {
            pool_bytes
        } else {
            0
        };
    if used + meta_budget > req.free {
        return Err(short(used + meta_budget));
    }
    let extra = req.free - used - meta_budget;
    // The growing ones: the pool (first) and thick volumes.
    let mut requests: Vec<GrowRequest> = Vec::new();
    if pool.grow {
        requests.push(GrowRequest {
            base: pool_bytes,
            max: pool.max,
        });
    }
    let growing: Vec<usize> = (0..req.thick.len())
        .filter(|&i| req.thick[i].grow)
        .collect();
    for &i in &growing {
        requests.push(GrowRequest {
            base: thick_bytes[i],
            max: req.thick[i].max,
        });
    }
    let mut grown = grow(&requests, extra, pe).into_iter();
    if pool.grow {
        pool_bytes = grown.next().unwrap_or(pool_bytes);
    }
    for (&i, bytes) in growing.iter().zip(grown) {
        thick_bytes[i] = bytes;
    }
    if pool_bytes == 0 {
        return Err(GroupShortfall::PoolUnsized);
    }
    Ok(GroupSizes {
        pool_bytes,
        thick_bytes,
    })
}

/// The root or a thin volume: a virtual size in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinRequest {
    /// `--size` (or the recommended swap size); 0 when not given.
    pub bytes: u64,
    /// `--percent` of the pool (whole MiB), which wins over `--size`.
    pub percent: Option<i64>,
}

/// The virtual sizes of the root and the thin volumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinSizes {
    pub root_bytes: u64,
    /// In the order of the thin volumes asked for.
    pub thin_bytes: Vec<u64>,
    /// The root and the thin volumes together: more than the pool is
    /// overcommitted.
    pub virtual_bytes: u64,
}

/// Why the thin volumes' sizes do not work out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinShortfall {
    /// The root is smaller than [`ROOT_MIN`].
    RootBelowMinimum,
    /// This thin volume (an index) has no size.
    Unsized { thin: usize },
}

/// The root's and the thin volumes' virtual sizes in a pool of
/// `pool_bytes`.
pub fn thin_sizes(
    pool_bytes: u64,
    root: ThinRequest,
    thin: &[ThinRequest],
) -> Result<ThinSizes, ThinShortfall> {
    let of_pool = |t: &ThinRequest| match t.percent {
        Some(n) => pool_bytes / 100 * n as u64 / MIB * MIB,
        None => t.bytes,
    };
    let root_bytes = of_pool(&root);
    if root_bytes < ROOT_MIN {
        return Err(ThinShortfall::RootBelowMinimum);
    }
    let mut thin_bytes = Vec::with_capacity(thin.len());
    for (i, t) in thin.iter().enumerate() {
        let bytes = of_pool(t);
        if bytes == 0 {
            return Err(ThinShortfall::Unsized { thin: i });
        }
        thin_bytes.push(bytes);
    }
    let virtual_bytes = root_bytes + thin_bytes.iter().sum::<u64>();
    Ok(ThinSizes {
        root_bytes,
        thin_bytes,
        virtual_bytes,
    })
}
