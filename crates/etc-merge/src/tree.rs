//! The in-memory model of an `/etc` tree: exactly what the merge rules
//! compare, and nothing else (no timestamps, no inode numbers).
//!
//! A [`Tree`] is either read from disk ([`crate::scan`]) or built in memory
//! (tests, tools), so the rules of [`crate::plan`] can be checked without a
//! disk.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::accounts::AccountFile;

/// Extended attributes by name, every namespace (`user.*`, `trusted.*`,
/// `security.*` including the SELinux label `security.selinux`, and the
/// POSIX ACLs `system.posix_acl_*`).
pub type Xattrs = BTreeMap<OsString, Vec<u8>>;

/// The metadata the merge compares and carries: "changed" includes a
/// change of any of these, except the SELinux user of a label (see
/// [`SELINUX_XATTR`]).
#[derive(Debug, Clone, Eq, Default)]
pub struct Meta {
    /// Permission bits including set-id and sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owning user id.
    pub uid: u32,
    /// Owning group id.
    pub gid: u32,
    /// Extended attributes.
    pub xattrs: Xattrs,
}

/// The SELinux label's extended attribute.
///
/// Two labels that differ only in their SELinux user (`unconfined_u` on
/// what an admin's shell made, `system_u` on what the image ships) are
/// equal to the merge: the user says where a file was made, not what may
/// use it, and the update relabels `/etc` by the new policy after the merge
/// anyway. A change of role, type or level is a change.
pub const SELINUX_XATTR: &str = "security.selinux";

/// A label without its SELinux user (and without the terminating NUL the
/// kernel may keep).
fn label_sans_user(value: &[u8]) -> &[u8] {
    let value = value.strip_suffix(b"\0").unwrap_or(value);
    match value.iter().position(|&b| b == b':') {
        Some(i) => &value[i..],
        None => value,
    }
}

impl PartialEq for Meta {
    fn eq(&self, other: &Meta) -> bool {
        self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
            && self.xattrs.len() == other.xattrs.len()
            && self
                .xattrs
                .iter()
                .zip(&other.xattrs)
                .all(|((an, av), (bn, bv))| {
                    an == bn
                        && if an == SELINUX_XATTR {
                            label_sans_user(av) == label_sans_user(bv)
                        } else {
                            av == bv
                        }
                })
    }
}

impl Meta {
    /// `mode`, owned by root:root, without extended attributes.
    pub fn new(mode: u32) -> Self {
        Meta {
            mode: mode & 0o7777,
            ..Meta::default()
        }
    }

    /// The same metadata with another owner.
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// The same metadata with one more extended attribute.
    pub fn xattr(mut self, name: impl Into<OsString>, value: impl Into<Vec<u8>>) -> Self {
        self.xattrs.insert(name.into(), value.into());
        self
    }

    fn map_ids(&mut self, ids: &IdMaps) {
        if let Some(uid) = ids.uids.get(&self.uid) {
            self.uid = *uid;
        }
        if let Some(gid) = ids.gids.get(&self.gid) {
            self.gid = *gid;
        }
    }
}

/// SHA-256 of a regular file's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}

/// A file type the merge does not recreate (see [`Node::Special`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialKind {
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A character device with its device number.
    CharDevice(u64),
    /// A block device with its device number.
    BlockDevice(u64),
}

/// A directory: its own metadata and its entries by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dir {
    /// The directory's own metadata.
    pub meta: Meta,
    /// Its entries, sorted by name.
    pub entries: BTreeMap<OsString, Node>,
}

/// One entry of a tree. Two nodes are equal when their type, content
/// (digest, link target, or for a directory its whole subtree) and
/// metadata are equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File {
        /// Its metadata.
        meta: Meta,
        /// Its content's digest.
        digest: Digest,
    },
    /// A symbolic link, compared by its target.
    Symlink {
        /// Its metadata (owner and xattrs; the mode of a link means nothing).
        meta: Meta,
        /// The target, as stored in the link.
        target: PathBuf,
    },
    /// A directory.
    Dir(Dir),
    /// A fifo, socket or device node: compared like the others but never
    /// written; the report lists it under `skipped`.
    Special {
        /// Its metadata.
        meta: Meta,
        /// What it is.
        kind: SpecialKind,
    },
}

impl Node {
    /// A regular file holding `content`.
    pub fn file(content: &[u8], meta: Meta) -> Self {
        Node::File {
            meta,
            digest: Digest::of(content),
        }
    }

    /// A symbolic link to `target`.
    pub fn symlink(target: impl Into<PathBuf>, meta: Meta) -> Self {
        Node::Symlink {
            meta,
            target: target.into(),
        }
    }

    /// An empty directory.
    pub fn dir(meta: Meta) -> Self {
        Node::Dir(Dir {
            meta,
            entries: BTreeMap::new(),
        })
    }

    /// The node's own metadata.
    pub fn meta(&self) -> &Meta {
        match self {
            Node::File { meta, .. } | Node::Symlink { meta, .. } | Node::Special { meta, .. } => {
                meta
            }
            Node::Dir(dir) => &dir.meta,
        }
    }

    /// The directory, when this node is one.
    pub fn as_dir(&self) -> Option<&Dir> {
        match self {
            Node::Dir(dir) => Some(dir),
            _ => None,
        }
    }

