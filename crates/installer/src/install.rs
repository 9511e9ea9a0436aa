//! The install, step by step. [`run`] checks everything before the first
//! write; [`Writer`] carries out the plan and, on failure, unmounts what it
//! mounted and wipes the partition table it wrote.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use hostinfo::{BlockDevice, human_bytes};
use kickstart::addon::REGISTER_ADDON;
use kickstart::node::{self, NodePlan};
use kickstart::sections::ScriptKind;
use kickstart::source::FsLoader;
use kickstart::{Kickstart, Severity, parse_file};
use layers::boot::{self, BootEntry};
use layers::btrfs::BtrfsStore;
use layers::fstab::{self, Entry};
use layers::lvm::LvmStore;
use layers::plain::PlainStore;
use layers::{LayerName, Nvr, RootArgs, Store, under};

use crate::disks;
use crate::labels::{label_paths, relabel};
use crate::payload::{self, Opened, Verified};
use crate::storage::{
    self, Backing, PlannedVolume, Role, Scheme, StoragePlan, StorePlan, partition_path,
};
use crate::volumes::{make_mount_points, migrate, volume_mkfs_options};
use crate::{Log, grub_password, interactive, labels, medium, scripts, source, target};

/// How the installer was started.
#[derive(Debug, Clone)]
pub struct Options {
    pub kickstart: Option<PathBuf>,
    pub from_boot: bool,
    pub dry_run: bool,
    pub work: PathBuf,
}

/// The label of the medium the live system booted from (`CDLABEL=` or
/// `LABEL=` in `root=live:`), which the installer never writes to.
pub fn boot_medium_label(cmdline: &str) -> Option<String> {
    cmdline.split_whitespace().find_map(|a| {
        let v = a.strip_prefix("root=live:")?;
        v.strip_prefix("CDLABEL=")
            .or_else(|| v.strip_prefix("LABEL="))
            .map(String::from)
    })
}

fn memory_bytes() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(4 << 30)
}

/// The installer mounts the kickstart's volume, the image (a loop mount of
/// a file) and the target's volumes on folders of its own. Debian's policy
/// confines mount(8) to a few mount-point types unless the boolean
/// `allow_mount_anyfile` is on (RHEL ships it on); the live system turns it
/// on for its lifetime only (not persistent: installed nodes keep Debian's
/// default).
fn allow_loop_mounts(log: &Log) {
    let enabled = Command::new("selinuxenabled")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !enabled {
        return;
    }
    if let Err(e) = Command::new("setsebool")
        .args(["allow_mount_anyfile", "on"])
        .run()
    {
        log.line(&format!("warning: {e}"));
    }
}

/// Parses and checks the kickstart; errors name file and line.
pub fn load_kickstart(path: &Path, log: &Log) -> Result<(Kickstart, NodePlan)> {
    let parse = parse_file(path, &FsLoader);
    for d in parse.diagnostics.iter() {
        log.line(&d.to_string());
    }
    if !parse.is_valid() {
        bail!(
            "{} is not a valid kickstart: fix the errors above (`hvnode ks validate` checks a kickstart before an install)",
            path.display()
        );
    }
    let plan = check_plan(&parse.kickstart, path, log)?;
    Ok((parse.kickstart, plan))
}

/// The node plan of a valid kickstart; errors name file and line.
fn check_plan(ks: &Kickstart, path: &Path, log: &Log) -> Result<NodePlan> {
    let (plan, diags) = node::plan(ks);
    for d in diags.iter() {
        log.line(&d.to_string());
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        bail!(
            "{} cannot install a node: fix the errors above",
            path.display()
        );
    }
    Ok(plan)
}

