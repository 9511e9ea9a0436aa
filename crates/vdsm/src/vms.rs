//! The VM verbs, read from libvirt on its read-only socket: every running domain is
//! reported, as vdsm reports the domains it finds running (the engine adds one it did
//! not start as an external VM, `external-NAME`, then asks for its XML with
//! `Host.dumpxmls` and follows it through `Host.getAllVmStats`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hvnode_libvirt::{Client, Domain, DomainInfo, DomainState, Options};
use serde_json::{Map, Value, json};

use crate::jsonrpc::{RpcError, code};

/// How long one libvirt call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// vdsm's name for a domain's state (`lib/vdsm/common/define.py` `vmstatus`).
pub fn vdsm_status(state: DomainState) -> &'static str {
    match state {
        DomainState::Running | DomainState::Blocked => "Up",
        DomainState::Paused => "Paused",
        DomainState::ShuttingDown => "Powering down",
        DomainState::Shutoff | DomainState::Crashed => "Down",
        DomainState::PmSuspended => "Suspended",
        DomainState::NoState | DomainState::Other(_) => "Unknown",
    }
}

/// One running domain as the verbs report it.
#[derive(Debug, Clone)]
struct Running {
    dom: Domain,
    info: DomainInfo,
    xml: String,
}

/// The libvirt side of the VM verbs.
#[derive(Debug)]
pub struct Vms {
    uri: String,
    conn: Mutex<Option<Arc<Client>>>,
    /// The CPU time last seen per domain, for the CPU share between two calls.
    cpu_seen: Mutex<HashMap<[u8; 16], (Instant, u64)>>,
    started: Instant,
}

