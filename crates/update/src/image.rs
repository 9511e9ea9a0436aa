//! The new image, opened read-only: the bundle's squashfs, the ext4 root
//! file system inside it (`LiveOS/rootfs.img`), its identity and kernel.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hostinfo::ImageIdentity;
use layers::Nvr;

use crate::mounts::Mounts;

/// The image's root file system inside its squashfs.
pub const ROOTFS_IMG: &str = "LiveOS/rootfs.img";

/// The opened image (its mounts live in the caller's [`Mounts`]).
#[derive(Debug, Clone)]
pub struct Image {
    /// `LiveOS/rootfs.img`: what an LVM base is written from.
    pub rootfs_img: PathBuf,
    /// Its file system, mounted read-only: what a btrfs or plain base is
    /// copied from.
    pub tree: PathBuf,
    pub identity: ImageIdentity,
    pub nvr: Nvr,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Bytes in use in the image's file system: what a base takes.
    pub used_bytes: u64,
    /// The kernel and initramfs together.
    pub boot_bytes: u64,
}

impl Image {
    /// Mounts `squashfs` under `work` and reads what the update needs.
    pub fn open(squashfs: &Path, work: &Path, mounts: &mut Mounts) -> Result<Image> {
        let squash = work.join("squashfs");
        let tree = work.join("image");
        mounts
            .mount(&["-t", "squashfs", "-o", "ro,loop"], squashfs, &squash)
            .with_context(|| format!("opening {} (is it a squashfs?)", squashfs.display()))?;
        let rootfs_img = squash.join(ROOTFS_IMG);
        if !rootfs_img.is_file() {
            bail!(
                "{} has no {ROOTFS_IMG}: not an hvnode image",
                squashfs.display()
            );
        }
        // A loop device of its own, read-only.
        let dev = mounts.attach_loop(&rootfs_img)?;
        mounts.mount(&["-t", "ext4", "-o", "ro,noload"], &dev, &tree)?;
        let identity = ImageIdentity::read(&tree)?;
        let nvr: Nvr = identity
            .nvr
            .parse()
            .with_context(|| format!("the new image names a bad NVR {:?}", identity.nvr))?;
        let (kernel, initrd) = layers::boot::image_kernel(&tree)?;
        let size = |p: &Path| -> Result<u64> {
            Ok(std::fs::metadata(p)
                .with_context(|| format!("reading the size of {}", p.display()))?
                .len())
        };
        let boot_bytes = size(&kernel)? + size(&initrd)?;
        let st = nix::sys::statvfs::statvfs(&tree)
            .with_context(|| format!("measuring {}", tree.display()))?;
        let used_bytes = (st.blocks() as u64).saturating_sub(st.blocks_free() as u64)
            * st.fragment_size() as u64;
        Ok(Image {
            rootfs_img,
            tree,
            identity,
            nvr,
            kernel,
            initrd,
            used_bytes,
            boot_bytes,
        })
    }
}
