//! The LVM half of an explicit layout: the one volume group over the
//! `pv.ID` partitions, its thin pool, the root (a thin volume whose name is
//! replaced by the image's NVR and `NVR+1`) and the logical volumes, sized
//! as Anaconda sizes them: fixed sizes first, then `--percent` of what is
//! left, then `--grow` shares the rest, all in whole extents.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use kickstart::commands::{Logvol, Volgroup};
use kickstart::node::At;
use layers::lvm::{PoolSize, PoolSpec};
use layers::volumes::ROOT_MIN;
use layers::{LayerName, Nvr};

use super::manual::{check_mountpoint, label_for, split_words, volume_fstype};
use super::{Backing, MIB, PlannedPartition, PlannedVolume, Role, VgPlan, grow, mib, swap_bytes};
use crate::disks::human;

/// What pool metadata is budgeted when lvm chooses its size (its default
/// stays at or below this), twice: the pool's and the spare copy.
const METADATA_BUDGET: u64 = 128 * MIB;

/// Where the data volume at the start of a PV begins (pvcreate's default
/// alignment).
const PV_HEADER: u64 = MIB;

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

/// The group, the root's size and fstab options, and the volumes.
pub(super) type LvmPlan = (VgPlan, u64, Option<String>, Vec<PlannedVolume>);

