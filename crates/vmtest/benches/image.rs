//! Image benchmark (prints figures, asserts nothing). As root:
//!
//! ```text
//! cargo bench -p hvnode-vmtest --bench image            # warm and cached builds, sizes, boot
//! HVNODE_BENCH_COLD=1 cargo bench -p hvnode-vmtest --bench image   # also a cold build (empty package cache)
//! ```
//!
//! - cold full build: nothing cached, packages downloaded;
//! - warm full build: every stage rebuilt, downloaded packages reused;
//! - cached rebuild: base and initramfs from the stage cache, every later
//!   stage run again: what a change to hvnode's own binaries or files costs;
//! - squashfs and ISO sizes; boot of the ISO under TCG to a root prompt and
//!   to the end of boot (`systemctl is-system-running --wait`).
//!
//! Targets (issue): warm full build ≤ 4 min and agent-only rebuild ≤ 60 s
//! on 2 cores; ISO ≤ 400 MB (RHVH 4.1's DVD ISO was 1,035 MB).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    let cache = std::env::var_os("HVNODE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/hvnode")
        });
    let bench_cache = cache.join("bench");
    let out = cache.join("bench-out");
    let opts = |rebuild: bool| image_build::Options {
        recipe: workspace.join("image/hvnode.toml"),
        out: out.clone(),
        cache_dir: bench_cache.clone(),
        workspace: workspace.clone(),
        rebuild,
        epoch: None,
        sign_key: None,
        wait_for_cache: false,
    };
    // Share the downloaded packages with normal builds unless a cold build is asked for.
    let debs = bench_cache.join("debs");
    if std::env::var("HVNODE_BENCH_COLD").as_deref() == Ok("1") {
        let _ = std::fs::remove_dir_all(&bench_cache);
        let t = Instant::now();
        image_build::build(&opts(true))?;
        println!("cold full build:      {:6.1} s", t.elapsed().as_secs_f64());
    } else if !debs.exists() {
        std::fs::create_dir_all(&bench_cache)?;
        let shared = cache.join("image/debs");
        if shared.exists() {
            std::os::unix::fs::symlink(&shared, &debs)?;
        }
    }
    let t = Instant::now();
    let report = image_build::build(&opts(true))?;
    println!("warm full build:      {:6.1} s", t.elapsed().as_secs_f64());
    for (stage, secs) in &report.stages {
        println!("    {stage:<16} {secs:6.1} s");
    }
    let t = Instant::now();
    let report = image_build::build(&opts(false))?;
    println!(
        "cached rebuild:       {:6.1} s  (cached: {})",
        t.elapsed().as_secs_f64(),
        report.cached.join(", ")
    );
    for a in &report.artifacts {
        if a.path.ends_with(".iso")
            || a.path.ends_with(".squashfs.img") && !a.path.starts_with("pxe/")
        {
            println!("{:<40} {:7.1} MB", a.path, a.size as f64 / 1e6);
        }
    }
    let iso = out.join(format!("{}.iso", report.nvr));
    let log = cache.join("bench-boot.serial.log");
    let mut vm = vmtest::Vm::start(
        &vmtest::Config::new(vmtest::Firmware::Bios, vmtest::Boot::Cdrom(iso)),
        &log,
    )?;
    vm.console
        .expect("root@hvnode:~#", Duration::from_secs(900))?;
    let prompt = vm.uptime();
    vm.console.prepare_shell()?;
    vm.console.run(
        "systemctl is-system-running --wait",
        Duration::from_secs(900),
    )?;
    println!(
        "boot (TCG, 2 vCPU) to root prompt: {prompt:6.1} s; boot finished: {:6.1} s",
        vm.uptime()
    );
    Ok(())
}
