//! Carrying out the disk part of a [`StoragePlan`]: clearing the disk,
//! writing the GPT, making file systems. The layer store and the volumes
//! are made by the install itself (`install.rs`), through `layers`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use layers::lvm::lvm;

use super::{Role, StoragePlan, partition_path};
use hostinfo::BlockDevice;

/// (physical volume, volume group) of every LVM physical volume.
fn pv_rows() -> Result<Vec<(String, String)>> {
    let pvs = lvm("pvs")
        .args(["--reportformat", "json", "-o", "pv_name,vg_name"])
        .run_capture()
        .context("listing LVM physical volumes")?;
    parse_pvs(&pvs)
}

/// Reads `pvs --reportformat json -o pv_name,vg_name`.
pub fn parse_pvs(json: &str) -> Result<Vec<(String, String)>> {
    let v: serde_json::Value = serde_json::from_str(json).context("reading the output of pvs")?;
    Ok(v["report"][0]["pv"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["pv_name"].as_str().unwrap_or("").to_string(),
                        r["vg_name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

fn paths_on(disk: &BlockDevice) -> Vec<String> {
    disk.walk()
        .iter()
        .map(|d| d.path.to_string_lossy().into_owned())
        .collect()
}

/// Refuses a plan whose volume group name is taken by a group on another
/// disk (`vgcreate` would fail after the disk was wiped). A group of that
/// name on the selected disk itself is removed by [`clear_disk`].
pub fn check_vg_name_free(plan: &StoragePlan) -> Result<()> {
    let Some(vg) = plan.vg() else {
        return Ok(());
    };
    let rows = pv_rows()?;
    vg_name_free(&vg.spec.vg, &plan.disk, &rows)
}

/// [`check_vg_name_free`] on listed physical volumes.
pub fn vg_name_free(vg: &str, disk: &BlockDevice, rows: &[(String, String)]) -> Result<()> {
    let ours = paths_on(disk);
    if let Some((pv, _)) = rows.iter().find(|(pv, g)| g == vg && !ours.contains(pv)) {
        bail!(
            "a volume group named {vg} exists already on {pv}, which is not the disk being installed ({}); name the node's group differently (volgroup) or clear that disk too",
            disk.name
        );
    }
    Ok(())
}

/// What `clear_disk` wipes, in order: the partitions, then the disk. Not
/// what was stacked on them (the logical volumes of a previous install are
/// gone with their volume group, removed first).
fn wipe_order(disk: &BlockDevice) -> Vec<&BlockDevice> {
    let mut v: Vec<&BlockDevice> = disk
        .walk()
        .into_iter()
        .filter(|d| matches!(d.kind.as_str(), "disk" | "part"))
        .collect();
    v.reverse();
    v
}

/// Deactivates and removes LVM volume groups with a physical volume on
/// `disk` (a previous install), then wipes every signature and the
/// partition table. Refuses when such a group spans other disks.
pub fn clear_disk(disk: &BlockDevice, log: &Path) -> Result<()> {
    let rows = pv_rows()?;
    let ours = paths_on(disk);
    let mut vgs: Vec<String> = rows
        .iter()
        .filter(|(pv, vg)| ours.contains(pv) && !vg.is_empty())
        .map(|(_, vg)| vg.clone())
        .collect();
    vgs.sort();
    vgs.dedup();
    for vg in &vgs {
        if let Some((pv, _)) = rows.iter().find(|(pv, g)| g == vg && !ours.contains(pv)) {
            bail!(
                "volume group {vg} on {} also uses {pv}, which is not selected; refusing to break it",
                disk.name
            );
        }
        lvm("vgchange")
            .args(["-an", vg])
            .run_appending(log)
            .with_context(|| format!("deactivating the volume group {vg} of a previous install"))?;
        lvm("vgremove")
            .args(["-ff", "-y", vg])
            .run_appending(log)
            .with_context(|| format!("removing the volume group {vg}"))?;
    }
    for d in wipe_order(disk).into_iter().filter(|d| d.path.exists()) {
        Command::new("wipefs")
            .arg("-a")
            .arg(&d.path)
            .run_appending(log)
            .with_context(|| format!("wiping the signatures on {}", d.path.display()))?;
    }
    Command::new("sgdisk")
        .arg("--zap-all")
        .arg(&disk.path)
        .run_appending(log)
        .with_context(|| format!("clearing the partition tables of {}", disk.path.display()))?;
    Ok(())
}

/// The sgdisk arguments that make the plan's partitions.
pub fn sgdisk_args(plan: &StoragePlan) -> Vec<String> {
    let mut a = Vec::new();
    for p in &plan.partitions {
        let n = p.number;
        let end = if p.to_end {
            "0".to_string()
        } else {
            format!("+{}K", p.bytes / 1024)
        };
        a.push(format!("--new={n}:0:{end}"));
        a.push(format!("--typecode={n}:{}", p.code));
        a.push(format!("--change-name={n}:{}", p.name));
    }
    a
}

/// Writes the GPT and waits for the partition devices.
pub fn partition(plan: &StoragePlan, log: &Path) -> Result<()> {
    write_gpt(plan, &plan.disk.path, log)?;
    Command::new("partx")
        .args(["-u"])
        .arg(&plan.disk.path)
        .run_appending(log)
        .ok();
    Command::new("udevadm")
        .args(["settle", "--timeout=60"])
        .run_appending(log)
        .context("waiting for the new partitions")?;
    for p in &plan.partitions {
        let dev = partition_path(&plan.disk.path, p.number);
        if !dev.exists() {
            bail!("{} did not appear after partitioning", dev.display());
        }
    }
    Ok(())
}

/// `sgdisk` with the plan's partitions on `target` (the disk, or a file).
pub fn write_gpt(plan: &StoragePlan, target: &Path, log: &Path) -> Result<()> {
    Command::new("sgdisk")
        .args(sgdisk_args(plan))
        .arg(target)
        .run_appending(log)
        .with_context(|| format!("partitioning {}", target.display()))?;
    Ok(())
}

/// Makes the file systems of the platform partitions: vfat on the EFI
/// system partition, ext4 on `/boot`, with the plan's labels.
pub fn format_platform(plan: &StoragePlan, log: &Path) -> Result<()> {
    for part in &plan.partitions {
        let dev = partition_path(&plan.disk.path, part.number);
        match part.role {
            Role::Efi => mkfs("vfat", &["-F", "32", "-n", &part.label], &dev, log)?,
            Role::Boot => mkfs("ext4", &["-q", "-F", "-L", &part.label], &dev, log)?,
            _ => {}
        }
    }
    Ok(())
}

/// `mkfs` wrapper: `mkfs.TYPE ARGS DEVICE`.
pub fn mkfs(fstype: &str, args: &[&str], dev: &Path, log: &Path) -> Result<()> {
    Command::new(format!("mkfs.{fstype}"))
        .args(args)
        .arg(dev)
        .run_appending(log)
        .with_context(|| format!("making a {fstype} file system on {}", dev.display()))?;
    Ok(())
}

/// The `mkfs` arguments for a volume's file system with `label`.
pub fn mkfs_args<'a>(fstype: &str, label: &'a str, extra: &'a [String]) -> Vec<&'a str> {
    let mut a: Vec<&str> = match fstype {
        "xfs" => vec!["-q", "-f"],
        _ => vec!["-q", "-F"],
    };
    if !label.is_empty() {
        a.extend(["-L", label]);
    }
    a.extend(extra.iter().map(String::as_str));
    a
}

#[cfg(test)]
mod wipe_tests {
    use super::*;

    #[test]
    fn a_reinstall_wipes_the_partitions_not_the_old_volumes() {
        // A previous thin install: its LVs hang under the PV partition and
        // disappear when its volume group is removed, before the wipe.
        let d: BlockDevice = serde_json::from_value(serde_json::json!({
            "name": "vda", "path": "/dev/vda", "type": "disk", "size": 68719476736u64,
            "children": [
                {"name": "vda1", "path": "/dev/vda1", "type": "part", "size": 1048576},
                {"name": "vda4", "path": "/dev/vda4", "type": "part", "size": 60000000000u64,
                 "fstype": "LVM2_member", "children": [
                    {"name": "hvnode-swap", "path": "/dev/mapper/hvnode-swap", "type": "lvm", "size": 1},
                    {"name": "hvnode-pool00_tmeta", "path": "/dev/mapper/hvnode-pool00_tmeta", "type": "lvm", "size": 1}
                 ]}
            ]
        }))
        .unwrap();
        let order: Vec<&str> = wipe_order(&d).iter().map(|d| d.name.as_str()).collect();
        assert_eq!(order, ["vda4", "vda1", "vda"]);
    }
}
