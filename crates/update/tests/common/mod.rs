//! What the update tests share: a store on a loop device holding an old
//! image's base and running layer, a node root (its `/etc` changed by an
//! admin, its `/var`), a `/boot` with hvnode's grub.cfg and grubenv, and a
//! signed bundle of a new image made with mkfs.ext4 and mksquashfs. Needs
//! root, loop devices and those programs: without them a test is skipped
//! with a message, and fails in CI (`hvnode_testutil`).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // tests fail loudly

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use bundle::{Metadata, SignKey};
use hostinfo::ImageIdentity;
use hvnode_testutil::loopfs::LoopFs;
use layers::boot::{self, BootEntry};
use layers::btrfs::BtrfsStore;
use layers::plain::PlainStore;
use layers::{LayerName, Nvr, Store};
use sha2::{Digest, Sha256};
use update::{Node, StoreKind};

pub const OLD: &str = "hvnode-1.0-0.20261125.0";
pub const NEW: &str = "hvnode-1.1-0.20261201.0";
const EPOCH: i64 = 1_764_547_200;
/// The id the new image gives its new account, held on the node by an
/// account the admin added.
pub const IMAGE_ID: u32 = 995;
/// Where the merge moves it: the top of the system range.
pub const NODE_ID: u32 = 999;

pub use hvnode_testutil::loopfs::sh;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Btrfs,
    Plain,
}

/// A node with an old image installed, and a bundle of a new one.
pub struct Fixture {
    pub fs: LoopFs,
    pub node: Node,
    pub bundle: PathBuf,
    pub keys: PathBuf,
}

impl Fixture {
    pub fn top(&self) -> PathBuf {
        self.fs.top()
    }

    /// The fixture's own folder (the store's image file, root, /boot).
    pub fn dir(&self) -> &Path {
        self.fs.dir.path()
    }

    /// `None` (skipped; a failure in CI) without root, loop devices or the
    /// programs.
    pub fn new(kind: Kind) -> Option<Fixture> {
        let mkfs = match kind {
            Kind::Btrfs => "mkfs.btrfs",
            Kind::Plain => "mkfs.xfs",
        };
        if !hvnode_testutil::require_tools(&["mkfs.ext4", "mksquashfs", "grub-editenv"]) {
            return None;
        }
        let fs = match kind {
            Kind::Btrfs => LoopFs::new(&[mkfs, "-q", "-L", "hvnode"])?,
            Kind::Plain => LoopFs::new(&[mkfs, "-q", "-m", "reflink=1", "-L", "hvnode"])?,
        };
        let (top, loopdev) = (fs.top(), fs.loopdev.clone());
        let dir = fs.dir.path().to_path_buf();
        let store = match kind {
            Kind::Btrfs => StoreKind::Btrfs(BtrfsStore::open(&top, &loopdev).unwrap()),
            Kind::Plain => StoreKind::Plain(PlainStore::open(&top, &loopdev).unwrap()),
        };
        let old: Nvr = OLD.parse().unwrap();
        let old_tree = dir.join("old-tree");
        image_tree(&old_tree, OLD, "1");
        store.store().add_base(&old, &old_tree).unwrap();
        let layer = store.store().add_layer(&old).unwrap();
        let root = dir.join("root");
        node_root(&old_tree, &root, store.store(), &layer);
        let boot = dir.join("boot");
        boot_dir(&boot, store.store(), &layer);
        let (bundle, keys) = make_bundle(&dir);
        let node = Node {
            store,
            current_layer: layer,
            root,
            boot,
            scratch: top.join("hvnode/.update"),
            lock: dir.join("update.lock"),
        };
        Some(Fixture {
            fs,
            node,
            bundle,
            keys,
        })
    }

    pub fn options(&self) -> update::Options {
        update::Options {
            trusted_keys: self.keys.clone(),
            ..update::Options::new(self.bundle.display().to_string())
        }
    }

