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
pub mod customize;
pub mod initramfs;
pub mod iso9660;
pub mod label;
pub mod manifest;
pub mod payload;
pub mod policy;
pub mod progress;
pub mod recipe;
pub mod rootfs;
pub mod squash;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use hostinfo::boot_chain;
use serde::Serialize;

use crate::assemble::BootFiles;
use crate::bootstrap::{Bootstrap, Mmdebstrap};
use crate::cache::{Cache, Key, file_sha256};
use crate::initramfs::Flavor;
use crate::manifest::{BundleMetadata, Manifest};
use crate::payload::Payload;
use crate::progress::Progress;
use crate::recipe::Recipe;
use crate::rootfs::Root;

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
    /// Signs the update bundle; its public key goes into the image's
    /// `/etc/hvnode/trusted.d`, so the node trusts the updates that follow.
    pub sign_key: Option<std::sync::Arc<bundle::SignKey>>,
    /// When another build holds the cache: wait for it (test builds that run
    /// side by side) rather than stop with an error.
    pub wait_for_cache: bool,
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

/// Puts the signing key's public half into the image's trusted keys, as
/// `hvnode-KEYID.pub`.
fn trust_key(root: &Root, key: &bundle::SignKey) -> Result<()> {
    let path = root
        .join(bundle::TRUSTED_KEYS_DIR)
        .join(format!("hvnode-{}.pub", key.key_id()));
    fsutil::write_atomic(
        &path,
        key.public_key_file().as_bytes(),
        fsutil::Options {
            create_parents: true,
            ..fsutil::Options::default()
        },
    )
    .with_context(|| {
        format!(
            "putting the update key into the image at {}",
            path.display()
        )
    })
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
    let epoch = opts.epoch.unwrap_or_else(|| default_epoch(&opts.workspace));
    prepare_dirs(opts)?;
    let _lock = lock_cache(&opts.cache_dir, opts.wait_for_cache)?;
    let mut build = Build::new(opts, &recipe, epoch)?;

    let base = build.bootstrap()?;
    let root = build.install_hvnode(&base.tar)?;
    let kernel = build.initramfs(&root, &base.key)?;
    build.label(&root)?;
    let squashfs = build.squash(&root)?;
    let files = build.assemble(&root, &kernel, &squashfs)?;
    let artifacts = build.checksum(&root, &kernel, &files)?;

    fs::remove_dir_all(&build.work)
        .with_context(|| format!("removing the work tree {}", build.work.display()))?;
    Ok(Report {
        nvr: build.nvr,
        out: opts.out.clone(),
        epoch,
        artifacts,
        stages: build.progress.timings.clone(),
        cached: build.cached,
    })
}

/// Makes the cache and output directories and checks they have room.
fn prepare_dirs(opts: &Options) -> Result<()> {
    fs::create_dir_all(&opts.cache_dir)
        .with_context(|| format!("creating {}", opts.cache_dir.display()))?;
    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    check_space(&opts.cache_dir, WORK_SPACE, "the cache directory")?;
    check_space(&opts.out, OUT_SPACE, "the output directory")?;
    Ok(())
}

/// Takes the cache directory for this build: one build at a time per cache;
/// with `wait`, after the build that holds it. The lock holds until the
/// returned value is dropped.
fn lock_cache(cache_dir: &Path, wait: bool) -> Result<nix::fcntl::Flock<fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let path = cache_dir.join(".build.lock");
    let open = || fs::File::create(&path).with_context(|| format!("creating {}", path.display()));
    match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((_, e)) if wait && e == nix::errno::Errno::EAGAIN => {
            eprintln!(
                "another build is using {}: waiting for it to finish",
                cache_dir.display()
            );
            Flock::lock(open()?, FlockArg::LockExclusive).map_err(|(_, e)| {
                anyhow::anyhow!("waiting for the lock of {}: {e}", cache_dir.display())
            })
        }
        Err((_, e)) => Err(anyhow::anyhow!(
            "another build is using {} ({e}); wait for it to finish",
            cache_dir.display()
        )),
    }
}

/// The bootstrapped base: its tarball in the stage cache and the cache key,
/// which the initramfs key builds on.
struct Base {
    tar: PathBuf,
    key: String,
}

/// The kernel of the image and the live initramfs built for it.
struct Kernel {
    version: String,
    vmlinuz: PathBuf,
    /// The live boot's initramfs, beside the tree (the installed node's
    /// is in the tree's `/boot`).
    live_initrd: PathBuf,
}

