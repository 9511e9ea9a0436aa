//! The initramfs images, from dracut, generic (not host-only): one for the
//! live boot of the ISO, USB and PXE (the recipe's `live_modules`:
//! dmsquash-live, livenet, the network stack and every network driver),
//! and one for the installed node, in the image's `/boot`, which the
//! installer and updates give every layer (lvm, btrfs, hvnode-layer; no
//! network). The installed node's is less than half the size: it is
//! unpacked on every boot of every node.

use std::fs;
use std::path::Path;

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

/// Which of the image's two initramfs images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The medium's (ISO, USB, PXE): boots the live image.
    Live,
    /// The installed node's, in the image's `/boot`.
    Installed,
}

impl Flavor {
    /// The name of its stage in the cache and the logs.
    pub fn stage(self) -> &'static str {
        match self {
            Flavor::Live => "initramfs-live",
            Flavor::Installed => "initramfs",
        }
    }

    /// Whose it is, for messages.
    pub fn whose(self) -> &'static str {
        match self {
            Flavor::Live => "live boot's",
            Flavor::Installed => "installed node's",
        }
    }
}

/// dracut's configuration for the image's `flavor` of initramfs.
pub fn dracut_conf(recipe: &Recipe, flavor: Flavor) -> String {
    let ir = &recipe.initramfs;
    let mut s = format!(
        "# hvnode: a generic initramfs that boots {}.\nhostonly=\"no\"\nreproducible=\"yes\"\ncompress=\"zstd\"\n",
        match flavor {
            Flavor::Live => "the live image",
            Flavor::Installed => "installed nodes",
        }
    );
    let (add, omit): (Vec<&String>, Vec<&String>) = match flavor {
        Flavor::Live => (
            ir.modules.iter().chain(&ir.live_modules).collect(),
            ir.omit.iter().collect(),
        ),
        Flavor::Installed => (
            ir.modules.iter().collect(),
            ir.omit
                .iter()
                .chain(&ir.live_modules)
                .chain(&ir.installed_omit)
                .collect(),
        ),
    };
    let join = |v: &[&String]| v.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" ");
    if !add.is_empty() {
        s.push_str(&format!("add_dracutmodules+=\" {} \"\n", join(&add)));
    }
    if !omit.is_empty() {
        s.push_str(&format!("omit_dracutmodules+=\" {} \"\n", join(&omit)));
    }
    if !ir.filesystems.is_empty() {
        s.push_str(&format!(
            "filesystems+=\" {} \"\n",
            ir.filesystems.join(" ")
        ));
    }
    s
}

/// Where dracut's configuration for the image goes.
const CONF: &str = "/etc/dracut.conf.d/90-hvnode.conf";

/// Writes dracut's configuration for `flavor` into the image. The tree
/// keeps the installed node's (what a node that regenerates its
/// initramfs must use); it is written whether the initramfs is built or
/// taken from the cache, so that the tree is the same either way.
pub fn write_conf(root: &Root, recipe: &Recipe, flavor: Flavor) -> Result<()> {
    root.write(CONF, dracut_conf(recipe, flavor).as_bytes(), 0o644)
}

/// dracut's scratch directory in the image (its default). dracut leaves
/// it empty but with a new modification time, which [`build`] puts back.
const DRACUT_TMPDIR: &str = "/var/tmp";

/// dracut's arguments besides the kernel version and the output. They are
/// recorded in the initramfs, so they are part of its cache key.
pub const DRACUT_ARGS: &[&str] = &["--force", "--no-hostonly"];

/// Builds the `flavor` initramfs of the image with the configuration
/// [`write_conf`] wrote for it into `dest`: the installed node's is the
/// tree's `/boot/initrd.img-KVER`; the live boot's is written in dracut's
/// scratch folder and moved out of the tree to `dest`. The tree is left
/// as it was apart from the installed node's initramfs, time stamps
/// included, as when the images come from the cache (a reproducible
/// rebuild compares them).
pub fn build(root: &Root, flavor: Flavor, dest: &Path, log: &Path, epoch: i64) -> Result<()> {
    let kver = kernel_version(root)?;
    let initrd = match flavor {
        Flavor::Installed => format!("/boot/initrd.img-{kver}"),
        Flavor::Live => format!("{DRACUT_TMPDIR}/hvnode-initrd-live.img-{kver}"),
    };
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
            .with_context(|| format!("building the {} initramfs with dracut", flavor.whose()))?;
    }
    let built = root.join(&initrd);
    if built.as_path() != dest {
        fs::rename(&built, dest)
            .or_else(|_| fs::copy(&built, dest).and_then(|_| fs::remove_file(&built)))
            .with_context(|| {
                format!(
                    "moving the {} initramfs {} out of the image to {}",
                    flavor.whose(),
                    built.display(),
                    dest.display()
                )
            })?;
    }
    fs::File::open(&tmpdir)
        .and_then(|d| d.set_modified(tmpdir_mtime))
        .with_context(|| format!("restoring the time of {}", tmpdir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_lists_modules() {
        let r = Recipe::parse(
            Path::new("r.toml"),
            "name = \"n\"\nversion = \"1\"\nrelease = \"1\"\n[base]\nsuite = \"bookworm\"\n[packages]\ninclude = [\"x\"]\n[initramfs]\nmodules = [\"dmsquash-live\", \"lvm\"]\nomit = [\"plymouth\"]\nfilesystems = [\"ext4\", \"isofs\"]\n",
        )
        .unwrap();
        let c = dracut_conf(&r, Flavor::Live);
        assert!(c.contains("hostonly=\"no\""));
        assert!(c.contains("add_dracutmodules+=\" dmsquash-live lvm \""));
        assert!(c.contains("omit_dracutmodules+=\" plymouth \""));
        assert!(c.contains("filesystems+=\" ext4 isofs \""));
    }

    #[test]
    fn the_installed_nodes_initramfs_leaves_the_live_boot_and_the_network_out() {
        let r = Recipe::parse(
            Path::new("r.toml"),
            "name = \"n\"\nversion = \"1\"\nrelease = \"1\"\n[base]\nsuite = \"bookworm\"\n[packages]\ninclude = [\"x\"]\n[initramfs]\nmodules = [\"lvm\"]\nomit = [\"plymouth\"]\nlive_modules = [\"dmsquash-live\", \"livenet\"]\ninstalled_omit = [\"network\"]\n",
        )
        .unwrap();
        let live = dracut_conf(&r, Flavor::Live);
        assert!(live.contains("add_dracutmodules+=\" lvm dmsquash-live livenet \""));
        assert!(live.contains("omit_dracutmodules+=\" plymouth \""));
        let installed = dracut_conf(&r, Flavor::Installed);
        assert!(installed.contains("add_dracutmodules+=\" lvm \""));
        assert!(
            installed.contains("omit_dracutmodules+=\" plymouth dmsquash-live livenet network \"")
        );
        assert!(installed.contains("installed nodes"));
    }

    #[test]
    fn a_module_both_everywhere_and_live_only_is_refused_naming_its_line() {
        let text = "name = \"n\"\nversion = \"1\"\nrelease = \"1\"\n[base]\nsuite = \"bookworm\"\n[packages]\ninclude = [\"x\"]\n[initramfs]\nmodules = [\"lvm\", \"livenet\"]\nlive_modules = [\"livenet\"]\n";
        let e = Recipe::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.toml:10"), "{e}");
        assert!(e.contains("\"livenet\" is in both modules"), "{e}");
    }
}
