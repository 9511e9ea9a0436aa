//! Small file helpers: atomic replacement and reading with context, and [`Dir`]
//! for directories a user other than root may change.

use std::fs::{self, File};
use std::io::{ErrorKind as IoKind, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::UnlinkatFlags;

use crate::{Error, Result};

/// Reads `path` as UTF-8 text; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

/// Creates `dir` and its parents.
pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))
}

/// Replaces `path` with `contents` durably, with `mode` and optionally
/// `owner` (uid, gid), through the workspace's one [`fsutil::write_atomic`].
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let opts = fsutil::Options {
        mode,
        owner,
        create_parents: true,
    };
    fsutil::write_atomic(path, contents, opts).map_err(|e| Error::io(e.step, &e.path, e.source))
}

/// How many random temporary names [`Dir::write_atomic`] tries before giving up.
const TEMP_ATTEMPTS: usize = 16;

/// A directory held open by its descriptor. Its entries are reached through that
/// descriptor (`openat`, `mkdirat`, `renameat`, `unlinkat`), never by a path that is
/// looked up again, and a symbolic link among them is never followed: for
/// directories a user other than root may write to (a home's `.ssh`), where any
/// name may become a symbolic link at any moment and root must not write, change
/// the owner of or read a file elsewhere because of it.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: File,
    path: PathBuf,
}

