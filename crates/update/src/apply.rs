//! The update itself: prepare (verify, open, plan, space) without changing
//! anything the node uses, ask, then apply each step under a
//! [`Transaction`] that takes everything back on a failure.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use etc_merge::MergeReport;
use hostinfo::ImageIdentity;
use layers::boot;
use layers::history::{History, UpdateRecord};
use layers::{LayerName, Nvr};
use serde::Serialize;

use crate::image::Image;
use crate::labels::{self, LabelReport};
use crate::mounts::Mounts;
use crate::node::Node;
use crate::plan::{self, ImageFacts, NodeFacts, Plan};
use crate::progress::{Event, Progress, State};
use crate::remap::remap_ids;
use crate::space::{self, Needs};
use crate::step::{Failpoint, Injected, Step};
use crate::txn::{Transaction, Undo};
use crate::{Options, UpdateError, source, var};

/// What an update did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub plan: Plan,
    /// The bundle's signer (`null` with no-verify).
    pub signed_by: Option<String>,
    pub merge: MergeReport,
    /// Paths added to `/var`, relative to it.
    pub var_added: Vec<PathBuf>,
    /// The new `/etc`'s SELinux labels, checked by the new policy.
    pub labels: LabelReport,
    /// Whether the new layer's fstab root entry was moved to it.
    pub fstab_root_retargeted: bool,
    pub warnings: Vec<String>,
}

/// The prepared update: the bundle checked and the image open.
struct Prepared {
    plan: Plan,
    image: Image,
    signed_by: Option<String>,
    warnings: Vec<String>,
}

/// Runs `f` as `step`: progress before and after, the failpoint after its
/// work (so its own undo is exercised too).
fn run_step<T>(
    step: Step,
    fp: Failpoint,
    progress: &mut dyn Progress,
    f: impl FnOnce(&mut dyn Progress) -> Result<T>,
) -> Result<T> {
    progress.step(step, State::Start, step.describe());
    let r = f(progress).and_then(|v| {
        fp.check(step)?;
        Ok(v)
    });
    match &r {
        Ok(_) => progress.step(step, State::Done, step.describe()),
        Err(e) => progress.step(step, State::Failed, &format!("{e:#}")),
    }
    r.with_context(|| step.describe())
}

/// Updates `node` to the bundle `opts.source`. `confirm` sees the plan
/// before anything the node uses is changed and says whether to go on.
pub fn update(
    node: &Node,
    opts: &Options,
    confirm: &mut dyn FnMut(&Plan) -> bool,
    progress: &mut dyn Progress,
) -> Result<Outcome, UpdateError> {
    let _lock = lock(&node.lock).map_err(UpdateError::Refused)?;
    recover_interrupted(node, progress).map_err(UpdateError::Refused)?;
    fs::create_dir_all(&node.scratch)
        .with_context(|| format!("creating the scratch folder {}", node.scratch.display()))
        .map_err(UpdateError::Refused)?;
    let (removed, kept) =
        crate::mounts::clean_stale(&node.scratch).map_err(UpdateError::Refused)?;
    for r in removed {
        progress.note(
            None,
            &format!("removed {}, left by an interrupted update", r.display()),
        );
    }
    for k in kept {
        progress.note(
            None,
            &format!(
                "WARNING: {} was left by an interrupted update and still has something \
                 mounted in it; unmount it and remove the folder",
                k.display()
            ),
        );
    }
    let work = tempfile::Builder::new()
        .prefix(".update-")
        .tempdir_in(&node.scratch)
        .with_context(|| format!("making a work folder in {}", node.scratch.display()))
        .map_err(UpdateError::Refused)?;
    let mut mounts = Mounts::default();
    let result = prepare_and_apply(node, opts, work.path(), &mut mounts, confirm, progress);
    let stuck = mounts.unmount_all();
    let result = match result {
        Ok(outcome) => Ok(outcome),
        Err(Failure::Before(e)) => Err(e),
        Err(Failure::During { step, txn, error })
            if error
                .chain()
                .any(|c| c.downcast_ref::<Injected>().is_some_and(|i| i.crash)) =>
        {
            txn.abandon();
            Err(UpdateError::Crashed { step })
        }
        Err(Failure::During { step, txn, error }) => {
            let left = txn.rollback(node.store.store(), progress);
            if left.is_empty() {
                Err(UpdateError::RolledBack { step, error })
            } else {
                Err(UpdateError::Incomplete { step, error, left })
            }
        }
    };
    if stuck.is_empty() {
        drop(work);
    } else {
        let kept = work.keep();
        progress.note(
            None,
            &format!(
                "WARNING: {}; {} is kept (remove it once nothing is mounted in it)",
                stuck.join("; "),
                kept.display()
            ),
        );
    }
    // The scratch folder itself goes when this update left it empty.
    let _ = fs::remove_dir(&node.scratch);
    result
}

