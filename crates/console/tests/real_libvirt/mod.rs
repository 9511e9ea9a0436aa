//! What the tests against the real libvirtd (`qemu:///system`) make there: a VM,
//! its storage pool and an isolated network (a bridge with no address and no
//! forwarding: nothing leaves the host), removed when dropped, also after a
//! failure.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use virt::connect::Connect;
use virt::domain::Domain;
use virt::network::Network;
use virt::storage_pool::StoragePool;

pub const URI: &str = "qemu:///system";

/// libvirtd's connection, or the failure that says how to get one.
pub fn conn() -> Connect {
    Connect::open(Some(URI)).unwrap_or_else(|e| {
        panic!("libvirtd is not reachable at {URI} ({e}): run tests/deps.sh, which starts it")
    })
}

/// Names of what a test makes (each may be empty: nothing of that kind).
pub struct Made {
    pub vm: String,
    pub pool: String,
    pub net: String,
}

impl Made {
    /// Names `PREFIX-PID` for a VM and its pool, and an isolated network of that
    /// name on bridge `BRIDGE` + a number of the process, made and started.
    pub fn with_network(prefix: &str, bridge: &str) -> Self {
        let id = std::process::id();
        let name = format!("{prefix}-{id}");
        let made = Self {
            vm: name.clone(),
            pool: name.clone(),
            net: name,
        };
        let mut c = conn();
        Network::define_xml(
            &c,
            &format!(
                "<network><name>{}</name><bridge name='{bridge}{}' stp='off'/></network>",
                made.net,
                id % 100_000
            ),
        )
        .unwrap()
        .create()
        .unwrap();
        let _ = c.close();
        made
    }

    /// A VM only (its pool and network are another [`Made`]'s).
    pub fn vm(name: String) -> Self {
        Self {
            vm: name,
            pool: String::new(),
            net: String::new(),
        }
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let Ok(mut conn) = Connect::open(Some(URI)) else {
            return;
        };
        if let Ok(d) = Domain::lookup_by_name(&conn, &self.vm) {
            let _ = d.destroy();
            let _ = d.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA);
        }
        if !self.pool.is_empty() {
            if let Ok(p) = StoragePool::lookup_by_name(&conn, &self.pool) {
                if let Ok(vols) = p.list_all_volumes(0) {
                    for v in vols {
                        let _ = v.delete(0);
                    }
                }
                let _ = p.destroy();
                let _ = p.undefine();
            }
        }
        if !self.net.is_empty() {
            if let Ok(n) = Network::lookup_by_name(&conn, &self.net) {
                let _ = n.destroy();
                let _ = n.undefine();
            }
        }
        let _ = conn.close();
    }
}
