//! Why a merge failed. Every variant names the path and what was being
//! done, and says what to do next; callers branch on the variant.

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which of the three input trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The old image's pristine `/etc` (the old read-only base).
    Old,
    /// The node's `/etc` as the admin left it (the running writable layer).
    Current,
    /// The new image's pristine `/etc` (the new base).
    New,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Old => "old image's",
            Side::Current => "node's current",
            Side::New => "new image's",
        })
    }
}

/// A user id or a group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// A user id.
    Uid,
    /// A group id.
    Gid,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Uid => "uid",
            IdKind::Gid => "gid",
        })
    }
}

/// A failed merge. When [`crate::merge`] returns one, the output directory
/// holds nothing of the merge (see [`MergeError::Cleanup`] for the
/// exception) and the three inputs are untouched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// An input tree could not be read.
    #[error(
        "{action} {} in the {side} /etc: {source}; check that this tree is mounted and readable, then run the update again",
        path.display()
    )]
    Read {
        /// Which tree.
        side: Side,
        /// What was being done ("listing", "hashing", "reading xattrs of"…).
        action: &'static str,
        /// The path, in that tree.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The merged `/etc` could not be written.
    #[error(
        "{action} {} in the merged /etc: {source}; check the new layer's free space and permissions, then run the update again (the merge starts over)",
        path.display()
    )]
    Write {
        /// What was being done ("creating", "copying into", "setting the owner of"…).
        action: &'static str,
        /// The path written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The output exists and is not an empty directory.
    #[error(
        "the output {} is not an empty directory; the merge builds a fresh /etc there: remove it, or pass an empty or missing directory, then run the update again",
        path.display()
    )]
    OutputNotEmpty {
        /// The output directory.
        path: PathBuf,
    },
    /// The output lies inside an input tree, or holds one.
    #[error(
        "the output {} overlaps the {side} /etc at {}; merge into a directory outside the three input trees",
        out.display(),
        input.display()
    )]
    OutputOverlapsInput {
        /// The output directory.
        out: PathBuf,
        /// Which input.
        side: Side,
        /// The input's directory.
        input: PathBuf,
    },
    /// A file changed between reading and copying it (someone edited the
    /// node's `/etc` during the merge).
    #[error(
        "{} in the {side} /etc changed while the merge was copying it; run the update again once nothing edits /etc",
        path.display()
    )]
    SourceChanged {
        /// Which tree.
        side: Side,
        /// The path, in that tree.
        path: PathBuf,
    },
    /// A new image account needs an id and the system range is full.
    #[error(
        "no free {kind} in {min}..={max} for the new image's account {name} (its id {image_id} is taken on this node); free an id in that range or widen the system range, then run the update again"
    )]
    NoFreeId {
        /// User or group id.
        kind: IdKind,
        /// The new account's name.
        name: String,
        /// Its id in the new image.
        image_id: u32,
        /// The system range searched.
        min: u32,
        /// The system range searched.
        max: u32,
    },
    /// The merge failed and removing its partial output failed too.
    #[error(
        "{merge}; then removing the partial output at {} failed: {cleanup}; remove it by hand before the next update",
        path.display()
    )]
    Cleanup {
        /// Why the merge failed.
        merge: Box<MergeError>,
        /// The output directory.
        path: PathBuf,
        /// Why the cleanup failed.
        cleanup: io::Error,
    },
}