/// Takes back what an update that was cut short (killed, a power cut)
/// left, from its journal, before a new one starts.
fn recover_interrupted(node: &Node, progress: &mut dyn Progress) -> Result<()> {
    match crate::txn::recover(
        &node.journal(),
        &node.current_layer,
        node.store.store(),
        progress,
    )? {
        crate::txn::Recovered::Nothing => {}
        crate::txn::Recovered::Kept { layer } => progress.note(
            None,
            &format!("the update to {layer} had finished: its journal is removed"),
        ),
        crate::txn::Recovered::TakenBack { layer, left } => {
            progress.note(
                None,
                &format!("what the interrupted update to {layer} did was taken back"),
            );
            for l in left {
                progress.note(None, &format!("WARNING: {l}"));
            }
        }
    }
    Ok(())
}

/// How an update failed: before anything was changed, or during a step,
/// with the changes to take back.
enum Failure {
    Before(UpdateError),
    During {
        step: Step,
        txn: Box<Transaction>,
        error: anyhow::Error,
    },
}

fn prepare_and_apply(
    node: &Node,
    opts: &Options,
    work: &Path,
    mounts: &mut Mounts,
    confirm: &mut dyn FnMut(&Plan) -> bool,
    progress: &mut dyn Progress,
) -> Result<Outcome, Failure> {
    let prepared = prepare(node, opts, work, mounts, progress).map_err(Failure::Before)?;
    progress.event(&Event {
        step: None,
        state: None,
        message: prepared.plan.lines().join("\n"),
        details: serde_json::json!({ "plan": &prepared.plan }),
    });
    if !confirm(&prepared.plan) {
        return Err(Failure::Before(UpdateError::Cancelled));
    }
    let mut txn = Transaction::journaled(node.journal(), prepared.plan.new_layer.clone());
    match apply(
        node,
        opts.failpoint,
        &prepared,
        work,
        mounts,
        &mut txn,
        progress,
    ) {
        Ok((merge, var_added, labels, fstab_root_retargeted, mut warnings)) => {
            txn.commit();
            warnings.splice(0..0, prepared.warnings.iter().cloned());
            let record = update_record(&prepared, &merge);
            let history = History::at(&node.var().join("lib/hvnode"));
            if let Err(e) = history.record_update(&record) {
                warnings.push(format!(
                    "the update's /etc conflicts could not be kept for `nodectl info`: {e:#}"
                ));
            }
            Ok(Outcome {
                plan: prepared.plan,
                signed_by: prepared.signed_by,
                merge,
                var_added,
                labels,
                fstab_root_retargeted,
                warnings,
            })
        }
        Err(e) => {
            // Nothing may stay mounted in the layer or base being removed.
            let stuck = mounts.unmount_all();
            let e = if stuck.is_empty() {
                e
            } else {
                e.context(format!("also: {}", stuck.join("; ")))
            };
            Err(Failure::During {
                step: txn.current().unwrap_or(Step::Base),
                txn: Box::new(txn),
                error: e,
            })
        }
    }
}

