//! The sizing arithmetic as tables: disk sizes and requests in, sizes (or
//! the shortfall) out, without kickstarts or disks.

use layers::volumes::{VOLUMES, min_disk_bytes};

use super::*;
use crate::storage::swap_bytes;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// `autopart`'s volumes at their starting sizes for `ram` bytes of memory
/// (as the planner makes them): `/var`, `/var/crash`, `/var/log`,
/// `/var/log/audit`, `/var/tmp`, `/home`, `/tmp`, swap.
fn starts(ram: u64) -> Vec<VolumeStart<'static>> {
    VOLUMES
        .iter()
        .map(|v| VolumeStart {
            mountpoint: v.mountpoint,
            bytes: if v.is_swap() {
                swap_bytes(ram).max(v.min_bytes)
            } else {
                v.min_bytes
            },
        })
        .collect()
}

/// The whole volume list with `/var` at `var` and swap at `swap`.
fn sizes_with(var: u64, swap: u64) -> Vec<u64> {
    let mut bytes: Vec<u64> = VOLUMES.iter().map(|v| v.min_bytes).collect();
    bytes[0] = var;
    bytes[VOLUMES.len() - 1] = swap;
    bytes
}

/// One row of the thin LVM / btrfs table.
struct LayeredRow {
    disk: u64,
    ram: u64,
    want: Result<Layered, LayeredShortfall>,
}

/// What a row expects when the layout fits.
struct Layered {
    store: u64,
    pool: u64,
    var: u64,
    swap: u64,
}

#[test]
fn thin_lvm_and_btrfs_autopart_by_disk_size() {
    let min = min_disk_bytes();
    let rows = [
        // The smallest disk, with the smallest swap: /var at its minimum.
        LayeredRow {
            disk: min,
            ram: 0,
            want: Ok(Layered {
                store: 59_068_383_232,
                pool: 47_254_706_560,
                var: 5 * GIB,
                swap: GIB,
            }),
        },
        LayeredRow {
            disk: 64 * GIB,
            ram: 4 * GIB,
            want: Ok(Layered {
                store: 64 * GIB - 1629 * MIB,
                pool: 53_609_077_120,
                var: 7 * GIB,
                swap: 4 * GIB,
            }),
        },
        LayeredRow {
            disk: 100 * GIB,
            ram: 32 * GIB,
            want: Ok(Layered {
                store: 100 * GIB - 1629 * MIB,
                pool: 84_532_841_600,
                var: 24 * GIB,
                swap: 16 * GIB,
            }),
        },
        LayeredRow {
            disk: 500 * GIB,
            ram: 4 * GIB,
            want: Ok(Layered {
                store: 500 * GIB - 1629 * MIB,
                pool: 428_130_225_280,
                var: 356 * GIB,
                swap: 4 * GIB,
            }),
        },
        // Too small: below the minimum by a byte, or far below.
        LayeredRow {
            disk: min - 1,
            ram: 0,
            want: Err(LayeredShortfall::BelowMinimum { need: min }),
        },
        LayeredRow {
            disk: 20 * GIB,
            ram: 4 * GIB,
            want: Err(LayeredShortfall::BelowMinimum { need: min }),
        },
        // Above the minimum, but a large swap does not fit the pool.
        LayeredRow {
            disk: 60 * GIB,
            ram: 4 * GIB,
            want: Err(LayeredShortfall::VolumesOverPool {
                need: 47 * GIB,
                pool: 50_173_103_280,
            }),
        },
        LayeredRow {
            disk: 64 * GIB,
            ram: 32 * GIB,
            want: Err(LayeredShortfall::VolumesOverPool {
                need: 59 * GIB,
                pool: 53_609_077_120,
            }),
        },
    ];
    for (i, row) in rows.iter().enumerate() {
        let got = layered_sizes(row.disk, &starts(row.ram));
        let want = row.want.as_ref().map(|w| LayeredSizes {
            store_bytes: w.store,
            pool_bytes: w.pool,
            volume_bytes: sizes_with(w.var, w.swap),
        });
        assert_eq!(got, want.map_err(|e| *e), "row {i}");
        if let Ok(s) = got {
            // The pool is four fifths of the store; the root and the
            // volumes fit it, and what is left is less than a GiB.
            assert_eq!(s.pool_bytes, s.store_bytes / 100 * 80, "row {i}");
            let used = ROOT_MIN + s.volume_bytes.iter().sum::<u64>();
            assert!(used <= s.pool_bytes && s.pool_bytes - used < GIB, "row {i}");
        }
    }
}