    /// Everything an update may touch, to compare before and after.
    pub fn state(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        for (name, path) in [
            ("store", self.top().join("hvnode")),
            ("boot", self.node.boot.clone()),
            ("root", self.node.root.clone()),
        ] {
            walk(&path, &path, name, &mut s);
        }
        let inv = self.node.store.store().inventory().unwrap();
        s.insert("inventory".into(), format!("{inv:?}"));
        let here = self.dir().display().to_string();
        let mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&here))
            .map(|l| l.split_whitespace().nth(4).unwrap_or("").to_string())
            .collect();
        s.insert("mounts".into(), mounts.join(" "));
        s
    }
}

/// path → type, mode, owner and content of every entry under `dir`; the
/// store's layers are listed, not walked (their files are the base's).
fn walk(top: &Path, dir: &Path, name: &str, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = format!("{name}/{}", p.strip_prefix(top).unwrap().display());
        let m = fs::symlink_metadata(&p).unwrap();
        let head = format!(
            "{:o} {}:{}",
            m.permissions().mode() & 0o7777,
            m.uid(),
            m.gid()
        );
        if m.is_symlink() {
            out.insert(
                rel,
                format!("link {}", fs::read_link(&p).unwrap().display()),
            );
        } else if m.is_dir() {
            out.insert(rel.clone(), format!("dir {head}"));
            let depth = p.strip_prefix(top).unwrap().components().count();
            if !(name == "store" && depth >= 2) {
                walk(top, &p, name, out);
            }
        } else {
            let data = fs::read(&p).unwrap();
            out.insert(
                rel,
                format!("file {head} {}", hex::encode(Sha256::digest(&data))),
            );
        }
    }
}

/// An image tree: `/etc` files, its identity, a kernel, `/var` contents.
pub fn image_tree(root: &Path, nvr: &str, kver: &str) {
    let w = |rel: &str, data: &str| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    };
    let old = nvr == OLD;
    w("etc/hostname", "image\n");
    w("etc/motd", if old { "motd 1\n" } else { "motd 2\n" });
    w("etc/untouched.conf", if old { "a=1\n" } else { "a=2\n" });
    w("etc/deleted.conf", "x=1\n");
    let passwd =
        "root:x:0:0:root:/root:/bin/sh\nhvnode:x:990:990::/var/lib/hvnode:/usr/sbin/nologin\n";
    let group = "root:x:0:\nhvnode:x:990:\n";
    if old {
        w("etc/passwd", passwd);
        w("etc/group", group);
    } else {
        // A new system account, whose id an admin's account holds on the
        // node, owning files in the image and in its /var.
        w(
            "etc/passwd",
            &format!("{passwd}newsvc:x:995:995::/var/lib/newapp:/usr/sbin/nologin\n"),
        );
        w("etc/group", &format!("{group}newsvc:x:995:\n"));
        w("etc/new-in-image.conf", "new\n");
        w("var/lib/newapp/seed", "seed\n");
        w("usr/lib/newsvc/tool", "#!/bin/sh\n");
        for p in [
            "var/lib/newapp",
            "var/lib/newapp/seed",
            "usr/lib/newsvc/tool",
        ] {
            std::os::unix::fs::chown(root.join(p), Some(IMAGE_ID), Some(IMAGE_ID)).unwrap();
        }
        fs::set_permissions(
            root.join("usr/lib/newsvc/tool"),
            fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
    }
    w(
        "var/lib/app/state",
        if old { "image 1\n" } else { "image 2\n" },
    );
    w(
        &format!("boot/vmlinuz-6.1.0-{kver}"),
        &format!("kernel {kver}\n"),
    );
    w(
        &format!("boot/initrd.img-6.1.0-{kver}"),
        &format!("initrd {kver}\n"),
    );
    let (name, rest) = nvr.split_once('-').unwrap();
    let (version, release) = rest.split_once('-').unwrap();
    let id = ImageIdentity {
        name: name.into(),
        version: version.into(),
        release: release.into(),
        nvr: nvr.into(),
        build_epoch: EPOCH,
        kernel_args: vec!["security=selinux".into(), "selinux=1".into()],
    };
    w("usr/lib/hvnode/image.json", &id.to_file_text().unwrap());
}

