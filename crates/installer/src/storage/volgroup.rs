//! The LVM half of an explicit layout: the one volume group over the
//! `pv.ID` partitions, its thin pool, the root (a thin volume whose name is
//! replaced by the image's NVR and `NVR+1`) and the logical volumes, sized
//! as Anaconda sizes them: fixed sizes first, then `--percent` of what is
//! left, then `--grow` shares the rest, all in whole extents.
//!
//! [`plan`] goes in phases, each refusing what it cannot take with the
//! line it comes from: the `volgroup` line and its physical volumes; the
//! `logvol` lines, the pool and the root among them; each other volume
//! (claiming its mount point); the group's sizes ([`sizing::group_sizes`]);
//! then the root and the thin volumes in the pool
//! ([`sizing::thin_sizes`]) and the notes about them.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use kickstart::commands::{Logvol, Volgroup};
use kickstart::node::At;
use layers::lvm::{PoolSize, PoolSpec};
use layers::volumes::ROOT_MIN;
use layers::{LayerName, Nvr};

use super::checks::{MountPoints, check_mountpoint, label_for, split_words, volume_fstype};
use super::sizing::{
    self, GroupRequest, GroupShortfall, LvRequest, ThinRequest, ThinShortfall, ThinSizes,
};
use super::{Backing, MIB, PlannedPartition, PlannedVolume, Role, VgPlan, mib, swap_bytes};
use crate::disks::human;

/// Where the data volume at the start of a PV begins (pvcreate's default
/// alignment).
const PV_HEADER: u64 = MIB;

/// What the LVM half of a layout is planned from.
pub(super) struct LvmInput<'a> {
    pub volgroups: &'a [At<Volgroup>],
    pub logvols: &'a [At<Logvol>],
    /// The layout's partitions, numbered and sized.
    pub partitions: &'a [PlannedPartition],
    /// The machine's memory, for recommended swap sizes.
    pub ram: u64,
}

/// The volume group, the root in its pool, and its volumes.
pub(super) struct LvmPlan {
    pub vg: VgPlan,
    /// The root's virtual size.
    pub root_bytes: u64,
    /// The root's `--fsoptions`.
    pub root_options: Option<String>,
    /// The thin volumes, then the thick ones, each in kickstart order.
    pub volumes: Vec<PlannedVolume>,
}

/// `ks.cfg:12: logvol / --name=root` — how errors name a line.
fn at_lv(l: &At<Logvol>) -> String {
    format!(
        "{}: logvol {} --name={}",
        l.loc, l.item.mntpoint, l.item.name
    )
}

/// Valid LVM names: letters, digits, `+_.-`, not starting with `-`, none of
/// lvm's reserved words; and not shaped like an image base or layer.
fn check_lv_name(what: &str, kind: &str, name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c));
    let reserved = [
        "_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare", "_rimage", "_rmeta",
        "_tdata", "_tmeta", "_vorigin",
    ];
    if name.is_empty()
        || !ok_chars
        || name.starts_with('-')
        || name == "."
        || name == ".."
        || name.len() > 127
        || ["snapshot", "pvmove"].contains(&name)
        || reserved.iter().any(|r| name.contains(r))
    {
        bail!(
            "{what}: {name:?} is not a valid {kind} name (letters, digits and + _ . -, not starting with -)"
        );
    }
    if name.parse::<Nvr>().is_ok() || name.parse::<LayerName>().is_ok() {
        bail!("{what}: {name} has the form of an image base or layer name, which the layers use");
    }
    Ok(())
}

