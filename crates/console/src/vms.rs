//! Virtual machines through libvirtd (its RPC protocol, spoken by [`crate::libvirt_rpc`]
//! rather than through `libvirt.so`), with each VM's sVirt labels read from its live
//! domain XML.
//!
//! The calls block, so every one runs on a blocking thread. The connection is opened on
//! first use and again after libvirtd went away, so the page recovers by itself when the
//! daemon returns.

use std::str::FromStr;
use std::sync::Mutex;

use serde::Serialize;

use crate::libvirt_rpc::{Client, DomainRef, RpcError, code};

/// How long libvirtd may take to answer one call (asking for the capabilities may
/// make it probe qemu).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A libvirt failure the console tells apart.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VirtError {
    #[error("libvirt at {uri} is not reachable: {message}")]
    Unavailable { uri: String, message: String },
    #[error("no virtual machine named {0:?}")]
    NoSuchVm(String),
    #[error("{0}")]
    Failed(String),
}

/// One sVirt label of a domain (`<seclabel>` in the live XML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecLabel {
    /// `selinux`, `apparmor`, `dac`.
    pub model: String,
    /// `dynamic`, `static` or `none`.
    pub kind: String,
    /// The process label, e.g. `system_u:system_r:svirt_t:s0:c12,c345`.
    pub label: Option<String>,
    /// The label of the VM's disk images, e.g. `…:svirt_image_t:s0:c12,c345`.
    pub image_label: Option<String>,
}

/// Parses the `<seclabel>` elements directly under `<domain>`.
pub fn parse_seclabels(xml: &str) -> Result<Vec<SecLabel>, roxmltree::Error> {
    let doc = roxmltree::Document::parse(xml)?;
    let child_text = |n: roxmltree::Node, name: &str| {
        n.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    Ok(doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("seclabel"))
        .map(|n| SecLabel {
            model: n.attribute("model").unwrap_or("").to_string(),
            kind: n.attribute("type").unwrap_or("").to_string(),
            label: child_text(n, "label"),
            image_label: child_text(n, "imagelabel"),
        })
        .collect())
}

/// A security model the hypervisor offers (`<secmodel>` in the capabilities).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecModel {
    pub model: String,
    pub doi: String,
}

/// Parses `<host><secmodel>` of libvirt's capabilities XML.
pub fn parse_secmodels(xml: &str) -> Result<Vec<SecModel>, roxmltree::Error> {
    let doc = roxmltree::Document::parse(xml)?;
    let text = |n: roxmltree::Node, name: &str| {
        n.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("secmodel"))
        .filter(|n| n.parent().is_some_and(|p| p.has_tag_name("host")))
        .map(|n| SecModel {
            model: text(n, "model"),
            doi: text(n, "doi"),
        })
        .filter(|m| !m.model.is_empty())
        .collect())
}

/// What the VM page shows of one domain.
#[derive(Debug, Clone, Serialize)]
pub struct Vm {
    pub name: String,
    pub uuid: String,
    pub state: &'static str,
    pub running: bool,
    pub vcpus: u32,
    pub memory_kib: u64,
    pub max_memory_kib: u64,
    pub autostart: bool,
    pub persistent: bool,
    pub seclabels: Vec<SecLabel>,
    /// Busy share of the VM's vCPUs since the previous look at it (none the first
    /// time, or when it is not running).
    pub cpu_percent: Option<f64>,
}

/// CPU use between two readings of a domain's CPU time, as a share of its vCPUs.
pub fn cpu_percent(
    before_ns: u64,
    after_ns: u64,
    elapsed: std::time::Duration,
    vcpus: u32,
) -> Option<f64> {
    let wall = elapsed.as_nanos() as f64 * f64::from(vcpus.max(1));
    (wall > 0.0 && after_ns >= before_ns)
        .then(|| ((after_ns - before_ns) as f64 * 100.0 / wall).min(100.0))
}

/// `virDomainState` 1 (running).
const RUNNING: u32 = 1;

fn state_name(state: u32) -> &'static str {
    match state {
        RUNNING => "running",
        2 => "blocked",
        3 => "paused",
        4 => "shutting down",
        5 => "shut off",
        6 => "crashed",
        7 => "suspended",
        _ => "unknown",
    }
}

/// What an administrator can do to a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VmAction {
    Start,
    Shutdown,
    ForceOff,
    Reboot,
}

impl VmAction {
    pub const ALL: [VmAction; 4] = [Self::Start, Self::Shutdown, Self::ForceOff, Self::Reboot];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Shutdown => "shutdown",
            Self::ForceOff => "force-off",
            Self::Reboot => "reboot",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Start => "Start",
            Self::Shutdown => "Shut down",
            Self::ForceOff => "Force off",
            Self::Reboot => "Reboot",
        }
    }
}

