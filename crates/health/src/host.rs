//! The host's checks, on any hvnode system (installed or live): SELinux,
//! the firewall, virtualisation (KVM, sVirt), resources (memory, file
//! systems, thin pools outside the layer store), services and the engine's
//! link ([`crate::engine_link`]).

use std::collections::BTreeMap;
use std::process::Command;

use command::CommandExt;
use serde::Deserialize;

use crate::engine_link::{self, VdsmFacts};
use crate::firewall::{self, FirewallFacts};
use crate::{
    FULL_PERCENT, Group, Item, MEMORY_AVAILABLE_MIN_PERCENT, USAGE_LIMIT_PERCENT, group, item,
    warn_unless,
};

/// The services a node needs running (their ActiveState must be `active`).
pub const SERVICES: &[&str] = &["libvirtd.service", "hvnode-agent.service"];

/// File system types that are full by construction (a boot medium, an
/// image) and never fill up: left out of the "full" check.
const READ_ONLY_FS: &[&str] = &["iso9660", "squashfs", "erofs", "udf"];

/// What the host's checks look at; [`HostFacts::gather`] reads it from the
/// running system.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub selinux: hostinfo::Selinux,
    pub memory: hostinfo::MemInfo,
    /// The CPU has vmx or svm.
    pub hardware_virtualisation: bool,
    /// `/dev/kvm` opens.
    pub kvm: bool,
    /// Mounted file systems, or why they could not be listed.
    pub filesystems: Result<Vec<hostinfo::Filesystem>, String>,
    /// Every thin pool of the host, or why `lvs` could not tell.
    pub thin_pools: Result<Vec<hostinfo::ThinPool>, String>,
    /// libvirt's security models (`selinux` is sVirt), or why libvirt could
    /// not be asked.
    pub libvirt_security: Result<Vec<String>, String>,
    /// [`SERVICES`] → their ActiveState (empty: systemd does not know it).
    pub units: BTreeMap<String, String>,
    /// Units systemd reports as failed, or why it could not be asked.
    pub failed_units: Result<Vec<String>, String>,
    pub firewall: FirewallFacts,
    /// The engine's link (hvnode-vdsm).
    pub vdsm: VdsmFacts,
}

impl HostFacts {
    /// Reads the running host. libvirt is asked by the caller (the console
    /// keeps a connection; `nodectl` opens one), which passes its answer, and so
    /// are the thin pools (`lvs` takes privileges: the console asks its helper,
    /// `nodectl` runs [`hostinfo::thin_pools`]).
    pub fn gather(
        libvirt_security: Result<Vec<String>, String>,
        thin_pools: Result<Vec<hostinfo::ThinPool>, String>,
    ) -> HostFacts {
        let memory = std::fs::read_to_string("/proc/meminfo")
            .map(|t| hostinfo::system::parse_meminfo(&t))
            .unwrap_or_default();
        let hardware_virtualisation = std::fs::read_to_string("/proc/cpuinfo")
            .is_ok_and(|t| hostinfo::system::parse_cpuinfo(&t).hardware_virtualisation());
        HostFacts {
            selinux: hostinfo::selinux(),
            memory,
            hardware_virtualisation,
            // Opening it proves the device is there and the kvm module answers.
            kvm: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .is_ok(),
            filesystems: hostinfo::filesystems().map_err(|e| e.to_string()),
            thin_pools,
            libvirt_security,
            units: SERVICES
                .iter()
                .map(|u| (u.to_string(), active_state(u)))
                .collect(),
            failed_units: failed_units(),
            firewall: firewall::gather(),
            vdsm: VdsmFacts::gather(),
        }
    }
}

