//! The virtual machine pages and API against libvirt's test driver (in-process, from
//! `fixtures/test-node.xml`: "test" with a static sVirt label and "idle", both running).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, get, post_form};

fn state_of(server: &Server, s: &common::Session, name: &str) -> String {
    let r = get(&server.url(&format!("/api/v1/vms/{name}")), Some(s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"]["state"].as_str().unwrap().to_string()
}

#[test]
fn list_shows_the_test_domain_with_its_facts() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let r = get(&server.url("/api/v1/vms"), Some(&s), &[]);
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["apiVersion"], "hvnode.console/v1");
    assert!(j["data"]["uri"].as_str().unwrap().starts_with("test://"));
    let items = j["data"]["items"].as_array().unwrap();
    let names: Vec<_> = items.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["idle", "test"], "sorted by name");
    let vm = &items[1];
    assert_eq!(vm["state"], "running");
    assert_eq!(vm["vcpus"], 2);
    assert_eq!(vm["memory_kib"], 2_097_152);
    // The sVirt label comes from the live domain XML.
    let label = &vm["seclabels"][0];
    assert_eq!(label["model"], "selinux");
    assert_eq!(label["kind"], "static");
    assert_eq!(label["label"], "system_u:system_r:svirt_t:s0:c12,c345");
    assert_eq!(items[0]["seclabels"].as_array().unwrap().len(), 0);
    assert!(
        vm["cpu_percent"].is_null(),
        "nothing to compare with at the first look"
    );
    let page = get(&server.url("/vms"), Some(&s), &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"<tr data-vm="test">"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("system_u:system_r:svirt_t:s0:c12,c345"));
    assert!(page.body.contains("action-force-off"));
    assert!(
        !page.body.contains("action-start"),
        "running VMs offer no start"
    );
}

#[test]
fn api_actions_change_the_state() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let act = |a: &str| {
        post_form(
            &server.url(&format!("/api/v1/vms/test/{a}")),
            Some(&s),
            &csrf,
            "",
        )
    };
    // Each answer names the actions its new state offers, and the page shows those.
    let r = act("pause");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["state"], "paused");
    assert_eq!(
        r.json()["data"]["actions"],
        serde_json::json!(["resume", "force-off"])
    );
    let page = get(&server.url("/vms"), Some(&s), &[]);
    assert!(page.body.contains("action-resume"), "{}", page.body);
    assert!(!page.body.contains("action-start"), "{}", page.body);
    let r = act("resume");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["data"]["actions"],
        serde_json::json!(["shutdown", "reboot", "pause", "force-off"])
    );
    let r = act("force-off");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["state"], "shut off");
    assert_eq!(r.json()["data"]["actions"], serde_json::json!(["start"]));
    assert_eq!(state_of(&server, &s, "test"), "shut off");
    let r = act("start");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(state_of(&server, &s, "test"), "running");
    // Starting a running domain is libvirt's refusal, reported, not a crash.
    let r = act("start");
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("running"),
        "{}",
        r.body
    );
    assert_eq!(act("reboot").status, 200);
    assert_eq!(act("shutdown").status, 200);
    assert_eq!(state_of(&server, &s, "test"), "shut off");
    assert_eq!(act("start").status, 200);
}

#[test]
fn page_actions_ask_for_confirmation_first() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let url = server.url("/vms/test/force-off");
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}", s.csrf));
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("Force off virtual machine “test”?"),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"name="confirm" value="yes""#));
    assert_eq!(
        state_of(&server, &s, "test"),
        "running",
        "nothing happened yet"
    );
    let r = post_form(&url, Some(&s), &[], &format!("csrf={}&confirm=yes", s.csrf));
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/vms"));
    assert_eq!(state_of(&server, &s, "test"), "shut off");
    let page = get(&server.url("/vms"), Some(&s), &[]);
    assert!(page.body.contains("action-start"));
}

