//! What the console creates, changes and removes through libvirt: VMs (a new qcow2
//! volume for the disk, an optional installation medium), their vCPUs, memory and
//! autostart, their snapshots, directory storage pools, and the start and stop of
//! pools and virtual networks. Each runs where [`crate::privileged::make_here`]
//! runs (the privileged helper, on libvirt's read-write socket), with every name
//! and number checked first, and undoes its own first steps when a later one
//! fails. The listings of pools and networks are reads, on the web process's
//! read-only connection.

pub mod xml;

use helper::{Failure, FailureKind, VmEdit, VmSpec};
use hvnode_libvirt::{
    AFFECT_CONFIG, AFFECT_LIVE, Client, Domain, DomainState, Error as LvError, MAXIMUM,
    StoragePool, UNDEFINE_NVRAM, UNDEFINE_SNAPSHOTS_METADATA, code,
};
use serde::Serialize;

use crate::vms::{Libvirt, VirtError};
use xml::{DomainSpec, Firmware, Nic};

/// The most vCPUs and memory the console gives a VM (libvirt and the host check
/// again against what they have).
pub const MAX_VCPUS: u32 = 512;
pub const MIN_MEMORY_MIB: u64 = 64;
pub const MAX_MEMORY_MIB: u64 = 16 * 1024 * 1024;
pub const MAX_DISK_GIB: u64 = 64 * 1024;

/// A name the console gives libvirt (VM, snapshot, pool): 1 to 64 letters,
/// digits, `.`, `_` and `-`, not starting with `.` or `-`.
pub fn check_name(what: &str, name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} {name:?} is not a valid name: use 1 to 64 letters, digits, '.', '_' and '-', \
             not starting with '.' or '-'"
        )))
    }
}

fn invalid(message: String) -> Failure {
    Failure::new(FailureKind::Invalid, message)
}

/// The numbers of a new VM, checked before anything is made.
pub fn check_spec(spec: &VmSpec) -> Result<Firmware, Failure> {
    check_name("VM name", &spec.name)?;
    check_name("storage pool", &spec.pool)?;
    if !(1..=MAX_VCPUS).contains(&spec.vcpus) {
        return Err(invalid(format!(
            "vcpus {} is out of range: give 1 to {MAX_VCPUS}",
            spec.vcpus
        )));
    }
    check_memory(spec.memory_mib)?;
    if !(1..=MAX_DISK_GIB).contains(&spec.disk_gib) {
        return Err(invalid(format!(
            "disk_gib {} is out of range: give 1 to {MAX_DISK_GIB}",
            spec.disk_gib
        )));
    }
    if spec.network.is_empty() || spec.network.contains(['/', '\0']) || spec.network.len() > 64 {
        return Err(invalid(format!(
            "network {:?} is not the name of a virtual network or bridge",
            spec.network
        )));
    }
    if let Some(iso) = &spec.iso {
        if iso.contains('\0') || iso.split('/').any(|c| c == "..") || iso.is_empty() {
            return Err(invalid(format!(
                "iso {iso:?} is neither an absolute path nor POOL/VOLUME"
            )));
        }
    }
    spec.firmware.parse().map_err(invalid)
}

fn check_memory(mib: u64) -> Result<(), Failure> {
    if (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&mib) {
        Ok(())
    } else {
        Err(invalid(format!(
            "memory_mib {mib} is out of range: give {MIN_MEMORY_MIB} to {MAX_MEMORY_MIB}"
        )))
    }
}

/// A libvirt refusal as a failure that says what was being done and libvirt's own
/// words (not the daemon's address: the admin needs to know which disk is missing,
/// not that libvirt answered).
pub fn lv_failure(doing: &str, e: &LvError) -> Failure {
    let kind = if e.is_not_found() {
        FailureKind::NotFound
    } else if e.is_connection_error() {
        FailureKind::Unavailable
    } else if e.remote_code() == Some(code::OPERATION_INVALID) {
        FailureKind::Conflict
    } else {
        FailureKind::Failed
    };
    let words = e
        .remote()
        .map(|r| r.message.clone())
        .unwrap_or_else(|| e.to_string());
    Failure::new(kind, format!("{doing}: {words}"))
}

fn virt_failure(e: VirtError) -> Failure {
    let kind = match e {
        VirtError::NoSuchVm(_) => FailureKind::NotFound,
        VirtError::Unavailable { .. } => FailureKind::Unavailable,
        VirtError::Failed(_) => FailureKind::Failed,
    };
    Failure::new(kind, e.to_string())
}

