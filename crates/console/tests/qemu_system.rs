//! The real path: libvirtd with `qemu:///system` running a tiny TCG guest (32 MiB, no
//! disk: SeaBIOS is enough to be a running domain) that the console starts and stops.
//! tests/deps.sh installs libvirt-daemon-system and qemu-system-x86 and starts libvirtd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, get, post_form};
use virt::connect::Connect;
use virt::domain::Domain;

const URI: &str = "qemu:///system";

/// A defined guest; destroyed and undefined when dropped.
struct Guest {
    name: String,
}

impl Guest {
    fn define() -> Self {
        Self::define_with("test", "")
    }

    /// A guest named `hvnode-{kind}-PID` with `devices` besides its balloon.
    fn define_with(kind: &str, devices: &str) -> Self {
        let conn = Connect::open(Some(URI)).unwrap_or_else(|e| {
            panic!("libvirtd is not reachable at {URI} ({e}): run tests/deps.sh, which starts it")
        });
        let name = format!("hvnode-{kind}-{}", std::process::id());
        let xml = format!(
            "<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices>{devices}<memballoon model='none'/></devices></domain>"
        );
        Domain::define_xml(&conn, &xml).unwrap();
        let mut conn = conn;
        conn.close().unwrap();
        Self { name }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Ok(mut conn) = Connect::open(Some(URI)) {
            if let Ok(d) = Domain::lookup_by_name(&conn, &self.name) {
                let _ = d.destroy();
                let _ = d.undefine();
            }
            let _ = conn.close();
        }
    }
}

#[test]
fn the_console_starts_and_stops_a_tcg_guest() {
    common::require_root();
    let guest = Guest::define();
    let server = Server::start(|c| c.libvirt_uri = URI.into());
    let s = server.admin_session("root");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let api = |p: &str| server.url(&format!("/api/v1/vms/{}{p}", guest.name));

    let r = get(&api(""), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["state"], "shut off");

    let r = post_form(&api("/start"), Some(&s), &csrf, "");
    assert_eq!(r.status, 200, "{}", r.body);
    let vm = r.json()["data"].clone();
    assert_eq!(vm["state"], "running");
    // A running qemu guest carries the labels libvirt gave it (selinux with sVirt on
    // an hvnode image, dac at least everywhere).
    let labels = vm["seclabels"].as_array().unwrap();
    assert!(!labels.is_empty(), "{vm}");
    assert!(labels.iter().all(|l| l["label"].is_string()), "{vm}");
    // A second look a moment later knows how busy the guest's vCPU is.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let r = get(&api(""), Some(&s), &[]);
    let cpu = r.json()["data"]["cpu_percent"].as_f64();
    assert!(
        cpu.is_some_and(|c| (0.0..=100.0).contains(&c)),
        "{}",
        r.body
    );
    let page = get(&server.url("/vms"), Some(&s), &[]);
    assert!(page.body.contains(&guest.name));
    let first = labels[0]["label"].as_str().unwrap();
    assert!(page.body.contains(first), "the label is on the page");

    // The page's confirmed force off.
    let url = server.url(&format!("/vms/{}/force-off", guest.name));
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}&confirm=yes", s.csrf));
    assert_eq!(r.status, 303, "{}", r.body);
    let r = get(&api(""), Some(&s), &[]);
    assert_eq!(r.json()["data"]["state"], "shut off");

    let node = get(&server.url("/api/v1/node"), Some(&s), &[]);
    let models = node.json()["data"]["security_models"].clone();
    assert!(
        models
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["model"] == "dac" || m["model"] == "selinux"),
        "{models}"
    );
}

/// A guest whose disk file is gone: the start is refused for that reason, and the
/// page and the API say which disk and what to do, not that libvirt is unreachable.
#[test]
fn a_guest_whose_disk_is_missing_says_so_when_it_does_not_start() {
    common::require_root();
    let disk = format!(
        "/var/lib/libvirt/images/hvnode-missing-{}.qcow2",
        std::process::id()
    );
    assert!(!std::path::Path::new(&disk).exists());
    let guest = Guest::define_with(
        "missing",
        &format!(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>"
        ),
    );
    let server = Server::start(|c| c.libvirt_uri = URI.into());
    let s = server.admin_session("root");
    let want = format!(
        "VM {} could not start: disk {disk} does not exist (Cannot access storage file",
        guest.name
    );

    let url = server.url(&format!("/vms/{}/start", guest.name));
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}&confirm=yes", s.csrf));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains(&want), "{}", r.body);
    assert!(
        r.body
            .contains("restore the file or remove the disk from the VM"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("not reachable"), "{}", r.body);

    let api = server.url(&format!("/api/v1/vms/{}/start", guest.name));
    let r = post_form(&api, Some(&s), &[("X-CSRF-Token", s.csrf.as_str())], "");
    assert_eq!(r.status, 502, "{}", r.body);
    let message = r.json()["error"].as_str().unwrap().to_string();
    assert!(message.starts_with(&want), "{message}");
    let r = get(
        &server.url(&format!("/api/v1/vms/{}", guest.name)),
        Some(&s),
        &[],
    );
    assert_eq!(r.json()["data"]["state"], "shut off");
}
