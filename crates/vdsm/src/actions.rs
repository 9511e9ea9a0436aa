//! The engine's verbs that change a VM (`VM.destroy` and `VM.shutdown`), and the
//! facts only root may read (the firmware's serial number and system UUID, the CPU
//! models libvirt offers guests). The service holds no privilege (libvirt's
//! read-only socket, no capabilities), so it asks the privileged helper, on the socket the helper keeps for this service's
//! user alone (`hvnode-helper --engine-user vdsm`, [`helper::EngineAction`]). The
//! engine's client certificate was checked on the connection that carried the
//! verb; the helper checks that the asking process is this service's user.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use helper::{EngineAction, EngineFacts, Failure, FailureKind};
use serde_json::{Map, Value};

use crate::jsonrpc::{RpcError, code};
use crate::vms::Vms;

/// How long a forced shutdown waits for the guest before it powers the VM off,
/// when the engine gives no `timeout` (vdsm's `sys_shutdown_timeout`).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// The VM actions, asked of the helper at its engine socket.
#[derive(Debug, Clone)]
pub struct Actions {
    helper: helper::Client,
    vms: Arc<Vms>,
    /// The facts, once the helper gave them (they do not change while the host
    /// runs); asked again after a failure.
    facts: Arc<Mutex<Option<EngineFacts>>>,
}

/// A VM's id as the engine sends it (`vmID`), lower case as libvirt prints it.
pub fn vm_id(params: &Map<String, Value>) -> Result<String, RpcError> {
    params
        .get("vmID")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .ok_or_else(|| RpcError::invalid_params("vmID, the VM's id, is required"))
}

/// An optional parameter of type `T`; `null` is absent.
fn optional<T: serde::de::DeserializeOwned>(
    params: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<T>, RpcError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|_| RpcError::invalid_params(format!("{key} is {what}"))),
    }
}

/// The verb's error for the helper's failure: vdsm's NoSuchVM for a VM that is
/// not there, its general exception otherwise.
fn failed(vm: &str, f: Failure) -> RpcError {
    match f.kind {
        FailureKind::NotFound => crate::vms::no_such_vm(vm),
        _ => RpcError::new(code::GENERAL_EXCEPTION, f.message),
    }
}

impl Actions {
    /// Actions asked of the helper at `socket`; `vms` reads the VMs' states (a
    /// forced shutdown looks whether the guest went down).
    pub fn new(socket: impl Into<PathBuf>, vms: Arc<Vms>) -> Self {
        Self {
            helper: helper::Client::new(socket),
            vms,
            facts: Arc::new(Mutex::new(None)),
        }
    }

    /// The facts only root may read, from the helper (kept once read); `None`,
    /// logged, when the helper cannot be asked: the verbs then leave them out.
    pub fn facts(&self) -> Option<EngineFacts> {
        let mut kept = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.is_none() {
            match self.helper.engine_facts() {
                Ok(f) => *kept = Some(f),
                Err(e) => tracing::warn!("the host's facts that root reads: {e}"),
            }
        }
        kept.clone()
    }

    /// `VM.destroy{vmID, gracefulAttempts?}`: the VM powered off at once (libvirt
    /// destroys with SIGTERM first, then SIGKILL, which is vdsm's graceful
    /// attempt).
    pub fn destroy(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let vm = vm_id(params)?;
        optional::<u64>(params, "gracefulAttempts", "a count")?;
        self.helper
            .engine(EngineAction::VmDestroy { vm_id: vm.clone() })
            .map_err(|f| failed(&vm, f))?;
        Ok(Value::Bool(true))
    }