impl FromStr for VmAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown action {s:?} (start, shutdown, force-off, reboot)"))
    }
}

/// A lazily opened, self-healing libvirt connection.
#[derive(Debug)]
pub struct Libvirt {
    uri: String,
    conn: Mutex<Option<Client>>,
    /// The security models of the current connection: asking libvirtd for its
    /// capabilities can take seconds (it may probe qemu), and they do not change
    /// while it runs.
    models: Mutex<Option<Vec<SecModel>>>,
    /// The last CPU time seen per domain UUID, for [`Vm::cpu_percent`].
    cpu_seen: Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

impl Libvirt {
    pub fn new(uri: &str) -> Self {
        Self {
            uri: uri.to_string(),
            conn: Mutex::new(None),
            models: Mutex::new(None),
            cpu_seen: Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn unavailable(&self, message: String) -> VirtError {
        VirtError::Unavailable {
            uri: self.uri.clone(),
            message,
        }
    }

    /// Runs `f` on the connection, opening it first if needed; a connection-level
    /// failure closes it so that the next call reconnects.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, VirtError>,
    ) -> Result<T, VirtError> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| VirtError::Failed("libvirt connection lock poisoned".into()))?;
        if let Some(conn) = guard.as_mut() {
            if !conn.is_alive() {
                *guard = None;
            }
        }
        if guard.is_none() {
            if self.uri.contains('\0') {
                return Err(self.unavailable("the URI contains a NUL byte".into()));
            }
            let conn =
                Client::open(&self.uri, CALL_TIMEOUT).map_err(|e| self.unavailable(e.message))?;
            tracing::info!(uri = %self.uri, "connected to libvirt");
            if let Ok(mut m) = self.models.lock() {
                *m = None;
            }
            *guard = Some(conn);
        }
        let conn = guard
            .as_mut()
            .ok_or_else(|| self.unavailable("not connected".into()))?;
        let result = f(conn);
        if let Err(VirtError::Unavailable { .. }) = &result {
            // A broken connection is dropped without a goodbye.
            *guard = None;
        }
        result
    }

    fn classify(&self, e: RpcError, name: &str) -> VirtError {
        if e.code == code::NO_DOMAIN {
            VirtError::NoSuchVm(name.to_string())
        } else if e.is_connection_error() {
            self.unavailable(e.message)
        } else {
            VirtError::Failed(e.message)
        }
    }

    fn describe(&self, conn: &mut Client, dom: &DomainRef) -> Result<Vm, VirtError> {
        let name = dom.name.clone();
        let err = |e| self.classify(e, &name);
        let info = conn.info(dom).map_err(err)?;
        let xml = conn.xml_desc(dom, 0).map_err(err)?;
        let seclabels = parse_seclabels(&xml)
            .map_err(|e| VirtError::Failed(format!("domain XML of {name}: {e}")))?;
        let uuid = dom.uuid_string();
        let running = info.state == RUNNING;
        let now = std::time::Instant::now();
        let cpu_percent = self.cpu_seen.lock().ok().and_then(|mut seen| {
            let before = seen.insert(uuid.clone(), (now, info.cpu_time));
            let (then, ns) = before?;
            running
                .then(|| {
                    cpu_percent(
                        ns,
                        info.cpu_time,
                        now.duration_since(then),
                        info.nr_virt_cpu,
                    )
                })
                .flatten()
        });
        Ok(Vm {
            uuid,
            cpu_percent,
            state: state_name(info.state),
            running,
            vcpus: info.nr_virt_cpu,
            memory_kib: info.memory,
            max_memory_kib: info.max_mem,
            autostart: conn.autostart(dom).unwrap_or(false),
            persistent: conn.is_persistent(dom).unwrap_or(false),
            seclabels,
            name,
        })
    }

    /// All domains, running or defined, sorted by name.
    pub fn list(&self) -> Result<Vec<Vm>, VirtError> {
        self.with_conn(|conn| {
            let doms = conn.list_all_domains().map_err(|e| self.classify(e, ""))?;
            let mut vms = doms
                .iter()
                .map(|d| self.describe(conn, d))
                .collect::<Result<Vec<_>, _>>()?;
            vms.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(vms)
        })
    }

    /// One domain by name.
    pub fn get(&self, name: &str) -> Result<Vm, VirtError> {
        check_name(name)?;
        self.with_conn(|conn| {
            let dom = conn
                .lookup_by_name(name)
                .map_err(|e| self.classify(e, name))?;
            self.describe(conn, &dom)
        })
    }

