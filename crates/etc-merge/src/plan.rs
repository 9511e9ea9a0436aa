//! The rules: from three trees to the list of entries the merged `/etc`
//! holds. Pure: nothing here touches a disk.
//!
//! Each path is looked at with its three versions: `o` (old image), `c`
//! (the node), `n` (new image); a missing path is a version too. Two
//! versions are equal when type, content (digest, symlink target) and
//! metadata (mode, owner, xattrs) are equal, and for a directory its whole
//! subtree as well.
//!
//! - Where the node and the new image both have a directory, it is merged:
//!   its metadata by the rule below, its entries one by one.
//! - Anywhere else the path is decided as a whole (a file, a symlink, a
//!   directory the other side removed or replaced):
//!   - `c == o`: the admin did not touch it, the new image's version wins
//!     (or its absence);
//!   - `n == o`: only the admin changed it, the admin's version wins (or
//!     its absence: a deletion stays);
//!   - `c == n`: both made the same change;
//!   - otherwise both changed it: the admin's version wins; when both have
//!     it, the new image's goes beside it as `NAME.hvnew`; a conflict is
//!     reported. A path the admin deleted stays deleted. The account
//!     tools' backups (`shadow-` and its kind) are the node's: its copy
//!     wins with no conflict and no `.hvnew`.

use std::collections::{BTreeSet, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::MergeOptions;
use crate::accounts::{AccountFile, AccountMerge, merge_accounts};
use crate::error::{MergeError, Side};
use crate::report::{Conflict, ConflictKind, MergeReport, Skipped};
use crate::tree::{Digest, Dir, Meta, Node, Tree};

/// The suffix of the new image's version of a path both sides changed.
pub const NEW_SUFFIX: &str = ".hvnew";

/// One entry of the merged `/etc`. Paths are relative to it; the root is
/// the empty path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A directory (its metadata is set once its entries are written).
    Dir {
        /// Where.
        path: PathBuf,
        /// Its metadata.
        meta: Meta,
    },
    /// A regular file copied from an input tree.
    Copy {
        /// Where.
        path: PathBuf,
        /// Which tree it comes from (the node's or the new image's).
        from: Side,
        /// Its path in that tree.
        src: PathBuf,
        /// The content read when planning; the copy checks it.
        digest: Digest,
        /// Its metadata (owners already in the node's ids).
        meta: Meta,
    },
    /// A symbolic link.
    Symlink {
        /// Where.
        path: PathBuf,
        /// Its target.
        target: PathBuf,
        /// Its metadata (owner and xattrs).
        meta: Meta,
    },
    /// A file whose content the merge made (a merged account file).
    Write {
        /// Where.
        path: PathBuf,
        /// Its content.
        content: Vec<u8>,
        /// Its metadata.
        meta: Meta,
    },
}

impl Action {
    /// Where the entry goes, relative to the merged `/etc`.
    pub fn path(&self) -> &Path {
        match self {
            Action::Dir { path, .. }
            | Action::Copy { path, .. }
            | Action::Symlink { path, .. }
            | Action::Write { path, .. } => path,
        }
    }
}

/// What the merged `/etc` holds, and the report of how it was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every entry, each directory before its entries.
    pub actions: Vec<Action>,
    /// What was decided.
    pub report: MergeReport,
}

impl Plan {
    /// The merged `/etc` as a tree: what [`crate::apply`] writes.
    pub fn to_tree(&self) -> Tree {
        let mut tree = Tree::default();
        for action in &self.actions {
            match action {
                Action::Dir { path, meta } if path.as_os_str().is_empty() => {
                    tree.root.meta = meta.clone();
                }
                Action::Dir { path, meta } => tree.insert(path, Node::dir(meta.clone())),
                Action::Copy {
                    path, digest, meta, ..
                } => tree.insert(
                    path,
                    Node::File {
                        meta: meta.clone(),
                        digest: *digest,
                    },
                ),
                Action::Symlink { path, target, meta } => {
                    tree.insert(path, Node::symlink(target.clone(), meta.clone()))
                }
                Action::Write {
                    path,
                    content,
                    meta,
                } => tree.insert_file(path, content, meta.clone()),
            }
        }
        tree
    }
}

