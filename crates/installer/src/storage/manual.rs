//! Explicit layouts — `reqpart`, `part`, `volgroup`, `logvol` — honoured as
//! written and mapped onto the thin-LVM store, as RHVH documents its
//! custom layout: the platform partitions (from `reqpart` or written out),
//! physical volumes, one volume group with one thin pool, the root as a
//! thin volume (whose name is replaced: the image base is named by its NVR
//! and the writable layer `NVR+1`), and separate volumes wherever the
//! administrator puts them. Everything is checked here, before anything is
//! written, and each error names the kickstart line.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use kickstart::commands::{Logvol, Partition};
use kickstart::node::{At, Disks, Layout};
use layers::lvm::{PoolSize, PoolSpec};
use layers::volumes::{BIOS_BOOT_SIZE, BOOT_SIZE, EFI_SIZE, ROOT_MIN};
use layers::{LayerName, Nvr};

use super::{
    Backing, DISK_OVERHEAD, MIB, PlannedPartition, PlannedVolume, Role, StoragePlan, StorePlan,
    VgPlan, choose_disk, grow, mib, swap_bytes,
};
use crate::disks::{self, Device, human};

/// What RHVH requires on separate volumes; missing ones are noted.
pub const RHVH_SEPARATE: [&str; 5] = [
    "/var",
    "/var/log",
    "/var/log/audit",
    "/var/tmp",
    "/var/crash",
];

/// Parts of the image, updated with each layer: never separate volumes.
const IMAGE_PATHS: [&str; 13] = [
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/proc",
    "/sys", "/dev", "/run",
];

/// What pool metadata is budgeted when lvm chooses its size (its default
/// stays at or below this), twice: the pool's and the spare copy.
const METADATA_BUDGET: u64 = 128 * MIB;

/// Where the data volume at the start of a PV begins (pvcreate's default
/// alignment).
const PV_HEADER: u64 = MIB;

/// `ks.cfg:12: part pv.01` — how errors name a line.
fn at_part(p: &At<Partition>) -> String {
    format!("{}: part {}", p.loc, p.item.mntpoint)
}

fn at_lv(l: &At<Logvol>) -> String {
    format!(
        "{}: logvol {} --name={}",
        l.loc, l.item.mntpoint, l.item.name
    )
}

/// A partition on its way into the plan.
struct Part {
    role: Role,
    name: String,
    code: &'static str,
    base: u64,
    grow: bool,
    max: Option<u64>,
    label: String,
    options: String,
    from: Option<String>,
    /// For plain file systems and swap.
    volume: Option<PlannedVolume>,
}

/// Checks a separate volume's mount point.
fn check_mountpoint(what: &str, mp: &str) -> Result<()> {
    if !mp.starts_with('/') {
        bail!("{what}: {mp:?} is not a mount point (an absolute path, swap, or none for a pool)");
    }
    if let Some(img) = IMAGE_PATHS
        .iter()
        .find(|p| mp == **p || mp.starts_with(&format!("{p}/")))
    {
        bail!(
            "{what}: {mp} is part of the image ({img} is replaced with each layer); it cannot be a separate volume"
        );
    }
    Ok(())
}

/// `var_lib_images` for `/var/lib/images`.
fn name_of(mp: &str) -> String {
    if mp == "swap" {
        return "swap".into();
    }
    mp.trim_matches('/').replace('/', "_")
}

/// The default label of a volume: its name, cut to what `fstype` takes.
fn label_for(fstype: &str, name: &str, given: Option<&str>, what: &str) -> Result<String> {
    let max = match fstype {
        "xfs" => 12,
        "vfat" => 11,
        "swap" => 15,
        _ => 16,
    };
    match given {
        Some(l) if l.len() > max => {
            bail!("{what}: --label={l} is too long for {fstype} (at most {max} characters)")
        }
        Some(l) => Ok(l.to_string()),
        None => Ok(name.chars().take(max).collect()),
    }
}