    /// A short name of the node's type, for reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::File { .. } => "file",
            Node::Symlink { .. } => "symlink",
            Node::Dir(_) => "directory",
            Node::Special { kind, .. } => match kind {
                SpecialKind::Fifo => "fifo",
                SpecialKind::Socket => "socket",
                SpecialKind::CharDevice(_) => "character device",
                SpecialKind::BlockDevice(_) => "block device",
            },
        }
    }

    fn map_ids(&mut self, ids: &IdMaps) {
        match self {
            Node::File { meta, .. } | Node::Symlink { meta, .. } | Node::Special { meta, .. } => {
                meta.map_ids(ids)
            }
            Node::Dir(dir) => dir.map_ids(ids),
        }
    }
}

impl Dir {
    fn map_ids(&mut self, ids: &IdMaps) {
        self.meta.map_ids(ids);
        for node in self.entries.values_mut() {
            node.map_ids(ids);
        }
    }
}

/// Owner translations from one id space into another (ids absent from a
/// map stay as they are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMaps {
    /// User ids.
    pub uids: HashMap<u32, u32>,
    /// Group ids.
    pub gids: HashMap<u32, u32>,
}

impl IdMaps {
    /// True when nothing is translated.
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }
}

/// A whole `/etc` tree: the root directory, plus the text of the account
/// files (`passwd`, `group`, `shadow`, `gshadow`) at its top, which the
/// merge reads by entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// The root directory (`/etc` itself).
    pub root: Dir,
    texts: BTreeMap<AccountFile, Vec<u8>>,
}

impl Tree {
    /// An empty tree whose root has `meta`.
    pub fn new(meta: Meta) -> Self {
        Tree {
            root: Dir {
                meta,
                entries: BTreeMap::new(),
            },
            texts: BTreeMap::new(),
        }
    }

    /// Inserts `node` at `path` (relative; `.`, `..` and a leading `/` are
    /// ignored), replacing what was there. Missing parents are created as
    /// directories with mode 0755 owned by root; a parent that is not a
    /// directory is replaced by one.
    pub fn insert(&mut self, path: impl AsRef<Path>, node: Node) {
        let names = normal_names(path.as_ref());
        let Some((last, parents)) = names.split_last() else {
            if let Node::Dir(dir) = node {
                self.root = dir;
                self.texts.clear();
            }
            return;
        };
        if parents.is_empty() {
            if let Some(file) = AccountFile::from_name(last) {
                self.texts.remove(&file);
            }
        }
        let mut dir = &mut self.root;
        for name in parents {
            let entry = dir
                .entries
                .entry(name.to_os_string())
                .or_insert_with(|| Node::dir(Meta::new(0o755)));
            if !matches!(entry, Node::Dir(_)) {
                *entry = Node::dir(Meta::new(0o755));
            }
            let Node::Dir(next) = entry else {
                return;
            };
            dir = next;
        }
        dir.entries.insert(last.to_os_string(), node);
    }

    /// Inserts a regular file holding `content`; at the top of the tree,
    /// the account files also keep their text.
    pub fn insert_file(&mut self, path: impl AsRef<Path>, content: &[u8], meta: Meta) {
        let path = path.as_ref();
        self.insert(path, Node::file(content, meta));
        if let [name] = normal_names(path).as_slice() {
            if let Some(file) = AccountFile::from_name(name) {
                self.texts.insert(file, content.to_vec());
            }
        }
    }

    /// Builder form of [`Tree::insert_file`].
    pub fn with_file(mut self, path: impl AsRef<Path>, content: &[u8], meta: Meta) -> Self {
        self.insert_file(path, content, meta);
        self
    }

    /// Builder form of [`Tree::insert`].
    pub fn with(mut self, path: impl AsRef<Path>, node: Node) -> Self {
        self.insert(path, node);
        self
    }

    /// The node at `path`; the root for an empty path.
    pub fn get(&self, path: impl AsRef<Path>) -> Option<&Node> {
        let names = normal_names(path.as_ref());
        let (last, parents) = names.split_last()?;
        let mut dir = &self.root;
        for name in parents {
            dir = dir.entries.get(*name)?.as_dir()?;
        }
        dir.entries.get(*last)
    }

    /// Removes and returns the node at `path`.
    pub fn remove(&mut self, path: impl AsRef<Path>) -> Option<Node> {
        let names = normal_names(path.as_ref());
        let (last, parents) = names.split_last()?;
        if parents.is_empty() {
            if let Some(file) = AccountFile::from_name(last) {
                self.texts.remove(&file);
            }
        }
        let mut dir = &mut self.root;
        for name in parents {
            match dir.entries.get_mut(*name)? {
                Node::Dir(next) => dir = next,
                _ => return None,
            }
        }
        dir.entries.remove(*last)
    }

    /// Builder form of [`Tree::remove`].
    pub fn without(mut self, path: impl AsRef<Path>) -> Self {
        self.remove(path);
        self
    }

    /// The text of an account file at the top of the tree, when it is a
    /// regular file whose text was read.
    pub fn account_text(&self, file: AccountFile) -> Option<&[u8]> {
        let text = self.texts.get(&file)?;
        match self.root.entries.get(OsStr::new(file.name())) {
            Some(Node::File { digest, .. }) if *digest == Digest::of(text) => Some(text),
            _ => None,
        }
    }

    /// Records the text of an account file (the scanner's path).
    pub(crate) fn set_account_text(&mut self, file: AccountFile, text: Vec<u8>) {
        self.texts.insert(file, text);
    }

    /// Translates every owner through `ids`.
    pub fn map_ids(&mut self, ids: &IdMaps) {
        if !ids.is_empty() {
            self.root.map_ids(ids);
        }
    }
}

fn normal_names(path: &Path) -> Vec<&OsStr> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect()
}
