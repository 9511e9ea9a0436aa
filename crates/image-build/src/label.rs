//! The label stage: every file gets its SELinux context from the image's
//! own policy and file contexts. It is the last stage that writes files.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;

use crate::rootfs::Root;

/// The newest binary policy in the image (`policy.33`).
pub fn policy_file(root: &Root) -> Result<PathBuf> {
    let dir = root.join("/etc/selinux/default/policy");
    let mut best: Option<(u32, PathBuf)> = None;
    for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(v) = name
            .strip_prefix("policy.")
            .and_then(|v| v.parse::<u32>().ok())
            && best.as_ref().is_none_or(|(b, _)| v > *b)
        {
            best = Some((v, e.path()));
        }
    }
    match best {
        Some((_, p)) => Ok(p),
        None => bail!(
            "the image has no binary SELinux policy in {}: is selinux-policy-default in packages.include?",
            dir.display()
        ),
    }
}

pub fn label(root: &Root, log: &std::path::Path) -> Result<()> {
    let policy = policy_file(root)?;
    let contexts = root.join("/etc/selinux/default/contexts/files/file_contexts");
    Command::new("setfiles")
        .arg("-F")
        .arg("-r")
        .arg(&root.path)
        .arg("-c")
        .arg(&policy)
        .arg(&contexts)
        .arg(&root.path)
        .run_logged(log)
        .context("labelling the image with its SELinux policy (setfiles)")
}
