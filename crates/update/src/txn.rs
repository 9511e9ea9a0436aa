//! The undo stack of an update: every step that changes something records
//! how to take it back before it makes the change, and a failure anywhere
//! takes back everything recorded, newest first. What the update created
//! (base, layer, kernel folder, `/var` paths) is removed; what it rewrote
//! (`grub.cfg`, grubenv) gets its earlier bytes and mode back.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use layers::{LayerName, Nvr, Store};

use crate::progress::{Progress, State};
use crate::step::Step;

/// How to take back one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    RemoveBase(Nvr),
    RemoveLayer(LayerName),
    /// A folder (or file) this update created.
    RemovePath(PathBuf),
    /// A file this update rewrote: its bytes and mode before, or `None`
    /// when it did not exist.
    RestoreFile {
        path: PathBuf,
        before: Option<(Vec<u8>, u32)>,
    },
}

impl Undo {
    /// Records `path` as it is now, to be put back.
    pub fn save_file(path: &Path) -> Result<Undo> {
        let before = match fs::read(path) {
            Ok(data) => {
                let mode = fs::metadata(path)
                    .with_context(|| format!("reading the mode of {}", path.display()))?
                    .permissions()
                    .mode()
                    & 0o7777;
                Some((data, mode))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("saving {}", path.display())),
        };
        Ok(Undo::RestoreFile {
            path: path.to_path_buf(),
            before,
        })
    }

    fn describe(&self) -> String {
        match self {
            Undo::RemoveBase(b) => format!("removing the base {b}"),
            Undo::RemoveLayer(l) => format!("removing the layer {l}"),
            Undo::RemovePath(p) => format!("removing {}", p.display()),
            Undo::RestoreFile { path, .. } => format!("restoring {}", path.display()),
        }
    }

    fn run(&self, store: &dyn Store) -> Result<()> {
        match self {
            Undo::RemoveBase(b) => store.remove_base(b),
            Undo::RemoveLayer(l) => store.remove_layer(l),
            Undo::RemovePath(p) => remove_path(p),
            Undo::RestoreFile { path, before: None } => remove_path(path),
            Undo::RestoreFile {
                path,
                before: Some((data, mode)),
            } => fsutil::write_atomic(path, data, fsutil::Options::mode(*mode))
                .with_context(|| format!("restoring {}", path.display())),
        }
    }
}

fn remove_path(p: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("looking at {}", p.display())),
    };
    if meta.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
    .with_context(|| format!("removing {}", p.display()))
}

/// The changes an update made so far, and the step it is at.
#[derive(Debug, Default)]
pub struct Transaction {
    done: Vec<(Step, Undo)>,
    at: Option<Step>,
}

impl Transaction {
    /// Notes that `step` starts (a failure now is a failure of it).
    pub fn begin(&mut self, step: Step) {
        self.at = Some(step);
    }

    /// The step begun last.
    pub fn current(&self) -> Option<Step> {
        self.at
    }

    /// Records a change `step` is about to make.
    pub fn push(&mut self, step: Step, undo: Undo) {
        self.done.push((step, undo));
    }

    /// How many changes are recorded.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The update succeeded: nothing is taken back.
    pub fn commit(self) {}

    /// Takes back every recorded change, newest first, going on past a
    /// failure; returns what could not be taken back.
    pub fn rollback(self, store: &dyn Store, progress: &mut dyn Progress) -> Vec<String> {
        let mut left = Vec::new();
        for (step, undo) in self.done.into_iter().rev() {
            match undo.run(store) {
                Ok(()) => progress.step(step, State::Undone, &undo.describe()),
                Err(e) => {
                    let msg = format!("{} failed: {e:#}", undo.describe());
                    progress.note(Some(step), &format!("WARNING: {msg}"));
                    left.push(msg);
                }
            }
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Recorded;

    /// A store that must not be asked anything.
    struct NoStore;
    impl Store for NoStore {
        fn inventory(&self) -> Result<layers::Inventory> {
            anyhow::bail!("unused")
        }
        fn add_base(&self, _: &Nvr, _: &Path) -> Result<()> {
            anyhow::bail!("unused")
        }
        fn add_layer(&self, _: &Nvr) -> Result<LayerName> {
            anyhow::bail!("unused")
        }
        fn remove_layer(&self, _: &LayerName) -> Result<()> {
            anyhow::bail!("unused")
        }
        fn remove_base(&self, _: &Nvr) -> Result<()> {
            anyhow::bail!("unused")
        }
        fn mount_layer(&self, _: &LayerName, _: &Path) -> Result<()> {
            anyhow::bail!("unused")
        }
        fn root_args(&self, _: &LayerName) -> Result<layers::RootArgs> {
            anyhow::bail!("unused")
        }
    }

    #[test]
    fn files_get_their_bytes_and_mode_back_and_new_ones_go() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("grub.cfg");
        fs::write(&cfg, b"old").unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
        let mut t = Transaction::default();
        t.push(Step::BootEntry, Undo::save_file(&cfg).unwrap());
        let dir = d.path().join("layer");
        t.push(Step::Kernel, Undo::RemovePath(dir.clone()));
        fs::write(&cfg, b"new").unwrap();
        fs::create_dir_all(dir.join("x")).unwrap();
        let env = d.path().join("grubenv");
        t.push(Step::Trial, Undo::save_file(&env).unwrap());
        fs::write(&env, b"created").unwrap();

        let mut p = Recorded::default();
        assert!(t.rollback(&NoStore, &mut p).is_empty());
        assert_eq!(fs::read(&cfg).unwrap(), b"old");
        assert_eq!(
            fs::metadata(&cfg).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert!(!dir.exists() && !env.exists());
        let order: Vec<_> = p.0.iter().filter_map(|e| e.step).collect();
        assert_eq!(order, [Step::Trial, Step::Kernel, Step::BootEntry]);
    }

    #[test]
    fn a_failed_undo_is_reported_and_the_rest_still_runs() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("made");
        fs::create_dir(&dir).unwrap();
        let mut t = Transaction::default();
        t.push(Step::Kernel, Undo::RemovePath(dir.clone()));
        t.push(
            Step::Base,
            Undo::RemoveBase("hvnode-1.0-1".parse().unwrap()),
        );
        let left = t.rollback(&NoStore, &mut Recorded::default());
        assert_eq!(left.len(), 1);
        assert!(
            left[0].contains("removing the base hvnode-1.0-1"),
            "{left:?}"
        );
        assert!(!dir.exists());
    }
}
