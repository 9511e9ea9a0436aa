//! Mounted filesystems and LVM thin pools (`lvs`). Block devices are in
//! [`crate::blockdev`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, read_to_string};
use command::{CommandError, CommandExt};

/// Usage above which a thin pool's data or metadata is a warning (RHVH's health check).
pub const THIN_POOL_WARN_PERCENT: f64 = 80.0;

/// A mounted filesystem and how full it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub size: u64,
    pub used: u64,
    pub available: u64,
}

impl Filesystem {
    /// Used space as a percentage of what a user can have (as `df` shows it).
    pub fn used_percent(&self) -> f64 {
        let usable = self.used + self.available;
        if usable == 0 {
            0.0
        } else {
            self.used as f64 * 100.0 / usable as f64
        }
    }
}

/// Filesystem types that hold no user data and are left out of the list.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "debugfs",
    "tracefs",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "bpf",
    "autofs",
    "binfmt_misc",
    "selinuxfs",
    "rpc_pipefs",
    "nsfs",
    "efivarfs",
    "ramfs",
];

/// Parses `/proc/self/mounts` into (source, target, fstype), pseudo filesystems and
/// repeated mounts of the same target left out. Octal escapes (`\040`) are decoded.
pub fn parse_mounts(text: &str) -> Vec<(String, String, String)> {
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (source, target, fstype) = (f.next()?, f.next()?, f.next()?);
            if PSEUDO_FS.contains(&fstype) {
                return None;
            }
            let target = unescape_mount(target);
            seen.insert(target.clone())
                .then(|| (unescape_mount(source), target, fstype.to_string()))
        })
        .collect()
}

fn unescape_mount(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounted filesystems with their usage (`statvfs`); ones that cannot be queried
/// (a stale network mount) are left out.
pub fn filesystems() -> Result<Vec<Filesystem>, Error> {
    let mounts = parse_mounts(&read_to_string(Path::new("/proc/self/mounts"))?);
    Ok(mounts
        .into_iter()
        .filter_map(|(source, target, fstype)| {
            let st = nix::sys::statvfs::statvfs(target.as_str()).ok()?;
            let frag = st.fragment_size();
            let size = st.blocks() * frag;
            let available = st.blocks_available() * frag;
            let used = size.saturating_sub(st.blocks_free() * frag);
            (size > 0).then_some(Filesystem {
                source,
                target,
                fstype,
                size,
                used,
                available,
            })
        })
        .collect())
}

/// An LVM thin pool and how full its data and metadata are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinPool {
    pub vg: String,
    pub name: String,
    pub size: u64,
    pub data_percent: f64,
    pub metadata_percent: f64,
}

impl ThinPool {
    /// Whether data or metadata usage reached [`THIN_POOL_WARN_PERCENT`].
    pub fn warning(&self) -> bool {
        self.data_percent >= THIN_POOL_WARN_PERCENT
            || self.metadata_percent >= THIN_POOL_WARN_PERCENT
    }
}

/// One row of `lvs --reportformat json` (the fields of [`LVS_ARGS`]; a
/// report asked for fewer leaves the others empty). The one `lvs` model of
/// the workspace: the layer store reads its tags and origins, the health
/// checks its pools' usage.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Lv {
    /// The volume group (empty when the report was asked for one group).
    #[serde(default)]
    pub vg_name: String,
    pub lv_name: String,
    #[serde(default)]
    pub lv_tags: String,
    #[serde(default)]
    pub origin: String,
    #[serde(default)]
    pub lv_attr: String,
    #[serde(default)]
    pub lv_size: String,
    #[serde(default)]
    pub data_percent: String,
    #[serde(default)]
    pub metadata_percent: String,
}

impl Lv {
    /// Whether the volume carries `tag` (`lv_tags` is comma-separated).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.lv_tags.split(',').any(|t| t == tag)
    }

    /// A thin pool (attribute `t…`).
    pub fn is_thin_pool(&self) -> bool {
        self.lv_attr.starts_with('t')
    }

    /// Data usage in percent: `None` when lvs reports none (an inactive
    /// pool), an error when it reports something that is not a percentage.
    pub fn data_usage(&self) -> Result<Option<f64>, BadLvsRow> {
        percent(self, "data_percent", &self.data_percent)
    }

    /// Metadata usage in percent, as [`Lv::data_usage`].
    pub fn metadata_usage(&self) -> Result<Option<f64>, BadLvsRow> {
        percent(self, "metadata_percent", &self.metadata_percent)
    }
}

/// A row of `lvs` with a field that cannot be read: never taken as 0 %.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lvs reports {field} {value:?} for {vg}/{lv}, which is not a percentage")]
pub struct BadLvsRow {
    pub vg: String,
    pub lv: String,
    pub field: &'static str,
    pub value: String,
}

fn percent(lv: &Lv, field: &'static str, value: &str) -> Result<Option<f64>, BadLvsRow> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(Some(p)),
        _ => Err(BadLvsRow {
            vg: lv.vg_name.clone(),
            lv: lv.lv_name.clone(),
            field,
            value: value.to_string(),
        }),
    }
}

#[derive(Deserialize)]
struct LvsOutput {
    report: Vec<LvsReport>,
}

#[derive(Deserialize)]
struct LvsReport {
    #[serde(default)]
    lv: Vec<Lv>,
}

