//! Reading a tree from disk into a [`Tree`], without following symlinks.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::accounts::AccountFile;
use crate::error::{MergeError, Side};
use crate::tree::{Digest, Dir, Meta, Node, SpecialKind, Tree, Xattrs};

/// Reads the tree under `root` (a directory; `root` itself may be reached
/// through a symlink, nothing below it is followed).
pub fn scan(root: &Path, side: Side) -> Result<Tree, MergeError> {
    let err = |action: &'static str| {
        move |source: io::Error| MergeError::Read {
            side,
            action,
            path: root.to_path_buf(),
            source,
        }
    };
    let md = fs::metadata(root).map_err(err("reading the metadata of"))?;
    if !md.is_dir() {
        return Err(err("opening")(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let mut tree = Tree::new(read_meta(root, &md, side)?);
    let mut scanner = Scanner {
        side,
        texts: BTreeMap::new(),
    };
    tree.root.entries = scanner.entries(root, true)?;
    for (file, text) in scanner.texts {
        tree.set_account_text(file, text);
    }
    Ok(tree)
}

struct Scanner {
    side: Side,
    texts: BTreeMap<AccountFile, Vec<u8>>,
}

impl Scanner {
    fn err(&self, action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MergeError {
        let (side, path) = (self.side, path.to_path_buf());
        move |source| MergeError::Read {
            side,
            action,
            path,
            source,
        }
    }

    fn entries(&mut self, dir: &Path, top: bool) -> Result<BTreeMap<OsString, Node>, MergeError> {
        let mut entries = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(self.err("listing", dir))? {
            let entry = entry.map_err(self.err("listing", dir))?;
            let name = entry.file_name();
            let path = entry.path();
            let account = if top {
                AccountFile::from_name(&name)
            } else {
                None
            };
            let node = self.node(&path, account)?;
            entries.insert(name, node);
        }
        Ok(entries)
    }

    fn node(&mut self, path: &Path, account: Option<AccountFile>) -> Result<Node, MergeError> {
        let md = fs::symlink_metadata(path).map_err(self.err("reading the metadata of", path))?;
        let meta = read_meta(path, &md, self.side)?;
        let ft = md.file_type();
        let node = if ft.is_dir() {
            Node::Dir(Dir {
                meta,
                entries: self.entries(path, false)?,
            })
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(self.err("reading the symlink", path))?;
            Node::Symlink { meta, target }
        } else if ft.is_file() {
            let digest = match account {
                Some(file) => {
                    let text = fs::read(path).map_err(self.err("reading", path))?;
                    let digest = Digest::of(&text);
                    self.texts.insert(file, text);
                    digest
                }
                None => {
                    let file = File::open(path).map_err(self.err("opening", path))?;
                    let opened = file.metadata().map_err(self.err("opening", path))?;
                    if (opened.dev(), opened.ino()) != (md.dev(), md.ino()) {
                        return Err(MergeError::SourceChanged {
                            side: self.side,
                            path: path.to_path_buf(),
                        });
                    }
                    hash(file).map_err(self.err("hashing", path))?
                }
            };
            Node::File { meta, digest }
        } else {
            let kind = if ft.is_fifo() {
                SpecialKind::Fifo
            } else if ft.is_socket() {
                SpecialKind::Socket
            } else if ft.is_char_device() {
                SpecialKind::CharDevice(md.rdev())
            } else {
                SpecialKind::BlockDevice(md.rdev())
            };
            Node::Special { meta, kind }
        };
        Ok(node)
    }
}

/// SHA-256 of everything `reader` yields.
pub(crate) fn hash(mut reader: impl Read) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher)?;
    Ok(Digest(hasher.finalize().into()))
}

fn read_meta(path: &Path, md: &fs::Metadata, side: Side) -> Result<Meta, MergeError> {
    let xattrs = read_xattrs(path).map_err(|source| MergeError::Read {
        side,
        action: "reading the extended attributes of",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Meta {
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        xattrs,
    })
}

/// Every extended attribute of `path` itself (not of a symlink's target);
/// none on a filesystem without them.
pub(crate) fn read_xattrs(path: &Path) -> io::Result<Xattrs> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if unsupported(&e) => return Ok(Xattrs::new()),
        Err(e) => return Err(e),
    };
    let mut xattrs = Xattrs::new();
    for name in names {
        // An attribute removed since the listing is simply not there.
        if let Some(value) = xattr::get(path, &name)? {
            xattrs.insert(name, value);
        }
    }
    Ok(xattrs)
}

/// The filesystem (or the kernel) has no extended attributes.
pub(crate) fn unsupported(e: &io::Error) -> bool {
    const EOPNOTSUPP: i32 = 95;
    e.kind() == io::ErrorKind::Unsupported || e.raw_os_error() == Some(EOPNOTSUPP)
}