impl Vms {
    /// The VMs of the libvirt connection `uri` (`qemu:///system` on a node).
    pub fn new(uri: &str) -> Self {
        Self {
            uri: uri.to_string(),
            conn: Mutex::new(None),
            cpu_seen: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> RpcError {
        RpcError::new(
            code::GENERAL_EXCEPTION,
            format!("libvirt at {} cannot be read: {e}", self.uri),
        )
    }

    /// A failed call as the verb's error; a broken connection is dropped, so that
    /// the next verb connects again.
    fn failed(&self, e: hvnode_libvirt::Error) -> RpcError {
        if e.is_connection_error() {
            *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        self.unavailable(e)
    }

    /// The read-only connection, opened again after a failure.
    fn client(&self) -> Result<Arc<Client>, RpcError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = guard.as_ref() {
            if c.check_alive().is_ok() {
                return Ok(c.clone());
            }
        }
        let options = Options {
            call_timeout: CALL_TIMEOUT,
            read_only: true,
        };
        let client =
            Arc::new(Client::connect_with(&self.uri, options).map_err(|e| self.unavailable(e))?);
        *guard = Some(client.clone());
        Ok(client)
    }

    /// libvirt's capabilities document (the host CPU, the machine types).
    pub fn capabilities_xml(&self) -> Result<String, RpcError> {
        let client = self.client()?;
        client.capabilities().map_err(|e| self.failed(e))
    }

    /// `each` of the running domains.
    fn for_each_running<T>(
        &self,
        mut each: impl FnMut(&Client, &Domain) -> Result<T, hvnode_libvirt::Error>,
    ) -> Result<Vec<T>, RpcError> {
        let client = self.client()?;
        let listed = client.for_each_domain(|c, dom| {
            if dom.id < 0 {
                return Ok(None);
            }
            each(c, dom).map(Some)
        });
        match listed {
            Ok(v) => Ok(v.into_iter().flatten().collect()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Every running domain with its facts and live XML.
    fn running(&self) -> Result<Vec<Running>, RpcError> {
        self.for_each_running(|c, dom| {
            let info = c.domain_info(dom)?;
            let xml = c.domain_xml(dom, 0)?;
            Ok(Running {
                dom: dom.clone(),
                info,
                xml,
            })
        })
    }

    /// The vdsm status of each running domain, by id: one call per domain, no XML
    /// (what the event watcher compares, [`crate::events`]).
    pub fn statuses(&self) -> Result<BTreeMap<String, &'static str>, RpcError> {
        Ok(self
            .for_each_running(|c, dom| {
                Ok((dom.uuid_string(), vdsm_status(c.domain_info(dom)?.state)))
            })?
            .into_iter()
            .collect())
    }

    /// The statistics of each running domain, by id.
    pub fn stats_by_id(&self) -> Result<BTreeMap<String, Value>, RpcError> {
        let now = Instant::now();
        Ok(self
            .running()?
            .iter()
            .map(|r| (r.dom.uuid_string(), self.stats_of(r, now)))
            .collect())
    }

    /// Every host device libvirt's node-device driver lists, with its XML; a device
    /// gone between the listing and its XML is left out, as vdsm leaves it out.
    pub fn node_devices(&self) -> Result<Vec<(String, String)>, RpcError> {
        let client = self.client()?;
        let mut out = Vec::new();
        for name in client.list_node_devices().map_err(|e| self.failed(e))? {
            match client.node_device_xml(&name) {
                Ok(xml) => out.push((name, xml)),
                Err(e) if e.remote().is_some() && !e.is_connection_error() => {
                    tracing::debug!(device = %name, "a host device gone while listed: {e}");
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        Ok(out)
    }

    /// The service's clock for `statusTime` and events' `notify_time`:
    /// milliseconds since it started, as vdsm's monotonic clock.
    pub fn clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The domain's share of one host CPU since the last call that saw it, percent.
    fn cpu_percent(&self, r: &Running, now: Instant) -> f64 {
        let mut seen = self.cpu_seen.lock().unwrap_or_else(PoisonError::into_inner);
        let before = seen.insert(r.dom.uuid, (now, r.info.cpu_time_ns));
        match before {
            Some((at, ns)) if now > at => {
                let wall = now.duration_since(at).as_nanos() as f64;
                let used = r.info.cpu_time_ns.saturating_sub(ns) as f64;
                let vcpus = f64::from(r.info.vcpus.max(1));
                (used * 100.0 / wall / vcpus).clamp(0.0, 100.0)
            }
            _ => 0.0,
        }
    }

    fn stats_of(&self, r: &Running, now: Instant) -> Value {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        r.xml.hash(&mut hasher);
        let status = vdsm_status(r.info.state);
        json!({
            "vmId": r.dom.uuid_string(),
            "vmName": r.dom.name,
            "status": status,
            "statusTime": self.clock_ms().to_string(),
            "hash": hasher.finish().to_string(),
            "cpuUser": format!("{:.2}", self.cpu_percent(r, now)),
            "cpuSys": "0.00",
            "cpuUsage": r.info.cpu_time_ns.to_string(),
            "vcpuCount": r.info.vcpus.to_string(),
            "memUsage": "0",
            "vmType": "kvm",
            "kvmEnable": "true",
            "monitorResponse": "0",
            "pauseCode": if status == "Paused" { "EOTHER" } else { "NOERR" },
        })
    }

    /// `Host.getAllVmStats`: every running VM's statistics.
    pub fn all_stats(&self) -> Result<Value, RpcError> {
        let now = Instant::now();
        let running = self.running()?;
        // Forget the CPU time of domains no longer running.
        self.cpu_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|uuid, _| running.iter().any(|r| &r.dom.uuid == uuid));
        Ok(Value::Array(
            running.iter().map(|r| self.stats_of(r, now)).collect(),
        ))
    }

    /// `Host.getVMList`: `{vmId, status}` of each running VM (all their statistics
    /// with `fullStatus`), only those of `vmList` when it is given.
    pub fn vm_list(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let full = params
            .get("fullStatus")
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| RpcError::invalid_params("fullStatus is a boolean"))
            })
            .transpose()?
            .unwrap_or(false);
        let wanted = vm_ids(params, "vmList")?;
        let now = Instant::now();
        let list = self
            .running()?
            .iter()
            .filter(|r| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.contains(&r.dom.uuid_string()))
            })
            .map(|r| {
                if full {
                    self.stats_of(r, now)
                } else {
                    json!({"vmId": r.dom.uuid_string(), "status": vdsm_status(r.info.state)})
                }
            })
            .collect();
        Ok(Value::Array(list))
    }

    /// `Host.getVMFullList{vmList?}`: each running VM's definition as vdsm keeps
    /// it (id, name, status, memory in MiB, vCPUs, machine type, the live XML),
    /// only those of `vmList` when it is given.
    pub fn full_list(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let wanted = vm_ids(params, "vmList")?;
        let list = self
            .running()?
            .iter()
            .filter(|r| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.contains(&r.dom.uuid_string()))
            })
            .map(full_conf)
            .collect();
        Ok(Value::Array(list))
    }

    /// `VM.getStats{vmID}`: a list of the one running VM's statistics, as vdsm
    /// answers it.
    pub fn vm_stats(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let id = crate::actions::vm_id(params)?;
        let now = Instant::now();
        let running = self.running()?;
        let r = running
            .iter()
            .find(|r| r.dom.uuid_string() == id)
            .ok_or_else(|| no_such_vm(&id))?;
        Ok(Value::Array(vec![self.stats_of(r, now)]))
    }

    /// `Host.dumpxmls{vmList}`: the live XML of each VM asked for, by id.
    pub fn dump_xmls(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let wanted = vm_ids(params, "vmList")?
            .ok_or_else(|| RpcError::invalid_params("vmList, the VM ids, is required"))?;
        let running = self.running()?;
        let mut xmls = Map::new();
        for id in wanted {
            let Some(r) = running.iter().find(|r| r.dom.uuid_string() == id) else {
                return Err(no_such_vm(&id));
            };
            xmls.insert(id, json!(r.xml));
        }
        Ok(Value::Object(xmls))
    }
}

