//! The label stage: every file gets its SELinux context from the image's
//! own policy and file contexts. It is the last stage that writes files.

use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;

use crate::rootfs::Root;

pub fn label(root: &Root, log: &std::path::Path) -> Result<()> {
    let Some(hostinfo::security::PolicyFiles {
        policy,
        file_contexts: contexts,
    }) = hostinfo::security::policy_files(&root.path)
    else {
        bail!(
            "the image has no binary SELinux policy and file contexts under {}: is \
             selinux-policy-default in packages.include?",
            root.join("/etc/selinux").display()
        );
    };
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
