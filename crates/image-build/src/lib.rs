//! hvnode's image builder: a recipe (`image/hvnode.toml`) becomes the node
//! image and everything made from it, in named stages:
//!
//! bootstrap → install hvnode → configure → initramfs → label → squash →
//! assemble → checksum
//!
//! The bootstrap (mmdebstrap) and the initramfs are cached by the sha256 of
//! their inputs, so a rebuild after changing only hvnode's binaries or
//! files starts from the cached base. `SOURCE_DATE_EPOCH` fixes every time
//! stamp; the same recipe and package cache give the same bytes.

pub mod assemble;
pub mod bootstrap;
pub mod cache;
pub mod configure;
pub mod initramfs;
pub mod label;
pub mod manifest;
pub mod payload;
pub mod progress;
pub mod recipe;
pub mod rootfs;
pub mod squash;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use serde::Serialize;

use crate::assemble::BootFiles;
use crate::bootstrap::{Bootstrap, Mmdebstrap};
use crate::cache::{Cache, Key, file_sha256};
use crate::manifest::{BundleMetadata, Manifest};
use crate::payload::Payload;
use crate::progress::Progress;
use crate::recipe::Recipe;

/// Space a build needs in the cache directory (tree, images, stage cache).
const WORK_SPACE: u64 = 8 << 30;
/// Space the outputs need.
const OUT_SPACE: u64 = 2 << 30;

/// What to build and where.
#[derive(Debug, Clone)]
pub struct Options {
    pub recipe: PathBuf,
    pub out: PathBuf,
    /// Stage cache, package cache and work trees (outside the clone).
    pub cache_dir: PathBuf,
    /// The cargo workspace whose binaries go into the image.
    pub workspace: PathBuf,
    /// Ignore cached stages (the .deb cache is still used).
    pub rebuild: bool,
    /// Build time stamp; default `SOURCE_DATE_EPOCH`, else the last commit.
    pub epoch: Option<i64>,
}

/// What a build made and how long each stage took.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub nvr: String,
    pub out: PathBuf,
    pub epoch: i64,
    pub artifacts: Vec<manifest::Artifact>,
    pub stages: Vec<(String, f64)>,
    pub cached: Vec<String>,
}

fn free_space(path: &Path) -> Result<u64> {
    let s = nix::sys::statvfs::statvfs(path)
        .with_context(|| format!("checking free space in {}", path.display()))?;
    Ok(s.blocks_available() as u64 * s.fragment_size() as u64)
}

fn check_space(path: &Path, need: u64, what: &str) -> Result<()> {
    let free = free_space(path)?;
    if free < need {
        bail!(
            "{what} {} has {} MiB free; a build needs {} MiB there: free some space or point HVNODE_CACHE / --out elsewhere",
            path.display(),
            free >> 20,
            need >> 20
        );
    }
    Ok(())
}

/// The build's time stamp: `SOURCE_DATE_EPOCH`, else the workspace's last
/// commit, else now.
pub fn default_epoch(workspace: &Path) -> i64 {
    if let Some(e) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return e;
    }
    let git = Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args(["log", "-1", "--format=%ct"])
        .run_capture()
        .ok()
        .and_then(|s| s.trim().parse().ok());
    git.unwrap_or_else(|| i64::try_from(hostinfo::now_unix()).unwrap_or(i64::MAX))
}

