//! systemd units through `systemctl` (run by the one command wrapper).

use std::process::Command;
use std::str::FromStr;

use command::{CommandError, CommandExt};
use serde::{Deserialize, Serialize};

/// `systemctl` with standard input closed and the C locale.
fn systemctl() -> Command {
    let mut command = Command::new("systemctl");
    command.stdin_closed().c_locale();
    command
}

/// One unit as the services page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub unit: String,
    #[serde(default)]
    pub load: String,
    #[serde(default)]
    pub active: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub description: String,
    /// `enabled`, `disabled`, `static`, … from `list-unit-files`.
    #[serde(default)]
    pub enabled: String,
}

#[derive(Deserialize)]
struct UnitFile {
    unit_file: String,
    state: String,
}

/// Joins `systemctl list-units -o json` with `systemctl list-unit-files -o json`.
pub fn parse_units(units_json: &str, files_json: &str) -> Result<Vec<Unit>, serde_json::Error> {
    let mut units: Vec<Unit> = serde_json::from_str(units_json)?;
    let files: Vec<UnitFile> = serde_json::from_str(files_json).unwrap_or_default();
    for u in &mut units {
        if let Some(f) = files.iter().find(|f| f.unit_file == u.unit) {
            u.enabled = f.state.clone();
        }
    }
    units.sort_by(|a, b| a.unit.cmp(&b.unit));
    Ok(units)
}

/// Lists service units.
pub fn list_units() -> Result<Vec<Unit>, CommandError> {
    let mut list = systemctl();
    list.args([
        "list-units",
        "--all",
        "--type=service",
        "--no-pager",
        "--output=json",
    ]);
    let units: serde_json::Value = list.run_json()?;
    let files: serde_json::Value = systemctl()
        .args([
            "list-unit-files",
            "--type=service",
            "--no-pager",
            "--output=json",
        ])
        .run_json()
        .unwrap_or(serde_json::Value::Array(Vec::new()));
    parse_units(&units.to_string(), &files.to_string())
        .map_err(|e| CommandError::new(&list, format!("printed an unexpected shape: {e}")))
}

/// The Services page's filter (`?filter=…&state=…`): text in the unit's name or
/// description, and an ActiveState.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServiceFilter {
    pub filter: String,
    pub state: String,
}

/// What can be done to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitAction {
    Start,
    Stop,
    Restart,
    Enable,
    Disable,
}

impl Unit {
    /// The actions that change this unit as it is: start when it is not running,
    /// stop and restart when it is (or is on its way), enable when it is disabled,
    /// disable when it is enabled. A static, masked, generated or transient unit is
    /// neither enabled nor disabled by hand.
    pub fn actions(&self) -> Vec<UnitAction> {
        let mut out = Vec::new();
        let up = matches!(
            self.active.as_str(),
            "active" | "activating" | "reloading" | "refreshing"
        );
        if up {
            out.extend([UnitAction::Stop, UnitAction::Restart]);
        } else if self.active != "deactivating" {
            out.push(UnitAction::Start);
        }
        match self.enabled.as_str() {
            "disabled" => out.push(UnitAction::Enable),
            "enabled" | "enabled-runtime" => out.push(UnitAction::Disable),
            _ => {}
        }
        out
    }
}

impl UnitAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Enable => "enable",
            Self::Disable => "disable",
        }
    }
}

impl FromStr for UnitAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "start" => Self::Start,
            "stop" => Self::Stop,
            "restart" => Self::Restart,
            "enable" => Self::Enable,
            "disable" => Self::Disable,
            _ => {
                return Err(format!(
                    "unknown action {s:?} (start, stop, restart, enable, disable)"
                ));
            }
        })
    }
}

/// Whether `name` is a unit name systemd would accept (and cannot be read as an
/// option by systemctl).
pub fn valid_unit_name(name: &str) -> bool {
    const TYPES: &[&str] = &[
        "service",
        "socket",
        "target",
        "device",
        "mount",
        "automount",
        "swap",
        "timer",
        "path",
        "slice",
        "scope",
    ];
    let typed = name
        .rsplit_once('.')
        .is_some_and(|(stem, kind)| !stem.is_empty() && TYPES.contains(&kind));
    typed
        && name.len() <= 256
        && !name.starts_with('-')
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// Runs `systemctl ACTION -- UNIT`.
pub fn act(unit: &str, action: UnitAction) -> Result<(), CommandError> {
    systemctl()
        .args([action.as_str(), "--no-ask-password", "--", unit])
        .run()?;
    tracing::info!(unit, action = action.as_str(), "unit action");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: &str = r#"[{"unit":"ssh.service","load":"loaded","active":"active","sub":"running","description":"OpenBSD Secure Shell server"},
        {"unit":"libvirtd.service","load":"loaded","active":"inactive","sub":"dead","description":"Virtualization daemon"}]"#;
    const FILES: &str = r#"[{"unit_file":"ssh.service","state":"enabled","preset":"enabled"},
        {"unit_file":"libvirtd.service","state":"disabled","preset":"enabled"}]"#;

    #[test]
    fn units_joined_with_their_enablement() {
        let u = parse_units(UNITS, FILES).unwrap();
        assert_eq!(u[0].unit, "libvirtd.service");
        assert_eq!(u[0].enabled, "disabled");
        assert_eq!(u[1].active, "active");
        assert_eq!(u[1].enabled, "enabled");
        assert!(parse_units("{}", "[]").is_err());
    }

    #[test]
    fn only_the_actions_that_change_a_unit_are_offered() {
        let unit = |active: &str, enabled: &str| Unit {
            unit: "x.service".into(),
            load: "loaded".into(),
            active: active.into(),
            sub: String::new(),
            description: String::new(),
            enabled: enabled.into(),
        };
        let names =
            |u: Unit| -> Vec<&str> { u.actions().into_iter().map(UnitAction::as_str).collect() };
        assert_eq!(
            names(unit("active", "enabled")),
            ["stop", "restart", "disable"]
        );
        assert_eq!(names(unit("inactive", "disabled")), ["start", "enable"]);
        assert_eq!(names(unit("failed", "static")), ["start"]);
        assert_eq!(names(unit("activating", "masked")), ["stop", "restart"]);
        assert!(names(unit("deactivating", "generated")).is_empty());
    }

    #[test]
    fn unit_names() {
        for (name, ok) in [
            ("sshd.service", true),
            ("getty@tty1.service", true),
            ("dev-disk-by\\x2duuid.swap", true),
            ("--now", false),
            ("-x.service", false),
            ("a b.service", false),
            ("noext", false),
            ("..", false),
            (".service", false),
            ("x.exe", false),
            ("sshd.socket", true),
            ("", false),
        ] {
            assert_eq!(valid_unit_name(name), ok, "{name}");
        }
    }

    #[test]
    fn actions() {
        assert_eq!("restart".parse(), Ok(UnitAction::Restart));
        assert!("mask".parse::<UnitAction>().is_err());
    }
}
