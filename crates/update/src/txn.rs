//! The undo stack of an update: every step that changes something records
//! how to take it back before it makes the change, and a failure anywhere
//! takes back everything recorded, newest first. What the update created
//! (base, layer, kernel folder, `/var` paths) is removed; what it rewrote
//! (`grub.cfg`, grubenv) gets its earlier bytes and mode back.
//!
//! The stack is also kept on disk, a journal in the shared `/var`, written
//! whole at every change: an update that is killed (or loses power) takes
//! nothing back itself, and [`recover`] does it from the journal before the
//! next update and at the next boot.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use layers::{LayerName, Nvr, Store};
use serde::{Deserialize, Serialize};

use crate::progress::{Progress, State};
use crate::step::Step;

/// How to take back one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

    /// Takes the change back; a base or layer that is not there (its step
    /// was cut short before it made it) is nothing to do.
    fn run(&self, store: &dyn Store) -> Result<()> {
        match self {
            Undo::RemoveBase(b) => {
                if store.inventory()?.bases.contains(b) {
                    store.remove_base(b)?;
                }
                Ok(())
            }
            Undo::RemoveLayer(l) => {
                if store.inventory()?.layers.contains(l) {
                    store.remove_layer(l)?;
                }
                Ok(())
            }
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
    layer: Option<LayerName>,
    /// Where the stack is kept on disk, if anywhere.
    journal: Option<PathBuf>,
    /// Why the journal could not be written, if it could not.
    journal_error: Option<String>,
}

/// The journal of an interrupted update: its undo stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The layer the update was making.
    pub layer: LayerName,
    pub done: Vec<(Step, Undo)>,
}

impl Transaction {
    /// A transaction whose stack is kept in `journal` (for the update making
    /// `layer`).
    pub fn journaled(journal: PathBuf, layer: LayerName) -> Transaction {
        let mut t = Transaction {
            journal: Some(journal),
            ..Transaction::default()
        };
        t.layer = Some(layer);
        t.write_journal();
        t
    }

    fn write_journal(&mut self) {
        let (Some(path), Some(layer)) = (&self.journal, &self.layer) else {
            return;
        };
        let j = Journal {
            layer: layer.clone(),
            done: self.done.clone(),
        };
        let written = serde_json::to_vec(&j)
            .map_err(anyhow::Error::from)
            .and_then(|data| {
                if let Some(d) = path.parent() {
                    fs::create_dir_all(d)?;
                }
                fsutil::write_atomic(path, &data, fsutil::Options::default())?;
                Ok(())
            });
        if let Err(e) = written {
            self.journal_error = Some(format!("{e:#}"));
        }
    }

    fn remove_journal(&self) {
        if let Some(p) = &self.journal {
            let _ = fs::remove_file(p);
            remove_if_empty(p.parent());
        }
    }

    /// Why the journal could not be kept, if it could not (an update cut
    /// short then leaves its changes for the admin to remove).
    pub fn journal_error(&self) -> Option<&str> {
        self.journal_error.as_deref()
    }

    /// Notes that `step` starts (a failure now is a failure of it).
    pub fn begin(&mut self, step: Step) {
        self.at = Some(step);
    }

    /// The step begun last.
    pub fn current(&self) -> Option<Step> {
        self.at
    }

    /// Records a change `step` is about to make (in the journal too).
    pub fn push(&mut self, step: Step, undo: Undo) {
        self.done.push((step, undo));
        self.write_journal();
    }

    /// How many changes are recorded.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The update succeeded: nothing is taken back.
    pub fn commit(self) {
        self.remove_journal();
    }

    /// The update was cut short on purpose (a crash failpoint): nothing is
    /// taken back, the journal stays, as after a kill.
    pub fn abandon(self) {}

    /// Takes back every recorded change, newest first, going on past a
    /// failure; returns what could not be taken back.
    pub fn rollback(self, store: &dyn Store, progress: &mut dyn Progress) -> Vec<String> {
        let left = undo_all(&self.done, store, progress);
        self.remove_journal();
        left
    }
}

/// Takes back `done`, newest first, going on past a failure; what could
/// not be taken back.
fn undo_all(done: &[(Step, Undo)], store: &dyn Store, progress: &mut dyn Progress) -> Vec<String> {
    let mut left = Vec::new();
    for (step, undo) in done.iter().rev() {
        match undo.run(store) {
            Ok(()) => progress.step(*step, State::Undone, &undo.describe()),
            Err(e) => {
                let msg = format!("{} failed: {e:#}", undo.describe());
                progress.note(Some(*step), &format!("WARNING: {msg}"));
                left.push(msg);
            }
        }
    }
    left
}

/// What [`recover`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// No journal: no update was cut short.
    Nothing,
    /// An update was cut short; its changes were taken back (and these
    /// could not be).
    TakenBack { layer: LayerName, left: Vec<String> },
    /// The update had armed its trial and this system runs its layer: it is
    /// kept, and only the journal goes.
    Kept { layer: LayerName },
}

/// Takes back what an update cut short left, from its journal at
/// `journal`: run before an update (under its lock) and at boot. The
/// journal is removed once done, whatever could not be taken back.
pub fn recover(
    journal: &Path,
    running: &LayerName,
    store: &dyn Store,
    progress: &mut dyn Progress,
) -> Result<Recovered> {
    let data = match fs::read(journal) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recovered::Nothing),
        Err(e) => return Err(e).with_context(|| format!("reading {}", journal.display())),
    };
    let j: Journal = serde_json::from_slice(&data).with_context(|| {
        format!(
            "reading the journal of an interrupted update, {}: remove it and whatever that \
             update left (`nodectl info` lists the layers)",
            journal.display()
        )
    })?;
    let outcome = if j.layer == *running {
        Recovered::Kept { layer: j.layer }
    } else {
        progress.note(
            None,
            &format!(
                "an update to {} was cut short: taking back what it did",
                j.layer
            ),
        );
        let left = undo_all(&j.done, store, progress);
        Recovered::TakenBack {
            layer: j.layer,
            left,
        }
    };
    fs::remove_file(journal).with_context(|| format!("removing {}", journal.display()))?;
    remove_if_empty(journal.parent());
    Ok(outcome)
}

/// The journal's folder goes with it when nothing else is in it (on a node
/// the agent's state is there too).
fn remove_if_empty(dir: Option<&Path>) {
    if let Some(d) = dir {
        let _ = fs::remove_dir(d);
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
