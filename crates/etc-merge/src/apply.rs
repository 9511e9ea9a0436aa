//! Writing a [`Plan`] into the output directory.
//!
//! The output must be missing or an empty directory: the merged `/etc` is
//! built there from scratch, and only there. Files are created with
//! `O_EXCL`, owner and extended attributes set before the mode (a `chown`
//! clears set-id bits and file capabilities), and flushed; directories get
//! their metadata last, deepest first, so a read-only directory can still
//! be filled. A failure removes what was written, so the output is either
//! the whole merged `/etc` (`Ok`) or holds nothing of it (`Err`). A crash
//! can still leave a partial output: merge into a fresh directory beside
//! the target and rename it into place only after `Ok`.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};
use xattr::FileExt as _;

use crate::error::{MergeError, Side};
use crate::plan::{Action, Plan};
use crate::tree::{Digest, Meta};

/// The three input trees on disk.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The old image's `/etc`.
    pub old: &'a Path,
    /// The node's `/etc`.
    pub current: &'a Path,
    /// The new image's `/etc`.
    pub new: &'a Path,
}

impl Inputs<'_> {
    fn root(&self, side: Side) -> &Path {
        match side {
            Side::Old => self.old,
            Side::Current => self.current,
            Side::New => self.new,
        }
    }
}

/// Writes the merged `/etc` of `plan` into `out` (see the module
/// documentation).
pub fn apply(plan: &Plan, inputs: Inputs<'_>, out: &Path) -> Result<(), MergeError> {
    let created = prepare_output(out)?;
    let mut writer = Writer {
        inputs,
        out,
        dirs: Vec::new(),
    };
    let result = writer.write(plan).and_then(|()| {
        if created {
            // The new directory's own name.
            let parent = out.parent().unwrap_or(Path::new("."));
            sync_dir(parent)?;
        }
        Ok(())
    });
    result.map_err(|error| cleanup(out, created, error))
}

/// Fails unless `out` is an empty directory or missing (then creates it);
/// true when it was created.
pub(crate) fn prepare_output(out: &Path) -> Result<bool, MergeError> {
    let not_empty = || MergeError::OutputNotEmpty {
        path: out.to_path_buf(),
    };
    match fs::symlink_metadata(out) {
        Ok(md) if md.is_dir() => {
            let mut entries = fs::read_dir(out).map_err(write_err("listing", out))?;
            match entries.next() {
                None => Ok(false),
                Some(_) => Err(not_empty()),
            }
        }
        Ok(_) => Err(not_empty()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .mode(0o700)
                .create(out)
                .map_err(write_err("creating", out))?;
            Ok(true)
        }
        Err(e) => Err(write_err("inspecting", out)(e)),
    }
}

fn write_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MergeError {
    let path = path.to_path_buf();
    move |source| MergeError::Write {
        action,
        path,
        source,
    }
}

fn cleanup(out: &Path, created: bool, error: MergeError) -> MergeError {
    let result = if created {
        fs::remove_dir_all(out)
    } else {
        fs::read_dir(out).and_then(|entries| {
            for entry in entries {
                let path = entry?.path();
                match fs::symlink_metadata(&path)?.is_dir() {
                    true => fs::remove_dir_all(&path)?,
                    false => fs::remove_file(&path)?,
                }
            }
            Ok(())
        })
    };
    match result {
        Ok(()) => error,
        Err(cleanup) => MergeError::Cleanup {
            merge: Box::new(error),
            path: out.to_path_buf(),
            cleanup,
        },
    }
}

struct Writer<'a> {
    inputs: Inputs<'a>,
    out: &'a Path,
    dirs: Vec<(PathBuf, &'a Meta)>,
}

