//! Virtual machines through libvirtd (its RPC protocol, spoken by the `hvnode-libvirt`
//! crate rather than through `libvirt.so`), with each VM's sVirt labels read from its
//! live domain XML.
//!
//! The calls block, so every one runs on a blocking thread. The connection is opened on
//! first use and again after libvirtd went away, so the page recovers by itself when the
//! daemon returns. It is shared by the requests: the client locks it per call, so a
//! listing of many VMs does not hold up another request's calls for its whole length.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use hvnode_libvirt::{Client, Domain, DomainInfo, DomainState, Options};
use serde::Serialize;

/// How long libvirtd may take to answer one call, from sending it to the last byte of
/// the answer (asking for the capabilities may make it probe qemu).
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

pub use hvnode_libvirt::SecModel;

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
    /// What may be done to it in its state ([`VmAction::for_state`]): the page
    /// offers these and no others.
    pub actions: Vec<VmAction>,
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

/// The page's name of a domain state.
fn state_name(state: DomainState) -> &'static str {
    match state {
        DomainState::Running => "running",
        DomainState::Blocked => "blocked",
        DomainState::Paused => "paused",
        DomainState::ShuttingDown => "shutting down",
        DomainState::Shutoff => "shut off",
        DomainState::Crashed => "crashed",
        DomainState::PmSuspended => "suspended",
        DomainState::NoState | DomainState::Other(_) => "unknown",
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
    Pause,
    Resume,
}

impl VmAction {
    pub const ALL: [VmAction; 6] = [
        Self::Start,
        Self::Shutdown,
        Self::ForceOff,
        Self::Reboot,
        Self::Pause,
        Self::Resume,
    ];

    /// The actions that apply to a domain in `state`: start a stopped one; shut
    /// down, reboot, pause or force off a running one; resume or force off a
    /// paused one; force off one that is shutting down or suspended to memory.
    pub fn for_state(state: DomainState) -> Vec<VmAction> {
        match state {
            DomainState::Shutoff | DomainState::Crashed => vec![Self::Start],
            DomainState::Running | DomainState::Blocked => {
                vec![Self::Shutdown, Self::Reboot, Self::Pause, Self::ForceOff]
            }
            DomainState::Paused => vec![Self::Resume, Self::ForceOff],
            DomainState::ShuttingDown | DomainState::PmSuspended => vec![Self::ForceOff],
            DomainState::NoState | DomainState::Other(_) => vec![Self::ForceOff],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Shutdown => "shutdown",
            Self::ForceOff => "force-off",
            Self::Reboot => "reboot",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Start => "Start",
            Self::Shutdown => "Shut down",
            Self::ForceOff => "Force off",
            Self::Reboot => "Reboot",
            Self::Pause => "Pause",
            Self::Resume => "Resume",
        }
    }
}

impl FromStr for VmAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unknown action {s:?} (start, shutdown, force-off, reboot, pause, resume)")
            })
    }
}

