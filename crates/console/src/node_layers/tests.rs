#![allow(clippy::unwrap_used)]

use super::fixtures::{NEW, OLD, mount, snap, updated_node};
use super::*;
use crate::pages::{self, PageCtx};
use askama::Template;

/// The Node page's view of `f`: the layers, and the layered root's health
/// as `views::node` adds it (the host's checks are the health crate's).
fn node_view(f: Facts) -> LayersView {
    let mut v = view(&snap(f.clone()));
    v.health = v
        .installed
        .then(|| Report::new(health::layered::groups(&f)));
    v
}

/// The Node page of a node whose layers are `layers`.
fn node_page(layers: LayersView) -> pages::NodePage {
    pages::NodePage {
        page: PageCtx {
            title: "Node",
            active: "/node",
            user: "root".into(),
            csrf: "tok".into(),
            hostname: "node1".into(),
            admin: true,
        },
        image: NEW.into(),
        os: "Debian".into(),
        kernel: "6.1".into(),
        selinux: hostinfo::Selinux {
            mode: "enforcing".into(),
            configured_mode: Some("enforcing".into()),
            policy: Some("default".into()),
        },
        libvirt_uri: "qemu:///system".into(),
        secmodels: "selinux".into(),
        registration: "Not registered with an engine".into(),
        firmware: "UEFI, Secure Boot on (kernel lockdown: integrity)".into(),
        layers,
    }
}

#[test]
fn an_updated_node_shows_both_layers_newest_first() {
    let v = node_view(updated_node());
    assert!(v.installed);
    assert_eq!(v.notice, None);
    assert_eq!(v.image.as_deref(), Some(NEW));
    assert_eq!(v.current_layer.as_deref(), Some(&*format!("{NEW}+1")));
    assert_eq!(v.default_entry, v.current_layer);
    assert_eq!(v.next_entry, None);
    assert_eq!(v.bases, [NEW, OLD]);
    let names: Vec<&str> = v.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, [format!("{NEW}+1"), format!("{OLD}+1")]);
    let (new, old) = (&v.layers[0], &v.layers[1]);
    assert!(new.booted && new.default && !new.next);
    assert_eq!(new.base, NEW);
    assert!(!new.can_boot_next, "the next boot starts it anyway");
    assert!(!old.booted && !old.default);
    assert!(old.can_boot_next, "the rollback candidate");
    assert_eq!(
        old.boot_entry.as_deref(),
        Some("hvnode 1.0 (0.20261125.0+1)")
    );
    let s = v.store.as_ref().unwrap();
    assert_eq!(s.description, "LVM thin pool hvnode/pool00");
    assert_eq!(s.size.as_deref(), Some("20.0 GiB"));
    assert_eq!(
        (s.data_percent, s.metadata_percent),
        (Some(42.25), Some(7.5))
    );
    assert!(s.warnings.is_empty());
    assert_eq!(v.health_ok(), Some(true), "{:?}", v.health);
}

#[test]
fn a_pending_one_time_entry_is_shown_and_not_offered_again() {
    let mut f = updated_node();
    f.grubenv.push(("next_entry".into(), format!("{OLD}+1")));
    let v = node_view(f);
    assert_eq!(v.next_entry.as_deref(), Some(&*format!("{OLD}+1")));
    let (new, old) = (&v.layers[0], &v.layers[1]);
    assert!(old.next && !old.can_boot_next);
    assert!(
        new.default && new.can_boot_next,
        "back to the default next time"
    );
    // grub-editenv leaves `next_entry=` behind after the one boot: no entry.
    let mut f = updated_node();
    f.grubenv.push(("next_entry".into(), String::new()));
    assert_eq!(node_view(f).next_entry, None);
}

#[test]
fn a_full_pool_warns_and_fails_the_health_check_with_its_detail() {
    let mut f = updated_node();
    f.lvs[0].data_percent = "85.00".into();
    f.lvs[0].metadata_percent = "80.0".into();
    let v = node_view(f);
    let s = v.store.as_ref().unwrap();
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("data 85.0 % used, above 80 %"));
    assert!(s.warnings[1].contains("metadata 80.0 %"));
    assert_eq!(v.health_ok(), Some(false));
    let failed: Vec<(&str, &str)> = v
        .health
        .iter()
        .flat_map(|r| &r.groups)
        .flat_map(|g| &g.checks)
        .filter(|c| c.status == health::Status::Failed)
        .map(|c| (c.name.as_str(), c.detail.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            ("Thin pool data", "85.0% used (limit 80%)"),
            ("Thin pool metadata", "80.0% used (limit 80%)")
        ]
    );
}

