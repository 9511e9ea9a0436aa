//! `nodectl rollback`: the layer booted before the current default (or one
//! the admin names) becomes the default from the next boot. A trial that has
//! not been booted yet is called off. Only grub's environment block changes,
//! written whole ([`layers::boot::set_default`]); no layer is removed.

use std::path::Path;

use layers::LayerName;
use layers::status::Facts;
use serde::Serialize;

/// Why a rollback cannot be done; each says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    #[error(
        "this system does not run from a layer (the live image?): boot the installed node \
         and run nodectl rollback there"
    )]
    NotInstalled,
    #[error(
        "{0} is not a layer of this node with a boot entry: `nodectl info` lists the layers \
         that can boot"
    )]
    UnknownLayer(String),
    #[error("{0} is already the default layer: nothing to roll back")]
    AlreadyDefault(String),
    #[error(
        "there is no layer older than {0} with a boot entry to go back to: name one with \
         --to (`nodectl info` lists them)"
    )]
    NothingOlder(String),
    #[error(
        "{layer} failed its trial boot ({reason}); add --force to make it the default all \
         the same"
    )]
    FailedTrial { layer: String, reason: String },
}

/// What a rollback will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackPlan {
    /// The default layer now (grub's `saved_entry`, else the running layer).
    pub from: LayerName,
    /// The default layer from the next boot.
    pub to: LayerName,
    /// A pending one-time boot (`next_entry`) that is called off.
    pub cancels_trial: Option<String>,
}

/// Plans a rollback on the node's `facts`: to `to`, or else to the newest
/// layer older than the current default that has a boot entry and did not
/// fail its trial. A named layer that failed its trial needs `force`.
pub fn plan_rollback(
    facts: &Facts,
    to: Option<&LayerName>,
    force: bool,
) -> Result<RollbackPlan, RollbackError> {
    let failed = layers::history::failed_layers(&facts.trials);
    let running = facts
        .current_layer
        .clone()
        .ok_or(RollbackError::NotInstalled)?;
    let env = |k: &str| layers::boot::env_value(&facts.grubenv, k);
    let from = env("saved_entry")
        .and_then(|d| d.parse::<LayerName>().ok())
        .unwrap_or(running);
    let bootable: Vec<LayerName> = facts
        .inventory
        .iter()
        .flat_map(|inv| inv.layers.iter())
        .filter(|l| {
            let id = l.to_string();
            facts.boot_entries.iter().any(|e| e.id == id)
        })
        .cloned()
        .collect();
    let to = match to {
        Some(t) if !bootable.contains(t) => {
            return Err(RollbackError::UnknownLayer(t.to_string()));
        }
        Some(t) if *t == from => return Err(RollbackError::AlreadyDefault(t.to_string())),
        Some(t) => match failed.get(&t.to_string()) {
            Some(r) if !force => {
                return Err(RollbackError::FailedTrial {
                    layer: t.to_string(),
                    reason: r.reason.clone(),
                });
            }
            _ => t.clone(),
        },
        None => bootable
            .iter()
            .filter(|l| **l < from && !failed.contains_key(&l.to_string()))
            .max()
            .cloned()
            .ok_or_else(|| RollbackError::NothingOlder(from.to_string()))?,
    };
    Ok(RollbackPlan {
        from,
        to,
        cancels_trial: env("next_entry"),
    })
}