/// Runs `f` on libvirt's connection; failures are already [`Failure`]s.
fn on_conn<T>(
    libvirt: &Libvirt,
    f: impl FnOnce(&Client) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut out = None;
    let r = libvirt.with_conn(|conn| {
        out = Some(f(conn));
        Ok(())
    });
    r.map_err(virt_failure)?;
    out.unwrap_or_else(|| Err(Failure::new(FailureKind::Failed, "no answer from libvirt")))
}

fn lookup_vm(conn: &Client, name: &str) -> Result<Domain, Failure> {
    conn.lookup_domain(name).map_err(|e| {
        if e.is_no_domain() {
            Failure::new(FailureKind::NotFound, format!("no VM named {name:?}"))
        } else {
            lv_failure(&format!("looking up VM {name:?}"), &e)
        }
    })
}

/// `kvm` when the host's capabilities offer it for x86_64 guests, else `qemu`.
fn virt_type(conn: &Client) -> Result<&'static str, Failure> {
    let caps = conn
        .capabilities()
        .map_err(|e| lv_failure("reading the host's capabilities", &e))?;
    Ok(if caps.contains("<domain type='kvm'") {
        "kvm"
    } else {
        "qemu"
    })
}

/// The pool of `name`, which must be running to hold a new volume.
fn running_pool(conn: &Client, name: &str) -> Result<StoragePool, Failure> {
    let pool = conn.lookup_pool(name).map_err(|e| {
        if e.is_not_found() {
            Failure::new(
                FailureKind::NotFound,
                format!("no storage pool named {name:?}: create it on the Storage pools page"),
            )
        } else {
            lv_failure(&format!("looking up storage pool {name:?}"), &e)
        }
    })?;
    let info = conn
        .pool_info(&pool)
        .map_err(|e| lv_failure(&format!("reading storage pool {name:?}"), &e))?;
    if info.state != hvnode_libvirt::PoolState::Running {
        return Err(Failure::new(
            FailureKind::Conflict,
            format!(
                "storage pool {name:?} is {}: start it first",
                info.state.as_str()
            ),
        ));
    }
    Ok(pool)
}

/// The path of the installation medium: a path that exists, or `POOL/VOLUME`.
fn medium_path(conn: &Client, iso: &str) -> Result<String, Failure> {
    if iso.starts_with('/') {
        return match std::fs::metadata(iso) {
            Ok(m) if m.is_file() => Ok(iso.to_string()),
            Ok(_) => Err(invalid(format!("iso {iso} is not a file"))),
            Err(e) => Err(Failure::new(
                FailureKind::NotFound,
                format!("iso {iso} cannot be read ({e}): give the path of an ISO on the node"),
            )),
        };
    }
    let Some((pool, vol)) = iso.split_once('/') else {
        return Err(invalid(format!(
            "iso {iso:?} is neither an absolute path nor POOL/VOLUME"
        )));
    };
    let pool = running_pool(conn, pool)?;
    let vols = conn
        .list_volumes(&pool)
        .map_err(|e| lv_failure(&format!("listing the volumes of pool {:?}", pool.name), &e))?;
    let vol = vols.into_iter().find(|v| v.name == vol).ok_or_else(|| {
        Failure::new(
            FailureKind::NotFound,
            format!("storage pool {:?} has no volume {vol:?}", pool.name),
        )
    })?;
    conn.volume_path(&vol)
        .map_err(|e| lv_failure(&format!("reading the path of volume {:?}", vol.name), &e))
}

/// A libvirt network of that name, else a bridge of the host.
fn nic(conn: &Client, network: &str) -> Result<Nic, Failure> {
    match conn.lookup_network(network) {
        Ok(_) => Ok(Nic::Network(network.to_string())),
        Err(e) if e.is_not_found() => {
            if std::path::Path::new("/sys/class/net")
                .join(network)
                .join("bridge")
                .is_dir()
            {
                Ok(Nic::Bridge(network.to_string()))
            } else {
                Err(Failure::new(
                    FailureKind::NotFound,
                    format!("no virtual network or bridge named {network:?}"),
                ))
            }
        }
        Err(e) => Err(lv_failure(&format!("looking up network {network:?}"), &e)),
    }
}