/// One build in progress: the inputs every stage reads and what the stages
/// report.
struct Build<'a> {
    opts: &'a Options,
    recipe: &'a Recipe,
    /// The folder of the recipe (its `files.source` is relative to it).
    recipe_dir: PathBuf,
    nvr: String,
    epoch: i64,
    cache: Cache,
    /// The build's scratch folder (the unpacked tree and the images).
    work: PathBuf,
    /// Where each stage's tool output goes.
    logs: PathBuf,
    progress: Progress,
    /// The stages taken from the cache.
    cached: Vec<String>,
}

impl<'a> Build<'a> {
    /// Makes the work and log folders (forgetting the logs of a build
    /// before).
    fn new(opts: &'a Options, recipe: &'a Recipe, epoch: i64) -> Result<Self> {
        let nvr = recipe.nvr();
        let work = opts.cache_dir.join("work").join(&nvr);
        fs::create_dir_all(&work)?;
        let logs = opts.cache_dir.join("logs");
        fs::create_dir_all(&logs)?;
        let build = Build {
            opts,
            recipe,
            recipe_dir: opts.recipe.parent().unwrap_or(Path::new(".")).to_path_buf(),
            nvr,
            epoch,
            cache: Cache::new(opts.cache_dir.join("stages")),
            work,
            logs,
            progress: Progress::new(8),
            cached: Vec::new(),
        };
        for stage in [
            "bootstrap",
            "configure",
            "initramfs",
            "initramfs-live",
            "squash",
            "assemble",
        ] {
            let _ = fs::remove_file(build.log(stage));
        }
        Ok(build)
    }

    /// hvnode's files for the image (the recipe's `files.source`).
    fn files_dir(&self) -> PathBuf {
        self.recipe_dir.join(&self.recipe.files.source)
    }

    /// The log file of `stage`.
    fn log(&self, stage: &str) -> PathBuf {
        self.logs.join(format!("{}-{stage}.log", self.nvr))
    }

    /// Stage 1: the Debian base from mmdebstrap, or from the cache.
    fn bootstrap(&mut self) -> Result<Base> {
        let st = self.progress.stage("bootstrap");
        let bootstrapper = Mmdebstrap::new(self.opts.cache_dir.join("debs"));
        // The base's own time stamp follows the recipe, not the whole tree, so
        // that commits elsewhere do not invalidate the cached base.
        let base_epoch = recipe_epoch(&self.opts.recipe).unwrap_or(self.epoch);
        let mut key = Key::new("bootstrap");
        bootstrapper.key(self.recipe, &mut key)?;
        key.add("epoch", base_epoch.to_string().as_bytes());
        let key = key.hex();
        let cached = self
            .cache
            .get("bootstrap", &key, "tar")
            .filter(|_| !self.opts.rebuild);
        let tar = match cached {
            Some(t) => {
                self.cached.push("bootstrap".to_string());
                self.progress.finish(st, "cached");
                t
            }
            None => {
                st.note("mmdebstrap");
                let staged = self.cache.staging("bootstrap", &key, "tar")?;
                bootstrapper.run(self.recipe, &staged, &self.log("bootstrap"), base_epoch)?;
                let t = self.cache.commit(&staged, "bootstrap", &key, "tar")?;
                self.progress.finish(st, "built");
                t
            }
        };
        Ok(Base { tar, key })
    }

    /// Stages 2 and 3: unpacks the base, installs hvnode's binaries, units
    /// and files into it and configures the tree.
    fn install_hvnode(&mut self, base_tar: &Path) -> Result<Root> {
        let st = self.progress.stage("install hvnode");
        let root = rootfs::unpack(base_tar, &self.work.join("root"))?;
        let payload = Payload {
            binaries: payload::workspace_binaries(&self.opts.workspace)?,
            units_dir: self.opts.workspace.join("systemd"),
            files_dir: self.files_dir(),
            kickstart_dir: self.opts.workspace.join("kickstart"),
        };
        let units = payload.install(&root)?;
        let policies = match &self.recipe.selinux.sources {
            Some(src) => policy::compile(
                &self.recipe_dir.join(src),
                &self.work.join("selinux"),
                &root.join("/usr/share/hvnode/selinux"),
                &self.log("configure"),
            )?,
            None => Vec::new(),
        };
        if let Some(key) = &self.opts.sign_key {
            trust_key(&root, key)?;
        }
        self.progress.finish(
            st,
            &format!(
                "{} binaries, {} units, {} policy modules",
                payload.binaries.len(),
                units.len(),
                policies.len()
            ),
        );

        let st = self.progress.stage("configure");
        configure::configure(&root, self.recipe, &units, self.epoch)?;
        self.progress.finish(st, "done");
        Ok(root)
    }