/// Carries out `plan` on the boot partition mounted at `boot`.
pub fn apply_rollback(plan: &RollbackPlan, boot: &Path) -> anyhow::Result<()> {
    if plan.cancels_trial.is_some() {
        layers::boot::clear_next(boot)?;
    }
    layers::boot::set_default(boot, &plan.to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use layers::Inventory;
    use layers::status::{GrubEntry, parse_grub_cfg};

    const OLD: &str = "hvnode-1.0-0.20261125.0+1";
    const NEW: &str = "hvnode-1.1-0.20261201.0+1";

    fn entry(id: &str) -> GrubEntry {
        parse_grub_cfg(&format!(
            "menuentry \"x\" --id {id} {{\n linux /{id}/vmlinuz\n initrd /{id}/initrd.img\n}}\n"
        ))
        .remove(0)
    }

    /// A node updated from OLD to NEW and running NEW.
    fn updated(default: &str, next: Option<&str>) -> Facts {
        let layers: Vec<LayerName> = [OLD, NEW].iter().map(|l| l.parse().unwrap()).collect();
        let mut grubenv = vec![("saved_entry".to_string(), default.to_string())];
        grubenv.extend(next.map(|n| ("next_entry".to_string(), n.to_string())));
        Facts {
            inventory: Some(Inventory {
                bases: layers.iter().map(|l| l.base.clone()).collect(),
                layers,
            }),
            current_layer: Some(NEW.parse().unwrap()),
            boot_entries: vec![entry(OLD), entry(NEW)],
            grubenv,
            ..Facts::default()
        }
    }

    #[test]
    fn the_layer_before_the_default_comes_back() {
        let p = plan_rollback(&updated(NEW, None), None, false).unwrap();
        assert_eq!(
            (p.from.to_string(), p.to.to_string()),
            (NEW.into(), OLD.into())
        );
        assert_eq!(p.cancels_trial, None);
        // A trial of NEW still pending while OLD is the default: called off,
        // and --to NEW would only make it the default.
        let p =
            plan_rollback(&updated(OLD, Some(NEW)), Some(&NEW.parse().unwrap()), false).unwrap();
        assert_eq!(p.cancels_trial.as_deref(), Some(NEW));
        assert_eq!(p.to.to_string(), NEW);
    }

    #[test]
    fn each_refusal_names_what_to_do() {
        let mut live = updated(NEW, None);
        live.current_layer = None;
        assert_eq!(
            plan_rollback(&live, None, false),
            Err(RollbackError::NotInstalled)
        );
        assert_eq!(
            plan_rollback(&updated(OLD, None), None, false),
            Err(RollbackError::NothingOlder(OLD.into()))
        );
        let other: LayerName = "hvnode-0.9-1+1".parse().unwrap();
        assert_eq!(
            plan_rollback(&updated(NEW, None), Some(&other), false),
            Err(RollbackError::UnknownLayer(other.to_string()))
        );
        assert_eq!(
            plan_rollback(&updated(NEW, None), Some(&NEW.parse().unwrap()), false),
            Err(RollbackError::AlreadyDefault(NEW.into()))
        );
        let mut no_entry = updated(NEW, None);
        no_entry.boot_entries.remove(0);
        assert!(matches!(
            plan_rollback(&no_entry, None, false),
            Err(RollbackError::NothingOlder(_))
        ));
    }

    #[test]
    fn a_layer_that_failed_its_trial_is_not_gone_back_to_unforced() {
        const MID: &str = "hvnode-1.0-0.20261130.0+1";
        let mut f = updated(NEW, None);
        let mid: LayerName = MID.parse().unwrap();
        f.inventory.as_mut().unwrap().layers.push(mid.clone());
        f.boot_entries.push(entry(MID));
        f.trials.push(layers::history::TrialRecord {
            layer: MID.into(),
            passed: false,
            reason: "hvnode-agent.service: failed".into(),
            at: "t".into(),
        });
        // The newest older layer is MID, but it failed: OLD is chosen.
        assert_eq!(plan_rollback(&f, None, false).unwrap().to.to_string(), OLD);
        let e = plan_rollback(&f, Some(&mid), false).unwrap_err();
        assert!(
            e.to_string().contains("hvnode-agent.service: failed")
                && e.to_string().contains("--force"),
            "{e}"
        );
        assert_eq!(plan_rollback(&f, Some(&mid), true).unwrap().to, mid);
    }

    #[test]
    fn applying_changes_only_the_environment_block() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("grub")).unwrap();
        layers::boot::set_default(d.path(), &NEW.parse().unwrap()).unwrap();
        layers::boot::set_next(d.path(), &NEW.parse().unwrap()).unwrap();
        let facts = updated(NEW, Some(NEW));
        let p = plan_rollback(&facts, None, false).unwrap();
        apply_rollback(&p, d.path()).unwrap();
        assert_eq!(
            layers::boot::read_env(d.path()).unwrap(),
            [("saved_entry".to_string(), OLD.to_string())]
        );
    }
}