/// The volume group, its thin pool, the root and the logical volumes.
pub(super) fn plan(
    input: &LvmInput,
    mounts: &mut MountPoints,
    notes: &mut Vec<String>,
) -> Result<LvmPlan> {
    let group = Group::of(input.volgroups, input.logvols)?;
    let space = group.space(input.partitions, notes)?;
    group.check_logvols(input.logvols)?;
    let lines = PoolAndRoot::of(&group, input.logvols)?;
    let mut lvs = Lvs::default();
    let mut names = LvNames::new(&lines);
    for l in input
        .logvols
        .iter()
        .filter(|l| !l.item.thinpool && l.item.mntpoint != "/")
    {
        let lv = lines.volume(&group, l, input.ram, &mut names, mounts, notes)?;
        if l.item.thin {
            lvs.thin.push(lv);
        } else {
            lvs.thick.push(lv);
        }
    }
    let pool_bytes = size_group(&group, &space, &lines, &mut lvs.thick)?;
    let root_bytes = lines.size_root_and_thin(&group, pool_bytes, &mut lvs.thin, mounts, notes)?;

    let v = &group.line.item;
    let p = &lines.pool.item;
    let spec = PoolSpec {
        vg: v.vgname.clone(),
        pool: p.name.clone(),
        size: PoolSize::Bytes(pool_bytes),
        extent_bytes: v.pesize.map(|_| group.extent),
        metadata_bytes: lines.metadata(),
        chunk_bytes: p.chunksize.filter(|c| *c > 0).map(|c| c as u64 * 1024),
    };
    let mut volumes: Vec<PlannedVolume> = lvs.thin.into_iter().map(|t| t.volume).collect();
    volumes.extend(lvs.thick.into_iter().map(|t| t.volume));
    Ok(LvmPlan {
        vg: VgPlan {
            spec,
            pvs: space.pvs,
            vg_bytes: space.vg_bytes,
            reserved_bytes: space.reserved_bytes,
            reserved_why: space.reserved_why,
            pool_bytes,
        },
        root_bytes,
        root_options: lines.root.item.fsoptions.clone(),
        volumes,
    })
}

/// The one `volgroup` line, checked.
struct Group<'a> {
    line: &'a At<Volgroup>,
    /// How errors name it: `ks.cfg:5: volgroup hvnode`.
    what: String,
    /// Its extent size (`--pesize`, else 4 MiB).
    extent: u64,
}

/// The group's physical volumes and the room in it.
struct Space {
    /// The partitions that are its physical volumes.
    pvs: Vec<u32>,
    /// Their sizes in whole extents.
    vg_bytes: u64,
    /// Kept free (`--reserved-space`/`--reserved-percent`), and why.
    reserved_bytes: u64,
    reserved_why: String,
}

impl<'a> Group<'a> {
    /// The layout's one volume group; refuses none, several, or reuse.
    fn of(volgroups: &'a [At<Volgroup>], logvols: &[At<Logvol>]) -> Result<Self> {
        let Some(g) = volgroups.first() else {
            if let Some(l) = logvols.first() {
                bail!(
                    "{}: there is no volgroup {} (write `volgroup {} pv.01` over a `part pv.01`)",
                    at_lv(l),
                    l.item.vgname,
                    l.item.vgname
                );
            }
            bail!(
                "the layout has no root: a node needs `part pv.01 --grow`, `volgroup NAME pv.01`, `logvol none --vgname=NAME --thinpool --name=pool00 --size=1 --grow` and `logvol / --vgname=NAME --thin --poolname=pool00 --name=root --size=8192` (see kickstart/manual-thin.ks)"
            );
        };
        let what = format!("{}: volgroup {}", g.loc, g.item.vgname);
        if let Some(second) = volgroups.get(1) {
            bail!(
                "{}: volgroup {}: a node has one volume group (its layer store, {}); put every logvol in it",
                second.loc,
                second.item.vgname,
                g.item.vgname
            );
        }
        let v = &g.item;
        if v.useexisting || v.noformat {
            bail!("{what}: --useexisting/--noformat reuse a group; a node's disk is laid out anew");
        }
        check_lv_name(&what, "volume group", &v.vgname)?;
        let extent = match v.pesize {
            None => 4 * MIB,
            Some(k) if k > 0 && (k as u64).is_power_of_two() => k as u64 * 1024,
            Some(k) => bail!("{what}: --pesize={k} is not a power of two (KiB)"),
        };
        Ok(Group {
            line: g,
            what,
            extent,
        })
    }

    fn name(&self) -> &str {
        &self.line.item.vgname
    }