/// Makes a new VM: checks, a new volume for its disk, its definition (the volume
/// deleted again if that fails), and a start if asked.
pub fn create(libvirt: &Libvirt, spec: &VmSpec) -> Result<(), Failure> {
    let firmware = check_spec(spec)?;
    on_conn(libvirt, |conn| {
        match conn.lookup_domain(&spec.name) {
            Ok(_) => {
                return Err(Failure::new(
                    FailureKind::Conflict,
                    format!("a VM named {:?} exists: choose another name", spec.name),
                ));
            }
            Err(e) if e.is_no_domain() => {}
            Err(e) => return Err(lv_failure("looking for a VM of that name", &e)),
        }
        let pool = running_pool(conn, &spec.pool)?;
        let nic = nic(conn, &spec.network)?;
        let iso = spec
            .iso
            .as_deref()
            .map(|i| medium_path(conn, i))
            .transpose()?;
        let virt_type = virt_type(conn)?;
        let vol_name = format!("{}.qcow2", spec.name);
        let vol = conn
            .create_volume(&pool, &xml::volume(&vol_name, spec.disk_gib), 0)
            .map_err(|e| {
                lv_failure(
                    &format!("creating disk {vol_name} in pool {:?}", pool.name),
                    &e,
                )
            })?;
        let defined = conn
            .volume_path(&vol)
            .map_err(|e| lv_failure(&format!("reading the path of {vol_name}"), &e))
            .and_then(|disk| {
                let xml = xml::domain(&DomainSpec {
                    name: &spec.name,
                    virt_type,
                    vcpus: spec.vcpus,
                    memory_mib: spec.memory_mib,
                    firmware,
                    disk: &disk,
                    iso: iso.as_deref(),
                    nic,
                });
                conn.define_domain(&xml)
                    .map_err(|e| lv_failure(&format!("defining VM {:?}", spec.name), &e))
            });
        match defined {
            Ok(dom) => {
                if spec.start {
                    conn.start_domain(&dom).map_err(|e| {
                        let mut f = lv_failure("starting the new VM", &e);
                        if f.kind != FailureKind::Unavailable {
                            f.message = format!(
                                "{} (the VM is defined: start it again once that is fixed)",
                                crate::vms::start_failure(&spec.name, &e)
                            );
                        }
                        f
                    })?;
                }
                Ok(())
            }
            Err(f) => {
                if let Err(e) = conn.delete_volume(&vol) {
                    tracing::warn!(volume = %vol.key, error = %e, "could not delete the new VM's volume");
                }
                Err(f)
            }
        }
    })
}

/// The definition's maximum vCPUs and memory (KiB): `<vcpu>` and `<memory>` of the
/// inactive XML.
fn config_maxima(conn: &Client, dom: &Domain) -> Result<(u32, u64), Failure> {
    let inactive = conn
        .domain_xml(dom, 2)
        .map_err(|e| lv_failure(&format!("reading the definition of {:?}", dom.name), &e))?;
    let doc = roxmltree::Document::parse(&inactive)
        .map_err(|e| Failure::new(FailureKind::Failed, format!("domain XML: {e}")))?;
    let number = |tag: &str| {
        doc.root_element()
            .children()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.text())
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    let vcpus = number("vcpu").unwrap_or(1);
    let memory = number("memory").unwrap_or(0);
    Ok((u32::try_from(vcpus).unwrap_or(u32::MAX), memory))
}

