//! What an installed node's layout looks like (`nodectl info`) and whether
//! it is healthy (`nodectl check`). Facts are gathered from the running
//! system by [`gather`]; [`info`] and [`check`] only read them, so they are
//! tested on recorded facts.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use serde::{Deserialize, Serialize};

use crate::boot::{TRIAL_KEY, read_env};
use crate::fstab::{self, Entry};
use crate::history::{History, TrialRecord, failed_layers, open_conflicts};
use crate::lvm::{Lv, TAG_BASE, TAG_LAYER, TAG_POOL, inventory_of, parse_lvs};
use crate::plain::STORE_MOUNT;
use crate::volumes::VOLUMES;
use crate::{Inventory, LayerName};

mod plain;
pub use plain::{is_plain_root, store_inventory, volume};

/// A menu entry read back from grub.cfg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrubEntry {
    pub id: String,
    pub title: String,
    pub kernel: String,
    pub initrd: String,
    pub args: String,
}

/// Reads the entries of a grub.cfg hvnode wrote.
pub fn parse_grub_cfg(text: &str) -> Vec<GrubEntry> {
    let mut out = Vec::new();
    let mut cur: Option<GrubEntry> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("menuentry ") {
            let title = rest.split('"').nth(1).unwrap_or("").to_string();
            let id = rest
                .split_whitespace()
                .skip_while(|w| *w != "--id")
                .nth(1)
                .unwrap_or("")
                .to_string();
            cur = Some(GrubEntry {
                id,
                title,
                kernel: String::new(),
                initrd: String::new(),
                args: String::new(),
            });
        } else if let Some(e) = cur.as_mut() {
            if let Some(rest) = line.strip_prefix("linux ") {
                let (k, a) = rest.split_once(' ').unwrap_or((rest, ""));
                e.kernel = k.to_string();
                // The trial's arguments are grub's to add, on one boot only.
                let trial = format!("${}", crate::boot::TRIAL_VAR);
                e.args = a
                    .split_whitespace()
                    .filter(|w| *w != trial)
                    .collect::<Vec<_>>()
                    .join(" ");
            } else if let Some(rest) = line.strip_prefix("initrd ") {
                e.initrd = rest.trim().to_string();
            } else if line == "}" {
                out.extend(cur.take());
            }
        }
    }
    out
}

/// One mounted file system (`findmnt --json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Mount {
    pub target: String,
    pub source: String,
    pub fstype: String,
    pub options: String,
}

#[derive(Deserialize)]
struct Findmnt {
    filesystems: Vec<Mount>,
}

/// Parses `findmnt --json --list -o TARGET,SOURCE,FSTYPE,OPTIONS`.
pub fn parse_findmnt(json: &str) -> Result<Vec<Mount>> {
    let f: Findmnt = serde_json::from_str(json).context("reading the output of findmnt")?;
    Ok(f.filesystems)
}

/// The layer a kernel command line boots.
pub fn layer_from_cmdline(cmdline: &str) -> Option<LayerName> {
    cmdline.split_whitespace().find_map(|a| {
        let v = a
            .strip_prefix("hvnode.layer=")
            .or_else(|| {
                a.strip_prefix("rootflags=subvol=")
                    .and_then(|s| s.trim_start_matches('/').strip_prefix("hvnode/layers/"))
            })
            .or_else(|| {
                a.strip_prefix("root=/dev/")
                    .and_then(|s| s.split_once('/').map(|(_, lv)| lv))
            })?;
        v.parse().ok()
    })
}

/// Which layer store a node has, found by [`gather`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Thin LVM volumes (`autopart --type=thinp`).
    Lvm,
    /// btrfs subvolumes (`autopart --type=btrfs`).
    Btrfs,
    /// XFS folders with reflinked layers (`autopart --type=plain`).
    Plain,
}

impl Backend {
    /// The name `nodectl info` and the console print: `lvm`, `btrfs`, `plain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Lvm => "lvm",
            Backend::Btrfs => "btrfs",
            Backend::Plain => "plain",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything `info` and `check` look at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The layer store; `None` when none was found (not an installed node).
    pub backend: Option<Backend>,
    /// The volume group holding the store (lvm): whichever group has the
    /// volumes tagged as hvnode's, named as the installer's kickstart said.
    pub vg: String,
    /// The volumes of that group.
    pub lvs: Vec<Lv>,
    /// The node's `/etc/fstab`: the separate volumes it is meant to mount.
    pub fstab: Vec<Entry>,
    pub inventory: Option<Inventory>,
    pub current_layer: Option<LayerName>,
    pub mounts: Vec<Mount>,
    pub boot_entries: Vec<GrubEntry>,
    pub grubenv: Vec<(String, String)>,
    /// Files present under /boot, relative (`hvnode-1.0-1+1/vmlinuz`).
    pub boot_files: Vec<String>,
    /// Used share of the file system holding the store (btrfs: `/`;
    /// plain: [`crate::plain::STORE_MOUNT`]), in percent; `None` for LVM
    /// (the thin pool's use is in `lvs`) or when `df` could not tell.
    pub store_used_percent: Option<f64>,
    /// The active swap areas (`/proc/swaps`), by device or file.
    pub swaps: Vec<String>,
    /// Every trial boot's verdict ([`crate::history`]).
    pub trials: Vec<TrialRecord>,
    /// The `/etc` conflicts the update that made the current layer left,
    /// while their `NAME.hvnew` files are there.
    pub etc_conflicts: Vec<String>,
}

