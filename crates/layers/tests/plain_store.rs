//! The plain layer store on a real XFS file system on a loop device: a
//! base keeps owners, modes, links and SELinux labels; a layer is a
//! reflinked copy (it shares the base's blocks: measured with df), is
//! writable without changing the base, and has the folder the initramfs
//! binds the store to; an ext4 file system, which cannot share blocks, is
//! refused rather than filled. Needs root and loop devices (skipped with
//! a message otherwise; a failure in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use layers::plain::PlainStore;
use layers::{Nvr, Store};

mod common;

use common::{fs_on_loop, image_tree, label, sh};

/// The shared image tree and 64 MiB of data whose copy must be shared.
fn image_tree_with_data(root: &Path) {
    image_tree(root);
    let data: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("usr/bin/big"), data).unwrap();
}

#[test]
fn bases_and_reflinked_layers_on_xfs() {
    let Some(fs) = fs_on_loop(&["mkfs.xfs", "-q", "-m", "reflink=1", "-L", "hvnode"]) else {
        return;
    };
    // The image lives on the same file system, as the installer's does not:
    // what matters here is what the store's copies cost.
    let src = fs.dir.path().join("image");
    image_tree_with_data(&src);
    let store = PlainStore::open(&fs.top(), &fs.loopdev).unwrap();
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
    let again = store.add_base(&nvr, &src).unwrap_err();
    assert!(format!("{again:#}").contains("exists already"), "{again:#}");

    let before = fs.used_kib();
    let l1 = store.add_layer(&nvr).unwrap();
    let grown = fs.used_kib() - before;
    eprintln!("a layer of a 64 MiB base took {grown} KiB");
    assert!(grown < 4096, "the layer copied the data: {grown} KiB");
    let l2 = store.add_layer(&nvr).unwrap();
    assert_eq!(l1.to_string(), "hvnode-1.0-0.20261125.0+1");
    assert_eq!(l2, l1.next());
    let inv = store.inventory().unwrap();
    assert_eq!(inv.bases, std::slice::from_ref(&nvr));
    assert_eq!(inv.layers, [l1.clone(), l2.clone()]);
    // Nothing partial is listed or left.
    let names: Vec<String> = std::fs::read_dir(fs.top().join("hvnode/layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Each layer has the folder the initramfs binds the store to.
    assert!(store.layer_path(&l1).join("sysroot").is_dir());

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

    // The initramfs finds the partition by UUID and the layer by name.
    let uuid = layers::fs_uuid(&fs.loopdev).unwrap();
    let args = store.root_args(&l1).unwrap();
    assert_eq!(
        args.args,
        [
            format!("root=UUID={uuid}"),
            "rootfstype=xfs".to_string(),
            "rootflags=discard".to_string(),
            "hvnode.layer=hvnode-1.0-0.20261125.0+1".to_string(),
            "ro".to_string()
        ]
    );
    assert_eq!(
        layers::status::layer_from_cmdline(&args.args.join(" ")),
        Some(l1.clone())
    );

    let refused = store.remove_base(&nvr).unwrap_err();
    assert!(format!("{refused:#}").contains("still has layers"));
    store.remove_layer(&l2).unwrap();
    store.remove_layer(&l1).unwrap();
    store.remove_base(&nvr).unwrap();
    let inv = store.inventory().unwrap();
    assert!(inv.bases.is_empty() && inv.layers.is_empty());
    let left = std::fs::read_dir(fs.top().join("hvnode/layers"))
        .unwrap()
        .count();
    assert_eq!(left, 0);
}

#[test]
fn a_file_system_without_reflinks_is_refused_for_layers() {
    let Some(fs) = fs_on_loop(&["mkfs.ext4", "-q", "-F"]) else {
        return;
    };
    let src = fs.dir.path().join("image");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/hostname"), b"image\n").unwrap();
    let store = PlainStore::open(&fs.top(), &fs.loopdev).unwrap();
    let nvr: Nvr = "hvnode-1.0-1".parse().unwrap();
    store.add_base(&nvr, &src).unwrap();
    let e = store.add_layer(&nvr).unwrap_err();
    assert!(
        format!("{e:#}").contains("copying") && format!("{e:#}").contains("the layer"),
        "{e:#}"
    );
    assert!(store.inventory().unwrap().layers.is_empty());
    let left = std::fs::read_dir(fs.top().join("hvnode/layers"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "a partial layer was left");
}
