//! The `Host.*` verbs served so far, from the node's own facts.
//!
//! The engine calls, in order (docs of the protocol: `Host.ping2` while it deploys,
//! then `Host.getCapabilities`, `Host.getHardwareInfo`, `Host.getStats` to take the
//! host Up, then `Host.getAllVmStats` every few seconds). A verb not served yet is
//! answered "method not found" (-32601), never with made-up facts. Served:
//! `Host.ping2`, `Host.confirmConnectivity`, `Host.getCapabilities`,
//! `Host.getHardwareInfo`, `Host.getStats`,
//! `Host.getAllVmStats`, `Host.getVMList`, `Host.getVMFullList`, `Host.dumpxmls`, `Host.hostdevListByCaps`,
//! `Host.setMOMPolicyParameters`, `Host.setupNetworks`,
//! `Host.setSafeNetworkConfig` ([`crate::network`]), and of the VM verbs `VM.getStats`, `VM.destroy`
//! and `VM.shutdown` (the changes through the privileged helper,
//! [`crate::actions`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::jsonrpc::{RpcError, Verbs, code};
use crate::stats;
use crate::vms::Vms;

/// The node's verbs, reading its files under `sysroot` (`/` on a node).
#[derive(Debug, Clone)]
pub struct HostVerbs {
    pub sysroot: PathBuf,
    host: stats::Host,
    sampler: Arc<stats::Sampler>,
    started: Instant,
    vms: Arc<Vms>,
    actions: Option<crate::actions::Actions>,
    /// Every call answered, counted: the engine's confirmation of a network
    /// change.
    calls: Arc<crate::network::Calls>,
    /// The status the node's tools read ([`crate::status`]).
    status: Option<Arc<crate::status::Tracker>>,
}

impl HostVerbs {
    /// The verbs of the host under `sysroot`, its usage sampled from now on, its VMs
    /// read from libvirt at `libvirt_uri` (read-only).
    pub fn new(sysroot: impl Into<PathBuf>, libvirt_uri: &str) -> Self {
        let sysroot = sysroot.into();
        let host = stats::Host {
            root: sysroot.clone(),
        };
        let sampler = stats::Sampler::start(host.clone(), stats::SAMPLE_EVERY);
        Self {
            sysroot,
            host,
            sampler,
            started: Instant::now(),
            vms: Arc::new(Vms::new(libvirt_uri)),
            actions: None,
            calls: crate::network::Calls::new(),
            status: None,
        }
    }

    /// The VM actions (`VM.destroy`, `VM.shutdown`) asked of the privileged helper
    /// at `socket` (its engine socket); without it they answer that they cannot be
    /// made.
    pub fn with_helper(mut self, socket: impl Into<PathBuf>) -> Self {
        self.actions = Some(crate::actions::Actions::new(socket, self.vms.clone()));
        self
    }

    /// Each request counted in `status`, for the node's tools.
    pub fn with_status(mut self, status: Arc<crate::status::Tracker>) -> Self {
        self.status = Some(status);
        self
    }

    fn actions(&self) -> Result<&crate::actions::Actions, RpcError> {
        self.actions.as_ref().ok_or_else(|| {
            RpcError::new(
                code::GENERAL_EXCEPTION,
                "this service was started without the privileged helper's socket \
                 (--helper-socket), which VM actions go through",
            )
        })
    }

    /// Starts watching the VMs for `|virt|VM_status|` events ([`crate::events`]);
    /// the channel goes to [`crate::server::Options::events`].
    pub fn watch_vms(&self) -> tokio::sync::broadcast::Sender<crate::events::Event> {
        crate::events::watch(self.vms.clone(), crate::events::WATCH_EVERY)
    }

    /// What the helper reads for this unprivileged service, when it has one.
    fn root_facts(&self) -> Option<helper::EngineFacts> {
        self.actions
            .as_ref()
            .and_then(crate::actions::Actions::facts)
    }

    /// `Host.getCapabilities`: the host's facts, libvirt's among them.
    fn capabilities(&self) -> Result<Value, RpcError> {
        let gathered = crate::caps::Gathered {
            cpu_models: self.root_facts().map(|f| f.cpu_models).unwrap_or_default(),
            libvirt_caps: self.vms.capabilities_xml()?,
            packages: crate::caps::packages(&self.sysroot),
            interfaces: hostinfo::interfaces().map_err(|e| {
                RpcError::new(
                    code::GENERAL_EXCEPTION,
                    format!("listing the interfaces: {e}"),
                )
            })?,
        };
        Ok(crate::caps::capabilities(&self.host, &gathered))
    }