impl<'a> Writer<'a> {
    fn write(&mut self, plan: &'a Plan) -> Result<(), MergeError> {
        for action in &plan.actions {
            match action {
                Action::Dir { path, meta } => {
                    let dst = self.out.join(path);
                    if !path.as_os_str().is_empty() {
                        DirBuilder::new()
                            .mode(0o700)
                            .create(&dst)
                            .map_err(write_err("creating the directory", &dst))?;
                    }
                    self.dirs.push((dst, meta));
                }
                Action::Copy {
                    path,
                    from,
                    src,
                    digest,
                    meta,
                } => self.copy(path, *from, src, *digest, meta)?,
                Action::Symlink { path, target, meta } => {
                    let dst = self.out.join(path);
                    std::os::unix::fs::symlink(target, &dst)
                        .map_err(write_err("creating the symlink", &dst))?;
                    std::os::unix::fs::lchown(&dst, Some(meta.uid), Some(meta.gid))
                        .map_err(write_err("setting the owner of", &dst))?;
                    for (name, value) in &meta.xattrs {
                        xattr::set(&dst, name, value)
                            .map_err(write_err("setting an extended attribute of", &dst))?;
                    }
                }
                Action::Write {
                    path,
                    content,
                    meta,
                } => {
                    let dst = self.out.join(path);
                    let mut file = create(&dst)?;
                    file.write_all(content)
                        .map_err(write_err("writing", &dst))?;
                    finish_file(&file, &dst, meta, None)?;
                }
            }
        }
        for (dst, meta) in self.dirs.iter().rev() {
            finish_dir(dst, meta)?;
        }
        Ok(())
    }

    /// Copies `src` of `from` to `path`, checking that its content is still
    /// the one planned.
    fn copy(
        &self,
        path: &Path,
        from: Side,
        src: &Path,
        digest: Digest,
        meta: &Meta,
    ) -> Result<(), MergeError> {
        let src_path = self.inputs.root(from).join(src);
        let read_err = |action| {
            let path = src_path.clone();
            move |source| MergeError::Read {
                side: from,
                action,
                path,
                source,
            }
        };
        let changed = || MergeError::SourceChanged {
            side: from,
            path: src_path.clone(),
        };
        let mut input = File::open(&src_path).map_err(read_err("opening"))?;
        let src_md = input.metadata().map_err(read_err("opening"))?;
        if !src_md.is_file() {
            return Err(changed());
        }
        let dst = self.out.join(path);
        let mut output = create(&dst)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err("reading")(e)),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            output
                .write_all(chunk)
                .map_err(write_err("writing", &dst))?;
        }
        if Digest(hasher.finalize().into()) != digest {
            return Err(changed());
        }
        finish_file(&output, &dst, meta, src_md.modified().ok())
    }
}

fn create(dst: &Path) -> Result<File, MergeError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(write_err("creating", dst))
}

/// Owner, extended attributes, mode (in that order), time, flush.
fn finish_file(
    file: &File,
    dst: &Path,
    meta: &Meta,
    mtime: Option<SystemTime>,
) -> Result<(), MergeError> {
    std::os::unix::fs::fchown(file, Some(meta.uid), Some(meta.gid))
        .map_err(write_err("setting the owner of", dst))?;
    for (name, value) in &meta.xattrs {
        file.set_xattr(name, value)
            .map_err(write_err("setting an extended attribute of", dst))?;
    }
    file.set_permissions(Permissions::from_mode(meta.mode))
        .map_err(write_err("setting the mode of", dst))?;
    if let Some(mtime) = mtime {
        file.set_modified(mtime)
            .map_err(write_err("setting the modification time of", dst))?;
    }
    file.sync_all().map_err(write_err("flushing", dst))
}

fn finish_dir(dst: &Path, meta: &Meta) -> Result<(), MergeError> {
    std::os::unix::fs::lchown(dst, Some(meta.uid), Some(meta.gid))
        .map_err(write_err("setting the owner of", dst))?;
    for (name, value) in &meta.xattrs {
        xattr::set(dst, name, value).map_err(write_err("setting an extended attribute of", dst))?;
    }
    fs::set_permissions(dst, Permissions::from_mode(meta.mode))
        .map_err(write_err("setting the mode of", dst))?;
    sync_dir(dst)
}

fn sync_dir(dir: &Path) -> Result<(), MergeError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err("flushing the directory", dir))
}