/// Runs an install (or a dry run) from start to end.
pub fn run(opts: &Options) -> Result<()> {
    fs::create_dir_all(&opts.work)
        .with_context(|| format!("creating the work folder {}", opts.work.display()))?;
    let log = Log::create(&opts.work.join("install.log"))?;
    allow_loop_mounts(&log);
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    // What `hvnode iso customize` embedded in the boot medium, if anything.
    let custom = source::medium_customization(Path::new(source::LIVE_MEDIUM))?;
    if custom.is_some() {
        log.line("the boot medium is customised (hvnode iso customize)");
    }
    // The medium's own kickstart only holds defaults the console may change.
    let mut defaults_only = false;
    let ks_path = match &opts.kickstart {
        Some(p) => p.clone(),
        None if opts.from_boot => {
            // Started early in the boot, not after udev's settle job (which
            // would hold back every other unit): the disks, the OEMDRV
            // volume and the medium must have appeared before they are
            // looked for.
            log.line("waiting for udev to announce the devices");
            Command::new("udevadm")
                .args(["settle", "--timeout=180"])
                .run_appending(log.path())
                .context("waiting for udev to announce the devices (udevadm settle)")?;
            let loc = source::locate(&cmdline, custom.as_ref())?;
            log.line(&format!("kickstart: {loc}"));
            defaults_only = loc == source::Location::Embedded;
            source::fetch(&loc, &opts.work.join("ks"))?
        }
        None => bail!("give the kickstart (--kickstart FILE) or --from-boot"),
    };
    log.line(&format!("reading the kickstart {}", ks_path.display()));
    let (mut ks, mut plan) = load_kickstart(&ks_path, &log)?;
    if let Some(engine) = custom.as_ref().and_then(|c| c.engine.as_ref()) {
        if medium::add_registration(&mut ks, engine) {
            log.line(&format!(
                "registration with {} from the boot medium (%addon {REGISTER_ADDON})",
                engine.address()
            ));
            plan = check_plan(&ks, &ks_path, &log)?;
        } else {
            log.line(&format!(
                "the kickstart's own %addon {REGISTER_ADDON} wins over the boot medium's engine {}",
                engine.address()
            ));
        }
    }

    scripts::run(&ks, ScriptKind::Pre, None, &log)?;
    let all = disks::list()?;
    let medium = boot_medium_label(&cmdline);
    let attended = !plan.unattended && !opts.dry_run;
    let (ks, plan, storage) = if attended {
        ask_until_planned(ks, &plan, &all, medium.as_deref(), defaults_only, &log)?
    } else {
        let storage = storage::plan(
            &plan.layout,
            &plan.disks,
            &all,
            medium.as_deref(),
            memory_bytes(),
        )?;
        (ks, plan, storage)
    };
    let saved_ks = if attended {
        Some(interactive::saved_kickstart(&ks)?)
    } else {
        None
    };
    let mut trust = payload::Trust::from_boot(&cmdline, plan.allow_unverified_image)?;
    let medium_keys = custom.as_ref().map_or(&[][..], |c| &c.trust_keys[..]);
    if !medium_keys.is_empty() {
        trust.keys = medium::trusted_keys_dir(&trust.keys, medium_keys, &opts.work)?;
    }
    log.line("checking the image (signature, sha256) before writing anything");
    let mut progress = |done: u64, total: Option<u64>| match total {
        Some(t) if t > 0 => log.line(&format!(
            "  image: {} of {} ({}%)",
            human_bytes(done as f64),
            human_bytes(t as f64),
            done * 100 / t
        )),
        _ => log.line(&format!("  image: {}", human_bytes(done as f64))),
    };
    let mut note = |s: &str| log.line(s);
    let verified =
        payload::fetch_and_verify(&plan.image, &trust, &opts.work, &mut note, &mut progress)?;
    log.line(&format!("image sha256 {}", verified.sha256));
    for proof in &verified.proofs {
        log.line(&format!("image verified: {proof}"));
    }
    if let Err(e) = storage::check_vg_name_free(&storage) {
        if !opts.dry_run {
            return Err(e);
        }
        log.line(&format!("warning: {e:#}"));
    }
    let firewall = format!("Firewall: {}", plan.firewall);
    println!("\nThe plan:\n{storage}{firewall}");
    log.raw(&format!("{storage}{firewall}\n"));
    if opts.dry_run {
        log.line("dry run: nothing was written");
        return Ok(());
    }
    if attended && !interactive::confirm(&storage)? {
        bail!("not confirmed: nothing was written");
    }
    let mut w = Writer {
        storage: &storage,
        work: opts.work.clone(),
        log: &log,
        mounts: Vec::new(),
        wrote: false,
        step: "starting",
    };
    let result = w.install(&ks, &plan, &verified, saved_ks.as_deref(), medium_keys);
    match result {
        Ok(()) => {
            w.unmount_all();
            log.line("hvnode is installed");
            crate::power::finish(&plan, opts.from_boot)
        }
        Err(e) => {
            let step = w.step;
            log.line(&format!("FAILED while {step}: {e:#}"));
            if w.wrote {
                w.unmount_all();
                w.scrap();
            }
            let _ = scripts::run(&ks, ScriptKind::OnError, None, &log);
            Err(e.context(format!(
                "the install stopped while {step}{}; the log is {}",
                if w.wrote {
                    format!(
                        " ({} was wiped so that it does not boot half an install)",
                        storage.disk.path.display()
                    )
                } else {
                    " (nothing was written to any disk)".to_string()
                },
                log.path().display()
            )))
        }
    }
}

