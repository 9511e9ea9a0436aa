//! The node's unique id, chosen once and persisted so it never changes.

use serde::Serialize;

use crate::fsutil::{read_optional, write_atomic};
use crate::{Result, Sysroot};

/// Where the id is persisted (the reference host agent's path).
pub const ID_PATH: &str = "/etc/vdsm/vdsm.id";
const DMI_UUID_PATH: &str = "/sys/class/dmi/id/product_uuid";
const DEVICE_TREE_ID_PATH: &str = "/proc/device-tree/system-id";

/// Placeholder DMI UUIDs that firmware ships instead of a real one; many machines
/// share them, so they cannot identify a host.
const BOGUS_UUIDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "03000200-0400-0500-0006-000700080009",
    "00020003-0004-0005-0006-000700080009",
];

/// Where the id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdSource {
    /// The persisted id file.
    IdFile,
    /// The DMI system UUID.
    Dmi,
    /// The device-tree system id.
    DeviceTree,
    /// Generated at random (no usable hardware id).
    Generated,
}

/// The node's unique id and its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UniqueId {
    /// The id, lower-case, as sent to the engine.
    pub id: String,
    /// Where it came from.
    pub source: IdSource,
}

/// Whether a DMI UUID is blank, malformed or a known placeholder.
pub fn is_bogus_uuid(text: &str) -> bool {
    let lower = text.trim().to_ascii_lowercase();
    match uuid::Uuid::parse_str(&lower) {
        Ok(parsed) => parsed.is_nil() || parsed.is_max() || BOGUS_UUIDS.contains(&lower.as_str()),
        Err(_) => true,
    }
}

/// The node's unique id: the first line of `SYSROOT/etc/vdsm/vdsm.id`; else the DMI
/// system UUID, lower-cased, unless blank or bogus; else the device-tree system id; else
/// a random UUID. Whatever is chosen is persisted to the id file, so it never changes.
pub fn unique_id(sysroot: &Sysroot) -> Result<UniqueId> {
    let id_file = sysroot.path(ID_PATH);
    if let Some(text) = read_optional(&id_file)? {
        let first = text.lines().next().unwrap_or_default().trim();
        if !first.is_empty() {
            return Ok(UniqueId {
                id: first.to_ascii_lowercase(),
                source: IdSource::IdFile,
            });
        }
    }
    let chosen = hardware_id(sysroot)?.unwrap_or_else(|| UniqueId {
        id: uuid::Uuid::new_v4().to_string(),
        source: IdSource::Generated,
    });
    write_atomic(&id_file, format!("{}\n", chosen.id).as_bytes(), 0o644, None)?;
    Ok(chosen)
}

fn hardware_id(sysroot: &Sysroot) -> Result<Option<UniqueId>> {
    if let Some(text) = read_optional(&sysroot.path(DMI_UUID_PATH))? {
        if !is_bogus_uuid(&text) {
            return Ok(Some(UniqueId {
                id: text.trim().to_ascii_lowercase(),
                source: IdSource::Dmi,
            }));
        }
    }
    if let Ok(bytes) = std::fs::read(sysroot.path(DEVICE_TREE_ID_PATH)) {
        let text = String::from_utf8_lossy(&bytes);
        let id = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        if !id.is_empty() {
            return Ok(Some(UniqueId {
                id: id.to_ascii_lowercase(),
                source: IdSource::DeviceTree,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn scratch() -> (tempfile::TempDir, Sysroot) {
        let dir = tempfile::tempdir().unwrap();
        let root = Sysroot::new(dir.path());
        (dir, root)
    }

    fn put(root: &Sysroot, path: &str, text: &str) {
        let p = root.path(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn bogus_uuids() {
        for (text, bogus) in [
            ("4C4C4544-0042-3510-8052-B4C04F4A4D32", false),
            ("4c4c4544-0042-3510-8052-b4c04f4a4d32\n", false),
            ("", true),
            ("   \n", true),
            ("00000000-0000-0000-0000-000000000000", true),
            ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", true),
            ("03000200-0400-0500-0006-000700080009", true),
            ("Not Settable", true),
        ] {
            assert_eq!(is_bogus_uuid(text), bogus, "{text:?}");
        }
    }

    #[test]
    fn id_file_wins_and_is_lower_cased() {
        let (_d, root) = scratch();
        put(&root, ID_PATH, "ABC-Def\nsecond line\n");
        put(
            &root,
            DMI_UUID_PATH,
            "4C4C4544-0042-3510-8052-B4C04F4A4D32\n",
        );
        let id = unique_id(&root).unwrap();
        assert_eq!(id.id, "abc-def");
        assert_eq!(id.source, IdSource::IdFile);
    }

    #[test]
    fn dmi_uuid_is_lower_cased_and_persisted() {
        let (_d, root) = scratch();
        put(
            &root,
            DMI_UUID_PATH,
            "4C4C4544-0042-3510-8052-B4C04F4A4D32\n",
        );
        let id = unique_id(&root).unwrap();
        assert_eq!(id.id, "4c4c4544-0042-3510-8052-b4c04f4a4d32");
        assert_eq!(id.source, IdSource::Dmi);
        let persisted = fs::read_to_string(root.path(ID_PATH)).unwrap();
        assert_eq!(persisted, "4c4c4544-0042-3510-8052-b4c04f4a4d32\n");
        // Even if the hardware id changes later, the persisted id stays.
        put(
            &root,
            DMI_UUID_PATH,
            "11111111-2222-3333-4444-555555555555\n",
        );
        assert_eq!(unique_id(&root).unwrap().id, id.id);
    }

    #[test]
    fn bogus_dmi_uuid_gives_a_generated_persisted_id() {
        let (_d, root) = scratch();
        put(
            &root,
            DMI_UUID_PATH,
            "00000000-0000-0000-0000-000000000000\n",
        );
        let first = unique_id(&root).unwrap();
        assert_eq!(first.source, IdSource::Generated);
        assert!(!is_bogus_uuid(&first.id));
        assert_eq!(first.id, first.id.to_lowercase());
        let again = unique_id(&root).unwrap();
        assert_eq!(again.id, first.id);
        assert_eq!(again.source, IdSource::IdFile);
    }

    #[test]
    fn device_tree_id_when_there_is_no_dmi() {
        let (_d, root) = scratch();
        put(&root, DEVICE_TREE_ID_PATH, "IBM,0278A5C0X\0");
        let id = unique_id(&root).unwrap();
        assert_eq!(id.id, "ibm,0278a5c0x");
        assert_eq!(id.source, IdSource::DeviceTree);
    }

    #[test]
    fn empty_id_file_falls_through() {
        let (_d, root) = scratch();
        put(&root, ID_PATH, "\n");
        assert_eq!(unique_id(&root).unwrap().source, IdSource::Generated);
    }
}
