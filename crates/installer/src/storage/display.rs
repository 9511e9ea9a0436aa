//! How a [`StoragePlan`] reads on `--dry-run` and on the console: the
//! disk, its partitions, the layer store with the root and the volumes in
//! it, the boot loaders, and the notes.

use std::fmt::{self, Formatter};

use super::{Backing, PlannedPartition, Role, StoragePlan, StorePlan, VgPlan, partition_path};
use crate::disks::human;

impl fmt::Display for StoragePlan {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let d = &self.disk;
        if self.wipe {
            writeln!(
                f,
                "Disk {}: WIPED (every partition and signature on it is lost)",
                d.describe()
            )?;
        } else {
            writeln!(f, "Disk {}: new partition table", d.describe())?;
        }
        writeln!(f, "  GPT partitions:")?;
        for p in &self.partitions {
            self.fmt_partition(f, p)?;
        }
        match &self.store {
            StorePlan::Lvm(v) => self.fmt_lvm(f, v)?,
            StorePlan::Plain { .. } => {
                writeln!(
                    f,
                    "  Layer store: folders of the xfs partition, hvnode/bases/NVR (the image, read-only at /sysroot) and hvnode/layers/NVR+1 (/, a reflinked copy of it)"
                )?;
            }
            StorePlan::Btrfs { .. } => self.fmt_btrfs(f)?,
        }
        if let Some(bios) = self.partition(Role::BiosBoot) {
            writeln!(
                f,
                "  Boot loaders: grub for BIOS in {}; for UEFI shim (Secure Boot) at EFI/BOOT/BOOTX64.EFI",
                partition_path(&d.path, bios.number).display()
            )?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "  Notes:")?;
            for n in &self.notes {
                writeln!(f, "    - {n}")?;
            }
        }
        Ok(())
    }
}

impl StoragePlan {
    /// What a partition holds (`ext4, /boot (…)`).
    fn partition_use(&self, p: &PlannedPartition) -> String {
        match p.role {
            Role::BiosBoot => "BIOS boot (grub for BIOS)".to_string(),
            Role::Efi => "EFI system partition, vfat, /boot/efi".to_string(),
            Role::Boot => "ext4, /boot (a kernel and initramfs per layer)".to_string(),
            Role::Pv => match self.vg() {
                Some(v) => format!("LVM physical volume of volume group {}", v.spec.vg),
                None => "LVM physical volume".to_string(),
            },
            Role::Btrfs => "btrfs: the layer store and the separate volumes".to_string(),
            Role::PlainStore => "xfs: the layer store".to_string(),
            Role::Volume => self
                .volumes
                .iter()
                .find(|v| v.backing == Backing::Partition(p.number))
                .map(|v| format!("{}, {}", v.fstype, v.mountpoint))
                .unwrap_or_default(),
        }
    }

    /// `    /dev/vda4   59.4 GiB+  8E00  LVM physical volume …  [ks.cfg:4: …]`
    fn fmt_partition(&self, f: &mut Formatter<'_>, p: &PlannedPartition) -> fmt::Result {
        let what = self.partition_use(p);
        let size = if p.to_end {
            format!("{}+", human(p.bytes))
        } else {
            human(p.bytes)
        };
        write!(
            f,
            "    {} {:>10}  {}  {what}",
            partition_path(&self.disk.path, p.number).display(),
            size,
            p.code
        )?;
        match &p.from {
            Some(from) => writeln!(f, "  [{from}]"),
            None => writeln!(f),
        }
    }

    /// The volume group, its thin pool, the root and the logical volumes.
    fn fmt_lvm(&self, f: &mut Formatter<'_>, v: &VgPlan) -> fmt::Result {
        let s = &v.spec;
        let extents = s
            .extent_bytes
            .map(|e| format!(", {} extents", human(e)))
            .unwrap_or_default();
        writeln!(
            f,
            "  Volume group {} of {}{extents}, {} kept free ({})",
            s.vg,
            human(v.vg_bytes),
            human(v.reserved_bytes),
            v.reserved_why
        )?;
        let mut pool = format!("  Thin pool {} of {}", s.pool, human(v.pool_bytes));
        if let Some(m) = s.metadata_bytes {
            pool.push_str(&format!(", metadata {}", human(m)));
        }
        if let Some(c) = s.chunk_bytes {
            pool.push_str(&format!(", chunks of {}", human(c)));
        }
        writeln!(f, "{pool}")?;
        writeln!(
            f,
            "    {:<28} {:>9}  thin, ext4, read-only image base, then its writable layer NVR+1 (/{})",
            "NVR",
            human(self.root_bytes),
            self.root_options
                .as_deref()
                .map(|o| format!(", {o}"))
                .unwrap_or_default()
        )?;
        for v in &self.volumes {
            let kind = match v.backing {
                Backing::Thin => "thin, ",
                Backing::Thick => "",
                Backing::Partition(_) | Backing::Subvolume => continue,
            };
            let place = if v.is_swap() {
                String::new()
            } else {
                format!(", {}", v.mountpoint)
            };
            writeln!(
                f,
                "    {:<28} {:>9}  {kind}{}{place} ({})",
                v.name,
                human(v.bytes),
                v.fstype,
                v.options
            )?;
        }
        Ok(())
    }

    /// The btrfs subvolumes: the image base, its layer and the volumes.
    fn fmt_btrfs(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "  btrfs subvolumes:")?;
        writeln!(
            f,
            "    hvnode/bases/NVR (read-only), hvnode/layers/NVR+1 (/)"
        )?;
        for v in &self.volumes {
            let what = if v.is_swap() {
                format!("swap file of {} at /swap/swapfile", human(v.bytes))
            } else {
                v.mountpoint.clone()
            };
            writeln!(f, "    hvnode/volumes/{:<20} {what}", v.name)?;
        }
        Ok(())
    }
}