    /// Its physical volumes among `parts` and what is kept free; notes the
    /// `pv.ID` partitions it leaves out.
    fn space(&self, parts: &[PlannedPartition], notes: &mut Vec<String>) -> Result<Space> {
        let (v, what, pe) = (&self.line.item, &self.what, self.extent);
        let mut vg_bytes = 0;
        let mut pvs = Vec::new();
        for id in &v.partitions {
            let Some(p) = parts.iter().find(|p| p.role == Role::Pv && &p.name == id) else {
                bail!(
                    "{what}: {id} is not a partition of this kickstart (write `part {id} --size=… --grow`)"
                );
            };
            if pvs.contains(&p.number) {
                bail!("{what}: {id} is named twice");
            }
            pvs.push(p.number);
            vg_bytes += p.bytes.saturating_sub(PV_HEADER) / pe * pe;
        }
        for p in parts
            .iter()
            .filter(|p| p.role == Role::Pv && !pvs.contains(&p.number))
        {
            notes.push(format!(
                "{} is an LVM physical volume of no volume group: its space is not used",
                p.from.as_deref().unwrap_or(&p.name)
            ));
        }
        let (reserved_bytes, reserved_why) = match (v.reserved_space, v.reserved_percent) {
            (Some(s), _) => (mib(s).div_ceil(pe) * pe, format!("--reserved-space={s}")),
            (None, Some(p)) => (
                (vg_bytes / 100 * p as u64).div_ceil(pe) * pe,
                format!("--reserved-percent={p}"),
            ),
            (None, None) => (0, "no --reserved-percent or --reserved-space".into()),
        };
        Ok(Space {
            pvs,
            vg_bytes,
            reserved_bytes,
            reserved_why,
        })
    }

    /// Every logvol is new, in this group, unencrypted and uncached.
    fn check_logvols(&self, logvols: &[At<Logvol>]) -> Result<()> {
        for l in logvols {
            let x = &l.item;
            let what = at_lv(l);
            if x.vgname != self.name() {
                bail!(
                    "{what}: --vgname={}: there is no volgroup {} (the node's group is {})",
                    x.vgname,
                    x.vgname,
                    self.name()
                );
            }
            if x.useexisting || x.noformat || x.resize {
                bail!(
                    "{what}: --useexisting/--noformat/--resize reuse a volume; a node's disk is laid out anew"
                );
            }
            if x.encrypted {
                bail!("{what}: --encrypted is not supported on a node yet");
            }
            if x.cachesize.is_some() || !x.cachepvs.is_empty() {
                bail!("{what}: LVM cache is not supported on a node");
            }
        }
        Ok(())
    }
}

/// The group's one thin pool and the root, checked.
struct PoolAndRoot<'a> {
    pool: &'a At<Logvol>,
    /// How errors name the pool's line.
    pool_what: String,
    root: &'a At<Logvol>,
}

/// A logical volume on its way into the plan.
struct Lv<'a> {
    line: &'a At<Logvol>,
    volume: PlannedVolume,
    /// `--percent`: of what the group's fixed sizes leave (thick), of the
    /// pool (thin).
    percent: Option<i64>,
}

/// The names of the group's logical volumes so far, each with the line
/// that took it.
struct LvNames {
    taken: BTreeMap<String, String>,
}

impl LvNames {
    /// The pool's name is taken first.
    fn new(lines: &PoolAndRoot) -> Self {
        let mut taken = BTreeMap::new();
        taken.insert(lines.pool.item.name.clone(), lines.pool_what.clone());
        LvNames { taken }
    }

    /// Takes `name` for the line `what`; refuses a name taken before.
    fn take(&mut self, name: &str, what: &str, vg: &str) -> Result<()> {
        if let Some(first) = self.taken.get(name) {
            bail!("{what}: {first} already has the name {name} in {vg}");
        }
        self.taken.insert(name.to_string(), what.to_string());
        Ok(())
    }
}

/// The group's volumes other than the pool and the root.
#[derive(Default)]
struct Lvs<'a> {
    thin: Vec<Lv<'a>>,
    thick: Vec<Lv<'a>>,
}

impl<'a> PoolAndRoot<'a> {
    /// Finds the pool and the root; refuses none, two pools, or a thick
    /// root.
    fn of(group: &Group, logvols: &'a [At<Logvol>]) -> Result<Self> {
        let root = logvols.iter().find(|l| l.item.mntpoint == "/");
        let pools: Vec<&At<Logvol>> = logvols.iter().filter(|l| l.item.thinpool).collect();
        let Some(&pool) = pools.first() else {
            match root {
                Some(r) => bail!(
                    "{}: a node's root must be a thin LV so that layers can be snapshots: add `logvol none --vgname={} --thinpool --name=pool00 --size=1 --grow` and give the root --thin --poolname=pool00",
                    at_lv(r),
                    group.name()
                ),
                None => bail!(
                    "{}: the group has no thin pool (logvol none --thinpool) and no root (logvol / --thin)",
                    group.what
                ),
            }
        };
        if let Some(second) = pools.get(1) {
            bail!(
                "{}: a node has one thin pool ({}) for its layers and volumes",
                at_lv(second),
                pool.item.name
            );
        }
        let Some(root) = root else {
            bail!(
                "{}: the layout has no root: add `logvol / --vgname={} --thin --poolname={} --name=root --size=8192`",
                group.what,
                group.name(),
                pool.item.name
            );
        };
        if !root.item.thin {
            bail!(
                "{}: a node's root must be a thin LV so that layers can be snapshots; add --thin --poolname={}",
                at_lv(root),
                pool.item.name
            );
        }
        let pool_what = at_lv(pool);
        if pool.item.mntpoint != "none" {
            bail!("{pool_what}: a thin pool is not mounted; write `logvol none --thinpool …`");
        }
        check_lv_name(&pool_what, "logical volume", &pool.item.name)?;
        Ok(PoolAndRoot {
            pool,
            pool_what,
            root,
        })
    }