    /// `Host.getStats`: the usage between the last two samples.
    fn stats(&self) -> Value {
        let (a, b) = self.sampler.pair(&self.host);
        stats::host_stats(&self.host, &a, &b, self.started)
    }

    /// `Host.hostdevListByCaps{caps?}`: the host's devices ([`crate::hostdev`]),
    /// those of the capabilities `caps` names when it is given.
    fn host_devices(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let caps = match params.get("caps") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|c| c.as_str().map(String::from))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| {
                        RpcError::invalid_params(
                            "caps is a list of capability names (pci, usb_device, …)",
                        )
                    })?,
            ),
        };
        let devices = self.vms.node_devices()?;
        Ok(crate::hostdev::list_by_caps(
            &devices,
            caps.as_deref(),
            &self.sysroot,
        ))
    }

    /// `Host.getHardwareInfo`: the DMI facts the kernel exports; each field only
    /// when the firmware gives it (the engine takes every one as optional). The
    /// serial number and system UUID are root's to read: the helper reads them
    /// when this service cannot.
    fn hardware_info(&self) -> Value {
        let dmi = self.sysroot.join("sys/class/dmi/id");
        let mut info = Map::new();
        if let Some(f) = self.root_facts() {
            for (field, value) in [
                ("systemSerialNumber", f.system_serial),
                ("systemUUID", f.system_uuid),
            ] {
                if let Some(v) = value {
                    info.insert(field.into(), json!(v));
                }
            }
        }
        for (field, file) in [
            ("systemManufacturer", "sys_vendor"),
            ("systemProductName", "product_name"),
            ("systemVersion", "product_version"),
            ("systemSerialNumber", "product_serial"),
            ("systemUUID", "product_uuid"),
            ("systemFamily", "product_family"),
        ] {
            let value = std::fs::read_to_string(dmi.join(file)).unwrap_or_default();
            let value = value.trim();
            if !value.is_empty() && !info.contains_key(field) {
                info.insert(field.into(), json!(value));
            }
        }
        Value::Object(info)
    }
}

impl Verbs for HostVerbs {
    fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Value, RpcError> {
        self.calls.count();
        if let Some(s) = &self.status {
            s.request(method);
        }
        match method {
            // The engine polls it while it deploys the host, and during a network
            // change it keeps the connection (and the change) alive.
            "Host.ping2" | "Host.confirmConnectivity" => Ok(Value::Bool(true)),
            "Host.getHardwareInfo" => Ok(self.hardware_info()),
            "Host.getStats" => Ok(self.stats()),
            "Host.getCapabilities" => self.capabilities(),
            "Host.getAllVmStats" => self.vms.all_stats(),
            "Host.getVMList" => self.vms.vm_list(params),
            "Host.getVMFullList" => self.vms.full_list(params),
            "Host.dumpxmls" => self.vms.dump_xmls(params),
            "Host.hostdevListByCaps" => self.host_devices(params),
            "Host.setMOMPolicyParameters" => self.actions()?.mom_policy(params),
            "Host.setupNetworks" => {
                self.actions()?
                    .setup_networks(&self.sysroot, &self.calls, params)
            }
            "Host.setSafeNetworkConfig" => self.actions()?.commit_networks(),
            "VM.getStats" => self.vms.vm_stats(params),
            "VM.destroy" => self.actions()?.destroy(params),
            "VM.shutdown" => self.actions()?.shutdown(params),
            other => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!(
                    "The method does not exist or is not available: {other} (hvnode-vdsm does not serve it yet)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_info_gives_what_the_firmware_says_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let dmi = root.path().join("sys/class/dmi/id");
        std::fs::create_dir_all(&dmi).unwrap();
        std::fs::write(dmi.join("sys_vendor"), "QEMU\n").unwrap();
        std::fs::write(dmi.join("product_name"), "Standard PC (Q35 + ICH9, 2009)\n").unwrap();
        std::fs::write(dmi.join("product_serial"), "\n").unwrap();
        let verbs = HostVerbs::new(root.path(), "test:///default");
        let info = verbs.call("Host.getHardwareInfo", &Map::new()).unwrap();
        assert_eq!(
            info,
            json!({"systemManufacturer": "QEMU", "systemProductName": "Standard PC (Q35 + ICH9, 2009)"})
        );
        assert_eq!(verbs.call("Host.ping2", &Map::new()), Ok(Value::Bool(true)));
        let e = verbs
            .call("Host.getStorageRepoStats", &Map::new())
            .unwrap_err();
        assert_eq!(e.code, code::METHOD_NOT_FOUND);
    }
}
