//! Old images go after a trial passes (`nodectl trial`; `nodectl gc` by
//! hand): the store keeps the booted image, the default one and the one on
//! trial, and of the others the newest that did not fail a trial, up to
//! `images_to_keep` images in all (`/etc/hvnode/update.toml`, default 2).
//! An image goes with its layers, their kernel folders under `/boot`,
//! their boot entries and their update records.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use layers::boot::{self, BootEntry};
use layers::history::History;
use layers::status::parse_grub_cfg;
use layers::{Inventory, LayerName, Nvr};
use serde::Serialize;

/// What a collection removes, oldest image first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GcPlan {
    pub remove: Vec<Doomed>,
    /// The images kept, newest first.
    pub keep: Vec<Nvr>,
}

/// An image to remove, with its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Doomed {
    pub base: Nvr,
    pub layers: Vec<LayerName>,
}

/// The layers a collection must never touch.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    pub booted: Option<LayerName>,
    pub default: Option<LayerName>,
    pub trial: Option<LayerName>,
}

/// Plans a collection of `inv` keeping `keep` images; the images of
/// `failed` layers are the first to go.
pub fn plan_gc(
    inv: &Inventory,
    protected: &Protected,
    keep: u32,
    failed: &BTreeSet<String>,
) -> GcPlan {
    let mut kept: Vec<Nvr> = [&protected.booted, &protected.default, &protected.trial]
        .into_iter()
        .flatten()
        .map(|l| l.base.clone())
        .collect();
    kept.sort();
    kept.dedup();
    let layers_of = |b: &Nvr| -> Vec<LayerName> {
        inv.layers
            .iter()
            .filter(|l| l.base == *b)
            .cloned()
            .collect()
    };
    let has_failed = |b: &Nvr| {
        let ls = layers_of(b);
        !ls.is_empty() && ls.iter().all(|l| failed.contains(&l.to_string()))
    };
    let mut newest_first = inv.bases.clone();
    newest_first.sort();
    newest_first.reverse();
    for b in &newest_first {
        if kept.len() >= keep as usize {
            break;
        }
        if !kept.contains(b) && !has_failed(b) {
            kept.push(b.clone());
        }
    }
    kept.sort();
    kept.reverse();
    let mut remove: Vec<Doomed> = inv
        .bases
        .iter()
        .filter(|b| !kept.contains(b))
        .map(|b| Doomed {
            base: b.clone(),
            layers: layers_of(b),
        })
        .collect();
    remove.sort_by(|a, b| a.base.cmp(&b.base));
    GcPlan { remove, keep: kept }
}

/// Carries out `plan`: for each image, its boot entries first (so grub
/// never offers a layer that is going), then its kernel folders, layers,
/// base and update records. Returns what was removed, one line each.
pub fn apply_gc(
    plan: &GcPlan,
    store: &dyn layers::Store,
    boot_dir: &Path,
    history: &History,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    if plan.remove.is_empty() {
        return Ok(done);
    }
    let doomed: BTreeSet<String> = plan
        .remove
        .iter()
        .flat_map(|d| d.layers.iter().map(ToString::to_string))
        .collect();
    let cfg_path = boot_dir.join("grub/grub.cfg");
    let cfg =
        fs::read_to_string(&cfg_path).with_context(|| format!("reading {}", cfg_path.display()))?;
    let uuid = crate::plan::boot_uuid(&cfg).with_context(|| {
        format!(
            "{} has no `search --fs-uuid` line: it was not written by hvnode; nothing removed",
            cfg_path.display()
        )
    })?;
    let entries: Vec<BootEntry> = parse_grub_cfg(&cfg)
        .into_iter()
        .filter(|e| !doomed.contains(&e.id))
        .filter_map(|e| {
            Some(BootEntry {
                layer: e.id.parse().ok()?,
                args: e.args.split_whitespace().map(String::from).collect(),
            })
        })
        .collect();
    boot::write_grub_cfg(boot_dir, &uuid, &entries, None)?;
    for d in &plan.remove {
        for l in &d.layers {
            let dir = boot::layer_dir(boot_dir, l);
            if dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            store
                .remove_layer(l)
                .with_context(|| format!("removing the layer {l}"))?;
            history.forget_update(&l.to_string())?;
            done.push(format!("removed layer {l}"));
        }
        store
            .remove_base(&d.base)
            .with_context(|| format!("removing the image {}", d.base))?;
        done.push(format!("removed image {}", d.base));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(bases: &[&str]) -> Inventory {
        Inventory {
            bases: bases.iter().map(|b| b.parse().unwrap()).collect(),
            layers: bases
                .iter()
                .map(|b| format!("{b}+1").parse().unwrap())
                .collect(),
        }
    }

    fn layer(b: &str) -> Option<LayerName> {
        Some(format!("{b}+1").parse().unwrap())
    }

    const A: &str = "hvnode-1.0-1";
    const B: &str = "hvnode-1.0-2";
    const C: &str = "hvnode-1.0-3";
    const D: &str = "hvnode-1.0-4";

    fn names(p: &GcPlan) -> Vec<String> {
        p.remove.iter().map(|d| d.base.to_string()).collect()
    }

    #[test]
    fn the_newest_images_are_kept_with_the_booted_and_default_ones() {
        let prot = Protected {
            booted: layer(D),
            default: layer(D),
            trial: None,
        };
        let p = plan_gc(&inv(&[A, B, C, D]), &prot, 2, &BTreeSet::new());
        assert_eq!(names(&p), [A, B]);
        assert_eq!(p.remove[0].layers, [layer(A).unwrap()]);
        // Booted on an old image, a newer default: both stay, whatever
        // the count.
        let prot = Protected {
            booted: layer(A),
            default: layer(D),
            trial: layer(C),
        };
        let p = plan_gc(&inv(&[A, B, C, D]), &prot, 2, &BTreeSet::new());
        assert_eq!(names(&p), [B]);
        let p = plan_gc(&inv(&[A, B, C, D]), &prot, 1, &BTreeSet::new());
        assert_eq!(names(&p), [B], "protected images stay above the count");
    }

    #[test]
    fn an_image_that_failed_its_trial_goes_first() {
        let prot = Protected {
            booted: layer(C),
            default: layer(C),
            trial: None,
        };
        let failed: BTreeSet<String> = [format!("{D}+1")].into();
        let p = plan_gc(&inv(&[A, B, C, D]), &prot, 2, &failed);
        assert_eq!(names(&p), [A, D]);
        assert_eq!(
            p.keep,
            [C.parse::<Nvr>().unwrap(), B.parse::<Nvr>().unwrap()]
        );
    }

    #[test]
    fn nothing_goes_while_the_count_is_not_reached() {
        let prot = Protected {
            booted: layer(B),
            default: layer(B),
            trial: None,
        };
        assert!(
            plan_gc(&inv(&[A, B]), &prot, 2, &BTreeSet::new())
                .remove
                .is_empty()
        );
    }
}
