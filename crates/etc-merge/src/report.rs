//! What a merge did, for the update command (JSON) and the console.
//!
//! Every path is relative to `/etc` (the root itself is `.`). Paths are
//! written as UTF-8, lossily if a name is not.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::accounts::AccountFile;

/// The outcome of [`crate::merge`] or [`crate::plan()`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeReport {
    /// Paths both the admin and the new image changed (or one changed and
    /// the other removed): the admin's version is kept; see each entry.
    pub conflicts: Vec<Conflict>,
    /// Paths only the admin changed or added: kept as the admin left them.
    #[serde(serialize_with = "lossy::paths")]
    pub kept_admin: Vec<PathBuf>,
    /// Paths the admin did not change that the new image changed or added:
    /// the new image's version.
    #[serde(serialize_with = "lossy::paths")]
    pub took_new: Vec<PathBuf>,
    /// Paths the admin did not change that the new image no longer has.
    #[serde(serialize_with = "lossy::paths")]
    pub removed_by_image: Vec<PathBuf>,
    /// Paths the admin deleted: they stay deleted (those the new image
    /// changed are also in `conflicts`).
    #[serde(serialize_with = "lossy::paths")]
    pub deleted_kept_deleted: Vec<PathBuf>,
    /// Entries of the node's `/etc` replaced by a fresh `NAME.hvnew`
    /// (normally one left by an earlier update).
    #[serde(serialize_with = "lossy::paths")]
    pub replaced_by_hvnew: Vec<PathBuf>,
    /// Entries not written (fifos, sockets, device nodes).
    pub skipped: Vec<Skipped>,
    /// The entry-level merge of the account files.
    pub accounts: AccountReport,
}

impl MergeReport {
    /// True when the admin should look at something: a file conflict or
    /// an account both sides changed.
    pub fn has_conflicts(&self) -> bool {
        !self.conflicts.is_empty()
            || !self.accounts.users.conflicts.is_empty()
            || !self.accounts.groups.conflicts.is_empty()
    }
}

/// A path both sides changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The path, relative to `/etc`.
    #[serde(serialize_with = "lossy::path")]
    pub path: PathBuf,
    /// What each side did.
    pub kind: ConflictKind,
    /// Where the new image's version was put (`NAME.hvnew`), if anywhere.
    #[serde(serialize_with = "lossy::opt_path")]
    pub new_version: Option<PathBuf>,
}

/// What each side did to a conflicting path. In every case the admin's
/// side is what the merged `/etc` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Both changed it, differently (content, target, type or metadata):
    /// the admin's version is kept, the new image's is beside it.
    BothChanged,
    /// Both added it, differently: as [`ConflictKind::BothChanged`].
    BothAdded,
    /// Both changed a directory's (or a merged account file's) metadata,
    /// differently: the admin's metadata is kept.
    BothChangedMetadata,
    /// The admin deleted it and the new image changed it: it stays deleted.
    AdminDeletedImageChanged,
    /// The admin changed it and the new image removed it: the admin's
    /// version is kept.
    AdminChangedImageRemoved,
}

/// An entry the merge did not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The path it would have had, relative to `/etc`.
    #[serde(serialize_with = "lossy::path")]
    pub path: PathBuf,
    /// Its type ("fifo", "socket", "character device", "block device").
    pub kind: String,
}

/// The entry-level merge of `passwd`, `group`, `shadow` and `gshadow`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReport {
    /// The account files merged by entry (the others, missing on one
    /// side, followed the file rules).
    pub files: Vec<AccountFile>,
    /// Users.
    pub users: AccountChanges,
    /// Groups.
    pub groups: AccountChanges,
    /// Group memberships the new image added to the node's groups.
    pub members_added: Vec<Membership>,
    /// Group memberships the new image removed from the node's groups.
    pub members_removed: Vec<Membership>,
}

impl AccountReport {
    /// The uid translation for the rest of the new layer: a file the new
    /// image owns by key belongs to value on this node. Apply it in one
    /// pass by the file's original owner (two remaps may swap ids). The
    /// merged `/etc` is already translated.
    pub fn uid_map(&self) -> BTreeMap<u32, u32> {
        self.users
            .remaps
            .iter()
            .map(|r| (r.image_id, r.node_id))
            .collect()
    }

    /// The gid translation, as [`AccountReport::uid_map`].
    pub fn gid_map(&self) -> BTreeMap<u32, u32> {
        self.groups
            .remaps
            .iter()
            .map(|r| (r.image_id, r.node_id))
            .collect()
    }
}

/// What happened to the accounts of one kind (users or groups), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChanges {
    /// Accounts the new image brings, with the id they have on the node.
    pub added: Vec<AddedAccount>,
    /// Accounts the admin did not change whose new image entry was taken.
    pub updated_from_image: Vec<String>,
    /// Accounts the admin added or changed, kept.
    pub kept_admin: Vec<String>,
    /// Accounts both sides changed (or both added) differently: the
    /// admin's entry is kept.
    pub conflicts: Vec<String>,
    /// Accounts the admin deleted that the new image still has: they stay
    /// deleted.
    pub deleted_kept_deleted: Vec<String>,
    /// Accounts the new image no longer has: kept, since files may still
    /// be owned by their ids.
    pub kept_dropped_by_image: Vec<String>,
    /// New image ids that are different on this node.
    pub remaps: Vec<IdRemap>,
}

/// An account the new image adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedAccount {
    /// Its name.
    pub name: String,
    /// Its id on the node.
    pub id: u32,
}

/// A new image id that means another id on this node: files the new image
/// gives to `image_id` must be given to `node_id` in the new layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRemap {
    /// The account's name.
    pub name: String,
    /// Its id in the new image.
    pub image_id: u32,
    /// Its id on this node.
    pub node_id: u32,
    /// Why they differ.
    pub reason: RemapReason,
}

/// Why a new image id is remapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemapReason {
    /// A new account whose image id is held by another account of the node
    /// (normally one the admin added): it got a free system id.
    IdTaken,
    /// An account the node already has under another id (the image's
    /// numbering moved, or an earlier update remapped it): the node's id
    /// stays.
    Drift,
}

/// A user in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The group.
    pub group: String,
    /// The user.
    pub user: String,
}

/// Paths serialised as UTF-8 even when a name is not.
mod lossy {
    use std::path::{Path, PathBuf};

    use serde::Serializer;

    fn text(path: &Path) -> String {
        if path.as_os_str().is_empty() {
            ".".to_owned()
        } else {
            path.to_string_lossy().into_owned()
        }
    }

    pub fn path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&text(path))
    }

    pub fn opt_path<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match path {
            Some(path) => s.serialize_some(&text(path)),
            None => s.serialize_none(),
        }
    }

    pub fn paths<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(paths.iter().map(|p| text(p)))
    }
}
