//! The changes the console makes to the node (a VM's power, a unit's state), made
//! where the session's rights are: by the privileged helper when it holds the
//! request's session (it checks again that the session's user may administer the
//! node, and the web process needs no rights for them), in this process otherwise.
//! Both run [`make_here`], so a change behaves the same either way. The facts
//! only root can read come the same way ([`crate::facts::Reader`]).

use helper::{Change, EngineAction, EngineFacts, Failure, FailureKind};

use crate::error::ApiError;
use crate::services::{self, UnitAction};
use crate::state::Shared;
use crate::vm_manage;
use crate::vms::{Libvirt, VirtError, VmAction};

/// Makes `change` in this process: names and actions checked first.
pub fn make_here(libvirt: &Libvirt, change: &Change) -> Result<(), Failure> {
    match change {
        Change::Vm { name, action } => {
            let action: VmAction = action
                .parse()
                .map_err(|e| Failure::new(FailureKind::Invalid, e))?;
            libvirt.act(name, action).map(|_| ()).map_err(vm_failure)
        }
        Change::BootNext { layer } => crate::node_layers::parse_layer(layer)
            .and_then(|l| crate::node_layers::set_boot_next(&l))
            .map_err(Failure::from),
        Change::Rollback => crate::node_layers::roll_back()
            .map(|_| ())
            .map_err(Failure::from),
        Change::VmCreate { spec } => vm_manage::create(libvirt, spec),
        Change::VmEdit { name, edit } => vm_manage::edit(libvirt, name, edit),
        Change::VmDelete { name, storage } => vm_manage::delete(libvirt, name, *storage),
        Change::Snapshot {
            vm,
            snapshot,
            action,
            description,
        } => vm_manage::snapshot(libvirt, vm, snapshot, action, description.as_deref()),
        Change::PoolCreate { name, path } => vm_manage::create_pool(libvirt, name, path),
        Change::Pool { name, action } => vm_manage::pool_action(libvirt, name, action),
        Change::Network { name, action } => vm_manage::network_action(libvirt, name, action),
        Change::Unit { unit, action } => {
            let action: UnitAction = action
                .parse()
                .map_err(|e| Failure::new(FailureKind::Invalid, e))?;
            if !services::valid_unit_name(unit) {
                return Err(Failure::new(
                    FailureKind::Invalid,
                    format!("not a unit name: {unit:?}"),
                ));
            }
            services::act(unit, action).map_err(|e| {
                let kind = if e.not_found {
                    FailureKind::Unavailable
                } else {
                    FailureKind::Failed
                };
                Failure::new(kind, e.to_string())
            })
        }
    }
}

fn vm_failure(e: VirtError) -> Failure {
    let kind = match e {
        VirtError::NoSuchVm(_) => FailureKind::NotFound,
        VirtError::Unavailable { .. } => FailureKind::Unavailable,
        VirtError::Failed(_) => FailureKind::Failed,
    };
    Failure::new(kind, e.to_string())
}

/// Does what the engine asked through its link (the helper serves it to that
/// link's user only): a VM named by its libvirt UUID powered off or shut down.
pub fn engine_here(libvirt: &Libvirt, action: &EngineAction) -> Result<(), Failure> {
    let (vm_id, vm_action) = match action {
        EngineAction::Ksm {
            enabled,
            merge_across_nodes,
        } => {
            return set_ksm(
                std::path::Path::new("/sys/kernel/mm/ksm"),
                *enabled,
                *merge_across_nodes,
            );
        }
        EngineAction::SetupNetworks { .. }
        | EngineAction::RollbackNetworks
        | EngineAction::CommitNetworks => {
            return engine_networks(&netconf::store::Store::new("/"), action);
        }
        EngineAction::VmDestroy { vm_id } => (vm_id, VmAction::ForceOff),
        EngineAction::VmShutdown { vm_id, reboot } => (
            vm_id,
            if *reboot {
                VmAction::Reboot
            } else {
                VmAction::Shutdown
            },
        ),
    };
    let uuid = uuid::Uuid::parse_str(vm_id).map_err(|e| {
        Failure::new(
            FailureKind::Invalid,
            format!("{vm_id:?} is not a VM id (a UUID): {e}"),
        )
    })?;
    libvirt
        .act_by_uuid(uuid.as_bytes(), vm_action)
        .map(|_| ())
        .map_err(vm_failure)
}

