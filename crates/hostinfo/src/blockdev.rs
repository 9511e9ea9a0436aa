//! Block devices as `lsblk --json` lists them: the one model of a block
//! device in the workspace, read by the console's storage page and by the
//! installer's disk selection alike.
//!
//! lsblk runs with [`LSBLK_ARGS`]; [`parse_lsblk`] also reads what older or
//! differently asked lsblk prints (`mountpoint` instead of `mountpoints`,
//! sizes and flags as strings, columns left out), but never guesses a value:
//! a size that is not a number of bytes is an error naming the device.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::units::human_bytes;
use command::{CommandError, CommandExt};

/// The columns [`parse_lsblk`] reads, one field of [`BlockDevice`] each.
pub const LSBLK_COLUMNS: &str = "NAME,PATH,TYPE,SIZE,RO,RM,MODEL,TRAN,FSTYPE,LABEL,MOUNTPOINTS";

/// The arguments of the one `lsblk` the workspace runs: JSON, sizes in
/// bytes, children nested under their parent, [`LSBLK_COLUMNS`].
pub const LSBLK_ARGS: &[&str] = &["--json", "--bytes", "--tree", "--output", LSBLK_COLUMNS];

/// One block device and its children, as lsblk reports them.
///
/// It deserializes from lsblk's JSON (as [`parse_lsblk`] reads it) and
/// serializes as the console API's `blockDevice`
/// (`docs/schemas/api-v1-storage.json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawDevice")]
pub struct BlockDevice {
    /// The kernel's name: `sda`, `vdb1`, `hvnode-var_log`.
    pub name: String,
    /// The device node: `/dev/sda`, `/dev/mapper/hvnode-var_log`.
    pub path: PathBuf,
    /// lsblk's TYPE: `disk`, `part`, `lvm`, `rom`, `loop`, …
    pub kind: String,
    /// Bytes.
    pub size: u64,
    /// Read-only.
    pub ro: bool,
    /// Removable.
    pub rm: bool,
    /// The disk's model, blanks trimmed; `None` when lsblk knows none.
    pub model: Option<String>,
    /// The transport: `sata`, `nvme`, `usb`, … (`None` for virtio disks).
    pub tran: Option<String>,
    /// The signature found on it: `ext4`, `LVM2_member`, `iso9660`, …
    pub fstype: Option<String>,
    /// The file system's label.
    pub label: Option<String>,
    /// Where this device itself is mounted (`[SWAP]` for swap), in lsblk's order.
    pub mountpoints: Vec<String>,
    /// Partitions, logical volumes, … on this device.
    pub children: Vec<BlockDevice>,
}

impl BlockDevice {
    /// This device and everything under it, each parent before its children.
    pub fn walk(&self) -> Vec<&BlockDevice> {
        let mut v = vec![self];
        for c in &self.children {
            v.extend(c.walk());
        }
        v
    }

    /// Mount points in use on this device or under it (swap counts).
    pub fn mounts(&self) -> Vec<&str> {
        self.walk()
            .into_iter()
            .flat_map(|d| d.mountpoints.iter().map(String::as_str))
            .collect()
    }

    /// For a person: `vda (64.0 GiB)`, `sda (1.8 TiB, Samsung SSD 870, sata)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} ({}", self.name, human_bytes(self.size as f64));
        if let Some(m) = self.model.as_deref().filter(|m| !m.trim().is_empty()) {
            s.push_str(&format!(", {}", m.trim()));
        }
        if let Some(t) = self.tran.as_deref() {
            s.push_str(&format!(", {t}"));
        }
        s.push(')');
        s
    }
}