/// One row of the plain table.
struct PlainRow {
    disk: u64,
    ram: u64,
    want: Result<Plain, PlainShortfall>,
}

struct Plain {
    store: u64,
    var: u64,
    swap: u64,
}

#[test]
fn plain_autopart_by_disk_size() {
    // The platform partitions, the volumes for 4 GiB of memory (41 GiB)
    // and the smallest store (12 GiB).
    let need = 1629 * MIB + 41 * GIB + 12 * GIB;
    let rows = [
        // Just fits: the store at its minimum, /var at its own.
        PlainRow {
            disk: need,
            ram: 4 * GIB,
            want: Ok(Plain {
                store: 12 * GIB,
                var: 5 * GIB,
                swap: 4 * GIB,
            }),
        },
        PlainRow {
            disk: 55 * GIB,
            ram: 0,
            want: Ok(Plain {
                store: 13_324_255_232,
                var: 8 * GIB,
                swap: GIB,
            }),
        },
        PlainRow {
            disk: 64 * GIB,
            ram: 4 * GIB,
            want: Ok(Plain {
                store: 13_324_255_232,
                var: 14 * GIB,
                swap: 4 * GIB,
            }),
        },
        // A big disk: the store takes a tenth, /var the rest.
        PlainRow {
            disk: 500 * GIB,
            ram: 4 * GIB,
            want: Ok(Plain {
                store: 54_126_444_544,
                var: 412 * GIB,
                swap: 4 * GIB,
            }),
        },
        PlainRow {
            disk: need - 1,
            ram: 4 * GIB,
            want: Err(PlainShortfall {
                need,
                volumes: 41 * GIB,
            }),
        },
        PlainRow {
            disk: 64 * GIB,
            ram: 32 * GIB,
            want: Err(PlainShortfall {
                need: need + 12 * GIB,
                volumes: 53 * GIB,
            }),
        },
    ];
    for (i, row) in rows.iter().enumerate() {
        let got = plain_sizes(row.disk, &starts(row.ram));
        let want = row.want.as_ref().map(|w| PlainSizes {
            store_bytes: w.store,
            volume_bytes: sizes_with(w.var, w.swap),
        });
        assert_eq!(got, want.map_err(|e| *e), "row {i}");
        if let Ok(s) = got {
            // Everything but the rounding to GiB is used.
            let total = PLATFORM_BYTES + s.store_bytes + s.volume_bytes.iter().sum::<u64>();
            assert_eq!(total, row.disk, "row {i}");
            assert!(s.store_bytes >= PLAIN_STORE_MIN, "row {i}");
        }
    }
}

#[test]
fn the_minimum_disk_is_the_minimums_with_a_fifth_kept_free() {
    let volumes: u64 = ROOT_MIN + VOLUMES.iter().map(|v| v.min_bytes).sum::<u64>();
    assert_eq!(volumes, 44 * GIB);
    assert_eq!(
        min_disk_bytes(),
        BIOS_BOOT_SIZE + EFI_SIZE + BOOT_SIZE + 55 * GIB + 16 * MIB
    );
    assert!(layered_sizes(min_disk_bytes(), &starts(0)).is_ok());
}

/// One row of the explicit-partition table.
struct PartitionRow {
    disk: u64,
    parts: Vec<PartitionRequest>,
    want: Result<Vec<u64>, DiskShortfall>,
}

fn fixed(base: u64) -> PartitionRequest {
    PartitionRequest {
        base,
        grow: false,
        max: None,
    }
}

