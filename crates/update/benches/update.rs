//! Update benchmark (prints figures, asserts nothing). As root, with the
//! node image built:
//!
//! ```text
//! HVNODE_IMAGE_DIR=out cargo bench -p hvnode-update --bench update
//! ```
//!
//! For the btrfs and the plain (XFS, reflinks) store, each on a 6 GiB loop
//! device: a node is made from the image (its base under an older NVR, its
//! first layer, a `/boot` with the layer's entry), then `update::update`
//! applies the image's own update bundle to it (signature not checked: a
//! CI image is unsigned). Printed: the update's time, step by step, and the
//! space it took on the store; and, as the reference in the same run, a
//! plain `cp -a` of the same image tree onto the same file system: what
//! an update that copied the image as a whole would cost.
//!
//! The thin LVM store needs device-mapper, which only a qemu guest has:
//! the thin VM test prints the same figures for it (`update-v2` lines:
//! time, and the thin pool's data use before and after).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hvnode_testutil::loopfs::{LoopFs, sh};
use layers::boot::{self, BootEntry};
use layers::btrfs::BtrfsStore;
use layers::plain::PlainStore;
use layers::{LayerName, Nvr, Store};
use update::{Event, Mounts, Node, Progress, State, Step, StoreKind};

/// The older NVR the node's base is given (the bundle's image is newer).
const OLD: &str = "hvnode-1.0-0.1";

fn main() -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("HVNODE_IMAGE_DIR").map(PathBuf::from) else {
        eprintln!("set HVNODE_IMAGE_DIR to the output folder of `hvnode build` (make image)");
        return Ok(());
    };
    let find = |suffix: &str| -> anyhow::Result<PathBuf> {
        std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .ok_or_else(|| anyhow::anyhow!("no *{suffix} in {}", dir.display()))
    };
    let (squashfs, bundle) = (find(".squashfs.img")?, find(".update.tar")?);
    println!(
        "bundle {} ({:.0} MB)",
        bundle.display(),
        std::fs::metadata(&bundle)?.len() as f64 / 1e6
    );
    println!(
        "{:<6} {:>9} {:>12} {:>14} {:>12}",
        "store", "update s", "update MiB", "cp -a s (ref)", "cp -a MiB"
    );
    for kind in ["btrfs", "plain"] {
        bench(kind, &squashfs, &bundle)?;
    }
    Ok(())
}

fn bench(kind: &str, squashfs: &Path, bundle: &Path) -> anyhow::Result<()> {
    let mkfs: &[&str] = match kind {
        "btrfs" => &["mkfs.btrfs", "-q"],
        _ => &["mkfs.xfs", "-q", "-m", "reflink=1"],
    };
    let Some(fs) = LoopFs::with_size(mkfs, 6 << 30) else {
        return Ok(());
    };
    let top = fs.top();
    let store = match kind {
        "btrfs" => StoreKind::Btrfs(BtrfsStore::open(&top, &fs.loopdev)?),
        _ => StoreKind::Plain(PlainStore::open(&top, &fs.loopdev)?),
    };
    let work = fs.dir.path().join("work");
    let mut mounts = Mounts::default();
    let image = update::Image::open(squashfs, &work.join("image"), &mut mounts)?;
    let old: Nvr = OLD.parse()?;
    store.store().add_base(&old, &image.tree)?;
    let layer = store.store().add_layer(&old)?;
    let root = fs.dir.path().join("root");
    store.store().mount_layer(&layer, &root)?;
    mounts.adopt(&root);
    let boot = fs.dir.path().join("boot");
    make_boot(&boot, store.store(), &layer, &image.kernel, &image.initrd)?;

    // The reference: the image tree copied whole onto the same file system.
    let before = fs.used_kib();
    let t = Instant::now();
    sh(Command::new("cp")
        .arg("-a")
        .arg(&image.tree)
        .arg(top.join("copy")));
    let copy_s = t.elapsed().as_secs_f64();
    let copy_mib = (fs.used_kib() - before) as f64 / 1024.0;
    sh(Command::new("rm").arg("-rf").arg(top.join("copy")));
    mounts.unmount(&image.tree)?;

    let node = Node {
        store,
        current_layer: layer,
        root,
        boot,
        scratch: top.join("hvnode/.update"),
        lock: fs.dir.path().join("update.lock"),
    };
    let mut opts = update::Options::new(bundle.to_string_lossy());
    opts.no_verify = true;
    let mut progress = Timed::default();
    let before = fs.used_kib();
    let t = Instant::now();
    let outcome = update::update(&node, &opts, &mut |_| true, &mut progress);
    let secs = t.elapsed().as_secs_f64();
    let used = (fs.used_kib() - before) as f64 / 1024.0;
    match outcome {
        Ok(_) => println!("{kind:<6} {secs:>9.1} {used:>12.0} {copy_s:>14.1} {copy_mib:>12.0}"),
        Err(e) => println!("{kind:<6} update failed: {e}"),
    }
    for (step, secs) in &progress.steps {
        println!("    {:<12} {secs:>6.1} s", step.name());
    }
    drop(node);
    drop(mounts);
    Ok(())
}

/// Each step's time, from its start and done events.
#[derive(Default)]
struct Timed {
    started: Option<(Step, Instant)>,
    steps: Vec<(Step, f64)>,
}

impl Progress for Timed {
    fn event(&mut self, e: &Event) {
        match (e.step, e.state) {
            (Some(step), Some(State::Start)) => self.started = Some((step, Instant::now())),
            (Some(step), Some(State::Done)) => {
                if let Some((s, at)) = self.started.take()
                    && s == step
                {
                    self.steps.push((step, at.elapsed().as_secs_f64()));
                }
            }
            _ => {}
        }
    }
}

/// `/boot` with the layer's kernel, its entry and the default set to it.
fn make_boot(
    boot: &Path,
    store: &dyn Store,
    layer: &LayerName,
    kernel: &Path,
    initrd: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(boot.join("grub"))?;
    boot::install_kernel(boot, layer, kernel, initrd)?;
    let entry = BootEntry {
        layer: layer.clone(),
        args: store.root_args(layer)?.args,
    };
    boot::write_grub_cfg(boot, "1234-abcd", &[entry], None)?;
    boot::set_default(boot, layer)?;
    Ok(())
}
