//! A VM's whole life through the API against the real libvirtd (`qemu:///system`)
//! and a real TCG guest: a directory pool made through the API, a VM created in it
//! and started, its memory and autostart changed, a snapshot taken, reverted to
//! and deleted, and the VM deleted with its storage. Each step is checked through
//! libvirt's own C library (the `virt` crate), not through the console.
//! The guest's network is an isolated libvirt network made for the test (a bridge
//! with no address and no forwarding): nothing leaves the host.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, get, post_form, request};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::network::Network;
use virt::storage_pool::StoragePool;

const URI: &str = "qemu:///system";

/// What the test made in libvirt, removed when dropped (also after a failure).
struct Made {
    vm: String,
    pool: String,
    net: String,
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
        if let Ok(p) = StoragePool::lookup_by_name(&conn, &self.pool) {
            let _ = p.destroy();
            let _ = p.undefine();
        }
        if let Ok(n) = Network::lookup_by_name(&conn, &self.net) {
            let _ = n.destroy();
            let _ = n.undefine();
        }
        let _ = conn.close();
    }
}

fn conn() -> Connect {
    Connect::open(Some(URI)).unwrap_or_else(|e| {
        panic!("libvirtd is not reachable at {URI} ({e}): run tests/deps.sh, which starts it")
    })
}

#[test]
fn a_vm_is_created_changed_snapshotted_and_deleted_with_its_storage() {
    common::require_root();
    let id = std::process::id();
    let made = Made {
        vm: format!("hvnode-life-{id}"),
        pool: format!("hvnode-life-{id}"),
        net: format!("hvnode-life-{id}"),
    };
    let c = conn();
    let bridge = format!("hvl{}", id % 100_000);
    let net = Network::define_xml(
        &c,
        &format!(
            "<network><name>{}</name><bridge name='{bridge}' stp='off'/></network>",
            made.net
        ),
    )
    .unwrap();
    net.create().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let pool_dir = dir.path().join("pool");
    let server = Server::start(|c| c.libvirt_uri = URI.into());
    let s = server.admin_session("root");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let post = |path: &str, body: &str| post_form(&server.url(path), Some(&s), &csrf, body);

    // The pool.
    let r = post(
        "/api/v1/pools",
        &serde_json::json!({ "name": made.pool, "path": pool_dir }).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let pool = StoragePool::lookup_by_name(&c, &made.pool).unwrap();
    assert!(pool.is_active().unwrap() && pool.get_autostart().unwrap());
    assert!(pool_dir.is_dir());
    let r = get(&server.url("/api/v1/pools"), Some(&s), &[]);
    let pools = r.json()["data"]["pools"].clone();
    assert!(
        pools
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == made.pool.as_str()
                && p["state"] == "running"
                && p["path"] == pool_dir.to_str().unwrap()),
        "{pools}"
    );

    // A bad request makes nothing and says which field is wrong.
    let spec = |memory: u64| {
        serde_json::json!({
            "name": made.vm, "vcpus": 1, "memory_mib": memory, "disk_gib": 1,
            "pool": made.pool, "network": made.net, "firmware": "bios", "start": true
        })
        .to_string()
    };
    let r = post("/api/v1/vms", &spec(1));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("memory_mib 1 is out of range"),
        "{}",
        r.body
    );
    assert!(pool.list_all_volumes(0).unwrap().is_empty());

    // The VM: created, started, confined, its disk a new volume in the pool.
    let r = post("/api/v1/vms", &spec(64));
    assert_eq!(r.status, 201, "{}", r.body);
    let vm = r.json()["data"].clone();
    assert_eq!(vm["state"], "running", "{vm}");
    assert!(!vm["seclabels"].as_array().unwrap().is_empty(), "{vm}");
    let dom = Domain::lookup_by_name(&c, &made.vm).unwrap();
    let vols = pool.list_all_volumes(0).unwrap();
    assert_eq!(vols.len(), 1);
    let vol_path = vols[0].get_path().unwrap();
    assert!(
        vol_path.ends_with(&format!("{}.qcow2", made.vm)),
        "{vol_path}"
    );
    let xml = dom.get_xml_desc(0).unwrap();
    assert!(xml.contains(&vol_path), "{xml}");
    assert!(
        xml.contains(&format!("<source network='{}'", made.net)),
        "{xml}"
    );
    assert!(
        xml.contains("listen='127.0.0.1'"),
        "VNC on loopback only: {xml}"
    );
    // A second VM of the same name is a conflict.
    let r = post("/api/v1/vms", &spec(64));
    assert_eq!(r.status, 409, "{}", r.body);

    // Memory and autostart, in the definition (and live where the balloon can).
    let r = request(
        &server,
        "PATCH",
        &format!("/api/v1/vms/{}", made.vm),
        Some(&s),
        &csrf,
        r#"{"memory_mib": 96, "autostart": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(dom.get_autostart().unwrap());
    let inactive = dom
        .get_xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)
        .unwrap();
    assert!(
        inactive.contains("<memory unit='KiB'>98304</memory>"),
        "{inactive}"
    );

    // A snapshot of the running guest (memory and disk), reverted to, deleted.
    let r = post(
        &format!("/api/v1/vms/{}/snapshots", made.vm),
        r#"{"name": "first", "description": "before the change"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let names = || {
        dom.list_all_snapshots(0)
            .unwrap()
            .iter()
            .map(|s| s.get_name().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(), ["first"]);
    let r = post(
        &format!("/api/v1/vms/{}/snapshots/first/revert", made.vm),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["state"], "running", "{}", r.body);
    let r = request(
        &server,
        "DELETE",
        &format!("/api/v1/vms/{}/snapshots/first", made.vm),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(names().is_empty());

    // Deleted with its storage: forced off, undefined, its volume gone.
    let r = request(
        &server,
        "DELETE",
        &format!("/api/v1/vms/{}?storage=true", made.vm),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(Domain::lookup_by_name(&c, &made.vm).is_err());
    pool.refresh(0).unwrap();
    assert!(pool.list_all_volumes(0).unwrap().is_empty());
    assert!(!std::path::Path::new(&vol_path).exists());
    let r = get(
        &server.url(&format!("/api/v1/vms/{}", made.vm)),
        Some(&s),
        &[],
    );
    assert_eq!(r.status, 404, "{}", r.body);

    // The pool stops through the API.
    let r = post(&format!("/api/v1/pools/{}/stop", made.pool), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!pool.is_active().unwrap());
    drop(made);
}
