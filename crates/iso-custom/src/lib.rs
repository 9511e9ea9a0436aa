//! The customisation areas of an hvnode ISO.
//!
//! The image builder reserves two fixed-size files in the ISO 9660 tree;
//! `hvnode iso customize` rewrites their bytes in place (same size, same
//! place on the medium), so the boot loaders, the El Torito images, the
//! MBR and the GPT are never touched:
//!
//! | area | file on the medium | size | read by |
//! |---|---|---|---|
//! | grub | `boot/grub/custom.cfg` | 4 KiB | the ISO's `grub.cfg` (`source`) |
//! | installer | `ks/custom.area` | 128 KiB | `hvnode-install` ([`read_medium`]) |
//!
//! Each area is text: a header line
//! `#hvnode-iso-area 1 KIND SIZE LENGTH` (SIZE the area's bytes, LENGTH the
//! payload's, ten digits each), a comment line, the payload, then lines of
//! `#` up to SIZE. Every line starts with `#` except the payload's, so the
//! grub area is a grub script whatever it holds. A pristine area (as built)
//! has an empty payload: the bytes depend on nothing but the kind, and
//! `hvnode iso reset` writes them back.
//!
//! The installer area's payload is a [`Customization`] as JSON.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The first word of every area.
pub const MAGIC: &str = "#hvnode-iso-area";
/// The area format this crate writes and reads.
pub const FORMAT: u32 = 1;
/// `apiVersion` of the [`Customization`] JSON.
pub const API_VERSION: &str = "hvnode.io/v1";
/// `kind` of the [`Customization`] JSON.
pub const KIND: &str = "IsoCustomization";
/// The second line of every area.
const NOTE: &str =
    "# hvnode iso customize writes this file in place; hvnode iso show reads it. Fixed size.\n";
/// Length of a padding line, its newline included.
const PAD_LINE: usize = 64;

/// The two areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaKind {
    /// grub's script: default entry, timeout, kernel arguments.
    Grub,
    /// The installer's: kickstart, trusted keys, engine.
    Installer,
}

impl AreaKind {
    pub const ALL: [AreaKind; 2] = [AreaKind::Grub, AreaKind::Installer];

    /// The area's path in the ISO 9660 tree (and under the mounted medium).
    pub fn path(self) -> &'static str {
        match self {
            AreaKind::Grub => "boot/grub/custom.cfg",
            AreaKind::Installer => "ks/custom.area",
        }
    }

    /// The area's size in bytes (a multiple of the ISO's 2048-byte blocks).
    pub fn size(self) -> usize {
        match self {
            AreaKind::Grub => 4 << 10,
            AreaKind::Installer => 128 << 10,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AreaKind::Grub => "grub",
            AreaKind::Installer => "installer",
        }
    }
}

impl fmt::Display for AreaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} area {}", self.name(), self.path())
    }
}

/// What is wrong with an area's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AreaError {
    /// The payload does not fit.
    #[error(
        "{kind} holds {capacity} bytes ({size} bytes less its header), and this customisation needs {needed}"
    )]
    TooLarge {
        kind: AreaKind,
        size: usize,
        capacity: usize,
        needed: usize,
    },
    /// The bytes are not an area of this kind and format.
    #[error("{kind} is not an hvnode customisation area: {reason}")]
    Invalid { kind: AreaKind, reason: String },
}

fn header(kind: AreaKind, len: usize) -> String {
    format!(
        "{MAGIC} {FORMAT} {} {:010} {len:010}\n{NOTE}",
        kind.name(),
        kind.size()
    )
}

/// The bytes of an area of `kind` holding `payload`: exactly
/// [`AreaKind::size`] of them.
pub fn encode(kind: AreaKind, payload: &[u8]) -> Result<Vec<u8>, AreaError> {
    let size = kind.size();
    let mut out = header(kind, payload.len()).into_bytes();
    // The payload, then at least one newline so that padding starts a line.
    let capacity = size - out.len() - 1;
    if payload.len() > capacity {
        return Err(AreaError::TooLarge {
            kind,
            size,
            capacity,
            needed: payload.len(),
        });
    }
    out.extend_from_slice(payload);
    if !payload.is_empty() && !payload.ends_with(b"\n") {
        out.push(b'\n');
    }
    while out.len() < size {
        let line = (size - out.len()).min(PAD_LINE);
        out.extend(std::iter::repeat_n(b'#', line - 1));
        out.push(b'\n');
    }
    Ok(out)
}

