//! The forms of the VM pages and of the storage pools and networks page against
//! libvirt's test driver (`fixtures/test-node.xml`: VMs "test" and "idle", the
//! network `default`, the pool `images`), each change checked through the API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, Session, enc, get, post_form};

/// Posts a form with the session's CSRF token and `fields`.
fn post(server: &Server, s: &Session, path: &str, fields: &[(&str, &str)]) -> common::Reply {
    let mut body = format!("csrf={}", enc(&s.csrf));
    for (k, v) in fields {
        body.push_str(&format!("&{k}={}", enc(v)));
    }
    post_form(&server.url(path), Some(s), &[], &body)
}

fn vm(server: &Server, s: &Session, name: &str) -> common::Reply {
    get(&server.url(&format!("/api/v1/vms/{name}")), Some(s), &[])
}

const NEW_VM: &[(&str, &str)] = &[
    ("name", "web1"),
    ("vcpus", "2"),
    ("memory_mib", "1024"),
    ("disk_gib", "8"),
    ("pool", "images"),
    ("network", "default"),
    ("bridge", ""),
    ("firmware", "bios"),
    ("iso", ""),
];

#[test]
fn the_create_form_makes_a_vm_and_a_bad_field_comes_back_named() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let list = get(&server.url("/vms"), Some(&s), &[]);
    assert!(list.body.contains(r#"href="/vms/new""#), "{}", list.body);

    let form = get(&server.url("/vms/new"), Some(&s), &[]);
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains(r#"<option value="images" selected>"#),
        "the running pool is offered: {}",
        form.body
    );
    assert!(form.body.contains(r#"<option value="default" selected>"#));
    assert!(form.body.contains("UEFI with Secure Boot"));
    assert!(form.body.contains(r#"data-pending="Creating…""#));

    // A bad number: the form again, as sent, with the field named and marked.
    let mut bad = NEW_VM.to_vec();
    bad[2] = ("memory_mib", "1");
    bad[0] = ("name", "web2");
    let r = post(&server, &s, "/vms/new", &bad);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("Memory (MiB): memory_mib 1 is out of range"),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"data-field="memory_mib""#));
    assert!(
        r.body
            .contains(r#"name="memory_mib" type="number" min="64" step="1" value="1" required aria-invalid="true""#),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"value="web2""#), "the name is kept");
    let mut bad = NEW_VM.to_vec();
    bad[1] = ("vcpus", "many");
    let r = post(&server, &s, "/vms/new", &bad);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("is not a whole number"), "{}", r.body);
    assert!(r.body.contains(r#"data-field="vcpus""#), "{}", r.body);
    // libvirt's refusal names its field too.
    let mut bad = NEW_VM.to_vec();
    bad[4] = ("pool", "nowhere");
    let r = post(&server, &s, "/vms/new", &bad);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains(r#"data-field="pool""#), "{}", r.body);
    assert!(r.body.contains("no storage pool named"), "{}", r.body);
    assert_eq!(vm(&server, &s, "web1").status, 404, "nothing was made");

    // The good form: a 303 to the new VM's page, and the API sees it.
    let mut good = NEW_VM.to_vec();
    good.push(("start", "on"));
    let r = post(&server, &s, "/vms/new", &good);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/vms/web1"));
    let r = vm(&server, &s, "web1");
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json()["data"].clone();
    assert_eq!(d["vcpus"], 2);
    assert_eq!(d["memory_kib"], 1024 * 1024);
    assert_eq!(d["state"], "running");
    let page = get(&server.url("/vms/web1"), Some(&s), &[]);
    assert_eq!(page.status, 200);
    // A second VM of that name is refused with the name marked.
    let r = post(&server, &s, "/vms/new", NEW_VM);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains(r#"data-field="name""#), "{}", r.body);
}

#[test]
fn a_limited_session_sees_the_forms_disabled() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let form = get(&server.url("/vms/new"), Some(&s), &[]);
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains(r#"id="vm-new-submit" disabled title="Needs administrative access""#)
    );
    let r = post(&server, &s, "/vms/new", NEW_VM);
    assert_eq!(r.status, 403, "{}", r.body);
    let page = get(&server.url("/vms/test"), Some(&s), &[]);
    assert!(
        page.body
            .contains(r#"id="vm-delete-submit" disabled title="Needs administrative access""#)
    );
}

#[test]
fn the_edit_form_changes_memory_vcpus_and_autostart() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let page = get(&server.url("/vms/idle"), Some(&s), &[]);
    assert!(
        page.body.contains(r#"action="/vms/idle/edit""#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"name="memory_mib" type="number" min="64" value="512""#)
    );
    assert!(page.body.contains("applies at its next start"));
    let r = post(
        &server,
        &s,
        "/vms/idle/edit",
        &[("vcpus", "1"), ("memory_mib", "256"), ("autostart", "on")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/vms/idle"));
    let d = vm(&server, &s, "idle").json()["data"].clone();
    assert_eq!(d["memory_kib"], 256 * 1024, "{d}");
    assert_eq!(d["autostart"], true);
    // Unchecked is off; a bad number is refused, naming the field.
    let r = post(
        &server,
        &s,
        "/vms/idle/edit",
        &[("vcpus", "1"), ("memory_mib", "256")],
    );
    assert_eq!(r.status, 303);
    assert_eq!(vm(&server, &s, "idle").json()["data"]["autostart"], false);
    let r = post(
        &server,
        &s,
        "/vms/idle/edit",
        &[("vcpus", "1"), ("memory_mib", "8")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("memory_mib 8 is out of range"),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"href="/vms/idle""#), "back to the VM");
}

fn snapshots(server: &Server, s: &Session) -> Vec<String> {
    vm(server, s, "test").json()["data"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn snapshots_are_taken_reverted_to_and_deleted_through_the_forms() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let page = get(&server.url("/vms/test"), Some(&s), &[]);
    assert!(
        page.body
            .contains(r#"action="/vms/test/snapshots/before-update/revert""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("Take snapshot"));

    let r = post(
        &server,
        &s,
        "/vms/test/snapshots",
        &[("name", "s1"), ("description", "before the test")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/vms/test#snapshots"));
    assert!(snapshots(&server, &s).contains(&"s1".to_string()));
    let r = post(&server, &s, "/vms/test/snapshots", &[("name", "bad/name")]);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("snapshot name"), "{}", r.body);

    // Revert asks first, and says what is lost.
    let r = post(&server, &s, "/vms/test/snapshots/s1/revert", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Its current state is"), "{}", r.body);
    assert!(r.body.contains(r#"name="confirm" value="yes""#));
    let r = post(
        &server,
        &s,
        "/vms/test/snapshots/s1/revert",
        &[("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.body);

    // Delete asks first too.
    let r = post(&server, &s, "/vms/test/snapshots/s1/delete", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Delete snapshot “s1”"), "{}", r.body);
    assert!(snapshots(&server, &s).contains(&"s1".to_string()));
    let r = post(
        &server,
        &s,
        "/vms/test/snapshots/s1/delete",
        &[("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!snapshots(&server, &s).contains(&"s1".to_string()));
    let r = post(
        &server,
        &s,
        "/vms/test/snapshots/s1/delete",
        &[("confirm", "yes")],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("has no snapshot"), "{}", r.body);
}

#[test]
fn delete_asks_for_the_name_and_refuses_a_wrong_one() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let page = get(&server.url("/vms/idle"), Some(&s), &[]);
    assert!(page.body.contains(r#"name="confirm_name""#));
    assert!(page.body.contains(r#"data-pending="Deleting…""#));

    let r = post(&server, &s, "/vms/idle/delete", &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("Type the VM's name to confirm"),
        "{}",
        r.body
    );
    let r = post(
        &server,
        &s,
        "/vms/idle/delete",
        &[("confirm_name", "test"), ("storage", "on")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("nothing was deleted"), "{}", r.body);
    assert!(r.body.contains(r#"name="storage" checked"#), "kept as sent");
    assert_eq!(vm(&server, &s, "idle").status, 200);
    assert_eq!(vm(&server, &s, "test").status, 200);

    let r = post(&server, &s, "/vms/idle/delete", &[("confirm_name", "idle")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/vms"));
    assert_eq!(vm(&server, &s, "idle").status, 404);
    let list = get(&server.url("/vms"), Some(&s), &[]);
    assert!(!list.body.contains(r#"data-vm="idle""#));
}

#[test]
fn the_pools_page_lists_starts_and_stops_pools_and_networks() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let page = |server: &Server| {
        let r = get(&server.url("/pools"), Some(&s), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    };
    let body = page(&server);
    assert!(
        body.contains("<h1>Storage pools and networks</h1>"),
        "{body}"
    );
    assert!(
        body.contains(r#"href="/pools" class="active""#),
        "in the sidebar"
    );
    assert!(body.contains(r#"<tr data-pool="images">"#), "{body}");
    assert!(body.contains("100.0 GiB"), "capacity: {body}");
    assert!(body.contains(r#"<tr data-network="default">"#));
    assert!(body.contains("virbr0") && body.contains("nat"));
    assert_eq!(body.matches(r#"<div class="table-wrap">"#).count(), 2);
    // Running ones offer a stop and no start.
    assert!(body.contains(r#"action="/pools/images/stop""#));
    assert!(!body.contains(r#"action="/pools/images/start""#));

    for (kind, name) in [("pools", "images"), ("virtual-networks", "default")] {
        let stop = format!("/{kind}/{name}/stop");
        let r = post(&server, &s, &stop, &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("Stop"), "{}", r.body);
        assert!(r.body.contains(r#"name="confirm" value="yes""#));
        assert!(
            page(&server).contains(&format!(r#"action="{stop}""#)),
            "not yet"
        );
        let r = post(&server, &s, &stop, &[("confirm", "yes")]);
        assert_eq!(r.status, 303, "{kind}: {}", r.body);
        assert_eq!(r.header("location"), Some("/pools"));
        let start = format!("/{kind}/{name}/start");
        let body = page(&server);
        assert!(body.contains(&format!(r#"action="{start}""#)), "{body}");
        assert!(!body.contains(&format!(r#"action="{stop}""#)));
        // A start needs no confirmation.
        let r = post(&server, &s, &start, &[]);
        assert_eq!(r.status, 303, "{kind}: {}", r.body);
        assert!(page(&server).contains(&format!(r#"action="{stop}""#)));
    }
    let r = post(&server, &s, "/pools/images/explode", &[("confirm", "yes")]);
    assert_eq!(r.status, 404);

    // A new directory pool.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("more");
    let r = post(
        &server,
        &s,
        "/pools",
        &[("name", "more"), ("path", path.to_str().unwrap())],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let body = page(&server);
    assert!(body.contains(r#"<tr data-pool="more">"#), "{body}");
    let r = post(
        &server,
        &s,
        "/pools",
        &[("name", "rel"), ("path", "relative/path")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("must be an absolute path"), "{}", r.body);
}
