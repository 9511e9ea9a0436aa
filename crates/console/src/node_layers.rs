//! The Node page's layered root: what `nodectl info` and `nodectl check` know (image,
//! layers and their bases, the running layer, grub's default and one-time next entry,
//! the layer store and its thin pool, the health report), shaped for the page and
//! the API; the one action a layer offers is in [`crate::layer_actions`].
//!
//! The facts come from [`layers::status::gather`], which runs a dozen programs
//! (findmnt, lvm, getenforce, systemctl, …): they are learned off the async runtime,
//! at most once per [`crate::facts::Expires::TTL`] while someone looks, and shaped here by pure functions
//! that the tests feed with recorded facts.

use health::{Report, USAGE_LIMIT_PERCENT};
use layers::LayerName;
use layers::lvm::{DEFAULT_VG, TAG_POOL};
use layers::status::{self, Backend, Facts};
use serde::Serialize;

use crate::error::ApiError;
use crate::facts::Snapshot;
use crate::metrics::human_bytes;

/// What the page says on a system that does not run from a layer.
pub const NOT_INSTALLED: &str = "Not installed on a layered root: running live. This \
    system was not booted from an hvnode layer (the live image, or a host that is not \
    an installed node), so it has no layers, boot entries or layer health of its own.";

/// The layered root as the Node page and `GET /api/v1/node` (`layers`) show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayersView {
    /// Whether the running system booted from a layer of an installed node.
    pub installed: bool,
    /// Why there is little to show (not installed), in words for the page.
    pub notice: Option<String>,
    /// Why the facts could not be gathered, with what to do next.
    pub error: Option<String>,
    /// The running image's NVR.
    pub image: Option<String>,
    /// The layer the system runs from.
    pub current_layer: Option<String>,
    /// grub's `saved_entry`: the layer every boot starts.
    pub default_entry: Option<String>,
    /// grub's `next_entry`: the layer the next boot starts, once.
    pub next_entry: Option<String>,
    /// The layer an update put on trial (`trial_entry`): the default once its
    /// first boot passes the health checks.
    pub trial: Option<String>,
    /// Layers whose latest trial boot failed, and why.
    pub failed_trials: Vec<layers::history::TrialRecord>,
    /// `/etc` files the last update could not merge: the admin's version in
    /// place, the new image's beside it as `NAME.hvnew`.
    pub etc_conflicts: Vec<String>,
    /// The layer "Roll back" makes the default, when there is one.
    pub rollback_to: Option<String>,
    pub store: Option<StoreView>,
    /// Every base in the store, newest first.
    pub bases: Vec<String>,
    /// Every layer in the store, newest first.
    pub layers: Vec<LayerRow>,
    /// `nodectl check`'s report (only for an installed node: on a live system every
    /// check would fail for want of a layered root).
    pub health: Option<Report>,
}

/// Where the layers live and how full it is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreView {
    /// `lvm`, `btrfs` or `plain`.
    pub backend: String,
    /// In words: `LVM thin pool hvnode/pool00`, `btrfs subvolumes (…)`, `XFS folders
    /// with reflinked layers (…)`.
    pub description: String,
    pub vg: Option<String>,
    pub pool: Option<String>,
    /// The pool's size, human-readable.
    pub size: Option<String>,
    pub data_percent: Option<f64>,
    pub metadata_percent: Option<f64>,
    /// Used share of the file system holding the store (btrfs, plain).
    pub used_percent: Option<f64>,
    /// `nodectl check` fails the pool from this use on.
    pub warn_percent: f64,
    /// What is too full and what to do about it.
    pub warnings: Vec<String>,
}

/// One layer of the store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerRow {
    pub name: String,
    pub base: String,
    /// The system runs from it.
    pub booted: bool,
    /// grub's default entry.
    pub default: bool,
    /// grub boots it once at the next boot.
    pub next: bool,
    /// It is on trial after an update.
    pub trial: bool,
    /// Its latest trial boot failed.
    pub failed: bool,
    /// The title of its boot entry, if the menu has one.
    pub boot_entry: Option<String>,
    /// Whether "Boot this layer next time" is offered: an installed node, a boot
    /// entry, and not already the layer the next boot starts.
    pub can_boot_next: bool,
}

impl LayersView {
    /// Whether the health report is all OK (`None`: no report).
    pub fn health_ok(&self) -> Option<bool> {
        self.health.as_ref().map(|r| r.status == health::Status::Ok)
    }
}

