//! Which of the machine's disks a kickstart selects, and whether one is in
//! use. The disks are [`hostinfo::BlockDevice`]s: hostinfo runs and parses
//! lsblk for the installer and the console alike, tested on captured output.

use anyhow::{Context, Result, bail};
use hostinfo::BlockDevice;

/// The one lsblk parser, for the storage planner's tests.
pub use hostinfo::blockdev::parse_lsblk;

/// `1.5 GiB`: [`hostinfo::human_bytes`] of a byte count, for the storage
/// planner's messages (the rest of the installer calls it directly).
pub fn human(bytes: u64) -> String {
    hostinfo::human_bytes(bytes as f64)
}

/// The machine's block devices.
pub fn list() -> Result<Vec<BlockDevice>> {
    hostinfo::block_devices().context("listing the disks to install on")
}

/// Disks an install could use: whole disks, writable, not empty.
pub fn candidates(all: &[BlockDevice]) -> Vec<&BlockDevice> {
    all.iter()
        .filter(|d| d.kind == "disk" && !d.ro && d.size > 0)
        .collect()
}

/// Finds a disk named as a kickstart names it: `sda`, `/dev/sda`, or a
/// `/dev/disk/by-*/…` link.
pub fn find<'a>(all: &'a [BlockDevice], name: &str) -> Option<&'a BlockDevice> {
    let resolved = if name.starts_with("/dev/disk/") {
        std::fs::canonicalize(name)
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    } else {
        None
    };
    let wanted = resolved.as_deref().unwrap_or(name);
    let bare = wanted.trim_start_matches("/dev/");
    all.iter()
        .find(|d| d.kind == "disk" && (d.name == bare || d.path.to_string_lossy() == wanted))
}

/// Why a disk cannot be written to, if it cannot.
pub fn busy_reason(disk: &BlockDevice, boot_medium: Option<&str>) -> Option<String> {
    if let Some(label) = boot_medium
        && disk
            .walk()
            .iter()
            .any(|d| d.label.as_deref() == Some(label))
    {
        return Some(format!(
            "{} holds the medium this installer booted from ({label})",
            disk.name
        ));
    }
    let mounts = disk.mounts();
    if !mounts.is_empty() {
        return Some(format!(
            "{} is in use: mounted at {}",
            disk.name,
            mounts.join(", ")
        ));
    }
    None
}

/// Checks that every disk in `selected` exists and is free.
pub fn check_selected(
    all: &[BlockDevice],
    selected: &[String],
    boot_medium: Option<&str>,
) -> Result<Vec<BlockDevice>> {
    let mut out = Vec::new();
    for name in selected {
        let Some(d) = find(all, name) else {
            let names: Vec<String> = candidates(all).iter().map(|d| d.describe()).collect();
            bail!(
                "the kickstart selects disk {name}, which this machine does not have (disks: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
        };
        if let Some(why) = busy_reason(d, boot_medium) {
            bail!("{why}; refusing to touch it (select another disk with ignoredisk --only-use=)");
        }
        if d.ro {
            bail!("{} is read-only", d.name);
        }
        out.push(d.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<BlockDevice> {
        parse_lsblk(include_str!("../tests/fixtures/lsblk-live-vm.json")).unwrap()
    }

    #[test]
    fn parses_captured_lsblk() {
        let all = fixture();
        let names: Vec<&str> = candidates(&all).iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["vda", "vdb"]);
        assert_eq!(find(&all, "/dev/vda").unwrap().size, 68719476736);
        assert_eq!(find(&all, "vdb").unwrap().describe(), "vdb (20.0 GiB)");
        assert!(find(&all, "sdz").is_none());
    }

    #[test]
    fn busy_disks_are_refused_with_the_reason() {
        let all = fixture();
        let cd = all.iter().find(|d| d.name == "sr0").unwrap();
        assert!(
            busy_reason(cd, Some("HVNODE"))
                .unwrap()
                .contains("booted from")
        );
        let vdb = find(&all, "vdb").unwrap();
        assert!(
            busy_reason(vdb, Some("HVNODE"))
                .unwrap()
                .contains("mounted at /mnt/data")
        );
        let e = check_selected(&all, &["vdb".into()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("refusing"), "{e}");
        let e = check_selected(&all, &["sdq".into()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vda (64.0 GiB)"), "{e}");
        assert_eq!(
            check_selected(&all, &["vda".into()], Some("HVNODE"))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn older_lsblk_output_is_judged_the_same() {
        // util-linux before 2.37: sizes and flags as strings, one `mountpoint`.
        let all = parse_lsblk(
            r#"{"blockdevices":[
              {"name":"sda","path":"/dev/sda","type":"disk","size":"1000204886016",
               "ro":"0","rm":"0","model":"ST1000DM003-1CH162  ","tran":"sata","mountpoint":null,
               "children":[{"name":"sda1","path":"/dev/sda1","type":"part",
                 "size":"1000203837440","ro":"0","rm":"0","fstype":"swap","mountpoint":"[SWAP]"}]},
              {"name":"sdb","path":"/dev/sdb","type":"disk","size":"500107862016",
               "ro":"1","rm":"0","mountpoint":null}]}"#,
        )
        .unwrap();
        let names: Vec<&str> = candidates(&all).iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["sda"], "sdb is read-only");
        let sda = find(&all, "/dev/sda").unwrap();
        assert_eq!(sda.describe(), "sda (931.5 GiB, ST1000DM003-1CH162, sata)");
        assert_eq!(
            busy_reason(sda, None).as_deref(),
            Some("sda is in use: mounted at [SWAP]")
        );
        let e = check_selected(&all, &["sdb".into()], None).unwrap_err();
        assert_eq!(e.to_string(), "sdb is read-only");
    }

    #[test]
    fn sizes_read_as_admins_read_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(60 << 30), "60.0 GiB");
        assert_eq!(human(1536 << 20), "1.5 GiB");
    }
}