    /// `VM.shutdown{vmID, delay?, message?, reboot?, timeout?, force?}`: the guest
    /// asked to shut down, or to reboot, through ACPI. `delay` and `message` are
    /// for a guest agent, which this service does not speak (vdsm's ACPI path
    /// ignores them too). With `force`, a guest still running after `timeout`
    /// seconds (120 by default) is powered off.
    pub fn shutdown(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let vm = vm_id(params)?;
        optional::<i64>(params, "delay", "a number of seconds")?;
        optional::<String>(params, "message", "a string")?;
        let reboot = optional::<bool>(params, "reboot", "a boolean")?.unwrap_or(false);
        let timeout = optional::<u64>(params, "timeout", "a number of seconds")?
            .map_or(DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_secs);
        let force = optional::<bool>(params, "force", "a boolean")?.unwrap_or(false);
        self.helper
            .engine(EngineAction::VmShutdown {
                vm_id: vm.clone(),
                reboot,
            })
            .map_err(|f| failed(&vm, f))?;
        if force && !reboot {
            self.power_off_unless_down(vm, timeout);
        }
        Ok(Value::Bool(true))
    }

    /// `Host.setMOMPolicyParameters{key_value_store}`: of the engine's cluster
    /// policy, the memory sharing is applied to the kernel (KSM on or off, merging
    /// across NUMA nodes), as vdsm's MOM applies it. `balloonEnabled` asks for a
    /// balloon controller, which this service does not run: it is logged, not
    /// applied (`getStats` says `momStatus: disabled`).
    pub fn mom_policy(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let store = params
            .get("key_value_store")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                RpcError::invalid_params("key_value_store, the policy's variables, is required")
            })?;
        let flag = |key: &str| optional::<bool>(store, key, "a boolean");
        let ksm = flag("ksmEnabled")?;
        let merge = flag("ksmMergeAcrossNodes")?;
        if let Some(balloon) = flag("balloonEnabled")? {
            tracing::info!(
                balloon,
                "the engine's balloon policy: not applied, no balloon controller runs here"
            );
        }
        if let Some(enabled) = ksm {
            self.helper
                .engine(EngineAction::Ksm {
                    enabled,
                    merge_across_nodes: merge,
                })
                .map_err(|f| RpcError::new(code::GENERAL_EXCEPTION, f.message))?;
        }
        Ok(Value::Bool(true))
    }

    /// `Host.setupNetworks{networks, bondings, options}` ([`crate::network`]):
    /// checked against the host under `root`, made by the helper, then, unless
    /// the engine said not to check, kept only if a call from the engine
    /// (`calls`) arrives within the connectivity timeout; rolled back otherwise
    /// (vdsm's code 10). Committed as the networks a boot starts with when
    /// `commitOnSuccess` asks. Answers vdsm's done status.
    pub fn setup_networks(
        &self,
        root: &std::path::Path,
        calls: &crate::network::Calls,
        params: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        use crate::network::code as net;
        let (changes, options) = crate::network::parse_setup(params)?;
        crate::network::precheck(root, &changes)?;
        let ask = |action: EngineAction| {
            self.helper.engine(action).map_err(|f| {
                let code = match f.kind {
                    FailureKind::Invalid => net::BAD_PARAMS,
                    _ => code::GENERAL_EXCEPTION,
                };
                RpcError::new(code, f.message)
            })
        };
        let names: Vec<String> = changes
            .iter()
            .map(|c| match c {
                netconf::Change::Set { name, .. } => name.clone(),
                netconf::Change::Remove { name } => format!("-{name}"),
            })
            .collect();
        ask(EngineAction::SetupNetworks { changes })?;
        // As vdsm: only a call after the change is made confirms it (one made
        // while the old network was still up proves nothing of the new one).
        let mark = calls.so_far();
        tracing::info!(
            ?names,
            check = options.check,
            timeout_s = options.timeout.as_secs(),
            "the engine's networks changed"
        );
        if options.check && !calls.wait_past(mark, options.timeout) {
            tracing::warn!(
                ?names,
                "no call from the engine within {} s of the network change: rolling it back",
                options.timeout.as_secs()
            );
            ask(EngineAction::RollbackNetworks)?;
            return Err(RpcError::new(
                net::LOST_CONNECTION,
                format!(
                    "connectivity check failed: no call from the engine within {} s of the \
                     network change ({}), which was rolled back",
                    options.timeout.as_secs(),
                    names.join(", ")
                ),
            ));
        }
        if options.commit {
            ask(EngineAction::CommitNetworks)?;
        }
        Ok(serde_json::json!({"code": 0, "message": "Done"}))
    }

    /// `Host.setSafeNetworkConfig`: the running networks become those a boot
    /// starts with.
    pub fn commit_networks(&self) -> Result<Value, RpcError> {
        self.helper
            .engine(EngineAction::CommitNetworks)
            .map_err(|f| RpcError::new(code::GENERAL_EXCEPTION, f.message))?;
        Ok(Value::Bool(true))
    }

    /// After `timeout`, powers `vm` off if it is still running.
    fn power_off_unless_down(&self, vm: String, timeout: Duration) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("hvnode-vdsm-shutdown".into())
            .spawn(move || {
                std::thread::sleep(timeout);
                let running = match me.vms.statuses() {
                    Ok(s) => s.contains_key(&vm),
                    Err(e) => {
                        tracing::warn!(vm, "a forced shutdown cannot see the VM's state: {e}");
                        true
                    }
                };
                if running {
                    tracing::info!(
                        vm,
                        "the guest did not shut down within {} s; powering it off",
                        timeout.as_secs()
                    );
                    if let Err(e) = me
                        .helper
                        .engine(EngineAction::VmDestroy { vm_id: vm.clone() })
                    {
                        tracing::warn!(vm, "powering off after a shutdown's timeout: {e}");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no thread to force a shutdown after its timeout: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parameters_are_checked_before_the_helper_is_asked() {
        let vms = Arc::new(Vms::new("test:///default"));
        let actions = Actions::new("/nonexistent/helper/socket", vms);
        let err = actions.destroy(&params(json!({}))).unwrap_err();
        assert_eq!(err.code, code::INVALID_PARAMS);
        let err = actions
            .shutdown(&params(json!({"vmID": "x", "reboot": "yes"})))
            .unwrap_err();
        assert_eq!(err.code, code::INVALID_PARAMS, "{err}");
        // Good parameters reach the helper, which is not there: a general failure
        // that says where it was looked for.
        let err = actions
            .destroy(&params(
                json!({"vmID": "6F5C1E2A-0001-4002-8003-000000000042"}),
            ))
            .unwrap_err();
        assert_eq!(err.code, code::GENERAL_EXCEPTION);
        assert!(err.message.contains("/nonexistent/helper/socket"), "{err}");
    }

    #[test]
    fn a_mom_policy_without_ksm_asks_nothing_and_a_bad_one_is_refused() {
        let vms = Arc::new(Vms::new("test:///default"));
        let actions = Actions::new("/nonexistent/helper/socket", vms);
        let balloon_only = params(json!({"key_value_store": {"balloonEnabled": true}}));
        assert_eq!(actions.mom_policy(&balloon_only).unwrap(), json!(true));
        for bad in [
            json!({}),
            json!({"key_value_store": {"ksmEnabled": "yes"}}),
            json!({"key_value_store": [1]}),
        ] {
            let err = actions.mom_policy(&params(bad)).unwrap_err();
            assert_eq!(err.code, code::INVALID_PARAMS, "{err}");
        }
        // KSM is the helper's to set: without one, a general failure naming it.
        let ksm = params(json!({"key_value_store": {"ksmEnabled": true}}));
        let err = actions.mom_policy(&ksm).unwrap_err();
        assert_eq!(err.code, code::GENERAL_EXCEPTION);
        assert!(err.message.contains("/nonexistent/helper/socket"), "{err}");
    }

    #[test]
    fn a_vm_the_helper_does_not_find_is_vdsms_no_such_vm() {
        let e = failed("abc", Failure::new(FailureKind::NotFound, "no such domain"));
        assert_eq!(e.code, code::NO_SUCH_VM);
        assert_eq!(e.message, "Virtual machine does not exist: {'vmId': 'abc'}");
    }
}
