//! The `labels` step with the node image's own SELinux policy: a file the
//! admin left with a label the policy does not give it is relabelled, a
//! file the admin's `file_contexts.local` names keeps that rule's type, and
//! a second run finds nothing. Needs the image (`HVNODE_IMAGE_DIR`), root
//! and loop devices (its root image is mounted read-only to copy the
//! policy); skipped otherwise, a failure in CI.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::Path;
use std::process::Command;

use hvnode_testutil::loopfs::sh;

/// Copies the image's `/etc/selinux` into `dest/etc/selinux`.
fn copy_policy(image_dir: &Path, dest: &Path) {
    let squashfs = std::fs::read_dir(image_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".squashfs.img"))
        .expect("the image's squashfs");
    let mnt = tempfile::tempdir().unwrap();
    let (outer, inner) = (mnt.path().join("outer"), mnt.path().join("inner"));
    std::fs::create_dir_all(&outer).unwrap();
    std::fs::create_dir_all(&inner).unwrap();
    sh(Command::new("mount")
        .args(["-o", "loop,ro"])
        .arg(&squashfs)
        .arg(&outer));
    let mounted = Command::new("mount")
        .args(["-o", "loop,ro"])
        .arg(outer.join("LiveOS/rootfs.img"))
        .arg(&inner)
        .output()
        .unwrap();
    if mounted.status.success() {
        std::fs::create_dir_all(dest.join("etc")).unwrap();
        let cp = Command::new("cp")
            .arg("-a")
            .arg(inner.join("etc/selinux"))
            .arg(dest.join("etc/"))
            .output()
            .unwrap();
        let _ = Command::new("umount").arg(&inner).output();
        assert!(
            cp.status.success(),
            "{}",
            String::from_utf8_lossy(&cp.stderr)
        );
    }
    let _ = Command::new("umount").arg(&outer).output();
    assert!(
        mounted.status.success(),
        "{}",
        String::from_utf8_lossy(&mounted.stderr)
    );
}

fn label(path: &Path) -> String {
    sh(Command::new("getfattr")
        .args(["--only-values", "-n", "security.selinux"])
        .arg(path))
    .trim_end_matches('\0')
    .to_string()
}

fn set_label(path: &Path, label: &str) {
    sh(Command::new("setfattr")
        .args(["-n", "security.selinux", "-v", label])
        .arg(path));
}

#[test]
fn the_new_etc_is_labelled_by_the_new_policy() {
    let Some(image) = hvnode_testutil::require_env(
        "HVNODE_IMAGE_DIR",
        "build the image with `make image`; tests/run-tests.sh does",
    ) else {
        return;
    };
    if !(hvnode_testutil::require_root()
        && hvnode_testutil::require_tools(&["setfiles", "setfattr", "getfattr"]))
    {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("layer");
    copy_policy(Path::new(&image), &root);
    let note = root.join("etc/hvnode/admin-note");
    std::fs::create_dir_all(note.parent().unwrap()).unwrap();
    std::fs::write(&note, "mine\n").unwrap();
    set_label(&note, "system_u:object_r:tmp_t:s0");
    // The admin's own rule (semanage fcontext) for a file of theirs.
    let local = root.join("etc/selinux/default/contexts/files/file_contexts.local");
    std::fs::write(
        &local,
        "/etc/hvnode/site\\.key    system_u:object_r:cert_t:s0\n",
    )
    .unwrap();
    let key = root.join("etc/hvnode/site.key");
    std::fs::write(&key, "key\n").unwrap();
    set_label(&key, "system_u:object_r:etc_t:s0");

    let report = update::labels::relabel_etc(&root).unwrap();
    assert!(report.checked);
    assert!(
        report
            .relabeled
            .iter()
            .any(|r| r.starts_with("/etc/hvnode/admin-note: ") && r.contains("tmp_t")),
        "{report:?}"
    );
    // /etc/hvnode is the console's settings folder in the image's own module
    // (image/selinux/hvnode.fc).
    assert!(label(&note).contains(":hvnode_conf_t:"), "{}", label(&note));
    assert!(label(&key).contains(":cert_t:"), "{}", label(&key));
    let again = update::labels::relabel_etc(&root).unwrap();
    assert_eq!(again.relabeled, Vec::<String>::new());
}
