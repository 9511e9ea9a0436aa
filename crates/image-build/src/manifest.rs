//! `manifest.json` (packages, artifacts, recipe hash, build epoch),
//! `SHA256SUMS`, and the update bundle.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use serde::Serialize;

use crate::cache::file_sha256;
use crate::rootfs::Root;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PackageEntry {
    pub name: String,
    pub version: String,
    pub architecture: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    /// Relative to the output directory.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub nvr: String,
    pub kernel: String,
    pub build_epoch: i64,
    pub recipe_sha256: String,
    pub packages: Vec<PackageEntry>,
    /// The signed UEFI loaders on the ISO, the USB image, the PXE tree and
    /// installed nodes' ESPs, with the kernel they start.
    pub boot_chain: Vec<SignedBinary>,
    pub artifacts: Vec<Artifact>,
}

/// One signed binary of the UEFI boot chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SignedBinary {
    /// Where it is in the image.
    pub path: String,
    pub package: String,
    /// The package's Debian version.
    pub version: String,
    pub signed_by: String,
    pub sha256: String,
    /// Where the outputs and the installer put it.
    pub placed_as: Vec<String>,
}

/// The boot chain of the image tree `root`: the loaders of
/// [`hostinfo::boot_chain`] and the kernel `kernel_version`, each with its
/// package's version from `packages`.
pub fn boot_chain(
    root: &Root,
    packages: &[PackageEntry],
    kernel_version: &str,
) -> Result<Vec<SignedBinary>> {
    use hostinfo::boot_chain as bc;
    let version = |package: &str| -> Result<String> {
        packages
            .iter()
            .find(|p| p.name == package)
            .map(|p| p.version.clone())
            .with_context(|| {
                format!("the image's package list has no {package} (needed for Secure Boot)")
            })
    };
    let efi_img = |name: &str| format!("ISO and USB: boot/grub/efi.img EFI/BOOT/{name}");
    let esp = |name: &str| format!("installed ESP: EFI/BOOT/{name}");
    let placements = [
        (
            bc::SHIM,
            vec![
                efi_img("BOOTX64.EFI"),
                "PXE: shimx64.efi".into(),
                esp("BOOTX64.EFI"),
            ],
        ),
        (bc::GRUB_CD, vec![efi_img(bc::SECOND_STAGE)]),
        (bc::GRUB_NET, vec![format!("PXE: {}", bc::SECOND_STAGE)]),
        (bc::GRUB_DISK, vec![esp(bc::SECOND_STAGE)]),
        (
            bc::MOK_MANAGER,
            vec![
                efi_img(bc::MOK_MANAGER_NAME),
                format!("PXE: {}", bc::MOK_MANAGER_NAME),
                esp(bc::MOK_MANAGER_NAME),
            ],
        ),
    ];
    let mut out = Vec::new();
    for (l, placed_as) in placements {
        out.push(SignedBinary {
            path: l.path.to_string(),
            package: l.package.to_string(),
            version: version(l.package)?,
            signed_by: l.signed_by.to_string(),
            sha256: file_sha256(&root.join(l.path))?,
            placed_as,
        });
    }
    // The kernel shim and grub start (Debian signs linux-image-*).
    let kernel = root.join(&format!("/boot/vmlinuz-{kernel_version}"));
    let kernel_package = format!("linux-image-{kernel_version}");
    out.push(SignedBinary {
        path: format!("/boot/vmlinuz-{kernel_version}"),
        version: version(&kernel_package)?,
        package: kernel_package,
        signed_by: "Debian Secure Boot Signer 2022 - linux".into(),
        sha256: file_sha256(&kernel)?,
        placed_as: vec![
            "ISO and USB: boot/vmlinuz".into(),
            "PXE: vmlinuz".into(),
            "installed /boot: LAYER/vmlinuz".into(),
        ],
    });
    Ok(out)
}

