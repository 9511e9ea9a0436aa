//! The journal through `journalctl -o json`.

use std::process::Command;

use command::{CommandError, CommandExt};
use serde::{Deserialize, Serialize};

/// A filter the logs page and API accept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogQuery {
    /// Highest priority number shown (0 emerg … 7 debug).
    pub priority: Option<u8>,
    pub unit: Option<String>,
    /// Text to search for (a `journalctl --grep` pattern, case-insensitive).
    pub grep: Option<String>,
    /// How many entries (default 200, at most 5000).
    pub lines: Option<u32>,
}

impl LogQuery {
    /// Checks the values; an unusable one is the client's error.
    pub fn validate(&self) -> Result<(), String> {
        if self.priority.is_some_and(|p| p > 7) {
            return Err("priority must be 0 (emerg) to 7 (debug)".into());
        }
        if let Some(u) = self.unit.as_deref().filter(|u| !u.is_empty()) {
            if u.starts_with('-') || u.len() > 256 || u.contains(char::is_whitespace) {
                return Err(format!("not a unit name: {u:?}"));
            }
        }
        if self.grep.as_deref().is_some_and(|g| g.len() > 256) {
            return Err("search text too long".into());
        }
        Ok(())
    }

    /// The `journalctl` arguments for this filter.
    pub fn args(&self, follow: bool) -> Vec<String> {
        let mut a: Vec<String> = vec!["-o".into(), "json".into(), "--no-pager".into()];
        let lines = self.lines.unwrap_or(200).clamp(1, 5000);
        if follow {
            a.extend(["-f".into(), "-n".into(), "0".into()]);
        } else {
            a.extend(["-n".into(), lines.to_string()]);
        }
        if let Some(p) = self.priority {
            a.push(format!("--priority={p}"));
        }
        if let Some(u) = self.unit.as_deref().filter(|u| !u.is_empty()) {
            a.push(format!("--unit={u}"));
        }
        if let Some(g) = self.grep.as_deref().filter(|g| !g.is_empty()) {
            a.push("--case-sensitive=false".into());
            a.push(format!("--grep={g}"));
        }
        a
    }
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Microseconds since the Unix epoch.
    pub time_us: u64,
    pub priority: u8,
    pub identifier: String,
    pub unit: String,
    pub message: String,
}

fn field_text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        // Binary fields come as arrays of byte values.
        Some(serde_json::Value::Array(bytes)) => {
            let b: Vec<u8> = bytes
                .iter()
                .filter_map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        }
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Parses one line of `journalctl -o json`.
pub fn parse_entry(line: &str) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let unit = field_text(obj.get("_SYSTEMD_UNIT"));
    let identifier = field_text(obj.get("SYSLOG_IDENTIFIER"));
    Some(Entry {
        time_us: field_text(obj.get("__REALTIME_TIMESTAMP"))
            .parse()
            .unwrap_or(0),
        priority: field_text(obj.get("PRIORITY")).parse().unwrap_or(6),
        identifier: if identifier.is_empty() {
            field_text(obj.get("_COMM"))
        } else {
            identifier
        },
        unit,
        message: field_text(obj.get("MESSAGE")),
    })
}

/// Reads entries matching `q`, oldest first.
pub fn read(q: &LogQuery) -> Result<Vec<Entry>, CommandError> {
    let out = match Command::new("journalctl")
        .args(q.args(false))
        .stdin_closed()
        .c_locale()
        .run_capture()
    {
        Ok(out) => out,
        // journalctl --grep exits 1 when nothing matched.
        Err(e) if q.grep.is_some() && e.what.contains("exit status: 1") && e.stderr.is_empty() => {
            String::new()
        }
        Err(e) => return Err(e),
    };
    Ok(out.lines().filter_map(parse_entry).collect())
}

/// The name journalctl and syslog give a priority number.
pub fn priority_name(p: u8) -> &'static str {
    [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ]
    .get(usize::from(p))
    .copied()
    .unwrap_or("info")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_text_and_binary_messages() {
        let line = r#"{"__REALTIME_TIMESTAMP":"1764100000123456","PRIORITY":"3","SYSLOG_IDENTIFIER":"libvirtd","_SYSTEMD_UNIT":"libvirtd.service","MESSAGE":"internal error"}"#;
        let e = parse_entry(line).unwrap();
        assert_eq!(e.time_us, 1_764_100_000_123_456);
        assert_eq!((e.priority, priority_name(e.priority)), (3, "err"));
        assert_eq!(e.identifier, "libvirtd");
        assert_eq!(e.unit, "libvirtd.service");
        let bin = r#"{"MESSAGE":[104,105,255],"_COMM":"qemu"}"#;
        let e = parse_entry(bin).unwrap();
        assert_eq!(e.message, "hi\u{fffd}");
        assert_eq!(e.identifier, "qemu");
        assert_eq!(e.priority, 6);
        assert!(parse_entry("not json").is_none());
    }

    #[test]
    fn query_arguments_and_validation() {
        let q = LogQuery {
            priority: Some(4),
            unit: Some("sshd.service".into()),
            grep: Some("fail".into()),
            lines: Some(10_000),
        };
        assert!(q.validate().is_ok());
        let a = q.args(false);
        assert!(a.contains(&"5000".to_string()), "{a:?}");
        assert!(a.contains(&"--priority=4".to_string()));
        assert!(a.contains(&"--unit=sshd.service".to_string()));
        assert!(a.contains(&"--grep=fail".to_string()));
        assert!(q.args(true).contains(&"-f".to_string()));
        for bad in [
            LogQuery {
                priority: Some(9),
                ..Default::default()
            },
            LogQuery {
                unit: Some("--all".into()),
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
