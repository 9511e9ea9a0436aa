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
use kickstart::commands::Partition;
use kickstart::node::{At, Disks, Layout};
use layers::volumes::{BIOS_BOOT_SIZE, BOOT_SIZE, EFI_SIZE};

use super::{
    Backing, DISK_OVERHEAD, MIB, PlannedPartition, PlannedVolume, Role, StoragePlan, StorePlan,
    choose_disk, grow, mib, swap_bytes,
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

/// `ks.cfg:12: part pv.01` — how errors name a line.
fn at_part(p: &At<Partition>) -> String {
    format!("{}: part {}", p.loc, p.item.mntpoint)
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
pub(super) fn check_mountpoint(what: &str, mp: &str) -> Result<()> {
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
pub(super) fn name_of(mp: &str) -> String {
    if mp == "swap" {
        return "swap".into();
    }
    mp.trim_matches('/').replace('/', "_")
}

/// The default label of a volume: its name, cut to what `fstype` takes.
pub(super) fn label_for(
    fstype: &str,
    name: &str,
    given: Option<&str>,
    what: &str,
) -> Result<String> {
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
pub(super) fn volume_fstype(what: &str, mp: &str, given: Option<&str>) -> Result<String> {
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

/// The plan of a `part`/`volgroup`/`logvol` layout.
pub fn plan(
    layout: &Layout,
    sel: &Disks,
    all: &[Device],
    boot_medium: Option<&str>,
    ram: u64,
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
    let (disk, wipe) = choose_disk(sel, all, boot_medium, hint)?;
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

    let lvm = super::volgroup::plan(volgroups, logvols, &planned, ram, &mut claim, &mut notes)?;
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

pub(super) fn split_words(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}