/// The area as the builder writes it: no payload.
pub fn pristine(kind: AreaKind) -> Vec<u8> {
    // An empty payload always fits: the header is under 200 bytes.
    encode(kind, b"").unwrap_or_default()
}

/// The payload of an area of `kind`; checks the magic, the format, the
/// kind, the size (`bytes` must be the whole area) and the length.
pub fn decode(kind: AreaKind, bytes: &[u8]) -> Result<&[u8], AreaError> {
    let bad = |reason: String| AreaError::Invalid { kind, reason };
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .filter(|n| *n < 200)
        .ok_or_else(|| bad("no header line".into()))?;
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| bad("no header line".into()))?;
    let words: Vec<&str> = line.split(' ').collect();
    let [magic, format, name, size, len] = words.as_slice() else {
        return Err(bad(format!("the header {line:?} has not five words")));
    };
    if *magic != MAGIC {
        return Err(bad(format!("it does not start with {MAGIC}")));
    }
    if *format != FORMAT.to_string() {
        return Err(bad(format!(
            "format {format}, while this hvnode reads format {FORMAT}; use the hvnode that matches the ISO"
        )));
    }
    if *name != kind.name() {
        return Err(bad(format!("it is the {name} area")));
    }
    let size: usize = size
        .parse()
        .map_err(|_| bad(format!("size {size:?} is not a number")))?;
    if size != kind.size() || size != bytes.len() {
        return Err(bad(format!(
            "it says {size} bytes, the file has {}, and the {} area has {}",
            bytes.len(),
            kind.name(),
            kind.size()
        )));
    }
    let len: usize = len
        .parse()
        .map_err(|_| bad(format!("length {len:?} is not a number")))?;
    let start = header(kind, len).len();
    if start + len > size {
        return Err(bad(format!("length {len} runs past its end")));
    }
    Ok(&bytes[start..start + len])
}

/// An entry of the ISO's boot menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MenuEntry {
    Install,
    Live,
}

impl MenuEntry {
    /// The entry's `--id` in the ISO's grub.cfg.
    pub fn id(self) -> &'static str {
        match self {
            MenuEntry::Install => "install",
            MenuEntry::Live => "live",
        }
    }
}

impl fmt::Display for MenuEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A kickstart embedded in the ISO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedKickstart {
    /// The file name it was embedded from (diagnostics name it).
    pub name: String,
    pub text: String,
}

/// A minisign public key the installed node trusts for update bundles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustKey {
    /// The key id, as `minisign` prints it.
    pub key_id: String,
    /// The `.pub` file's text.
    pub text: String,
}

impl TrustKey {
    /// The key's file name in the node's `/etc/hvnode/trusted.d`.
    pub fn file_name(&self) -> String {
        format!("iso-{}.pub", self.key_id)
    }
}

/// The engine a node registers with at first boot (zero-touch), as
/// `%addon org_hvnode_register --engine=HOST:PORT --fingerprint=FP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engine {
    pub host: String,
    pub port: u16,
    pub fingerprint: Option<String>,
}

impl Engine {
    /// `HOST:PORT`, with an IPv6 address in brackets.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Everything `hvnode iso customize` embeds, as the installer area holds
/// it (JSON). A field left out is the build's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customization {
    pub api_version: String,
    pub kind: String,
    /// The kickstart the installer uses (after `inst.ks=`, before OEMDRV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kickstart: Option<EmbeddedKickstart>,
    /// Every menu entry's kernel arguments, when changed (the build's are
    /// in the ISO's grub.cfg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kargs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_entry: Option<MenuEntry>,
    /// grub's menu timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_keys: Vec<TrustKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
}

impl Default for Customization {
    fn default() -> Self {
        Customization {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            kickstart: None,
            kargs: None,
            default_entry: None,
            timeout: None,
            trust_keys: Vec::new(),
            engine: None,
        }
    }
}

impl Customization {
    /// Whether it changes nothing (the ISO as built).
    pub fn is_empty(&self) -> bool {
        *self == Customization::default()
    }