/// `unit`'s ActiveState; empty when systemd does not know it or cannot be asked.
pub(crate) fn active_state(unit: &str) -> String {
    Command::new("systemctl")
        .args(["show", "-p", "ActiveState", "--value", unit])
        .run_capture()
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct ListedUnit {
    unit: String,
}

/// The units systemd lists as failed; on error, the last line systemctl
/// printed.
pub fn failed_units() -> Result<Vec<String>, String> {
    Command::new("systemctl")
        .args(["list-units", "--failed", "--no-pager", "--output=json"])
        .run_json::<Vec<ListedUnit>>()
        .map(|units| units.into_iter().map(|u| u.unit).collect())
        .map_err(|e| e.last_line().to_string())
}

/// The host's groups. `store_pool` (vg, name) is the layer store's thin
/// pool, which the store's own group already checks.
pub fn groups(h: &HostFacts, store_pool: Option<(String, String)>) -> Vec<Group> {
    vec![
        group(
            "SELinux",
            vec![item(
                "Enforcing",
                h.selinux.mode == "enforcing",
                h.selinux.mode.clone(),
            )],
        ),
        group("Firewall", vec![firewall::check(&h.firewall)]),
        virtualisation(h),
        resources(h, store_pool),
        services(h),
        engine_link::group_of(&h.vdsm),
    ]
}

fn virtualisation(h: &HostFacts) -> Group {
    let svirt = match &h.libvirt_security {
        Ok(models) if models.iter().any(|m| m == "selinux") => item(
            "sVirt",
            true,
            "libvirt confines guests with sVirt (selinux)",
        ),
        Ok(models) => item(
            "sVirt",
            false,
            format!(
                "libvirt's security driver is {}: guests are not confined by sVirt \
                 (security_driver in /etc/libvirt/qemu.conf)",
                if models.is_empty() {
                    "none".to_string()
                } else {
                    models.join(", ")
                }
            ),
        ),
        Err(e) => item("sVirt", false, format!("libvirt could not be asked: {e}")),
    };
    group(
        "Virtualization",
        vec![
            warn_unless(
                "KVM",
                h.kvm,
                if h.kvm {
                    "/dev/kvm is available"
                } else {
                    "/dev/kvm is missing: qemu runs guests under TCG emulation"
                },
            ),
            warn_unless(
                "Hardware virtualization",
                h.hardware_virtualisation,
                if h.hardware_virtualisation {
                    "the CPU has vmx or svm"
                } else {
                    "no vmx or svm: enable VT-x/AMD-V in the firmware; guests are emulated"
                },
            ),
            svirt,
        ],
    )
}

fn resources(h: &HostFacts, store_pool: Option<(String, String)>) -> Group {
    let total = h.memory.total.max(1) as f64;
    let available = h.memory.available as f64 * 100.0 / total;
    let mut checks = vec![warn_unless(
        "Memory",
        available >= MEMORY_AVAILABLE_MIN_PERCENT,
        format!(
            "{available:.0}% available of {} (warning below {MEMORY_AVAILABLE_MIN_PERCENT:.0}%)",
            hostinfo::human_bytes(h.memory.total as f64)
        ),
    )];
    checks.push(match &h.filesystems {
        Ok(fs) => {
            let full: Vec<String> = fs
                .iter()
                .filter(|f| !READ_ONLY_FS.contains(&f.fstype.as_str()))
                .filter(|f| f.used_percent() >= FULL_PERCENT)
                .map(|f| format!("{} {:.0}%", f.target, f.used_percent()))
                .collect();
            item(
                "File systems",
                full.is_empty(),
                if full.is_empty() {
                    format!("{} mounted, each under {FULL_PERCENT:.0}% full", fs.len())
                } else {
                    format!("full: {} (limit {FULL_PERCENT:.0}%)", full.join(", "))
                },
            )
        }
        Err(e) => item("File systems", false, format!("could not be listed: {e}")),
    });
    checks.extend(thin_pools(h, store_pool));
    group("Resources", checks)
}

/// One check per thin pool outside the layer store.
fn thin_pools(h: &HostFacts, store_pool: Option<(String, String)>) -> Vec<Item> {
    match &h.thin_pools {
        Ok(pools) => pools
            .iter()
            .filter(|p| store_pool.as_ref() != Some(&(p.vg.clone(), p.name.clone())))
            .map(|p| {
                item(
                    &format!("Thin pool {}/{}", p.vg, p.name),
                    !p.warning(),
                    format!(
                        "data {:.1}%, metadata {:.1}% (limit {USAGE_LIMIT_PERCENT:.0}%)",
                        p.data_percent, p.metadata_percent
                    ),
                )
            })
            .collect(),
        Err(e) => vec![item(
            "Thin pools",
            false,
            format!("lvs could not tell: {e}"),
        )],
    }
}

fn services(h: &HostFacts) -> Group {
    let mut checks: Vec<Item> = h
        .units
        .iter()
        .map(|(u, s)| {
            item(
                u,
                s == "active",
                if s.is_empty() {
                    "unknown to systemd"
                } else {
                    s
                },
            )
        })
        .collect();
    checks.push(match &h.failed_units {
        Ok(units) if units.is_empty() => item("Failed units", true, "none"),
        Ok(units) => item(
            "Failed units",
            false,
            format!("{}: `systemctl status UNIT` says why", units.join(", ")),
        ),
        Err(e) => item(
            "Failed units",
            false,
            format!("systemd could not be asked: {e}"),
        ),
    });
    group("Services", checks)
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