#[test]
fn unknown_vms_and_actions_and_malformed_bodies() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let r = get(&server.url("/api/v1/vms/no-such-vm"), Some(&s), &[]);
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("no-such-vm"));
    let r = post_form(
        &server.url("/api/v1/vms/no-such-vm/start"),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 404);
    let r = post_form(&server.url("/api/v1/vms/test/explode"), Some(&s), &csrf, "");
    assert_eq!(r.status, 400);
    let weird = format!("/api/v1/vms/{}", common::enc("../../etc/passwd\u{0}x"));
    assert_eq!(get(&server.url(&weird), Some(&s), &[]).status, 404);
    // Page forms: unknown VM is a 404 page, a malformed body a 400 page.
    let r = post_form(
        &server.url("/vms/no-such-vm/reboot"),
        Some(&s),
        &[],
        &format!("csrf={}", s.csrf),
    );
    assert_eq!(r.status, 404);
    assert!(r.body.contains("no virtual machine named"), "{}", r.body);
    let r = post_form(
        &server.url("/vms/test/reboot"),
        Some(&s),
        &[],
        &format!("csrf={}&confirm=%ZZ&confirm=1", s.csrf),
    );
    assert!(
        r.status == 400 || r.status == 403,
        "{}: {}",
        r.status,
        r.body
    );
    // Bodies over the limit are refused before anything reads them.
    let big = format!("csrf={}&pad={}", s.csrf, "x".repeat(200 * 1024));
    let r = post_form(&server.url("/vms/test/reboot"), Some(&s), &[], &big);
    assert_eq!(r.status, 413);
}

#[test]
fn libvirt_down_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("libvirt-sock");
    let uri = format!("qemu+unix:///system?socket={}", socket.display());
    let server = Server::start(|c| c.libvirt_uri = uri.clone());
    let s = server.session("root");
    let r = get(&server.url("/api/v1/vms"), Some(&s), &[]);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not reachable")
    );
    let page = get(&server.url("/vms"), Some(&s), &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("is not reachable"), "{}", page.body);
    // The node page shows the same failure in place of the security models.
    let node = get(&server.url("/api/v1/node"), Some(&s), &[]);
    assert_eq!(node.status, 200);
    assert!(node.json()["data"]["security_models"]["error"].is_string());
}

#[test]
fn the_vm_page_recovers_when_libvirt_comes_back() {
    // The test driver reads its node file on connect: missing, it fails like a daemon
    // that is down; once the file is there the next request connects by itself.
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node.xml");
    let uri = format!("test://{}", node.display());
    let server = Server::start(|c| c.libvirt_uri = uri.clone());
    let s = server.session("root");
    assert_eq!(get(&server.url("/api/v1/vms"), Some(&s), &[]).status, 503);
    std::fs::write(&node, common::TEST_NODE_XML).unwrap();
    let r = get(&server.url("/api/v1/vms"), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["items"].as_array().unwrap().len(), 2);
}

#[test]
fn node_page_names_the_security_model() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let r = get(&server.url("/api/v1/node"), Some(&s), &[]);
    assert_eq!(r.status, 200);
    let models = &r.json()["data"]["security_models"];
    assert_eq!(models[0]["model"], "testSecurity", "{models}");
    let page = get(&server.url("/node"), Some(&s), &[]);
    assert!(page.body.contains("testSecurity"));
    assert!(page.body.contains("selinux-mode"));
}

/// With a privileged helper configured, the web process's libvirt connection is
/// read-only (libvirtd's read-only socket): the list and a VM's facts, sVirt label
/// included, come through it; a change is not the web process's to make, and libvirt
/// would refuse it.
#[test]
fn with_a_helper_the_web_process_reads_libvirt_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("helper.sock");
    let server = Server::start(|c| c.helper_socket = Some(socket));
    let s = server.admin_session("root");
    let r = get(&server.url("/api/v1/vms"), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.json()["data"]["items"].as_array().unwrap().clone();
    let names: Vec<_> = items.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["idle", "test"]);
    assert_eq!(
        items[1]["seclabels"][0]["label"],
        "system_u:system_r:svirt_t:s0:c12,c345"
    );
    assert_eq!(state_of(&server, &s, "test"), "running");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let r = post_form(
        &server.url("/api/v1/vms/test/force-off"),
        Some(&s),
        &csrf,
        "",
    );
    assert_ne!(r.status, 200, "{}", r.body);
    assert_eq!(state_of(&server, &s, "test"), "running");
}

