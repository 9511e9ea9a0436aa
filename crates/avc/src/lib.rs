//! SELinux AVC denials as an administrator needs them: [`parse`] reads one of the
//! kernel's audit lines (`avc:  denied  { read } for  pid=… comm="…" name="…"
//! scontext=… tcontext=… tclass=file permissive=0`), [`group`] folds repeats into
//! one entry with a count, and [`explain`] says in one line which process was denied
//! what on which object, and the boolean or label that would allow it where one
//! exists (for VMs: sVirt's booleans, the image labels, the MCS categories of
//! another VM's disk).

mod explain;

pub use explain::{Explanation, Fix, FixKind, explain};

use serde::Serialize;

/// One denial, as the kernel logged it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Denial {
    /// Seconds since the epoch, from `audit(SECONDS.MILLIS:SERIAL)`.
    pub time: Option<f64>,
    /// `{ read write }`.
    pub permissions: Vec<String>,
    pub pid: Option<u32>,
    /// The process's command name (`comm=`).
    pub comm: Option<String>,
    /// The object's name (`name=`), or its path (`path=`).
    pub name: Option<String>,
    pub path: Option<String>,
    pub scontext: String,
    pub tcontext: String,
    /// The object's class: `file`, `dir`, `tcp_socket`, `process`, …
    pub tclass: String,
    /// Whether it was only logged (a permissive domain or system).
    pub permissive: bool,
}

/// The type of a context (`system_u:system_r:svirt_t:s0:c1,c2` → `svirt_t`).
pub fn context_type(context: &str) -> &str {
    context.split(':').nth(2).unwrap_or(context)
}

/// The MLS/MCS level of a context (`s0:c1,c2`), if it has one.
pub fn context_level(context: &str) -> Option<&str> {
    let mut parts = context.splitn(4, ':');
    parts.nth(3)
}

impl Denial {
    pub fn source_type(&self) -> &str {
        context_type(&self.scontext)
    }

    pub fn target_type(&self) -> &str {
        context_type(&self.tcontext)
    }
}

/// The value of `key=` in `fields` (quoted or not).
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = fields;
    while let Some(at) = rest.find(key) {
        let before_ok = at == 0 || rest.as_bytes()[at - 1].is_ascii_whitespace();
        let after = &rest[at + key.len()..];
        if before_ok && after.starts_with('=') {
            let value = &after[1..];
            return Some(match value.strip_prefix('"') {
                Some(q) => q.split('"').next().unwrap_or(""),
                None => value.split_whitespace().next().unwrap_or(""),
            });
        }
        rest = after;
    }
    None
}

/// Parses an AVC denial from a log line (the kernel's, or auditd's `type=AVC`),
/// or `None` when the line holds none.
pub fn parse(line: &str) -> Option<Denial> {
    let at = line.find("avc:")?;
    let avc = &line[at + 4..];
    let avc = avc.trim_start().strip_prefix("denied")?;
    let open = avc.find('{')?;
    let close = avc[open..].find('}')? + open;
    let permissions = avc[open + 1..close]
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let fields = &avc[close + 1..];
    let time = line.find("audit(").and_then(|t| {
        line[t + 6..]
            .split(':')
            .next()
            .and_then(|s| s.parse::<f64>().ok())
    });
    let text = |k| field(fields, k).map(str::to_string);
    Some(Denial {
        time,
        permissions,
        pid: field(fields, "pid").and_then(|p| p.parse().ok()),
        comm: text("comm"),
        name: text("name"),
        path: text("path"),
        scontext: text("scontext")?,
        tcontext: text("tcontext")?,
        tclass: text("tclass")?,
        permissive: field(fields, "permissive") == Some("1"),
    })
}

/// Denials of the same process name, permissions and contexts on the same object,
/// folded into one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub denial: Denial,
    pub count: u64,
    /// The first and last times it was logged.
    pub first: Option<f64>,
    pub last: Option<f64>,
}

/// Folds `denials` (in log order) into groups, most recent first.
pub fn group(denials: impl IntoIterator<Item = Denial>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for d in denials {
        let same = |g: &Group| {
            let a = &g.denial;
            a.comm == d.comm
                && a.permissions == d.permissions
                && a.scontext == d.scontext
                && a.tcontext == d.tcontext
                && a.tclass == d.tclass
                && a.name == d.name
                && a.path == d.path
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => {
                g.count += 1;
                if d.time.is_some() {
                    g.last = d.time;
                }
                g.first = g.first.or(d.time);
            }
            None => groups.push(Group {
                count: 1,
                first: d.time,
                last: d.time,
                denial: d,
            }),
        }
    }
    groups.sort_by(|a, b| {
        b.last
            .unwrap_or(0.0)
            .partial_cmp(&a.last.unwrap_or(0.0))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    groups
}

#[cfg(test)]
mod tests;
