//! Boot benchmark (prints figures, asserts nothing): power-on → login
//! prompt → web console answering on 9090, for the live ISO and for an
//! installed disk, each the median of `HVNODE_BENCH_ROUNDS` runs (default
//! 3). As root, with the image built (`make image`):
//!
//! ```text
//! make bench-boot
//! ```
//!
//! The live ISO boots on SeaBIOS by its "Start hvnode live" entry (root is
//! logged in on the serial console: its prompt is the login prompt). The
//! installed disk is `HVNODE_BENCH_DISK` (a qcow2 of an installed node:
//! the thin install test leaves one in
//! `$CARGO_TARGET_DIR/tmp/install/thinp/`), or one installed here first;
//! each boot writes to an overlay, so the disk's first boot is what is
//! measured every time. The first run of each also keeps
//! `systemd-analyze` text and plot (SVG) in `$HVNODE_CACHE/bench-boot/`.
//!
//! Target (issue): ≤ 60 s to the login prompt and ≤ 60 s to the console, under TCG.
//! `HVNODE_BENCH_CPUS=N` gives each guest N vCPUs (default one, see
//! `vmtest::default_cpus`); `HVNODE_BENCH_PARALLEL=2` boots two guests side
//! by side (what two VM tests at once cost each); `HVNODE_BENCH_BOOTS=live`
//! or `installed` measures one kind only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use vmtest::install::{ROOT_PASSWORD, Unattended};
use vmtest::{Boot, Config, Firmware, Image, Vm};

const BOOT: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy, Default)]
struct Times {
    prompt: f64,
    console: f64,
}

fn main() -> Result<()> {
    let Some(img) = vmtest::image::from_env()? else {
        return Ok(());
    };
    let env_num = |k: &str, d: u32| -> u32 {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let rounds = env_num("HVNODE_BENCH_ROUNDS", 3).max(1);
    let cpus = env_num("HVNODE_BENCH_CPUS", vmtest::default_cpus()).max(1);
    let parallel = env_num("HVNODE_BENCH_PARALLEL", 1).max(1);
    let dir = std::env::var_os("HVNODE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/hvnode")
        })
        .join("bench-boot");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let which = std::env::var("HVNODE_BENCH_BOOTS").unwrap_or_else(|_| "live,installed".into());
    let disk = if which.contains("installed") {
        installed_disk(&img, &dir)?
    } else {
        PathBuf::new()
    };
    println!(
        "image {}, -accel {} -cpu {}, {cpus} vCPU(s) a guest, {parallel} guest(s) at a time, {rounds} rounds",
        img.nvr,
        vmtest::accel(),
        vmtest::cpu_model()
    );
    for kind in which.split(',').map(str::trim) {
        let mut all = Vec::new();
        for round in 1..=rounds {
            let runs: Vec<Result<Times>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..parallel)
                    .map(|slot| {
                        let (img, dir, disk) = (&img, &dir, &disk);
                        s.spawn(move || {
                            let name = format!("{kind}-{round}-{slot}");
                            let profile = round == 1 && slot == 0;
                            match kind {
                                "live" => live(img, dir, &name, cpus, profile),
                                _ => installed(disk, dir, &name, cpus, profile),
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
                    })
                    .collect()
            });
            for r in runs {
                let t = r?;
                println!(
                    "  {kind:<9} round {round}: login prompt {:6.1} s, console on 9090 {:6.1} s",
                    t.prompt, t.console
                );
                all.push(t);
            }
        }
        let median = |f: fn(&Times) -> f64| {
            let mut v: Vec<f64> = all.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{kind:<9} median: power-on → login prompt {:6.1} s → console on 9090 {:6.1} s   target ≤ 60 s each",
            median(|t| t.prompt),
            median(|t| t.console)
        );
    }
    Ok(())
}

/// An installed thin node: `HVNODE_BENCH_DISK`, else one installed here
/// (and kept for the next run of the same image: its name carries the
/// root image's digest, since a rebuild keeps the NVR).
fn installed_disk(img: &Image, dir: &Path) -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("HVNODE_BENCH_DISK") {
        return Ok(PathBuf::from(d));
    }
    let digest = img
        .squashfs_sha256
        .get(..12)
        .unwrap_or(&img.squashfs_sha256);
    let disk = dir.join(format!("{}-{digest}.qcow2", img.nvr));
    if !disk.is_file() {
        println!("installing a thin node into {} first", disk.display());
        let ks = Unattended::from_medium(&img.squashfs_sha256, "thinp").kickstart();
        let ks = vmtest::disk_image::prepare_kickstart("bench.ks", &ks, img)?;
        let made = vmtest::disk_image::make(img, &ks, &disk, &dir.join("install"))?;
        println!(
            "  installed: {:.0} s on the installer's clock ({:.0} s from power-on to the installer)",
            made.times.install, made.times.to_installer
        );
    }
    Ok(disk)
}

fn finish(vm: &mut Vm, dir: &Path, name: &str, profile: bool) -> Result<()> {
    if profile {
        vm.console.prepare_shell()?;
        vm.console.run("systemctl is-system-running --wait", BOOT)?;
        let p = vmtest::profile::boot_profile(&mut vm.console, dir, name)?;
        println!("  {name}: {} ({})", p.summary, p.svg.display());
    }
    vm.console.send("poweroff\n")?;
    let _ = vm.wait_exit(Duration::from_secs(120));
    Ok(())
}

fn live(img: &Image, dir: &Path, name: &str, cpus: u32, profile: bool) -> Result<Times> {
    let port = vmtest::free_port()?;
    let mut cfg = Config::new(Firmware::Bios, Boot::Cdrom(img.iso.clone()));
    cfg.cpus = cpus;
    cfg.forwards = vec![(port, 9090)];
    let log = vmtest::image::serial_log(dir, name);
    let mut vm = Vm::start(&cfg, &log)?;
    vm.console.expect("Start hvnode", BOOT)?;
    vm.console.send("l")?;
    vm.console.expect("root@hvnode:~#", BOOT)?;
    let prompt = vm.uptime();
    let console = vm.wait_https(port, BOOT)?;
    finish(&mut vm, dir, name, profile)?;
    Ok(Times { prompt, console })
}

fn installed(disk: &Path, dir: &Path, name: &str, cpus: u32, profile: bool) -> Result<Times> {
    let port = vmtest::free_port()?;
    let overlay = dir.join(format!("{name}.qcow2"));
    vmtest::overlay_disk(disk, &overlay)?;
    let mut cfg = Config::new(Firmware::Bios, Boot::Disk);
    cfg.cpus = cpus;
    cfg.disks = vec![overlay.clone()];
    cfg.forwards = vec![(port, 9090)];
    let log = vmtest::image::serial_log(dir, name);
    let mut vm = Vm::start(&cfg, &log)?;
    vm.console.expect("login:", BOOT)?;
    let prompt = vm.uptime();
    let console = vm.wait_https(port, BOOT)?;
    vm.console.send("root\n")?;
    vm.console.expect("Password:", Duration::from_secs(120))?;
    vm.console.send(&format!("{ROOT_PASSWORD}\n"))?;
    vm.console.expect(":~#", Duration::from_secs(300))?;
    finish(&mut vm, dir, name, profile)?;
    let _ = std::fs::remove_file(&overlay);
    Ok(Times { prompt, console })
}