/// The console's hub, then the plan from the kickstart with the answers
/// added. A plan the answers make impossible (a layout this installer
/// refuses, say) sends the administrator back to the hub with the reason.
fn ask_until_planned(
    ks: Kickstart,
    plan: &NodePlan,
    all: &[BlockDevice],
    medium: Option<&str>,
    defaults_only: bool,
    log: &Log,
) -> Result<(Kickstart, NodePlan, StoragePlan)> {
    let given = interactive::Given::from_plan(plan, defaults_only);
    let mut answers = interactive::Answers::default();
    loop {
        answers = interactive::ask(&given, all, medium, answers)?;
        let mut effective = ks.clone();
        answers.apply(&mut effective);
        let planned = effective_plan(&effective).and_then(|p| {
            let s = storage::plan(&p.layout, &p.disks, all, medium, memory_bytes())?;
            Ok((p, s))
        });
        match planned {
            Ok((p, s)) => return Ok((effective, p, s)),
            Err(e) => {
                log.line(&format!("the answers cannot be installed: {e:#}"));
                println!("Change your choices on the hub, then begin again.");
            }
        }
    }
}

/// The node plan of the kickstart with the console's answers in it; an
/// error names what in the answers is wrong.
fn effective_plan(ks: &Kickstart) -> Result<NodePlan> {
    let (mut plan, diags) = node::plan(ks);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    // Someone is at the console: the end of the install waits for them.
    plan.unattended = false;
    Ok(plan)
}

/// The installed system's boot file systems, mounted, and the UUID grub
/// finds `/boot` by.
struct BootDirs {
    boot: PathBuf,
    efi: PathBuf,
    boot_uuid: String,
}

/// Carries out a storage plan.
struct Writer<'a> {
    storage: &'a StoragePlan,
    work: PathBuf,
    log: &'a Log,
    /// Mounted paths, innermost last.
    mounts: Vec<PathBuf>,
    /// Whether anything was written to the disk.
    wrote: bool,
    step: &'static str,
}