/// `GET /api/v1/vms/{name}` and the VM page: the list's facts, what the domain XML
/// says, the disks' sizes (libvirt's block info) and the snapshots.
#[test]
fn a_vm_in_depth() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let r = get(&server.url("/api/v1/vms/test"), Some(&s), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["kind"], "VirtualMachine");
    let d = &j["data"];
    // Everything the list says of it is still there.
    assert_eq!(d["name"], "test");
    assert_eq!(d["state"], "running");
    assert_eq!(d["vcpus"], 2);
    assert_eq!(d["memory_kib"], 2_097_152);
    assert_eq!(
        d["seclabels"][0]["label"],
        "system_u:system_r:svirt_t:s0:c12,c345"
    );
    assert_eq!(
        d["actions"],
        serde_json::json!(["shutdown", "reboot", "pause", "force-off"])
    );
    assert_eq!(d["vcpus_max"], 4);
    assert_eq!(d["current_memory_kib"], 2_097_152);
    assert_eq!(d["cpu"]["mode"], "host-model");
    assert_eq!(d["machine"], "pc-q35-7.2");
    assert_eq!(d["firmware"]["kind"], "uefi");
    assert_eq!(d["firmware"]["secure_boot"], true);
    assert_eq!(d["boot_order"], serde_json::json!(["hd", "cdrom"]));
    let disks = d["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2, "{d}");
    assert_eq!(disks[0]["target"], "vda");
    assert_eq!(disks[0]["source"], "/var/lib/libvirt/images/test.qcow2");
    assert_eq!(disks[0]["format"], "qcow2");
    // The test driver makes up a size for every disk.
    assert!(disks[0]["capacity"].as_u64().unwrap() > 0, "{d}");
    assert!(disks[0]["size_error"].is_null(), "{d}");
    assert_eq!(disks[1]["device"], "cdrom");
    assert_eq!(disks[1]["read_only"], true);
    assert!(disks[1]["capacity"].is_null(), "an empty drive has no size");
    let nics = d["nics"].as_array().unwrap();
    assert_eq!(nics[0]["mac"], "52:54:00:12:34:56");
    assert_eq!(nics[0]["kind"], "network");
    assert_eq!(nics[0]["source"], "default");
    assert_eq!(nics[0]["link"], "up");
    assert_eq!(nics[1]["source"], "br0");
    assert_eq!(nics[1]["link"], "down");
    assert_eq!(d["graphics"][0]["kind"], "vnc");
    assert_eq!(d["graphics"][0]["port"], 5901);
    assert_eq!(d["graphics"][0]["listen"], "127.0.0.1");
    assert_eq!(d["serials"][0]["device"], "serial");
    assert_eq!(d["serials"][1]["device"], "console");
    let snaps = d["snapshots"].as_array().unwrap();
    let names: Vec<_> = snaps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["before-update", "after-update"], "oldest first");
    assert_eq!(snaps[0]["description"], "the guest before its update");
    assert_eq!(snaps[1]["parent"], "before-update");
    assert_eq!(snaps[1]["creation_time"], 1_767_312_000);
    assert!(d["snapshots_error"].is_null());

    let page = get(&server.url("/vms/test"), Some(&s), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    for want in [
        r#"<span id="vm-name">test</span>"#,
        r#"data-state="running""#,
        "action-force-off",
        "UEFI, Secure Boot",
        "pc-q35-7.2",
        "system_u:system_r:svirt_t:s0:c12,c345",
        r#"<tr data-disk="vda">"#,
        "/var/lib/libvirt/images/test.qcow2",
        "no medium",
        "52:54:00:ab:cd:ef",
        r#"class="link link-down""#,
        r#"<tr data-snapshot="after-update">"#,
        "2026-01-02 00:00 UTC",
        r#"id="vm-graph-cpu""#,
    ] {
        assert!(page.body.contains(want), "{want} not in {}", page.body);
    }
    assert!(
        !page.body.contains("action-start"),
        "a running VM offers no start"
    );
    // The list links each VM to its page.
    let list = get(&server.url("/vms"), Some(&s), &[]);
    assert!(
        list.body.contains(r#"<a href="/vms/test">test</a>"#),
        "{}",
        list.body
    );

    // A bare VM: no disks, NICs or snapshots, and the page says so.
    let idle = get(&server.url("/api/v1/vms/idle"), Some(&s), &[]).json();
    assert_eq!(idle["data"]["disks"], serde_json::json!([]));
    assert_eq!(idle["data"]["firmware"]["kind"], "bios");
    let page = get(&server.url("/vms/idle"), Some(&s), &[]);
    assert!(page.body.contains("No disks."), "{}", page.body);
    assert!(page.body.contains("No snapshots."), "{}", page.body);
}

#[test]
fn the_page_of_a_vm_that_is_not_there_is_a_404() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let r = get(&server.url("/vms/no-such-vm"), Some(&s), &[]);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.body
            .contains("no virtual machine named &quot;no-such-vm&quot;")
            || r.body
                .contains("no virtual machine named &#34;no-such-vm&#34;"),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"href="/vms""#), "a way back: {}", r.body);
    let weird = format!("/vms/{}", common::enc("x\u{0}y"));
    assert_eq!(get(&server.url(&weird), Some(&s), &[]).status, 404);
}