#[test]
fn btrfs_shows_its_space() {
    let mut f = updated_node();
    f.backend = Some(Backend::Btrfs);
    f.lvs.clear();
    f.store_used_percent = Some(91.0);
    let s = node_view(f).store.unwrap();
    assert_eq!(s.backend, "btrfs");
    assert_eq!(s.vg, None);
    assert_eq!(s.used_percent, Some(91.0));
    assert!(s.warnings[0].contains("91 % used"), "{:?}", s.warnings);
}

#[test]
fn a_live_system_says_so_instead_of_failing_checks() {
    // What `gather` records on the build host or the live ISO.
    let live = Facts {
        mounts: vec![mount("/", "/dev/vda")],
        ..Facts::default()
    };
    let v = node_view(live);
    assert!(!v.installed);
    assert_eq!(v.notice.as_deref(), Some(NOT_INSTALLED));
    assert!(v.layers.is_empty() && v.store.is_none() && v.health.is_none());
    // The live ISO on a machine with an installed disk: the store is seen, but
    // nothing can be chosen from here.
    let mut on_disk = updated_node();
    on_disk.current_layer = None;
    let v = node_view(on_disk);
    assert!(!v.installed);
    assert!(v.notice.unwrap().contains("found on this machine's disks"));
    assert_eq!(v.layers.len(), 2);
    assert!(v.layers.iter().all(|l| !l.can_boot_next && !l.booted));
}

#[test]
fn a_gathering_failure_is_a_message() {
    let v = view(&Snapshot {
        facts: Err("listing mounts: findmnt: not found".into()),
        image: None,
    });
    assert!(!v.installed);
    let e = v.error.unwrap();
    assert!(
        e.contains("findmnt: not found") && e.contains("nodectl check"),
        "{e}"
    );
}

#[test]
fn only_a_bootable_layer_of_an_installed_node_can_be_boot_next() {
    let f = updated_node();
    let old = format!("{OLD}+1");
    let status = |f: &Facts, n: &str| {
        parse_layer(n)
            .and_then(|l| boot_next_target(f, &l))
            .unwrap_err()
            .status()
            .as_u16()
    };
    boot_next_target(&f, &parse_layer(&old).unwrap()).unwrap();
    assert_eq!(status(&f, "../etc"), 400);
    assert_eq!(status(&f, OLD), 400, "a base is not a layer");
    assert_eq!(status(&f, &format!("{OLD}+7")), 404);
    let mut no_entry = updated_node();
    no_entry.boot_entries.retain(|e| e.id != old);
    assert_eq!(status(&no_entry, &old), 409);
    let mut live = updated_node();
    live.current_layer = None;
    let e = boot_next_target(&live, &parse_layer(&old).unwrap()).unwrap_err();
    assert_eq!(e.status().as_u16(), 409);
    assert!(e.to_string().starts_with("not installed on a layered root"));
}

#[test]
fn the_node_page_shows_an_installed_nodes_layers() {
    let mut facts = updated_node();
    facts.lvs[0].data_percent = "85.00".into();
    let t = node_page(node_view(facts));
    let html = t.render().unwrap();
    assert!(!html.contains("layers-notice"), "an installed node");
    for want in [
        r#"<dd id="node-firmware">UEFI, Secure Boot on (kernel lockdown: integrity)</dd>"#,
        r#"<dd class="mono" id="layers-current">hvnode-1.1-0.20261201.0+1</dd>"#,
        r#"<dd class="mono" id="layers-default">hvnode-1.1-0.20261201.0+1</dd>"#,
        r#"<dd id="layers-store">LVM thin pool hvnode/pool00</dd>"#,
        "Thin pool data 85.0 % used, above 80 %",
        r#"id="layers-health-status">FAILED<"#,
        r#"<details class="check-group" open>"#,
        "Thin pool data <span class=\"muted\">(85.0% used (limit 80%))</span>",
        r#"<tr data-layer="hvnode-1.0-0.20261125.0+1">"#,
        "hvnode 1.0 (0.20261125.0+1)",
        r#"<form method="post" action="/node/layers/hvnode-1.0-0.20261125.0%2B1/boot-next"><input type="hidden" name="csrf" value="tok">"#,
    ] {
        assert!(html.contains(want), "{want}\n{html}");
    }
    assert_eq!(
        html.matches("Boot this layer next time").count(),
        1,
        "only the layer that is not booted next anyway"
    );
}

