//! The node being updated: its layer store (and what each kind needs
//! beyond [`layers::Store`]: free space, the old base's `/etc`, what a base
//! is written from), the running layer and where its root, `/boot` and
//! scratch space are.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use command::CommandExt;
use layers::btrfs::BtrfsStore;
use layers::lvm::{LvmStore, TAG_BASE, TAG_POOL};
use layers::plain::PlainStore;
use layers::status::{self, Backend, Facts};
use layers::{LayerName, Nvr, Store};

use crate::image::Image;
use crate::mounts::Mounts;
use crate::space::{self, StoreSpace};

/// A layer store of one of the three kinds.
#[derive(Debug, Clone)]
pub enum StoreKind {
    Lvm(LvmStore),
    Btrfs(BtrfsStore),
    Plain(PlainStore),
}

impl StoreKind {
    pub fn store(&self) -> &dyn Store {
        match self {
            StoreKind::Lvm(s) => s,
            StoreKind::Btrfs(s) => s,
            StoreKind::Plain(s) => s,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            StoreKind::Lvm(_) => "lvm",
            StoreKind::Btrfs(_) => "btrfs",
            StoreKind::Plain(_) => "plain",
        }
    }

    /// What `add_base` takes: the ext4 image for LVM, the tree otherwise.
    pub fn base_source<'a>(&self, image: &'a Image) -> &'a Path {
        match self {
            StoreKind::Lvm(_) => &image.rootfs_img,
            _ => &image.tree,
        }
    }

    /// Free space where a new base goes.
    pub fn space(&self) -> Result<StoreSpace> {
        match self {
            StoreKind::Lvm(s) => space::thin_space(&s.lvs()?).with_context(|| {
                format!(
                    "reading the thin pool of {}: no volume tagged {TAG_POOL}",
                    s.vg
                )
            }),
            StoreKind::Btrfs(BtrfsStore { top, .. }) | StoreKind::Plain(PlainStore { top, .. }) => {
                Ok(StoreSpace::Fs {
                    path: top.display().to_string(),
                    free: free_bytes(top)?,
                })
            }
        }
    }

    /// The root of the read-only base `nvr`, mounted under `work` if it
    /// must be (an LVM base is an inactive volume).
    pub fn base_root(&self, nvr: &Nvr, work: &Path, mounts: &mut Mounts) -> Result<PathBuf> {
        match self {
            StoreKind::Btrfs(s) => Ok(s.base_path(nvr)),
            StoreKind::Plain(s) => Ok(s.base_path(nvr)),
            StoreKind::Lvm(s) => {
                let lv = format!("{}/{nvr}", s.vg);
                layers::lvm::lvm("lvchange")
                    .args(["-ay", "-K"])
                    .arg(&lv)
                    .run()
                    .with_context(|| format!("activating the base {lv} to read its /etc"))?;
                mounts.then(["lvm", "lvchange", "-an", &lv].map(String::from).to_vec());
                let at = work.join("old-base");
                mounts.mount(
                    &["-t", "ext4", "-o", "ro,noload"],
                    &s.device(&nvr.to_string()),
                    &at,
                )?;
                Ok(at)
            }
        }
    }
}

/// Bytes available to root on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    let st = nix::sys::statvfs::statvfs(path)
        .with_context(|| format!("measuring the free space of {}", path.display()))?;
    Ok(st.blocks_free() as u64 * st.fragment_size() as u64)
}

/// Everything an update needs to know about the node.
#[derive(Debug, Clone)]
pub struct Node {
    pub store: StoreKind,
    /// The layer the system runs from.
    pub current_layer: LayerName,
    /// The running root: its `/etc` is the admin's, its `/var` the shared
    /// one, its `image.json` the running image's (`/` on a node).
    pub root: PathBuf,
    /// The boot partition (`/boot`).
    pub boot: PathBuf,
    /// Where the bundle is extracted and the image mounted: on the store's
    /// file system for btrfs and plain, so the copy into the base is local.
    pub scratch: PathBuf,
    /// Held while an update runs: a second one is refused.
    pub lock: PathBuf,
}

impl Node {
    pub fn etc(&self) -> PathBuf {
        self.root.join("etc")
    }

    pub fn var(&self) -> PathBuf {
        self.root.join("var")
    }

    /// The journal of the update under way (see [`crate::txn`]), in the
    /// shared `/var` so that every layer's boot finds it.
    pub fn journal(&self) -> PathBuf {
        self.var().join("lib/hvnode/update-journal.json")
    }
}

/// The block device of a mount source as findmnt shows it
/// (`/dev/vda3[/hvnode/layers/NVR+1]` → `/dev/vda3`).
pub fn source_device(source: &str) -> &str {
    source.split('[').next().unwrap_or(source)
}

/// Where a running node mounts its store's top level for an update.
pub const STORE_TOP: &str = "/run/hvnode/update/top";
/// The scratch folder on a btrfs or plain store's file system (hidden: the
/// store lists only bases and layers).
pub const SCRATCH: &str = "hvnode/.update";
/// The lock of a running update.
pub const LOCK: &str = "/run/hvnode/update.lock";

