//! The volumes an installed node keeps apart from its layers, so that
//! updates and rollbacks never touch logs, VM state or users' files. Sizes
//! are RHVH's minimums (its documented 55 GB disk minimum is their sum plus
//! the 20 % of the pool kept free); thin volumes only use what is written.

const GIB: u64 = 1 << 30;

/// One separate volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volume {
    /// Where it is mounted (`/var/log`); `swap` for swap.
    pub mountpoint: &'static str,
    /// The LVM volume or btrfs subvolume name (`var_log`).
    pub name: &'static str,
    /// RHVH's minimum size.
    pub min_bytes: u64,
}

impl Volume {
    pub fn is_swap(&self) -> bool {
        self.mountpoint == "swap"
    }
}

/// The root file system's minimum (each base and layer).
pub const ROOT_MIN: u64 = 6 * GIB;
/// The plain layout's store partition at least: the bases of two image
/// versions (during an update) and what their layers change.
pub const PLAIN_STORE_MIN: u64 = 2 * ROOT_MIN;
/// `/boot`: room for the kernel and initramfs of several layers.
pub const BOOT_SIZE: u64 = GIB;
/// The EFI system partition.
pub const EFI_SIZE: u64 = 600 << 20;
/// The BIOS boot partition grub's core image lives in on GPT disks.
pub const BIOS_BOOT_SIZE: u64 = 1 << 20;
/// Part of the volume group left outside the thin pool, as RHVH does, for
/// pool metadata growth and the spare metadata volume.
pub const POOL_RESERVE_PERCENT: u64 = 20;

/// Mounted in this order (parents first).
pub const VOLUMES: &[Volume] = &[
    Volume {
        mountpoint: "/var",
        name: "var",
        min_bytes: 5 * GIB,
    },
    Volume {
        mountpoint: "/var/crash",
        name: "var_crash",
        min_bytes: 10 * GIB,
    },
    Volume {
        mountpoint: "/var/log",
        name: "var_log",
        min_bytes: 8 * GIB,
    },
    Volume {
        mountpoint: "/var/log/audit",
        name: "var_log_audit",
        min_bytes: 2 * GIB,
    },
    Volume {
        mountpoint: "/var/tmp",
        name: "var_tmp",
        min_bytes: 10 * GIB,
    },
    Volume {
        mountpoint: "/home",
        name: "home",
        min_bytes: GIB,
    },
    Volume {
        mountpoint: "/tmp",
        name: "tmp",
        min_bytes: GIB,
    },
    Volume {
        mountpoint: "swap",
        name: "swap",
        min_bytes: GIB,
    },
];

/// The smallest disk a thin-LVM node fits on: partitions, the minimum of
/// every volume, and the pool's reserve.
pub fn min_disk_bytes() -> u64 {
    let volumes: u64 = ROOT_MIN + VOLUMES.iter().map(|v| v.min_bytes).sum::<u64>();
    let pool_and_reserve = volumes * 100 / (100 - POOL_RESERVE_PERCENT);
    BIOS_BOOT_SIZE + EFI_SIZE + BOOT_SIZE + pool_and_reserve + (16 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_disk_is_rhvhs() {
        // RHVH documents 55 GB as its minimum.
        let gb = min_disk_bytes() as f64 / 1e9;
        assert!((55.0..62.0).contains(&gb), "{gb}");
    }

    #[test]
    fn parents_come_before_children() {
        for (i, v) in VOLUMES.iter().enumerate() {
            for later in &VOLUMES[i + 1..] {
                assert!(
                    !v.mountpoint.starts_with(&format!("{}/", later.mountpoint)),
                    "{} before its parent {}",
                    v.mountpoint,
                    later.mountpoint
                );
            }
        }
    }
}