/// The time of the last commit that changed the recipe (with
/// `SOURCE_DATE_EPOCH` set, that instead).
fn recipe_epoch(recipe: &Path) -> Option<i64> {
    if let Some(e) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Some(e);
    }
    let dir = recipe.parent()?;
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%ct", "--"])
        .arg(recipe)
        .run_capture()
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Builds everything the recipe asks for.
pub fn build(opts: &Options) -> Result<Report> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "building an image needs root (mmdebstrap, chroot, mounts, SELinux labels): run it with sudo"
        );
    }
    let recipe = Recipe::load(&opts.recipe)?;
    let recipe_dir = opts.recipe.parent().unwrap_or(Path::new(".")).to_path_buf();
    let nvr = recipe.nvr();
    let epoch = opts.epoch.unwrap_or_else(|| default_epoch(&opts.workspace));
    fs::create_dir_all(&opts.cache_dir)
        .with_context(|| format!("creating {}", opts.cache_dir.display()))?;
    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    check_space(&opts.cache_dir, WORK_SPACE, "the cache directory")?;
    check_space(&opts.out, OUT_SPACE, "the output directory")?;
    let lock_file = fs::File::create(opts.cache_dir.join(".build.lock"))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| {
            anyhow::anyhow!(
                "another build is using {} ({e}); wait for it to finish",
                opts.cache_dir.display()
            )
        })?;

    let cache = Cache::new(opts.cache_dir.join("stages"));
    let work = opts.cache_dir.join("work").join(&nvr);
    fs::create_dir_all(&work)?;
    let logs = opts.cache_dir.join("logs");
    fs::create_dir_all(&logs)?;
    let log = |stage: &str| logs.join(format!("{nvr}-{stage}.log"));
    for stage in ["bootstrap", "initramfs", "squash", "assemble"] {
        let _ = fs::remove_file(log(stage));
    }
    let mut progress = Progress::new(8);
    let mut cached = Vec::new();

    // 1. bootstrap
    let st = progress.stage("bootstrap");
    let bootstrapper = Mmdebstrap::new(opts.cache_dir.join("debs"));
    // The base's own time stamp follows the recipe, not the whole tree, so
    // that commits elsewhere do not invalidate the cached base.
    let base_epoch = recipe_epoch(&opts.recipe).unwrap_or(epoch);
    let mut key = Key::new("bootstrap");
    bootstrapper.key(&recipe, &mut key)?;
    key.add("epoch", base_epoch.to_string().as_bytes());
    let base_key = key.hex();
    let base_tar = match cache
        .get("bootstrap", &base_key, "tar")
        .filter(|_| !opts.rebuild)
    {
        Some(t) => {
            cached.push("bootstrap".to_string());
            progress.finish(st, "cached");
            t
        }
        None => {
            st.note("mmdebstrap");
            let staged = cache.staging("bootstrap", &base_key, "tar")?;
            bootstrapper.run(&recipe, &staged, &log("bootstrap"), base_epoch)?;
            let t = cache.commit(&staged, "bootstrap", &base_key, "tar")?;
            progress.finish(st, "built");
            t
        }
    };

    // 2. install hvnode
    let st = progress.stage("install hvnode");
    let root = rootfs::unpack(&base_tar, &work.join("root"))?;
    let payload = Payload {
        binaries: payload::workspace_binaries(&opts.workspace)?,
        units_dir: opts.workspace.join("systemd"),
        files_dir: recipe_dir.join(&recipe.files.source),
        kickstart_dir: opts.workspace.join("kickstart"),
    };
    let units = payload.install(&root)?;
    progress.finish(
        st,
        &format!("{} binaries, {} units", payload.binaries.len(), units.len()),
    );

    // 3. configure
    let st = progress.stage("configure");
    configure::configure(&root, &recipe, &units, epoch)?;
    progress.finish(st, "done");

    // 4. initramfs
    let st = progress.stage("initramfs");
    let kver = initramfs::kernel_version(&root)?;
    let mut key = Key::new("initramfs");
    key.add("base", base_key.as_bytes())
        .add("dracut.conf", initramfs::dracut_conf(&recipe).as_bytes())
        .add("dracut args", initramfs::DRACUT_ARGS.join(" ").as_bytes());
    // Only files dracut reads go into the key: an agent-only change keeps
    // the cached initramfs.
    for dir in initramfs::INPUT_DIRS {
        cache::add_tree(&mut key, dir, &payload.files_dir.join(dir))?;
    }
    let initrd_key = key.hex();
    let initrd_in_image = root.join(&format!("/boot/initrd.img-{kver}"));
    initramfs::write_conf(&root, &recipe)?;
    match cache
        .get("initramfs", &initrd_key, "img")
        .filter(|_| !opts.rebuild)
    {
        Some(cached_initrd) => {
            fs::copy(&cached_initrd, &initrd_in_image)?;
            cached.push("initramfs".to_string());
            progress.finish(st, "cached");
        }
        None => {
            st.note("dracut");
            let built = initramfs::build(&root, &log("initramfs"), epoch)?;
            let staged = cache.staging("initramfs", &initrd_key, "img")?;
            fs::copy(&built, &staged)?;
            cache.commit(&staged, "initramfs", &initrd_key, "img")?;
            progress.finish(st, "built");
        }
    }

    // 5. label (the last stage that writes into the tree)
    let st = progress.stage("label");
    root.clamp_mtimes(epoch)?;
    label::label(&root, &log("label"))?;
    progress.finish(st, "done");

    // 6. squash
    let st = progress.stage("squash");
    let squashfs_out = opts.out.join(format!("{nvr}.squashfs.img"));
    let squashfs_partial = assemble::partial_name(&squashfs_out);
    squash::build(&root, &work, &squashfs_partial, &nvr, epoch, &log("squash"))?;
    fs::rename(&squashfs_partial, &squashfs_out)?;
    progress.finish(st, "done");

    // 7. assemble
    let st = progress.stage("assemble");
    let kernel = root.join(&format!("/boot/vmlinuz-{kver}"));
    let boot = BootFiles {
        kernel: kernel.clone(),
        initrd: initrd_in_image.clone(),
        squashfs: squashfs_out.clone(),
        kickstart: opts.workspace.join("kickstart/interactive-defaults.ks"),
    };
    let mut files = vec![squashfs_out.clone()];
    if recipe.outputs.iso {
        st.note("ISO");
        let iso = opts.out.join(format!("{nvr}.iso"));
        assemble::iso(&recipe, &boot, &work, &iso, epoch, &log("assemble"))?;
        files.push(iso);
    }
    if recipe.outputs.pxe {
        st.note("PXE tree");
        let pxe = opts.out.join("pxe");
        assemble::pxe(&recipe, &boot, &pxe)?;
        let mut pxe_files: Vec<PathBuf> = walk_files(&pxe)?;
        pxe_files.sort();
        files.extend(pxe_files);
    }
    if recipe.outputs.update_bundle {
        st.note("update bundle");
        let bundle = opts.out.join(format!("{nvr}.update.tar"));
        let meta = BundleMetadata {
            nvr: nvr.clone(),
            kernel: kver.clone(),
            build_epoch: epoch,
            squashfs: format!("{nvr}.squashfs.img"),
            squashfs_size: fs::metadata(&squashfs_out)?.len(),
            squashfs_sha256: file_sha256(&squashfs_out)?,
        };
        manifest::update_bundle(&bundle, &squashfs_out, &meta, epoch)?;
        files.push(bundle);
    }
    progress.finish(st, "done");

    // 8. checksum
    let st = progress.stage("checksum");
    let artifacts = manifest::artifacts(&opts.out, &files)?;
    let m = Manifest {
        api_version: "hvnode.io/v1",
        kind: "ImageManifest",
        nvr: nvr.clone(),
        kernel: kver,
        build_epoch: epoch,
        recipe_sha256: file_sha256(&opts.recipe)?,
        packages: manifest::packages(&root)?,
        artifacts: artifacts.clone(),
    };
    let manifest_path = opts.out.join("manifest.json");
    fsutil::write_atomic(
        &manifest_path,
        format!("{}\n", serde_json::to_string_pretty(&m)?).as_bytes(),
        fsutil::Options::default(),
    )?;
    let mut all = artifacts;
    all.extend(manifest::artifacts(&opts.out, &[manifest_path])?);
    fsutil::write_atomic(
        &opts.out.join("SHA256SUMS"),
        manifest::sha256sums(&all).as_bytes(),
        fsutil::Options::default(),
    )?;
    progress.finish(st, "done");

    fs::remove_dir_all(&work)
        .with_context(|| format!("removing the work tree {}", work.display()))?;
    Ok(Report {
        nvr,
        out: opts.out.clone(),
        epoch,
        artifacts: all,
        stages: progress.timings.clone(),
        cached,
    })
}

fn walk_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            out.extend(walk_files(&e.path())?);
        } else {
            out.push(e.path());
        }
    }
    Ok(out)
}
