//! The node's firewall as `nodectl check` sees it: nftables.service (the
//! installer enables it unless the kickstart says `firewall --disabled` or
//! `--use-system-defaults`) and the table `inet hvnode` it loads.

use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use serde::{Deserialize, Serialize};

use crate::{Item, item};

/// The unit that loads the ruleset.
pub const UNIT: &str = "nftables.service";
/// The node's table (`/etc/nftables.conf`, written by hvnode-install).
pub const TABLE: (&str, &str) = ("inet", "hvnode");

/// What the firewall check looks at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirewallFacts {
    /// nftables.service's UnitFileState (`enabled`, `disabled`, `masked`;
    /// empty when systemd does not know the unit).
    pub unit_file_state: String,
    /// nftables.service's ActiveState.
    pub active_state: String,
    /// Whether nftables lists the table `inet hvnode`; `None` when it was
    /// not asked (listing needs CAP_NET_ADMIN, which the console's agent
    /// does not have) or could not answer.
    pub table_loaded: Option<bool>,
}

/// `KEY=VALUE` lines of `systemctl show -p …` → the value of `key`.
pub fn show_value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct NftOutput {
    nftables: Vec<NftObject>,
}

#[derive(Deserialize)]
struct NftObject {
    table: Option<NftTable>,
}

#[derive(Deserialize)]
struct NftTable {
    family: String,
    name: String,
}

/// `nft -j list tables` → (family, name) of each table.
pub fn parse_nft_tables(json: &str) -> Result<Vec<(String, String)>> {
    let out: NftOutput = serde_json::from_str(json).context("reading nft -j list tables")?;
    Ok(out
        .nftables
        .into_iter()
        .filter_map(|o| o.table)
        .map(|t| (t.family, t.name))
        .collect())
}

/// Whether the `CapEff:` line of `/proc/self/status` has capability `bit`.
pub fn has_capability(proc_status: &str, bit: u32) -> bool {
    proc_status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

const CAP_NET_ADMIN: u32 = 12;

/// Asks systemd, and nftables when this process may.
pub fn gather() -> FirewallFacts {
    let show = Command::new("systemctl")
        .args(["show", "-p", "UnitFileState", "-p", "ActiveState", UNIT])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut f = FirewallFacts {
        unit_file_state: show_value(&show, "UnitFileState").to_string(),
        active_state: show_value(&show, "ActiveState").to_string(),
        table_loaded: None,
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if f.unit_file_state == "enabled" && has_capability(&status, CAP_NET_ADMIN) {
        f.table_loaded = Command::new("nft")
            .args(["-j", "list", "tables"])
            .run_capture()
            .ok()
            .and_then(|json| parse_nft_tables(&json).ok())
            .map(|tables| {
                tables
                    .iter()
                    .any(|(family, name)| (family.as_str(), name.as_str()) == TABLE)
            });
    }
    f
}

/// The check: an enabled firewall must be active with its table loaded; a
/// firewall the kickstart left off is fine, and says so.
pub fn check(f: &FirewallFacts) -> Item {
    let table = format!("table {} {}", TABLE.0, TABLE.1);
    match f.unit_file_state.as_str() {
        "enabled" => {
            let active = f.active_state == "active";
            let ok = active && f.table_loaded != Some(false);
            let detail = if !active {
                format!(
                    "{UNIT} is {}: `systemctl status nftables` says why",
                    if f.active_state.is_empty() {
                        "not running"
                    } else {
                        &f.active_state
                    }
                )
            } else {
                match f.table_loaded {
                    Some(true) => format!("{UNIT} active, {table} loaded"),
                    Some(false) => format!(
                        "{UNIT} active, but {table} is not loaded: `systemctl reload nftables` loads /etc/nftables.conf"
                    ),
                    None => format!("{UNIT} active ({table} not listed: that needs root)"),
                }
            };
            item("nftables", ok, detail)
        }
        "" => item(
            "nftables",
            true,
            format!("{UNIT} is not installed: no firewall"),
        ),
        state => item(
            "nftables",
            true,
            format!(
                "{UNIT} {state}: no firewall (the kickstart said firewall --disabled or --use-system-defaults)"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    /// `nft -j list tables` on a node: nft 1.0.6's metainfo (recorded),
    /// then the tables in libnftables-json(5)'s shape, libvirt's
    /// iptables-nft ones included.
    const TABLES: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "hvnode", "handle": 1}}, {"table": {"family": "ip", "name": "filter", "handle": 2}}, {"table": {"family": "ip", "name": "nat", "handle": 3}}]}"#;
    const NO_TABLES: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]}"#;

    #[test]
    fn facts_parse() {
        let t = parse_nft_tables(TABLES).unwrap();
        assert_eq!(t[0], ("inet".to_string(), "hvnode".to_string()));
        assert_eq!(t.len(), 3);
        assert!(parse_nft_tables(NO_TABLES).unwrap().is_empty());
        let show = "ActiveState=active\nUnitFileState=enabled\n";
        assert_eq!(show_value(show, "UnitFileState"), "enabled");
        assert_eq!(show_value(show, "ActiveState"), "active");
        assert_eq!(show_value("", "ActiveState"), "");
        assert!(has_capability("Name:\tx\nCapEff:\t000001fffeffffff\n", 12));
        assert!(!has_capability("CapEff:\t0000000000000000\n", 12));
        assert!(!has_capability("", 12));
    }

    #[test]
    fn each_firewall_state_has_its_verdict() {
        let facts = |unit: &str, active: &str, table: Option<bool>| FirewallFacts {
            unit_file_state: unit.into(),
            active_state: active.into(),
            table_loaded: table,
        };
        let cases = [
            (
                facts("enabled", "active", Some(true)),
                Status::Ok,
                "nftables.service active, table inet hvnode loaded",
            ),
            (
                facts("enabled", "active", None),
                Status::Ok,
                "nftables.service active (table inet hvnode not listed: that needs root)",
            ),
            (
                facts("enabled", "active", Some(false)),
                Status::Failed,
                "nftables.service active, but table inet hvnode is not loaded: `systemctl reload nftables` loads /etc/nftables.conf",
            ),
            (
                facts("enabled", "failed", None),
                Status::Failed,
                "nftables.service is failed: `systemctl status nftables` says why",
            ),
            (
                facts("disabled", "inactive", None),
                Status::Ok,
                "nftables.service disabled: no firewall (the kickstart said firewall --disabled or --use-system-defaults)",
            ),
            (
                facts("", "", None),
                Status::Ok,
                "nftables.service is not installed: no firewall",
            ),
        ];
        for (f, status, detail) in cases {
            let i = check(&f);
            assert_eq!((i.status, i.detail.as_str()), (status, detail), "{f:?}");
        }
    }
}