    /// Starts, shuts down, forces off or reboots a domain; returns its new state.
    pub fn act(&self, name: &str, action: VmAction) -> Result<Vm, VirtError> {
        check_name(name)?;
        self.with_conn(|conn| {
            let dom = conn
                .lookup_by_name(name)
                .map_err(|e| self.classify(e, name))?;
            let err = |e| self.classify(e, name);
            match action {
                VmAction::Start => conn.create(&dom).map_err(err)?,
                VmAction::Shutdown => conn.shutdown(&dom).map_err(err)?,
                VmAction::ForceOff => conn.destroy(&dom).map_err(err)?,
                VmAction::Reboot => conn.reboot(&dom, 0).map_err(err)?,
            }
            tracing::info!(
                vm = name,
                action = action.as_str(),
                "virtual machine action"
            );
            self.describe(conn, &dom)
        })
    }

    /// The security models libvirt offers (`selinux`, `dac`).
    pub fn security_models(&self) -> Result<Vec<SecModel>, VirtError> {
        self.with_conn(|conn| {
            if let Some(m) = self.models.lock().ok().and_then(|m| m.clone()) {
                return Ok(m);
            }
            let caps = conn.capabilities().map_err(|e| self.classify(e, ""))?;
            let models = parse_secmodels(&caps)
                .map_err(|e| VirtError::Failed(format!("capabilities XML: {e}")))?;
            if let Ok(mut m) = self.models.lock() {
                *m = Some(models.clone());
            }
            Ok(models)
        })
    }
}

/// The `virt` crate panics on names with a NUL byte; no domain can have one.
fn check_name(name: &str) -> Result<(), VirtError> {
    if name.contains('\0') {
        Err(VirtError::NoSuchVm(name.to_string()))
    } else {
        Ok(())
    }
}

impl Drop for Libvirt {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.conn.lock() {
            if let Some(conn) = guard.take() {
                conn.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVIRT_DOMAIN: &str = r#"<domain type='kvm' id='3'>
  <name>tiny</name>
  <devices><disk type='file'><seclabel model='dac' relabel='no'/></disk></devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'>
    <label>system_u:system_r:svirt_t:s0:c112,c877</label>
    <imagelabel>system_u:object_r:svirt_image_t:s0:c112,c877</imagelabel>
  </seclabel>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+64055</label>
    <imagelabel>+64055:+64055</imagelabel>
  </seclabel>
</domain>"#;

    #[test]
    fn seclabels_of_a_running_svirt_guest() {
        let labels = parse_seclabels(SVIRT_DOMAIN).unwrap();
        assert_eq!(
            labels.len(),
            2,
            "the disk's own seclabel is not the domain's"
        );
        assert_eq!(labels[0].model, "selinux");
        assert_eq!(labels[0].kind, "dynamic");
        assert_eq!(
            labels[0].label.as_deref(),
            Some("system_u:system_r:svirt_t:s0:c112,c877")
        );
        assert_eq!(
            labels[0].image_label.as_deref(),
            Some("system_u:object_r:svirt_image_t:s0:c112,c877")
        );
        assert_eq!(labels[1].model, "dac");
    }

    #[test]
    fn no_seclabel_and_broken_xml() {
        assert!(
            parse_seclabels("<domain><name>x</name></domain>")
                .unwrap()
                .is_empty()
        );
        let none =
            parse_seclabels("<domain><seclabel type='none' model='none'/></domain>").unwrap();
        assert_eq!(none[0].kind, "none");
        assert_eq!(none[0].label, None);
        assert!(parse_seclabels("<domain>").is_err());
    }

    #[test]
    fn secmodels_from_capabilities() {
        let caps = "<capabilities><host><uuid>x</uuid>\
            <secmodel><model>selinux</model><doi>0</doi></secmodel>\
            <secmodel><model>dac</model><doi>0</doi></secmodel></host>\
            <guest><secmodel><model>ignored</model></secmodel></guest></capabilities>";
        let m = parse_secmodels(caps).unwrap();
        let names: Vec<_> = m.iter().map(|m| m.model.as_str()).collect();
        assert_eq!(names, ["selinux", "dac"]);
    }

    #[test]
    fn cpu_share_of_the_vcpus() {
        let sec = std::time::Duration::from_secs(1);
        assert_eq!(cpu_percent(0, 500_000_000, sec, 1), Some(50.0));
        assert_eq!(cpu_percent(0, 500_000_000, sec, 2), Some(25.0));
        assert_eq!(cpu_percent(0, 5_000_000_000, sec, 1), Some(100.0), "capped");
        assert_eq!(cpu_percent(10, 5, sec, 1), None, "restarted guest");
        assert_eq!(cpu_percent(0, 1, std::time::Duration::ZERO, 1), None);
    }

    #[test]
    fn actions_parse_and_print() {
        for a in VmAction::ALL {
            assert_eq!(a.as_str().parse::<VmAction>(), Ok(a));
        }
        assert!("explode".parse::<VmAction>().is_err());
    }
}
