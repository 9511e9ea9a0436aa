//! The rules, one test each, on in-memory trees: `plan` only, no disk.
//! Each case gives the three trees, the whole expected output, and what the
//! report must say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use etc_merge::{ConflictKind, MergeOptions, MergeReport, Meta, Node, SpecialKind, Tree, plan};
use std::path::PathBuf;

fn file(content: &str) -> Node {
    Node::file(content.as_bytes(), Meta::new(0o644))
}

fn file_meta(content: &str, meta: Meta) -> Node {
    Node::file(content.as_bytes(), meta)
}

fn link(target: &str) -> Node {
    Node::symlink(target, Meta::new(0o777))
}

fn dir() -> Node {
    Node::dir(Meta::new(0o755))
}

/// A tree with `entries` under a 0755 root; a few files nobody touches
/// ride along in every tree so each case also checks they stay put.
fn tree(entries: &[(&str, Node)]) -> Tree {
    let mut t = Tree::new(Meta::new(0o755))
        .with("untouched.conf", file("same everywhere"))
        .with("untouched.d/x.conf", file("same everywhere"));
    for (path, node) in entries {
        t.insert(path, node.clone());
    }
    t
}

fn paths(items: &[&str]) -> Vec<PathBuf> {
    items.iter().map(PathBuf::from).collect()
}