    /// The pool's `--metadatasize`, if given.
    fn metadata(&self) -> Option<u64> {
        self.pool.item.metadatasize.filter(|m| *m > 0).map(mib)
    }

    /// A logical volume other than the pool and the root, checked, its
    /// mount point claimed, at its asked-for size.
    fn volume(
        &self,
        group: &Group,
        l: &'a At<Logvol>,
        ram: u64,
        names: &mut LvNames,
        mounts: &mut MountPoints,
        notes: &mut Vec<String>,
    ) -> Result<Lv<'a>> {
        let x = &l.item;
        let what = at_lv(l);
        let pool = &self.pool.item.name;
        if x.thin && x.poolname.as_deref() != Some(pool.as_str()) {
            bail!(
                "{what}: --poolname={}: there is no thin pool of that name in {} (the pool is {pool})",
                x.poolname.as_deref().unwrap_or(""),
                group.name(),
            );
        }
        let mp = if x.fstype.as_deref() == Some("swap") {
            "swap"
        } else {
            x.mntpoint.as_str()
        };
        if mp == "none" {
            bail!("{what}: only a thin pool (--thinpool) goes without a mount point");
        }
        if mp != "swap" {
            check_mountpoint(&what, mp)?;
        }
        check_lv_name(&what, "logical volume", &x.name)?;
        names.take(&x.name, &what, group.name())?;
        mounts.claim(mp, what.clone())?;
        let fstype = volume_fstype(&what, mp, x.fstype.as_deref())?;
        let bytes = if x.recommended || x.hibernation {
            swap_bytes(ram)
        } else {
            x.size.map(mib).unwrap_or(0)
        };
        if x.thin && x.grow {
            notes.push(format!(
                "{what}: --grow does nothing for a thin volume: its virtual size is --size"
            ));
        }
        let default_options = if x.thin {
            "defaults,discard"
        } else {
            "defaults"
        };
        let volume = PlannedVolume {
            name: x.name.clone(),
            mountpoint: mp.into(),
            bytes,
            label: label_for(&fstype, &x.name, x.label.as_deref(), &what)?,
            fstype,
            backing: if x.thin {
                Backing::Thin
            } else {
                Backing::Thick
            },
            options: x
                .fsoptions
                .clone()
                .unwrap_or_else(|| default_options.into()),
            mkfs_options: split_words(x.mkfsoptions.as_deref()),
        };
        Ok(Lv {
            line: l,
            volume,
            percent: x.percent,
        })
    }

    /// Checks the root and sizes it and the thin volumes in a pool of
    /// `pool_bytes`; notes what of the root's line is not applied, and an
    /// overcommitted pool. The root's size.
    fn size_root_and_thin(
        &self,
        group: &Group,
        pool_bytes: u64,
        thin: &mut [Lv],
        mounts: &mut MountPoints,
        notes: &mut Vec<String>,
    ) -> Result<u64> {
        let (r, p) = (&self.root.item, &self.pool.item);
        let rwhat = at_lv(self.root);
        if r.poolname.as_deref() != Some(p.name.as_str()) {
            bail!(
                "{rwhat}: --poolname={}: there is no thin pool of that name in {} (the pool is {})",
                r.poolname.as_deref().unwrap_or(""),
                group.name(),
                p.name
            );
        }
        mounts.claim("/", rwhat.clone())?;
        let root = ThinRequest {
            bytes: r.size.map(mib).unwrap_or(0),
            percent: r.percent,
        };
        let requests: Vec<ThinRequest> = thin
            .iter()
            .map(|t| ThinRequest {
                bytes: t.volume.bytes,
                percent: t.percent,
            })
            .collect();
        let ThinSizes {
            root_bytes,
            thin_bytes,
            virtual_bytes,
        } = match sizing::thin_sizes(pool_bytes, root, &requests) {
            Ok(sizes) => sizes,
            Err(ThinShortfall::RootBelowMinimum) => bail!(
                "{rwhat}: the root needs at least {} (each layer holds the whole image); give --size={} or more",
                human(ROOT_MIN),
                ROOT_MIN / MIB
            ),
            Err(ThinShortfall::Unsized { thin: i }) => bail!(
                "{}: give its size (--size=MiB, --percent of the pool or --recommended)",
                thin.get(i).map_or_else(String::new, |t| at_lv(t.line))
            ),
        };
        for (t, bytes) in thin.iter_mut().zip(thin_bytes) {
            t.volume.bytes = bytes;
        }
        notes.extend(self.root_notes(group, root_bytes));
        if virtual_bytes > pool_bytes {
            notes.push(format!(
                "the root and the thin volumes are {} (virtual) in a pool of {}: the pool is overcommitted; nodectl check fails when it is 80% full",
                human(virtual_bytes),
                human(pool_bytes)
            ));
        }
        Ok(root_bytes)
    }

    /// What becomes of the root's line: its name replaced, options that do
    /// not apply to the image's file system.
    fn root_notes(&self, group: &Group, root_bytes: u64) -> Vec<String> {
        let (r, p) = (&self.root.item, &self.pool.item);
        let rwhat = at_lv(self.root);
        let mut notes = vec![format!(
            "{rwhat}: the root is the image's base, named by its NVR, and its writable layer NVR+1, thin volumes of {} each in {}/{} (the name {} is replaced, as RHVH does)",
            human(root_bytes),
            group.name(),
            p.name,
            r.name
        )];
        if r.fstype.as_deref().is_some_and(|t| t != "ext4") {
            notes.push(format!(
                "{rwhat}: the root is the image's own ext4 file system; --fstype={} is not applied",
                r.fstype.as_deref().unwrap_or_default()
            ));
        }
        if r.label.is_some() || r.mkfsoptions.is_some() {
            notes.push(format!(
                "{rwhat}: --label/--mkfsoptions do not apply: the root is the image's file system"
            ));
        }
        if r.grow {
            notes.push(format!(
                "{rwhat}: --grow does nothing for a thin volume: its virtual size is --size"
            ));
        }
        notes
    }
}