    /// The installer area's payload: empty for no customisation.
    pub fn to_payload(&self) -> Vec<u8> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Reads the installer area's payload (empty: no customisation).
    pub fn from_payload(payload: &[u8]) -> Result<Customization, AreaError> {
        if payload.is_empty() {
            return Ok(Customization::default());
        }
        let c: Customization = serde_json::from_slice(payload).map_err(|e| AreaError::Invalid {
            kind: AreaKind::Installer,
            reason: format!("its JSON does not read: {e}"),
        })?;
        if c.api_version != API_VERSION || c.kind != KIND {
            return Err(AreaError::Invalid {
                kind: AreaKind::Installer,
                reason: format!(
                    "it holds {} {}, not {API_VERSION} {KIND}",
                    c.api_version, c.kind
                ),
            });
        }
        Ok(c)
    }
}

/// Why the customisation on a medium could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MediumError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}; write the ISO again (hvnode iso customize) or boot with inst.ks=")]
    Area { path: String, source: AreaError },
}

/// The customisation of the boot medium mounted at `medium`: `None` when
/// it has no installer area (an ISO built before areas existed, a PXE
/// boot) or a pristine one.
pub fn read_medium(medium: &Path) -> Result<Option<Customization>, MediumError> {
    let path = medium.join(AreaKind::Installer.path());
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MediumError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    let area = |source| MediumError::Area {
        path: path.display().to_string(),
        source,
    };
    let payload = decode(AreaKind::Installer, &bytes).map_err(area)?;
    let c = Customization::from_payload(payload).map_err(area)?;
    Ok((!c.is_empty()).then_some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pristine_areas_are_whole_comment_lines() {
        for kind in AreaKind::ALL {
            let a = pristine(kind);
            assert_eq!(a.len(), kind.size());
            assert_eq!(kind.size() % 2048, 0);
            assert!(a.ends_with(b"\n"));
            let text = std::str::from_utf8(&a).unwrap();
            assert!(text.lines().all(|l| l.starts_with('#')), "{kind}");
            assert!(text.lines().all(|l| l.len() < 100), "{kind}");
            assert_eq!(decode(kind, &a).unwrap(), b"");
        }
    }

    #[test]
    fn payloads_round_trip_and_too_large_is_refused() {
        let a = encode(AreaKind::Grub, b"set timeout=3\n").unwrap();
        assert_eq!(a.len(), 4096);
        assert_eq!(decode(AreaKind::Grub, &a).unwrap(), b"set timeout=3\n");
        // Without a final newline, one is added after the payload.
        let a = encode(AreaKind::Grub, b"set timeout=3").unwrap();
        assert_eq!(decode(AreaKind::Grub, &a).unwrap(), b"set timeout=3");
        assert!(std::str::from_utf8(&a).unwrap().contains("timeout=3\n#"));
        let e = encode(AreaKind::Grub, &[b'x'; 5000]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("boot/grub/custom.cfg") && msg.contains("4096 bytes"),
            "{msg}"
        );
        assert!(msg.contains("needs 5000"), "{msg}");
    }

    #[test]
    fn a_wrong_area_is_refused() {
        let a = pristine(AreaKind::Grub);
        let e = decode(AreaKind::Installer, &a).unwrap_err().to_string();
        assert!(e.contains("is the grub area"), "{e}");
        let e = decode(AreaKind::Grub, &a[..2048]).unwrap_err().to_string();
        assert!(e.contains("the file has 2048"), "{e}");
        let e = decode(AreaKind::Grub, &[0u8; 4096])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no header"), "{e}");
    }

    #[test]
    fn a_medium_with_a_customisation_is_read() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read_medium(d.path()).unwrap(), None);
        let path = d.path().join(AreaKind::Installer.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, pristine(AreaKind::Installer)).unwrap();
        assert_eq!(read_medium(d.path()).unwrap(), None);
        let c = Customization {
            kickstart: Some(EmbeddedKickstart {
                name: "site.ks".into(),
                text: "text\n".into(),
            }),
            engine: Some(Engine {
                host: "engine.example.com".into(),
                port: 443,
                fingerprint: None,
            }),
            ..Customization::default()
        };
        std::fs::write(&path, encode(AreaKind::Installer, &c.to_payload()).unwrap()).unwrap();
        assert_eq!(read_medium(d.path()).unwrap(), Some(c));
        std::fs::write(&path, encode(AreaKind::Installer, b"{").unwrap()).unwrap();
        let e = read_medium(d.path()).unwrap_err().to_string();
        assert!(e.contains("JSON") && e.contains("inst.ks="), "{e}");
    }
}