fn store_view(f: &Facts) -> Option<StoreView> {
    let mut s = StoreView {
        backend: f.backend.map(|b| b.to_string()).unwrap_or_default(),
        warn_percent: USAGE_LIMIT_PERCENT,
        ..StoreView::default()
    };
    let over = |v: Option<f64>| v.filter(|v| *v >= USAGE_LIMIT_PERCENT);
    match f.backend {
        Some(Backend::Lvm) => {
            let pool = f.lvs.iter().find(|l| l.has_tag(TAG_POOL));
            // The group the store was found in (a kickstart may name it).
            let vg = if f.vg.is_empty() {
                DEFAULT_VG
            } else {
                f.vg.as_str()
            };
            s.vg = Some(vg.to_string());
            s.pool = pool.map(|p| p.lv_name.clone());
            s.description = match &s.pool {
                Some(p) => format!("LVM thin pool {vg}/{p}"),
                None => format!("LVM volume group {vg} (no thin pool tagged {TAG_POOL})"),
            };
            s.size = pool
                .and_then(|p| p.lv_size.parse::<f64>().ok())
                .map(human_bytes);
            // The one lvs model decides what a usage is; an unreadable one is
            // a warning, never "0 % used".
            let mut usage = |r: Result<Option<f64>, hostinfo::BadLvsRow>| match r {
                Ok(v) => v,
                Err(e) => {
                    s.warnings.push(format!("{e}: check the pool with lvs"));
                    None
                }
            };
            let data = pool.and_then(|p| usage(p.data_usage()));
            let meta = pool.and_then(|p| usage(p.metadata_usage()));
            s.data_percent = data;
            s.metadata_percent = meta;
            for (what, v, next) in [
                (
                    "data",
                    s.data_percent,
                    "extend the pool (lvextend) or remove layers that are no longer needed",
                ),
                (
                    "metadata",
                    s.metadata_percent,
                    "extend its metadata (lvextend --poolmetadatasize)",
                ),
            ] {
                if let Some(v) = over(v) {
                    s.warnings.push(format!(
                        "Thin pool {what} {v:.1} % used, above {USAGE_LIMIT_PERCENT:.0} %: {next}"
                    ));
                }
            }
        }
        Some(Backend::Btrfs) => {
            s.description = "btrfs subvolumes (hvnode/bases, hvnode/layers)".into();
            s.used_percent = f.store_used_percent;
            if let Some(v) = over(s.used_percent) {
                s.warnings.push(format!(
                    "The btrfs file system is {v:.0} % used, above {USAGE_LIMIT_PERCENT:.0} %: \
                     remove layers that are no longer needed or add a device"
                ));
            }
        }
        Some(Backend::Plain) => {
            s.description =
                "XFS folders with reflinked layers (hvnode/bases, hvnode/layers)".into();
            s.used_percent = f.store_used_percent;
            if let Some(v) = over(s.used_percent) {
                s.warnings.push(format!(
                    "The XFS file system of the layers is {v:.0} % used, above \
                     {USAGE_LIMIT_PERCENT:.0} %: remove layers that are no longer needed, \
                     and the bases they leave without layers"
                ));
            }
        }
        None => return None,
    }
    Some(s)
}

