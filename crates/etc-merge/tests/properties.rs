//! The merge's two fixed points, on random trees and exhaustively on one
//! path: an admin who changed nothing gets the new image exactly; an image
//! that changed nothing leaves the node exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use etc_merge::{MergeOptions, Meta, Node, Tree, plan};
use proptest::prelude::*;

fn merged(old: &Tree, current: &Tree, new: &Tree) -> Tree {
    plan(old, current, new, &MergeOptions::default())
        .unwrap()
        .to_tree()
}

fn node() -> impl Strategy<Value = Node> {
    let meta = (
        prop::sample::select(vec![0o644u32, 0o600, 0o4755]),
        prop::sample::select(vec![0u32, 1000]),
        prop::option::of(prop::sample::select(vec!["a", "b"])),
    )
        .prop_map(|(mode, uid, label)| {
            let meta = Meta::new(mode).owner(uid, uid);
            match label {
                Some(l) => meta.xattr("security.selinux", l),
                None => meta,
            }
        });
    (0..3u8, meta, prop::sample::select(vec!["x", "y"])).prop_map(|(kind, meta, s)| match kind {
        0 => Node::file(s.as_bytes(), meta),
        1 => Node::symlink(s, meta),
        _ => Node::dir(meta),
    })
}

fn tree() -> impl Strategy<Value = Tree> {
    let path = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|parts| parts.join("/"));
    prop::collection::vec((path, node()), 0..10).prop_map(|entries| {
        let mut t = Tree::new(Meta::new(0o755));
        for (path, node) in entries {
            t.insert(path, node);
        }
        t
    })
}

proptest! {
    #[test]
    fn an_untouched_node_gets_the_new_image_exactly(old in tree(), new in tree()) {
        prop_assert_eq!(merged(&old, &old, &new).root, new.root);
    }

    #[test]
    fn an_unchanged_image_leaves_the_node_exactly(old in tree(), current in tree()) {
        prop_assert_eq!(merged(&old, &current, &old).root, current.root);
    }

    #[test]
    fn the_same_change_on_both_sides_is_that_change(old in tree(), both in tree()) {
        prop_assert_eq!(merged(&old, &both, &both).root, both.root);
    }

    #[test]
    fn the_root_metadata_follows_the_rules(old in tree(), new in tree()) {
        let mut current = old.clone();
        current.root.meta = Meta::new(0o700);
        prop_assert_eq!(merged(&old, &current, &new).root.meta, Meta::new(0o700));
    }
}

/// Every version one path can have, including none.
fn versions() -> Vec<Option<Node>> {
    let with_child = |mode, content: &str| {
        let mut t = Tree::new(Meta::new(0o755));
        t.insert("d", Node::dir(Meta::new(mode)));
        t.insert("d/child", Node::file(content.as_bytes(), Meta::new(0o644)));
        t.get("d").cloned()
    };
    vec![
        None,
        Some(Node::file(b"A", Meta::new(0o644))),
        Some(Node::file(b"B", Meta::new(0o644))),
        Some(Node::file(b"A", Meta::new(0o600))),
        Some(Node::file(b"A", Meta::new(0o644).owner(1000, 1000))),
        Some(Node::file(b"A", Meta::new(0o644).xattr("user.k", "v"))),
        Some(Node::symlink("A", Meta::new(0o777))),
        Some(Node::symlink("B", Meta::new(0o777))),
        Some(Node::dir(Meta::new(0o755))),
        with_child(0o755, "A"),
        with_child(0o755, "B"),
        with_child(0o700, "A"),
    ]
}

fn one(path: &str, node: &Option<Node>) -> Tree {
    let mut t = Tree::new(Meta::new(0o755));
    if let Some(node) = node {
        t.insert(path, node.clone());
    }
    t
}

#[test]
fn every_combination_of_versions_of_one_path_follows_the_rules() {
    let versions = versions();
    let mut checked = 0;
    for o in &versions {
        for c in &versions {
            for n in &versions {
                let (ot, ct, nt) = (one("d", o), one("d", c), one("d", n));
                let plan = plan(&ot, &ct, &nt, &MergeOptions::default()).unwrap();
                let out = plan.to_tree();
                let ctx = format!("o={o:?}\nc={c:?}\nn={n:?}\nreport={:#?}", plan.report);
                if c == o {
                    assert_eq!(out.root, nt.root, "untouched → new\n{ctx}");
                } else if n == o || c == n {
                    assert_eq!(
                        out.root, ct.root,
                        "image unchanged or same change → node\n{ctx}"
                    );
                } else if !matches!((c, n), (Some(Node::Dir(_)), Some(Node::Dir(_)))) {
                    // Both changed: the admin's version, the new beside it.
                    assert_eq!(out.get("d"), c.as_ref(), "admin wins\n{ctx}");
                    let beside = out.get("d.hvnew");
                    match (c, n) {
                        (Some(_), Some(n)) => assert_eq!(beside, Some(n), "{ctx}"),
                        _ => assert_eq!(beside, None, "{ctx}"),
                    }
                    assert_eq!(plan.report.conflicts.len(), 1, "{ctx}");
                    assert_eq!(plan.report.conflicts[0].path.to_str(), Some("d"));
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, versions.len().pow(3));
}

#[test]
fn on_disk_an_untouched_node_gets_the_new_image_exactly() {
    use common::*;
    let t = Trees::new();
    t.everywhere("same", "s\n", 0o644);
    write(&t.old.join("changed"), "1\n", 0o644);
    write(&t.current.join("changed"), "1\n", 0o644);
    write(&t.new.join("changed"), "2\n", 0o600);
    write(&t.old.join("gone/x"), "x\n", 0o644);
    write(&t.current.join("gone/x"), "x\n", 0o644);
    symlink("same", &t.new.join("link"));
    write(&t.new.join("added.d/a"), "a\n", 0o640);
    t.merge().unwrap();
    let out = etc_merge::scan(&t.out, etc_merge::Side::New).unwrap();
    let new = etc_merge::scan(&t.new, etc_merge::Side::New).unwrap();
    assert_eq!(out.root, new.root);
}

#[test]
fn on_disk_an_unchanged_image_leaves_the_node_exactly() {
    use common::*;
    let t = Trees::new();
    t.everywhere("same", "s\n", 0o644);
    write(&t.old.join("changed"), "1\n", 0o644);
    write(&t.current.join("changed"), "mine\n", 0o600);
    write(&t.new.join("changed"), "1\n", 0o644);
    write(&t.current.join("local.d/a"), "a\n", 0o640);
    symlink("same", &t.current.join("link"));
    t.merge().unwrap();
    let out = etc_merge::scan(&t.out, etc_merge::Side::Current).unwrap();
    let current = etc_merge::scan(&t.current, etc_merge::Side::Current).unwrap();
    assert_eq!(out.root, current.root);
}