/// Verify, open, plan, check space: nothing outside the work folder is
/// written.
fn prepare(
    node: &Node,
    opts: &Options,
    work: &Path,
    mounts: &mut Mounts,
    progress: &mut dyn Progress,
) -> Result<Prepared, UpdateError> {
    let fp = opts.failpoint;
    let running = ImageIdentity::read(&node.root)
        .context("reading the running image's identity")
        .map_err(UpdateError::Refused)?;
    let installed: Option<Nvr> = running.nvr.parse().ok();
    let extracted = run_step(Step::Verify, fp, progress, |p| {
        let src_dir = work.join("source");
        let out = work.join("bundle");
        for d in [&src_dir, &out] {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let local = source::localize(&opts.source, opts.signature.as_deref(), &src_dir)?;
        let verify = bundle::VerifyOptions {
            trusted_keys: opts.trusted_keys.clone(),
            installed: installed.clone(),
            allow_downgrade: opts.allow_downgrade,
            no_verify: opts.no_verify,
        };
        let x = bundle::extract(&local.bundle, &out, &verify)?;
        for w in &x.verified.warnings {
            p.note(Some(Step::Verify), &w.to_string());
        }
        Ok(x)
    })
    .map_err(UpdateError::Refused)?;
    let image = run_step(Step::Open, fp, progress, |_| {
        let image = Image::open(&extracted.root, work, mounts)?;
        if image.nvr != extracted.verified.nvr {
            bail!(
                "the bundle's manifest says {} but its image says {}: a mixed bundle, refused",
                extracted.verified.nvr,
                image.nvr
            );
        }
        Ok(image)
    })
    .map_err(UpdateError::Refused)?;
    let mut plan = make_plan(node, &running, &image)?;
    let space = run_step(Step::Space, fp, progress, |_| {
        let needs = Needs {
            base_bytes: image.used_bytes,
            boot_bytes: image.boot_bytes,
        };
        let store = node.store.space()?;
        let boot_free = crate::node::free_bytes(&node.boot)?;
        Ok(space::check(&store, boot_free, needs)?)
    })
    .map_err(UpdateError::Refused)?;
    plan.space = space;
    let mut warnings: Vec<String> = extracted
        .verified
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    warnings.extend(plan.warnings.iter().cloned());
    Ok(Prepared {
        plan,
        image,
        signed_by: extracted.verified.signed_by.map(|s| s.key_id),
        warnings,
    })
}

/// The facts of `node` and the plan for `image`.
fn make_plan(node: &Node, running: &ImageIdentity, image: &Image) -> Result<Plan, UpdateError> {
    let r = || -> Result<Plan> {
        let store = node.store.store();
        let cfg_path = node.boot.join("grub/grub.cfg");
        let boot_dirs = fs::read_dir(&node.boot)
            .with_context(|| format!("listing {}", node.boot.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let facts = NodeFacts {
            backend: node.store.name().to_string(),
            inventory: store.inventory()?,
            current_layer: node.current_layer.clone(),
            grub_cfg: fs::read_to_string(&cfg_path)
                .with_context(|| format!("reading {}", cfg_path.display()))?,
            grubenv: boot::read_env(&node.boot)?,
            boot_dirs,
            current_root_args: store.root_args(&node.current_layer)?.args,
            current_image_args: running.kernel_args.clone(),
        };
        let new_layer = LayerName::first(&image.nvr);
        let img = ImageFacts {
            nvr: image.nvr.clone(),
            kernel_args: image.identity.kernel_args.clone(),
            root_args: store.root_args(&new_layer)?.args,
        };
        Ok(plan::plan(&facts, &img)?)
    };
    r().context("planning the update")
        .map_err(UpdateError::Refused)
}

type Applied = (MergeReport, Vec<PathBuf>, LabelReport, bool, Vec<String>);

/// The steps that change the node, each recording its undo as soon as it
/// made its change.
fn apply(
    node: &Node,
    fp: Failpoint,
    prep: &Prepared,
    work: &Path,
    mounts: &mut Mounts,
    txn: &mut Transaction,
    progress: &mut dyn Progress,
) -> Result<Applied> {
    let (store, plan, image) = (node.store.store(), &prep.plan, &prep.image);
    txn.begin(Step::Base);
    run_step(Step::Base, fp, progress, |_| {
        // Journaled first: a kill while the base is written leaves it known.
        txn.push(Step::Base, Undo::RemoveBase(plan.new_base.clone()));
        store.add_base(&plan.new_base, node.store.base_source(image))
    })?;
    txn.begin(Step::Layer);
    run_step(Step::Layer, fp, progress, |_| {
        txn.push(Step::Layer, Undo::RemoveLayer(plan.new_layer.clone()));
        let layer = store.add_layer(&plan.new_base)?;
        if layer != plan.new_layer {
            txn.push(Step::Layer, Undo::RemoveLayer(layer.clone()));
            bail!(
                "the store made the layer {layer}, the plan says {}",
                plan.new_layer
            );
        }
        Ok(())
    })?;
    let layer_root = work.join("layer");
    txn.begin(Step::EtcMerge);
    let (merge, retargeted, warnings) = run_step(Step::EtcMerge, fp, progress, |p| {
        store.mount_layer(&plan.new_layer, &layer_root)?;
        mounts.adopt(&layer_root);
        let old_root = node.store.base_root(&plan.old_base, work, mounts)?;
        let merged = merge_etc(node, plan, &old_root, &layer_root, p)?;
        let (uids, gids) = (merged.0.accounts.uid_map(), merged.0.accounts.gid_map());
        let n = remap_ids(&layer_root, &layer_root.join("etc"), &uids, &gids)
            .context("giving the new image's files to the node's ids")?;
        if n > 0 {
            p.note(
                Some(Step::EtcMerge),
                &format!("{n} files of the new layer given to the node's ids ({uids:?} {gids:?})"),
            );
        }
        Ok(merged)
    })?;
    txn.begin(Step::Var);
    let var_added = run_step(Step::Var, fp, progress, |p| {
        let added = var::add_new_paths(&layer_root.join("var"), &node.var(), &mut |path| {
            txn.push(Step::Var, Undo::RemovePath(path.to_path_buf()));
        })?;
        for a in &added {
            p.note(Some(Step::Var), &format!("added /var/{}", a.display()));
        }
        Ok(added)
    })?;
    txn.begin(Step::Labels);
    let labels = run_step(Step::Labels, fp, progress, |p| {
        let report = labels::relabel_etc(&layer_root)?;
        if !report.checked {
            p.note(
                Some(Step::Labels),
                "the new image has no SELinux policy: labels not checked",
            );
        }
        for r in &report.relabeled {
            p.note(Some(Step::Labels), &format!("relabelled {r}"));
        }
        Ok(report)
    })?;
    mounts.unmount(&layer_root)?;
    txn.begin(Step::Kernel);
    run_step(Step::Kernel, fp, progress, |_| {
        txn.push(
            Step::Kernel,
            Undo::RemovePath(boot::layer_dir(&node.boot, &plan.new_layer)),
        );
        boot::install_kernel(&node.boot, &plan.new_layer, &image.kernel, &image.initrd)
    })?;
    txn.begin(Step::BootEntry);
    run_step(Step::BootEntry, fp, progress, |_| {
        txn.push(
            Step::BootEntry,
            Undo::save_file(&node.boot.join("grub/grub.cfg"))?,
        );
        boot::write_grub_cfg(&node.boot, &plan.boot_uuid, &plan.entries, None)
    })?;
    txn.begin(Step::Trial);
    run_step(Step::Trial, fp, progress, |_| {
        txn.push(
            Step::Trial,
            Undo::save_file(&node.boot.join("grub/grubenv"))?,
        );
        boot::arm_trial(&node.boot, &plan.trial)?;
        check_env(&node.boot, plan)
    })?;
    Ok((merge, var_added, labels, retargeted, warnings))
}

/// The three-way merge into a fresh folder beside the new layer's `/etc`,
/// swapped in when whole; then the root entry of its fstab moved to the
/// new layer.
fn merge_etc(
    node: &Node,
    plan: &Plan,
    old_root: &Path,
    layer_root: &Path,
    progress: &mut dyn Progress,
) -> Result<(MergeReport, bool, Vec<String>)> {
    let etc = layer_root.join("etc");
    let merged = layer_root.join(".etc.merged");
    let image_etc = layer_root.join(".etc.image");
    let report = etc_merge::merge(&old_root.join("etc"), &node.etc(), &etc, &merged)
        .context("merging the old image's /etc, the node's /etc and the new image's /etc")?;
    fs::rename(&etc, &image_etc).with_context(|| {
        format!(
            "setting the new image's /etc aside in {}",
            layer_root.display()
        )
    })?;
    fs::rename(&merged, &etc).with_context(|| {
        format!(
            "putting the merged /etc in place in {}",
            layer_root.display()
        )
    })?;
    fs::remove_dir_all(&image_etc).with_context(|| format!("removing {}", image_etc.display()))?;
    for c in &report.conflicts {
        progress.note(
            Some(Step::EtcMerge),
            &format!(
                "conflict: /etc/{} ({:?}){}",
                c.path.display(),
                c.kind,
                c.new_version
                    .as_ref()
                    .map(|n| format!(", the new image's version is /etc/{}", n.display()))
                    .unwrap_or_default()
            ),
        );
    }
    let fstab = etc.join("fstab");
    let mut warnings = Vec::new();
    let retargeted = match fs::read_to_string(&fstab) {
        Ok(text) => {
            let (new_text, changed) =
                plan::retarget_fstab(&text, &plan.current_layer, &plan.new_layer);
            if changed {
                let mode = fs::metadata(&fstab)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
                    .unwrap_or(0o644);
                fsutil::write_atomic(&fstab, new_text.as_bytes(), fsutil::Options::mode(mode))?;
            }
            changed
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warnings.push("the merged /etc has no fstab".to_string());
            false
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", fstab.display())),
    };
    Ok((report, retargeted, warnings))
}

/// What `nodectl info` shows of this update once the new layer runs.
fn update_record(prepared: &Prepared, merge: &MergeReport) -> UpdateRecord {
    let accounts = &merge.accounts;
    UpdateRecord {
        layer: prepared.plan.new_layer.to_string(),
        from: prepared.plan.current_layer.to_string(),
        signed_by: prepared.signed_by.clone(),
        at: hostinfo::units::UtcTime::from_unix(hostinfo::units::now_unix()).to_string(),
        etc_conflicts: merge
            .conflicts
            .iter()
            .map(|c| format!("/etc/{}", c.path.display()))
            .collect(),
        account_conflicts: accounts
            .users
            .conflicts
            .iter()
            .map(|u| format!("user {u}"))
            .chain(
                accounts
                    .groups
                    .conflicts
                    .iter()
                    .map(|g| format!("group {g}")),
            )
            .collect(),
    }
}

/// grub's environment after arming: the trial set, the default unchanged.
fn check_env(boot_dir: &Path, plan: &Plan) -> Result<()> {
    let env = boot::read_env(boot_dir)?;
    let get = |k: &str| boot::env_value(&env, k);
    let trial = Some(plan.trial.to_string());
    if get("next_entry") != trial
        || get(boot::TRIAL_KEY) != trial
        || get("saved_entry") != plan.default
    {
        bail!(
            "grub's environment in {} does not read back as armed (next_entry={} and {}={}, \
             saved_entry unchanged)",
            boot_dir.join("grub/grubenv").display(),
            plan.trial,
            boot::TRIAL_KEY,
            plan.trial
        );
    }
    Ok(())
}

/// Takes the update lock, or says another update runs.
fn lock(path: &Path) -> Result<nix::fcntl::Flock<fs::File>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the update lock {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        anyhow::anyhow!(
            "another update is running (it holds {}: {e}); wait for it to finish",
            path.display()
        )
    })
}
