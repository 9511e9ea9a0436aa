//! How the node booted: UEFI or BIOS, UEFI Secure Boot and Setup Mode, and
//! the kernel's lockdown (which Debian's signed kernel turns on under Secure
//! Boot).
//!
//! Read from sysfs: `/sys/firmware/efi` exists only after a UEFI boot; the
//! firmware's global variables are files of efivarfs
//! (`/sys/firmware/efi/efivars/NAME-GUID`: 4 bytes of attributes, then the
//! value); `/sys/kernel/security/lockdown` lists the modes with the active
//! one in brackets. What cannot be read is `None`, never an error: an
//! unmounted efivarfs or securityfs, or a process not allowed to read them,
//! leaves the rest of the facts standing.

use std::fmt;
use std::path::Path;

use serde::Serialize;

/// The GUID of the UEFI specification's global variables (`SecureBoot`,
/// `SetupMode`, `PK`…), `EFI_GLOBAL_VARIABLE`.
pub const EFI_GLOBAL_VARIABLE: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// The firmware that started the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Uefi,
    Bios,
}

/// The node's firmware and the kernel's lockdown, as `nodectl info` and the
/// console's Node page show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firmware {
    /// `uefi` or `bios`.
    pub kind: Kind,
    /// UEFI's `SecureBoot` variable: whether the firmware checked the
    /// signature of what it started. `None` on BIOS, or when the variable
    /// cannot be read.
    pub secure_boot: Option<bool>,
    /// UEFI's `SetupMode` variable: no platform key is enrolled, so the
    /// firmware enforces nothing and accepts any new key. `None` as for
    /// `secure_boot`.
    pub setup_mode: Option<bool>,
    /// The kernel's active lockdown mode (`none`, `integrity`,
    /// `confidentiality`); `None` when the kernel has no lockdown or
    /// securityfs cannot be read.
    pub lockdown: Option<String>,
}