impl Writer<'_> {
    fn mount(&mut self, args: &[&str], dev: &Path, at: &Path) -> Result<()> {
        fs::create_dir_all(at).with_context(|| format!("creating {}", at.display()))?;
        Command::new("mount")
            .args(args)
            .arg(dev)
            .arg(at)
            .run()
            .with_context(|| format!("mounting {} at {}", dev.display(), at.display()))?;
        self.mounts.push(at.to_path_buf());
        Ok(())
    }

    fn unmount_all(&mut self) {
        while let Some(m) = self.mounts.pop() {
            if let Err(e) = Command::new("umount").arg(&m).run() {
                self.log.line(&format!("warning: {e}"));
                let _ = Command::new("umount").arg("-l").arg(&m).run();
            }
        }
        let _ = Command::new("sync").run();
    }

    /// After a failure: no half install may boot.
    fn scrap(&self) {
        let disk = &self.storage.disk;
        if let Some(vg) = self.storage.vg() {
            let _ = layers::lvm::lvm("vgchange")
                .args(["-an", &vg.spec.vg])
                .run();
        }
        for p in &self.storage.partitions {
            let _ = Command::new("wipefs")
                .arg("-a")
                .arg(partition_path(&disk.path, p.number))
                .run();
        }
        if let Err(e) = Command::new("sgdisk")
            .arg("--zap-all")
            .arg(&disk.path)
            .run()
        {
            self.log.line(&format!(
                "warning: could not wipe {}: {e}",
                disk.path.display()
            ));
        }
    }

    fn install(
        &mut self,
        ks: &Kickstart,
        plan: &NodePlan,
        verified: &Verified,
        saved_ks: Option<&str>,
        trusted_keys: &[iso_custom::TrustKey],
    ) -> Result<()> {
        let log = self.log;
        let devlog = self.work.join("commands.log");
        // Made here, so that the commands append to a file only root reads.
        crate::open_private_log(&devlog)
            .with_context(|| format!("creating the commands' log {}", devlog.display()))?;
        self.clear_and_partition(&devlog)?;

        self.step = "opening the image";
        let opened = Opened::open(&verified.path, &self.work)?;
        let (nvr, image_args) = opened.identity()?;
        log.line(&format!("image {nvr}"));

        let sysroot = self.work.join("sysroot");
        let top = self.work.join("top");
        self.step = "writing the image base";
        let store = self.write_base(&opened, &nvr, &top, &devlog)?;
        self.step = "making the writable layer";
        let layer = store.add_layer(&nvr)?;
        log.line(&format!("layer {layer}"));
        store.mount_layer(&layer, &sysroot)?;
        self.mounts.push(sysroot.clone());

        self.step = "making the separate volumes";
        let root = store.root_args(&layer)?;
        let mut fstab_entries = vec![self.root_entry(&root)];
        self.make_volumes(&top, &sysroot, &mut fstab_entries, &devlog)?;

        self.step = "installing the kernel";
        let boot = self.install_kernel(&opened.tree, &layer, &sysroot, &mut fstab_entries)?;
        // Entries sorted so parents mount first.
        fstab_entries.sort_by_key(|e| (e.fstype == "swap", e.target.clone()));
        fs::write(sysroot.join("etc/fstab"), fstab::render(&fstab_entries))
            .context("writing the installed system's /etc/fstab")?;

        self.step = "configuring the installed system";
        target::configure(&sysroot, ks, plan, log)?;
        target::write_trusted_keys(&sysroot, trusted_keys, log)?;
        if let Some(text) = saved_ks {
            target::save_kickstart(&sysroot, text, log)?;
        }
        relabel(&sysroot, &devlog)?;

        self.step = "running %post scripts";
        self.bind_system(&sysroot)?;
        scripts::run(ks, ScriptKind::Post, Some(&sysroot), log)?;
        self.unmount_system(&sysroot);

        self.step = "installing the boot loaders";
        let mut args = root.args;
        args.extend(image_args);
        if let Some(extra) = &plan.bootloader_append {
            args.extend(extra.split_whitespace().map(String::from));
        }
        dedup_console(&mut args);
        self.install_boot_loaders(
            &boot,
            &opened.tree,
            &layer,
            args,
            plan.bootloader_timeout,
            &devlog,
        )?;
        if let Some(password) = &plan.bootloader_password {
            grub_password::install(&boot.boot, password, log)?;
        }

        self.step = "keeping the install log";
        self.keep_logs(&sysroot, &layer, &devlog)?;
        drop(opened);
        Ok(())
    }

    /// Clears the disk (when the plan wipes it or it has partitions),
    /// partitions it and makes the platform's boot file systems.
    fn clear_and_partition(&mut self, devlog: &Path) -> Result<()> {
        let s = self.storage;
        self.step = "clearing the disk";
        self.log.line(&format!("clearing {}", s.disk.describe()));
        self.wrote = true;
        if s.wipe || !s.disk.children.is_empty() {
            storage::clear_disk(&s.disk, devlog)?;
        }
        self.step = "partitioning";
        self.log.line("partitioning");
        storage::partition(s, devlog)?;
        storage::format_platform(s, devlog)?;
        Ok(())
    }

    /// Makes the plan's layer store and writes the image's base `nvr` into
    /// it (a plain or btrfs store is mounted at `top`).
    fn write_base(
        &mut self,
        opened: &Opened,
        nvr: &Nvr,
        top: &Path,
        devlog: &Path,
    ) -> Result<Box<dyn Store>> {
        let s = self.storage;
        let disk = &s.disk;
        let log = self.log;
        Ok(match &s.store {
            StorePlan::Lvm(vg) => {
                log.line(&format!(
                    "volume group {}, thin pool {} ({})",
                    vg.spec.vg,
                    vg.spec.pool,
                    human_bytes(vg.pool_bytes as f64)
                ));
                let pvs: Vec<PathBuf> = vg
                    .pvs
                    .iter()
                    .map(|n| partition_path(&disk.path, *n))
                    .collect();
                let mut st = LvmStore::create_with(&vg.spec, &pvs)?;
                st.root_bytes = s.root_bytes;
                log.line(&format!("writing the base {nvr}"));
                st.add_base(nvr, &opened.rootfs_img)?;
                Box::new(st)
            }
            StorePlan::Plain { partition } => {
                let dev = partition_path(&disk.path, *partition);
                // Reflinks are what make a layer cheap: asked for, not
                // left to mkfs.xfs's default.
                let args = ["-q", "-f", "-L", "hvnode", "-m", "reflink=1"];
                storage::mkfs("xfs", &args, &dev, devlog)?;
                self.mount(&["-t", "xfs"], &dev, top)?;
                let st = PlainStore::open(top, &dev)?;
                labels::label_store(&opened.tree, top, devlog)?;
                log.line(&format!("copying the base {nvr}"));
                st.add_base(nvr, &opened.tree)?;
                Box::new(st)
            }
            StorePlan::Btrfs { partition } => {
                let dev = partition_path(&disk.path, *partition);
                storage::mkfs("btrfs", &["-q", "-f", "-L", "hvnode"], &dev, devlog)?;
                self.mount(&["-t", "btrfs", "-o", "subvolid=5"], &dev, top)?;
                let st = BtrfsStore::open(top, &dev)?;
                log.line(&format!("copying the base {nvr}"));
                st.add_base(nvr, &opened.tree)?;
                Box::new(st)
            }
        })
    }

    /// The fstab entry of the layer as `/` (the plan's options, else the
    /// store's).
    fn root_entry(&self, root: &RootArgs) -> Entry {
        let s = self.storage;
        Entry {
            source: root.fstab_source.clone(),
            target: "/".into(),
            fstype: root.fstab_type.clone(),
            options: s
                .root_options
                .clone()
                .unwrap_or_else(|| root.fstab_options.clone()),
            pass: if s.scheme() == Scheme::Thinp { 1 } else { 0 },
        }
    }

    /// The plan's separate volumes (`/var`, swap, …), each with what the
    /// layer had under its mount point, mounted under `sysroot`.
    fn make_volumes(
        &mut self,
        top: &Path,
        sysroot: &Path,
        fstab_entries: &mut Vec<Entry>,
        devlog: &Path,
    ) -> Result<()> {
        make_mount_points(sysroot, &self.storage.volumes, devlog)?;
        for v in &self.storage.volumes {
            self.log.line(&format!(
                "volume {} ({})",
                v.mountpoint,
                human_bytes(v.bytes as f64)
            ));
            if v.backing == Backing::Subvolume {
                self.btrfs_volume(v, top, sysroot, fstab_entries, devlog)?;
            } else {
                self.block_volume(v, sysroot, fstab_entries, devlog)?;
            }
        }
        Ok(())
    }

    /// Mounts `/boot` and `/boot/efi` under `sysroot`, copies the image's
    /// kernel and initramfs (in `tree`) there for `layer` and adds both file
    /// systems to the fstab entries.
    fn install_kernel(
        &mut self,
        tree: &Path,
        layer: &LayerName,
        sysroot: &Path,
        fstab_entries: &mut Vec<Entry>,
    ) -> Result<BootDirs> {
        let s = self.storage;
        let boot_dev = s.device(Role::Boot)?;
        let efi_dev = s.device(Role::Efi)?;
        let boot_dir = under(sysroot, "/boot");
        self.mount(&["-t", "ext4"], &boot_dev, &boot_dir)?;
        let efi_dir = under(sysroot, "/boot/efi");
        self.mount(&["-t", "vfat", "-o", "umask=0077"], &efi_dev, &efi_dir)?;
        let (kernel, initrd) = boot::image_kernel(tree)?;
        boot::install_kernel(&boot_dir, layer, &kernel, &initrd)?;
        let boot_uuid = layers::fs_uuid(&boot_dev)?;
        let option_of = |role| {
            s.partition(role)
                .map(|p| p.options.clone())
                .unwrap_or_default()
        };
        fstab_entries.push(Entry {
            source: format!("UUID={boot_uuid}"),
            target: "/boot".into(),
            fstype: "ext4".into(),
            options: option_of(Role::Boot),
            pass: 2,
        });
        fstab_entries.push(Entry {
            source: format!("UUID={}", layers::fs_uuid(&efi_dev)?),
            target: "/boot/efi".into(),
            fstype: "vfat".into(),
            options: option_of(Role::Efi),
            pass: 2,
        });
        Ok(BootDirs {
            boot: boot_dir,
            efi: efi_dir,
            boot_uuid,
        })
    }

    /// grub's configuration with one entry, `layer` booted with `args`, as
    /// the default, and the boot loaders for BIOS and UEFI (the image
    /// `tree`'s signed chain).
    fn install_boot_loaders(
        &self,
        boot: &BootDirs,
        tree: &Path,
        layer: &LayerName,
        args: Vec<String>,
        timeout_s: Option<u32>,
        devlog: &Path,
    ) -> Result<()> {
        let entry = BootEntry {
            layer: layer.clone(),
            args,
        };
        boot::write_grub_cfg(
            &boot.boot,
            &boot.boot_uuid,
            std::slice::from_ref(&entry),
            timeout_s,
        )?;
        boot::set_default(&boot.boot, layer)?;
        boot::install_grub(
            &self.storage.disk.path,
            &boot.boot,
            &boot.efi,
            tree,
            &boot.boot_uuid,
            devlog,
        )?;
        self.log.line(&format!(
            "boot entry {}: {}",
            entry.title(),
            entry.args.join(" ")
        ));
        Ok(())
    }

    /// Copies the install log and the commands' output into the installed
    /// system's `/var/log/hvnode`, readable by root only.
    fn keep_logs(&self, sysroot: &Path, layer: &LayerName, devlog: &Path) -> Result<()> {
        let log = self.log;
        let logdir = under(sysroot, "/var/log/hvnode");
        log.line(&format!(
            "done; log kept in /var/log/hvnode/install.log of {layer}"
        ));
        crate::keep_log(log.path(), &logdir.join("install.log"))?;
        if devlog.exists() {
            crate::keep_log(devlog, &logdir.join("install-commands.log"))?;
        }
        Ok(())
    }

    /// Makes a volume on a block device (thin or thick LV, partition):
    /// swap, or a file system that gets what the layer had under its mount
    /// point, mounted there.
    fn block_volume(
        &mut self,
        v: &PlannedVolume,
        sysroot: &Path,
        fstab_entries: &mut Vec<Entry>,
        devlog: &Path,
    ) -> Result<()> {
        let s = self.storage;
        let (dev, by_uuid) = match (v.backing, s.vg()) {
            (Backing::Thin, Some(vg)) => (
                LvmStore::new(&vg.spec.vg, &vg.spec.pool).add_volume(&v.name, v.bytes)?,
                false,
            ),
            (Backing::Thick, Some(vg)) => (
                LvmStore::new(&vg.spec.vg, &vg.spec.pool).add_thick_volume(&v.name, v.bytes)?,
                false,
            ),
            (Backing::Partition(n), _) => (partition_path(&s.disk.path, n), true),
            _ => bail!(
                "the volume {} has no place in the plan's store (a bug in the plan)",
                v.name
            ),
        };
        let source = |dev: &Path| -> Result<String> {
            Ok(if by_uuid {
                format!("UUID={}", layers::fs_uuid(dev)?)
            } else {
                dev.display().to_string()
            })
        };
        if v.is_swap() {
            let mut mkswap = Command::new("mkswap");
            if !v.label.is_empty() {
                mkswap.args(["-L", &v.label]);
            }
            mkswap
                .args(&v.mkfs_options)
                .arg(&dev)
                .run_appending(devlog)
                .with_context(|| format!("making the swap volume {}", v.name))?;
            fstab_entries.push(Entry {
                source: source(&dev)?,
                target: "none".into(),
                fstype: "swap".into(),
                options: v.options.clone(),
                pass: 0,
            });
            return Ok(());
        }
        let staging = self.work.join("staging");
        let target = under(sysroot, &v.mountpoint);
        storage::mkfs(
            &v.fstype,
            &storage::execute::mkfs_args(&v.fstype, &v.label, &volume_mkfs_options(v)),
            &dev,
            devlog,
        )?;
        self.mount(&["-t", &v.fstype], &dev, &staging)?;
        migrate(&target, &staging)?;
        if matches!(v.mountpoint.as_str(), "/tmp" | "/var/tmp") {
            // systemd-tmpfiles cleans these and may not read a
            // lost+found (e2fsck makes one again if it needs it).
            let _ = fs::remove_dir(staging.join("lost+found"));
        }
        self.unmount_last()?;
        let mount_opts: &[&str] = if v.backing == Backing::Thin {
            &["-o", "discard"]
        } else {
            &[]
        };
        let mut args = vec!["-t", v.fstype.as_str()];
        args.extend(mount_opts);
        self.mount(&args, &dev, &target)?;
        fstab_entries.push(Entry {
            source: source(&dev)?,
            target: v.mountpoint.clone(),
            fstype: v.fstype.clone(),
            options: v.options.clone(),
            pass: 2,
        });
        Ok(())
    }

    /// Makes a volume as a subvolume of the btrfs store (swap: a swap file
    /// in a `/swap` subvolume).
    fn btrfs_volume(
        &mut self,
        v: &PlannedVolume,
        top: &Path,
        sysroot: &Path,
        fstab_entries: &mut Vec<Entry>,
        devlog: &Path,
    ) -> Result<()> {
        let StorePlan::Btrfs { partition } = self.storage.store else {
            bail!(
                "the volume {} is a subvolume but the store is not btrfs (a bug in the plan)",
                v.name
            );
        };
        let dev = partition_path(&self.storage.disk.path, partition);
        let bt = BtrfsStore::open(top, &dev)?;
        let subvol = bt.add_volume(&v.name)?;
        let uuid = bt.uuid()?;
        let (mp, opts) = if v.is_swap() {
            ("/swap", format!("subvol={subvol}"))
        } else {
            (
                v.mountpoint.as_str(),
                format!("subvol={subvol},discard=async"),
            )
        };
        if !v.is_swap() {
            migrate(&under(sysroot, mp), &top.join(&subvol))?;
        }
        fs::create_dir_all(under(sysroot, mp))?;
        self.mount(&["-t", "btrfs", "-o", &opts], &dev, &under(sysroot, mp))?;
        fstab_entries.push(Entry {
            source: format!("UUID={uuid}"),
            target: mp.into(),
            fstype: "btrfs".into(),
            options: opts,
            pass: 0,
        });
        if v.is_swap() {
            Command::new("btrfs")
                .args(["filesystem", "mkswapfile", "--size"])
                .arg(format!("{}m", v.bytes >> 20))
                .arg(under(sysroot, "/swap/swapfile"))
                .run_appending(devlog)
                .context("making the swap file")?;
            // The subvolume's root and the file are new: the final relabel
            // does not reach /swap, and swapon (fsadm_t) may only write a
            // file labelled swapfile_t (the image's policy names it).
            // setfiles goes down into the file.
            label_paths(sysroot, &[under(sysroot, "/swap")], devlog)?;
            fstab_entries.push(Entry {
                source: "/swap/swapfile".into(),
                target: "none".into(),
                fstype: "swap".into(),
                options: "defaults".into(),
                pass: 0,
            });
        }
        Ok(())
    }

    fn unmount_last(&mut self) -> Result<()> {
        if let Some(m) = self.mounts.pop() {
            Command::new("umount")
                .arg(&m)
                .run()
                .with_context(|| format!("unmounting {}", m.display()))?;
        }
        Ok(())
    }

    fn bind_system(&mut self, root: &Path) -> Result<()> {
        self.mount(&["-t", "proc"], Path::new("proc"), &root.join("proc"))?;
        self.mount(&["-t", "sysfs"], Path::new("sysfs"), &root.join("sys"))?;
        self.mount(&["--bind"], Path::new("/dev"), &root.join("dev"))?;
        self.mount(&["-t", "tmpfs"], Path::new("tmpfs"), &root.join("run"))?;
        Ok(())
    }

    fn unmount_system(&mut self, root: &Path) {
        for d in ["run", "dev", "sys", "proc"] {
            let p = root.join(d);
            if let Some(i) = self.mounts.iter().rposition(|m| m == &p) {
                self.mounts.remove(i);
                let _ = Command::new("umount").arg(&p).run();
            }
        }
    }
}

/// Keeps one of each `console=` value (the image's and the kickstart's
/// bootloader --append often both name the serial console).
fn dedup_console(args: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    args.retain(|a| !a.starts_with("console=") || seen.insert(a.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_medium_is_known_by_its_label() {
        assert_eq!(
            boot_medium_label("BOOT_IMAGE=/boot/vmlinuz root=live:CDLABEL=HVNODE rd.live.image"),
            Some("HVNODE".into())
        );
        assert_eq!(boot_medium_label("root=/dev/hvnode/x ro"), None);
    }

    #[test]
    fn console_arguments_are_not_repeated() {
        let mut a: Vec<String> = ["ro", "console=tty0", "console=ttyS0,115200", "console=tty0"]
            .map(String::from)
            .to_vec();
        dedup_console(&mut a);
        assert_eq!(a, ["ro", "console=tty0", "console=ttyS0,115200"]);
    }
}