/// The volume group, its thin pool, the root and the logical volumes.
pub(super) fn plan(
    volgroups: &[At<Volgroup>],
    logvols: &[At<Logvol>],
    parts: &[PlannedPartition],
    ram: u64,
    claim: &mut dyn FnMut(&str, String) -> Result<()>,
    notes: &mut Vec<String>,
) -> Result<LvmPlan> {
    let root = logvols.iter().find(|l| l.item.mntpoint == "/");
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
    let what_vg = format!("{}: volgroup {}", g.loc, g.item.vgname);
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
        bail!("{what_vg}: --useexisting/--noformat reuse a group; a node's disk is laid out anew");
    }
    check_lv_name(&what_vg, "volume group", &v.vgname)?;
    let pe = match v.pesize {
        None => 4 * MIB,
        Some(k) if k > 0 && (k as u64).is_power_of_two() => k as u64 * 1024,
        Some(k) => bail!("{what_vg}: --pesize={k} is not a power of two (KiB)"),
    };
    let mut vg_bytes = 0;
    let mut pvs = Vec::new();
    for id in &v.partitions {
        let Some(p) = parts.iter().find(|p| p.role == Role::Pv && &p.name == id) else {
            bail!(
                "{what_vg}: {id} is not a partition of this kickstart (write `part {id} --size=… --grow`)"
            );
        };
        if pvs.contains(&p.number) {
            bail!("{what_vg}: {id} is named twice");
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
    let free = vg_bytes.saturating_sub(reserved_bytes);

    // Every logvol in this group; one pool.
    for l in logvols {
        let x = &l.item;
        let what = at_lv(l);
        if x.vgname != v.vgname {
            bail!(
                "{what}: --vgname={}: there is no volgroup {} (the node's group is {})",
                x.vgname,
                x.vgname,
                v.vgname
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
    let pools: Vec<&At<Logvol>> = logvols.iter().filter(|l| l.item.thinpool).collect();
    let Some(pool) = pools.first() else {
        match root {
            Some(r) => bail!(
                "{}: a node's root must be a thin LV so that layers can be snapshots: add `logvol none --vgname={} --thinpool --name=pool00 --size=1 --grow` and give the root --thin --poolname=pool00",
                at_lv(r),
                v.vgname
            ),
            None => bail!(
                "{what_vg}: the group has no thin pool (logvol none --thinpool) and no root (logvol / --thin)"
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
            "{what_vg}: the layout has no root: add `logvol / --vgname={} --thin --poolname={} --name=root --size=8192`",
            v.vgname,
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
    let pwhat = at_lv(pool);
    if pool.item.mntpoint != "none" {
        bail!("{pwhat}: a thin pool is not mounted; write `logvol none --thinpool …`");
    }
    check_lv_name(&pwhat, "logical volume", &pool.item.name)?;

    // Thick volumes and the pool share the group.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    names.insert(pool.item.name.clone(), pwhat.clone());
    let mut thick: Vec<(&At<Logvol>, PlannedVolume, Option<i64>)> = Vec::new();
    let mut thin: Vec<(&At<Logvol>, PlannedVolume, Option<i64>)> = Vec::new();
    for l in logvols
        .iter()
        .filter(|l| !l.item.thinpool && l.item.mntpoint != "/")
    {
        let x = &l.item;
        let what = at_lv(l);
        if x.thin && x.poolname.as_deref() != Some(pool.item.name.as_str()) {
            bail!(
                "{what}: --poolname={}: there is no thin pool of that name in {} (the pool is {})",
                x.poolname.as_deref().unwrap_or(""),
                v.vgname,
                pool.item.name
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
        if let Some(first) = names.insert(x.name.clone(), what.clone()) {
            bail!(
                "{what}: {first} already has the name {} in {}",
                x.name,
                v.vgname
            );
        }
        claim(mp, what.clone())?;
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
        let vol = PlannedVolume {
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
        if x.thin {
            thin.push((l, vol, x.percent));
        } else {
            thick.push((l, vol, x.percent));
        }
    }

    // Space in the group: fixed sizes first, then --percent of what is
    // left, then --grow shares the rest (as Anaconda does).
    let up = |b: u64| b.div_ceil(pe) * pe;
    let p = &pool.item;
    let metadata = p.metadatasize.filter(|m| *m > 0).map(mib);
    let chunk = p.chunksize.filter(|c| *c > 0).map(|c| c as u64 * 1024);
    let meta_budget = 2 * up(metadata.unwrap_or(METADATA_BUDGET));
    let pool_base = up(p.size.map(mib).unwrap_or(0));
    let fixed: u64 = thick
        .iter()
        .filter(|t| t.2.is_none())
        .map(|t| up(t.1.bytes))
        .sum::<u64>()
        + if p.percent.is_none() { pool_base } else { 0 }
        + meta_budget;
    let need_msg = |need: u64| {
        format!(
            "{what_vg}: the logical volumes need {} (with {} for pool metadata), the group has {} ({} less {} kept free by {reserved_why})",
            human(need),
            human(meta_budget),
            human(free),
            human(vg_bytes),
            human(reserved_bytes)
        )
    };
    if fixed > free {
        bail!("{}", need_msg(fixed));
    }
    let after_fixed = free - fixed;
    let pct = |n: i64| after_fixed / 100 * n as u64 / pe * pe;
    let mut pool_bytes = match p.percent {
        Some(n) => pct(n),
        None => pool_base,
    };
    for t in thick.iter_mut() {
        if let Some(n) = t.2 {
            t.1.bytes = pct(n);
        } else {
            t.1.bytes = up(t.1.bytes);
        }
        if t.1.bytes == 0 && !t.0.item.grow {
            bail!(
                "{}: give its size (--size=MiB, --percent or --recommended)",
                at_lv(t.0)
            );
        }
    }
    let used = fixed - meta_budget
        + thick
            .iter()
            .filter(|t| t.2.is_some())
            .map(|t| t.1.bytes)
            .sum::<u64>()
        + if p.percent.is_some() { pool_bytes } else { 0 };
    if used + meta_budget > free {
        bail!("{}", need_msg(used + meta_budget));
    }
    let extra = free - used - meta_budget;
    // The growing ones: the pool (first) and thick volumes.
    let mut reqs: Vec<(u64, Option<u64>)> = Vec::new();
    if p.grow {
        reqs.push((pool_bytes, p.maxsize.filter(|m| *m > 0).map(mib)));
    }
    let growing: Vec<usize> = (0..thick.len()).filter(|&i| thick[i].0.item.grow).collect();
    for &i in &growing {
        reqs.push((
            thick[i].1.bytes,
            thick[i].0.item.maxsize.filter(|m| *m > 0).map(mib),
        ));
    }
    let grown = grow(&reqs, extra, pe);
    let mut k = 0;
    if p.grow {
        pool_bytes = grown[0];
        k = 1;
    }
    for &i in &growing {
        thick[i].1.bytes = grown[k];
        k += 1;
    }
    if pool_bytes == 0 {
        bail!("{pwhat}: give the pool a size (--size=MiB with --grow, or --percent)");
    }

    // The root and the thin volumes: virtual sizes in the pool.
    let r = &root.item;
    let rwhat = at_lv(root);
    if r.poolname.as_deref() != Some(p.name.as_str()) {
        bail!(
            "{rwhat}: --poolname={}: there is no thin pool of that name in {} (the pool is {})",
            r.poolname.as_deref().unwrap_or(""),
            v.vgname,
            p.name
        );
    }
    claim("/", rwhat.clone())?;
    let of_pool = |n: i64| pool_bytes / 100 * n as u64 / MIB * MIB;
    let root_bytes = match (r.size, r.percent) {
        (_, Some(n)) => of_pool(n),
        (Some(s), None) => mib(s),
        (None, None) => 0,
    };
    if root_bytes < ROOT_MIN {
        bail!(
            "{rwhat}: the root needs at least {} (each layer holds the whole image); give --size={} or more",
            human(ROOT_MIN),
            ROOT_MIN / MIB
        );
    }
    notes.push(format!(
        "{rwhat}: the root is the image's base, named by its NVR, and its writable layer NVR+1, thin volumes of {} each in {}/{} (the name {} is replaced, as RHVH does)",
        human(root_bytes),
        v.vgname,
        p.name,
        r.name
    ));
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
    for t in thin.iter_mut() {
        if let Some(n) = t.2 {
            t.1.bytes = of_pool(n);
        }
        if t.1.bytes == 0 {
            bail!(
                "{}: give its size (--size=MiB, --percent of the pool or --recommended)",
                at_lv(t.0)
            );
        }
    }
    let virtual_total = root_bytes + thin.iter().map(|t| t.1.bytes).sum::<u64>();
    if virtual_total > pool_bytes {
        notes.push(format!(
            "the root and the thin volumes are {} (virtual) in a pool of {}: the pool is overcommitted; nodectl check fails when it is 80% full",
            human(virtual_total),
            human(pool_bytes)
        ));
    }
    let spec = PoolSpec {
        vg: v.vgname.clone(),
        pool: p.name.clone(),
        size: PoolSize::Bytes(pool_bytes),
        extent_bytes: v.pesize.map(|_| pe),
        metadata_bytes: metadata,
        chunk_bytes: chunk,
    };
    let mut volumes: Vec<PlannedVolume> = thin.into_iter().map(|t| t.1).collect();
    volumes.extend(thick.into_iter().map(|t| t.1));
    Ok((
        VgPlan {
            spec,
            pvs,
            vg_bytes,
            reserved_bytes,
            reserved_why,
            pool_bytes,
        },
        root_bytes,
        r.fsoptions.clone(),
        volumes,
    ))
}
