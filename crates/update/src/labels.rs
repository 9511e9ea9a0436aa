//! The `labels` step: the merged `/etc` of the new layer labelled by the
//! new image's SELinux policy. The merge keeps each file's label, but a
//! label is only right for the policy that set it: the new policy may
//! label a path otherwise, and a file the admin made by hand may carry a
//! label no policy gives it. `setfiles` (what `restorecon` runs) sets the
//! type of each file from the new policy's file contexts, with the admin's
//! own rules (`file_contexts.local`, from `semanage fcontext`) applied.
//! The base is the image's, labelled when it was built; `/var` is shared
//! and its new paths come with the image's labels.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;
use serde::Serialize;

/// What the step did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LabelReport {
    /// Whether the new image has a policy to check against.
    pub checked: bool,
    /// Files of `/etc` whose type was changed, with the change
    /// (`/etc/x: a_t → b_t`).
    pub relabeled: Vec<String>,
}

/// Labels `root/etc` (the new layer, mounted at `root`) by the policy in
/// `root`.
pub fn relabel_etc(root: &Path) -> Result<LabelReport> {
    let Some(policy) = hostinfo::security::policy_files(root) else {
        return Ok(LabelReport::default());
    };
    let out = Command::new("setfiles")
        .arg("-v")
        .arg("-r")
        .arg(root)
        .arg("-c")
        .arg(&policy.policy)
        .arg(&policy.file_contexts)
        .arg(root.join("etc"))
        .c_locale()
        .run_capture()
        .with_context(|| {
            format!(
                "labelling the new layer's /etc by its SELinux policy ({})",
                policy.policy.display()
            )
        })?;
    Ok(LabelReport {
        checked: true,
        relabeled: parse_relabeled(&out, root),
    })
}

/// setfiles's `Relabeled PATH from OLD to NEW` lines as `PATH: OLD → NEW`,
/// the paths as the node will see them.
fn parse_relabeled(out: &str, root: &Path) -> Vec<String> {
    let root = root.to_string_lossy();
    out.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Relabeled ")?;
            let (path, change) = rest.split_once(" from ")?;
            let (from, to) = change.split_once(" to ")?;
            let path = path.strip_prefix(root.as_ref()).unwrap_or(path);
            Some(format!("{path}: {} → {}", from.trim(), to.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setfiles_lines_name_the_node_paths() {
        let out = "Relabeled /mnt/layer/etc/hvnode/note from system_u:object_r:tmp_t:s0 to system_u:object_r:etc_t:s0\nsomething else\n";
        assert_eq!(
            parse_relabeled(out, Path::new("/mnt/layer")),
            ["/etc/hvnode/note: system_u:object_r:tmp_t:s0 → system_u:object_r:etc_t:s0"]
        );
    }

    #[test]
    fn an_image_without_a_policy_is_not_checked() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        assert_eq!(relabel_etc(d.path()).unwrap(), LabelReport::default());
    }
}
