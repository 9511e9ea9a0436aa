//! What happened to the layers, kept in the shared `/var` so that every
//! layer reads the same record: each trial boot's verdict
//! (`/var/lib/hvnode/trials.json`) and each update's `/etc` conflicts
//! (`/var/lib/hvnode/updates/LAYER.json`). `nodectl info`, `motd` and the
//! console show them; `nodectl rollback` and the console refuse to make a
//! layer that failed its trial the default.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Where the records live on a node.
pub const STATE_DIR: &str = "/var/lib/hvnode";

/// The most trial records kept: the oldest go first.
const KEEP_TRIALS: usize = 50;

/// One trial boot's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// The layer that was tried.
    pub layer: String,
    /// Whether it became the default.
    pub passed: bool,
    /// What the health check found; for a failure, what failed.
    pub reason: String,
    /// When the verdict was recorded, UTC (`YYYY-MM-DD HH:MM:SS`).
    pub at: String,
}

/// What an update did that the admin must look at, kept for the layer it
/// made.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// The layer the update made.
    pub layer: String,
    /// The layer it was made from.
    pub from: String,
    /// The key the bundle was signed with; `None` when it was not checked.
    pub signed_by: Option<String>,
    /// When the update was applied, UTC.
    pub at: String,
    /// Files of `/etc` both the admin and the new image changed: the
    /// admin's version was kept, the image's is beside it as `NAME.hvnew`.
    /// Absolute paths.
    pub etc_conflicts: Vec<String>,
    /// Accounts (`user NAME`, `group NAME`) both sides changed.
    pub account_conflicts: Vec<String>,
}

/// The record files under a state folder (`STATE_DIR`, or a test's).
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl Default for History {
    fn default() -> Self {
        History::at(Path::new(STATE_DIR))
    }
}

impl History {
    /// The records under `dir`.
    pub fn at(dir: &Path) -> History {
        History {
            dir: dir.to_path_buf(),
        }
    }

    fn trials_file(&self) -> PathBuf {
        self.dir.join("trials.json")
    }

    fn update_file(&self, layer: &str) -> PathBuf {
        self.dir.join("updates").join(format!("{layer}.json"))
    }

    /// Every trial verdict, oldest first; none when the file is missing.
    pub fn trials(&self) -> Result<Vec<TrialRecord>> {
        read_json(&self.trials_file()).map(Option::unwrap_or_default)
    }

    /// Adds a trial verdict (the file is written whole and renamed).
    pub fn record_trial(&self, record: TrialRecord) -> Result<()> {
        let mut all = self.trials()?;
        all.push(record);
        let extra = all.len().saturating_sub(KEEP_TRIALS);
        all.drain(..extra);
        write_json(&self.trials_file(), &all)
    }

    /// The layers whose latest trial failed, with that verdict.
    pub fn failed_layers(&self) -> Result<BTreeMap<String, TrialRecord>> {
        Ok(failed_layers(&self.trials()?))
    }

    /// The record of the update that made `layer`, if any.
    pub fn update(&self, layer: &str) -> Result<Option<UpdateRecord>> {
        read_json(&self.update_file(layer))
    }

    /// Keeps what an update did for its layer.
    pub fn record_update(&self, record: &UpdateRecord) -> Result<()> {
        write_json(&self.update_file(&record.layer), record)
    }

    /// Forgets an update's record (its layer was removed).
    pub fn forget_update(&self, layer: &str) -> Result<()> {
        let p = self.update_file(layer);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", p.display()))
            }
            _ => Ok(()),
        }
    }
}

/// The layers whose latest verdict in `trials` is a failure.
pub fn failed_layers(trials: &[TrialRecord]) -> BTreeMap<String, TrialRecord> {
    let mut last: BTreeMap<String, TrialRecord> = BTreeMap::new();
    for t in trials {
        last.insert(t.layer.clone(), t.clone());
    }
    last.retain(|_, t| !t.passed);
    last
}

/// The `/etc` conflicts of `record` still open: those whose `NAME.hvnew`
/// is still under `root` (the admin removes it once the two are merged).
pub fn open_conflicts(record: &UpdateRecord, root: &Path) -> Vec<String> {
    record
        .etc_conflicts
        .iter()
        .filter(|p| {
            root.join(format!("{}.hvnew", p.trim_start_matches('/')))
                .symlink_metadata()
                .is_ok()
        })
        .cloned()
        .collect()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!(
            "reading {}: not the JSON hvnode writes there; move it aside and the record starts \
             anew",
            path.display()
        )
    })
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("encoding a layer record")?;
    text.push('\n');
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fsutil::write_atomic(path, text.as_bytes(), fsutil::Options::default())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(layer: &str, passed: bool) -> TrialRecord {
        TrialRecord {
            layer: layer.into(),
            passed,
            reason: if passed { "healthy" } else { "agent down" }.into(),
            at: "2026-12-04 10:00:00".into(),
        }
    }

    #[test]
    fn the_latest_verdict_of_a_layer_counts() {
        let d = tempfile::tempdir().unwrap();
        let h = History::at(d.path());
        assert!(h.trials().unwrap().is_empty(), "no file: no trials");
        h.record_trial(trial("a+1", false)).unwrap();
        h.record_trial(trial("b+1", false)).unwrap();
        h.record_trial(trial("b+1", true)).unwrap();
        let failed = h.failed_layers().unwrap();
        assert_eq!(failed.keys().collect::<Vec<_>>(), ["a+1"]);
        assert_eq!(failed["a+1"].reason, "agent down");
    }

    #[test]
    fn old_verdicts_are_dropped_first() {
        let d = tempfile::tempdir().unwrap();
        let h = History::at(d.path());
        for i in 0..KEEP_TRIALS + 3 {
            h.record_trial(trial(&format!("l{i}+1"), true)).unwrap();
        }
        let all = h.trials().unwrap();
        assert_eq!(all.len(), KEEP_TRIALS);
        assert_eq!(all[0].layer, "l3+1");
    }

    #[test]
    fn a_conflict_is_open_while_its_hvnew_file_is_there() {
        let d = tempfile::tempdir().unwrap();
        let h = History::at(&d.path().join("state"));
        let root = d.path().join("root");
        fs::create_dir_all(root.join("etc/ssh")).unwrap();
        let rec = UpdateRecord {
            layer: "b+1".into(),
            from: "a+1".into(),
            etc_conflicts: vec!["/etc/ssh/sshd_config".into(), "/etc/motd".into()],
            ..UpdateRecord::default()
        };
        h.record_update(&rec).unwrap();
        let back = h.update("b+1").unwrap().unwrap();
        assert_eq!(back, rec);
        assert_eq!(h.update("c+1").unwrap(), None);
        fs::write(root.join("etc/ssh/sshd_config.hvnew"), "x").unwrap();
        assert_eq!(open_conflicts(&back, &root), ["/etc/ssh/sshd_config"]);
        h.forget_update("b+1").unwrap();
        h.forget_update("b+1").unwrap();
        assert_eq!(h.update("b+1").unwrap(), None);
    }

    #[test]
    fn a_damaged_record_names_its_file() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("trials.json"), "{not json").unwrap();
        let e = format!("{:#}", History::at(d.path()).trials().unwrap_err());
        assert!(
            e.contains("trials.json") && e.contains("move it aside"),
            "{e}"
        );
    }
}
