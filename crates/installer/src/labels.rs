//! SELinux labels of what the installer writes, given with the installed
//! system's own policy (its `file_contexts`), so the first boot needs no
//! relabel. Nothing is done when the image has no policy.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;

fn file_contexts(root: &Path) -> Option<PathBuf> {
    let fc = root.join("etc/selinux/default/contexts/files/file_contexts");
    fc.is_file().then_some(fc)
}

/// Labels one folder (and what is in it) with the installed system's
/// policy: mount points before a volume is mounted over them, since a
/// relabel afterwards only reaches the mounted volume's root.
pub fn label_path(root: &Path, path: &Path, log: &Path) -> Result<()> {
    let Some(fc) = file_contexts(root) else {
        return Ok(());
    };
    Command::new("setfiles")
        .arg("-F")
        .arg("-r")
        .arg(root)
        .arg(&fc)
        .arg(path)
        .run_appending(log)
        .with_context(|| format!("labelling {}", path.display()))?;
    Ok(())
}

/// Labels what the installer wrote with the installed system's own policy.
pub fn relabel(root: &Path, log: &Path) -> Result<()> {
    let Some(fc) = file_contexts(root) else {
        return Ok(());
    };
    let targets: Vec<PathBuf> = ["etc", "root", "home", "var", "tmp", "boot"]
        .iter()
        .map(|d| root.join(d))
        .filter(|p| p.exists())
        .collect();
    Command::new("setfiles")
        .arg("-F")
        .arg("-r")
        .arg(root)
        .arg(&fc)
        .args(&targets)
        .run_appending(log)
        .context("labelling the installed system (setfiles)")?;
    Ok(())
}

/// Labels the folders of a plain store (`top` is its file system's root,
/// `image` the image tree whose policy applies): they are seen at
/// `/sysroot` on the running node. The bases and layers keep the labels
/// they are copied with.
pub fn label_store(image: &Path, top: &Path, log: &Path) -> Result<()> {
    let Some(fc) = file_contexts(image) else {
        return Ok(());
    };
    let dirs = [
        top.to_path_buf(),
        top.join("hvnode"),
        top.join("hvnode/bases"),
        top.join("hvnode/layers"),
    ];
    // setfiles takes paths under its root only: the store's folders are
    // matched as the node will see them.
    for (dir, seen_as) in dirs.iter().zip([
        "/sysroot",
        "/sysroot/hvnode",
        "/sysroot/hvnode/bases",
        "/sysroot/hvnode/layers",
    ]) {
        let context = Command::new("matchpathcon")
            .args(["-n", "-f"])
            .arg(&fc)
            .arg(seen_as)
            .run_capture()
            .with_context(|| format!("looking up the label of {seen_as}"))?;
        Command::new("chcon")
            .arg(context.trim())
            .arg(dir)
            .run_appending(log)
            .with_context(|| format!("labelling {}", dir.display()))?;
    }
    Ok(())
}
