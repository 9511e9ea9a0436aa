//! Explicit layouts — `reqpart`, `part`, `volgroup`, `logvol` — honoured as
//! written and mapped onto the thin-LVM store, as RHVH documents its
//! custom layout: the platform partitions (from `reqpart` or written out),
//! physical volumes, one volume group with one thin pool, the root as a
//! thin volume (whose name is replaced: the image base is named by its NVR
//! and the writable layer `NVR+1`), and separate volumes wherever the
//! administrator puts them. Everything is checked here, before anything is
//! written, and each error names the kickstart line.
//!
//! [`plan`] goes in phases: the disk; each `part` line checked in
//! kickstart order (claiming its mount point); the platform partitions
//! `reqpart` adds; the partitions sized on the disk ([`sizing`]); the LVM
//! half (`volgroup`); then the notes.

use anyhow::{Result, bail};
use kickstart::commands::{Partition, Reqpart};
use kickstart::node::{At, Layout};
use layers::volumes::{BIOS_BOOT_SIZE, BOOT_SIZE, EFI_SIZE};

use super::checks::{
    MountPoints, check_mountpoint, label_for, name_of, split_words, volume_fstype,
};
use super::sizing::{self, DiskShortfall, PartitionRequest};
use super::volgroup::{self, LvmInput, LvmPlan};
use super::{
    Backing, ChosenDisk, MIB, PlanInput, PlannedPartition, PlannedVolume, Role, StoragePlan,
    StorePlan, choose_disk, mib, swap_bytes,
};
use crate::disks::{self, human};
use hostinfo::BlockDevice;

/// What RHVH requires on separate volumes; missing ones are noted.
pub const RHVH_SEPARATE: [&str; 5] = [
    "/var",
    "/var/log",
    "/var/log/audit",
    "/var/tmp",
    "/var/crash",
];

/// A partition on its way into the plan.
struct Part {
    role: Role,
    name: String,
    code: &'static str,
    size: PartitionRequest,
    label: String,
    options: String,
    from: Option<String>,
    /// For plain file systems and swap.
    volume: Option<PlannedVolume>,
}

/// The plan of a `part`/`volgroup`/`logvol` layout.
pub fn plan(input: &PlanInput) -> Result<StoragePlan> {
    let Layout::Manual {
        reqpart,
        partitions,
        volgroups,
        logvols,
        others,
    } = input.layout
    else {
        bail!("not a part/volgroup/logvol layout");
    };
    refuse_others(others)?;
    // The disk: the kickstart's selection, else the one --ondisk names.
    let ChosenDisk { disk, wipe } = choose_disk(
        input.disks,
        input.devices,
        input.boot_medium,
        ondisk_hint(partitions),
    )?;
    let mut notes = Vec::new();
    let mut mounts = MountPoints::default();

    // Partitions, in kickstart order; the platform ones are put first.
    let mut parts: Vec<Part> = Vec::new();
    for line in partitions {
        let line = PartLine::new(line);
        line.check_fresh(input.devices, &disk)?;
        parts.push(line.part(&mut mounts, input.ram)?);
    }
    let first_line = partitions
        .first()
        .map(|p| p.loc.to_string())
        .or_else(|| logvols.first().map(|l| l.loc.to_string()))
        .or_else(|| reqpart.as_ref().map(|r| r.loc.to_string()))
        .unwrap_or_else(|| "the kickstart".into());
    add_platform_partitions(&mut parts, reqpart.as_ref(), &first_line)?;
    parts.sort_by_key(|p| match p.role {
        Role::BiosBoot => 0,
        Role::Efi => 1,
        Role::Boot => 2,
        _ => 3,
    });
    let OnDisk {
        partitions: planned,
        mut volumes,
    } = lay_out(parts, &disk)?;

    let lvm: LvmPlan = volgroup::plan(
        &LvmInput {
            volgroups,
            logvols,
            partitions: &planned,
            ram: input.ram,
        },
        &mut mounts,
        &mut notes,
    )?;
    volumes.extend(lvm.volumes);
    // Parents mount before children; swap last.
    volumes.sort_by_key(|v| (v.is_swap(), v.mountpoint.matches('/').count()));
    for mp in RHVH_SEPARATE {
        if !mounts.contains(mp) {
            notes.push(format!(
                "{mp} is not a separate volume (RHVH requires it): what the node writes there stays in this layer, and the next image's layer starts without it"
            ));
        }
    }
    Ok(StoragePlan {
        disk,
        wipe,
        partitions: planned,
        store: StorePlan::Lvm(lvm.vg),
        root_bytes: lvm.root_bytes,
        root_options: lvm.root_options,
        volumes,
        notes,
    })
}

