//! The btrfs layer store on a real btrfs file system on a loop device:
//! a base keeps every file's owner, mode and extended attributes (SELinux
//! labels), is read-only, layers are writable snapshots counted up from
//! +1, the boot menu and grub's environment name them. Needs root and loop
//! devices (skipped with a message otherwise; a failure in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use layers::boot::{self, BootEntry};
use layers::btrfs::BtrfsStore;
use layers::{LayerName, Nvr, Store};

mod common;

use common::{Fs, image_tree, label, sh};

fn btrfs_on_loop() -> Option<Fs> {
    common::fs_on_loop(&["mkfs.btrfs", "-q", "-L", "hvnode"])
}

#[test]
fn bases_layers_and_boot_entries_on_btrfs() {
    let Some(fs) = btrfs_on_loop() else { return };
    let src = fs.dir.path().join("image");
    image_tree(&src);
    let store = BtrfsStore::open(&fs.top(), &fs.loopdev).unwrap();
    let nvr: Nvr = "hvnode-1.0-0.20261125.0".parse().unwrap();
    assert!(store.inventory().unwrap().bases.is_empty());

    store.add_base(&nvr, &src).unwrap();
    let base = store.base_path(&nvr);
    let meta = std::fs::metadata(base.join("usr/bin/tool")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o4755);
    assert_eq!((meta.uid(), meta.gid()), (0, 7));
    assert_eq!(
        std::fs::read_link(base.join("etc/tool")).unwrap(),
        Path::new("../usr/bin/tool")
    );
    assert_eq!(
        label(&base.join("usr/bin/tool")),
        "system_u:object_r:bin_t:s0"
    );
    assert_eq!(
        label(&base.join("etc/hostname")),
        "system_u:object_r:etc_t:s0"
    );
    // The base is read-only; nothing partial is left beside it.
    assert!(std::fs::write(base.join("etc/hostname"), b"changed").is_err());
    assert_eq!(
        std::fs::read_dir(fs.top().join("hvnode/bases"))
            .unwrap()
            .count(),
        1
    );
    // Installing the same image twice is refused.
    let again = store.add_base(&nvr, &src).unwrap_err();
    assert!(format!("{again:#}").contains("exists already"), "{again:#}");

    let l1 = store.add_layer(&nvr).unwrap();
    let l2 = store.add_layer(&nvr).unwrap();
    assert_eq!(l1.to_string(), "hvnode-1.0-0.20261125.0+1");
    assert_eq!(l2, l1.next());
    let inv = store.inventory().unwrap();
    assert_eq!(inv.bases, std::slice::from_ref(&nvr));
    assert_eq!(inv.layers, [l1.clone(), l2.clone()]);
    assert_eq!(inv.latest_layer(), Some(&l2));

    // A layer is writable, keeps the labels, and does not change its base.
    let mnt = fs.dir.path().join("layer");
    store.mount_layer(&l1, &mnt).unwrap();
    std::fs::write(mnt.join("etc/hostname"), b"node1\n").unwrap();
    assert_eq!(
        label(&mnt.join("usr/bin/tool")),
        "system_u:object_r:bin_t:s0"
    );
    sh(Command::new("umount").arg(&mnt));
    assert_eq!(
        std::fs::read(base.join("etc/hostname")).unwrap(),
        b"image\n"
    );
    assert_eq!(
        std::fs::read(store.layer_path(&l1).join("etc/hostname")).unwrap(),
        b"node1\n"
    );

    // The kernel finds the layer by the file system's UUID and subvolume.
    let uuid = store.uuid().unwrap();
    let args = store.root_args(&l1).unwrap();
    assert_eq!(
        args.args,
        [
            format!("root=UUID={uuid}"),
            "rootflags=subvol=hvnode/layers/hvnode-1.0-0.20261125.0+1".to_string(),
            "ro".to_string()
        ]
    );

    // Boot entries for both layers; the default and a one-time trial boot.
    let bootdir = fs.dir.path().join("boot");
    let entries: Vec<BootEntry> = [&l1, &l2]
        .iter()
        .map(|l| BootEntry {
            layer: (*l).clone(),
            args: store.root_args(l).unwrap().args,
        })
        .collect();
    boot::write_grub_cfg(&bootdir, &uuid, &entries, None).unwrap();
    boot::set_default(&bootdir, &l1).unwrap();
    boot::set_next(&bootdir, &l2).unwrap();
    let cfg = std::fs::read_to_string(bootdir.join("grub/grub.cfg")).unwrap();
    assert_eq!(cfg.matches("menuentry ").count(), 2);
    let env = boot::read_env(&bootdir).unwrap();
    assert!(
        env.contains(&("saved_entry".into(), l1.to_string())),
        "{env:?}"
    );
    assert!(
        env.contains(&("next_entry".into(), l2.to_string())),
        "{env:?}"
    );

    // Removing: a base with layers stays; without them it goes.
    let refused = store.remove_base(&nvr).unwrap_err();
    assert!(format!("{refused:#}").contains("still has layers"));
    store.remove_layer(&l2).unwrap();
    store.remove_layer(&l1).unwrap();
    store.remove_base(&nvr).unwrap();
    let inv = store.inventory().unwrap();
    assert!(inv.bases.is_empty() && inv.layers.is_empty());
    let _ = LayerName::first(&nvr);
}

#[test]
fn a_failed_copy_leaves_no_base() {
    let Some(fs) = btrfs_on_loop() else { return };
    let store = BtrfsStore::open(&fs.top(), &fs.loopdev).unwrap();
    let nvr: Nvr = "hvnode-1.0-1".parse().unwrap();
    let missing = fs.dir.path().join("no-such-tree");
    let e = store.add_base(&nvr, &missing).unwrap_err();
    assert!(format!("{e:#}").contains("copying the image"), "{e:#}");
    assert!(store.inventory().unwrap().bases.is_empty());
    assert_eq!(
        std::fs::read_dir(fs.top().join("hvnode/bases"))
            .unwrap()
            .count(),
        0,
        "a partial subvolume was left behind"
    );
}