/// Shapes a snapshot for the page and the API.
pub fn view(snap: &Snapshot) -> LayersView {
    let facts = match &snap.facts {
        Ok(f) => f,
        Err(e) => {
            return LayersView {
                error: Some(format!(
                    "The layer store could not be read: {e}. Run `nodectl check` in the \
                     terminal for the full report."
                )),
                image: snap.image.clone(),
                ..LayersView::default()
            };
        }
    };
    let info = status::info(facts, snap.image.clone());
    let installed = info.current_layer.is_some();
    let default_entry = info.bootloader.default.clone();
    let next_entry = info.bootloader.next.clone();
    // The layer grub starts at the next boot: the one-time entry, else the default.
    let starts_next = next_entry.clone().or_else(|| default_entry.clone());
    let (bases, layers) = match &facts.inventory {
        Some(inv) => (
            inv.bases.iter().rev().map(|b| b.to_string()).collect(),
            inv.layers
                .iter()
                .rev()
                .map(|l| {
                    let name = l.to_string();
                    let entry = info.bootloader.entries.get(&name);
                    let is = |o: &Option<String>| o.as_deref() == Some(name.as_str());
                    LayerRow {
                        base: l.base.to_string(),
                        booted: is(&info.current_layer),
                        default: is(&default_entry),
                        next: is(&next_entry),
                        trial: is(&info.bootloader.trial),
                        failed: info.failed_trials.iter().any(|t| t.layer == name),
                        boot_entry: entry.map(|e| e.title.clone()),
                        can_boot_next: installed && entry.is_some() && !is(&starts_next),
                        name,
                    }
                })
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let notice = (!installed).then(|| {
        if layers.is_empty() {
            NOT_INSTALLED.to_string()
        } else {
            format!(
                "{NOT_INSTALLED} The layers below were found on this machine's disks; \
                 boot the installed node to choose among them."
            )
        }
    });
    LayersView {
        installed,
        notice,
        error: None,
        image: info.image,
        current_layer: info.current_layer,
        default_entry,
        next_entry,
        trial: info.bootloader.trial,
        rollback_to: update::plan_rollback(facts, None, false)
            .ok()
            .map(|p| p.to.to_string()),
        failed_trials: info.failed_trials,
        etc_conflicts: info.etc_conflicts,
        store: store_view(facts),
        bases,
        layers,
        // The node page adds the node's health report (views::node).
        health: None,
    }
}

/// A layer's name from a request path; anything else is a 400 (before any program
/// runs).
pub fn parse_layer(name: &str) -> Result<LayerName, ApiError> {
    name.parse()
        .map_err(|e: layers::nvr::NameError| ApiError::BadRequest(e.to_string()))
}

/// Whether grub can be told to boot `layer` next: this system runs from a layer, the
/// store has it and the boot menu has an entry for it.
pub fn boot_next_target(facts: &Facts, layer: &LayerName) -> Result<(), ApiError> {
    if facts.current_layer.is_none() {
        return Err(ApiError::Conflict(format!(
            "not installed on a layered root: this system runs live, so there is no boot \
             menu of layers to change. Boot the installed node and choose the layer from \
             its console (or `grub-editenv /boot/grub/grubenv set next_entry={layer}` on it)."
        )));
    }
    let known = facts
        .inventory
        .as_ref()
        .is_some_and(|i| i.layers.contains(layer));
    if !known {
        return Err(ApiError::NotFound(format!(
            "there is no layer {layer} on this node: the Node page lists the layers there are"
        )));
    }
    if !facts.boot_entries.iter().any(|e| e.id == layer.to_string()) {
        return Err(ApiError::Conflict(format!(
            "layer {layer} has no entry in the boot menu (/boot/grub/grub.cfg), so grub \
             cannot boot it: `nodectl check` shows what is missing"
        )));
    }
    Ok(())
}

/// Sets grub's `next_entry` to `layer` after checking it against fresh facts
/// (blocking): what the privileged helper, or this process without one, does for
/// [`boot_next`].
pub fn set_boot_next(layer: &LayerName) -> Result<(), ApiError> {
    let facts = status::gather(&status::boot_dir())
        .map_err(|e| ApiError::Failed(format!("reading the layer store: {e:#}")))?;
    boot_next_target(&facts, layer)?;
    layers::boot::set_next(&status::boot_dir(), layer).map_err(|e| {
        ApiError::Failed(format!(
            "{e:#}: the next boot is unchanged. Check that /boot is mounted read-write, \
             or run `grub-editenv /boot/grub/grubenv set next_entry={layer}` as root in \
             the terminal"
        ))
    })?;
    tracing::info!(%layer, "next boot set to layer");
    Ok(())
}

/// Makes the layer `nodectl rollback` would choose the default, checked against
/// fresh facts (blocking): what the privileged helper, or this process without one,
/// does for the Node page's "Roll back" ([`crate::privileged`]).
pub fn roll_back() -> Result<update::RollbackPlan, ApiError> {
    let boot = status::boot_dir();
    let facts = status::gather(&boot)
        .map_err(|e| ApiError::Failed(format!("reading the layer store: {e:#}")))?;
    let plan = update::plan_rollback(&facts, None, false)
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    update::apply_rollback(&plan, &boot).map_err(|e| {
        ApiError::Failed(format!(
            "{e:#}: the default layer is unchanged. Check that /boot is mounted read-write, \
             or run `nodectl rollback` in the terminal"
        ))
    })?;
    tracing::info!(from = %plan.from, to = %plan.to, "default layer rolled back");
    Ok(plan)
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