/// Changes a VM's vCPUs, memory and autostart: the definition always, the running
/// VM where libvirt can (a vCPU or memory hot-plug the guest refuses is left for
/// its next start, and logged).
pub fn edit(libvirt: &Libvirt, name: &str, edit: &VmEdit) -> Result<(), Failure> {
    check_name("VM name", name)?;
    if let Some(v) = edit.vcpus {
        if !(1..=MAX_VCPUS).contains(&v) {
            return Err(invalid(format!(
                "vcpus {v} is out of range: give 1 to {MAX_VCPUS}"
            )));
        }
    }
    if let Some(m) = edit.memory_mib {
        check_memory(m)?;
    }
    on_conn(libvirt, |conn| {
        let dom = lookup_vm(conn, name)?;
        let running = conn
            .domain_info(&dom)
            .map_err(|e| lv_failure(&format!("reading VM {name:?}"), &e))?
            .state
            != DomainState::Shutoff;
        let (max_vcpus, max_kib) = config_maxima(conn, &dom)?;
        let doing = |what: &str| format!("changing the {what} of VM {name:?}");
        if let Some(v) = edit.vcpus {
            if v > max_vcpus {
                conn.set_domain_vcpus(&dom, v, AFFECT_CONFIG | MAXIMUM)
                    .map_err(|e| lv_failure(&doing("maximum vCPUs"), &e))?;
            }
            conn.set_domain_vcpus(&dom, v, AFFECT_CONFIG)
                .map_err(|e| lv_failure(&doing("vCPUs"), &e))?;
            if running {
                if let Err(e) = conn.set_domain_vcpus(&dom, v, AFFECT_LIVE) {
                    tracing::info!(vm = name, error = %e, "vCPUs change applies at the next start");
                }
            }
        }
        if let Some(m) = edit.memory_mib {
            let kib = m * 1024;
            if kib > max_kib {
                conn.set_domain_memory(&dom, kib, AFFECT_CONFIG | MAXIMUM)
                    .map_err(|e| lv_failure(&doing("maximum memory"), &e))?;
            }
            conn.set_domain_memory(&dom, kib, AFFECT_CONFIG)
                .map_err(|e| lv_failure(&doing("memory"), &e))?;
            if running {
                if let Err(e) = conn.set_domain_memory(&dom, kib, AFFECT_LIVE) {
                    tracing::info!(vm = name, error = %e, "memory change applies at the next start");
                }
            }
        }
        if let Some(a) = edit.autostart {
            conn.set_domain_autostart(&dom, a)
                .map_err(|e| lv_failure(&doing("autostart"), &e))?;
        }
        Ok(())
    })
}

/// The paths of a definition's disks (not its CD-ROMs): those a delete with
/// storage removes.
pub fn disk_paths(domain_xml: &str) -> Result<Vec<String>, roxmltree::Error> {
    let doc = roxmltree::Document::parse(domain_xml)?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("disk") && n.attribute("device").unwrap_or("disk") == "disk")
        .filter_map(|d| {
            d.children()
                .find(|c| c.has_tag_name("source"))
                .and_then(|s| s.attribute("file").or_else(|| s.attribute("dev")))
                .map(str::to_string)
        })
        .collect())
}

/// Deletes a VM: forced off if it runs, undefined with its snapshots' metadata
/// and UEFI variables; with `storage`, its disks' volumes deleted. Every disk must
/// be a volume of a pool before anything is removed, so that a delete with
/// storage either removes all of it or nothing.
pub fn delete(libvirt: &Libvirt, name: &str, storage: bool) -> Result<(), Failure> {
    check_name("VM name", name)?;
    on_conn(libvirt, |conn| {
        let dom = lookup_vm(conn, name)?;
        let inactive = conn
            .domain_xml(&dom, 2)
            .map_err(|e| lv_failure(&format!("reading the definition of {name:?}"), &e))?;
        let mut volumes = Vec::new();
        if storage {
            let paths = disk_paths(&inactive)
                .map_err(|e| Failure::new(FailureKind::Failed, format!("domain XML: {e}")))?;
            for path in paths {
                let vol = conn.lookup_volume_by_path(&path).map_err(|e| {
                    if e.is_not_found() {
                        Failure::new(
                            FailureKind::Conflict,
                            format!(
                                "disk {path} is in no storage pool, so the console does not \
                                 delete it: delete the VM without its storage, then remove the \
                                 file yourself"
                            ),
                        )
                    } else {
                        lv_failure(&format!("looking up the volume of disk {path}"), &e)
                    }
                })?;
                volumes.push(vol);
            }
        }
        let state = conn
            .domain_info(&dom)
            .map_err(|e| lv_failure(&format!("reading VM {name:?}"), &e))?
            .state;
        if state != DomainState::Shutoff {
            conn.destroy_domain(&dom)
                .map_err(|e| lv_failure(&format!("forcing off VM {name:?}"), &e))?;
        }
        let mut flags = UNDEFINE_SNAPSHOTS_METADATA;
        if inactive.contains("<nvram") || inactive.contains("firmware='efi'") {
            flags |= UNDEFINE_NVRAM;
        }
        conn.undefine_domain(&dom, flags)
            .map_err(|e| lv_failure(&format!("undefining VM {name:?}"), &e))?;
        for vol in volumes {
            conn.delete_volume(&vol).map_err(|e| {
                lv_failure(
                    &format!(
                        "deleting volume {} of the removed VM {name:?} (delete it on the Storage \
                         pools page)",
                        vol.key
                    ),
                    &e,
                )
            })?;
        }
        Ok(())
    })
}

