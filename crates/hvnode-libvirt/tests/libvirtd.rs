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
