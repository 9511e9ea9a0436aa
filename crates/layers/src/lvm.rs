//! The LVM thin backend: one volume group holds a thin pool; every base,
//! layer and separate volume is a thin volume in it, found by its tag
//! (`hvnode:base`, `hvnode:layer`, `hvnode:volume`), as imgbased tags its
//! volumes. Bases are read-only and skipped at activation; layers are
//! thin snapshots of their base.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;

use crate::nvr::{LayerName, Nvr};
use crate::{Inventory, RootArgs, Store};

pub const TAG_BASE: &str = "hvnode:base";
pub const TAG_LAYER: &str = "hvnode:layer";
pub const TAG_VOLUME: &str = "hvnode:volume";
pub const TAG_POOL: &str = "hvnode:pool";
const TAG_PARTIAL: &str = "hvnode:partial";

/// The default names of the volume group and its pool.
pub const DEFAULT_VG: &str = "hvnode";
pub const DEFAULT_POOL: &str = "pool00";

/// A thin-LVM layer store.
#[derive(Debug, Clone)]
pub struct LvmStore {
    pub vg: String,
    pub pool: String,
    /// Virtual size of a new base (and so of its layers), in bytes.
    pub root_bytes: u64,
}

pub use hostinfo::storage::Lv;

/// Parses `lvs --reportformat json` output (the workspace's one parser,
/// [`hostinfo::storage::parse_lvs`]).
pub fn parse_lvs(json: &str) -> Result<Vec<Lv>> {
    hostinfo::storage::parse_lvs(json).context("reading the output of lvs")
}

/// Bases and layers among `lvs`, by tag; volumes without a valid name are
/// ignored (an admin's own volumes in the group are not ours).
pub fn inventory_of(lvs: &[Lv]) -> Inventory {
    let mut bases: Vec<Nvr> = lvs
        .iter()
        .filter(|l| l.has_tag(TAG_BASE))
        .filter_map(|l| l.lv_name.parse().ok())
        .collect();
    let mut layers: Vec<LayerName> = lvs
        .iter()
        .filter(|l| l.has_tag(TAG_LAYER))
        .filter_map(|l| l.lv_name.parse().ok())
        .collect();
    bases.sort();
    layers.sort();
    Inventory { bases, layers }
}

/// `lvm SUB`: every LVM command goes through the one `lvm` binary.
pub fn lvm(sub: &str) -> Command {
    let mut c = Command::new("lvm");
    c.arg(sub);
    c
}

/// How big the thin pool is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSize {
    /// A share of the volume group (`-l N%VG`), as `autopart` makes it.
    PercentOfVg(u64),
    /// An exact size, rounded down to whole extents by lvm.
    Bytes(u64),
}

/// The volume group and thin pool a store is made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub vg: String,
    pub pool: String,
    pub size: PoolSize,
    /// Physical extent size (`vgcreate -s`); lvm's default when `None`.
    pub extent_bytes: Option<u64>,
    /// Pool metadata size (`--poolmetadatasize`); lvm's default when `None`.
    pub metadata_bytes: Option<u64>,
    /// Thin pool chunk size (`--chunksize`); lvm's default when `None`.
    pub chunk_bytes: Option<u64>,
}

impl PoolSpec {
    /// The arguments of the `lvcreate` that makes the pool. The pool zeroes
    /// what it newly provisions (`--zero y`, lvm's own default): a block a
    /// thin volume has not written reads as zeros even when a short write
    /// next to it was given the pool's chunk, never as what the disk held
    /// before (an earlier install, another volume). The installer's mkfs of
    /// a new thin volume relies on it (`assume_storage_prezeroed`).
    pub fn lvcreate_args(&self) -> Vec<String> {
        let mut a: Vec<String> = ["-y", "--type", "thin-pool", "--zero", "y"]
            .map(String::from)
            .to_vec();
        match self.size {
            PoolSize::PercentOfVg(p) => a.push(format!("-l{p}%VG")),
            PoolSize::Bytes(b) => a.push(format!("-L{}b", b / 512 * 512)),
        }
        if let Some(m) = self.metadata_bytes {
            a.push(format!("--poolmetadatasize={}k", m / 1024));
        }
        if let Some(c) = self.chunk_bytes {
            a.push(format!("--chunksize={}k", c / 1024));
        }
        a.extend(["--addtag", TAG_POOL, "-n"].map(String::from));
        a.push(self.pool.clone());
        a.push(self.vg.clone());
        a
    }
}

