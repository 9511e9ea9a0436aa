//! The plan of an update, decided from facts before anything is written:
//! which base and layer are made, which boot entries `grub.cfg` will have,
//! which layer is tried once and which stays the default. Pure, so it is
//! tested on recorded facts (an LVM node included).

use serde::Serialize;

use layers::boot::BootEntry;
use layers::status::parse_grub_cfg;
use layers::{Inventory, LayerName, Nvr};

use crate::space::SpaceCheck;

/// What the node looks like before the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// `lvm`, `btrfs` or `plain`.
    pub backend: String,
    pub inventory: Inventory,
    /// The layer the system runs from.
    pub current_layer: LayerName,
    /// The text of `/boot/grub/grub.cfg`.
    pub grub_cfg: String,
    /// grub's environment block.
    pub grubenv: Vec<(String, String)>,
    /// Folders under `/boot` (a layer's kernel folder already there means a
    /// leftover of an interrupted update).
    pub boot_dirs: Vec<String>,
    /// The root arguments of the current layer (`Store::root_args`).
    pub current_root_args: Vec<String>,
    /// The running image's own kernel arguments (its `image.json`).
    pub current_image_args: Vec<String>,
}

/// What the new image brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub nvr: Nvr,
    /// Its `image.json` kernel arguments.
    pub kernel_args: Vec<String>,
    /// The root arguments of its first layer (`Store::root_args`).
    pub root_args: Vec<String>,
}

/// Why an update cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the base {nvr} is already in the store: this image is installed. Boot it with \
         `nodectl rollback --to {nvr}` or remove it first; nothing was written"
    )]
    AlreadyInstalled { nvr: Nvr },
    #[error(
        "the store already has layers of {nvr} ({layers}) without their base: leftovers of an \
         interrupted update. Remove them before updating; nothing was written"
    )]
    OrphanLayers { nvr: Nvr, layers: String },
    #[error(
        "/boot/{layer} exists already: a leftover of an interrupted update. Remove that folder \
         and try again; nothing was written"
    )]
    BootDirExists { layer: LayerName },
    #[error(
        "/boot/grub/grub.cfg has no `search --fs-uuid` line: it was not written by hvnode, so \
         it is not rewritten; nothing was written"
    )]
    NoBootUuid,
    #[error(
        "/boot/grub/grub.cfg has the entry {id:?}, which is not an hvnode layer: it is not \
         rewritten; nothing was written"
    )]
    ForeignEntry { id: String },
    #[error(
        "/boot/grub/grub.cfg has no entry for the running layer {layer}: check the boot menu \
         (`nodectl check`) before updating; nothing was written"
    )]
    NoCurrentEntry { layer: LayerName },
}

/// What an update will do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub backend: String,
    pub current_layer: LayerName,
    /// The base of the running layer, whose `/etc` is the pristine old one.
    pub old_base: Nvr,
    pub new_base: Nvr,
    pub new_layer: LayerName,
    /// The `/boot` file system's UUID grub finds it by.
    pub boot_uuid: String,
    /// The whole boot menu after the update, the new entry last.
    pub entries: Vec<BootEntry>,
    /// Tried once at the next boot (grub's `next_entry`).
    pub trial: LayerName,
    /// Stays the default (grub's `saved_entry`).
    pub default: Option<String>,
    /// The space checks (filled in when space was checked).
    pub space: Vec<SpaceCheck>,
    /// What the admin should know before saying yes.
    pub warnings: Vec<String>,
}

/// The boot UUID hvnode's `grub.cfg` searches for.
pub fn boot_uuid(grub_cfg: &str) -> Option<String> {
    grub_cfg.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("search ")?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        words
            .contains(&"--fs-uuid")
            .then(|| words.last().map(|w| w.to_string()))?
    })
}

