//! The signed UEFI boot chain an image carries, one home for where each
//! loader comes from and where it goes: the image builder puts it on the
//! ISO, the USB image and the PXE tree, the installer on the node's ESP.
//!
//! Secure Boot firmware trusts Microsoft's UEFI CA, which signed shim;
//! shim trusts Debian's CA built into it, which signed grub, the
//! MOK manager and the kernel (`linux-image-amd64`). Each grub image is
//! monolithic: its modules are built in, none can be loaded from a disk
//! under Secure Boot, and each finds its configuration its own way (see
//! the constants below).

use std::path::Path;

/// One signed loader in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loader {
    /// Where Debian's package installs it, below the image's root.
    pub path: &'static str,
    /// The package that ships it (its version is in the image's manifest).
    pub package: &'static str,
    /// Whose signature it carries.
    pub signed_by: &'static str,
}

/// shim, the first stage: signed by Microsoft, it starts `grubx64.efi`
/// from its own folder, checking Debian's signature.
pub const SHIM: Loader = Loader {
    path: "/usr/lib/shim/shimx64.efi.signed",
    package: "shim-signed",
    signed_by: "Microsoft Corporation UEFI CA 2011",
};

/// shim's MOK manager (`mmx64.efi` beside shim): enrols an admin's own
/// keys (Machine Owner Keys) at the next boot after `mokutil --import`.
pub const MOK_MANAGER: Loader = Loader {
    path: "/usr/lib/shim/mmx64.efi.signed",
    package: "shim-helpers-amd64-signed",
    signed_by: "Debian Secure Boot Signer 2022 - shim",
};

/// grub for CDs and USB disks. Built-in prefix `/boot/grub` on its own
/// device; when that is not there (the USB's FAT partition), it finds the
/// medium by the file [`DISK_INFO`]. It then reads
/// `$prefix/x86_64-efi/grub.cfg` ([`CD_GRUB_CFG`]) if there, else
/// `$prefix/grub.cfg`.
pub const GRUB_CD: Loader = Loader {
    path: "/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
    package: "grub-efi-amd64-signed",
    signed_by: "Debian Secure Boot Signer 2022 - grub2",
};

/// grub for network boots: built-in prefix `/grub` on the TFTP server it
/// came from; reads [`NET_GRUB_CFG`].
pub const GRUB_NET: Loader = Loader {
    path: "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
    package: "grub-efi-amd64-signed",
    signed_by: "Debian Secure Boot Signer 2022 - grub2",
};

/// grub for installed systems: built-in prefix `/EFI/debian` on the ESP
/// ([`DISK_GRUB_CFG`]); it also has LVM, RAID and LUKS built in.
pub const GRUB_DISK: Loader = Loader {
    path: "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
    package: "grub-efi-amd64-signed",
    signed_by: "Debian Secure Boot Signer 2022 - grub2",
};

/// The firmware's removable-media path: what a UEFI machine boots from a
/// disk or a medium with no boot entry of its own. shim goes there.
pub const REMOVABLE_PATH: &str = "EFI/BOOT/BOOTX64.EFI";
/// The name shim starts beside itself: grub goes there.
pub const SECOND_STAGE: &str = "grubx64.efi";
/// The name shim looks for its MOK manager under, beside itself.
pub const MOK_MANAGER_NAME: &str = "mmx64.efi";

/// The file [`GRUB_CD`] searches for to find the medium.
pub const DISK_INFO: &str = ".disk/info";
/// The first configuration [`GRUB_CD`] reads on the medium.
pub const CD_GRUB_CFG: &str = "boot/grub/x86_64-efi/grub.cfg";
/// The configuration [`GRUB_NET`] reads from its TFTP server.
pub const NET_GRUB_CFG: &str = "grub/grub.cfg";
/// The configuration [`GRUB_DISK`] reads on the ESP. With it there, grub
/// never searches other disks for [`DISK_INFO`] (an installer ISO left in
/// the drive would otherwise give its menu).
pub const DISK_GRUB_CFG: &str = "EFI/debian/grub.cfg";

/// The loaders a medium carries (ISO and USB).
pub const MEDIUM: [Loader; 3] = [SHIM, GRUB_CD, MOK_MANAGER];
/// The loaders a PXE tree carries.
pub const NETWORK: [Loader; 3] = [SHIM, GRUB_NET, MOK_MANAGER];
/// The loaders an installed node's ESP carries.
pub const INSTALLED: [Loader; 3] = [SHIM, GRUB_DISK, MOK_MANAGER];

