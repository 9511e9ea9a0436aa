//! The installed node's `/etc/fstab`.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// One line of fstab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub options: String,
    /// fsck order: 1 for root, 2 for the others, 0 for none.
    pub pass: u8,
}

/// Renders `entries` with a header saying who wrote them.
pub fn render(entries: &[Entry]) -> String {
    let mut s = String::from(
        "# /etc/fstab of an hvnode layer, written by hvnode-install.\n\
         # Separate volumes are shared by every layer; thin volumes are mounted\n\
         # with discard so freed blocks return to the pool.\n",
    );
    for e in entries {
        let _ = writeln!(
            s,
            "{} {} {} {} 0 {}",
            e.source, e.target, e.fstype, e.options, e.pass
        );
    }
    s
}

/// Reads fstab text back (comments and short lines skipped).
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let [source, target, fstype, options, ..] = w[..] else {
                return None;
            };
            Some(Entry {
                source: source.into(),
                target: target.into(),
                fstype: fstype.into(),
                options: options.into(),
                pass: w.get(5).and_then(|p| p.parse().ok()).unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_wrote() {
        let e = Entry {
            source: "/dev/vg0/var".into(),
            target: "/var".into(),
            fstype: "xfs".into(),
            options: "defaults,discard".into(),
            pass: 2,
        };
        let text = render(std::slice::from_ref(&e)) + "\n# x\nbroken line\n";
        assert_eq!(parse(&text), [e]);
    }

    #[test]
    fn renders_one_line_per_entry() {
        let s = render(&[Entry {
            source: "/dev/hvnode/var".into(),
            target: "/var".into(),
            fstype: "ext4".into(),
            options: "defaults,discard".into(),
            pass: 2,
        }]);
        assert!(s.ends_with("/dev/hvnode/var /var ext4 defaults,discard 0 2\n"));
    }
}