#[test]
fn a_trial_a_failed_trial_and_open_conflicts_are_shown_with_the_rollback() {
    const MID: &str = "hvnode-1.0-0.20261130.0";
    let mut f = updated_node();
    let mid: LayerName = format!("{MID}+1").parse().unwrap();
    f.inventory.as_mut().unwrap().layers.push(mid.clone());
    f.grubenv
        .push((layers::boot::TRIAL_KEY.into(), format!("{NEW}+1")));
    f.trials.push(layers::history::TrialRecord {
        layer: mid.to_string(),
        passed: false,
        reason: "the web console does not answer on port 9090".into(),
        at: "2026-12-04 10:00:00".into(),
    });
    f.etc_conflicts = vec!["/etc/ssh/sshd_config.d/hvnode.conf".into()];
    let v = node_view(f);
    assert_eq!(v.trial.as_deref(), Some(&*format!("{NEW}+1")));
    assert_eq!(v.failed_trials.len(), 1);
    let row = |n: &str| v.layers.iter().find(|l| l.name == n).unwrap();
    assert!(row(&format!("{NEW}+1")).trial);
    assert!(row(&mid.to_string()).failed);
    // The failed layer has no boot entry here, and would be skipped anyway.
    assert_eq!(v.rollback_to.as_deref(), Some(&*format!("{OLD}+1")));
    let t = node_page(v);
    let html = t.render().unwrap();
    for want in [
        r#"id="layers-trial">hvnode-1.1-0.20261201.0+1 "#,
        "Update hvnode-1.0-0.20261130.0+1 failed its trial boot (2026-12-04 10:00:00 UTC): the web console does not answer on port 9090",
        r#"<li class="mono">/etc/ssh/sshd_config.d/hvnode.conf</li>"#,
        r#"<span class="bad">failed its trial</span>"#,
        r#"<form method="post" action="/node/rollback"><input type="hidden" name="csrf" value="tok"><button type="submit" id="action-rollback">Roll back to hvnode-1.0-0.20261125.0+1</button>"#,
    ] {
        assert!(html.contains(want), "{want}\n{html}");
    }
}

#[test]
fn plain_shows_its_store_in_words_and_its_space() {
    let mut f = updated_node();
    f.backend = Some(Backend::Plain);
    f.lvs.clear();
    f.vg.clear();
    f.store_used_percent = Some(85.0);
    let v = node_view(f);
    let s = v.store.as_ref().unwrap();
    assert_eq!(s.backend, "plain");
    assert_eq!(
        s.description,
        "XFS folders with reflinked layers (hvnode/bases, hvnode/layers)"
    );
    assert_eq!((&s.vg, &s.pool, &s.size), (&None, &None, &None));
    assert_eq!(s.used_percent, Some(85.0));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].contains("85 % used, above 80 %"),
        "{:?}",
        s.warnings
    );
    let storage = v
        .health
        .iter()
        .flat_map(|r| &r.groups)
        .find(|g| g.name == "Storage (plain)")
        .unwrap();
    let space = storage.checks.iter().find(|c| c.name == "Space").unwrap();
    assert_eq!(space.status, health::Status::Failed);
    assert_eq!(space.detail, "85% used (limit 80%)");
}

#[test]
fn a_limited_session_sees_the_mode_and_the_actions_disabled() {
    let mut t = node_page(node_view(updated_node()));
    let admin = t.render().unwrap();
    assert!(
        admin.contains(r#"id="access-mode" data-admin="1""#),
        "{admin}"
    );
    assert!(admin.contains(r#"action="/session/admin/off""#));
    assert!(!admin.contains("limited-banner"));
    assert!(!admin.contains("disabled"), "{admin}");
    t.page.admin = false;
    let limited = t.render().unwrap();
    for want in [
        r#"<body data-page="/node" data-admin="0">"#,
        r#"<summary id="access-mode" data-admin="0""#,
        r#"<form method="post" action="/session/admin" class="access-form">"#,
        r#"<input type="hidden" name="back" value="/node">"#,
        r#"<input type="password" id="admin-password" name="password""#,
        r#"id="limited-banner""#,
        r#"<button type="submit" class="action-boot-next" disabled title="Needs administrative access">"#,
        r#"<button type="submit" id="action-update-check" disabled title="Needs administrative access">"#,
    ] {
        assert!(limited.contains(want), "{want}\n{limited}");
    }
    assert!(!limited.contains(r#"action="/session/admin/off""#));
}
