//! Free space, checked before anything is written: the store (a btrfs or
//! XFS file system, or the thin pool's data and metadata) and `/boot`.
//! Pure: the numbers are gathered elsewhere and passed in.

use serde::Serialize;

use layers::lvm::{Lv, TAG_POOL};

/// What is added on top of the image's size in the store: file-system
/// overhead and what the first boot writes.
pub const STORE_MARGIN_BYTES: u64 = 64 << 20;
/// What is added on top of the kernel and initramfs in `/boot` (grub.cfg
/// rewritten beside the old one).
pub const BOOT_MARGIN_BYTES: u64 = 1 << 20;
/// A thin pool is not filled beyond this share of its data by an update.
pub const THIN_DATA_MAX_PERCENT: f64 = 90.0;
/// A thin pool whose metadata is used beyond this share is refused: a full
/// metadata volume corrupts the pool.
pub const THIN_METADATA_MAX_PERCENT: f64 = 80.0;

/// Free space where the new base goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreSpace {
    /// A file system (btrfs, XFS): bytes available to root.
    Fs { path: String, free: u64 },
    /// A thin pool, as `lvs` reports it.
    Thin {
        pool: String,
        size: u64,
        data_percent: f64,
        metadata_percent: f64,
    },
}

/// The thin pool's numbers from `lvs` facts (the volume tagged as the
/// store's pool); `None` without one or with unreadable numbers.
pub fn thin_space(lvs: &[Lv]) -> Option<StoreSpace> {
    let pool = lvs.iter().find(|l| l.has_tag(TAG_POOL))?;
    let percent = |s: &str| -> Option<f64> {
        if s.trim().is_empty() {
            Some(0.0)
        } else {
            s.trim().parse().ok()
        }
    };
    Some(StoreSpace::Thin {
        pool: format!("{}/{}", pool.vg_name, pool.lv_name)
            .trim_start_matches('/')
            .to_string(),
        size: pool.lv_size.trim().parse().ok()?,
        data_percent: percent(&pool.data_percent)?,
        metadata_percent: percent(&pool.metadata_percent)?,
    })
}

/// What the update needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// The new base: the image's uncompressed size.
    pub base_bytes: u64,
    /// The kernel and initramfs.
    pub boot_bytes: u64,
}

/// One space check, with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpaceCheck {
    pub what: String,
    pub need: u64,
    pub free: u64,
    pub ok: bool,
    /// Why, for a person, with the numbers.
    pub message: String,
}

/// Not enough space: every failed check, with its numbers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "not enough space for the update: {}. Nothing was written. Free space (remove an old \
     image's layers and base, or clean /boot of files hvnode did not put there) and try again",
    failed.iter().map(|c| c.message.as_str()).collect::<Vec<_>>().join("; ")
)]
pub struct NoSpace {
    pub failed: Vec<SpaceCheck>,
}

/// Bytes for a person: `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Checks `store` and `/boot` (`boot_free` bytes) against `needs`.
pub fn check(store: &StoreSpace, boot_free: u64, needs: Needs) -> Result<Vec<SpaceCheck>, NoSpace> {
    let mut checks = store_checks(store, needs.base_bytes);
    let boot_need = needs.boot_bytes + BOOT_MARGIN_BYTES;
    checks.push(SpaceCheck {
        what: "/boot".into(),
        need: boot_need,
        free: boot_free,
        ok: boot_free >= boot_need,
        message: format!(
            "/boot needs {} for the kernel and initramfs, {} is free",
            human(boot_need),
            human(boot_free)
        ),
    });
    let failed: Vec<SpaceCheck> = checks.iter().filter(|c| !c.ok).cloned().collect();
    if failed.is_empty() {
        Ok(checks)
    } else {
        Err(NoSpace { failed })
    }
}