/// The arguments for `lvs` that [`parse_lvs`] understands (every field of [`Lv`]).
pub const LVS_ARGS: &[&str] = &[
    "--reportformat",
    "json",
    "--units",
    "b",
    "--nosuffix",
    "-o",
    "vg_name,lv_name,lv_tags,origin,lv_attr,lv_size,data_percent,metadata_percent",
];

/// Parses `lvs --reportformat json` output: every row.
pub fn parse_lvs(json: &str) -> Result<Vec<Lv>, serde_json::Error> {
    let out: LvsOutput = serde_json::from_str(json)?;
    Ok(out.report.into_iter().flat_map(|r| r.lv).collect())
}

/// The thin pools among `lvs` rows. A pool whose usage is unreadable is an
/// error; one that reports none (inactive) shows 0 % and is not a warning.
pub fn thin_pools_of(lvs: &[Lv]) -> Result<Vec<ThinPool>, BadLvsRow> {
    lvs.iter()
        .filter(|lv| lv.is_thin_pool())
        .map(|lv| {
            Ok(ThinPool {
                size: lv.lv_size.trim().parse().map_err(|_| BadLvsRow {
                    vg: lv.vg_name.clone(),
                    lv: lv.lv_name.clone(),
                    field: "lv_size",
                    value: lv.lv_size.clone(),
                })?,
                data_percent: lv.data_usage()?.unwrap_or(0.0),
                metadata_percent: lv.metadata_usage()?.unwrap_or(0.0),
                vg: lv.vg_name.clone(),
                name: lv.lv_name.clone(),
            })
        })
        .collect()
}

/// Lists thin pools with `lvs`. A host without LVM tools has none.
pub fn thin_pools() -> Result<Vec<ThinPool>, CommandError> {
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Raw(serde_json::Value);
    let mut cmd = crate::tool("lvs");
    cmd.args(LVS_ARGS);
    let raw: Raw = match cmd.run_json() {
        Ok(raw) => raw,
        Err(e) if e.not_found => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let lvs = parse_lvs(&raw.0.to_string())
        .map_err(|e| CommandError::new(&cmd, format!("printed an unexpected report: {e}")))?;
    thin_pools_of(&lvs).map_err(|e| CommandError::new(&cmd, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvs_thin_pools_and_the_warning_threshold() {
        let lvs = parse_lvs(include_str!("../tests/fixtures/lvs-thinpool.json")).unwrap();
        let pools = thin_pools_of(&lvs).unwrap();
        assert_eq!(pools.len(), 1, "only the thin pool, not its thin volumes");
        let p = &pools[0];
        assert_eq!((p.vg.as_str(), p.name.as_str()), ("hvnode", "pool00"));
        assert_eq!(p.size, 53_687_091_200);
        assert_eq!(p.data_percent, 83.12);
        assert_eq!(p.metadata_percent, 4.7);
        assert!(p.warning());
        for (data, meta, warn) in [(79.99, 0.0, false), (80.0, 0.0, true), (1.0, 80.5, true)] {
            let p = ThinPool {
                data_percent: data,
                metadata_percent: meta,
                ..p.clone()
            };
            assert_eq!(p.warning(), warn, "{data} {meta}");
        }
    }

    #[test]
    fn an_unreadable_percentage_is_an_error_not_zero() {
        let row = |data: &str| Lv {
            vg_name: "hvnode".into(),
            lv_name: "pool00".into(),
            lv_tags: String::new(),
            origin: String::new(),
            lv_attr: "twi-aotz--".into(),
            lv_size: "1073741824".into(),
            data_percent: data.into(),
            metadata_percent: "1.00".into(),
        };
        for bad in ["n/a", "12,5", "-1", "101", "NaN"] {
            let e = thin_pools_of(&[row(bad)]).unwrap_err();
            assert_eq!(e.field, "data_percent", "{bad}");
            assert!(e.to_string().contains("hvnode/pool00"), "{e}");
        }
        assert_eq!(row(" 12.50 ").data_usage(), Ok(Some(12.5)));
        assert_eq!(
            row("").data_usage(),
            Ok(None),
            "an inactive pool reports none"
        );
        let mut size = row("1");
        size.lv_size = "big".into();
        assert_eq!(thin_pools_of(&[size]).unwrap_err().field, "lv_size");
    }

    #[test]
    fn mounts_skip_pseudo_filesystems_and_decode_escapes() {
        let text = "proc /proc proc rw 0 0\n/dev/vda / ext4 rw 0 0\n\
                    /dev/vdb /mnt/my\\040disk xfs rw 0 0\ntmpfs /run tmpfs rw 0 0\n\
                    /dev/vda / ext4 rw 0 0\n";
        let m = parse_mounts(text);
        let targets: Vec<_> = m.iter().map(|(_, t, _)| t.as_str()).collect();
        assert_eq!(targets, ["/", "/mnt/my disk", "/run"]);
    }

    #[test]
    fn filesystems_of_this_host_include_root() {
        let fs = filesystems().unwrap();
        let root = fs.iter().find(|f| f.target == "/").expect("/ is mounted");
        assert!(root.size > 0 && root.used_percent() > 0.0 && root.used_percent() <= 100.0);
    }
}
