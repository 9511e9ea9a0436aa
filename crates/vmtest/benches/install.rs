//! Install benchmark (prints figures, asserts nothing). As root, with the
//! image built (`make image`):
//!
//! ```text
//! HVNODE_IMAGE_DIR=~/.cache/hvnode/out cargo bench -p hvnode-vmtest --bench install
//! ```
//!
//! Under TCG, the way the install test does it: the ISO's default entry
//! with a thin-LVM kickstart on an OEMDRV disk, then the installed disk's
//! first boot on SeaBIOS.
//!
//! - ISO boot to the installer's first line;
//! - the install (the installer's own clock: kickstart to "hvnode is
//!   installed", image checksum and base write included);
//! - qemu start to power off;
//! - first boot of the installed disk: login prompt, and multi-user
//!   reached (`systemctl is-system-running --wait`).
//!
//! Target (issue): the install ≤ 6 min for the full image under TCG.
//! `HVNODE_BENCH_ROUNDS=N` repeats (default 1); `HVNODE_BENCH_LAYOUTS`
//! lists the `autopart --type`s to run, comma-separated (default `thinp`;
//! `thinp,btrfs,plain` compares the three stores).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use vmtest::install::Unattended;
use vmtest::{Boot, Config, Firmware, Image, Vm};

fn main() -> Result<()> {
    let Some(img) = vmtest::image::from_env()? else {
        return Ok(());
    };
    let rounds: u32 = std::env::var("HVNODE_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let dir = std::env::var_os("HVNODE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/hvnode")
        })
        .join("bench-install");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let size = std::fs::metadata(img.dir.join(format!("{}.squashfs.img", img.nvr)))?.len();
    println!(
        "image {} (squashfs {:.0} MB), -accel {} -cpu {}, {} vCPUs",
        img.nvr,
        size as f64 / 1e6,
        vmtest::accel(),
        vmtest::cpu_model(),
        Config::new(Firmware::Bios, Boot::Disk).cpus
    );
    let layouts = std::env::var("HVNODE_BENCH_LAYOUTS").unwrap_or_else(|_| "thinp".into());
    for layout in layouts.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        for round in 1..=rounds {
            one_round(&img, &dir, layout, round)?;
        }
    }
    Ok(())
}

/// One install with `autopart --type=layout` and the disk's first boot.
fn one_round(img: &Image, dir: &Path, layout: &str, round: u32) -> Result<()> {
    let ks = Unattended::from_medium(&img.squashfs_sha256, layout).kickstart();
    let oemdrv = dir.join("oemdrv.img");
    let target = dir.join("node.qcow2");
    vmtest::oemdrv_disk(&ks, &oemdrv)?;
    vmtest::blank_disk(&target, 64)?;
    let mut cfg = Config::new(Firmware::Bios, Boot::Cdrom(img.iso.clone()));
    cfg.disks = vec![target.clone(), oemdrv];
    let log = vmtest::image::serial_log(dir, "install");
    let mut vm = Vm::start(&cfg, &log)?;
    let t = vmtest::install::wait_installed(&mut vm, &log, Duration::from_secs(3600))?;
    drop(vm);
    println!("{layout}, round {round}:");
    println!("  ISO boot to installer      {:6.1} s", t.to_installer);
    println!(
        "  install (installer clock)  {:6.1} s   target ≤ 360 s",
        t.install
    );
    println!("  qemu start to power off    {:6.1} s", t.total);
    let log = vmtest::image::serial_log(dir, "first-boot");
    let mut node =
        vmtest::install::boot_installed(Firmware::Bios, &target, &log, Duration::from_secs(1200))?;
    let t = Instant::now();
    let (_, state) = node.vm.console.run(
        "systemctl is-system-running --wait",
        Duration::from_secs(900),
    )?;
    let ready = node.vm.uptime();
    println!("  first boot: login prompt   {:6.1} s", node.login_prompt);
    println!(
        "  first boot: {:<14} {:6.1} s (waited {:.1} s after login)",
        state.trim(),
        ready,
        t.elapsed().as_secs_f64()
    );
    if state.trim() != "running" {
        // What a figure from a degraded boot hides: the failed units, with
        // their journals, and any SELinux denial.
        let failed = node.vm.console.failed_units(Duration::from_secs(300))?;
        let (_, avcs) = node
            .vm
            .console
            .run("dmesg | grep 'avc:  denied'", Duration::from_secs(60))?;
        println!("  failed units:\n{failed}\n  AVC denials:\n{avcs}");
    }
    node.vm.console.send("poweroff\n")?;
    let _ = node.vm.wait_exit(Duration::from_secs(180));
    Ok(())
}
