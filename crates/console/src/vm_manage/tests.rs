//! Creating, changing and deleting VMs, snapshots and pools against libvirtd's test
//! driver (a private node file per test), each checked by reading libvirt back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const NODE: &str = "<node>
  <domain type='test'>
    <name>old</name>
    <memory unit='KiB'>262144</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><source file='/elsewhere/old.img'/><target dev='vda'/></disk>
    </devices>
  </domain>
  <network>
    <name>lan</name>
    <bridge name='virbr9'/>
    <forward mode='nat'/>
    <ip address='192.168.199.1' netmask='255.255.255.0'/>
  </network>
</node>";

/// A libvirt on a private test node with a running directory pool `images`, or
/// `None` where libvirtd does not run (a failure under `CI=true`).
fn node(dir: &tempfile::TempDir) -> Option<Libvirt> {
    let file = dir.path().join("node.xml");
    std::fs::write(&file, NODE).unwrap();
    let uri = format!("test://{}", file.display());
    if let Err(e) = Client::connect(&uri) {
        hvnode_testutil::skip(format!(
            "libvirtd is not reachable ({e}); tests/deps.sh starts it"
        ));
        return None;
    }
    let lv = Libvirt::new(&uri);
    let pool_dir = dir.path().join("images");
    create_pool(&lv, "images", pool_dir.to_str().unwrap()).unwrap();
    Some(lv)
}

fn spec(name: &str) -> VmSpec {
    VmSpec {
        name: name.into(),
        vcpus: 2,
        memory_mib: 512,
        disk_gib: 4,
        pool: "images".into(),
        network: "lan".into(),
        firmware: "bios".into(),
        iso: None,
        start: false,
    }
}

/// Runs `f` on the console's own connection (a test node lives as long as its
/// connection: another one would see a fresh node).
fn with<T>(lv: &Libvirt, f: impl FnOnce(&Client) -> T) -> T {
    let mut out = None;
    lv.with_conn(|c| {
        out = Some(f(c));
        Ok(())
    })
    .unwrap();
    out.unwrap()
}

#[test]
fn a_vm_is_created_with_its_volume_changed_and_deleted_with_its_storage() {
    let dir = tempfile::tempdir().unwrap();
    let Some(lv) = node(&dir) else { return };
    create(&lv, &spec("web1")).unwrap();
    let vm = lv.get("web1").unwrap();
    assert_eq!(
        (vm.vcpus, vm.memory_kib, vm.state),
        (2, 512 * 1024, "shut off")
    );
    let volumes = || {
        with(&lv, |c| {
            let pool = c.lookup_pool("images").unwrap();
            c.list_volumes(&pool).unwrap()
        })
    };
    let vols = volumes();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0].name, "web1.qcow2");
    with(&lv, |c| {
        assert_eq!(c.volume_info(&vols[0]).unwrap().capacity, 4 << 30);
        let dom = c.lookup_domain("web1").unwrap();
        let xml = c.domain_xml(&dom, 0).unwrap();
        assert_eq!(disk_paths(&xml).unwrap(), [vols[0].key.clone()]);
        assert!(xml.contains("<source network='lan'"), "{xml}");
    });
    let snapshots = || {
        with(&lv, |c| {
            let dom = c.lookup_domain("web1").unwrap();
            c.list_snapshots(&dom)
                .unwrap()
                .into_iter()
                .map(|s| (s.name.clone(), c.snapshot_xml(&s, 0).unwrap()))
                .collect::<Vec<_>>()
        })
    };

    // A second VM of the same name is refused, and leaves nothing behind.
    let err = create(&lv, &spec("web1")).unwrap_err();
    assert_eq!(err.kind, FailureKind::Conflict, "{err}");
    assert_eq!(volumes().len(), 1);

    // More vCPUs than the maximum raise the maximum; memory and autostart.
    edit(
        &lv,
        "web1",
        &VmEdit {
            vcpus: Some(4),
            memory_mib: Some(1024),
            autostart: Some(true),
        },
    )
    .unwrap();
    let vm = lv.get("web1").unwrap();
    assert_eq!(
        (vm.vcpus, vm.max_memory_kib, vm.autostart),
        (4, 1024 * 1024, true)
    );

    // Snapshots: take, refuse a duplicate, revert, delete.
    snapshot(&lv, "web1", "before", "create", Some("before the upgrade")).unwrap();
    let err = snapshot(&lv, "web1", "before", "create", None).unwrap_err();
    assert_eq!(err.kind, FailureKind::Conflict);
    let snaps = snapshots();
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0].1.contains("before the upgrade"), "{}", snaps[0].1);
    snapshot(&lv, "web1", "before", "revert", None).unwrap();
    snapshot(&lv, "web1", "before", "delete", None).unwrap();
    assert!(snapshots().is_empty());
    let err = snapshot(&lv, "web1", "before", "revert", None).unwrap_err();
    assert_eq!(err.kind, FailureKind::NotFound, "{err}");
    assert!(err.message.contains("has no snapshot \"before\""), "{err}");

    // Deleted with its storage: the domain and the volume are gone.
    snapshot(&lv, "web1", "kept", "create", None).unwrap();
    delete(&lv, "web1", true).unwrap();
    assert!(matches!(lv.get("web1"), Err(VirtError::NoSuchVm(_))));
    assert!(volumes().is_empty());
}