impl LvmStore {
    pub fn new(vg: &str, pool: &str) -> Self {
        LvmStore {
            vg: vg.into(),
            pool: pool.into(),
            root_bytes: crate::volumes::ROOT_MIN,
        }
    }

    /// `/dev/VG/NAME`.
    pub fn device(&self, lv: &str) -> PathBuf {
        PathBuf::from(format!("/dev/{}/{lv}", self.vg))
    }

    /// Makes the volume group on `pvs` and a thin pool over `pool_percent`
    /// of it (the rest stays free for metadata growth, as RHVH leaves it).
    pub fn create(vg: &str, pool: &str, pvs: &[PathBuf], pool_percent: u64) -> Result<Self> {
        Self::create_with(
            &PoolSpec {
                vg: vg.into(),
                pool: pool.into(),
                size: PoolSize::PercentOfVg(pool_percent),
                extent_bytes: None,
                metadata_bytes: None,
                chunk_bytes: None,
            },
            pvs,
        )
    }

    /// Makes the volume group on `pvs` and the thin pool `spec` describes.
    pub fn create_with(spec: &PoolSpec, pvs: &[PathBuf]) -> Result<Self> {
        let (vg, pool) = (spec.vg.as_str(), spec.pool.as_str());
        for pv in pvs {
            lvm("pvcreate")
                .args(["-y", "-ff"])
                .arg(pv)
                .run()
                .with_context(|| format!("making {} an LVM physical volume", pv.display()))?;
        }
        let mut vgcreate = lvm("vgcreate");
        vgcreate.arg("-y");
        if let Some(pe) = spec.extent_bytes {
            vgcreate.arg(format!("-s{}k", pe / 1024));
        }
        vgcreate
            .arg(vg)
            .args(pvs)
            .run()
            .with_context(|| format!("creating the volume group {vg}"))?;
        lvm("lvcreate")
            .args(spec.lvcreate_args())
            .run()
            .with_context(|| format!("creating the thin pool {vg}/{pool}"))?;
        Ok(LvmStore::new(vg, pool))
    }

    /// Every volume of the group.
    pub fn lvs(&self) -> Result<Vec<Lv>> {
        let out = lvm("lvs")
            .args(["--reportformat", "json", "--units", "b", "--nosuffix"])
            .args([
                "-o",
                "lv_name,lv_tags,origin,lv_attr,lv_size,data_percent,metadata_percent",
            ])
            .arg(&self.vg)
            .run_capture()
            .with_context(|| format!("listing the volumes of {}", self.vg))?;
        parse_lvs(&out)
    }

    /// Adds a separate thin volume, tagged, and returns its device.
    pub fn add_volume(&self, name: &str, bytes: u64) -> Result<PathBuf> {
        lvm("lvcreate")
            .args(["-y", "-T"])
            .arg(format!("{}/{}", self.vg, self.pool))
            .arg(format!("-V{}b", bytes / 512 * 512))
            .args(["--addtag", TAG_VOLUME, "-n", name])
            .run()
            .with_context(|| format!("creating the thin volume {}/{name}", self.vg))?;
        Ok(self.device(name))
    }

    /// Adds a separate (thick) volume outside the pool, tagged, and returns
    /// its device.
    pub fn add_thick_volume(&self, name: &str, bytes: u64) -> Result<PathBuf> {
        lvm("lvcreate")
            .arg("-y")
            .arg(format!("-L{}b", bytes / 512 * 512))
            .args(["--addtag", TAG_VOLUME, "-n", name, &self.vg])
            .run()
            .with_context(|| format!("creating the volume {}/{name}", self.vg))?;
        Ok(self.device(name))
    }

    fn remove(&self, lv: &str) -> Result<()> {
        lvm("lvremove")
            .args(["-y", "-f"])
            .arg(format!("{}/{lv}", self.vg))
            .run()
            .with_context(|| format!("removing {}/{lv}", self.vg))?;
        Ok(())
    }