/// Decides the merged `/etc` of `old` (the old image's), `current` (the
/// node's) and `new` (the new image's). Fails only when a new account
/// finds no free id ([`MergeError::NoFreeId`]).
pub fn plan(
    old: &Tree,
    current: &Tree,
    new: &Tree,
    opts: &MergeOptions,
) -> Result<Plan, MergeError> {
    let accounts = merge_accounts(old, current, new, opts)?;
    // Compare and write everything in the node's ids.
    let mut old = old.clone();
    old.map_ids(&accounts.old_ids);
    let mut new = new.clone();
    new.map_ids(&accounts.new_ids);
    let mut planner = Planner {
        actions: Vec::new(),
        report: MergeReport::default(),
        claimed: HashSet::new(),
        accounts,
    };
    planner.merge_dir(Path::new(""), Some(&old.root), &current.root, &new.root);
    planner.report.accounts = std::mem::take(&mut planner.accounts.report);
    Ok(Plan {
        actions: planner.actions,
        report: planner.report,
    })
}

/// The three-way rule on metadata alone; `o` is `None` when the old image
/// had no such directory.
fn merge_meta(o: Option<&Meta>, c: &Meta, n: &Meta) -> (Meta, MetaOutcome) {
    if Some(c) == o {
        let outcome = if n == c {
            MetaOutcome::Same
        } else {
            MetaOutcome::TookNew
        };
        (n.clone(), outcome)
    } else if Some(n) == o {
        (c.clone(), MetaOutcome::KeptAdmin)
    } else if c == n {
        (c.clone(), MetaOutcome::Same)
    } else {
        (c.clone(), MetaOutcome::Conflict)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetaOutcome {
    Same,
    TookNew,
    KeptAdmin,
    Conflict,
}

struct Planner {
    actions: Vec<Action>,
    report: MergeReport,
    /// The `NAME.hvnew` paths written so far; an entry of that name met
    /// later is replaced.
    claimed: HashSet<PathBuf>,
    accounts: AccountMerge,
}

/// The path as reports show it (the root is `.`).
fn shown(path: &Path) -> PathBuf {
    if path.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        path.to_path_buf()
    }
}

/// `passwd-`, `group-`, `shadow-` and `gshadow-` at the top: the copies the
/// account tools keep of each file as it was before their last change.
/// They belong to the node: where both sides changed one, the node's copy
/// stays and the image's is not put beside it. Otherwise every update
/// built on another day would report a conflict on `shadow-` (its system
/// accounts' "last changed" day is the build's).
fn is_account_backup(path: &Path) -> bool {
    path.parent() == Some(Path::new(""))
        && path
            .to_str()
            .and_then(|name| name.strip_suffix('-'))
            .is_some_and(|name| AccountFile::from_name(OsStr::new(name)).is_some())
}

fn with_suffix(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_default();
    name.push(NEW_SUFFIX);
    path.with_file_name(name)
}

impl Planner {
    /// A directory both the node and the new image have.
    fn merge_dir(&mut self, path: &Path, o: Option<&Dir>, c: &Dir, n: &Dir) {
        let (meta, outcome) = merge_meta(o.map(|o| &o.meta), &c.meta, &n.meta);
        self.record_meta(path, outcome);
        self.actions.push(Action::Dir {
            path: path.to_path_buf(),
            meta,
        });
        let names: BTreeSet<&OsString> = c
            .entries
            .keys()
            .chain(n.entries.keys())
            .chain(o.into_iter().flat_map(|o| o.entries.keys()))
            .collect();
        for name in names {
            let child = path.join(name);
            let (oc, cc, nc) = (
                o.and_then(|o| o.entries.get(name)),
                c.entries.get(name),
                n.entries.get(name),
            );
            if self.claimed.contains(&child) {
                if cc.is_some() {
                    self.report.replaced_by_hvnew.push(child);
                }
                continue;
            }
            self.merge_entry(&child, oc, cc, nc);
        }
    }

    fn record_meta(&mut self, path: &Path, outcome: MetaOutcome) {
        match outcome {
            MetaOutcome::Same => {}
            MetaOutcome::TookNew => self.report.took_new.push(shown(path)),
            MetaOutcome::KeptAdmin => self.report.kept_admin.push(shown(path)),
            MetaOutcome::Conflict => self.report.conflicts.push(Conflict {
                path: shown(path),
                kind: ConflictKind::BothChangedMetadata,
                new_version: None,
            }),
        }
    }

    fn merge_entry(&mut self, path: &Path, o: Option<&Node>, c: Option<&Node>, n: Option<&Node>) {
        if let (Some(Node::Dir(cd)), Some(Node::Dir(nd))) = (c, n) {
            self.merge_dir(path, o.and_then(Node::as_dir), cd, nd);
            return;
        }
        if self.merge_account_file(path, o, c, n) {
            return;
        }
        if c == o {
            match n {
                Some(n) => {
                    if Some(n) != o {
                        self.report.took_new.push(path.to_path_buf());
                    }
                    self.emit(path, n, Side::New, path);
                }
                None if o.is_some() => self.report.removed_by_image.push(path.to_path_buf()),
                None => {}
            }
        } else if n == o {
            match c {
                Some(c) => {
                    self.report.kept_admin.push(path.to_path_buf());
                    self.emit(path, c, Side::Current, path);
                }
                None => self.report.deleted_kept_deleted.push(path.to_path_buf()),
            }
        } else if c == n {
            match c {
                Some(c) => self.emit(path, c, Side::Current, path),
                None => self.report.removed_by_image.push(path.to_path_buf()),
            }
        } else if is_account_backup(path) {
            // Both changed the tools' copy of an account file: the node's
            // stays, silently (see `is_account_backup`).
            match c {
                Some(c) => {
                    self.report.kept_admin.push(path.to_path_buf());
                    self.emit(path, c, Side::Current, path);
                }
                None => self.report.deleted_kept_deleted.push(path.to_path_buf()),
            }
        } else {
            self.conflict(path, o, c, n);
        }
    }

    /// Both sides changed `path`, differently.
    fn conflict(&mut self, path: &Path, o: Option<&Node>, c: Option<&Node>, n: Option<&Node>) {
        let (kind, new_version) = match (c, n) {
            (Some(c), Some(n)) => {
                self.emit(path, c, Side::Current, path);
                let beside = with_suffix(path);
                self.emit(&beside, n, Side::New, path);
                self.claimed.insert(beside.clone());
                let kind = if o.is_some() {
                    ConflictKind::BothChanged
                } else {
                    ConflictKind::BothAdded
                };
                (kind, Some(beside))
            }
            (Some(c), None) => {
                self.emit(path, c, Side::Current, path);
                (ConflictKind::AdminChangedImageRemoved, None)
            }
            (None, _) => {
                self.report.deleted_kept_deleted.push(path.to_path_buf());
                (ConflictKind::AdminDeletedImageChanged, None)
            }
        };
        self.report.conflicts.push(Conflict {
            path: path.to_path_buf(),
            kind,
            new_version,
        });
    }

    /// `passwd`, `group`, `shadow`, `gshadow` at the top, when both the node
    /// and the new image have them as regular files: merged by entry.
    fn merge_account_file(
        &mut self,
        path: &Path,
        o: Option<&Node>,
        c: Option<&Node>,
        n: Option<&Node>,
    ) -> bool {
        let Some(file) = (path.parent() == Some(Path::new("")))
            .then(|| path.file_name().and_then(AccountFile::from_name))
            .flatten()
        else {
            return false;
        };
        let (Some(Node::File { meta: cm, .. }), Some(Node::File { meta: nm, .. })) = (c, n) else {
            return false;
        };
        let Some(content) = self.accounts.texts.get(&file).cloned() else {
            return false;
        };
        let om = match o {
            Some(Node::File { meta, .. }) => Some(meta),
            _ => None,
        };
        let (meta, outcome) = merge_meta(om, cm, nm);
        self.record_meta(path, outcome);
        self.actions.push(Action::Write {
            path: path.to_path_buf(),
            content,
            meta,
        });
        true
    }

    /// Writes `node` (a whole subtree) at `path`, from `src` in `side`.
    fn emit(&mut self, path: &Path, node: &Node, side: Side, src: &Path) {
        match node {
            Node::File { meta, digest } => self.actions.push(Action::Copy {
                path: path.to_path_buf(),
                from: side,
                src: src.to_path_buf(),
                digest: *digest,
                meta: meta.clone(),
            }),
            Node::Symlink { meta, target } => self.actions.push(Action::Symlink {
                path: path.to_path_buf(),
                target: target.clone(),
                meta: meta.clone(),
            }),
            Node::Dir(dir) => {
                self.actions.push(Action::Dir {
                    path: path.to_path_buf(),
                    meta: dir.meta.clone(),
                });
                for (name, child) in &dir.entries {
                    self.emit(&path.join(name), child, side, &src.join(name));
                }
            }
            Node::Special { .. } => self.report.skipped.push(Skipped {
                path: path.to_path_buf(),
                kind: node.type_name().to_owned(),
            }),
        }
    }
}