    /// Stage 4: the two initramfs images, each from dracut or from the
    /// cache: the installed node's into the tree's `/boot`, the live
    /// boot's into the work folder (the medium carries it, the root image
    /// does not).
    fn initramfs(&mut self, root: &Root, base_key: &str) -> Result<Kernel> {
        let st = self.progress.stage("initramfs");
        let version = initramfs::kernel_version(root)?;
        let live_initrd = self.work.join(format!("initrd-live.img-{version}"));
        let initrd = root.join(&format!("/boot/initrd.img-{version}"));
        let mut notes = Vec::new();
        // The installed node's last: the tree keeps its configuration.
        for (flavor, dest) in [(Flavor::Live, &live_initrd), (Flavor::Installed, &initrd)] {
            let stage = flavor.stage();
            let mut key = Key::new(stage);
            key.add("base", base_key.as_bytes())
                .add(
                    "dracut.conf",
                    initramfs::dracut_conf(self.recipe, flavor).as_bytes(),
                )
                .add("dracut args", initramfs::DRACUT_ARGS.join(" ").as_bytes());
            // Only files dracut reads go into the key: an agent-only change
            // keeps the cached initramfs.
            let files_dir = self.files_dir();
            for dir in initramfs::INPUT_DIRS {
                cache::add_tree(&mut key, dir, &files_dir.join(dir))?;
            }
            // dracut copies the tree's os-release (initrd-release), which the
            // configure stage changed: a cached image with the old one differed
            // from a fresh build.
            let os_release = configure::resolve_in_image(root, configure::OS_RELEASE)?;
            key.add(
                "os-release",
                &fs::read(root.join(&os_release)).with_context(|| {
                    format!("reading the image's os-release ({os_release}) for the initramfs key")
                })?,
            );
            let key = key.hex();
            initramfs::write_conf(root, self.recipe, flavor)?;
            let cached = self
                .cache
                .get(stage, &key, "img")
                .filter(|_| !self.opts.rebuild);
            match cached {
                Some(cached_initrd) => {
                    fs::copy(&cached_initrd, dest)?;
                    self.cached.push(stage.to_string());
                    notes.push(format!("{stage} cached"));
                }
                None => {
                    st.note(&format!("dracut ({stage})"));
                    initramfs::build(root, flavor, dest, &self.log(stage), self.epoch)?;
                    let staged = self.cache.staging(stage, &key, "img")?;
                    fs::copy(dest, &staged)?;
                    self.cache.commit(&staged, stage, &key, "img")?;
                    notes.push(format!("{stage} built"));
                }
            }
        }
        self.progress.finish(st, &notes.join(", "));
        Ok(Kernel {
            vmlinuz: root.join(&format!("/boot/vmlinuz-{version}")),
            version,
            live_initrd,
        })
    }

    /// Stage 5: SELinux labels (the last stage that writes into the tree).
    fn label(&mut self, root: &Root) -> Result<()> {
        let st = self.progress.stage("label");
        root.clamp_mtimes(self.epoch)?;
        label::label(root, &self.log("label"))?;
        self.progress.finish(st, "done");
        Ok(())
    }

    /// Stage 6: the tree as a squashfs image in the output folder.
    fn squash(&mut self, root: &Root) -> Result<PathBuf> {
        let st = self.progress.stage("squash");
        let squashfs = self.opts.out.join(format!("{}.squashfs.img", self.nvr));
        let partial = assemble::partial_name(&squashfs);
        let log = self.log("squash");
        squash::build(
            root,
            &self.work,
            &partial,
            &self.nvr,
            self.epoch,
            self.recipe.outputs.squashfs_level,
            &log,
        )?;
        fs::rename(&partial, &squashfs)?;
        self.progress.finish(st, "done");
        Ok(squashfs)
    }

