//! Nothing half-written, and errors that name the path and the next step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::*;
use etc_merge::{Inputs, MergeError, MergeOptions, Side, apply, plan, scan};

#[test]
fn a_non_empty_output_is_refused_and_left_alone() {
    let t = Trees::new();
    write(&t.new.join("a"), "a\n", 0o644);
    write(&t.out.join("precious"), "p\n", 0o644);
    let err = t.merge().unwrap_err();
    assert!(matches!(err, MergeError::OutputNotEmpty { .. }), "{err}");
    assert!(err.to_string().contains(&t.out.display().to_string()));
    assert_eq!(read(&t.out.join("precious")), "p\n");
    assert!(!exists(&t.out.join("a")));
}

#[test]
fn an_empty_output_directory_is_filled() {
    let t = Trees::new();
    write(&t.new.join("a"), "a\n", 0o644);
    fs::create_dir(&t.out).unwrap();
    t.merge().unwrap();
    assert_eq!(read(&t.out("a")), "a\n");
}

#[test]
fn an_output_inside_an_input_is_refused() {
    let t = Trees::new();
    let out = t.current.join("merged");
    let err = etc_merge::merge(&t.old, &t.current, &t.new, &out).unwrap_err();
    assert!(
        matches!(
            err,
            MergeError::OutputOverlapsInput {
                side: Side::Current,
                ..
            }
        ),
        "{err}"
    );
    assert!(!exists(&out));
}

#[test]
fn a_missing_input_names_the_tree_and_the_path() {
    let t = Trees::new();
    fs::remove_dir(&t.old).unwrap();
    let err = t.merge().unwrap_err();
    match &err {
        MergeError::Read { side, path, .. } => {
            assert_eq!(*side, Side::Old);
            assert_eq!(path, &t.old);
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(text.contains("old image's /etc"), "{text}");
    assert!(text.contains("run the update again"), "{text}");
    assert!(!exists(&t.out));
}

#[test]
fn an_unreadable_file_names_its_path() {
    if can_chown() {
        eprintln!("root reads every file: skipped");
        return;
    }
    let t = Trees::new();
    write(&t.current.join("sub/locked"), "x\n", 0o000);
    let err = t.merge().unwrap_err();
    match &err {
        MergeError::Read { side, path, .. } => {
            assert_eq!(*side, Side::Current);
            assert_eq!(path, &t.current.join("sub/locked"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_dangling_symlink_is_copied_not_followed() {
    let t = Trees::new();
    symlink("/nonexistent-target", &t.current.join("sub/dangling"));
    t.merge().unwrap();
    assert_eq!(
        fs::read_link(t.out("sub/dangling")).unwrap().to_str(),
        Some("/nonexistent-target")
    );
}

#[test]
fn a_file_edited_during_the_merge_fails_it_and_the_output_is_removed() {
    let t = Trees::new();
    for i in 0..5 {
        write(&t.current.join(format!("dir/f{i}")), "v\n", 0o644);
    }
    write(&t.current.join("edited"), "before\n", 0o644);
    let trees = [Side::Old, Side::Current, Side::New].map(|side| {
        let root = match side {
            Side::Old => &t.old,
            Side::Current => &t.current,
            Side::New => &t.new,
        };
        scan(root, side).unwrap()
    });
    let plan = plan(&trees[0], &trees[1], &trees[2], &MergeOptions::default()).unwrap();
    write(&t.current.join("edited"), "after!\n", 0o644);
    let inputs = Inputs {
        old: &t.old,
        current: &t.current,
        new: &t.new,
    };
    let err = apply(&plan, inputs, &t.out).unwrap_err();
    match &err {
        MergeError::SourceChanged { side, path } => {
            assert_eq!(*side, Side::Current);
            assert_eq!(path, &t.current.join("edited"));
        }
        other => panic!("{other}"),
    }
    assert!(!exists(&t.out), "the partial output was removed");

    // A pre-existing (empty) output directory stays, emptied.
    fs::create_dir(&t.out).unwrap();
    assert!(apply(&plan, inputs, &t.out).is_err());
    assert!(exists(&t.out));
    assert_eq!(fs::read_dir(&t.out).unwrap().count(), 0);
}