/// A lazily opened, self-healing libvirt connection.
#[derive(Debug)]
pub struct Libvirt {
    uri: String,
    /// Whether connections are read-only ([`Libvirt::read_only`]).
    read_only: bool,
    /// The current connection, shared by the requests using it; held only to take or
    /// replace it, never during a call.
    conn: Mutex<Option<Arc<Client>>>,
    /// The security models of the current connection: asking libvirtd for its
    /// capabilities can take seconds (it may probe qemu), and they do not change
    /// while it runs.
    models: Mutex<Option<Vec<SecModel>>>,
    /// The last CPU time seen per domain UUID, for [`Vm::cpu_percent`].
    cpu_seen: Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

/// What libvirt says of one domain, before it becomes a [`Vm`].
#[derive(Debug)]
struct Facts {
    dom: Domain,
    info: DomainInfo,
    xml: String,
    autostart: bool,
    persistent: bool,
}

/// All of a domain's facts, one call each.
fn facts(conn: &Client, dom: &Domain) -> Result<Facts, hvnode_libvirt::Error> {
    Ok(Facts {
        info: conn.domain_info(dom)?,
        xml: conn.domain_xml(dom, 0)?,
        autostart: conn.domain_autostart(dom)?,
        persistent: conn.domain_is_persistent(dom)?,
        dom: dom.clone(),
    })
}

impl Libvirt {
    pub fn new(uri: &str) -> Self {
        Self {
            uri: uri.to_string(),
            read_only: false,
            conn: Mutex::new(None),
            models: Mutex::new(None),
            cpu_seen: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// A connection that reads and changes nothing (libvirtd's read-only socket):
    /// the web process's, when the privileged helper makes the changes.
    pub fn read_only(uri: &str) -> Self {
        let mut libvirt = Self::new(uri);
        libvirt.read_only = true;
        libvirt
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

    /// The connection, opened first if there is none or the last one failed.
    fn client(&self) -> Result<Arc<Client>, VirtError> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| VirtError::Failed("libvirt connection lock poisoned".into()))?;
        if let Some(conn) = guard.as_ref() {
            match conn.check_alive() {
                Ok(()) => return Ok(conn.clone()),
                Err(e) => {
                    tracing::info!(
                        uri = %self.uri,
                        error = %e,
                        "libvirt connection lost; reconnecting"
                    );
                    *guard = None;
                }
            }
        }
        let options = Options {
            call_timeout: CALL_TIMEOUT,
            read_only: self.read_only,
        };
        let conn = Arc::new(
            Client::connect_with(&self.uri, options)
                .map_err(|e| self.unavailable(e.to_string()))?,
        );
        tracing::info!(uri = %self.uri, "connected to libvirt");
        if let Ok(mut m) = self.models.lock() {
            *m = None;
        }
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `f` on the connection, opening it first if needed; a connection-level
    /// failure drops it so that the next call reconnects.
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&Client) -> Result<T, VirtError>,
    ) -> Result<T, VirtError> {
        let conn = self.client()?;
        let result = f(&conn);
        if let Err(VirtError::Unavailable { .. }) = &result {
            // A broken connection is dropped without a goodbye, unless another
            // request already replaced it.
            if let Ok(mut guard) = self.conn.lock() {
                if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                    *guard = None;
                }
            }
        }
        result
    }

    pub(crate) fn classify(&self, e: hvnode_libvirt::Error, name: &str) -> VirtError {
        if e.is_no_domain() {
            VirtError::NoSuchVm(name.to_string())
        } else if e.is_connection_error() {
            self.unavailable(e.to_string())
        } else {
            VirtError::Failed(e.to_string())
        }
    }

    /// One domain's page entry from its facts.
    fn describe(&self, f: Facts) -> Result<Vm, VirtError> {
        let uuid = f.dom.uuid_string();
        let name = f.dom.name;
        let seclabels = parse_seclabels(&f.xml)
            .map_err(|e| VirtError::Failed(format!("domain XML of {name}: {e}")))?;
        let info = f.info;
        let running = info.state == DomainState::Running;
        let now = std::time::Instant::now();
        let cpu_percent = self.cpu_seen.lock().ok().and_then(|mut seen| {
            let before = seen.insert(uuid.clone(), (now, info.cpu_time_ns));
            let (then, ns) = before?;
            running
                .then(|| cpu_percent(ns, info.cpu_time_ns, now.duration_since(then), info.vcpus))
                .flatten()
        });
        Ok(Vm {
            uuid,
            cpu_percent,
            state: state_name(info.state),
            actions: VmAction::for_state(info.state),
            running,
            vcpus: info.vcpus,
            memory_kib: info.memory_kib,
            max_memory_kib: info.max_memory_kib,
            autostart: f.autostart,
            persistent: f.persistent,
            seclabels,
            name,
        })
    }

    /// All domains, running or defined, sorted by name. A domain that disappears
    /// while the list is made (undefined, or a transient one stopped) is left out.
    pub fn list(&self) -> Result<Vec<Vm>, VirtError> {
        self.with_conn(|conn| {
            let all = conn
                .for_each_domain(facts)
                .map_err(|e| self.classify(e, ""))?;
            let mut vms = all
                .into_iter()
                .map(|f| self.describe(f))
                .collect::<Result<Vec<_>, _>>()?;
            vms.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(vms)
        })
    }

    /// One domain by name.
    pub fn get(&self, name: &str) -> Result<Vm, VirtError> {
        check_name(name)?;
        self.with_conn(|conn| {
            let err = |e| self.classify(e, name);
            let dom = conn.lookup_domain(name).map_err(err)?;
            self.describe(facts(conn, &dom).map_err(err)?)
        })
    }