struct Case {
    old: Vec<(&'static str, Node)>,
    current: Vec<(&'static str, Node)>,
    new: Vec<(&'static str, Node)>,
    expect: Vec<(&'static str, Node)>,
    report: fn(&MergeReport),
}

fn run(case: Case) {
    let plan = plan(
        &tree(&case.old),
        &tree(&case.current),
        &tree(&case.new),
        &MergeOptions::default(),
    )
    .unwrap();
    let got = plan.to_tree();
    let want = tree(&case.expect);
    assert_eq!(
        got.root, want.root,
        "merged tree; report: {:#?}",
        plan.report
    );
    (case.report)(&plan.report);
}

fn conflict(report: &MergeReport, path: &str, kind: ConflictKind, beside: Option<&str>) {
    assert_eq!(report.conflicts.len(), 1, "{report:#?}");
    let c = &report.conflicts[0];
    assert_eq!(c.path, PathBuf::from(path));
    assert_eq!(c.kind, kind);
    assert_eq!(c.new_version, beside.map(PathBuf::from));
}

macro_rules! rules {
    ($($name:ident: $case:expr;)*) => {
        $( #[test] fn $name() { run($case) } )*
    };
}

rules! {
    untouched_file_takes_the_new_version: Case {
        old: vec![("a.conf", file("v1"))],
        current: vec![("a.conf", file("v1"))],
        new: vec![("a.conf", file("v2"))],
        expect: vec![("a.conf", file("v2"))],
        report: |r| {
            assert_eq!(r.took_new, paths(&["a.conf"]));
            assert!(r.conflicts.is_empty() && r.kept_admin.is_empty());
        },
    };
    file_only_the_admin_changed_keeps_the_admins: Case {
        old: vec![("a.conf", file("v1"))],
        current: vec![("a.conf", file("mine"))],
        new: vec![("a.conf", file("v1"))],
        expect: vec![("a.conf", file("mine"))],
        report: |r| {
            assert_eq!(r.kept_admin, paths(&["a.conf"]));
            assert!(r.conflicts.is_empty() && r.took_new.is_empty());
        },
    };
    file_both_changed_keeps_the_admins_with_the_new_beside: Case {
        old: vec![("ssh/sshd_config", file("v1"))],
        current: vec![("ssh/sshd_config", file("mine"))],
        new: vec![("ssh/sshd_config", file("v2"))],
        expect: vec![
            ("ssh/sshd_config", file("mine")),
            ("ssh/sshd_config.hvnew", file("v2")),
        ],
        report: |r| conflict(
            r,
            "ssh/sshd_config",
            ConflictKind::BothChanged,
            Some("ssh/sshd_config.hvnew"),
        ),
    };
    file_both_added_differently_is_a_conflict: Case {
        old: vec![],
        current: vec![("b.conf", file("mine"))],
        new: vec![("b.conf", file("image"))],
        expect: vec![("b.conf", file("mine")), ("b.conf.hvnew", file("image"))],
        report: |r| conflict(r, "b.conf", ConflictKind::BothAdded, Some("b.conf.hvnew")),
    };
    the_same_change_on_both_sides_is_no_conflict: Case {
        old: vec![("a.conf", file("v1"))],
        current: vec![("a.conf", file("v2"))],
        new: vec![("a.conf", file("v2"))],
        expect: vec![("a.conf", file("v2"))],
        report: |r| assert!(r.conflicts.is_empty(), "{r:#?}"),
    };
    a_file_the_admin_added_stays: Case {
        old: vec![],
        current: vec![("sysctl.d/90-local.conf", file("vm.swappiness=1"))],
        new: vec![],
        expect: vec![("sysctl.d/90-local.conf", file("vm.swappiness=1"))],
        report: |r| assert!(r.kept_admin.contains(&PathBuf::from("sysctl.d"))),
    };
    a_file_the_admin_deleted_stays_deleted: Case {
        old: vec![("sysctl.d/10-image.conf", file("v1"))],
        current: vec![("sysctl.d", dir())],
        new: vec![("sysctl.d/10-image.conf", file("v1"))],
        expect: vec![("sysctl.d", dir())],
        report: |r| {
            assert_eq!(r.deleted_kept_deleted, paths(&["sysctl.d/10-image.conf"]));
            assert!(r.conflicts.is_empty());
        },
    };
    a_deleted_file_the_image_changed_stays_deleted_and_is_reported: Case {
        old: vec![("sysctl.d/10-image.conf", file("v1"))],
        current: vec![("sysctl.d", dir())],
        new: vec![("sysctl.d/10-image.conf", file("v2"))],
        expect: vec![("sysctl.d", dir())],
        report: |r| {
            conflict(r, "sysctl.d/10-image.conf", ConflictKind::AdminDeletedImageChanged, None);
            assert_eq!(r.deleted_kept_deleted, paths(&["sysctl.d/10-image.conf"]));
        },
    };
    a_changed_file_the_image_removed_stays_and_is_reported: Case {
        old: vec![("a.conf", file("v1"))],
        current: vec![("a.conf", file("mine"))],
        new: vec![],
        expect: vec![("a.conf", file("mine"))],
        report: |r| conflict(r, "a.conf", ConflictKind::AdminChangedImageRemoved, None),
    };
    an_untouched_file_the_image_removed_goes: Case {
        old: vec![("old.conf", file("v1"))],
        current: vec![("old.conf", file("v1"))],
        new: vec![],
        expect: vec![],
        report: |r| assert_eq!(r.removed_by_image, paths(&["old.conf"])),
    };
    new_image_files_arrive: Case {
        old: vec![],
        current: vec![],
        new: vec![("new.d/n.conf", file("n")), ("top.conf", file("t"))],
        expect: vec![("new.d/n.conf", file("n")), ("top.conf", file("t"))],
        report: |r| assert_eq!(r.took_new, paths(&["new.d", "top.conf"])),
    };
    a_symlink_the_admin_retargeted_keeps_the_admins_target: Case {
        old: vec![("localtime", link("/usr/share/zoneinfo/UTC"))],
        current: vec![("localtime", link("/usr/share/zoneinfo/Europe/Paris"))],
        new: vec![("localtime", link("/usr/share/zoneinfo/UTC"))],
        expect: vec![("localtime", link("/usr/share/zoneinfo/Europe/Paris"))],
        report: |r| assert_eq!(r.kept_admin, paths(&["localtime"])),
    };
    an_untouched_symlink_follows_the_new_target: Case {
        old: vec![("resolv.conf", link("../run/a"))],
        current: vec![("resolv.conf", link("../run/a"))],
        new: vec![("resolv.conf", link("../run/b"))],
        expect: vec![("resolv.conf", link("../run/b"))],
        report: |r| assert_eq!(r.took_new, paths(&["resolv.conf"])),
    };
    a_symlink_both_retargeted_gets_the_new_one_beside: Case {
        old: vec![("l", link("a"))],
        current: vec![("l", link("b"))],
        new: vec![("l", link("c"))],
        expect: vec![("l", link("b")), ("l.hvnew", link("c"))],
        report: |r| conflict(r, "l", ConflictKind::BothChanged, Some("l.hvnew")),
    };
    a_type_change_by_the_admin_is_a_change: Case {
        old: vec![("resolv.conf", file("nameserver 1.1.1.1"))],
        current: vec![("resolv.conf", link("/run/resolv.conf"))],
        new: vec![("resolv.conf", file("nameserver 1.1.1.1"))],
        expect: vec![("resolv.conf", link("/run/resolv.conf"))],
        report: |r| assert_eq!(r.kept_admin, paths(&["resolv.conf"])),
    };
    a_type_change_by_the_image_is_taken: Case {
        old: vec![("x", file("v1"))],
        current: vec![("x", file("v1"))],
        new: vec![("x/inside.conf", file("now a directory"))],
        expect: vec![("x/inside.conf", file("now a directory"))],
        report: |r| assert_eq!(r.took_new, paths(&["x"])),
    };
    a_file_versus_directory_clash_keeps_the_admins_with_the_new_beside: Case {
        old: vec![("x", file("v1"))],
        current: vec![("x", file("mine"))],
        new: vec![("x/inside.conf", file("n"))],
        expect: vec![("x", file("mine")), ("x.hvnew/inside.conf", file("n"))],
        report: |r| conflict(r, "x", ConflictKind::BothChanged, Some("x.hvnew")),
    };
    a_directory_the_admin_removed_stays_removed: Case {
        old: vec![("cron.daily/a", file("a"))],
        current: vec![],
        new: vec![("cron.daily/a", file("a"))],
        expect: vec![],
        report: |r| {
            assert_eq!(r.deleted_kept_deleted, paths(&["cron.daily"]));
            assert!(r.conflicts.is_empty());
        },
    };
    a_removed_directory_stays_removed_when_the_image_adds_to_it: Case {
        old: vec![("cron.daily/a", file("a"))],
        current: vec![],
        new: vec![("cron.daily/a", file("a")), ("cron.daily/b", file("b"))],
        expect: vec![],
        report: |r| conflict(r, "cron.daily", ConflictKind::AdminDeletedImageChanged, None),
    };
    a_directory_the_image_removed_stays_when_the_admin_put_files_in_it: Case {
        old: vec![("app.d/default.conf", file("d"))],
        current: vec![("app.d/default.conf", file("d")), ("app.d/local.conf", file("l"))],
        new: vec![],
        expect: vec![("app.d/default.conf", file("d")), ("app.d/local.conf", file("l"))],
        report: |r| conflict(r, "app.d", ConflictKind::AdminChangedImageRemoved, None),
    };
    an_untouched_directory_the_image_removed_goes: Case {
        old: vec![("app.d/default.conf", file("d"))],
        current: vec![("app.d/default.conf", file("d"))],
        new: vec![],
        expect: vec![],
        report: |r| assert_eq!(r.removed_by_image, paths(&["app.d"])),
    };
    a_mode_change_by_the_admin_is_kept: Case {
        old: vec![("secret.conf", file_meta("s", Meta::new(0o644)))],
        current: vec![("secret.conf", file_meta("s", Meta::new(0o600)))],
        new: vec![("secret.conf", file_meta("s", Meta::new(0o644)))],
        expect: vec![("secret.conf", file_meta("s", Meta::new(0o600)))],
        report: |r| assert_eq!(r.kept_admin, paths(&["secret.conf"])),
    };
    a_mode_change_by_the_image_is_taken: Case {
        old: vec![("s.conf", file_meta("s", Meta::new(0o644)))],
        current: vec![("s.conf", file_meta("s", Meta::new(0o644)))],
        new: vec![("s.conf", file_meta("s", Meta::new(0o640).owner(0, 42)))],
        expect: vec![("s.conf", file_meta("s", Meta::new(0o640).owner(0, 42)))],
        report: |r| assert_eq!(r.took_new, paths(&["s.conf"])),
    };
    an_admins_mode_change_and_an_image_content_change_conflict: Case {
        old: vec![("a.conf", file_meta("v1", Meta::new(0o644)))],
        current: vec![("a.conf", file_meta("v1", Meta::new(0o600)))],
        new: vec![("a.conf", file_meta("v2", Meta::new(0o644)))],
        expect: vec![
            ("a.conf", file_meta("v1", Meta::new(0o600))),
            ("a.conf.hvnew", file_meta("v2", Meta::new(0o644))),
        ],
        report: |r| conflict(r, "a.conf", ConflictKind::BothChanged, Some("a.conf.hvnew")),
    };
    an_owner_change_by_the_admin_is_kept: Case {
        old: vec![("o.conf", file("x"))],
        current: vec![("o.conf", file_meta("x", Meta::new(0o644).owner(1000, 1000)))],
        new: vec![("o.conf", file("x"))],
        expect: vec![("o.conf", file_meta("x", Meta::new(0o644).owner(1000, 1000)))],
        report: |r| assert_eq!(r.kept_admin, paths(&["o.conf"])),
    };
    an_xattr_change_by_the_admin_is_kept: Case {
        old: vec![("x.conf", file("x"))],
        current: vec![("x.conf", file_meta("x", Meta::new(0o644).xattr("user.note", "mine")))],
        new: vec![("x.conf", file("x"))],
        expect: vec![("x.conf", file_meta("x", Meta::new(0o644).xattr("user.note", "mine")))],
        report: |r| assert_eq!(r.kept_admin, paths(&["x.conf"])),
    };
    a_selinux_relabel_by_the_image_is_taken: Case {
        old: vec![("l.conf", file_meta("x", Meta::new(0o644).xattr("security.selinux", "a_t")))],
        current: vec![("l.conf", file_meta("x", Meta::new(0o644).xattr("security.selinux", "a_t")))],
        new: vec![("l.conf", file_meta("x", Meta::new(0o644).xattr("security.selinux", "b_t")))],
        expect: vec![("l.conf", file_meta("x", Meta::new(0o644).xattr("security.selinux", "b_t")))],
        report: |r| assert_eq!(r.took_new, paths(&["l.conf"])),
    };
    a_folder_both_added_with_labels_of_two_selinux_users_is_no_conflict: Case {
        old: vec![],
        current: vec![
            ("k", Node::dir(Meta::new(0o755).xattr("security.selinux", "unconfined_u:object_r:etc_t:s0\0"))),
            ("k/admin.pub", file("a")),
        ],
        new: vec![
            ("k", Node::dir(Meta::new(0o755).xattr("security.selinux", "system_u:object_r:etc_t:s0"))),
            ("k/image.pub", file("i")),
        ],
        expect: vec![
            ("k", Node::dir(Meta::new(0o755).xattr("security.selinux", "system_u:object_r:etc_t:s0"))),
            ("k/admin.pub", file("a")),
            ("k/image.pub", file("i")),
        ],
        report: |r| {
            assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
            assert_eq!(r.took_new, paths(&["k/image.pub"]));
            assert_eq!(r.kept_admin, paths(&["k/admin.pub"]));
        },
    };
    a_selinux_type_change_on_both_sides_is_a_conflict: Case {
        old: vec![("k", Node::dir(Meta::new(0o755).xattr("security.selinux", "system_u:object_r:etc_t:s0")))],
        current: vec![("k", Node::dir(Meta::new(0o755).xattr("security.selinux", "system_u:object_r:a_t:s0")))],
        new: vec![("k", Node::dir(Meta::new(0o755).xattr("security.selinux", "system_u:object_r:b_t:s0")))],
        expect: vec![("k", Node::dir(Meta::new(0o755).xattr("security.selinux", "system_u:object_r:a_t:s0")))],
        report: |r| assert_eq!(r.conflicts.len(), 1, "{:?}", r.conflicts),
    };
    a_directory_mode_the_admin_changed_is_kept_while_its_entries_merge: Case {
        old: vec![("d", dir()), ("d/a", file("a1"))],
        current: vec![("d", Node::dir(Meta::new(0o700))), ("d/a", file("a1"))],
        new: vec![("d", dir()), ("d/a", file("a2")), ("d/b", file("b"))],
        expect: vec![("d", Node::dir(Meta::new(0o700))), ("d/a", file("a2")), ("d/b", file("b"))],
        report: |r| {
            assert_eq!(r.kept_admin, paths(&["d"]));
            assert_eq!(r.took_new, paths(&["d/a", "d/b"]));
        },
    };
    a_directory_both_rechmoded_keeps_the_admins_mode: Case {
        old: vec![("d", dir())],
        current: vec![("d", Node::dir(Meta::new(0o700)))],
        new: vec![("d", Node::dir(Meta::new(0o750)))],
        expect: vec![("d", Node::dir(Meta::new(0o700)))],
        report: |r| conflict(r, "d", ConflictKind::BothChangedMetadata, None),
    };
    a_stale_hvnew_is_replaced_by_the_fresh_one: Case {
        old: vec![("a.conf", file("v1"))],
        current: vec![("a.conf", file("mine")), ("a.conf.hvnew", file("v1.5 from last time"))],
        new: vec![("a.conf", file("v2"))],
        expect: vec![("a.conf", file("mine")), ("a.conf.hvnew", file("v2"))],
        report: |r| {
            conflict(r, "a.conf", ConflictKind::BothChanged, Some("a.conf.hvnew"));
            assert_eq!(r.replaced_by_hvnew, paths(&["a.conf.hvnew"]));
        },
    };
    special_files_are_skipped_and_reported: Case {
        old: vec![],
        current: vec![],
        new: vec![("initctl", Node::Special { meta: Meta::new(0o600), kind: SpecialKind::Fifo })],
        expect: vec![],
        report: |r| {
            assert_eq!(r.skipped.len(), 1);
            assert_eq!(r.skipped[0].kind, "fifo");
        },
    };
}

#[test]
fn the_report_serialises_to_json_with_relative_paths() {
    let plan = plan(
        &tree(&[("a.conf", file("v1"))]),
        &tree(&[("a.conf", file("mine"))]),
        &tree(&[("a.conf", file("v2"))]),
        &MergeOptions::default(),
    )
    .unwrap();
    let json = serde_json::to_value(&plan.report).unwrap();
    assert_eq!(json["conflicts"][0]["path"], "a.conf");
    assert_eq!(json["conflicts"][0]["kind"], "both_changed");
    assert_eq!(json["conflicts"][0]["new_version"], "a.conf.hvnew");
    let back: MergeReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, plan.report);
    assert!(back.has_conflicts());
}