    fn write_base(&self, partial: &str, image: &Path) -> Result<()> {
        let dev = self.device(partial);
        Command::new("dd")
            .arg(format!("if={}", image.display()))
            .arg(format!("of={}", dev.display()))
            // Direct writes: through the page cache, 1.2 GiB of cache pages are
            // allocated (and zeroed) for data written once and never read back;
            // under emulation that was three quarters of the copy's time (37 s
            // instead of 10 s). dd writes a short last block without O_DIRECT.
            .args(["bs=4M", "conv=sparse,fsync", "oflag=direct", "status=none"])
            .run()
            .with_context(|| {
                format!("writing the image {} to {}", image.display(), dev.display())
            })?;
        // e2fsck exits 1 when it corrected something, which is fine here.
        let fsck = Command::new("e2fsck")
            .args(["-f", "-p"])
            .arg(&dev)
            .output()
            .context("running e2fsck")?;
        if !matches!(fsck.status.code(), Some(0 | 1)) {
            bail!(
                "checking the written image on {}: e2fsck -f -p failed ({}): {}",
                dev.display(),
                fsck.status,
                String::from_utf8_lossy(&fsck.stderr).trim()
            );
        }
        Command::new("resize2fs")
            .arg(&dev)
            .run()
            .with_context(|| format!("growing the image's file system on {}", dev.display()))?;
        // The live image has no journal (it is read-only there); an
        // installed root needs one.
        Command::new("tune2fs")
            .args(["-O", "has_journal"])
            .arg(&dev)
            .run()
            .with_context(|| format!("adding a journal to {}", dev.display()))?;
        Ok(())
    }
}

impl Store for LvmStore {
    fn inventory(&self) -> Result<Inventory> {
        Ok(inventory_of(&self.lvs()?))
    }

    fn add_base(&self, nvr: &Nvr, image: &Path) -> Result<()> {
        let name = nvr.to_string();
        let lvs = self.lvs()?;
        if lvs.iter().any(|l| l.lv_name == name) {
            bail!("{}/{name} exists already: this image is installed", self.vg);
        }
        let image_bytes = std::fs::metadata(image)
            .with_context(|| format!("reading the size of {}", image.display()))?
            .len();
        let size = self.root_bytes.max(image_bytes);
        let partial = format!("{name}.partial");
        if lvs.iter().any(|l| l.lv_name == partial) {
            self.remove(&partial)?;
        }
        lvm("lvcreate")
            .args(["-y", "-T"])
            .arg(format!("{}/{}", self.vg, self.pool))
            .arg(format!("-V{}b", size.div_ceil(512) * 512))
            .args(["--addtag", TAG_PARTIAL, "-n", &partial])
            .run()
            .with_context(|| format!("creating the base volume {}/{partial}", self.vg))?;
        if let Err(e) = self.write_base(&partial, image) {
            // Never leave half a base.
            let _ = self.remove(&partial);
            return Err(e);
        }
        lvm("lvrename")
            .args([&self.vg, &partial, &name])
            .run()
            .with_context(|| format!("naming the base {}/{name}", self.vg))?;
        let lv = format!("{}/{name}", self.vg);
        // One lvchange for all four (one process and lock instead of four: seconds
        // under emulation).
        let change = [
            "--deltag",
            TAG_PARTIAL,
            "--addtag",
            TAG_BASE,
            "--permission",
            "r",
            "--setactivationskip",
            "y",
        ];
        lvm("lvchange")
            .args(change)
            .arg(&lv)
            .run()
            .with_context(|| format!("making {lv} a read-only base ({})", change.join(" ")))?;
        Ok(())
    }

    fn add_layer(&self, base: &Nvr) -> Result<LayerName> {
        let layer = self.inventory()?.next_layer(base, &self.vg)?;
        lvm("lvcreate")
            .args(["-y", "-s", "--setactivationskip", "n", "--permission", "rw"])
            .args(["--addtag", TAG_LAYER, "-n", &layer.to_string()])
            .arg(format!("{}/{base}", self.vg))
            .run()
            .with_context(|| format!("creating the layer {}/{layer}", self.vg))?;
        lvm("lvchange")
            .arg("-ay")
            .arg(format!("{}/{layer}", self.vg))
            .run()
            .with_context(|| format!("activating the layer {}/{layer}", self.vg))?;
        Ok(layer)
    }

    fn remove_layer(&self, layer: &LayerName) -> Result<()> {
        self.remove(&layer.to_string())
    }

    fn remove_base(&self, base: &Nvr) -> Result<()> {
        self.inventory()?.check_no_layers(base)?;
        self.remove(&base.to_string())
    }

    fn mount_layer(&self, layer: &LayerName, at: &Path) -> Result<()> {
        std::fs::create_dir_all(at)?;
        Command::new("mount")
            .args(["-t", "ext4", "-o", "discard"])
            .arg(self.device(&layer.to_string()))
            .arg(at)
            .run()
            .with_context(|| format!("mounting the layer {layer} at {}", at.display()))?;
        Ok(())
    }