/// A running VM's definition, as `Host.getVMFullList` gives it.
fn full_conf(r: &Running) -> Value {
    let machine = roxmltree::Document::parse(&r.xml)
        .ok()
        .and_then(|doc| {
            doc.descendants()
                .find(|n| {
                    n.has_tag_name("type") && n.parent().is_some_and(|p| p.has_tag_name("os"))
                })
                .and_then(|n| n.attribute("machine").map(str::to_string))
        })
        .unwrap_or_default();
    json!({
        "vmId": r.dom.uuid_string(),
        "vmName": r.dom.name,
        "status": vdsm_status(r.info.state),
        "memSize": r.info.max_memory_kib / 1024,
        "smp": r.info.vcpus.to_string(),
        "emulatedMachine": machine,
        "vmType": "kvm",
        "kvmEnable": "true",
        "acpiEnable": "true",
        "xml": r.xml,
    })
}

/// vdsm's error for a VM it does not run.
pub fn no_such_vm(id: &str) -> RpcError {
    RpcError::new(
        code::NO_SUCH_VM,
        format!("Virtual machine does not exist: {{'vmId': '{id}'}}"),
    )
}

/// A list of VM ids under `key`; `None` when it is absent.
fn vm_ids(params: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, RpcError> {
    let Some(v) = params.get(key) else {
        return Ok(None);
    };
    let bad = || RpcError::invalid_params(format!("{key} is a list of VM ids"));
    let list = v.as_array().ok_or_else(bad)?;
    list.iter()
        .map(|i| i.as_str().map(|s| s.to_lowercase()).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvirt_states_become_vdsm_statuses() {
        assert_eq!(vdsm_status(DomainState::Running), "Up");
        assert_eq!(vdsm_status(DomainState::Paused), "Paused");
        assert_eq!(vdsm_status(DomainState::Shutoff), "Down");
        assert_eq!(vdsm_status(DomainState::Other(9)), "Unknown");
    }

    #[test]
    fn vm_id_lists_are_checked() {
        let mut p = Map::new();
        assert_eq!(vm_ids(&p, "vmList"), Ok(None));
        p.insert("vmList".into(), json!(["AB", "cd"]));
        assert_eq!(
            vm_ids(&p, "vmList"),
            Ok(Some(vec!["ab".into(), "cd".into()]))
        );
        p.insert("vmList".into(), json!("ab"));
        assert_eq!(vm_ids(&p, "vmList").unwrap_err().code, code::INVALID_PARAMS);
    }
}
