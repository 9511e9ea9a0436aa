//! Where the kickstart comes from, in Anaconda's order: `inst.ks=` on the
//! kernel command line (`http://`, `https://`, `file:`, `hd:LABEL=…:/path`,
//! `cdrom:/path`), else the kickstart `hvnode iso customize` embedded in
//! the medium the installer booted from, else `ks.cfg` on a volume labelled
//! `OEMDRV`, else the medium's `interactive-defaults.ks`.
//!
//! The customised medium's kickstart comes before OEMDRV: the ISO was made
//! for this install on purpose, while a volume labelled OEMDRV may be left
//! over in the machine; `inst.ks=`, typed at the boot menu for this one
//! boot, still wins over both.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use iso_custom::{Customization, EmbeddedKickstart};

/// Where dracut's dmsquash-live mounts the boot medium.
pub const LIVE_MEDIUM: &str = "/run/initramfs/live";
/// The embedded kickstart, relative to the medium.
pub const EMBEDDED: &str = "ks/interactive-defaults.ks";
/// The label Anaconda looks for a kickstart disk under.
pub const OEMDRV: &str = "OEMDRV";

/// A kickstart location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Http(String),
    File(PathBuf),
    /// `hd:LABEL=X:/path`, `hd:UUID=…:/path` or `hd:sdb1:/path`.
    Hd {
        device: String,
        path: String,
    },
    /// `cdrom:/path` (or `cdrom:DEV:/path`).
    Cdrom {
        device: Option<String>,
        path: String,
    },
    /// The kickstart `hvnode iso customize` embedded in the boot medium.
    Customized(EmbeddedKickstart),
    /// `ks.cfg` on the volume labelled OEMDRV.
    Oemdrv,
    /// The boot medium's interactive-defaults.ks.
    Embedded,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Http(u) => write!(f, "{u}"),
            Location::File(p) => write!(f, "file:{}", p.display()),
            Location::Hd { device, path } => write!(f, "hd:{device}:{path}"),
            Location::Cdrom { device: None, path } => write!(f, "cdrom:{path}"),
            Location::Cdrom {
                device: Some(d),
                path,
            } => write!(f, "cdrom:{d}:{path}"),
            Location::Customized(k) => write!(
                f,
                "{}, embedded in the medium by hvnode iso customize ({})",
                k.name,
                iso_custom::AreaKind::Installer.path()
            ),
            Location::Oemdrv => write!(f, "ks.cfg on the volume labelled {OEMDRV}"),
            Location::Embedded => write!(f, "the medium's {EMBEDDED}"),
        }
    }
}

/// Parses the value of `inst.ks=` (or the older `ks=`).
pub fn parse_location(v: &str) -> Result<Location> {
    if v.starts_with("http://") || v.starts_with("https://") {
        return Ok(Location::Http(v.to_string()));
    }
    if let Some(p) = v
        .strip_prefix("file://")
        .or_else(|| v.strip_prefix("file:"))
    {
        return Ok(Location::File(PathBuf::from(p)));
    }
    if let Some(rest) = v.strip_prefix("hd:") {
        // The device part may itself hold a colon-free LABEL=/UUID=.
        let Some((device, path)) = rest.rsplit_once(':') else {
            bail!("inst.ks={v}: expected hd:DEVICE:/path (e.g. hd:LABEL=KS:/ks.cfg)");
        };
        if device.is_empty() || !path.starts_with('/') {
            bail!("inst.ks={v}: expected hd:DEVICE:/path (e.g. hd:LABEL=KS:/ks.cfg)");
        }
        return Ok(Location::Hd {
            device: device.into(),
            path: path.into(),
        });
    }
    if let Some(rest) = v.strip_prefix("cdrom:") {
        return Ok(match rest.rsplit_once(':') {
            Some((d, p)) if p.starts_with('/') => Location::Cdrom {
                device: Some(d.into()),
                path: p.into(),
            },
            _ if rest.starts_with('/') => Location::Cdrom {
                device: None,
                path: rest.into(),
            },
            _ => bail!("inst.ks={v}: expected cdrom:/path"),
        });
    }
    bail!(
        "inst.ks={v}: unknown location; use http://, https://, file:, hd:DEVICE:/path or cdrom:/path"
    )
}

/// The kickstart location named on a kernel command line, if any.
pub fn from_cmdline(cmdline: &str) -> Result<Option<Location>> {
    let mut found = None;
    for arg in cmdline.split_whitespace() {
        if let Some(v) = arg
            .strip_prefix("inst.ks=")
            .or_else(|| arg.strip_prefix("ks="))
        {
            found = Some(parse_location(v)?);
        }
    }
    Ok(found)
}

/// Resolves `hd:` device names to a block device.
fn device_path(device: &str) -> Result<PathBuf> {
    if let Some(label) = device.strip_prefix("LABEL=") {
        return by_tag("LABEL", label);
    }
    if let Some(uuid) = device.strip_prefix("UUID=") {
        return by_tag("UUID", uuid);
    }
    Ok(if device.starts_with("/dev/") {
        PathBuf::from(device)
    } else {
        PathBuf::from(format!("/dev/{device}"))
    })
}