/// Sizes the pool and the thick volumes in the group (as
/// [`sizing::group_sizes`] does); the pool's size.
fn size_group(group: &Group, space: &Space, lines: &PoolAndRoot, thick: &mut [Lv]) -> Result<u64> {
    let p = &lines.pool.item;
    let max = |m: Option<i64>| m.filter(|m| *m > 0).map(mib);
    let requests: Vec<LvRequest> = thick
        .iter()
        .map(|t| LvRequest {
            bytes: t.volume.bytes,
            percent: t.percent,
            grow: t.line.item.grow,
            max: max(t.line.item.maxsize),
        })
        .collect();
    let free = space.vg_bytes.saturating_sub(space.reserved_bytes);
    let request = GroupRequest {
        free,
        extent: group.extent,
        metadata: lines.metadata(),
        pool: LvRequest {
            bytes: p.size.map(mib).unwrap_or(0),
            percent: p.percent,
            grow: p.grow,
            max: max(p.maxsize),
        },
        thick: &requests,
    };
    let sizes = match sizing::group_sizes(&request) {
        Ok(sizes) => sizes,
        Err(GroupShortfall::Short { need, metadata }) => bail!(
            "{}: the logical volumes need {} (with {} for pool metadata), the group has {} ({} less {} kept free by {})",
            group.what,
            human(need),
            human(metadata),
            human(free),
            human(space.vg_bytes),
            human(space.reserved_bytes),
            space.reserved_why
        ),
        Err(GroupShortfall::Unsized { thick: i }) => bail!(
            "{}: give its size (--size=MiB, --percent or --recommended)",
            thick.get(i).map_or_else(String::new, |t| at_lv(t.line))
        ),
        Err(GroupShortfall::PoolUnsized) => bail!(
            "{}: give the pool a size (--size=MiB with --grow, or --percent)",
            lines.pool_what
        ),
    };
    for (t, bytes) in thick.iter_mut().zip(sizes.thick_bytes) {
        t.volume.bytes = bytes;
    }
    Ok(sizes.pool_bytes)
}
