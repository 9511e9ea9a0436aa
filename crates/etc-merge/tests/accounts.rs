//! `passwd`, `group`, `shadow`, `gshadow`: merged by entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use etc_merge::{
    AccountFile, AddedAccount, MergeError, MergeOptions, Meta, Node, Plan, RemapReason, Tree, plan,
};

const OLD_PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
games:x:5:60:games:/usr/games:/usr/sbin/nologin
messagebus:x:100:101::/nonexistent:/usr/sbin/nologin
";
const OLD_GROUP: &str = "\
root:x:0:
daemon:x:1:
games:x:60:
kvm:x:100:
messagebus:x:101:
";
const OLD_SHADOW: &str = "\
root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
games:*:19000:0:99999:7:::
messagebus:!:19000::::::
";
const OLD_GSHADOW: &str = "\
root:*::
daemon:*::
games:*::
kvm:!::
messagebus:!::
";

fn etc(passwd: &str, group: &str, shadow: &str, gshadow: &str) -> Tree {
    Tree::new(Meta::new(0o755))
        .with_file("passwd", passwd.as_bytes(), Meta::new(0o644))
        .with_file("group", group.as_bytes(), Meta::new(0o644))
        .with_file("shadow", shadow.as_bytes(), Meta::new(0o640).owner(0, 42))
        .with_file("gshadow", gshadow.as_bytes(), Meta::new(0o640).owner(0, 42))
}

fn old() -> Tree {
    etc(OLD_PASSWD, OLD_GROUP, OLD_SHADOW, OLD_GSHADOW)
}

/// The node: the admin set root's password, added alice (1000) and a
/// system account `svc-local` with uid/gid 102, put alice in kvm, and
/// deleted the games account.
fn current() -> Tree {
    etc(
        "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
messagebus:x:100:101::/nonexistent:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/bash
svc-local:x:102:102::/var/lib/svc-local:/usr/sbin/nologin
",
        "\
root:x:0:
daemon:x:1:
kvm:x:100:alice
messagebus:x:101:
alice:x:1000:
svc-local:x:102:
",
        "\
root:$y$j9T$adminhash:19500:0:99999:7:::
daemon:*:19000:0:99999:7:::
messagebus:!:19000::::::
alice:$y$j9T$alicehash:19500:0:99999:7:::
svc-local:!:19500::::::
",
        "\
root:*::
daemon:*::
kvm:!::alice
messagebus:!::
alice:!::
svc-local:!::
",
    )
}

/// The new image: adds a system account `hvmon` (uid/gid 102, taken on
/// the node), puts it in kvm, changes daemon's shell, ships its own root
/// shadow entry, and owns a config file by hvmon.
fn new() -> Tree {
    etc(
        "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/bin/false
games:x:5:60:games:/usr/games:/usr/sbin/nologin
messagebus:x:100:101::/nonexistent:/usr/sbin/nologin
hvmon:x:102:102:hvnode monitor:/var/lib/hvmon:/usr/sbin/nologin
",
        "\
root:x:0:
daemon:x:1:
games:x:60:
kvm:x:100:hvmon
messagebus:x:101:
hvmon:x:102:
",
        "\
root:*:19999:0:99999:7:::
daemon:*:19999:0:99999:7:::
games:*:19000:0:99999:7:::
messagebus:!:19000::::::
hvmon:!:19999::::::
",
        "\
root:*::
daemon:*::
games:*::
kvm:!::hvmon
messagebus:!::
hvmon:!::
",
    )
    .with_file(
        "hvmon/hvmon.conf",
        b"interval=10\n",
        Meta::new(0o640).owner(102, 102),
    )
}