/// lsblk's output that cannot be read. Nothing is guessed in its place.
#[derive(Debug, thiserror::Error)]
pub enum LsblkError {
    #[error(
        "reading lsblk's device list: {0} (see what `lsblk --json --bytes --output {cols}` prints on this host)",
        cols = LSBLK_COLUMNS
    )]
    Json(#[from] serde_json::Error),
    #[error(
        "lsblk reports no {column} for {device}, which is needed to judge the device (lsblk of util-linux 2.37 or later prints it with `--output {cols}`)",
        cols = LSBLK_COLUMNS
    )]
    Missing {
        device: String,
        column: &'static str,
    },
    #[error(
        "lsblk reports {column} {value} for {device}, which is not {expected} (see what `lsblk --json --bytes --output {cols}` prints for it)",
        cols = LSBLK_COLUMNS
    )]
    Malformed {
        device: String,
        column: &'static str,
        /// The value as lsblk printed it (JSON).
        value: String,
        expected: &'static str,
    },
}

/// Parses the output of `lsblk` run with [`LSBLK_ARGS`] (or older lsblk's
/// equivalent): the top-level devices, their children nested.
pub fn parse_lsblk(json: &str) -> Result<Vec<BlockDevice>, LsblkError> {
    #[derive(Deserialize)]
    struct Lsblk {
        blockdevices: Vec<RawDevice>,
    }
    let raw: Lsblk = serde_json::from_str(json)?;
    raw.blockdevices
        .into_iter()
        .map(BlockDevice::try_from)
        .collect()
}

/// Lists the host's block devices with `lsblk` ([`LSBLK_ARGS`]).
pub fn block_devices() -> Result<Vec<BlockDevice>, CommandError> {
    let mut cmd = crate::tool("lsblk");
    cmd.args(LSBLK_ARGS);
    let out = cmd.run_capture()?;
    parse_lsblk(&out)
        .map_err(|e| CommandError::new(&cmd, format!("printed a device list we cannot use: {e}")))
}

/// A device as lsblk prints it, before its values are checked.
#[derive(Deserialize)]
struct RawDevice {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "present")]
    size: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    ro: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    rm: Option<Value>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    tran: Option<String>,
    #[serde(default)]
    fstype: Option<String>,
    #[serde(default)]
    label: Option<String>,
    /// Newer lsblk (util-linux 2.37): a list with a null for "not mounted".
    #[serde(default)]
    mountpoints: Option<Vec<Option<String>>>,
    /// Older lsblk: one mount point or null.
    #[serde(default)]
    mountpoint: Option<String>,
    #[serde(default)]
    children: Vec<RawDevice>,
}

/// A field that is there, `null` included (`Some(Value::Null)`); a missing
/// one is `None` through `#[serde(default)]`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl TryFrom<RawDevice> for BlockDevice {
    type Error = LsblkError;

    fn try_from(raw: RawDevice) -> Result<Self, LsblkError> {
        let name = raw.name;
        let missing = |column| LsblkError::Missing {
            device: name.clone(),
            column,
        };
        let path = raw
            .path
            .filter(|p| !p.is_empty())
            .ok_or_else(|| missing("path"))?;
        let kind = raw
            .kind
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing("type"))?;
        let size = match raw.size {
            None | Some(Value::Null) => return Err(missing("size")),
            Some(v) => {
                bytes(&v).ok_or_else(|| malformed(&name, "size", &v, "a number of bytes"))?
            }
        };
        let ro = flag(&name, "ro", raw.ro)?;
        let rm = flag(&name, "rm", raw.rm)?;
        let mut mountpoints: Vec<String> = Vec::new();
        for m in raw
            .mountpoints
            .into_iter()
            .flatten()
            .chain([raw.mountpoint])
            .flatten()
        {
            if !m.is_empty() && !mountpoints.contains(&m) {
                mountpoints.push(m);
            }
        }
        let children = raw
            .children
            .into_iter()
            .map(BlockDevice::try_from)
            .collect::<Result<_, _>>()?;
        Ok(BlockDevice {
            path: PathBuf::from(path),
            kind,
            size,
            ro,
            rm,
            model: raw
                .model
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty()),
            tran: raw.tran,
            fstype: raw.fstype,
            label: raw.label,
            mountpoints,
            children,
            name,
        })
    }
}