#[test]
fn a_delete_with_storage_of_a_disk_in_no_pool_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(lv) = node(&dir) else { return };
    let err = delete(&lv, "old", true).unwrap_err();
    assert_eq!(err.kind, FailureKind::Conflict);
    assert!(
        err.message
            .contains("/elsewhere/old.img is in no storage pool"),
        "{err}"
    );
    assert_eq!(lv.get("old").unwrap().name, "old");
    delete(&lv, "old", false).unwrap();
    assert!(matches!(lv.get("old"), Err(VirtError::NoSuchVm(_))));
}

#[test]
fn bad_requests_name_the_field_and_make_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(lv) = node(&dir) else { return };
    type Case = (fn(&mut VmSpec), &'static str);
    let cases: [Case; 7] = [
        (
            |s| s.name = "../x".into(),
            "VM name \"../x\" is not a valid name",
        ),
        (|s| s.vcpus = 0, "vcpus 0 is out of range"),
        (|s| s.memory_mib = 1, "memory_mib 1 is out of range"),
        (|s| s.disk_gib = 0, "disk_gib 0 is out of range"),
        (
            |s| s.firmware = "efi".into(),
            "firmware \"efi\" is not one of",
        ),
        (
            |s| s.pool = "nopool".into(),
            "no storage pool named \"nopool\"",
        ),
        (
            |s| s.network = "nonet".into(),
            "no virtual network or bridge named \"nonet\"",
        ),
    ];
    for (change, words) in cases {
        let mut s = spec("bad");
        change(&mut s);
        let err = create(&lv, &s).unwrap_err();
        assert!(err.message.contains(words), "{err} / {words}");
    }
    let mut s = spec("bad");
    s.iso = Some("/no/such.iso".into());
    let err = create(&lv, &s).unwrap_err();
    assert_eq!(err.kind, FailureKind::NotFound);
    assert!(
        err.message.starts_with("iso /no/such.iso cannot be read"),
        "{err}"
    );
    let made = with(&lv, |c| {
        let pool = c.lookup_pool("images").unwrap();
        c.list_volumes(&pool).unwrap()
    });
    assert!(made.is_empty(), "nothing made");
    assert!(matches!(lv.get("bad"), Err(VirtError::NoSuchVm(_))));
    let err = edit(&lv, "nosuch", &VmEdit::default()).unwrap_err();
    assert_eq!(err.kind, FailureKind::NotFound);
}

#[test]
fn pools_and_networks_are_listed_started_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let Some(lv) = node(&dir) else { return };
    let (pools, nets) = resources(&lv).unwrap();
    let images = pools.iter().find(|p| p.name == "images").unwrap();
    assert!(images.active && images.autostart);
    assert_eq!(images.kind, "dir");
    assert_eq!(images.path.as_deref(), dir.path().join("images").to_str());
    let lan = nets.iter().find(|n| n.name == "lan").unwrap();
    assert!(lan.active);
    assert_eq!(lan.bridge.as_deref(), Some("virbr9"));
    assert_eq!(lan.forward.as_deref(), Some("nat"));
    pool_action(&lv, "images", "stop").unwrap();
    network_action(&lv, "lan", "stop").unwrap();
    let (pools, nets) = resources(&lv).unwrap();
    assert!(!pools.iter().find(|p| p.name == "images").unwrap().active);
    assert!(!nets.iter().find(|n| n.name == "lan").unwrap().active);
    // A VM's pool must run.
    let err = create(&lv, &spec("w")).unwrap_err();
    assert!(err.message.contains("is inactive: start it first"), "{err}");
    pool_action(&lv, "images", "start").unwrap();
    network_action(&lv, "lan", "start").unwrap();
    let err = pool_action(&lv, "images", "explode").unwrap_err();
    assert_eq!(err.kind, FailureKind::Invalid);
    let err = create_pool(&lv, "images", "/srv/x").unwrap_err();
    assert_eq!(err.kind, FailureKind::Conflict);
    let err = create_pool(&lv, "p2", "relative").unwrap_err();
    assert!(err.message.contains("must be an absolute path"), "{err}");
}