/// The engine's network changes on the node whose store is `store`
/// ([`netconf::store`]): a setup checked and written, then taken up by
/// systemd-networkd (undone at once when networkd refuses it); a rollback to
/// the networks before the changes not confirmed; a commit of the running
/// networks as those a boot starts with.
pub fn engine_networks(
    store: &netconf::store::Store,
    action: &EngineAction,
) -> Result<(), Failure> {
    let stored = |e: netconf::store::StoreError| {
        let kind = match e {
            netconf::store::StoreError::NothingToRollBack => FailureKind::Conflict,
            _ => FailureKind::Failed,
        };
        Failure::new(kind, e.to_string())
    };
    let activate = |t: &netconf::store::Transition| {
        if t.is_empty() {
            // The engine asked for what is there: the network is not bounced.
            return Ok(());
        }
        netconf::store::activate(t, &store.links()).map_err(|e| {
            Failure::new(
                FailureKind::Failed,
                format!("systemd-networkd did not take up the engine's networks: {e}"),
            )
        })
    };
    match action {
        EngineAction::SetupNetworks { changes } => {
            let t = store.setup(changes).map_err(|e| match e {
                netconf::store::SetupError::Invalid(i) => {
                    Failure::new(FailureKind::Invalid, i.message)
                }
                netconf::store::SetupError::Store(e) => stored(e),
            })?;
            if let Err(failure) = activate(&t) {
                // Back to the networks before, which networkd took.
                if let Ok(back) = store.rollback() {
                    let _ = activate(&back);
                }
                return Err(failure);
            }
            tracing::info!(networks = ?t.after.0.keys().collect::<Vec<_>>(), "the engine's networks set up");
            Ok(())
        }
        EngineAction::RollbackNetworks => {
            let t = store.rollback().map_err(stored)?;
            activate(&t)?;
            tracing::warn!(networks = ?t.after.0.keys().collect::<Vec<_>>(), "the engine's networks rolled back: the change was not confirmed");
            Ok(())
        }
        EngineAction::CommitNetworks => {
            store.commit().map_err(stored)?;
            tracing::info!("the engine's running networks are now those a boot starts with");
            Ok(())
        }
        _ => Err(Failure::new(
            FailureKind::Invalid,
            "not a network change of the engine",
        )),
    }
}

/// Turns the kernel's same-page merging on or off in `ksm` (`/sys/kernel/mm/ksm`)
/// and sets whether it merges across NUMA nodes. The kernel takes a change of
/// `merge_across_nodes` only while no page is merged, so the merged pages are
/// first split (`run` = 2) when it changes.
pub fn set_ksm(
    ksm: &std::path::Path,
    enabled: bool,
    merge_across_nodes: Option<bool>,
) -> Result<(), Failure> {
    let write = |file: &str, value: &str| {
        let path = ksm.join(file);
        std::fs::write(&path, value).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                FailureKind::Unavailable
            } else {
                FailureKind::Failed
            };
            Failure::new(
                kind,
                format!(
                    "writing {value} to {}: {e} (is KSM in this kernel, and /sys writable \
                     for hvnode-helper?)",
                    path.display()
                ),
            )
        })
    };
    let read = |file: &str| std::fs::read_to_string(ksm.join(file)).unwrap_or_default();
    if let Some(merge) = merge_across_nodes {
        let want = if merge { "1" } else { "0" };
        if read("merge_across_nodes").trim() != want {
            write("run", "2")?;
            write("merge_across_nodes", want)?;
        }
    }
    write("run", if enabled { "1" } else { "0" })?;
    tracing::info!(enabled, ?merge_across_nodes, "KSM set as the engine asked");
    Ok(())
}