    /// Stage 7: the outputs the recipe asks for (ISO, PXE tree, update
    /// bundle); returns every output file, the squashfs image first.
    fn assemble(&mut self, root: &Root, kernel: &Kernel, squashfs: &Path) -> Result<Vec<PathBuf>> {
        let (opts, recipe, nvr, epoch) = (self.opts, self.recipe, &self.nvr, self.epoch);
        let st = self.progress.stage("assemble");
        // Every UEFI loader a medium, the PXE tree or an install takes from
        // the image is there and signed.
        let all: Vec<boot_chain::Loader> = boot_chain::MEDIUM
            .iter()
            .chain(&boot_chain::NETWORK)
            .chain(&boot_chain::INSTALLED)
            .copied()
            .collect();
        boot_chain::check_signed(&root.path, &all).map_err(|e| {
            anyhow::anyhow!(
                "checking the image's UEFI Secure Boot chain: {e}; add shim-signed and \
                 grub-efi-amd64-signed to the recipe's packages"
            )
        })?;
        let boot = BootFiles {
            kernel: kernel.vmlinuz.clone(),
            initrd: kernel.live_initrd.clone(),
            squashfs: squashfs.to_path_buf(),
            kickstart: opts.workspace.join("kickstart/interactive-defaults.ks"),
            loaders: root.path.clone(),
        };
        let mut files = vec![squashfs.to_path_buf()];
        if recipe.outputs.iso {
            st.note("ISO");
            let iso = opts.out.join(format!("{nvr}.iso"));
            assemble::iso(
                recipe,
                &boot,
                &self.work,
                &iso,
                epoch,
                &self.log("assemble"),
            )?;
            files.push(iso);
        }
        if recipe.outputs.pxe {
            st.note("PXE tree");
            let pxe = opts.out.join("pxe");
            assemble::pxe(recipe, &boot, &pxe)?;
            let mut pxe_files: Vec<PathBuf> = walk_files(&pxe)?;
            pxe_files.sort();
            files.extend(pxe_files);
        }
        if recipe.outputs.update_bundle {
            st.note("update bundle");
            let bundle = opts.out.join(format!("{nvr}.update.tar"));
            let meta = BundleMetadata {
                nvr: nvr.clone(),
                kernel: kernel.version.clone(),
                build_epoch: epoch,
                squashfs: format!("{nvr}.squashfs.img"),
                squashfs_size: fs::metadata(squashfs)?.len(),
                squashfs_sha256: file_sha256(squashfs)?,
            };
            manifest::update_bundle(&bundle, squashfs, &meta, epoch, opts.sign_key.as_deref())?;
            files.push(bundle);
        }
        self.progress.finish(st, "done");
        Ok(files)
    }

    /// Stage 8: `manifest.json` and `SHA256SUMS` over `files` and the
    /// manifest; returns every artifact, the manifest last.
    fn checksum(
        &mut self,
        root: &Root,
        kernel: &Kernel,
        files: &[PathBuf],
    ) -> Result<Vec<manifest::Artifact>> {
        let out = &self.opts.out;
        let st = self.progress.stage("checksum");
        let artifacts = manifest::artifacts(out, files)?;
        let packages = manifest::packages(root)?;
        let boot_chain = manifest::boot_chain(root, &packages, &kernel.version)?;
        let m = Manifest {
            api_version: "hvnode.io/v1",
            kind: "ImageManifest",
            nvr: self.nvr.clone(),
            kernel: kernel.version.clone(),
            build_epoch: self.epoch,
            recipe_sha256: file_sha256(&self.opts.recipe)?,
            packages,
            boot_chain,
            artifacts: artifacts.clone(),
        };
        let manifest_path = out.join("manifest.json");
        fsutil::write_atomic(
            &manifest_path,
            format!("{}\n", serde_json::to_string_pretty(&m)?).as_bytes(),
            fsutil::Options::default(),
        )?;
        let mut all = artifacts;
        all.extend(manifest::artifacts(out, &[manifest_path])?);
        fsutil::write_atomic(
            &out.join("SHA256SUMS"),
            manifest::sha256sums(&all).as_bytes(),
            fsutil::Options::default(),
        )?;
        self.progress.finish(st, "done");
        Ok(all)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_trusted_by_the_image() {
        if !hvnode_testutil::require_tool("minisign") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let (sk, pk) = (d.path().join("k.key"), d.path().join("k.pub"));
        let made = Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&pk)
            .arg("-s")
            .arg(&sk)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let key = bundle::SignKey::load(&sk, None).unwrap();
        let root = Root {
            path: d.path().join("root"),
        };
        trust_key(&root, &key).unwrap();
        let trusted = root
            .join(bundle::TRUSTED_KEYS_DIR)
            .join(format!("hvnode-{}.pub", key.key_id()));
        let line = |t: String| t.lines().nth(1).unwrap().to_string();
        assert_eq!(
            line(fs::read_to_string(&trusted).unwrap()),
            line(fs::read_to_string(&pk).unwrap()),
            "the key minisign made, as the node will read it"
        );
        // The node accepts it as a trusted key.
        let keys = bundle::TrustedKeys::load(trusted.parent().unwrap()).unwrap();
        assert!(keys.find(key.key_id()).is_some());
    }

    #[test]
    fn a_second_build_stops_or_waits_for_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_cache(dir.path(), false).unwrap();
        let e = lock_cache(dir.path(), false).unwrap_err();
        assert!(e.to_string().contains("another build is using"), "{e}");
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || lock_cache(&path, true).map(|_| ()));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!waiter.is_finished(), "it waits while the first build runs");
        drop(first);
        waiter.join().unwrap().unwrap();
    }
}