/// What a loader is called where it is placed: shim at the removable path
/// (or its file name on a TFTP server), the others under the names shim
/// looks for.
pub fn placed_name(loader: &Loader) -> &'static str {
    if *loader == SHIM {
        "BOOTX64.EFI"
    } else if *loader == MOK_MANAGER {
        MOK_MANAGER_NAME
    } else {
        SECOND_STAGE
    }
}

/// Whether the PE image `bytes` carries an Authenticode signature: a
/// non-empty certificate table (data directory 4). Enough to refuse an
/// unsigned binary where a signed one belongs; the firmware and shim check
/// the signature itself.
pub fn has_signature(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(pe) = u32_at(0x3c).map(|v| v as usize) else {
        return false;
    };
    if bytes.get(..2) != Some(b"MZ") || bytes.get(pe..pe + 4) != Some(b"PE\0\0") {
        return false;
    }
    let optional = pe + 24;
    let directories = match u16_at(optional) {
        Some(0x20b) => optional + 112,
        Some(0x10b) => optional + 96,
        _ => return false,
    };
    let (Some(offset), Some(size)) = (u32_at(directories + 32), u32_at(directories + 36)) else {
        return false;
    };
    size > 8 && (offset as usize).saturating_add(size as usize) <= bytes.len()
}

/// Checks that each of `loaders` is in the image tree `root` and signed;
/// the error names the file and its package.
pub fn check_signed(root: &Path, loaders: &[Loader]) -> Result<(), String> {
    for l in loaders {
        let p = root.join(l.path.trim_start_matches('/'));
        let bytes = std::fs::read(&p).map_err(|e| {
            format!(
                "reading {} ({e}): the image needs the package {} for UEFI Secure Boot",
                p.display(),
                l.package
            )
        })?;
        if !has_signature(&bytes) {
            return Err(format!(
                "{} (from {}) carries no signature: Secure Boot firmware would refuse it",
                p.display(),
                l.package
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE32+ header with a certificate table of `cert` bytes.
    fn pe(cert: u32) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b[0x98..0x9a].copy_from_slice(&0x20bu16.to_le_bytes());
        let dir = 0x98 + 112 + 32;
        b[dir..dir + 4].copy_from_slice(&512u32.to_le_bytes());
        b[dir + 4..dir + 8].copy_from_slice(&cert.to_le_bytes());
        b
    }

    #[test]
    fn a_signature_is_a_certificate_table_inside_the_file() {
        assert!(has_signature(&pe(256)));
        assert!(!has_signature(&pe(0)), "no table");
        assert!(!has_signature(&pe(4096)), "a table past the end");
        assert!(!has_signature(b"MZ"));
        assert!(!has_signature(b"\x7fELF not a PE file at all"));
    }

    #[test]
    fn names_are_the_ones_shim_and_the_firmware_look_for() {
        assert_eq!(placed_name(&SHIM), "BOOTX64.EFI");
        assert!(REMOVABLE_PATH.ends_with(placed_name(&SHIM)));
        for set in [MEDIUM, NETWORK, INSTALLED] {
            assert_eq!(set[0], SHIM);
            assert_eq!(placed_name(&set[1]), "grubx64.efi");
            assert_eq!(placed_name(&set[2]), "mmx64.efi");
        }
    }

    #[test]
    fn a_missing_or_unsigned_loader_is_named() {
        let d = tempfile::tempdir().unwrap();
        let e = check_signed(d.path(), &[SHIM]).unwrap_err();
        assert!(e.contains("shim-signed"), "{e}");
        let p = d.path().join(SHIM.path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, pe(0)).unwrap();
        let e = check_signed(d.path(), &[SHIM]).unwrap_err();
        assert!(e.contains("carries no signature"), "{e}");
        std::fs::write(&p, pe(64)).unwrap();
        check_signed(d.path(), &[SHIM]).unwrap();
        // Debian's own binaries, when the build host has them.
        let real = Path::new("/");
        if real.join(SHIM.path.trim_start_matches('/')).is_file() {
            check_signed(real, &[SHIM]).unwrap();
        }
    }
}
