//! The `/etc` three-way merge of an image update.
//!
//! An update puts a new image's read-only base under a new writable layer.
//! That layer's `/etc` is the merge of three trees:
//!
//! - **old**: the old image's pristine `/etc` (in the old read-only base);
//! - **current**: the node's `/etc` as the admin left it (the running
//!   writable layer);
//! - **new**: the new image's pristine `/etc` (in the new base).
//!
//! The admin's changes (content, symlink targets, types, deletions, and
//! metadata: mode, owner, extended attributes including SELinux labels)
//! win; what the admin did not touch follows the new image; where both
//! changed a path the admin's version stays, the new image's goes beside it
//! as `NAME.hvnew`, and the report lists the conflict. The account files
//! are merged by entry ([`AccountFile`]). The crate's README has the rules
//! in a table.
//!
//! The merge is split so the rules can be checked without a disk:
//! [`scan`] reads a tree, [`plan()`] decides (pure), [`apply`] writes.
//! [`merge`] does all three.
//!
//! The output starts **empty**: it must be missing or an empty directory,
//! and the merge writes the whole `/etc` there, nothing anywhere else. A
//! failed merge leaves the output empty again; see [`apply`] for crashes.

mod accounts;
mod apply;
mod error;
mod plan;
mod report;
mod scan;
mod tree;

use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

pub use accounts::AccountFile;
pub use apply::{Inputs, apply};
pub use error::{IdKind, MergeError, Side};
pub use plan::{Action, NEW_SUFFIX, Plan, plan};
pub use report::{
    AccountChanges, AccountReport, AddedAccount, Conflict, ConflictKind, IdRemap, Membership,
    MergeReport, RemapReason, Skipped,
};
pub use scan::scan;
pub use tree::{Digest, Dir, IdMaps, Meta, Node, SpecialKind, Tree, Xattrs};

/// Tunables of the merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOptions {
    /// Where a new image user whose uid is taken on the node gets its uid.
    pub system_uids: RangeInclusive<u32>,
    /// Where a new image group whose gid is taken on the node gets its gid.
    pub system_gids: RangeInclusive<u32>,
}

impl Default for MergeOptions {
    /// Debian's dynamically allocated system ids: 100 to 999.
    fn default() -> Self {
        MergeOptions {
            system_uids: 100..=999,
            system_gids: 100..=999,
        }
    }
}

/// Merges `old`, `current` and `new` into `out` with the default options.
pub fn merge(
    old: &Path,
    current: &Path,
    new: &Path,
    out: &Path,
) -> Result<MergeReport, MergeError> {
    merge_with(old, current, new, out, &MergeOptions::default())
}

/// Merges `old`, `current` and `new` into `out`: reads the three trees,
/// plans, writes. The inputs are only read.
pub fn merge_with(
    old: &Path,
    current: &Path,
    new: &Path,
    out: &Path,
    opts: &MergeOptions,
) -> Result<MergeReport, MergeError> {
    let inputs = Inputs { old, current, new };
    check_output(&inputs, out)?;
    let old_tree = scan(old, Side::Old)?;
    let current_tree = scan(current, Side::Current)?;
    let new_tree = scan(new, Side::New)?;
    let plan = plan(&old_tree, &current_tree, &new_tree, opts)?;
    apply(&plan, inputs, out)?;
    Ok(plan.report)
}

/// Refuses an output inside an input (or around one), or one that is not
/// empty, before anything is read.
fn check_output(inputs: &Inputs<'_>, out: &Path) -> Result<(), MergeError> {
    let out_resolved = resolve(out).map_err(|source| MergeError::Write {
        action: "resolving",
        path: out.to_path_buf(),
        source,
    })?;
    for side in [Side::Old, Side::Current, Side::New] {
        let input = match side {
            Side::Old => inputs.old,
            Side::Current => inputs.current,
            Side::New => inputs.new,
        };
        let resolved = input.canonicalize().map_err(|source| MergeError::Read {
            side,
            action: "resolving",
            path: input.to_path_buf(),
            source,
        })?;
        if out_resolved.starts_with(&resolved) || resolved.starts_with(&out_resolved) {
            return Err(MergeError::OutputOverlapsInput {
                out: out.to_path_buf(),
                side,
                input: input.to_path_buf(),
            });
        }
    }
    let not_empty = match std::fs::read_dir(out) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) => e.kind() == io::ErrorKind::NotADirectory,
    };
    if not_empty {
        return Err(MergeError::OutputNotEmpty {
            path: out.to_path_buf(),
        });
    }
    Ok(())
}

/// The absolute, symlink-free form of `path`, which may not exist yet (its
/// parent must).
fn resolve(path: &Path) -> io::Result<PathBuf> {
    match path.canonicalize() {
        Ok(resolved) => Ok(resolved),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let name = path
                .file_name()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            Ok(parent.canonicalize()?.join(name))
        }
        Err(e) => Err(e),
    }
}