/// The facts the engine asks for that only root may read: DMI's system serial
/// and UUID under `sysroot`, libvirt's usable CPU models. What cannot be read is
/// left out and logged.
pub fn engine_facts_here(libvirt: &Libvirt, sysroot: &std::path::Path) -> EngineFacts {
    let dmi = |file: &str| {
        let path = sysroot.join("sys/class/dmi/id").join(file);
        match std::fs::read_to_string(&path) {
            Ok(v) => Some(v.trim().to_string()).filter(|v| !v.is_empty()),
            Err(e) => {
                tracing::debug!(path = %path.display(), "not read for the engine: {e}");
                None
            }
        }
    };
    let cpu_models = libvirt.usable_cpu_models().unwrap_or_else(|e| {
        tracing::warn!("the CPU models for the engine: {e}");
        Vec::new()
    });
    EngineFacts {
        system_serial: dmi("product_serial"),
        system_uuid: dmi("product_uuid"),
        cpu_models,
    }
}

/// Makes `change` for the session of `token`: through the helper when it holds the
/// session, here otherwise.
pub async fn make(state: &Shared, token: &str, change: Change) -> Result<(), ApiError> {
    let held = state.helper_of(token);
    let libvirt = state.libvirt.clone();
    tokio::task::spawn_blocking(move || match held {
        Some(held) => held.change(change),
        None => make_here(&libvirt, &change),
    })
    .await
    .map_err(|e| ApiError::Failed(format!("making the change: {e}")))?
    .map_err(ApiError::from)
}

/// A VM's power action for the session of `token`.
pub async fn vm_action(
    state: &Shared,
    token: &str,
    name: &str,
    action: VmAction,
) -> Result<(), ApiError> {
    let change = Change::Vm {
        name: name.to_string(),
        action: action.as_str().to_string(),
    };
    make(state, token, change).await
}

/// A unit's action for the session of `token`.
pub async fn unit_action(
    state: &Shared,
    token: &str,
    unit: &str,
    action: &str,
) -> Result<(), ApiError> {
    let action: UnitAction = action.parse().map_err(ApiError::BadRequest)?;
    if !services::valid_unit_name(unit) {
        return Err(ApiError::BadRequest(format!("not a unit name: {unit:?}")));
    }
    let change = Change::Unit {
        unit: unit.to_string(),
        action: action.as_str().to_string(),
    };
    make(state, token, change).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A KSM folder as sysfs has it: `run` and `merge_across_nodes`, each write
    /// replacing the value.
    fn ksm_dir(run: &str, merge: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run"), run).unwrap();
        std::fs::write(dir.path().join("merge_across_nodes"), merge).unwrap();
        dir
    }

    fn value(dir: &tempfile::TempDir, file: &str) -> String {
        std::fs::read_to_string(dir.path().join(file)).unwrap()
    }

    #[test]
    fn ksm_is_turned_on_and_off_and_its_numa_merging_set() {
        let dir = ksm_dir("0\n", "1\n");
        set_ksm(dir.path(), true, None).unwrap();
        assert_eq!(value(&dir, "run"), "1");
        assert_eq!(value(&dir, "merge_across_nodes"), "1\n");
        set_ksm(dir.path(), true, Some(false)).unwrap();
        assert_eq!(value(&dir, "merge_across_nodes"), "0");
        assert_eq!(value(&dir, "run"), "1");
        set_ksm(dir.path(), false, Some(false)).unwrap();
        assert_eq!(value(&dir, "run"), "0");
    }

    #[test]
    fn a_kernel_without_ksm_is_unavailable_and_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ksm");
        let e = set_ksm(&missing, true, None).unwrap_err();
        assert_eq!(e.kind, FailureKind::Unavailable);
        assert!(e.message.contains("ksm/run"), "{e}");
    }
}