fn store_checks(store: &StoreSpace, base_bytes: u64) -> Vec<SpaceCheck> {
    let need = base_bytes + STORE_MARGIN_BYTES;
    match store {
        StoreSpace::Fs { path, free } => vec![SpaceCheck {
            what: path.clone(),
            need,
            free: *free,
            ok: *free >= need,
            message: format!(
                "the store at {path} needs {} for the new base ({} image + {} margin), {} is free",
                human(need),
                human(base_bytes),
                human(STORE_MARGIN_BYTES),
                human(*free)
            ),
        }],
        StoreSpace::Thin {
            pool,
            size,
            data_percent,
            metadata_percent,
        } => {
            let used = (*size as f64 * data_percent / 100.0) as u64;
            let limit = (*size as f64 * THIN_DATA_MAX_PERCENT / 100.0) as u64;
            let free = limit.saturating_sub(used);
            let data = SpaceCheck {
                what: format!("{pool} data"),
                need,
                free,
                ok: free >= need,
                message: format!(
                    "the thin pool {pool} ({} , {data_percent:.1}% used) needs {} for the new \
                     base and may be filled to {THIN_DATA_MAX_PERCENT:.0}%: {} is left below that",
                    human(*size),
                    human(need),
                    human(free)
                ),
            };
            let meta = SpaceCheck {
                what: format!("{pool} metadata"),
                need: 0,
                free: 0,
                ok: *metadata_percent < THIN_METADATA_MAX_PERCENT,
                message: format!(
                    "the thin pool {pool}'s metadata is {metadata_percent:.1}% used, the limit \
                     for an update is {THIN_METADATA_MAX_PERCENT:.0}% (grow it with lvextend \
                     --poolmetadatasize)"
                ),
            };
            vec![data, meta]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LVS: &str = r#"{"report":[{"lv":[
      {"vg_name":"hvnode","lv_name":"pool00","lv_tags":"hvnode:pool","origin":"","lv_attr":"twi-aotz--","lv_size":"10737418240","data_percent":"40.00","metadata_percent":"11.85"},
      {"vg_name":"hvnode","lv_name":"hvnode-1.0-1","lv_tags":"hvnode:base","origin":"","lv_attr":"Vri---tz-k","lv_size":"6442450944","data_percent":"","metadata_percent":""}
    ]}]}"#;

    fn pool(data: &str, meta: &str) -> StoreSpace {
        let text = LVS
            .replace("\"40.00\"", &format!("\"{data}\""))
            .replace("\"11.85\"", &format!("\"{meta}\""));
        thin_space(&layers::lvm::parse_lvs(&text).unwrap()).unwrap()
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn thin_pool_numbers_come_from_lvs() {
        assert_eq!(
            pool("40.00", "11.85"),
            StoreSpace::Thin {
                pool: "hvnode/pool00".into(),
                size: 10 * GIB,
                data_percent: 40.0,
                metadata_percent: 11.85,
            }
        );
    }

    #[test]
    fn a_pool_with_room_passes() {
        let needs = Needs {
            base_bytes: 2 * GIB,
            boot_bytes: 80 << 20,
        };
        let checks = check(&pool("40.00", "11.85"), 500 << 20, needs).unwrap();
        assert_eq!(checks.len(), 3);
        assert!(checks.iter().all(|c| c.ok));
    }

    #[test]
    fn a_nearly_full_pool_is_refused_with_numbers() {
        let needs = Needs {
            base_bytes: 2 * GIB,
            boot_bytes: 80 << 20,
        };
        // 85% used: 5% of 10 GiB = 512 MiB left below the 90% limit.
        let e = check(&pool("85.00", "11.85"), 500 << 20, needs).unwrap_err();
        assert_eq!(e.failed.len(), 1);
        let msg = e.to_string();
        assert!(
            msg.contains("hvnode/pool00") && msg.contains("512.0 MiB"),
            "{msg}"
        );
        assert!(msg.contains("2.1 GiB"), "{msg}");
    }

    #[test]
    fn full_thin_metadata_is_refused() {
        let needs = Needs {
            base_bytes: GIB,
            boot_bytes: 1,
        };
        let e = check(&pool("10.00", "85.00"), GIB, needs).unwrap_err();
        assert!(e.to_string().contains("metadata is 85.0% used"), "{e}");
    }

    #[test]
    fn a_full_boot_and_a_full_file_system_are_both_named() {
        let store = StoreSpace::Fs {
            path: "/run/hvnode/update/top".into(),
            free: 100 << 20,
        };
        let needs = Needs {
            base_bytes: GIB,
            boot_bytes: 90 << 20,
        };
        let e = check(&store, 20 << 20, needs).unwrap_err();
        assert_eq!(e.failed.len(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("/boot needs 91.0 MiB") && msg.contains("20.0 MiB is free"),
            "{msg}"
        );
        assert!(
            msg.contains("1.1 GiB") && msg.contains("100.0 MiB is free"),
            "{msg}"
        );
        assert!(msg.contains("Nothing was written"), "{msg}");
    }
}