/// A size: a JSON integer, or a string of one (older lsblk).
fn bytes(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// RO, RM: `true`/`false`, or `"1"`/`"0"` (older lsblk); not asked for is false.
fn flag(device: &str, column: &'static str, v: Option<Value>) -> Result<bool, LsblkError> {
    let Some(v) = v else {
        return Ok(false);
    };
    match &v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| malformed(device, column, &v, "true, false, 1 or 0"))
}

fn malformed(device: &str, column: &'static str, v: &Value, expected: &'static str) -> LsblkError {
    LsblkError::Malformed {
        device: device.to_string(),
        column,
        value: v.to_string(),
        expected,
    }
}

/// The console API's `blockDevice` (`docs/schemas/api-v1-storage.json`):
/// the fields it has always had. `mountpoint` (older lsblk's) is always
/// null: every mount point is in `mountpoints`.
impl Serialize for BlockDevice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct ApiBlockDevice<'a> {
            name: &'a str,
            path: &'a Path,
            size: u64,
            #[serde(rename = "type")]
            kind: &'a str,
            fstype: Option<&'a str>,
            mountpoints: &'a [String],
            mountpoint: Option<&'a str>,
            model: Option<&'a str>,
            children: &'a [BlockDevice],
        }
        ApiBlockDevice {
            name: &self.name,
            path: &self.path,
            size: self.size,
            kind: &self.kind,
            fstype: self.fstype.as_deref(),
            mountpoints: &self.mountpoints,
            mountpoint: None,
            model: self.model.as_deref(),
            children: &self.children,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each device of a tree, parents first: name, type, size, own mount points.
    fn rows(devs: &[BlockDevice]) -> Vec<(&str, &str, u64, Vec<&str>)> {
        devs.iter()
            .flat_map(BlockDevice::walk)
            .map(|d| {
                let mounts = d.mountpoints.iter().map(String::as_str).collect();
                (d.name.as_str(), d.kind.as_str(), d.size, mounts)
            })
            .collect()
    }

    #[test]
    fn captured_lsblk_outputs() {
        type Row = (&'static str, &'static str, u64, &'static [&'static str]);
        let cases: [(&str, &str, &[Row]); 3] = [
            (
                "this kind of build host: a VM with an unused zram device",
                include_str!("../tests/fixtures/lsblk-vm.json"),
                &[
                    ("zram0", "disk", 0, &[]),
                    ("vda", "disk", 274_877_906_944, &["/"]),
                ],
            ),
            (
                "an installed node: LVM under a partition, the older column set",
                include_str!("../tests/fixtures/lsblk-node.json"),
                &[
                    ("sda", "disk", 68_719_476_736, &[]),
                    ("sda1", "part", 1_048_576, &[]),
                    ("sda2", "part", 1_073_741_824, &["/boot"]),
                    ("sda3", "part", 67_644_686_336, &[]),
                    (
                        "hvnode-hvnode--1.0--0.20261125.0+1",
                        "lvm",
                        10_737_418_240,
                        &["/"],
                    ),
                    ("hvnode-var_log", "lvm", 8_589_934_592, &["/var/log"]),
                    ("sr0", "rom", 1_073_741_312, &[]),
                ],
            ),
            (
                "the installer's live VM: the boot DVD, a free and a mounted disk",
                include_str!("../../installer/tests/fixtures/lsblk-live-vm.json"),
                &[
                    ("sr0", "rom", 395_313_152, &["/run/initramfs/live"]),
                    ("vda", "disk", 68_719_476_736, &[]),
                    ("vdb", "disk", 21_474_836_480, &[]),
                    ("vdb1", "part", 21_473_787_904, &["/mnt/data"]),
                ],
            ),
        ];
        for (what, json, want) in cases {
            let devs = parse_lsblk(json).unwrap_or_else(|e| panic!("{what}: {e}"));
            let want: Vec<_> = want
                .iter()
                .map(|&(n, k, s, m)| (n, k, s, m.to_vec()))
                .collect();
            assert_eq!(rows(&devs), want, "{what}");
            for d in devs.iter().flat_map(BlockDevice::walk) {
                assert!(d.path.starts_with("/dev/"), "{what}: {d:?}");
            }
        }
    }

    #[test]
    fn every_column_of_the_live_vm() {
        let devs = parse_lsblk(include_str!(
            "../../installer/tests/fixtures/lsblk-live-vm.json"
        ))
        .unwrap();
        let sr0 = &devs[0];
        assert_eq!(sr0.path, Path::new("/dev/sr0"));
        assert!(sr0.ro && sr0.rm);
        assert_eq!(sr0.model.as_deref(), Some("QEMU DVD-ROM"));
        assert_eq!(sr0.tran.as_deref(), Some("sata"));
        assert_eq!(sr0.fstype.as_deref(), Some("iso9660"));
        assert_eq!(sr0.label.as_deref(), Some("HVNODE"));
        assert_eq!(sr0.describe(), "sr0 (377.0 MiB, QEMU DVD-ROM, sata)");
        let vdb = &devs[2];
        assert!(!vdb.ro && !vdb.rm && vdb.model.is_none() && vdb.tran.is_none());
        assert!(vdb.mountpoints.is_empty(), "its own [null]");
        assert_eq!(vdb.mounts(), ["/mnt/data"], "its partition's");
        assert_eq!(vdb.children[0].label.as_deref(), Some("data"));
        assert_eq!(vdb.describe(), "vdb (20.0 GiB)");
        let names: Vec<_> = vdb.walk().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["vdb", "vdb1"]);
    }

    /// One device `sdb` with `fields` added to its name, path and type.
    fn sdb(fields: &str) -> String {
        format!(r#"{{"blockdevices":[{{"name":"sdb","path":"/dev/sdb","type":"disk"{fields}}}]}}"#)
    }

    #[test]
    fn older_and_looser_lsblk_output() {
        let cases = [
            (r#","size":1024"#, 1024, false, &[][..]),
            (r#","size":"1024""#, 1024, false, &[]),
            (r#","size":" 2048 ","ro":"1","rm":"0""#, 2048, true, &[]),
            (r#","size":1,"ro":1"#, 1, true, &[]),
            (r#","size":1,"ro":false"#, 1, false, &[]),
            (r#","size":1,"mountpoint":"/data""#, 1, false, &["/data"]),
            (r#","size":1,"mountpoint":null"#, 1, false, &[]),
            (r#","size":1,"mountpoints":[null]"#, 1, false, &[]),
            (
                r#","size":1,"mountpoints":["/a",null,"/b"],"mountpoint":"/a""#,
                1,
                false,
                &["/a", "/b"],
            ),
        ];
        for (fields, size, ro, mounts) in cases {
            let json = sdb(fields);
            let devs = parse_lsblk(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            let d = &devs[0];
            assert_eq!(
                (d.size, d.ro, d.mounts()),
                (size, ro, mounts.to_vec()),
                "{json}"
            );
        }
        let padded = parse_lsblk(&sdb(r#","size":1,"model":"QEMU HARDDISK   ""#)).unwrap();
        assert_eq!(padded[0].model.as_deref(), Some("QEMU HARDDISK"));
        let blank = parse_lsblk(&sdb(r#","size":1,"model":"  ""#)).unwrap();
        assert_eq!(blank[0].model, None);
    }

    #[test]
    fn a_value_that_cannot_be_read_is_an_error_naming_the_device() {
        for (fields, column) in [
            (r#","size":"64G""#, "size"),
            (r#","size":"""#, "size"),
            (r#","size":-1"#, "size"),
            (r#","size":1.5"#, "size"),
            (r#","size":true"#, "size"),
            (r#","size":1,"ro":"yes""#, "ro"),
            (r#","size":1,"ro":null"#, "ro"),
            (r#","size":1,"rm":2"#, "rm"),
        ] {
            let json = sdb(fields);
            let e = parse_lsblk(&json).unwrap_err();
            let LsblkError::Malformed {
                device, column: c, ..
            } = &e
            else {
                panic!("{json}: {e:?}")
            };
            assert_eq!((device.as_str(), *c), ("sdb", column), "{json}");
            assert!(e.to_string().contains("for sdb, which is not"), "{e}");
        }
        for (json, column) in [
            (sdb(""), "size"),
            (sdb(r#","size":null"#), "size"),
            (
                r#"{"blockdevices":[{"name":"sdb","type":"disk","size":1}]}"#.to_string(),
                "path",
            ),
            (
                r#"{"blockdevices":[{"name":"sdb","path":"/dev/sdb","size":1}]}"#.to_string(),
                "type",
            ),
        ] {
            match parse_lsblk(&json) {
                Err(LsblkError::Missing { device, column: c }) => {
                    assert_eq!((device.as_str(), c), ("sdb", column), "{json}")
                }
                other => panic!("{json}: {other:?}"),
            }
        }
        let child = sdb(
            r#","size":2,"children":[{"name":"sdb1","path":"/dev/sdb1","type":"part","size":"big"}]"#,
        );
        let e = parse_lsblk(&child).unwrap_err();
        assert!(
            e.to_string().starts_with(
                r#"lsblk reports size "big" for sdb1, which is not a number of bytes"#
            ),
            "{e}"
        );
        for json in ["{}", "[]", "lsblk: unknown column: MOUNTPOINTS"] {
            assert!(
                matches!(parse_lsblk(json), Err(LsblkError::Json(_))),
                "{json}"
            );
        }
    }

    #[test]
    fn deserializes_as_parse_lsblk_reads() {
        let d: BlockDevice = serde_json::from_value(serde_json::json!({
            "name": "vdc", "path": "/dev/vdc", "type": "disk", "size": 1 << 30,
        }))
        .unwrap();
        assert_eq!((d.size, d.ro, d.mountpoints.len()), (1 << 30, false, 0));
        let e = serde_json::from_value::<BlockDevice>(serde_json::json!({
            "name": "vdc", "path": "/dev/vdc", "type": "disk", "size": "1 GiB",
        }))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("for vdc, which is not a number of bytes"),
            "{e}"
        );
    }

    #[test]
    fn serializes_as_the_console_api_schema_says() {
        let schema: Value =
            serde_json::from_str(include_str!("../../../docs/schemas/api-v1-storage.json"))
                .unwrap();
        let def = &schema["$defs"]["blockDevice"];
        let mut keys: Vec<&str> = def["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut required: Vec<&str> = def["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        required.sort_unstable();
        assert_eq!(keys, required, "every field of the API is always there");
        let devs = parse_lsblk(include_str!(
            "../../installer/tests/fixtures/lsblk-live-vm.json"
        ))
        .unwrap();
        let json = serde_json::to_value(&devs).unwrap();
        let vdb1 = &json[2]["children"][0];
        let mut got: Vec<&str> = vdb1
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        got.sort_unstable();
        assert_eq!(got, keys);
        assert_eq!(vdb1["path"], "/dev/vdb1");
        assert_eq!(vdb1["type"], "part");
        assert_eq!(vdb1["size"], 21_473_787_904u64);
        assert_eq!(vdb1["mountpoints"], serde_json::json!(["/mnt/data"]));
        assert_eq!(vdb1["mountpoint"], Value::Null);
        assert_eq!(json[0]["model"], "QEMU DVD-ROM");
        let back: Vec<BlockDevice> = serde_json::from_value(json).unwrap();
        assert_eq!(rows(&back), rows(&devs), "what the API shows reads back");
    }
}
