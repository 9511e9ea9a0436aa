//! The installed node's `/etc/fstab`.

use std::fmt::Write;

/// One line of fstab.
#[derive(Debug, Clone, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