/// What can be done to a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAction {
    Create,
    Revert,
    Delete,
}

impl std::str::FromStr for SnapshotAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "create" => Ok(Self::Create),
            "revert" => Ok(Self::Revert),
            "delete" => Ok(Self::Delete),
            _ => Err(format!(
                "unknown snapshot action {s:?} (create, revert, delete)"
            )),
        }
    }
}

/// Takes, reverts to or deletes a VM's snapshot.
pub fn snapshot(
    libvirt: &Libvirt,
    vm: &str,
    snapshot: &str,
    action: &str,
    description: Option<&str>,
) -> Result<(), Failure> {
    check_name("VM name", vm)?;
    check_name("snapshot name", snapshot)?;
    let action: SnapshotAction = action.parse().map_err(invalid)?;
    if description.is_some_and(|d| d.len() > 4096 || d.contains('\0')) {
        return Err(invalid(
            "a snapshot's description is at most 4096 bytes of text".into(),
        ));
    }
    on_conn(libvirt, |conn| {
        let dom = lookup_vm(conn, vm)?;
        let find = || {
            conn.lookup_snapshot(&dom, snapshot).map_err(|e| {
                if e.is_not_found() {
                    Failure::new(
                        FailureKind::NotFound,
                        format!("VM {vm:?} has no snapshot {snapshot:?}"),
                    )
                } else {
                    lv_failure(&format!("looking up snapshot {snapshot:?}"), &e)
                }
            })
        };
        match action {
            SnapshotAction::Create => {
                if conn.lookup_snapshot(&dom, snapshot).is_ok() {
                    return Err(Failure::new(
                        FailureKind::Conflict,
                        format!("VM {vm:?} has a snapshot {snapshot:?}: choose another name"),
                    ));
                }
                conn.create_snapshot(&dom, &xml::snapshot(snapshot, description), 0)
                    .map(drop)
                    .map_err(|e| {
                        lv_failure(&format!("taking snapshot {snapshot:?} of VM {vm:?}"), &e)
                    })
            }
            SnapshotAction::Revert => conn.revert_to_snapshot(&find()?, 0).map_err(|e| {
                lv_failure(&format!("reverting VM {vm:?} to snapshot {snapshot:?}"), &e)
            }),
            SnapshotAction::Delete => conn.delete_snapshot(&find()?, 0).map_err(|e| {
                lv_failure(&format!("deleting snapshot {snapshot:?} of VM {vm:?}"), &e)
            }),
        }
    })
}

/// Defines a directory pool at `path`, builds (makes the directory), starts it and
/// makes it start with the host; undefined again if a step fails.
pub fn create_pool(libvirt: &Libvirt, name: &str, path: &str) -> Result<(), Failure> {
    check_name("storage pool", name)?;
    if !path.starts_with('/') || path.contains('\0') || path.split('/').any(|c| c == "..") {
        return Err(invalid(format!(
            "path {path:?} must be an absolute path without '..'"
        )));
    }
    on_conn(libvirt, |conn| {
        if conn.lookup_pool(name).is_ok() {
            return Err(Failure::new(
                FailureKind::Conflict,
                format!("a storage pool named {name:?} exists: choose another name"),
            ));
        }
        let pool = conn
            .define_pool(&xml::dir_pool(name, path))
            .map_err(|e| lv_failure(&format!("defining storage pool {name:?}"), &e))?;
        let steps = conn
            .build_pool(&pool)
            .map_err(|e| lv_failure(&format!("making the directory {path}"), &e))
            .and_then(|()| {
                conn.start_pool(&pool)
                    .map_err(|e| lv_failure(&format!("starting storage pool {name:?}"), &e))
            })
            .and_then(|()| {
                conn.set_pool_autostart(&pool, true)
                    .map_err(|e| lv_failure(&format!("setting {name:?} to autostart"), &e))
            });
        if steps.is_err() {
            let _ = conn.stop_pool(&pool);
            if let Err(e) = conn.undefine_pool(&pool) {
                tracing::warn!(pool = name, error = %e, "could not undefine the new pool");
            }
        }
        steps
    })
}

