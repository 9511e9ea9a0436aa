//! Applies a signed update bundle to an installed node, `nodectl update`:
//!
//! 1. **verify**: the bundle's signature and manifest are checked while it
//!    is extracted into the store's scratch space ([`bundle::extract`]);
//! 2. **open**: the image is mounted read-only, its identity and kernel read;
//! 3. **space**: the store (file system, or thin pool data and metadata)
//!    and `/boot` must hold the new base and kernel;
//!
//!    then the [`Plan`] is shown and confirmed, and, each step recording its
//!    undo in a [`Transaction`] first:
//! 4. **base**: the new read-only base `NVR2`;
//! 5. **layer**: its first writable layer `NVR2+1`;
//! 6. **etc-merge**: the three-way `/etc` merge (old base, running `/etc`,
//!    new image) into a fresh folder, swapped in whole; the new layer's
//!    fstab root entry moved to it;
//! 7. **var**: paths new in the image's `/var` copied into the shared
//!    `/var`; nothing there is rewritten;
//! 8. **labels**: the new layer's `/etc` labelled by the new image's
//!    SELinux policy ([`labels`]);
//! 9. **kernel**, **boot-entry**, **trial**: the kernel and initramfs in
//!    `/boot/NVR2+1/`, the new entry added to `grub.cfg` with the old ones
//!    kept, and grub's `next_entry` set to it, the default unchanged.
//!
//! The next boot is the trial: [`trial::judge`] makes the new layer the
//! default when its health checks pass, else records it as failed and the
//! node goes back to the old default. After a pass, [`gc`] removes the
//! images beyond `images_to_keep`.
//!
//! Nothing the running system uses is changed before the reboot but the
//! `/var` additions and the boot files, and a failure at any step takes
//! back everything the update did. [`FAILPOINT_ENV`] makes a named step
//! fail after its work, to prove it.

mod apply;
pub mod config;
pub mod gc;
mod image;
pub mod labels;
mod mounts;
pub mod node;
pub mod plan;
pub mod progress;
mod remap;
pub mod rollback;
mod source;
pub mod space;
pub mod step;
pub mod trial;
pub mod txn;
mod var;

use std::path::PathBuf;

pub use apply::{Outcome, update};
pub use bundle::TRUSTED_KEYS_DIR;
pub use config::{CONFIG_FILE, Config};
pub use image::{Image, ROOTFS_IMG};
pub use mounts::Mounts;
pub use node::{LiveNode, Node, StoreKind, detect};
pub use plan::{Plan, PlanError};
pub use progress::{Event, Human, JsonLines, Progress, Recorded, State};
pub use remap::remap_ids;
pub use rollback::{RollbackError, RollbackPlan, apply_rollback, plan_rollback};
pub use step::{FAILPOINT_ENV, Failpoint, Step};
pub use txn::{Recovered, Transaction, Undo, recover};
pub use var::add_new_paths;

/// What `nodectl update` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// A path or an http(s) URL of `NVR.update.tar`.
    pub source: String,
    /// The signature, when not `SOURCE.minisig` (a path or URL).
    pub signature: Option<String>,
    /// The trusted public keys (`/etc/hvnode/trusted.d`).
    pub trusted_keys: PathBuf,
    /// Skip the signature check (loudly).
    pub no_verify: bool,
    /// Accept an image older than the running one.
    pub allow_downgrade: bool,
    /// The step made to fail on purpose (tests; [`FAILPOINT_ENV`]).
    pub failpoint: Failpoint,
}

impl Options {
    /// Options for `source` with the node's trusted keys and no failpoint.
    pub fn new(source: impl Into<String>) -> Options {
        Options {
            source: source.into(),
            signature: None,
            trusted_keys: PathBuf::from(TRUSTED_KEYS_DIR),
            no_verify: false,
            allow_downgrade: false,
            failpoint: Failpoint::default(),
        }
    }
}

/// Why an update did not happen; callers branch on it (exit codes, the
/// console's message).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Refused before anything was written.
    #[error("{0:#}. Nothing on the node was changed")]
    Refused(anyhow::Error),
    /// The admin said no to the plan.
    #[error("update cancelled; nothing on the node was changed")]
    Cancelled,
    /// A step failed and everything the update did was taken back.
    #[error(
        "the update failed at step {step}: {error:#}. Everything it had done was taken back: \
         the node is as it was"
    )]
    RolledBack { step: Step, error: anyhow::Error },
    /// The update stopped dead at a step on purpose (a crash failpoint), as
    /// a kill would: nothing was taken back; the journal is.
    #[error(
        "the update stopped at step {step} as if killed (failpoint); nothing was taken back: \
         the next nodectl update, or the next boot, takes it back from the journal"
    )]
    Crashed { step: Step },
    /// A step failed and some of what the update did could not be taken
    /// back: the admin must finish the cleanup.
    #[error(
        "the update failed at step {step}: {error:#}. Taking it back left: {}. Remove those \
         by hand (`nodectl info` lists the layers and bases); the default boot entry was not \
         changed",
        left.join("; ")
    )]
    Incomplete {
        step: Step,
        error: anyhow::Error,
        left: Vec<String>,
    },
}

impl UpdateError {
    /// Whether the node is as it was before the update.
    pub fn node_unchanged(&self) -> bool {
        !matches!(
            self,
            UpdateError::Incomplete { .. } | UpdateError::Crashed { .. }
        )
    }
}
