//! Checks shared by `part` and `logvol` lines: mount points (each claimed
//! once, none inside the image), file-system types and labels.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// Parts of the image, updated with each layer: never separate volumes.
const IMAGE_PATHS: [&str; 13] = [
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/proc",
    "/sys", "/dev", "/run",
];

/// The mount points of a layout so far, each with the line that claimed
/// it (`ks.cfg:12: logvol /var --name=var`).
#[derive(Debug, Default)]
pub(super) struct MountPoints {
    claimed: BTreeMap<String, String>,
}

impl MountPoints {
    /// Claims `mp` for the line `what`; refuses a mount point claimed
    /// before.
    pub(super) fn claim(&mut self, mp: &str, what: String) -> Result<()> {
        if let Some(first) = self.claimed.get(mp) {
            bail!("{what}: {mp} is already the mount point of {first}");
        }
        self.claimed.insert(mp.to_string(), what);
        Ok(())
    }

    /// Whether a line has claimed `mp`.
    pub(super) fn contains(&self, mp: &str) -> bool {
        self.claimed.contains_key(mp)
    }
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

/// `--mkfsoptions` as words.
pub(super) fn split_words(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}
