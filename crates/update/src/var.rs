//! `/var` is shared by every layer and never rewritten by an update: only
//! the paths the new image has in its `/var` and the node has not are
//! copied in (a folder whole, with owners, modes and labels), each one
//! reported, and each one recorded so that a failed update removes it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use command::CommandExt;

/// Copies into `node_var` every path of `image_var` that `node_var` lacks;
/// `added` is called with each path before it is copied (so a failure in
/// the copy still has it recorded for removal). Returns the added paths,
/// relative to `/var`.
pub fn add_new_paths(
    image_var: &Path,
    node_var: &Path,
    added: &mut dyn FnMut(&Path),
) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(image_var, node_var, Path::new(""), added, &mut out)?;
    Ok(out)
}

fn walk(
    image_var: &Path,
    node_var: &Path,
    rel: &Path,
    added: &mut dyn FnMut(&Path),
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let dir = image_var.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .with_context(|| format!("listing the new image's {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("listing the new image's {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let rel = rel.join(e.file_name());
        let src = image_var.join(&rel);
        let dst = node_var.join(&rel);
        match fs::symlink_metadata(&dst) {
            Ok(node_meta) => {
                let image_meta = fs::symlink_metadata(&src)
                    .with_context(|| format!("reading {}", src.display()))?;
                if node_meta.is_dir() && image_meta.is_dir() {
                    walk(image_var, node_var, &rel, added, out)?;
                }
                // Anything else the node has stays as it is.
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                added(&dst);
                Command::new("cp")
                    .args(["-a", "--preserve=all", "--no-target-directory"])
                    .arg(&src)
                    .arg(&dst)
                    .run()
                    .with_context(|| {
                        format!(
                            "copying the new image's {} to {}",
                            src.display(),
                            dst.display()
                        )
                    })?;
                out.push(rel);
            }
            Err(err) => {
                return Err(err).with_context(|| format!("looking at {}", dst.display()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_paths_arrive_and_existing_ones_are_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let (img, node) = (d.path().join("img"), d.path().join("node"));
        fs::create_dir_all(img.join("lib/newapp/sub")).unwrap();
        fs::write(img.join("lib/newapp/sub/state"), b"seed").unwrap();
        fs::create_dir_all(img.join("lib/old")).unwrap();
        fs::write(img.join("lib/old/conf"), b"image").unwrap();
        fs::write(img.join("lib/old/extra"), b"image").unwrap();
        std::os::unix::fs::symlink("target", img.join("link")).unwrap();
        fs::create_dir_all(node.join("lib/old")).unwrap();
        fs::write(node.join("lib/old/conf"), b"node").unwrap();

        let mut seen = Vec::new();
        let added = add_new_paths(&img, &node, &mut |p| seen.push(p.to_path_buf())).unwrap();
        assert_eq!(
            added,
            [
                PathBuf::from("lib/newapp"),
                PathBuf::from("lib/old/extra"),
                PathBuf::from("link")
            ]
        );
        assert_eq!(seen.len(), 3);
        assert_eq!(fs::read(node.join("lib/old/conf")).unwrap(), b"node");
        assert_eq!(
            fs::read(node.join("lib/newapp/sub/state")).unwrap(),
            b"seed"
        );
        assert_eq!(
            fs::read_link(node.join("link")).unwrap(),
            Path::new("target")
        );
        // A second run adds nothing.
        assert!(add_new_paths(&img, &node, &mut |_| {}).unwrap().is_empty());
    }
}