/// The device with a file-system `tag` (LABEL, UUID) of `value`.
pub fn by_tag(tag: &str, value: &str) -> Result<PathBuf> {
    let out = Command::new("blkid")
        .args(["-o", "device", "-t", &format!("{tag}={value}")])
        .run_capture()
        .with_context(|| format!("looking for the volume with {tag}={value}"))?;
    match out.lines().next() {
        Some(d) => Ok(PathBuf::from(d.trim())),
        None => bail!("no volume with {tag}={value}"),
    }
}

/// Whether a volume labelled OEMDRV exists.
pub fn oemdrv_present() -> bool {
    by_tag("LABEL", OEMDRV).is_ok()
}

/// Copies `path` from the file system on `device` (mounted read-only for
/// the copy) to `dest`.
fn copy_from_device(device: &Path, path: &str, dest: &Path) -> Result<()> {
    let mnt = tempfile::Builder::new()
        .prefix("hvnode-ks-")
        .tempdir()
        .context("making a mount point for the kickstart's volume")?;
    Command::new("mount")
        .args(["-o", "ro"])
        .arg(device)
        .arg(mnt.path())
        .run()
        .with_context(|| format!("mounting {} to read the kickstart", device.display()))?;
    let src = mnt.path().join(path.trim_start_matches('/'));
    let read = fs::read(&src).with_context(|| format!("{} has no {path}", device.display()));
    let _ = Command::new("umount").arg(mnt.path()).run();
    keep_kickstart(&read?, dest)
}

/// Writes the fetched kickstart where the install reads it, readable by
/// root only (mode 0600 from its creation): it holds passwords.
fn keep_kickstart(text: &[u8], dest: &Path) -> Result<()> {
    fsutil::write_atomic(dest, text, fsutil::Options::mode(0o600))
        .with_context(|| format!("keeping the kickstart as {}", dest.display()))?;
    Ok(())
}

/// Fetches a kickstart over HTTP(S).
pub fn http_get(url: &str) -> Result<Vec<u8>> {
    let mut resp = ureq::get(url)
        .call()
        .with_context(|| format!("fetching the kickstart {url}"))?;
    let body = resp
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_vec()
        .with_context(|| format!("reading the kickstart {url}"))?;
    Ok(body)
}

/// Puts the kickstart at `location` into `dir` and returns its path (so that
/// `%include` relative to it works for local files).
pub fn fetch(location: &Location, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join("ks.cfg");
    match location {
        Location::Http(url) => keep_kickstart(&http_get(url)?, &dest)?,
        Location::File(p) => return Ok(p.clone()),
        Location::Hd { device, path } => copy_from_device(&device_path(device)?, path, &dest)?,
        Location::Cdrom { device, path } => {
            let on_medium = Path::new(LIVE_MEDIUM).join(path.trim_start_matches('/'));
            match device {
                None if on_medium.is_file() => return Ok(on_medium),
                None => copy_from_device(Path::new("/dev/sr0"), path, &dest)?,
                Some(d) => copy_from_device(&device_path(d)?, path, &dest)?,
            }
        }
        Location::Customized(k) => {
            // Named as it was embedded, so that diagnostics name the
            // administrator's file.
            let name = Path::new(&k.name)
                .file_name()
                .filter(|n| !n.is_empty())
                .map_or_else(|| "ks.cfg".into(), |n| n.to_os_string());
            let dest = dir.join(name);
            keep_kickstart(k.text.as_bytes(), &dest)?;
            return Ok(dest);
        }
        Location::Oemdrv => copy_from_device(&by_tag("LABEL", OEMDRV)?, "/ks.cfg", &dest)?,
        Location::Embedded => {
            let p = Path::new(LIVE_MEDIUM).join(EMBEDDED);
            if !p.is_file() {
                bail!(
                    "no kickstart: none on the kernel command line (inst.ks=), no volume labelled {OEMDRV}, and {} is missing",
                    p.display()
                );
            }
            return Ok(p);
        }
    }
    Ok(dest)
}

/// The boot medium's customisation (`hvnode iso customize`), if any; an
/// error when it is there and does not read.
pub fn medium_customization(medium: &Path) -> Result<Option<Customization>> {
    iso_custom::read_medium(medium).context("reading the boot medium's customisation")
}

/// The command line, then the medium's customised kickstart, then OEMDRV,
/// then the medium's interactive defaults (see the module documentation).
pub fn locate(cmdline: &str, custom: Option<&Customization>) -> Result<Location> {
    locate_with(cmdline, custom, oemdrv_present)
}