impl Dir {
    /// Opens the directory `path`. Symbolic links along `path` are followed: it is
    /// a path the administrator chose (a home from the passwd file) in directories
    /// only root may change; what lies below it is reached through [`Dir::open_dir`].
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("opening directory", path, e.into()))?;
        Ok(Self {
            fd: File::from(fd),
            path: path.to_path_buf(),
        })
    }

    /// The path this directory was opened by, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The owner, mode and kind of this directory (`fstat`).
    pub(crate) fn metadata(&self) -> Result<fs::Metadata> {
        self.fd
            .metadata()
            .map_err(|e| Error::io("reading the attributes of", &self.path, e))
    }

    /// Gives this directory to `owner` (uid, gid) and sets its mode (`fchown`,
    /// `fchmod`).
    pub(crate) fn set_owner_and_mode(&self, owner: (u32, u32), mode: u32) -> Result<()> {
        std::os::unix::fs::fchown(&self.fd, Some(owner.0), Some(owner.1))
            .map_err(|e| Error::io("changing the owner of", &self.path, e))?;
        self.fd
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("setting the mode of", &self.path, e))
    }

    /// Creates the directory `name` in this one with `mode` (less the umask);
    /// `Ok(false)` when something of that name already exists, whatever it is.
    pub(crate) fn create_dir(&self, name: &str, mode: u32) -> Result<bool> {
        match nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(mode)) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => Err(Error::io(
                "creating directory",
                &self.path.join(name),
                e.into(),
            )),
        }
    }

    /// Opens the directory `name` in this one; refuses a symbolic link or anything
    /// other than a directory with [`Error::UnsafePath`], saying it was refused
    /// while doing `action`.
    pub(crate) fn open_dir(&self, name: &str, action: &'static str) -> Result<Dir> {
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Dir {
                fd: File::from(fd),
                path,
            }),
            Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                Err(self.refusal(name, action, "a directory", e))
            }
            Err(e) => Err(Error::io("opening directory", &path, e.into())),
        }
    }

    /// Reads the regular file `name` in this directory as UTF-8 text; `Ok(None)`
    /// when it does not exist. Refuses with [`Error::UnsafePath`] a symbolic link,
    /// anything other than a regular file, and a file with more than one hard link
    /// (its contents may be another file's).
    pub(crate) fn read_optional(&self, name: &str, action: &'static str) -> Result<Option<String>> {
        let path = self.path.join(name);
        // O_NONBLOCK: a named pipe planted here must not hang the read; it is
        // refused below like any other file that is not a regular one.
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let mut file = match nix::fcntl::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::ENOENT) => return Ok(None),
            Err(e @ Errno::ELOOP) => return Err(self.refusal(name, action, "a regular file", e)),
            Err(e) => return Err(Error::io("opening", &path, e.into())),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io("reading the attributes of", &path, e))?;
        if !meta.file_type().is_file() {
            let found = kind_of(meta.mode()).unwrap_or("not a regular file");
            return Err(Error::UnsafePath {
                action,
                path: path.clone(),
                problem: format!("it is {found}, not a regular file"),
                remedy: format!("move {} away and register again", path.display()),
            });
        }
        if meta.nlink() > 1 {
            return Err(Error::UnsafePath {
                action,
                path: path.clone(),
                problem: format!(
                    "it has {} hard links, so its contents may belong to another file",
                    meta.nlink()
                ),
                remedy: format!(
                    "check what else links to it (find / -xdev -samefile {0}), replace {0} \
                     with a copy of its own and register again",
                    path.display()
                ),
            });
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| Error::io("reading", &path, e))?;
        Ok(Some(text))
    }

    /// Replaces `name` in this directory with `contents` durably, with `mode` and
    /// `owner` (uid, gid): the contents go to a new file of a random name, created
    /// exclusively and without following symbolic links, whose owner and mode are
    /// set through its descriptor; it is flushed, renamed over `name` and the
    /// directory flushed. On failure the new file is removed.
    pub(crate) fn write_atomic(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> Result<()> {
        let (tmp_name, mut file) = self.create_temp(name)?;
        let tmp = self.path.join(&tmp_name);
        let target = self.path.join(name);
        let result = (|| {
            file.write_all(contents)
                .map_err(|e| Error::io("writing", &tmp, e))?;
            std::os::unix::fs::fchown(&file, Some(owner.0), Some(owner.1))
                .map_err(|e| Error::io("changing the owner of", &tmp, e))?;
            // After the owner: changing it may clear mode bits.
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io("setting the mode of", &tmp, e))?;
            file.sync_all()
                .map_err(|e| Error::io("flushing", &tmp, e))?;
            nix::fcntl::renameat(&self.fd, tmp_name.as_str(), &self.fd, name)
                .map_err(|e| Error::io("renaming into place", &target, e.into()))
        })();
        if result.is_err() {
            // Never leave the new file behind; unlinkat removes the name in this
            // directory, never what a symbolic link put in its place points to.
            let _ = nix::unistd::unlinkat(&self.fd, tmp_name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result?;
        self.fd
            .sync_all()
            .map_err(|e| Error::io("flushing directory", &self.path, e))
    }

    /// A new, empty file for [`Dir::write_atomic`]: `.NAME.` and random characters.
    fn create_temp(&self, name: &str) -> Result<(String, File)> {
        for _ in 0..TEMP_ATTEMPTS {
            let random: String = std::iter::repeat_with(fastrand::alphanumeric)
                .take(16)
                .collect();
            let tmp_name = format!(".{name}.{random}.tmp");
            match self.create_new(&tmp_name) {
                Ok(file) => return Ok((tmp_name, file)),
                Err(e) if e.kind() == IoKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("creating", &self.path.join(&tmp_name), e)),
            }
        }
        Err(Error::io(
            "creating a new file next to",
            &self.path.join(name),
            std::io::Error::new(
                IoKind::AlreadyExists,
                format!("{TEMP_ATTEMPTS} random names were all taken"),
            ),
        ))
    }

    /// Creates the file `name` (mode 0600) if and only if nothing of that name
    /// exists, a symbolic link included (`O_CREAT|O_EXCL|O_NOFOLLOW`).
    fn create_new(&self, name: &str) -> std::io::Result<File> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600))?;
        Ok(File::from(fd))
    }

    /// The refusal of the entry `name`, which `errno` says is not `expected`:
    /// names what it is (and where a symbolic link points) and what to do.
    fn refusal(&self, name: &str, action: &'static str, expected: &str, errno: Errno) -> Error {
        let path = self.path.join(name);
        let stat = nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW);
        let Ok(stat) = stat else {
            // Gone or changed since: report what the system said.
            return Error::io("opening", &path, errno.into());
        };
        let found = kind_of(stat.st_mode).unwrap_or("of an unknown kind");
        if found == "a symbolic link" {
            let target = nix::fcntl::readlinkat(&self.fd, name)
                .map(|t| format!(" to {}", Path::new(&t).display()))
                .unwrap_or_default();
            Error::UnsafePath {
                action,
                path: path.clone(),
                problem: format!("it is a symbolic link{target}, not {expected}"),
                remedy: format!(
                    "remove the symbolic link {} and register again",
                    path.display()
                ),
            }
        } else {
            Error::UnsafePath {
                action,
                path: path.clone(),
                problem: format!("it is {found}, not {expected}"),
                remedy: format!("move {} away and register again", path.display()),
            }
        }
    }
}

