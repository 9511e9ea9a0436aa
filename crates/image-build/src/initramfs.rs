//! The initramfs: dracut, generic (not host-only), with the modules a live
//! boot needs (dmsquash-live, livenet) and those an installed node needs
//! (lvm, btrfs).

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use command::CommandExt;

use crate::recipe::Recipe;
use crate::rootfs::{Chroot, Root};

/// Directories of `image/files/` whose contents can end up in the
/// initramfs; a change elsewhere does not rebuild it.
pub const INPUT_DIRS: &[&str] = &[
    "etc/dracut.conf.d",
    "usr/lib/dracut",
    "etc/modprobe.d",
    "usr/lib/modprobe.d",
    "etc/udev",
    "usr/lib/udev",
    "etc/systemd/network",
    "etc/cmdline.d",
];

/// The kernel version installed in the image (one is expected).
pub fn kernel_version(root: &Root) -> Result<String> {
    let mut versions: Vec<String> = fs::read_dir(root.join("/usr/lib/modules"))
        .context("listing the image's kernel modules")?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|v| root.join(&format!("/boot/vmlinuz-{v}")).exists())
        .collect();
    versions.sort();
    match versions.as_slice() {
        [] => bail!("the image has no kernel: add linux-image-amd64 to packages.include"),
        [.., last] => Ok(last.clone()),
    }
}

/// dracut's configuration for the image.
pub fn dracut_conf(recipe: &Recipe) -> String {
    let mut s = String::from(
        "# hvnode: a generic initramfs that boots the live image and installed nodes.\nhostonly=\"no\"\nreproducible=\"yes\"\ncompress=\"zstd\"\n",
    );
    if !recipe.initramfs.modules.is_empty() {
        s.push_str(&format!(
            "add_dracutmodules+=\" {} \"\n",
            recipe.initramfs.modules.join(" ")
        ));
    }
    if !recipe.initramfs.omit.is_empty() {
        s.push_str(&format!(
            "omit_dracutmodules+=\" {} \"\n",
            recipe.initramfs.omit.join(" ")
        ));
    }
    if !recipe.initramfs.filesystems.is_empty() {
        s.push_str(&format!(
            "filesystems+=\" {} \"\n",
            recipe.initramfs.filesystems.join(" ")
        ));
    }
    s
}

/// Writes dracut's configuration into the image. Done whether the
/// initramfs is built or taken from the cache, so that the image (which
/// regenerates its initramfs on installed nodes) is the same either way.
pub fn write_conf(root: &Root, recipe: &Recipe) -> Result<()> {
    root.write(
        "/etc/dracut.conf.d/90-hvnode.conf",
        dracut_conf(recipe).as_bytes(),
        0o644,
    )
}

/// dracut's scratch directory in the image (its default). dracut leaves
/// it empty but with a new modification time, which [`build`] puts back.
const DRACUT_TMPDIR: &str = "/var/tmp";

/// dracut's arguments besides the kernel version and the output. They are
/// recorded in the initramfs, so they are part of its cache key.
pub const DRACUT_ARGS: &[&str] = &["--force", "--no-hostonly"];

/// Builds `/boot/initrd.img-KVER` in the image (after [`write_conf`]);
/// returns its path on the host. The tree is left as it was apart from
/// the initramfs, as when the initramfs comes from the cache.
pub fn build(root: &Root, log: &std::path::Path, epoch: i64) -> Result<PathBuf> {
    let kver = kernel_version(root)?;
    let initrd = format!("/boot/initrd.img-{kver}");
    let tmpdir = root.join(DRACUT_TMPDIR);
    let tmpdir_mtime = fs::metadata(&tmpdir)
        .and_then(|m| m.modified())
        .with_context(|| format!("reading the time of {}", tmpdir.display()))?;
    {
        let chroot = Chroot::enter(root)?;
        chroot
            .command("dracut")
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .args(DRACUT_ARGS)
            .args(["--kver", &kver, &initrd])
            .run_logged(log)
            .context("building the initramfs with dracut")?;
    }
    fs::File::open(&tmpdir)
        .and_then(|d| d.set_modified(tmpdir_mtime))
        .with_context(|| format!("restoring the time of {}", tmpdir.display()))?;
    Ok(root.join(&initrd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_lists_modules() {
        let r = Recipe::parse(
            std::path::Path::new("r.toml"),
            "name = \"n\"\nversion = \"1\"\nrelease = \"1\"\n[base]\nsuite = \"bookworm\"\n[packages]\ninclude = [\"x\"]\n[initramfs]\nmodules = [\"dmsquash-live\", \"lvm\"]\nomit = [\"plymouth\"]\nfilesystems = [\"ext4\", \"isofs\"]\n",
        )
        .unwrap();
        let c = dracut_conf(&r);
        assert!(c.contains("hostonly=\"no\""));
        assert!(c.contains("add_dracutmodules+=\" dmsquash-live lvm \""));
        assert!(c.contains("omit_dracutmodules+=\" plymouth \""));
        assert!(c.contains("filesystems+=\" ext4 isofs \""));
    }
}