fn merged(plan: &Plan, file: AccountFile) -> String {
    let tree = plan.to_tree();
    String::from_utf8(tree.account_text(file).expect("merged by entry").to_vec()).unwrap()
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn the_plan() -> Plan {
    plan(&old(), &current(), &new(), &MergeOptions::default()).unwrap()
}

#[test]
fn accounts_the_admin_added_survive() {
    let plan = the_plan();
    let passwd = merged(&plan, AccountFile::Passwd);
    assert!(passwd.contains("alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"));
    assert!(passwd.contains("svc-local:x:102:102::/var/lib/svc-local:/usr/sbin/nologin\n"));
    let group = merged(&plan, AccountFile::Group);
    assert!(group.contains("svc-local:x:102:\n"));
    let users = &plan.report.accounts.users;
    assert!(users.kept_admin.contains(&"alice".to_owned()));
}

#[test]
fn new_system_accounts_arrive_and_a_clash_moves_them_to_a_free_system_id() {
    let plan = the_plan();
    let passwd = merged(&plan, AccountFile::Passwd);
    // 102 belongs to the admin's svc-local: hvmon gets the top of 100..=999,
    // the same number for its user and its group.
    assert!(
        passwd.ends_with("hvmon:x:999:999:hvnode monitor:/var/lib/hvmon:/usr/sbin/nologin\n"),
        "{passwd}"
    );
    assert!(merged(&plan, AccountFile::Group).contains("hvmon:x:999:\n"));
    let users = &plan.report.accounts.users;
    assert_eq!(
        users.added,
        vec![AddedAccount {
            name: "hvmon".into(),
            id: 999
        }]
    );
    assert_eq!(users.remaps.len(), 1);
    assert_eq!(users.remaps[0].image_id, 102);
    assert_eq!(users.remaps[0].node_id, 999);
    assert_eq!(users.remaps[0].reason, RemapReason::IdTaken);
    assert_eq!(
        plan.report
            .accounts
            .uid_map()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(102, 999)]
    );
    assert_eq!(
        plan.report
            .accounts
            .gid_map()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(102, 999)]
    );
    // The new image's file owned by hvmon is hvmon's in the merged /etc.
    match plan.to_tree().get("hvmon/hvmon.conf") {
        Some(Node::File { meta, .. }) => assert_eq!((meta.uid, meta.gid), (999, 999)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn shadow_follows_passwd_and_admin_hashes_are_never_replaced() {
    let plan = the_plan();
    let shadow = merged(&plan, AccountFile::Shadow);
    assert_eq!(
        lines(&shadow),
        vec![
            // The admin's hash, although the image changed root's entry.
            "root:$y$j9T$adminhash:19500:0:99999:7:::",
            // Untouched on the node: the new image's entry.
            "daemon:*:19999:0:99999:7:::",
            "messagebus:!:19000::::::",
            "alice:$y$j9T$alicehash:19500:0:99999:7:::",
            "svc-local:!:19500::::::",
            "hvmon:!:19999::::::",
        ]
    );
    // games stays deleted, so its shadow entry does not come back either.
    assert!(!shadow.contains("games"));
    assert!(!merged(&plan, AccountFile::Passwd).contains("games"));
    assert_eq!(
        plan.report.accounts.users.deleted_kept_deleted,
        vec!["games".to_owned()]
    );
    let gshadow = merged(&plan, AccountFile::Gshadow);
    assert!(gshadow.ends_with("hvmon:!::\n"));
}

#[test]
fn group_members_merge_as_sets() {
    let plan = the_plan();
    let group = merged(&plan, AccountFile::Group);
    assert!(group.contains("kvm:x:100:alice,hvmon\n"), "{group}");
    assert!(merged(&plan, AccountFile::Gshadow).contains("kvm:!::alice,hvmon\n"));
    assert_eq!(plan.report.accounts.members_added.len(), 1);
    assert_eq!(plan.report.accounts.members_added[0].user, "hvmon");
}

#[test]
fn an_entry_the_admin_did_not_change_takes_the_new_images() {
    let plan = the_plan();
    assert!(
        merged(&plan, AccountFile::Passwd).contains("daemon:x:1:1:daemon:/usr/sbin:/bin/false\n")
    );
    assert_eq!(
        plan.report.accounts.users.updated_from_image,
        vec!["daemon".to_owned()]
    );
}

#[test]
fn an_account_the_image_renumbered_keeps_the_node_id() {
    // The new image numbers messagebus 103 (its group 104) and owns a file by it.
    let renumbered = |t: &str| t.replace("messagebus:x:100:101", "messagebus:x:103:104");
    let new = etc(
        &renumbered(OLD_PASSWD),
        &OLD_GROUP.replace("messagebus:x:101:", "messagebus:x:104:"),
        OLD_SHADOW,
        OLD_GSHADOW,
    )
    .with_file("dbus-1/x.conf", b"x", Meta::new(0o644).owner(103, 104));
    let plan = plan(&old(), &old(), &new, &MergeOptions::default()).unwrap();
    assert!(merged(&plan, AccountFile::Passwd).contains("messagebus:x:100:101:"));
    let remap = &plan.report.accounts.users.remaps[0];
    assert_eq!(
        (remap.image_id, remap.node_id, remap.reason),
        (103, 100, RemapReason::Drift)
    );
    match plan.to_tree().get("dbus-1/x.conf") {
        Some(Node::File { meta, .. }) => assert_eq!((meta.uid, meta.gid), (100, 101)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_account_the_image_dropped_is_kept() {
    let new = etc(
        &OLD_PASSWD.replace("games:x:5:60:games:/usr/games:/usr/sbin/nologin\n", ""),
        OLD_GROUP,
        OLD_SHADOW,
        OLD_GSHADOW,
    );
    let plan = plan(&old(), &old(), &new, &MergeOptions::default()).unwrap();
    assert_eq!(merged(&plan, AccountFile::Passwd), OLD_PASSWD);
    assert_eq!(
        plan.report.accounts.users.kept_dropped_by_image,
        vec!["games".to_owned()]
    );
}

#[test]
fn untouched_accounts_yield_the_new_files_exactly() {
    let new = new();
    let plan = plan(&old(), &old(), &new, &MergeOptions::default()).unwrap();
    for file in AccountFile::ALL {
        assert_eq!(
            plan.to_tree().account_text(file),
            new.account_text(file),
            "{file:?}"
        );
    }
}

#[test]
fn accounts_the_image_did_not_change_yield_the_nodes_files_exactly() {
    let current = current();
    let plan = plan(&old(), &current, &old(), &MergeOptions::default()).unwrap();
    for file in AccountFile::ALL {
        assert_eq!(
            plan.to_tree().account_text(file),
            current.account_text(file),
            "{file:?}"
        );
    }
    assert!(plan.report.accounts.users.remaps.is_empty());
}

#[test]
fn a_full_system_range_is_an_error_naming_the_account() {
    let opts = MergeOptions {
        system_uids: 102..=102,
        system_gids: 102..=102,
    };
    match plan(&old(), &current(), &new(), &opts) {
        Err(MergeError::NoFreeId { name, image_id, .. }) => {
            assert_eq!((name.as_str(), image_id), ("hvmon", 102));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn on_disk_the_clashing_accounts_files_are_chowned_and_shadow_keeps_its_mode() {
    use common::*;
    let t = Trees::new();
    for (root, tree) in [(&t.old, old()), (&t.current, current()), (&t.new, new())] {
        for file in AccountFile::ALL {
            let text = String::from_utf8(tree.account_text(file).unwrap().to_vec()).unwrap();
            let mode = if file.name().contains("shadow") {
                0o640
            } else {
                0o644
            };
            write(&root.join(file.name()), &text, mode);
        }
    }
    write(&t.new.join("hvmon/hvmon.conf"), "interval=10\n", 0o640);
    let root = can_chown();
    if root {
        std::os::unix::fs::chown(t.new.join("hvmon/hvmon.conf"), Some(102), Some(102)).unwrap();
    }
    let report = t.merge().unwrap();
    assert_eq!(report.accounts.files, AccountFile::ALL.to_vec());
    assert!(read(&t.out("passwd")).contains("hvmon:x:999:999:"));
    assert!(read(&t.out("shadow")).starts_with("root:$y$j9T$adminhash:"));
    assert_eq!(mode(&t.out("shadow")), 0o640);
    if root {
        assert_eq!(owner(&t.out("hvmon/hvmon.conf")), (999, 999));
    } else {
        eprintln!("chown needs root: the owner of hvmon.conf is not checked");
    }
}

#[test]
fn the_account_tools_backups_stay_the_nodes_without_a_conflict() {
    // Each side's shadow tools rewrote `shadow-`: the node's by adding an
    // admin, the new image's by being built on another day.
    let tree = |name: &str, text: &str| {
        Tree::new(Meta::new(0o755)).with_file(name, text.as_bytes(), Meta::new(0o600))
    };
    let old = tree("shadow-", "root:*:20792:0:99999:7:::\n");
    let current = tree(
        "shadow-",
        "root:*:20792:0:99999:7:::\nadmin:$6$x:20800:0:99999:7:::\n",
    );
    let new = tree("shadow-", "root:*:20793:0:99999:7:::\n");
    let p = plan(&old, &current, &new, &MergeOptions::default()).unwrap();
    assert!(p.report.conflicts.is_empty(), "{:?}", p.report.conflicts);
    assert_eq!(p.report.kept_admin, [std::path::PathBuf::from("shadow-")]);
    assert_eq!(p.to_tree(), current, "the node's copy, no shadow-.hvnew");
    // Any other file both sides changed is still a conflict.
    let p = plan(
        &tree("shadow.bak", "a"),
        &tree("shadow.bak", "b"),
        &tree("shadow.bak", "c"),
        &MergeOptions::default(),
    )
    .unwrap();
    assert_eq!(p.report.conflicts.len(), 1);
}