/// The kind of file `st_mode` describes, in words.
fn kind_of(st_mode: u32) -> Option<&'static str> {
    let kind = SFlag::from_bits_truncate(st_mode) & SFlag::S_IFMT;
    Some(match kind {
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a named pipe",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    use hvnode_testutil::names_in;

    /// The runner's own uid and gid, which it may give its files.
    fn my_ids(path: &Path) -> (u32, u32) {
        let meta = fs::metadata(path).unwrap();
        (meta.uid(), meta.gid())
    }

    #[test]
    fn dir_write_atomic_replaces_with_mode_and_owner_and_leaves_nothing_behind() {
        let scratch = tempfile::tempdir().unwrap();
        let owner = my_ids(scratch.path());
        let dir = Dir::open(scratch.path()).unwrap();
        dir.write_atomic("f", b"one", 0o600, owner).unwrap();
        dir.write_atomic("f", b"two", 0o640, owner).unwrap();
        let path = scratch.path().join("f");
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!((meta.uid(), meta.gid()), owner);
        assert_eq!(names_in(scratch.path()), ["f"]);
        assert_eq!(
            dir.read_optional("f", "read").unwrap().as_deref(),
            Some("two")
        );
        assert_eq!(dir.read_optional("missing", "read").unwrap(), None);
    }

    #[test]
    fn dir_write_atomic_removes_its_new_file_when_the_rename_fails() {
        let scratch = tempfile::tempdir().unwrap();
        let owner = my_ids(scratch.path());
        // A directory that is not empty cannot be replaced by a file.
        fs::create_dir_all(scratch.path().join("target/inside")).unwrap();
        let dir = Dir::open(scratch.path()).unwrap();
        let err = dir.write_atomic("target", b"x", 0o600, owner).unwrap_err();
        assert!(err.to_string().starts_with("renaming into place"), "{err}");
        assert_eq!(names_in(scratch.path()), ["target"]);
    }

    #[test]
    fn new_files_are_made_exclusively_without_following_links() {
        let scratch = tempfile::tempdir().unwrap();
        let victim = scratch.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        let absent = scratch.path().join("absent");
        let sub = scratch.path().join("sub");
        fs::create_dir(&sub).unwrap();
        symlink(&victim, sub.join("to-victim")).unwrap();
        symlink(&absent, sub.join("dangling")).unwrap();
        fs::write(sub.join("plain"), "mine").unwrap();

        let dir = Dir::open(&sub).unwrap();
        for name in ["to-victim", "dangling", "plain"] {
            let err = dir.create_new(name).unwrap_err();
            assert_eq!(err.kind(), IoKind::AlreadyExists, "{name}: {err}");
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        assert!(
            fs::symlink_metadata(&absent).is_err(),
            "no file made through the link"
        );
        assert_eq!(fs::read_to_string(sub.join("plain")).unwrap(), "mine");
    }

    #[test]
    fn temporary_names_are_random() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = Dir::open(scratch.path()).unwrap();
        let names: Vec<String> = (0..8)
            .map(|_| dir.create_temp("authorized_keys").unwrap().0)
            .collect();
        for name in &names {
            let random = name
                .strip_prefix(".authorized_keys.")
                .and_then(|n| n.strip_suffix(".tmp"))
                .unwrap();
            assert_eq!(random.len(), 16, "{name}");
            assert!(random.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn open_dir_and_read_optional_refuse_links_and_other_kinds() {
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("file"), "secret").unwrap();
        symlink(&target, scratch.path().join("dir-link")).unwrap();
        symlink(target.join("file"), scratch.path().join("file-link")).unwrap();
        fs::write(scratch.path().join("plain"), "x").unwrap();
        let dir = Dir::open(scratch.path()).unwrap();

        for (name, found) in [
            ("dir-link", "a symbolic link to"),
            ("plain", "a regular file"),
        ] {
            let err = dir.open_dir(name, "open").unwrap_err();
            assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
            assert!(err.to_string().contains(found), "{err}");
        }
        for (name, found) in [
            ("file-link", "a symbolic link to"),
            ("target", "a directory"),
        ] {
            let err = dir.read_optional(name, "read").unwrap_err();
            assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
            assert!(err.to_string().contains(found), "{err}");
        }
        let opened = dir.open_dir("target", "open").unwrap();
        assert_eq!(opened.path(), target);
        assert!(!dir.create_dir("target", 0o700).unwrap(), "it exists");
        assert!(dir.create_dir("new", 0o700).unwrap());
    }

    #[test]
    fn atomic_write_creates_parents_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file.json");
        write_atomic(&path, b"one", 0o600, None).unwrap();
        write_atomic(&path, b"two", 0o640, None).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        assert_eq!(read_optional(&dir.path().join("missing")).unwrap(), None);
    }
}
