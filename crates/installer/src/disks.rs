//! The machine's disks (`lsblk --json`), which of them a kickstart selects,
//! and whether one is in use. Parsing is separate from running lsblk so it
//! is tested on captured output.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use serde::Deserialize;

/// One block device as lsblk reports it (a disk and its children).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub path: PathBuf,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
    #[serde(default)]
    pub ro: bool,
    #[serde(default)]
    pub rm: bool,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub tran: Option<String>,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub mountpoints: Vec<Option<String>>,
    #[serde(default)]
    pub children: Vec<Device>,
}

impl Device {
    /// This device and everything under it.
    pub fn walk(&self) -> Vec<&Device> {
        let mut v = vec![self];
        for c in &self.children {
            v.extend(c.walk());
        }
        v
    }

    /// Mount points in use on this device or under it (swap counts).
    pub fn mounts(&self) -> Vec<String> {
        self.walk()
            .iter()
            .flat_map(|d| d.mountpoints.iter().flatten().cloned())
            .collect()
    }

    /// Human description: `vda (64.0 GiB, virtio)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} ({}", self.name, human(self.size));
        if let Some(m) = self.model.as_deref().filter(|m| !m.trim().is_empty()) {
            s.push_str(&format!(", {}", m.trim()));
        }
        if let Some(t) = self.tran.as_deref() {
            s.push_str(&format!(", {t}"));
        }
        s.push(')');
        s
    }
}

/// `1.5 GiB` (the workspace's one [`hostinfo::human_bytes`]).
pub fn human(bytes: u64) -> String {
    hostinfo::human_bytes(bytes as f64)
}

#[derive(Deserialize)]
struct Lsblk {
    blockdevices: Vec<Device>,
}

/// Parses `lsblk --json --bytes --tree -o NAME,PATH,TYPE,SIZE,RO,RM,MODEL,TRAN,FSTYPE,LABEL,MOUNTPOINTS`.
pub fn parse_lsblk(json: &str) -> Result<Vec<Device>> {
    let l: Lsblk = serde_json::from_str(json).context("reading the output of lsblk")?;
    Ok(l.blockdevices)
}

/// The machine's block devices.
pub fn list() -> Result<Vec<Device>> {
    let out = Command::new("lsblk")
        .args(["--json", "--bytes", "--tree"])
        .args([
            "-o",
            "NAME,PATH,TYPE,SIZE,RO,RM,MODEL,TRAN,FSTYPE,LABEL,MOUNTPOINTS",
        ])
        .run_capture()
        .context("listing the disks")?;
    parse_lsblk(&out)
}

/// Disks an install could use: whole disks, writable, not empty.
pub fn candidates(all: &[Device]) -> Vec<&Device> {
    all.iter()
        .filter(|d| d.kind == "disk" && !d.ro && d.size > 0)
        .collect()
}

/// Finds a disk named as a kickstart names it: `sda`, `/dev/sda`, or a
/// `/dev/disk/by-*/…` link.
pub fn find<'a>(all: &'a [Device], name: &str) -> Option<&'a Device> {
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
pub fn busy_reason(disk: &Device, boot_medium: Option<&str>) -> Option<String> {
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
    all: &[Device],
    selected: &[String],
    boot_medium: Option<&str>,
) -> Result<Vec<Device>> {
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

    fn fixture() -> Vec<Device> {
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
    fn sizes_read_as_admins_read_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(60 << 30), "60.0 GiB");
        assert_eq!(human(1536 << 20), "1.5 GiB");
    }
}