/// The running node, with the store's top level mounted while it lives.
#[derive(Debug)]
pub struct LiveNode {
    pub node: Node,
    /// The store's top-level mount (btrfs, plain), taken down on drop.
    pub mounts: Mounts,
}

/// Finds the running node's store and layer and mounts what an update
/// needs (the store's top level, read-write, at [`STORE_TOP`]).
pub fn detect(root: &Path, boot: &Path) -> Result<LiveNode> {
    let facts = status::gather(boot).context("reading the node's layout")?;
    let current_layer = facts.current_layer.clone().context(
        "the kernel command line names no layer: this is not an installed hvnode node \
         (updates apply to installed nodes, not to the live installer)",
    )?;
    let mut mounts = Mounts::default();
    let top = Path::new(STORE_TOP);
    let store = match facts.backend {
        Some(Backend::Lvm) => StoreKind::Lvm(lvm_store(&facts, &current_layer)?),
        Some(Backend::Btrfs) => {
            let dev = root_device(&facts)?;
            mounts.mount(&["-t", "btrfs", "-o", "subvolid=5"], &dev, top)?;
            StoreKind::Btrfs(BtrfsStore::open(top, &dev)?)
        }
        Some(Backend::Plain) => {
            let dev = root_device(&facts)?;
            mounts.mount(&["-t", "xfs"], &dev, top)?;
            StoreKind::Plain(PlainStore::open(top, &dev)?)
        }
        None => bail!(
            "no layer store found (no thin pool tagged {TAG_POOL}, no btrfs or plain root): \
             this is not an installed hvnode node"
        ),
    };
    // A folder of the update's own: it is removed when an update leaves
    // it empty.
    let scratch = match &store {
        StoreKind::Lvm(_) => root.join("var/tmp/hvnode-update"),
        StoreKind::Btrfs(s) => s.top.join(SCRATCH),
        StoreKind::Plain(s) => s.top.join(SCRATCH),
    };
    Ok(LiveNode {
        node: Node {
            store,
            current_layer,
            root: root.to_path_buf(),
            boot: boot.to_path_buf(),
            scratch,
            lock: PathBuf::from(LOCK),
        },
        mounts,
    })
}

fn root_device(facts: &Facts) -> Result<PathBuf> {
    let root = facts
        .mounts
        .iter()
        .find(|m| m.target == "/")
        .context("findmnt shows no root file system")?;
    Ok(PathBuf::from(source_device(&root.source)))
}

fn lvm_store(facts: &Facts, current: &LayerName) -> Result<LvmStore> {
    let pool = facts
        .lvs
        .iter()
        .find(|l| l.has_tag(TAG_POOL))
        .with_context(|| {
            format!(
                "the volume group {} has no volume tagged {TAG_POOL}",
                facts.vg
            )
        })?;
    let mut store = LvmStore::new(&facts.vg, &pool.lv_name);
    // A new base as big as the running one (the installer sized it).
    let base = current.base.to_string();
    if let Some(size) = facts
        .lvs
        .iter()
        .find(|l| l.lv_name == base && l.has_tag(TAG_BASE))
        .and_then(|l| l.lv_size.trim().parse::<u64>().ok())
    {
        store.root_bytes = store.root_bytes.max(size);
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lvm_store_is_found_by_its_pool_and_sized_like_the_running_base() {
        let lvs = r#"{"report":[{"lv":[
          {"vg_name":"vg0","lv_name":"hvnode-1.0-1","lv_tags":"hvnode:base","origin":"","lv_attr":"Vri---tz-k","lv_size":"21474836480","data_percent":"","metadata_percent":""},
          {"vg_name":"vg0","lv_name":"hvnode-1.0-1+1","lv_tags":"hvnode:layer","origin":"hvnode-1.0-1","lv_attr":"Vwi-aotz--","lv_size":"21474836480","data_percent":"20.31","metadata_percent":""},
          {"vg_name":"vg0","lv_name":"thinpool","lv_tags":"hvnode:pool","origin":"","lv_attr":"twi-aotz--","lv_size":"47064334336","data_percent":"4.52","metadata_percent":"11.85"}
        ]}]}"#;
        let facts = Facts {
            vg: "vg0".into(),
            lvs: layers::lvm::parse_lvs(lvs).unwrap(),
            ..Facts::default()
        };
        let current: LayerName = "hvnode-1.0-1+1".parse().unwrap();
        let s = lvm_store(&facts, &current).unwrap();
        assert_eq!((s.vg.as_str(), s.pool.as_str()), ("vg0", "thinpool"));
        assert_eq!(s.root_bytes, 21_474_836_480);
        let no_pool = Facts {
            vg: "vg0".into(),
            ..Facts::default()
        };
        let e = lvm_store(&no_pool, &current).unwrap_err();
        assert!(e.to_string().contains("hvnode:pool"), "{e}");
    }

    #[test]
    fn the_device_of_a_layer_mount_is_its_partition() {
        assert_eq!(
            source_device("/dev/vda3[/hvnode/layers/hvnode-1.0-1+1]"),
            "/dev/vda3"
        );
        assert_eq!(
            source_device("/dev/mapper/hvnode-x"),
            "/dev/mapper/hvnode-x"
        );
    }
}