fn growing(base: u64, max: Option<u64>) -> PartitionRequest {
    PartitionRequest {
        base,
        grow: true,
        max,
    }
}

#[test]
fn explicit_partitions_by_disk_size() {
    let platform = || vec![fixed(MIB), fixed(600 * MIB), fixed(GIB)];
    let with = |more: &[PartitionRequest]| {
        let mut v = platform();
        v.extend_from_slice(more);
        v
    };
    let rows = [
        // RHVH's layout: one physical volume takes the rest.
        PartitionRow {
            disk: 64 * GIB,
            parts: with(&[growing(MIB, None)]),
            want: Ok(vec![MIB, 600 * MIB, GIB, 63 * GIB - 605 * MIB]),
        },
        // Two grow by their sizes; the second stops at its maximum and
        // the first takes what it leaves.
        PartitionRow {
            disk: 64 * GIB,
            parts: with(&[
                growing(MIB, None),
                growing(MIB, Some(10 * GIB)),
                fixed(2 * GIB),
            ]),
            want: Ok(vec![
                MIB,
                600 * MIB,
                GIB,
                51 * GIB - 605 * MIB,
                10 * GIB,
                2 * GIB,
            ]),
        },
        // Fixed sizes only: the rest of the disk stays free.
        PartitionRow {
            disk: 64 * GIB,
            parts: with(&[fixed(30_000 * MIB)]),
            want: Ok(vec![MIB, 600 * MIB, GIB, 30_000 * MIB]),
        },
        // Exactly full.
        PartitionRow {
            disk: 4 * GIB,
            parts: with(&[fixed(3 * GIB - 605 * MIB)]),
            want: Ok(vec![MIB, 600 * MIB, GIB, 3 * GIB - 605 * MIB]),
        },
        PartitionRow {
            disk: 64 * GIB,
            parts: with(&[fixed(70_000 * MIB)]),
            want: Err(DiskShortfall {
                need: 71_625 * MIB,
                usable: 64 * GIB - 4 * MIB,
            }),
        },
        PartitionRow {
            disk: MIB,
            parts: platform(),
            want: Err(DiskShortfall {
                need: 1625 * MIB,
                usable: 0,
            }),
        },
    ];
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(partition_sizes(row.disk, &row.parts), row.want, "row {i}");
    }
}

#[test]
fn growth_stops_at_each_maximum_in_whole_units() {
    let req = |base, max| GrowRequest { base, max };
    let m = MIB;
    assert_eq!(grow(&[req(m, None)], 100 * m, m), [101 * m]);
    assert_eq!(grow(&[req(m, Some(m))], 100 * m, m), [m]);
    assert_eq!(grow(&[req(m, None)], m - 1, m), [m]);
    assert_eq!(
        grow(&[req(m, None), req(m, None), req(m, None)], 10 * m, m),
        [5 * m, 4 * m, 4 * m]
    );
}

fn lv(bytes: u64) -> LvRequest {
    LvRequest {
        bytes,
        percent: None,
        grow: false,
        max: None,
    }
}

/// A pool of `--size=1 --grow`.
fn growing_pool() -> LvRequest {
    LvRequest {
        bytes: MIB,
        grow: true,
        ..lv(0)
    }
}

struct GroupRow {
    metadata: Option<u64>,
    pool: LvRequest,
    thick: Vec<LvRequest>,
    want: Result<GroupSizes, GroupShortfall>,
}