    fn root_args(&self, layer: &LayerName) -> Result<RootArgs> {
        let dev = self.device(&layer.to_string());
        Ok(RootArgs {
            // The whole group in the initramfs: the separate volumes and
            // swap are needed right after the switch to the root, and the
            // root's LVM does not activate a group the initramfs already
            // marked online. Bases are skipped (activation skip flag).
            args: vec![
                format!("root={}", dev.display()),
                format!("rd.lvm.vg={}", self.vg),
                "ro".into(),
            ],
            fstab_source: dev.display().to_string(),
            fstab_type: "ext4".into(),
            fstab_options: "defaults,discard".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LVS: &str = r#"{
      "report": [
          {
              "lv": [
                  {"lv_name":"hvnode-1.0-0.20261125.0", "lv_tags":"hvnode:base", "origin":"", "lv_attr":"Vri---tz-k", "lv_size":"6442450944", "data_percent":"", "metadata_percent":""},
                  {"lv_name":"hvnode-1.0-0.20261125.0+1", "lv_tags":"hvnode:layer", "origin":"hvnode-1.0-0.20261125.0", "lv_attr":"Vwi-aotz--", "lv_size":"6442450944", "data_percent":"20.31", "metadata_percent":""},
                  {"lv_name":"pool00", "lv_tags":"hvnode:pool", "origin":"", "lv_attr":"twi-aotz--", "lv_size":"47064334336", "data_percent":"4.52", "metadata_percent":"11.85"},
                  {"lv_name":"var", "lv_tags":"hvnode:volume", "origin":"", "lv_attr":"Vwi-aotz--", "lv_size":"5368709120", "data_percent":"3.10", "metadata_percent":""},
                  {"lv_name":"scratch", "lv_tags":"", "origin":"", "lv_attr":"-wi-a-----", "lv_size":"1073741824", "data_percent":"", "metadata_percent":""}
              ]
          }
      ]
  }"#;

    #[test]
    fn inventory_comes_from_tags() {
        let lvs = parse_lvs(LVS).unwrap();
        assert_eq!(lvs.len(), 5);
        let inv = inventory_of(&lvs);
        assert_eq!(inv.bases.len(), 1);
        assert_eq!(inv.layers.len(), 1);
        assert_eq!(
            inv.latest_layer().unwrap().to_string(),
            "hvnode-1.0-0.20261125.0+1"
        );
        assert!(lvs[2].has_tag(TAG_POOL) && !lvs[2].has_tag(TAG_BASE));
    }

    #[test]
    fn root_arguments_name_the_layer_volume() {
        let s = LvmStore::new("hvnode", "pool00");
        let l: LayerName = "hvnode-1.0-0.20261125.0+1".parse().unwrap();
        let r = s.root_args(&l).unwrap();
        assert_eq!(
            r.args,
            [
                "root=/dev/hvnode/hvnode-1.0-0.20261125.0+1",
                "rd.lvm.vg=hvnode",
                "ro"
            ]
        );
        assert_eq!(r.fstab_options, "defaults,discard");
    }

    #[test]
    fn the_pool_is_made_as_autopart_made_it_or_to_a_size() {
        let mut spec = PoolSpec {
            vg: "hvnode".into(),
            pool: "pool00".into(),
            size: PoolSize::PercentOfVg(80),
            extent_bytes: None,
            metadata_bytes: None,
            chunk_bytes: None,
        };
        assert_eq!(
            spec.lvcreate_args().join(" "),
            "-y --type thin-pool --zero y -l80%VG --addtag hvnode:pool -n pool00 hvnode"
        );
        spec.size = PoolSize::Bytes((40 << 30) + 100);
        spec.metadata_bytes = Some(1 << 30);
        spec.chunk_bytes = Some(64 << 20);
        assert_eq!(
            spec.lvcreate_args().join(" "),
            "-y --type thin-pool --zero y -L42949672960b --poolmetadatasize=1048576k --chunksize=65536k --addtag hvnode:pool -n pool00 hvnode"
        );
    }

    #[test]
    fn garbage_from_lvs_is_an_error_naming_lvs() {
        let e = parse_lvs("not json").unwrap_err();
        assert!(format!("{e:#}").contains("lvs"));
    }
}