/// `start` or `stop` of a pool or network.
fn start_or_stop(action: &str) -> Result<bool, Failure> {
    match action {
        "start" => Ok(true),
        "stop" => Ok(false),
        _ => Err(invalid(format!("unknown action {action:?} (start, stop)"))),
    }
}

/// Starts or stops a storage pool.
pub fn pool_action(libvirt: &Libvirt, name: &str, action: &str) -> Result<(), Failure> {
    check_name("storage pool", name)?;
    let start = start_or_stop(action)?;
    on_conn(libvirt, |conn| {
        let pool = conn
            .lookup_pool(name)
            .map_err(|e| lv_failure(&format!("looking up storage pool {name:?}"), &e))?;
        let r = if start {
            conn.start_pool(&pool)
        } else {
            conn.stop_pool(&pool)
        };
        r.map_err(|e| lv_failure(&format!("{action} of storage pool {name:?}"), &e))
    })
}

/// Starts or stops a virtual network.
pub fn network_action(libvirt: &Libvirt, name: &str, action: &str) -> Result<(), Failure> {
    check_name("network", name)?;
    let start = start_or_stop(action)?;
    on_conn(libvirt, |conn| {
        let net = conn
            .lookup_network(name)
            .map_err(|e| lv_failure(&format!("looking up network {name:?}"), &e))?;
        let r = if start {
            conn.start_network(&net)
        } else {
            conn.stop_network(&net)
        };
        r.map_err(|e| lv_failure(&format!("{action} of network {name:?}"), &e))
    })
}

/// A storage pool as the pools page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolView {
    pub name: String,
    pub state: &'static str,
    pub active: bool,
    pub autostart: bool,
    /// `dir`, `logical`, `netfs`, …
    pub kind: String,
    pub path: Option<String>,
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
    pub volumes: usize,
}

/// A virtual network as the pools page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkView {
    pub name: String,
    pub active: bool,
    pub autostart: bool,
    pub bridge: Option<String>,
    /// `nat`, `route`, `bridge`, … or none for an isolated network.
    pub forward: Option<String>,
}

/// The storage pools and virtual networks, sorted by name.
pub fn resources(libvirt: &Libvirt) -> Result<(Vec<PoolView>, Vec<NetworkView>), VirtError> {
    libvirt.with_conn(|conn| {
        let err = |e| libvirt.classify(e, "");
        let mut pools = Vec::new();
        for pool in conn.list_pools().map_err(err)? {
            let info = match conn.pool_info(&pool) {
                Ok(i) => i,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(err(e)),
            };
            let xml = conn.pool_xml(&pool).map_err(err)?;
            let doc = roxmltree::Document::parse(&xml)
                .map_err(|e| VirtError::Failed(format!("pool XML of {}: {e}", pool.name)))?;
            let path = doc
                .descendants()
                .find(|n| n.has_tag_name("path"))
                .and_then(|n| n.text())
                .map(str::to_string);
            let active = info.state == hvnode_libvirt::PoolState::Running;
            pools.push(PoolView {
                state: info.state.as_str(),
                active,
                autostart: conn.pool_autostart(&pool).map_err(err)?,
                kind: doc
                    .root_element()
                    .attribute("type")
                    .unwrap_or("")
                    .to_string(),
                path,
                capacity: info.capacity,
                allocation: info.allocation,
                available: info.available,
                volumes: if active {
                    conn.list_volumes(&pool).map_err(err)?.len()
                } else {
                    0
                },
                name: pool.name,
            });
        }
        let mut networks = Vec::new();
        for net in conn.list_networks().map_err(err)? {
            let xml = match conn.network_xml(&net) {
                Ok(x) => x,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(err(e)),
            };
            let doc = roxmltree::Document::parse(&xml)
                .map_err(|e| VirtError::Failed(format!("network XML of {}: {e}", net.name)))?;
            let attr = |tag: &str, a: &str| {
                doc.descendants()
                    .find(|n| n.has_tag_name(tag))
                    .map(|n| n.attribute(a).unwrap_or("").to_string())
            };
            networks.push(NetworkView {
                active: conn.network_is_active(&net).map_err(err)?,
                autostart: conn.network_autostart(&net).map_err(err)?,
                bridge: attr("bridge", "name").filter(|b| !b.is_empty()),
                forward: attr("forward", "mode")
                    .map(|m| if m.is_empty() { "nat".to_string() } else { m }),
                name: net.name,
            });
        }
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((pools, networks))
    })
}

#[cfg(test)]
mod tests;