#[test]
fn volume_groups_share_their_space_as_anaconda_does() {
    // 50 GiB free in 4 MiB extents; 256 MiB go to pool metadata.
    let meta = 256 * MIB;
    let rows = [
        // RHVH's layout: the pool grows into what a thick swap leaves.
        GroupRow {
            metadata: None,
            pool: growing_pool(),
            thick: vec![lv(4 * GIB)],
            want: Ok(GroupSizes {
                pool_bytes: 46 * GIB - meta,
                thick_bytes: vec![4 * GIB],
            }),
        },
        // A capped pool leaves the rest free.
        GroupRow {
            metadata: None,
            pool: LvRequest {
                max: Some(20 * GIB),
                ..growing_pool()
            },
            thick: vec![],
            want: Ok(GroupSizes {
                pool_bytes: 20 * GIB,
                thick_bytes: vec![],
            }),
        },
        // --percent is of what the fixed sizes leave, in whole extents;
        // sizes round up to whole extents.
        GroupRow {
            metadata: None,
            pool: LvRequest {
                percent: Some(50),
                ..lv(0)
            },
            thick: vec![lv(MIB)],
            want: Ok(GroupSizes {
                pool_bytes: 26_705_133_568,
                thick_bytes: vec![4 * MIB],
            }),
        },
        // A growing thick volume shares with the pool by base size.
        GroupRow {
            metadata: Some(GIB),
            pool: LvRequest {
                bytes: 8 * GIB,
                ..growing_pool()
            },
            thick: vec![LvRequest {
                bytes: 8 * GIB,
                grow: true,
                ..lv(0)
            }],
            want: Ok(GroupSizes {
                pool_bytes: 24 * GIB,
                thick_bytes: vec![24 * GIB],
            }),
        },
        GroupRow {
            metadata: None,
            pool: growing_pool(),
            thick: vec![lv(60 * GIB)],
            want: Err(GroupShortfall::Short {
                need: 60 * GIB + 4 * MIB + meta,
                metadata: meta,
            }),
        },
        GroupRow {
            metadata: None,
            pool: growing_pool(),
            thick: vec![lv(GIB), lv(0)],
            want: Err(GroupShortfall::Unsized { thick: 1 }),
        },
        GroupRow {
            metadata: None,
            pool: lv(0),
            thick: vec![lv(GIB)],
            want: Err(GroupShortfall::PoolUnsized),
        },
    ];
    for (i, row) in rows.iter().enumerate() {
        let req = GroupRequest {
            free: 50 * GIB,
            extent: 4 * MIB,
            metadata: row.metadata,
            pool: row.pool,
            thick: &row.thick,
        };
        assert_eq!(group_sizes(&req), row.want, "row {i}");
    }
}

#[test]
fn metadata_is_budgeted_twice_in_whole_extents() {
    assert_eq!(metadata_budget(None, 4 * MIB), 256 * MIB);
    assert_eq!(metadata_budget(Some(GIB), 32 * MIB), 2 * GIB);
    assert_eq!(metadata_budget(Some(MIB), 32 * MIB), 64 * MIB);
}

#[test]
fn thin_volumes_are_virtual_sizes_in_the_pool() {
    let pool = 46 * GIB - 256 * MIB;
    let size = |bytes| ThinRequest {
        bytes,
        percent: None,
    };
    let percent = |n| ThinRequest {
        bytes: 0,
        percent: Some(n),
    };
    // RHVH's layout: the root and the thin volumes overcommit the pool.
    let rhvh = [20, 8, 2, 10, 10, 1, 1].map(|g| size(g * GIB));
    let s = thin_sizes(pool, size(8 * GIB), &rhvh).unwrap();
    assert_eq!(s.root_bytes, 8 * GIB);
    assert_eq!(s.virtual_bytes, 60 * GIB);
    assert!(s.virtual_bytes > pool);
    // --percent of the pool, in whole MiB, wins over --size.
    let s = thin_sizes(
        pool,
        percent(25),
        &[ThinRequest {
            bytes: GIB,
            percent: Some(10),
        }],
    )
    .unwrap();
    assert_eq!(
        (s.root_bytes, s.thin_bytes.as_slice()),
        (12_279_873_536, [4_911_529_984].as_slice())
    );
    assert_eq!(
        thin_sizes(pool, size(ROOT_MIN - 1), &[]),
        Err(ThinShortfall::RootBelowMinimum)
    );
    assert_eq!(
        thin_sizes(pool, percent(1), &[]),
        Err(ThinShortfall::RootBelowMinimum)
    );
    assert_eq!(
        thin_sizes(pool, size(ROOT_MIN), &[size(GIB), size(0)]),
        Err(ThinShortfall::Unsized { thin: 1 })
    );
}
