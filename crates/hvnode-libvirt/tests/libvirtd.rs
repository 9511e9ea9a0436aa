//! The client against the real libvirtd and its test driver (tests/deps.sh installs
//! and starts libvirtd): every call on a private node file, so that tests running at
//! once do not share domains.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hvnode_libvirt::{Client, DomainState, Error, Options, code};

const NODE_XML: &str = "<node>
  <domain type='test'>
    <name>alpha</name>
    <uuid>6f5c1e2a-0001-4002-8003-000000000042</uuid>
    <memory unit='KiB'>524288</memory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>
  <domain type='test'>
    <name>beta</name>
    <memory unit='KiB'>262144</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>
</node>";

/// A client on a private test-driver node, or `None` (skipped on a workstation, a
/// failure in CI) when libvirtd does not run.
fn connect(dir: &tempfile::TempDir) -> Option<Client> {
    connect_with(dir, false)
}

fn connect_with(dir: &tempfile::TempDir, read_only: bool) -> Option<Client> {
    let node = dir.path().join("node.xml");
    std::fs::write(&node, NODE_XML).unwrap();
    let options = Options {
        call_timeout: Duration::from_secs(30),
        read_only,
    };
    match Client::connect_with(&format!("test://{}", node.display()), options) {
        Ok(client) => Some(client),
        Err(e @ Error::Connect { .. }) => {
            hvnode_testutil::skip(format!(
                "libvirtd is not reachable ({e}); tests/deps.sh starts it"
            ));
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn lists_and_describes_the_domains_of_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let Some(client) = connect(&dir) else { return };
    client.check_alive().unwrap();
    let mut names: Vec<String> = client
        .list_domains()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta"]);

    let alpha = client.lookup_domain("alpha").unwrap();
    assert_eq!(alpha.uuid_string(), "6f5c1e2a-0001-4002-8003-000000000042");
    assert_eq!(client.lookup_domain_by_uuid(&alpha.uuid).unwrap(), alpha);
    let info = client.domain_info(&alpha).unwrap();
    assert_eq!(
        info.state,
        DomainState::Running,
        "the test driver starts its domains"
    );
    assert_eq!((info.vcpus, info.max_memory_kib), (2, 524_288));
    let xml = client.domain_xml(&alpha, 0).unwrap();
    assert!(xml.contains("<name>alpha</name>"), "{xml}");
    assert!(client.domain_is_persistent(&alpha).unwrap());
    assert!(!client.domain_autostart(&alpha).unwrap());
    let caps = client.capabilities().unwrap();
    assert!(caps.contains("<capabilities>"), "{caps}");

    let err = client.lookup_domain("no-such-domain").unwrap_err();
    assert!(err.is_no_domain(), "{err}");
    assert_eq!(err.remote().unwrap().procedure, "virDomainLookupByName");
    client.close().unwrap();
}

#[test]
fn power_actions_change_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let Some(client) = connect(&dir) else { return };
    let beta = client.lookup_domain("beta").unwrap();
    let state = |c: &Client| c.domain_info(&beta).unwrap().state;
    client.destroy_domain(&beta).unwrap();
    assert_eq!(state(&client), DomainState::Shutoff);
    client.start_domain(&beta).unwrap();
    assert_eq!(state(&client), DomainState::Running);
    // Starting a running domain is libvirt's refusal, with its number and domain
    // (the test driver says VIR_ERR_INTERNAL_ERROR where qemu's says
    // VIR_ERR_OPERATION_INVALID).
    let err = client.start_domain(&beta).unwrap_err();
    let refusal = err.remote().unwrap();
    assert_eq!(
        (refusal.code, refusal.domain),
        (code::INTERNAL_ERROR, 12),
        "{err}"
    );
    assert!(refusal.message.contains("already running"), "{err}");
    assert!(!err.is_connection_error());
    client.suspend_domain(&beta).unwrap();
    assert_eq!(state(&client), DomainState::Paused);
    client.resume_domain(&beta).unwrap();
    assert_eq!(state(&client), DomainState::Running);
    client.reboot_domain(&beta, 0).unwrap();
    client.shutdown_domain(&beta).unwrap();
    assert_eq!(state(&client), DomainState::Shutoff);
    // The connection outlives a refusal.
    client.check_alive().unwrap();
    client.close().unwrap();
}

/// A read-only connection, on libvirtd's read-only socket, reads what the console
/// shows and changes nothing: libvirt itself refuses.
#[test]
fn a_read_only_connection_reads_and_cannot_change() {
    let dir = tempfile::tempdir().unwrap();
    let Some(client) = connect_with(&dir, true) else {
        return;
    };
    assert!(
        client
            .target()
            .socket
            .to_string_lossy()
            .ends_with("-sock-ro"),
        "{}",
        client.target().socket.display()
    );
    let alpha = client.lookup_domain("alpha").unwrap();
    assert_eq!(
        client.domain_info(&alpha).unwrap().state,
        DomainState::Running
    );
    let err = client.destroy_domain(&alpha).unwrap_err();
    let refusal = err.remote().expect("libvirt's refusal");
    assert!(refusal.message.contains("read only"), "{err}");
    assert_eq!(
        client.domain_info(&alpha).unwrap().state,
        DomainState::Running
    );
}

/// The qemu driver's domain capabilities on this host: the CPU models a guest may
/// be given. libvirt answers them on a read-write connection only.
#[test]
fn the_qemu_drivers_domain_capabilities_name_usable_cpu_models() {
    let options = |read_only| Options {
        call_timeout: Duration::from_secs(60),
        read_only,
    };
    let client = match Client::connect_with("qemu:///system", options(false)) {
        Ok(c) => c,
        Err(e @ Error::Connect { .. }) => {
            hvnode_testutil::skip(format!(
                "libvirtd is not reachable ({e}); tests/deps.sh starts it"
            ));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let virttype = if std::path::Path::new("/dev/kvm").exists() {
        "kvm"
    } else {
        "qemu"
    };
    let xml = client
        .domain_capabilities(None, Some("x86_64"), None, Some(virttype))
        .unwrap();
    assert!(xml.contains("<domainCapabilities>"), "{xml}");
    let models = hvnode_libvirt::caps::usable_cpu_models(&xml).unwrap();
    assert!(!models.is_empty(), "{xml}");

    let ro = Client::connect_with("qemu:///system", options(true)).unwrap();
    let err = ro
        .domain_capabilities(None, Some("x86_64"), None, Some(virttype))
        .unwrap_err();
    assert!(err.remote().is_some(), "{err}");
}

/// Define, change and remove a domain; take, list, revert and delete its
/// snapshots; define, build, start and stop a directory pool, create and delete a
/// volume in it; list and stop/start a network: each checked by reading back.
#[test]
fn manages_domains_snapshots_pools_volumes_and_networks() {
    let dir = tempfile::tempdir().unwrap();
    let Some(client) = connect(&dir) else { return };
    let dom = client
        .define_domain(
            "<domain type='test'><name>gamma</name><memory unit='KiB'>262144</memory>\
             <vcpu placement='static' current='1'>4</vcpu>\
             <os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .unwrap();
    assert_eq!(dom.name, "gamma");
    client.set_domain_autostart(&dom, true).unwrap();
    assert!(client.domain_autostart(&dom).unwrap());
    client
        .set_domain_vcpus(&dom, 2, hvnode_libvirt::AFFECT_CONFIG)
        .unwrap();
    client
        .set_domain_memory(&dom, 131_072, hvnode_libvirt::AFFECT_CONFIG)
        .unwrap();
    let info = client.domain_info(&dom).unwrap();
    assert_eq!((info.vcpus, info.memory_kib), (2, 131_072));

    // Snapshots.
    let snap = client
        .create_snapshot(
            &dom,
            "<domainsnapshot><name>first</name><description>before</description></domainsnapshot>",
            0,
        )
        .unwrap();
    assert_eq!(snap.name, "first");
    assert_eq!(snap.domain.name, "gamma");
    let names: Vec<String> = client
        .list_snapshots(&dom)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["first"]);
    let xml = client.snapshot_xml(&snap, 0).unwrap();
    assert!(xml.contains("<description>before</description>"), "{xml}");
    assert_eq!(client.lookup_snapshot(&dom, "first").unwrap(), snap);
    client.revert_to_snapshot(&snap, 0).unwrap();
    client.delete_snapshot(&snap, 0).unwrap();
    assert!(client.list_snapshots(&dom).unwrap().is_empty());
    let err = client.lookup_snapshot(&dom, "first").unwrap_err();
    assert_eq!(err.remote_code(), Some(code::NO_DOMAIN_SNAPSHOT), "{err}");
    assert!(err.is_not_found());

    // A directory pool and a volume in it.
    let pool_dir = dir.path().join("pool");
    let pool = client
        .define_pool(&format!(
            "<pool type='dir'><name>scratch</name><target><path>{}</path></target></pool>",
            pool_dir.display()
        ))
        .unwrap();
    client.build_pool(&pool).unwrap();
    client.start_pool(&pool).unwrap();
    assert!(client.list_pools().unwrap().contains(&pool));
    assert_eq!(client.lookup_pool("scratch").unwrap(), pool);
    let info = client.pool_info(&pool).unwrap();
    assert_eq!(info.state, hvnode_libvirt::PoolState::Running);
    assert!(
        client
            .pool_xml(&pool)
            .unwrap()
            .contains("<name>scratch</name>")
    );
    client.set_pool_autostart(&pool, true).unwrap();
    assert!(client.pool_autostart(&pool).unwrap());
    let vol = client
        .create_volume(
            &pool,
            "<volume><name>gamma.qcow2</name><capacity unit='MiB'>64</capacity>\
             <target><format type='qcow2'/></target></volume>",
            0,
        )
        .unwrap();
    assert_eq!(
        (vol.pool.as_str(), vol.name.as_str()),
        ("scratch", "gamma.qcow2")
    );
    assert_eq!(client.volume_info(&vol).unwrap().capacity, 64 << 20);
    let path = client.volume_path(&vol).unwrap();
    assert_eq!(client.lookup_volume_by_path(&path).unwrap(), vol);
    assert_eq!(
        client.list_volumes(&pool).unwrap(),
        std::slice::from_ref(&vol)
    );
    client.delete_volume(&vol).unwrap();
    assert!(client.list_volumes(&pool).unwrap().is_empty());
    client.stop_pool(&pool).unwrap();
    assert_eq!(
        client.pool_info(&pool).unwrap().state,
        hvnode_libvirt::PoolState::Inactive
    );
    client.undefine_pool(&pool).unwrap();
    let err = client.lookup_pool("scratch").unwrap_err();
    assert_eq!(err.remote_code(), Some(code::NO_STORAGE_POOL), "{err}");
    let err = client.lookup_network("no-such-network").unwrap_err();
    assert_eq!(err.remote_code(), Some(code::NO_NETWORK), "{err}");
    let err = client.lookup_volume_by_path("/no/such/volume").unwrap_err();
    assert_eq!(err.remote_code(), Some(code::NO_STORAGE_VOL), "{err}");

    // The test driver's node has no network unless defined; list what is there.
    for net in client.list_networks().unwrap() {
        assert_eq!(client.lookup_network(&net.name).unwrap(), net);
        assert!(client.network_xml(&net).unwrap().contains(&net.name));
        client.network_autostart(&net).unwrap();
        if client.network_is_active(&net).unwrap() {
            client.stop_network(&net).unwrap();
            assert!(!client.network_is_active(&net).unwrap());
            client.start_network(&net).unwrap();
        }
    }

    client
        .undefine_domain(&dom, hvnode_libvirt::UNDEFINE_SNAPSHOTS_METADATA)
        .unwrap();
    let err = client.lookup_domain("gamma").unwrap_err();
    assert!(err.is_no_domain(), "{err}");
    client.close().unwrap();
}
