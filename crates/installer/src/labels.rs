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

/// Labels folders (and what is in them) with the installed system's
/// policy, in one run of setfiles (loading the policy's file contexts is
/// most of a run: 2-3 s under emulation): mount points before volumes are
/// mounted over them, since a relabel afterwards only reaches the mounted
/// volumes' roots.
pub fn label_paths(root: &Path, paths: &[PathBuf], log: &Path) -> Result<()> {
    let Some(fc) = file_contexts(root) else {
        return Ok(());
    };
    if paths.is_empty() {
        return Ok(());
    }
    Command::new("setfiles")
        .arg("-F")
        .arg("-r")
        .arg(root)
        .arg(&fc)
        .args(paths)
        .run_appending(log)
        .with_context(|| {
            let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            format!("labelling {}", shown.join(", "))
        })?;
    Ok(())
}

/// The folders [`relabel`] labels. `/var` is not one of them: the installer
/// writes nothing there before the relabel, and what a separate volume
/// under it holds is copied from the layer with its labels; a volume's root
/// is labelled as the folder it is copied from, and a mount point the image
/// lacks is labelled before the volume is mounted on it. (`/var` holds two
/// thirds of the files; its setfiles took 7-8 s of the install under
/// emulation.)
const RELABELLED: [&str; 5] = ["etc", "root", "home", "tmp", "boot"];

/// Labels what the installer wrote with the installed system's own policy.
pub fn relabel(root: &Path, log: &Path) -> Result<()> {
    let Some(fc) = file_contexts(root) else {
        return Ok(());
    };
    let targets: Vec<PathBuf> = RELABELLED
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