    /// One domain by name, with `more` run on the same connection with the domain
    /// and its live XML (the VM page's further reads: disk sizes, snapshots).
    pub fn inspect<T>(
        &self,
        name: &str,
        more: impl FnOnce(&Client, &Domain, &str) -> Result<T, VirtError>,
    ) -> Result<(Vm, T), VirtError> {
        check_name(name)?;
        self.with_conn(|conn| {
            let err = |e| self.classify(e, name);
            let dom = conn.lookup_domain(name).map_err(err)?;
            let f = facts(conn, &dom).map_err(err)?;
            let xml = f.xml.clone();
            let vm = self.describe(f)?;
            Ok((vm, more(conn, &dom, &xml)?))
        })
    }

    /// Starts, shuts down, forces off or reboots a domain; returns its new state.
    pub fn act(&self, name: &str, action: VmAction) -> Result<Vm, VirtError> {
        check_name(name)?;
        self.act_on(name, |conn| conn.lookup_domain(name), action)
    }

    /// [`Libvirt::act`] on the domain with libvirt UUID `uuid` (the engine names
    /// VMs by it).
    pub fn act_by_uuid(&self, uuid: &[u8; 16], action: VmAction) -> Result<Vm, VirtError> {
        let id = uuid::Uuid::from_bytes(*uuid).to_string();
        self.act_on(&id, |conn| conn.lookup_domain_by_uuid(uuid), action)
    }

    fn act_on(
        &self,
        name: &str,
        lookup: impl FnOnce(&Client) -> Result<Domain, hvnode_libvirt::Error>,
        action: VmAction,
    ) -> Result<Vm, VirtError> {
        self.with_conn(|conn| {
            let err = |e| self.classify(e, name);
            let dom = lookup(conn).map_err(err)?;
            match action {
                VmAction::Start => conn.start_domain(&dom),
                VmAction::Shutdown => conn.shutdown_domain(&dom),
                VmAction::ForceOff => conn.destroy_domain(&dom),
                VmAction::Reboot => conn.reboot_domain(&dom, 0),
                VmAction::Pause => conn.suspend_domain(&dom),
                VmAction::Resume => conn.resume_domain(&dom),
            }
            .map_err(|e| {
                if action == VmAction::Start && !e.is_no_domain() && !e.is_connection_error() {
                    VirtError::Failed(start_failure(&dom.name, &e))
                } else {
                    err(e)
                }
            })?;
            tracing::info!(
                vm = dom.name,
                action = action.as_str(),
                "virtual machine action"
            );
            self.describe(facts(conn, &dom).map_err(err)?)
        })
    }

    /// The CPU models libvirt finds usable for x86_64 guests here: KVM's when
    /// `/dev/kvm` is there, emulation's (TCG) otherwise.
    pub fn usable_cpu_models(&self) -> Result<Vec<String>, VirtError> {
        let virttype = if std::path::Path::new("/dev/kvm").exists() {
            "kvm"
        } else {
            "qemu"
        };
        self.with_conn(|conn| {
            let xml = conn
                .domain_capabilities(None, Some("x86_64"), None, Some(virttype))
                .map_err(|e| self.classify(e, ""))?;
            hvnode_libvirt::caps::usable_cpu_models(&xml)
                .map_err(|e| VirtError::Failed(format!("domain capabilities XML: {e}")))
        })
    }

    /// The security models libvirt offers (`selinux`, `dac`).
    pub fn security_models(&self) -> Result<Vec<SecModel>, VirtError> {
        self.with_conn(|conn| {
            if let Some(m) = self.models.lock().ok().and_then(|m| m.clone()) {
                return Ok(m);
            }
            let caps = conn.capabilities().map_err(|e| self.classify(e, ""))?;
            let models = hvnode_libvirt::caps::security_models(&caps)
                .map_err(|e| VirtError::Failed(format!("capabilities XML: {e}")))?;
            if let Ok(mut m) = self.models.lock() {
                *m = Some(models.clone());
            }
            Ok(models)
        })
    }
}

