//! The disk half of a manual layout on a real (loop) device: the plan's GPT
//! written by sgdisk and the platform partitions' file systems made, then
//! read back with sfdisk and blkid. Needs root and loop devices; skipped
//! with the reason otherwise, a failure in CI (`hvnode_testutil`). (LVM
//! needs device-mapper, which the build hosts lack: the volume group is
//! proven by the VM tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::process::Command;

use hostinfo::BlockDevice;
use installer::storage::{self, Role};
use kickstart::source::FsLoader;

const KS: &str = "\
zerombr
clearpart --all --initlabel
reqpart
part /boot --size=512 --label=nodeboot
part pv.01 --size=1 --grow
volgroup vg0 pv.01 --reserved-percent=10
logvol none --vgname=vg0 --thinpool --name=pool --size=1 --grow
logvol / --vgname=vg0 --thin --poolname=pool --name=root --size=6144
logvol /var --vgname=vg0 --thin --poolname=pool --name=var --size=4096
";

struct Loop(PathBuf);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// Root, loop devices and the partitioning tools; reported (a failure in CI)
/// when one is missing.
fn preconditions() -> bool {
    hvnode_testutil::require_root()
        && (Path::new("/dev/loop-control").exists()
            || hvnode_testutil::skip("no loop devices: /dev/loop-control is missing"))
        && hvnode_testutil::require_tools(&["sgdisk", "mkfs.vfat", "mkfs.ext4", "blkid", "losetup"])
}

/// The partition entry of `dev` (`PART_ENTRY_TYPE`, …) as libblkid reads
/// it from the table.
fn entry(dev: &Path, key: &str) -> String {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(dev)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(String::from))
        .unwrap_or_default()
}

fn blkid(dev: &Path, tag: &str) -> String {
    let out = Command::new("blkid")
        .args(["-s", tag, "-o", "value"])
        .arg(dev)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn platform_partitions_are_made_on_a_loop_device() {
    if !preconditions() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    let size: u64 = 20 << 30;
    std::fs::File::create(&img).unwrap().set_len(size).unwrap();
    let out = Command::new("losetup")
        .args(["-f", "-P", "--show"])
        .arg(&img)
        .output()
        .unwrap();
    if !out.status.success() {
        // No free loop device (a container's are shared with the host).
        hvnode_testutil::skip(format!(
            "losetup failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return;
    }
    let dev = Loop(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let name = dev.0.file_name().unwrap().to_string_lossy().into_owned();
    let disk: BlockDevice = serde_json::from_value(serde_json::json!({
        "name": name, "path": dev.0, "type": "disk", "size": size,
    }))
    .unwrap();

    let parse = kickstart::parse_str("ks.cfg", KS, &FsLoader);
    assert!(parse.is_valid(), "{:?}", parse.diagnostics);
    let (ks, _) = kickstart::node::plan(&parse.kickstart);
    let plan = storage::plan(&ks.layout, &ks.disks, &[disk], None, 2 << 30).unwrap();
    println!("{plan}");
    let log = dir.path().join("commands.log");
    storage::partition(&plan, &log).unwrap();
    storage::format_platform(&plan, &log).unwrap();

    // The table as libblkid reads it: numbers, types, names and sizes of
    // the plan.
    let got: Vec<(String, String, u64)> = plan
        .partitions
        .iter()
        .map(|p| {
            let d = storage::partition_path(&dev.0, p.number);
            (
                entry(&d, "PART_ENTRY_TYPE").to_ascii_uppercase(),
                entry(&d, "PART_ENTRY_NAME"),
                entry(&d, "PART_ENTRY_SIZE").parse::<u64>().unwrap_or(0) * 512,
            )
        })
        .collect();
    let want: Vec<(String, String, u64)> = [
        (
            "21686148-6449-6E6F-744E-656564454649",
            "biosboot",
            1u64 << 20,
        ),
        ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "efi", 600 << 20),
        ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "boot", 512 << 20),
        (
            "E6D6D379-F507-44C2-A23C-238F2A3DF928",
            "pv.01",
            plan.partitions[3].bytes,
        ),
    ]
    .iter()
    .map(|(t, n, s)| (t.to_string(), n.to_string(), *s))
    .collect();
    assert_eq!(got, want);
    let efi = plan.device(Role::Efi).unwrap();
    let boot = plan.device(Role::Boot).unwrap();
    assert_eq!(
        (blkid(&efi, "TYPE"), blkid(&efi, "LABEL")),
        ("vfat".into(), "EFI".into())
    );
    assert_eq!(
        (blkid(&boot, "TYPE"), blkid(&boot, "LABEL")),
        ("ext4".into(), "nodeboot".into())
    );
}