/// [`locate`] with the OEMDRV look-up given (tests).
pub fn locate_with(
    cmdline: &str,
    custom: Option<&Customization>,
    oemdrv_present: impl FnOnce() -> bool,
) -> Result<Location> {
    if let Some(l) = from_cmdline(cmdline)? {
        return Ok(l);
    }
    if let Some(k) = custom.and_then(|c| c.kickstart.as_ref()) {
        return Ok(Location::Customized(k.clone()));
    }
    if oemdrv_present() {
        return Ok(Location::Oemdrv);
    }
    Ok(Location::Embedded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetched_kickstart_is_for_root_only() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("ks/ks.cfg");
        keep_kickstart(b"rootpw secret\n", &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"rootpw secret\n");
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn every_anaconda_form_parses() {
        assert_eq!(
            parse_location("http://10.0.2.2:8080/ks.cfg").unwrap(),
            Location::Http("http://10.0.2.2:8080/ks.cfg".into())
        );
        assert_eq!(
            parse_location("file:/run/ks.cfg").unwrap(),
            Location::File("/run/ks.cfg".into())
        );
        assert_eq!(
            parse_location("file:///run/ks.cfg").unwrap(),
            Location::File("/run/ks.cfg".into())
        );
        assert_eq!(
            parse_location("hd:LABEL=KS:/node/ks.cfg").unwrap(),
            Location::Hd {
                device: "LABEL=KS".into(),
                path: "/node/ks.cfg".into()
            }
        );
        assert_eq!(
            parse_location("hd:sdb1:/ks.cfg").unwrap(),
            Location::Hd {
                device: "sdb1".into(),
                path: "/ks.cfg".into()
            }
        );
        assert_eq!(
            parse_location("cdrom:/ks/node.ks").unwrap(),
            Location::Cdrom {
                device: None,
                path: "/ks/node.ks".into()
            }
        );
        assert_eq!(
            parse_location("cdrom:sr1:/ks.cfg").unwrap(),
            Location::Cdrom {
                device: Some("sr1".into()),
                path: "/ks.cfg".into()
            }
        );
    }

    #[test]
    fn bad_locations_say_what_is_accepted() {
        for v in [
            "nfs:server:/ks.cfg",
            "hd:/ks.cfg",
            "hd:sdb1:ks.cfg",
            "cdrom:ks.cfg",
        ] {
            let e = parse_location(v).unwrap_err().to_string();
            assert!(
                e.contains(v) && e.contains("expected") || e.contains("unknown"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_command_line_wins_and_the_last_argument_counts() {
        let l = from_cmdline("BOOT_IMAGE=/vmlinuz ks=file:/a.ks inst.ks=http://h/b.ks quiet")
            .unwrap()
            .unwrap();
        assert_eq!(l, Location::Http("http://h/b.ks".into()));
        assert_eq!(from_cmdline("root=live:CDLABEL=HVNODE").unwrap(), None);
    }

    #[test]
    fn the_customised_medium_comes_after_the_command_line_and_before_oemdrv() {
        let d = tempfile::tempdir().unwrap();
        let medium = d.path().join("live");
        assert_eq!(medium_customization(&medium).unwrap(), None);
        // A medium as `hvnode iso customize` writes it.
        let ks = EmbeddedKickstart {
            name: "site.ks".into(),
            text: "rootpw --lock\n".into(),
        };
        let c = Customization {
            kickstart: Some(ks.clone()),
            ..Customization::default()
        };
        let area = medium.join(iso_custom::AreaKind::Installer.path());
        fs::create_dir_all(area.parent().unwrap()).unwrap();
        let bytes = iso_custom::encode(iso_custom::AreaKind::Installer, &c.to_payload()).unwrap();
        fs::write(&area, bytes).unwrap();
        let found = medium_customization(&medium).unwrap().unwrap();
        assert_eq!(found, c);

        let plain = "root=live:CDLABEL=HVNODE hvnode.install";
        let no_oemdrv = || false;
        let oemdrv = || true;
        let unasked = || panic!("OEMDRV looked for although the medium has a kickstart");
        assert_eq!(
            locate_with(
                &format!("{plain} inst.ks=http://h/ks.cfg"),
                Some(&found),
                unasked
            )
            .unwrap(),
            Location::Http("http://h/ks.cfg".into())
        );
        let loc = locate_with(plain, Some(&found), unasked).unwrap();
        assert_eq!(loc, Location::Customized(ks));
        assert!(loc.to_string().starts_with("site.ks, embedded"), "{loc}");
        assert_eq!(locate_with(plain, None, oemdrv).unwrap(), Location::Oemdrv);
        assert_eq!(
            locate_with(plain, Some(&Customization::default()), no_oemdrv).unwrap(),
            Location::Embedded
        );
        // Kept for the install as the administrator named it, root's only.
        let kept = fetch(&loc, &d.path().join("work/ks")).unwrap();
        assert_eq!(kept, d.path().join("work/ks/site.ks"));
        assert_eq!(fs::read_to_string(&kept).unwrap(), "rootpw --lock\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
            0o600
        );

        // A damaged area stops the install with what to do.
        fs::write(&area, b"garbage").unwrap();
        let e = format!("{:#}", medium_customization(&medium).unwrap_err());
        assert!(
            e.contains("ks/custom.area") && e.contains("inst.ks="),
            "{e}"
        );
    }

    #[test]
    fn a_local_file_is_used_where_it_is() {
        let d = tempfile::tempdir().unwrap();
        let ks = d.path().join("node.ks");
        fs::write(&ks, "text\n").unwrap();
        assert_eq!(fetch(&Location::File(ks.clone()), d.path()).unwrap(), ks);
    }
}