/// Why VM `name` did not start, in words that name what failed and what to do:
/// libvirt refuses a start for the VM's own reasons (a disk that is not there, a
/// network that is not running), not because it is unreachable, and its own
/// message is kept in the text.
pub fn start_failure(name: &str, e: &hvnode_libvirt::Error) -> String {
    let Some(remote) = e.remote() else {
        return format!("VM {name} could not start: {e}");
    };
    let words = remote.message.as_str();
    let quoted = |after: &str| {
        let rest = &words[words.find(after)? + after.len()..];
        rest.split_once('\'').map(|(q, _)| q.to_string())
    };
    let what = if let Some(path) = quoted("Cannot access storage file '") {
        if words.contains("No such file or directory") {
            format!(
                "disk {path} does not exist ({words}): restore the file or remove the disk \
                 from the VM"
            )
        } else if words.contains("Permission denied") {
            format!(
                "disk {path} cannot be opened by qemu ({words}): give it the owner and \
                 SELinux label libvirt expects (keep disks in a storage pool, or run \
                 restorecon on the file), or remove the disk from the VM"
            )
        } else {
            format!(
                "disk {path} cannot be used ({words}): check the file, or remove the disk from the VM"
            )
        }
    } else if let Some(net) = quoted("network '").filter(|_| words.contains("is not active")) {
        format!(
            "its network {net} is not running ({words}): start it on the Pools and networks \
             page, or plug the VM into another network"
        )
    } else if remote.code == hvnode_libvirt::code::OPERATION_INVALID {
        format!("{words}: look at the VM's state first")
    } else {
        format!(
            "{words}: see the VM's log (/var/log/libvirt/qemu/{name}.log) and libvirtd's \
             (journalctl -u libvirtd)"
        )
    };
    format!("VM {name} could not start: {what}")
}

/// No domain can have a NUL byte in its name: such a name is a VM that does not exist.
fn check_name(name: &str) -> Result<(), VirtError> {
    if name.contains('\0') {
        Err(VirtError::NoSuchVm(name.to_string()))
    } else {
        Ok(())
    }
}

impl Drop for Libvirt {
    fn drop(&mut self) {
        let conn = self.conn.get_mut().ok().and_then(Option::take);
        // Closed politely if no request still uses it; otherwise the last user's
        // drop closes the socket.
        if let Some(Ok(conn)) = conn.map(Arc::try_unwrap) {
            if let Err(e) = conn.close() {
                tracing::debug!(uri = %self.uri, error = %e, "closing the libvirt connection");
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
    fn cpu_share_of_the_vcpus() {
        let sec = std::time::Duration::from_secs(1);
        assert_eq!(cpu_percent(0, 500_000_000, sec, 1), Some(50.0));
        assert_eq!(cpu_percent(0, 500_000_000, sec, 2), Some(25.0));
        assert_eq!(cpu_percent(0, 5_000_000_000, sec, 1), Some(100.0), "capped");
        assert_eq!(cpu_percent(10, 5, sec, 1), None, "restarted guest");
        assert_eq!(cpu_percent(0, 1, std::time::Duration::ZERO, 1), None);
    }

    fn refusal(code: i32, message: &str) -> hvnode_libvirt::Error {
        hvnode_libvirt::RemoteError {
            procedure: "virDomainCreate",
            code,
            domain: 10,
            message: message.into(),
        }
        .into()
    }

    #[test]
    fn a_start_refusal_names_what_failed_and_what_to_do() {
        let missing = "Cannot access storage file '/var/lib/libvirt/images/gone.qcow2' (as \
                       uid:64055, gid:64055): No such file or directory";
        let m = start_failure("web1", &refusal(38, missing));
        assert_eq!(
            m,
            format!(
                "VM web1 could not start: disk /var/lib/libvirt/images/gone.qcow2 does not \
                 exist ({missing}): restore the file or remove the disk from the VM"
            )
        );
        assert!(!m.contains("not reachable"));
        let m = start_failure(
            "web1",
            &refusal(
                38,
                "Cannot access storage file '/srv/a.img': Permission denied",
            ),
        );
        assert!(
            m.contains("disk /srv/a.img cannot be opened by qemu"),
            "{m}"
        );
        let m = start_failure(
            "web1",
            &refusal(
                55,
                "Requested operation is not valid: network 'lan' is not active",
            ),
        );
        assert!(m.contains("its network lan is not running"), "{m}");
        let m = start_failure(
            "web1",
            &refusal(
                55,
                "Requested operation is not valid: domain is already running",
            ),
        );
        assert!(
            m.ends_with("already running: look at the VM's state first"),
            "{m}"
        );
        let m = start_failure(
            "web1",
            &refusal(1, "internal error: qemu unexpectedly closed"),
        );
        assert!(m.contains("/var/log/libvirt/qemu/web1.log"), "{m}");
    }

    #[test]
    fn actions_parse_and_print() {
        for a in VmAction::ALL {
            assert_eq!(a.as_str().parse::<VmAction>(), Ok(a));
        }
        assert!("explode".parse::<VmAction>().is_err());
    }
}
