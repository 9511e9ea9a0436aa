//! The node's health: one report, made of groups of checks, that
//! `nodectl check`, the login message, the console's Overview and Node pages
//! and an update's trial boot all read.
//!
//! Facts are gathered elsewhere and passed in ([`layers::status::Facts`] for
//! the layered root, [`HostFacts`] for the rest, the engine's link
//! ([`VdsmFacts`]) among them); [`report`] only reads them,
//! so every verdict is tested on recorded facts. Each limit lives here once:
//! [`USAGE_LIMIT_PERCENT`] for a thin pool or a layer store,
//! [`FULL_PERCENT`] for any other file system, [`MEMORY_AVAILABLE_MIN_PERCENT`].

use serde::Serialize;

pub mod engine_link;
pub mod firewall;
pub mod host;
pub mod layered;

pub use engine_link::VdsmFacts;
pub use firewall::FirewallFacts;
pub use host::HostFacts;

/// Thin pool use (data, metadata) at or above this fails, as RHVH's health
/// check warns; the file system of a btrfs or plain store has the same limit.
pub const USAGE_LIMIT_PERCENT: f64 = hostinfo::THIN_POOL_WARN_PERCENT;

/// A file system (other than a layer store) this full fails.
pub const FULL_PERCENT: f64 = 90.0;

/// Less memory available than this share of the total is a warning.
pub const MEMORY_AVAILABLE_MIN_PERCENT: f64 = 10.0;

/// The verdict of one check, of a group, or of the whole report: the worst
/// of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The node works, but not as a hypervisor should (no KVM, little
    /// memory left): shown, and `nodectl check` still exits 0.
    Warning,
    Failed,
}

impl Status {
    /// The word `nodectl check` prints: `OK`, `WARNING`, `FAILED`.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Failed => "FAILED",
        }
    }
}

/// One check with its explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

/// A group of checks (oVirt nodectl's sections).
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub status: Status,
    pub checks: Vec<Item>,
}

/// The node's health (`nodectl check --json`, `/api/v1/health`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub groups: Vec<Group>,
}

impl Report {
    /// A report of `groups`; its status is the worst of theirs.
    pub fn new(groups: Vec<Group>) -> Report {
        Report {
            status: worst(groups.iter().map(|g| g.status)),
            groups,
        }
    }

    /// Every check that is not OK, with its group's name, worst first.
    pub fn problems(&self) -> Vec<(&str, &Item)> {
        let mut out: Vec<(&str, &Item)> = self
            .groups
            .iter()
            .flat_map(|g| g.checks.iter().map(move |c| (g.name.as_str(), c)))
            .filter(|(_, c)| c.status != Status::Ok)
            .collect();
        out.sort_by_key(|(_, c)| std::cmp::Reverse(c.status));
        out
    }

    /// The check called `name`, in whichever group.
    pub fn find(&self, name: &str) -> Option<&Item> {
        self.groups
            .iter()
            .flat_map(|g| &g.checks)
            .find(|c| c.name == name)
    }
}

fn worst(statuses: impl Iterator<Item = Status>) -> Status {
    statuses.max().unwrap_or(Status::Ok)
}

/// A check that passes or fails.
pub fn item(name: &str, ok: bool, detail: impl Into<String>) -> Item {
    with_status(name, if ok { Status::Ok } else { Status::Failed }, detail)
}

/// A check that passes or only warns.
pub fn warn_unless(name: &str, ok: bool, detail: impl Into<String>) -> Item {
    with_status(name, if ok { Status::Ok } else { Status::Warning }, detail)
}

fn with_status(name: &str, status: Status, detail: impl Into<String>) -> Item {
    Item {
        name: name.into(),
        status,
        detail: detail.into(),
    }
}

/// A group of `checks`; its status is the worst of theirs.
pub fn group(name: &str, checks: Vec<Item>) -> Group {
    Group {
        name: name.into(),
        status: worst(checks.iter().map(|c| c.status)),
        checks,
    }
}

/// The node's health: the layered root's groups when the system runs from a
/// layer, then the host's. A live system has no layered root of its own
/// (layers found on its disks belong to an installed node that is not
/// running), so only the host is checked there; `layered` may be `None`
/// when the layer store could not be read at all.
pub fn report(layered: Option<&layers::status::Facts>, host: &HostFacts) -> Report {
    let layered = layered.filter(|f| f.current_layer.is_some());
    let mut groups = layered.map(layered::groups).unwrap_or_default();
    let store_pool = layered.and_then(layered::store_pool);
    groups.extend(host::groups(host, store_pool));
    Report::new(groups)
}

/// Human text of a report, as oVirt's nodectl prints it.
pub fn render(r: &Report) -> String {
    let mut s = format!("Status: {}\n", r.status.word());
    for g in &r.groups {
        s.push_str(&format!("{} ... {}\n", g.name, g.status.word()));
        for c in &g.checks {
            s.push_str(&format!(
                "  {} ... {} ({})\n",
                c.name,
                c.status.word(),
                c.detail
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_verdict_wins() {
        let r = Report::new(vec![
            group("A", vec![item("a", true, "fine")]),
            group(
                "B",
                vec![warn_unless("b", false, "meh"), item("c", false, "broken")],
            ),
        ]);
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.groups[1].status, Status::Failed);
        let p: Vec<&str> = r.problems().iter().map(|(_, c)| c.name.as_str()).collect();
        assert_eq!(p, ["c", "b"]);
        assert_eq!(Report::new(vec![]).status, Status::Ok);
        let text = render(&r);
        assert!(text.starts_with("Status: FAILED\nA ... OK\n  a ... OK (fine)\n"));
        assert!(text.contains("  b ... WARNING (meh)\n"), "{text}");
    }
}