/// The running root: the old image's `/etc` as an admin changed it, a
/// `/var` with the node's data, the old image's identity.
fn node_root(old_tree: &Path, root: &Path, store: &dyn Store, layer: &LayerName) {
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    sh(Command::new("cp")
        .arg("-a")
        .arg(old_tree.join("etc"))
        .arg(root));
    sh(Command::new("cp")
        .arg("-a")
        .arg(old_tree.join("usr/lib/hvnode"))
        .arg(root.join("usr/lib")));
    fs::write(root.join("etc/hostname"), "node1\n").unwrap();
    fs::write(root.join("etc/motd"), "admin motd\n").unwrap();
    fs::write(root.join("etc/admin.conf"), "mine\n").unwrap();
    let append = |rel: &str, line: &str| {
        let mut text = fs::read_to_string(root.join(rel)).unwrap();
        text.push_str(line);
        fs::write(root.join(rel), text).unwrap();
    };
    append("etc/passwd", "alice:x:995:995::/home/alice:/bin/sh\n");
    append("etc/group", "alice:x:995:\n");
    fs::remove_file(root.join("etc/deleted.conf")).unwrap();
    let args = store.root_args(layer).unwrap();
    fs::write(
        root.join("etc/fstab"),
        format!(
            "{} / {} {} 0 0\n",
            args.fstab_source, args.fstab_type, args.fstab_options
        ),
    )
    .unwrap();
    fs::create_dir_all(root.join("var/lib/app")).unwrap();
    fs::write(root.join("var/lib/app/state"), "node data\n").unwrap();
}

/// hvnode's `/boot` for the running layer, its default.
fn boot_dir(boot: &Path, store: &dyn Store, layer: &LayerName) {
    fs::create_dir_all(boot.join("grub")).unwrap();
    fs::create_dir_all(boot.join(layer.to_string())).unwrap();
    fs::write(boot.join(format!("{layer}/vmlinuz")), "kernel 1\n").unwrap();
    fs::write(boot.join(format!("{layer}/initrd.img")), "initrd 1\n").unwrap();
    let mut args = store.root_args(layer).unwrap().args;
    args.extend(["security=selinux", "selinux=1", "console=ttyS0"].map(String::from));
    boot::write_grub_cfg(
        boot,
        "1234-abcd",
        &[BootEntry {
            layer: layer.clone(),
            args,
        }],
        None,
    )
    .unwrap();
    sh(Command::new("grub-editenv")
        .arg(boot.join("grub/grubenv"))
        .arg("create"));
    boot::set_default(boot, layer).unwrap();
}

/// The new image as a signed bundle, and the trusted keys folder.
fn make_bundle(dir: &Path) -> (PathBuf, PathBuf) {
    let tree = dir.join("new-tree");
    image_tree(&tree, NEW, "2");
    let squash_root = dir.join("squash-root/LiveOS");
    fs::create_dir_all(&squash_root).unwrap();
    let rootfs = squash_root.join("rootfs.img");
    sh(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&rootfs)
        .arg("32M"));
    let squashfs = dir.join(format!("{NEW}.squashfs.img"));
    sh(Command::new("mksquashfs")
        .arg(dir.join("squash-root"))
        .arg(&squashfs)
        .args(["-noappend", "-quiet", "-no-progress"]));
    let data = fs::read(&squashfs).unwrap();
    let metadata = Metadata {
        nvr: NEW.into(),
        kernel: "6.1.0-2".into(),
        build_epoch: EPOCH,
        squashfs: format!("{NEW}.squashfs.img"),
        squashfs_size: data.len() as u64,
        squashfs_sha256: hex::encode(Sha256::digest(&data)),
    };
    let keys = dir.join("trusted.d");
    fs::create_dir_all(&keys).unwrap();
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let sk = dir.join("build.key");
    fs::write(&sk, kp.sk.to_box(None).unwrap().into_string()).unwrap();
    fs::write(
        keys.join("build.pub"),
        kp.pk.to_box().unwrap().into_string(),
    )
    .unwrap();
    let key = SignKey::load(&sk, None).unwrap();
    let out = dir.join("bundles");
    fs::create_dir_all(&out).unwrap();
    let bundle = out.join(format!("{NEW}.update.tar"));
    bundle::write_bundle(&bundle, &squashfs, &metadata, EPOCH, Some(&key)).unwrap();
    (bundle, keys)
}