/// The value of a boolean UEFI variable as efivarfs gives it: 4 bytes of
/// attributes, then one byte, 1 for on and 0 for off. `None` for a short
/// file or another value.
pub fn parse_efivar_bool(bytes: &[u8]) -> Option<bool> {
    match bytes.get(4)? {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// The active mode in `/sys/kernel/security/lockdown`'s content, the word in
/// brackets (`none [integrity] confidentiality` → `integrity`).
pub fn parse_lockdown(content: &str) -> Option<String> {
    content
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

/// The firmware facts of the system whose `/sys` is under `root` (`/` for
/// this host; a scratch tree in tests).
pub fn read(root: &Path) -> Firmware {
    let efi = root.join("sys/firmware/efi");
    let kind = if efi.exists() { Kind::Uefi } else { Kind::Bios };
    let variable = |name: &str| {
        if kind != Kind::Uefi {
            return None;
        }
        let path = efi
            .join("efivars")
            .join(format!("{name}-{EFI_GLOBAL_VARIABLE}"));
        parse_efivar_bool(&std::fs::read(path).ok()?)
    };
    Firmware {
        kind,
        secure_boot: variable("SecureBoot"),
        setup_mode: variable("SetupMode"),
        lockdown: std::fs::read_to_string(root.join("sys/kernel/security/lockdown"))
            .ok()
            .and_then(|c| parse_lockdown(&c)),
    }
}

/// The firmware facts of this host.
pub fn firmware() -> Firmware {
    read(Path::new("/"))
}

impl Firmware {
    /// One line for people: `UEFI, Secure Boot on (kernel lockdown:
    /// integrity)`, `UEFI, Secure Boot off`, `BIOS`. The lockdown is named
    /// under Secure Boot, and otherwise only when it is on.
    pub fn summary(&self) -> String {
        let mut line = match self.kind {
            Kind::Bios => "BIOS".to_string(),
            Kind::Uefi => format!(
                "UEFI, Secure Boot {}",
                match self.secure_boot {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "state unknown",
                }
            ),
        };
        if self.setup_mode == Some(true) {
            line.push_str(", firmware in Setup Mode (no platform key enrolled)");
        }
        let lockdown = self
            .lockdown
            .as_deref()
            .filter(|m| self.secure_boot == Some(true) || *m != "none");
        if let Some(mode) = lockdown {
            line.push_str(&format!(" (kernel lockdown: {mode})"));
        }
        line
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch root: `uefi` makes `/sys/firmware/efi`; each variable is
    /// written with its raw bytes; `lockdown` is securityfs's file.
    fn root(uefi: bool, vars: &[(&str, &[u8])], lockdown: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        if uefi {
            let dir = d.path().join("sys/firmware/efi/efivars");
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in vars {
                std::fs::write(dir.join(format!("{name}-{EFI_GLOBAL_VARIABLE}")), bytes).unwrap();
            }
        }
        if let Some(l) = lockdown {
            let dir = d.path().join("sys/kernel/security");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("lockdown"), l).unwrap();
        }
        d
    }

    /// efivarfs's attributes of both variables: boot service and runtime
    /// access (0x6), little-endian.
    const ATTRS: [u8; 4] = [6, 0, 0, 0];
    const ON: &[u8] = &[6, 0, 0, 0, 1];
    const OFF: &[u8] = &[6, 0, 0, 0, 0];

    #[test]
    fn bios() {
        let d = root(false, &[], Some("[none] integrity confidentiality\n"));
        let f = read(d.path());
        assert_eq!(
            f,
            Firmware {
                kind: Kind::Bios,
                secure_boot: None,
                setup_mode: None,
                lockdown: Some("none".into()),
            }
        );
        assert_eq!(f.summary(), "BIOS");
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({
                "kind": "bios",
                "secure_boot": null,
                "setup_mode": null,
                "lockdown": "none",
            })
        );
    }

    #[test]
    fn uefi_with_secure_boot_on() {
        let d = root(
            true,
            &[("SecureBoot", ON), ("SetupMode", OFF)],
            Some("none [integrity] confidentiality\n"),
        );
        let f = read(d.path());
        assert_eq!(f.kind, Kind::Uefi);
        assert_eq!(f.secure_boot, Some(true));
        assert_eq!(f.setup_mode, Some(false));
        assert_eq!(f.lockdown.as_deref(), Some("integrity"));
        assert_eq!(
            f.summary(),
            "UEFI, Secure Boot on (kernel lockdown: integrity)"
        );
        assert_eq!(serde_json::to_value(&f).unwrap()["kind"], "uefi");
    }

    #[test]
    fn uefi_with_secure_boot_off() {
        let d = root(
            true,
            &[("SecureBoot", OFF), ("SetupMode", OFF)],
            Some("[none] integrity confidentiality\n"),
        );
        let f = read(d.path());
        assert_eq!(
            (f.secure_boot, f.setup_mode, f.lockdown.as_deref()),
            (Some(false), Some(false), Some("none"))
        );
        assert_eq!(f.summary(), "UEFI, Secure Boot off");
    }

    #[test]
    fn uefi_in_setup_mode() {
        let d = root(true, &[("SecureBoot", OFF), ("SetupMode", ON)], None);
        let f = read(d.path());
        assert_eq!((f.secure_boot, f.setup_mode), (Some(false), Some(true)));
        assert_eq!(
            f.summary(),
            "UEFI, Secure Boot off, firmware in Setup Mode (no platform key enrolled)"
        );
    }

    #[test]
    fn missing_short_or_odd_variables_are_unknown() {
        // No efivarfs mounted: only /sys/firmware/efi.
        let d = root(true, &[], None);
        let f = read(d.path());
        assert_eq!(
            f,
            Firmware {
                kind: Kind::Uefi,
                secure_boot: None,
                setup_mode: None,
                lockdown: None,
            }
        );
        assert_eq!(f.summary(), "UEFI, Secure Boot state unknown");
        // Attributes only, nothing at all, a value that is neither 0 nor 1.
        let d = root(true, &[("SecureBoot", &ATTRS), ("SetupMode", &[])], None);
        let f = read(d.path());
        assert_eq!((f.secure_boot, f.setup_mode), (None, None));
        assert_eq!(parse_efivar_bool(&[6, 0, 0, 0, 2]), None);
        assert_eq!(parse_efivar_bool(&[1]), None);
        // Variables are not looked for after a BIOS boot.
        let d = root(false, &[("SecureBoot", ON)], None);
        assert_eq!(read(d.path()).secure_boot, None);
    }

    #[test]
    fn lockdown_modes() {
        for (content, mode) in [
            ("none [integrity] confidentiality\n", Some("integrity")),
            ("[none] integrity confidentiality\n", Some("none")),
            ("none integrity [confidentiality]", Some("confidentiality")),
            ("none integrity confidentiality\n", None),
            ("[]", None),
            ("", None),
        ] {
            assert_eq!(parse_lockdown(content).as_deref(), mode, "{content:?}");
        }
        // Without Secure Boot a lockdown that is on is still named.
        let f = Firmware {
            kind: Kind::Bios,
            secure_boot: None,
            setup_mode: None,
            lockdown: Some("confidentiality".into()),
        };
        assert_eq!(f.summary(), "BIOS (kernel lockdown: confidentiality)");
    }
}