/// Refuses `btrfs` and `raid` lines, naming what to write instead.
fn refuse_others(others: &[At<String>]) -> Result<()> {
    let Some(o) = others.first() else {
        return Ok(());
    };
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

/// The disk every `part --ondisk` names, if they all name the same one.
fn ondisk_hint(partitions: &[At<Partition>]) -> Option<&str> {
    let named: Vec<&str> = partitions
        .iter()
        .filter_map(|p| p.item.ondisk.as_deref())
        .collect();
    named
        .first()
        .copied()
        .filter(|d| named.iter().all(|n| n == d))
}

/// A `part` line and how errors name it (`ks.cfg:12: part pv.01`).
struct PartLine<'a> {
    item: &'a Partition,
    what: String,
}

impl<'a> PartLine<'a> {
    fn new(line: &'a At<Partition>) -> Self {
        PartLine {
            item: &line.item,
            what: format!("{}: part {}", line.loc, line.item.mntpoint),
        }
    }

    /// Refuses reusing, encrypting or resizing, and a disk other than the
    /// node's.
    fn check_fresh(&self, devices: &[BlockDevice], disk: &BlockDevice) -> Result<()> {
        let (x, what) = (self.item, &self.what);
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
            match disks::find(devices, d) {
                None => bail!("{what} --ondisk={d}: this machine has no disk {d}"),
                Some(found) if found.path != disk.path => bail!(
                    "{what} --ondisk={d}: {d} is not the disk the node is installed on ({}); a node goes on one disk (select it with ignoredisk --only-use= or clearpart --drives=)",
                    disk.name
                ),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// `--size` in bytes, else `default`, else 1 MiB for a growing one.
    fn sized(&self, default: Option<u64>) -> Result<u64> {
        match (self.item.size.map(mib), default) {
            (Some(b), _) if b > 0 => Ok(b),
            (_, Some(d)) => Ok(d),
            _ if self.item.grow => Ok(MIB),
            _ => bail!(
                "{}: give its size in MiB (--size=) or let it --grow",
                self.what
            ),
        }
    }

    /// A partition of this line, without label, options or volume.
    fn with(&self, role: Role, name: &str, code: &'static str, base: u64) -> Part {
        Part {
            role,
            name: name.into(),
            code,
            size: PartitionRequest {
                base,
                grow: self.item.grow,
                max: self.item.maxsize.filter(|m| *m > 0).map(mib),
            },
            label: String::new(),
            options: String::new(),
            from: Some(self.what.clone()),
            volume: None,
        }
    }

    /// What the line makes, by its mount point; claims the mount point.
    fn part(&self, mounts: &mut MountPoints, ram: u64) -> Result<Part> {
        let what = &self.what;
        let mp = self.item.mntpoint.as_str();
        let fstype = self.item.fstype.as_deref();
        if mp == "biosboot" || fstype == Some("biosboot") {
            mounts.claim("biosboot", what.clone())?;
            Ok(self.with(
                Role::BiosBoot,
                "biosboot",
                "EF02",
                self.sized(Some(BIOS_BOOT_SIZE))?,
            ))
        } else if mp == "/boot/efi" {
            self.efi(mounts)
        } else if mp == "/boot" {
            self.boot(mounts)
        } else if mp.starts_with("pv.") {
            Ok(self.with(Role::Pv, mp, "8E00", self.sized(None)?))
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
            self.volume(mounts, ram)
        } else {
            bail!(
                "{what}: {mp:?} is not something hvnode can make (a mount point, swap, biosboot, or pv.ID)"
            );
        }
    }

    /// `part /boot/efi`: the EFI system partition.
    fn efi(&self, mounts: &mut MountPoints) -> Result<Part> {
        let (x, what) = (self.item, &self.what);
        if !matches!(x.fstype.as_deref(), None | Some("efi" | "vfat")) {
            bail!("{what}: the EFI system partition is vfat (--fstype=efi)");
        }
        mounts.claim("/boot/efi", what.clone())?;
        let label = label_for("vfat", "EFI", x.label.as_deref(), what)?;
        let options = x
            .fsoptions
            .clone()
            .unwrap_or_else(|| "umask=0077,shortname=winnt".into());
        Ok(Part {
            label,
            options,
            ..self.with(Role::Efi, "efi", "EF00", self.sized(Some(EFI_SIZE))?)
        })
    }

    /// `part /boot`: ext4, where grub finds the layers' kernels.
    fn boot(&self, mounts: &mut MountPoints) -> Result<Part> {
        let (x, what) = (self.item, &self.what);
        if !matches!(x.fstype.as_deref(), None | Some("ext4")) {
            bail!(
                "{what}: hvnode's /boot is ext4 (grub reads the layers' kernels from it); remove --fstype or use --fstype=ext4"
            );
        }
        mounts.claim("/boot", what.clone())?;
        let label = label_for("ext4", "boot", x.label.as_deref(), what)?;
        let options = x
            .fsoptions
            .clone()
            .unwrap_or_else(|| "defaults,discard".into());
        Ok(Part {
            label,
            options,
            ..self.with(Role::Boot, "boot", "8300", self.sized(Some(BOOT_SIZE))?)
        })
    }

    /// A plain file system or swap on a partition of its own.
    fn volume(&self, mounts: &mut MountPoints, ram: u64) -> Result<Part> {
        let (x, what) = (self.item, &self.what);
        let fstype = x.fstype.as_deref();
        let mp = if fstype == Some("swap") {
            "swap"
        } else {
            x.mntpoint.as_str()
        };
        if mp != "swap" {
            check_mountpoint(what, mp)?;
        }
        mounts.claim(mp, what.clone())?;
        let fs = volume_fstype(what, mp, fstype)?;
        let name = name_of(mp);
        let bytes = if x.recommended || x.hibernation {
            swap_bytes(ram)
        } else {
            self.sized(None)?
        };
        let label = label_for(&fs, &name, x.label.as_deref(), what)?;
        let code = if fs == "swap" { "8200" } else { "8300" };
        let mut part = self.with(Role::Volume, &name, code, bytes);
        part.volume = Some(PlannedVolume {
            name,
            mountpoint: mp.into(),
            bytes,
            fstype: fs,
            backing: Backing::Partition(0),
            options: x.fsoptions.clone().unwrap_or_else(|| "defaults".into()),
            label,
            mkfs_options: split_words(x.mkfsoptions.as_deref()),
        });
        Ok(part)
    }
}

/// A platform partition every node has, and what to write when the layout
/// lacks it.
struct Required {
    role: Role,
    /// What it is and why it is needed.
    why: &'static str,
    /// The lines that make it.
    how: &'static str,
}

const REQUIRED: [Required; 3] = [
    Required {
        role: Role::BiosBoot,
        why: "BIOS boot partition (grub for BIOS machines needs it)",
        how: "`reqpart` or `part biosboot --fstype=biosboot --size=1`",
    },
    Required {
        role: Role::Efi,
        why: "EFI system partition (grub for UEFI machines needs it)",
        how: "`reqpart` or `part /boot/efi --fstype=efi --size=600`",
    },
    Required {
        role: Role::Boot,
        why: "/boot partition (grub reads the layers' kernels from it; it cannot read thin volumes)",
        how: "`reqpart --add-boot` or `part /boot --size=1024`",
    },
];

/// `reqpart`: the platform partitions the layout does not write out.
/// Without it, a missing one is an error naming `first_line`.
fn add_platform_partitions(
    parts: &mut Vec<Part>,
    reqpart: Option<&At<Reqpart>>,
    first_line: &str,
) -> Result<()> {
    let platform = super::autopart::platform_partitions();
    for Required { role, why, how } in REQUIRED {
        if parts.iter().any(|p| p.role == role) {
            continue;
        }
        let from_reqpart = reqpart.filter(|r| role != Role::Boot || r.item.add_boot);
        let Some(r) = from_reqpart else {
            bail!("{first_line}: the layout has no {why}: add {how}");
        };
        let Some(p) = platform.iter().find(|p| p.role == role) else {
            bail!("no platform partition for {role:?} (a bug: autopart's list misses it)");
        };
        parts.push(Part {
            role,
            name: p.name.clone(),
            code: p.code,
            size: PartitionRequest {
                base: p.bytes,
                grow: false,
                max: None,
            },
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
    Ok(())
}

/// The partitions as they go on the disk, and the volumes on them.
struct OnDisk {
    partitions: Vec<PlannedPartition>,
    volumes: Vec<PlannedVolume>,
}

/// Sizes the partitions on `disk` and numbers them in order.
fn lay_out(parts: Vec<Part>, disk: &BlockDevice) -> Result<OnDisk> {
    let requests: Vec<PartitionRequest> = parts.iter().map(|p| p.size).collect();
    let sizes = match sizing::partition_sizes(disk.size, &requests) {
        Ok(sizes) => sizes,
        Err(DiskShortfall { need, usable }) => {
            let mut lines: Vec<String> = parts.iter().filter_map(|p| p.from.clone()).collect();
            lines.dedup();
            bail!(
                "the partitions need {}, {} has {} ({})",
                human(need),
                disk.name,
                human(usable),
                lines.join("; ")
            );
        }
    };
    let mut on_disk = OnDisk {
        partitions: Vec::new(),
        volumes: Vec::new(),
    };
    for (i, (p, bytes)) in parts.into_iter().zip(sizes).enumerate() {
        let number = i as u32 + 1;
        if let Some(mut v) = p.volume {
            v.backing = Backing::Partition(number);
            v.bytes = bytes;
            on_disk.volumes.push(v);
        }
        on_disk.partitions.push(PlannedPartition {
            number,
            name: p.name,
            code: p.code,
            bytes,
            to_end: false,
            role: p.role,
            label: p.label,
            options: p.options,
            from: p.from,
        });
    }
    Ok(on_disk)
}
