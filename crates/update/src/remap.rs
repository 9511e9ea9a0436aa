//! Image ids that mean another id on this node (`MergeReport::accounts`
//! `uid_map`/`gid_map`: a new system account whose image id an admin's
//! account already holds) applied to the new layer outside `/etc` (which
//! the merge wrote in node ids already). One pass, by each file's
//! original owner, so two remaps that swap ids stay right; set-id bits and
//! file capabilities, which a `chown` clears, are put back.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};

const CAPABILITY: &str = "security.capability";

/// Changes the owners under `root` (not crossing into other file systems,
/// skipping `skip`) by `uids` and `gids`; returns how many entries
/// changed.
pub fn remap_ids(
    root: &Path,
    skip: &Path,
    uids: &BTreeMap<u32, u32>,
    gids: &BTreeMap<u32, u32>,
) -> Result<u64> {
    if uids.is_empty() && gids.is_empty() {
        return Ok(0);
    }
    let dev = fs::symlink_metadata(root)
        .with_context(|| format!("reading {}", root.display()))?
        .dev();
    let mut changed = 0;
    walk(root, skip, dev, uids, gids, &mut changed)?;
    Ok(changed)
}

fn walk(
    dir: &Path,
    skip: &Path,
    dev: u64,
    uids: &BTreeMap<u32, u32>,
    gids: &BTreeMap<u32, u32>,
    changed: &mut u64,
) -> Result<()> {
    let listing = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for e in listing {
        let path = e
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path == skip {
            continue;
        }
        let meta =
            fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        if meta.dev() != dev {
            continue;
        }
        if remap_one(&path, &meta, uids, gids)? {
            *changed += 1;
        }
        if meta.is_dir() {
            walk(&path, skip, dev, uids, gids, changed)?;
        }
    }
    Ok(())
}

fn remap_one(
    path: &Path,
    meta: &fs::Metadata,
    uids: &BTreeMap<u32, u32>,
    gids: &BTreeMap<u32, u32>,
) -> Result<bool> {
    let uid = uids.get(&meta.uid()).copied().unwrap_or(meta.uid());
    let gid = gids.get(&meta.gid()).copied().unwrap_or(meta.gid());
    if (uid, gid) == (meta.uid(), meta.gid()) {
        return Ok(false);
    }
    let file = meta.is_file();
    let capability = if file {
        xattr::get(path, CAPABILITY)
            .with_context(|| format!("reading the capabilities of {}", path.display()))?
    } else {
        None
    };
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("giving {} to {uid}:{gid}", path.display()))?;
    if !meta.is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .with_context(|| format!("restoring the mode of {}", path.display()))?;
    }
    if let Some(cap) = capability {
        xattr::set(path, CAPABILITY, &cap)
            .with_context(|| format!("restoring the capabilities of {}", path.display()))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_move_in_one_pass_and_set_id_bits_stay() {
        if !hvnode_testutil::require_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        let (a, b, etc) = (
            root.join("usr/bin/a"),
            root.join("usr/bin/b"),
            root.join("etc/c"),
        );
        for (p, owner) in [(&a, 900), (&b, 901), (&etc, 900)] {
            fs::write(p, b"x").unwrap();
            std::os::unix::fs::chown(p, Some(owner), Some(owner)).unwrap();
        }
        fs::set_permissions(&a, fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("a", root.join("usr/bin/l")).unwrap();
        std::os::unix::fs::lchown(root.join("usr/bin/l"), Some(900), Some(900)).unwrap();
        // 900 and 901 swap.
        let map: BTreeMap<u32, u32> = [(900, 901), (901, 900)].into();
        let n = remap_ids(root, &root.join("etc"), &map, &map).unwrap();
        assert_eq!(n, 3);
        let m = |p: &Path| fs::symlink_metadata(p).unwrap();
        assert_eq!((m(&a).uid(), m(&a).gid()), (901, 901));
        assert_eq!(m(&a).mode() & 0o7777, 0o4755);
        assert_eq!((m(&b).uid(), m(&b).gid()), (900, 900));
        assert_eq!(m(&root.join("usr/bin/l")).uid(), 901);
        assert_eq!(m(&etc).uid(), 900, "/etc is the merge's");
        assert_eq!(
            remap_ids(root, &etc, &BTreeMap::new(), &BTreeMap::new()).unwrap(),
            0
        );
    }
}