/// The kernel arguments of the new layer's entry: its root arguments, the
/// new image's arguments, then what the admin added to the running entry
/// (anything that is neither its root arguments nor its image's), in
/// order, without repeats.
pub fn entry_args(
    current_entry: &[String],
    current_root: &[String],
    current_image: &[String],
    new_root: &[String],
    new_image: &[String],
) -> Vec<String> {
    let mut known: Vec<&String> = current_root.iter().chain(current_image).collect();
    let extras: Vec<&String> = current_entry
        .iter()
        .filter(|a| match known.iter().position(|k| k == a) {
            Some(i) => {
                known.remove(i);
                false
            }
            None => true,
        })
        .collect();
    let mut out: Vec<String> = Vec::new();
    for a in new_root.iter().chain(new_image).chain(extras) {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// Decides the update of `node` to `image`.
pub fn plan(node: &NodeFacts, image: &ImageFacts) -> Result<Plan, PlanError> {
    let new_base = image.nvr.clone();
    if node.inventory.bases.contains(&new_base) {
        return Err(PlanError::AlreadyInstalled { nvr: new_base });
    }
    let orphans: Vec<String> = node
        .inventory
        .layers
        .iter()
        .filter(|l| l.base == new_base)
        .map(ToString::to_string)
        .collect();
    if !orphans.is_empty() {
        return Err(PlanError::OrphanLayers {
            nvr: new_base,
            layers: orphans.join(", "),
        });
    }
    let new_layer = LayerName::first(&new_base);
    if node.boot_dirs.contains(&new_layer.to_string()) {
        return Err(PlanError::BootDirExists { layer: new_layer });
    }
    let boot_uuid = boot_uuid(&node.grub_cfg).ok_or(PlanError::NoBootUuid)?;
    let mut entries = Vec::new();
    for e in parse_grub_cfg(&node.grub_cfg) {
        let layer: LayerName =
            e.id.parse()
                .map_err(|_| PlanError::ForeignEntry { id: e.id.clone() })?;
        entries.push(BootEntry {
            layer,
            args: e.args.split_whitespace().map(String::from).collect(),
        });
    }
    let current = entries
        .iter()
        .find(|e| e.layer == node.current_layer)
        .ok_or_else(|| PlanError::NoCurrentEntry {
            layer: node.current_layer.clone(),
        })?;
    let args = entry_args(
        &current.args,
        &node.current_root_args,
        &node.current_image_args,
        &image.root_args,
        &image.kernel_args,
    );
    entries.push(BootEntry {
        layer: new_layer.clone(),
        args,
    });
    let env = |k: &str| {
        node.grubenv
            .iter()
            .find(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let mut warnings = Vec::new();
    if let Some(pending) = env("next_entry") {
        warnings.push(format!(
            "a trial boot of {pending} is pending; it is replaced by {new_layer}"
        ));
    }
    if node.current_layer.base > new_base {
        warnings.push(format!(
            "{new_base} is older than the running {}: this is a downgrade",
            node.current_layer.base
        ));
    }
    Ok(Plan {
        backend: node.backend.clone(),
        current_layer: node.current_layer.clone(),
        old_base: node.current_layer.base.clone(),
        new_base,
        new_layer: new_layer.clone(),
        boot_uuid,
        entries,
        trial: new_layer,
        default: env("saved_entry"),
        space: Vec::new(),
        warnings,
    })
}

/// `fstab` with the root entry moved from `old` to `new` (the layer's
/// name in its device or `subvol=` option); every other line as it was.
/// Returns whether the root entry named the old layer.
pub fn retarget_fstab(fstab: &str, old: &LayerName, new: &LayerName) -> (String, bool) {
    let (old, new) = (old.to_string(), new.to_string());
    let mut changed = false;
    let mut out = String::with_capacity(fstab.len());
    for line in fstab.split_inclusive('\n') {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_root = !line.trim_start().starts_with('#') && fields.get(1) == Some(&"/");
        if is_root && line.contains(&old) {
            out.push_str(&line.replace(&old, &new));
            changed = true;
        } else {
            out.push_str(line);
        }
    }
    (out, changed)
}

impl Plan {
    /// The plan for a person, one line each.
    pub fn lines(&self) -> Vec<String> {
        let mut l = vec![
            format!("store: {}", self.backend),
            format!("running layer: {}", self.current_layer),
            format!("new base (read-only): {}", self.new_base),
            format!("new layer: {}", self.new_layer),
            format!(
                "/etc: merged from {} (old image), the running /etc, {} (new image)",
                self.old_base, self.new_base
            ),
            "/var: only paths new in the image are added; nothing is rewritten".to_string(),
            format!(
                "boot: /boot/{}/ and a boot entry; the next boot tries {} once",
                self.new_layer, self.trial
            ),
            format!(
                "default boot entry stays {}",
                self.default.as_deref().unwrap_or("grub's first entry")
            ),
        ];
        l.extend(self.space.iter().map(|c| format!("space: {}", c.message)));
        l.extend(self.warnings.iter().map(|w| format!("WARNING: {w}")));
        l
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