/// Parses `dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n'`.
pub fn parse_packages(text: &str) -> Vec<PackageEntry> {
    let mut v: Vec<PackageEntry> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some(PackageEntry {
                name: f.next()?.to_string(),
                version: f.next()?.to_string(),
                architecture: f.next()?.to_string(),
            })
        })
        .filter(|p| !p.name.is_empty())
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The packages installed in the image.
pub fn packages(root: &Root) -> Result<Vec<PackageEntry>> {
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("/var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Package}\\t${Version}\\t${Architecture}\\n"])
        .run_capture()
        .context("listing the image's packages")?;
    Ok(parse_packages(&out))
}

/// Size and sha256 of each file (relative to `out`).
pub fn artifacts(out: &Path, files: &[PathBuf]) -> Result<Vec<Artifact>> {
    files
        .iter()
        .map(|f| {
            let meta = fs::metadata(f).with_context(|| format!("reading {}", f.display()))?;
            Ok(Artifact {
                path: f.strip_prefix(out).unwrap_or(f).display().to_string(),
                size: meta.len(),
                sha256: file_sha256(f)?,
            })
        })
        .collect()
}

/// `SHA256SUMS` in the format `sha256sum -c` reads.
pub fn sha256sums(artifacts: &[Artifact]) -> String {
    artifacts
        .iter()
        .map(|a| format!("{}  {}\n", a.sha256, a.path))
        .collect()
}

/// The bundle's `metadata.json`.
pub use bundle::Metadata as BundleMetadata;

/// `NVR.update.tar` (the `hvnode-bundle` format: manifest, metadata,
/// squashfs; the same inputs give the same bytes), and `.minisig` beside it
/// when `HVNODE_SIGN_KEY` names a minisign secret key
/// (`HVNODE_SIGN_KEY_PASSWORD` holds an encrypted key's password).
pub fn update_bundle(
    out: &Path,
    squashfs: &Path,
    meta: &BundleMetadata,
    epoch: i64,
    key: Option<&bundle::SignKey>,
) -> Result<()> {
    bundle::write_bundle(out, squashfs, meta, epoch, key)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_parse_and_sort() {
        let p = parse_packages("zlib1g\t1:1.2.13\tamd64\nbash\t5.2.15-2\tamd64\n\n");
        assert_eq!(p[0].name, "bash");
        assert_eq!(p[1].version, "1:1.2.13");
    }

    #[test]
    fn sums_are_what_sha256sum_reads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.img");
        fs::write(&f, "hello\n").unwrap();
        let a = artifacts(dir.path(), &[f]).unwrap();
        let sums = sha256sums(&a);
        assert_eq!(
            sums,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  a.img\n"
        );
        fsutil::write_atomic(
            &dir.path().join("SHA256SUMS"),
            sums.as_bytes(),
            fsutil::Options::default(),
        )
        .unwrap();
        let ok = Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(dir.path())
            .run();
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn bundle_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let sq = dir.path().join("x.squashfs.img");
        fs::write(&sq, vec![7u8; 4096]).unwrap();
        let meta = BundleMetadata {
            nvr: "hvnode-1.0-1".into(),
            kernel: "6.1".into(),
            build_epoch: 1,
            squashfs: "hvnode-1.0-1.squashfs.img".into(),
            squashfs_size: 4096,
            squashfs_sha256: file_sha256(&sq).unwrap(),
        };
        let a = dir.path().join("a.tar");
        let b = dir.path().join("b.tar");
        update_bundle(&a, &sq, &meta, 1_700_000_000, None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        update_bundle(&b, &sq, &meta, 1_700_000_000, None).unwrap();
        assert_eq!(file_sha256(&a).unwrap(), file_sha256(&b).unwrap());
        let list = Command::new("tar")
            .arg("-tvf")
            .arg(&a)
            .run_capture()
            .unwrap();
        assert!(
            list.contains("manifest.json")
                && list.contains("metadata.json")
                && list.contains("hvnode-1.0-1.squashfs.img"),
            "{list}"
        );
    }
}
