//! The image's root tree on the build host: unpacking it, running programs
//! inside it (with `/proc`, `/sys` and `/dev` mounted for as long as a
//! [`Chroot`] lives), and laying files into it.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// The root tree being built.
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
}

impl Root {
    /// `rel` (absolute inside the image) as a path on the build host.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel.trim_start_matches('/'))
    }

    /// Writes a file inside the image, creating parent directories.
    pub fn write(&self, rel: &str, content: &[u8], mode: u32) -> Result<()> {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        // Never write through a symlink into the build host.
        if p.is_symlink() {
            fs::remove_file(&p)
                .with_context(|| format!("replacing the symlink {}", p.display()))?;
        }
        fs::write(&p, content).with_context(|| format!("writing {}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", p.display()))
    }

    pub fn read_to_string(&self, rel: &str) -> Result<String> {
        let p = self.join(rel);
        fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    }

    /// Copies the tree `src` over `dest` inside the image: directories are
    /// created, files and symlinks replaced, modes kept, owner root.
    pub fn copy_tree(&self, src: &Path, dest: &str) -> Result<usize> {
        let mut count = 0;
        if !src.exists() {
            return Ok(0);
        }
        for entry in fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let target = format!("{}/{name}", dest.trim_end_matches('/'));
            let t = entry.file_type()?;
            if t.is_dir() {
                fs::create_dir_all(self.join(&target))?;
                count += self.copy_tree(&entry.path(), &target)?;
            } else if t.is_symlink() {
                let link = fs::read_link(entry.path())?;
                let p = self.join(&target);
                if p.exists() || p.is_symlink() {
                    fs::remove_file(&p)?;
                }
                symlink(link, &p)?;
                count += 1;
            } else {
                let mode = entry.metadata()?.permissions().mode() & 0o7777;
                let content = fs::read(entry.path())?;
                self.write(&target, &content, mode)?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// Sets every time stamp in the tree that is later than `epoch` to
    /// `epoch` (reproducible images), without following symlinks.
    pub fn clamp_mtimes(&self, epoch: i64) -> Result<()> {
        set_times(&self.path, epoch, true)
    }
}

/// Sets the time stamps under `dir` to `epoch`: all of them, or with
/// `only_later` those later than `epoch`. Symlinks are not followed.
pub fn set_times(dir: &Path, epoch: i64, only_later: bool) -> Result<()> {
    let stamp = format!("@{epoch}");
    let mut c = Command::new("find");
    c.arg(dir).arg("-xdev");
    if only_later {
        c.args(["-newermt", &stamp]);
    }
    c.args(["-exec", "touch", "-h", "-d", &stamp, "{}", "+"])
        .run()
        .context("setting time stamps to SOURCE_DATE_EPOCH")
}

/// Unpacks a root tarball (as mmdebstrap writes it) into `dest`.
/// Unmounts what an interrupted build left mounted under `dir` (deepest
/// first), so that the tree can be removed.
pub fn unmount_below(dir: &Path) -> Result<()> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    let prefix = format!("{}/", dir.display());
    let mut stale: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    stale.sort_by_key(|m| std::cmp::Reverse(m.len()));
    stale.dedup();
    for m in stale {
        Command::new("umount")
            .args(["--lazy", m])
            .run()
            .with_context(|| format!("unmounting {m}, left mounted by an interrupted build"))?;
    }
    Ok(())
}

pub fn unpack(tarball: &Path, dest: &Path) -> Result<Root> {
    if dest.exists() {
        unmount_below(dest)?;
        fs::remove_dir_all(dest)
            .with_context(|| format!("removing the old tree {}", dest.display()))?;
    }
    fs::create_dir_all(dest)?;
    Command::new("tar")
        .args([
            "--extract",
            "--numeric-owner",
            "--same-permissions",
            "--xattrs",
            "--xattrs-include=*",
            "--file",
        ])
        .arg(tarball)
        .arg("--directory")
        .arg(dest)
        .run()
        .context("unpacking the bootstrap tarball")?;
    Ok(Root {
        path: dest.to_path_buf(),
    })
}

/// Programs run inside the image while this lives; the mounts go with it.
#[derive(Debug)]
pub struct Chroot<'a> {
    root: &'a Root,
    mounted: Vec<PathBuf>,
}

impl<'a> Chroot<'a> {
    pub fn enter(root: &'a Root) -> Result<Chroot<'a>> {
        let mut c = Chroot {
            root,
            mounted: Vec::new(),
        };
        c.mount(Some("proc"), "/proc", Some("proc"), MsFlags::empty())?;
        c.mount(
            Some("/sys"),
            "/sys",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
        )?;
        c.mount(
            Some("/dev"),
            "/dev",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
        )?;
        c.mount(Some("tmpfs"), "/run", Some("tmpfs"), MsFlags::empty())?;
        c.mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::empty())?;
        Ok(c)
    }

    fn mount(
        &mut self,
        src: Option<&str>,
        rel: &str,
        fstype: Option<&str>,
        flags: MsFlags,
    ) -> Result<()> {
        let target = self.root.join(rel);
        if target.is_symlink() {
            bail!(
                "{} is a symlink in the image; refusing to mount over it",
                target.display()
            );
        }
        fs::create_dir_all(&target)?;
        mount(src, &target, fstype, flags, None::<&str>).with_context(|| {
            format!(
                "mounting {} on {}",
                src.unwrap_or_default(),
                target.display()
            )
        })?;
        self.mounted.push(target);
        Ok(())
    }

    /// A command run inside the image by `chroot`.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("chroot");
        c.arg(&self.root.path).arg(program);
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C.UTF-8")
            .env("HOME", "/root");
        c
    }
}

impl Drop for Chroot<'_> {
    fn drop(&mut self) {
        for target in self.mounted.drain(..).rev() {
            if let Err(e) = umount2(&target, MntFlags::MNT_DETACH) {
                tracing::warn!("unmounting {}: {e}", target.display());
            }
        }
    }
}