/// The image's identity, if this is an hvnode system.
pub fn image_nvr() -> Option<String> {
    hostinfo::ImageIdentity::running_nvr()
}

fn run_out(c: &mut Command) -> Option<String> {
    c.run_capture().ok()
}

/// Reads the running system. Missing pieces are recorded as missing (and
/// `check` reports them); only a failure to run a needed tool is an error.
pub fn gather(boot: &Path) -> Result<Facts> {
    let mut f = Facts::default();
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    f.current_layer = layer_from_cmdline(&cmdline);
    let mounts = Command::new("findmnt")
        .args(["--json", "--list", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"])
        .run_capture()
        .context("listing mounts")?;
    f.mounts = parse_findmnt(&mounts)?;
    let root_fs = f
        .mounts
        .iter()
        .find(|m| m.target == "/")
        .map(|m| m.fstype.clone())
        .unwrap_or_default();
    if root_fs == "btrfs" {
        f.backend = Some(Backend::Btrfs);
        f.inventory = btrfs_inventory(&f.mounts);
        f.store_used_percent = used_percent("/").ok();
    } else if is_plain_root(&f.mounts, &cmdline) {
        f.backend = Some(Backend::Plain);
        f.inventory = store_inventory(Path::new(STORE_MOUNT));
        // The root is a folder of the same file system: were the store not
        // mounted, df would still measure it.
        f.store_used_percent = used_percent(STORE_MOUNT).ok();
    } else if let Some(out) = run_out(
        crate::lvm::lvm("lvs")
            .args(["--reportformat", "json", "--units", "b", "--nosuffix"])
            .args([
                "-o",
                "vg_name,lv_name,lv_tags,origin,lv_attr,lv_size,data_percent,metadata_percent",
            ]),
    ) && let Some((vg, lvs)) = store_group(parse_lvs(&out)?)
    {
        f.backend = Some(Backend::Lvm);
        f.vg = vg;
        f.lvs = lvs;
        f.inventory = Some(inventory_of(&f.lvs));
    }
    f.fstab = fs::read_to_string("/etc/fstab")
        .map(|t| fstab::parse(&t))
        .unwrap_or_default();
    f.swaps = fs::read_to_string("/proc/swaps")
        .map(|t| parse_swaps(&t))
        .unwrap_or_default();
    if let Ok(text) = fs::read_to_string(boot.join("grub/grub.cfg")) {
        f.boot_entries = parse_grub_cfg(&text);
    }
    f.grubenv = read_env(boot).unwrap_or_default();
    let history = History::default();
    f.trials = history.trials().unwrap_or_else(|e| {
        tracing::warn!("{e:#}");
        Vec::new()
    });
    if let Some(layer) = &f.current_layer
        && let Ok(Some(rec)) = history.update(&layer.to_string())
    {
        f.etc_conflicts = open_conflicts(&rec, Path::new("/"));
    }
    for e in &f.boot_entries {
        for p in [&e.kernel, &e.initrd] {
            if boot.join(p.trim_start_matches('/')).is_file() {
                f.boot_files.push(p.trim_start_matches('/').to_string());
            }
        }
    }
    Ok(f)
}

/// The swap areas `/proc/swaps` lists (its first column, after the
/// header line).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// Whether a mount's comma-separated `options` have `name`, alone or with
/// a value (`discard`, `discard=async`; not `nodiscard`).
pub fn has_option(options: &str, name: &str) -> bool {
    options
        .split(',')
        .any(|o| o == name || o.strip_prefix(name).is_some_and(|v| v.starts_with('=')))
}

/// The volume group that holds the store — the one with the volume tagged
/// as hvnode's thin pool, else with a base or layer — and its volumes.
pub fn store_group(all: Vec<Lv>) -> Option<(String, Vec<Lv>)> {
    let vg = [TAG_POOL, TAG_BASE, TAG_LAYER]
        .iter()
        .find_map(|t| all.iter().find(|l| l.has_tag(t)))?
        .vg_name
        .clone();
    let lvs = all.into_iter().filter(|l| l.vg_name == vg).collect();
    Some((vg, lvs))
}

/// The separate volumes the node mounts: from its fstab (thin volumes of
/// the store's group, btrfs subvolumes, or the partitions of a plain
/// node), else the autopart set.
/// Each is (LV name when on LVM, mount point; `swap` for swap).
pub fn expected_volumes(f: &Facts) -> Vec<(Option<String>, String)> {
    let prefix = format!("/dev/{}/", f.vg);
    let from_fstab: Vec<(Option<String>, String)> = f
        .fstab
        .iter()
        .filter_map(|e| {
            if f.backend == Some(Backend::Plain) {
                return volume(e).map(|mp| (None, mp));
            }
            let target = if e.fstype == "swap" {
                "swap".to_string()
            } else {
                e.target.clone()
            };
            if f.backend == Some(Backend::Btrfs) {
                // `/swap` is the subvolume that holds the swap file.
                let volume = e.fstype == "btrfs"
                    && !["/", "/swap"].contains(&e.target.as_str())
                    && e.options.contains("hvnode/volumes/");
                volume.then_some((None, target))
            } else {
                let lv = e.source.strip_prefix(&prefix)?;
                let layer = f
                    .lvs
                    .iter()
                    .any(|l| l.lv_name == lv && l.has_tag(TAG_LAYER));
                (e.target != "/" && !layer && !f.vg.is_empty())
                    .then(|| (Some(lv.to_string()), target))
            }
        })
        .collect();
    if !from_fstab.is_empty() {
        return from_fstab;
    }
    VOLUMES
        .iter()
        .map(|v| {
            let lv = (f.backend != Some(Backend::Plain)).then(|| v.name.to_string());
            (lv, v.mountpoint.to_string())
        })
        .collect()
}

/// Bases and layers of the btrfs store (`btrfs subvolume list` shows every
/// subvolume of the file system, whichever one is mounted).
fn btrfs_inventory(mounts: &[Mount]) -> Option<Inventory> {
    mounts.iter().find(|m| m.target == "/")?;
    let out = run_out(Command::new("btrfs").args(["subvolume", "list", "/"]))?;
    let mut bases = Vec::new();
    let mut layers = Vec::new();
    for l in out.lines() {
        let Some(path) = l.split(" path ").nth(1) else {
            continue;
        };
        let path = path.trim().trim_start_matches("<FS_TREE>/");
        if let Some(n) = path.strip_prefix("hvnode/bases/") {
            bases.extend(n.parse().ok());
        } else if let Some(n) = path.strip_prefix("hvnode/layers/") {
            layers.extend(n.parse().ok());
        }
    }
    bases.sort();
    layers.sort();
    Some(Inventory { bases, layers })
}

fn used_percent(path: &str) -> Result<f64> {
    let out = Command::new("df")
        .args(["--output=pcent", path])
        .run_capture()
        .with_context(|| format!("measuring {path}"))?;
    let p = out
        .lines()
        .nth(1)
        .map(|l| l.trim().trim_end_matches('%').to_string())
        .unwrap_or_default();
    p.parse()
        .with_context(|| format!("reading the use of {path} from df: {out:?}"))
}

/// `nodectl info`, with oVirt nodectl's key names.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub image: Option<String>,
    pub backend: String,
    /// base → its layers.
    pub layers: BTreeMap<String, Vec<String>>,
    pub bootloader: Bootloader,
    pub current_layer: Option<String>,
    /// Layers whose latest trial boot failed, and why: never the default
    /// again without the admin's say.
    pub failed_trials: Vec<TrialRecord>,
    /// `/etc` files the last update could not merge (absolute paths): the
    /// admin's version is in place, the new image's beside it as
    /// `NAME.hvnew`; listed until that file is removed.
    pub etc_conflicts: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bootloader {
    pub default: Option<String>,
    pub next: Option<String>,
    /// The layer on trial (`trial_entry`): booted once by `next`, the
    /// default once its health check passes.
    pub trial: Option<String>,
    pub entries: BTreeMap<String, GrubEntry>,
}

pub fn info(f: &Facts, image: Option<String>) -> Info {
    let mut layers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(inv) = &f.inventory {
        for b in &inv.bases {
            layers.entry(b.to_string()).or_default();
        }
        for l in &inv.layers {
            layers
                .entry(l.base.to_string())
                .or_default()
                .push(l.to_string());
        }
    }
    let env = |k: &str| {
        f.grubenv
            .iter()
            .find(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    Info {
        image,
        backend: f.backend.map(|b| b.to_string()).unwrap_or_default(),
        layers,
        bootloader: Bootloader {
            default: env("saved_entry"),
            next: env("next_entry"),
            trial: env(TRIAL_KEY),
            entries: f
                .boot_entries
                .iter()
                .map(|e| (e.id.clone(), e.clone()))
                .collect(),
        },
        current_layer: f.current_layer.as_ref().map(|l| l.to_string()),
        failed_trials: failed_layers(&f.trials).into_values().collect(),
        etc_conflicts: f.etc_conflicts.clone(),
    }
}

/// Where the boot partition is mounted on an installed node.
pub fn boot_dir() -> PathBuf {
    PathBuf::from("/boot")
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