/// ext4 (the default) or xfs for a volume; swap for swap.
fn volume_fstype(what: &str, mp: &str, given: Option<&str>) -> Result<String> {
    match (mp, given) {
        ("swap", None | Some("swap")) => Ok("swap".into()),
        ("swap", Some(t)) => bail!("{what}: swap cannot have --fstype={t}"),
        (_, None | Some("ext4")) => Ok("ext4".into()),
        (_, Some("xfs")) => Ok("xfs".into()),
        (_, Some("swap")) => bail!("{what}: --fstype=swap needs the mount point swap"),
        (_, Some(t)) => {
            bail!("{what}: --fstype={t} is not supported for a volume; use ext4 or xfs")
        }
    }
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

/// The plan of a `part`/`volgroup`/`logvol` layout.
pub fn plan(
    layout: &Layout,
    sel: &Disks,
    all: &[Device],
    boot_medium: Option<&str>,
    ram: u64,
    interactive_disk: Option<&str>,
) -> Result<StoragePlan> {
    let Layout::Manual {
        reqpart,
        partitions,
        volgroups,
        logvols,
        others,
    } = layout
    else {
        bail!("not a part/volgroup/logvol layout");
    };
    if let Some(o) = others.first() {
        match o.item.as_str() {
            "btrfs" => bail!(
                "{}: btrfs: btrfs layouts written with part btrfs.ID and btrfs are not supported; use `autopart --type=btrfs` for the btrfs layer store, or part/volgroup/logvol --thin for thin LVM",
                o.loc
            ),
            other => bail!(
                "{}: {other}: software RAID is not supported on a node; lay the node out on one disk (part/volgroup/logvol --thin, or autopart --type=thinp)",
                o.loc
            ),
        }
    }
    // The disk: the kickstart's selection, else the one --ondisk names.
    let named: Vec<&str> = partitions
        .iter()
        .filter_map(|p| p.item.ondisk.as_deref())
        .collect();
    let hint = named
        .first()
        .copied()
        .filter(|d| named.iter().all(|n| n == d));
    let (disk, wipe) = choose_disk(sel, all, boot_medium, interactive_disk, hint)?;
    let mut notes = Vec::new();
    let mut mountpoints: BTreeMap<String, String> = BTreeMap::new();
    let mut claim = |mp: &str, what: String| -> Result<()> {
        if let Some(first) = mountpoints.get(mp) {
            bail!("{what}: {mp} is already the mount point of {first}");
        }
        mountpoints.insert(mp.to_string(), what);
        Ok(())
    };

    // Partitions, in kickstart order; the platform ones are put first.
    let mut parts: Vec<Part> = Vec::new();
    for p in partitions {
        let x = &p.item;
        let what = at_part(p);
        if x.onpart.is_some() || x.noformat {
            bail!(
                "{what}: --onpart/--usepart/--noformat reuse a partition; a node's disk is laid out anew (clearpart --all)"
            );
        }
        if x.encrypted {
            bail!("{what}: --encrypted is not supported on a node yet");
        }
        if x.resize {
            bail!("{what}: --resize is not supported on a node");
        }
        if let Some(d) = x.ondisk.as_deref() {
            match disks::find(all, d) {
                None => bail!("{what} --ondisk={d}: this machine has no disk {d}"),
                Some(found) if found.path != disk.path => bail!(
                    "{what} --ondisk={d}: {d} is not the disk the node is installed on ({}); a node goes on one disk (select it with ignoredisk --only-use= or clearpart --drives=)",
                    disk.name
                ),
                Some(_) => {}
            }
        }
        let mp = x.mntpoint.as_str();
        let fstype = x.fstype.as_deref();
        let from = Some(what.clone());
        let base = x.size.map(mib);
        let sized = |default: Option<u64>| -> Result<u64> {
            match (base, default) {
                (Some(b), _) if b > 0 => Ok(b),
                (_, Some(d)) => Ok(d),
                _ if x.grow => Ok(MIB),
                _ => bail!("{what}: give its size in MiB (--size=) or let it --grow"),
            }
        };
        let part = |role, name: &str, code, base, label: String, options: String| Part {
            role,
            name: name.into(),
            code,
            base,
            grow: x.grow,
            max: x.maxsize.filter(|m| *m > 0).map(mib),
            label,
            options,
            from: from.clone(),
            volume: None,
        };
        let p = if mp == "biosboot" || fstype == Some("biosboot") {
            claim("biosboot", what.clone())?;
            part(
                Role::BiosBoot,
                "biosboot",
                "EF02",
                sized(Some(BIOS_BOOT_SIZE))?,
                String::new(),
                String::new(),
            )
        } else if mp == "/boot/efi" {
            if !matches!(fstype, None | Some("efi" | "vfat")) {
                bail!("{what}: the EFI system partition is vfat (--fstype=efi)");
            }
            claim(mp, what.clone())?;
            let label = label_for("vfat", "EFI", x.label.as_deref(), &what)?;
            let options = x
                .fsoptions
                .clone()
                .unwrap_or_else(|| "umask=0077,shortname=winnt".into());
            part(
                Role::Efi,
                "efi",
                "EF00",
                sized(Some(EFI_SIZE))?,
                label,
                options,
            )
        } else if mp == "/boot" {
            if !matches!(fstype, None | Some("ext4")) {
                bail!(
                    "{what}: hvnode's /boot is ext4 (grub reads the layers' kernels from it); remove --fstype or use --fstype=ext4"
                );
            }
            claim(mp, what.clone())?;
            let label = label_for("ext4", "boot", x.label.as_deref(), &what)?;
            let options = x
                .fsoptions
                .clone()
                .unwrap_or_else(|| "defaults,discard".into());
            part(
                Role::Boot,
                "boot",
                "8300",
                sized(Some(BOOT_SIZE))?,
                label,
                options,
            )
        } else if mp.starts_with("pv.") {
            part(
                Role::Pv,
                mp,
                "8E00",
                sized(None)?,
                String::new(),
                String::new(),
            )
        } else if mp == "/" {
            bail!(
                "{what}: a node's root cannot be a plain partition: its layers are thin snapshots of the image. Write `part pv.01 --grow`, `volgroup`, `logvol none --thinpool` and `logvol / --thin` (see kickstart/manual-thin.ks), or use autopart --type=thinp"
            );
        } else if mp.starts_with("btrfs.") || fstype == Some("btrfs") {
            bail!(
                "{what}: btrfs layouts written with part btrfs.ID and btrfs are not supported; use `autopart --type=btrfs` for the btrfs layer store"
            );
        } else if mp.starts_with("raid.") {
            bail!("{what}: software RAID is not supported on a node");
        } else if mp == "swap" || fstype == Some("swap") || mp.starts_with('/') {
            let mp = if fstype == Some("swap") { "swap" } else { mp };
            if mp != "swap" {
                check_mountpoint(&what, mp)?;
            }
            claim(mp, what.clone())?;
            let fs = volume_fstype(&what, mp, fstype)?;
            let name = name_of(mp);
            let bytes = if x.recommended || x.hibernation {
                swap_bytes(ram)
            } else {
                sized(None)?
            };
            let label = label_for(&fs, &name, x.label.as_deref(), &what)?;
            let mut p = part(
                Role::Volume,
                &name,
                if fs == "swap" { "8200" } else { "8300" },
                bytes,
                String::new(),
                String::new(),
            );
            p.volume = Some(PlannedVolume {
                name,
                mountpoint: mp.into(),
                bytes,
                fstype: fs,
                backing: Backing::Partition(0),
                options: x.fsoptions.clone().unwrap_or_else(|| "defaults".into()),
                label,
                mkfs_options: split_words(x.mkfsoptions.as_deref()),
            });
            p
        } else {
            bail!(
                "{what}: {mp:?} is not something hvnode can make (a mount point, swap, biosboot, or pv.ID)"
            );
        };
        parts.push(p);
    }
    // reqpart: the platform partitions the layout does not write out.
    let has = |parts: &[Part], r: Role| parts.iter().any(|p| p.role == r);
    let first_line = partitions
        .first()
        .map(|p| p.loc.to_string())
        .or_else(|| logvols.first().map(|l| l.loc.to_string()))
        .or_else(|| reqpart.as_ref().map(|r| r.loc.to_string()))
        .unwrap_or_else(|| "the kickstart".into());
    let platform = super::autopart::platform_partitions();
    for (role, how) in [
        (
            Role::BiosBoot,
            "`reqpart` or `part biosboot --fstype=biosboot --size=1`",
        ),
        (
            Role::Efi,
            "`reqpart` or `part /boot/efi --fstype=efi --size=600`",
        ),
        (
            Role::Boot,
            "`reqpart --add-boot` or `part /boot --size=1024`",
        ),
    ] {
        if has(&parts, role.clone()) {
            continue;
        }
        let from_reqpart = reqpart
            .as_ref()
            .filter(|r| role != Role::Boot || r.item.add_boot);
        let Some(r) = from_reqpart else {
            let why = match role {
                Role::BiosBoot => "BIOS boot partition (grub for BIOS machines needs it)",
                Role::Efi => "EFI system partition (grub for UEFI machines needs it)",
                _ => {
                    "/boot partition (grub reads the layers' kernels from it; it cannot read thin volumes)"
                }
            };
            bail!("{first_line}: the layout has no {why}: add {how}");
        };
        let Some(p) = platform.iter().find(|p| p.role == role) else {
            bail!("no platform partition for {role:?} (a bug: autopart's list misses it)");
        };
        parts.push(Part {
            role: role.clone(),
            name: p.name.clone(),
            code: p.code,
            base: p.bytes,
            grow: false,
            max: None,
            label: p.label.clone(),
            options: p.options.clone(),
            from: Some(format!(
                "{}: reqpart{}",
                r.loc,
                if r.item.add_boot { " --add-boot" } else { "" }
            )),
            volume: None,
        });
    }
    let rank = |r: &Role| match r {
        Role::BiosBoot => 0,
        Role::Efi => 1,
        Role::Boot => 2,
        _ => 3,
    };
    parts.sort_by_key(|p| rank(&p.role));

    // Sizes on the disk.
    let usable = disk.size.saturating_sub(DISK_OVERHEAD);
    let fixed: u64 = parts.iter().map(|p| p.base).sum();
    if fixed > usable {
        let mut lines: Vec<String> = parts.iter().filter_map(|p| p.from.clone()).collect();
        lines.dedup();
        bail!(
            "the partitions need {}, {} has {} ({})",
            human(fixed),
            disk.name,
            human(usable),
            lines.join("; ")
        );
    }
    let growing: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].grow).collect();
    let sizes = grow(
        &growing
            .iter()
            .map(|&i| (parts[i].base, parts[i].max))
            .collect::<Vec<_>>(),
        usable - fixed,
        MIB,
    );
    for (k, &i) in growing.iter().enumerate() {
        parts[i].base = sizes[k];
    }

    let mut planned: Vec<PlannedPartition> = Vec::new();
    let mut volumes: Vec<PlannedVolume> = Vec::new();
    for (i, p) in parts.into_iter().enumerate() {
        let number = i as u32 + 1;
        if let Some(mut v) = p.volume {
            v.backing = Backing::Partition(number);
            v.bytes = p.base;
            volumes.push(v);
        }
        planned.push(PlannedPartition {
            number,
            name: p.name,
            code: p.code,
            bytes: p.base,
            to_end: false,
            role: p.role,
            label: p.label,
            options: p.options,
            from: p.from,
        });
    }

    let lvm = lvm_plan(volgroups, logvols, &planned, ram, &mut claim, &mut notes)?;
    let (vg, root_bytes, root_options, lv_volumes) = lvm;
    volumes.extend(lv_volumes);
    // Parents mount before children; swap last.
    volumes.sort_by_key(|v| (v.is_swap(), v.mountpoint.matches('/').count()));
    for mp in RHVH_SEPARATE {
        if !mountpoints.contains_key(mp) {
            notes.push(format!(
                "{mp} is not a separate volume (RHVH requires it): what the node writes there stays in this layer, and the next image's layer starts without it"
            ));
        }
    }
    Ok(StoragePlan {
        disk,
        wipe,
        partitions: planned,
        store: StorePlan::Lvm(vg),
        root_bytes,
        root_options,
        volumes,
        notes,
    })
}

fn split_words(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

type LvmPlan = (VgPlan, u64, Option<String>, Vec<PlannedVolume>);

/// The volume group, its thin pool, the root and the logical volumes.
fn lvm_plan(
    volgroups: &[At<kickstart::commands::Volgroup>],
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
