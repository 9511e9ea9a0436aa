//! The built image boots in qemu (TCG) from every medium it ships for —
//! CD on SeaBIOS and on OVMF, the ISO written to a USB disk, and PXE through
//! qemu's TFTP and iPXE — and, from inside, shows what a node must be:
//! SELinux enforcing, libvirtd up with the selinux security model, the
//! hvnode units up, no failed unit and no AVC denial since boot.
//!
//! The image comes from `HVNODE_IMAGE_DIR` (the output directory of
//! `hvnode build`, set by `tests/run-tests.sh`). Without it these tests
//! are skipped with a message, unless `HVNODE_REQUIRE_IMAGE=1` (CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::time::Duration;

use vmtest::{Boot, Config, Firmware, Image, Vm};

/// How long a TCG boot may take on a loaded 2-core machine.
const BOOT: Duration = Duration::from_secs(900);
const CMD: Duration = Duration::from_secs(180);

fn image() -> Option<Image> {
    Image::from_env().unwrap()
}

fn log_path(name: &str) -> PathBuf {
    let dir = vmtest::image::work_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "vm-logs").unwrap();
    vmtest::image::serial_log(&dir, name)
}

/// Boots, then checks the node from inside.
fn boot_and_check(name: &str, cfg: Config, img: &Image) {
    let log = log_path(name);
    let menu = matches!(cfg.boot, Boot::Cdrom(_) | Boot::Usb(_));
    let mut vm = Vm::start(&cfg, &log).unwrap();
    let c = &mut vm.console;
    if menu {
        // The ISO's default entry installs; pick "Start hvnode live" by
        // its hotkey, as an admin would.
        c.expect("Start hvnode", BOOT)
            .unwrap_or_else(|e| panic!("{name}: no boot menu ({e}); serial log {}", log.display()));
        c.send("l").unwrap();
    }
    c.expect("root@hvnode:~#", BOOT)
        .unwrap_or_else(|e| panic!("{name}: no root prompt ({e}); serial log {}", log.display()));
    let prompt = vm.uptime();
    let c = &mut vm.console;
    c.prepare_shell().unwrap();
    // Let boot finish (services may still be starting at the prompt).
    let state = c.run("systemctl is-system-running --wait", BOOT).unwrap().1;
    let ready = vm.uptime();
    let c = &mut vm.console;
    eprintln!("{name}: root prompt after {prompt:.0} s, boot finished after {ready:.0} s");
    let failed = c.failed_units(CMD).unwrap();
    assert!(
        state.trim().ends_with("running"),
        "{name}: system state {state:?}, failed units:\n{failed}"
    );
    assert_eq!(
        c.check("getenforce", CMD).unwrap().trim(),
        "Enforcing",
        "{name}"
    );
    assert_eq!(
        c.check("systemctl is-active libvirtd.service", CMD)
            .unwrap()
            .trim(),
        "active",
        "{name}"
    );
    let secmodel = c
        .check(
            "virsh -c qemu:///system capabilities | grep -c '<model>selinux</model>'",
            // libvirtd probes qemu's capabilities by running it: TCG in TCG.
            BOOT,
        )
        .unwrap();
    assert_eq!(secmodel.trim(), "1", "{name}: libvirt's security model");
    // Every hvnode unit that is enabled is up (or, for one-shot units that
    // found nothing to do, not failed).
    let units = c
        .check("systemctl list-unit-files 'hvnode-*' --state=enabled --no-legend --plain | cut -d' ' -f1", CMD)
        .unwrap();
    let units: Vec<&str> = units.split_whitespace().collect();
    assert!(
        units.contains(&"hvnode-agent.service"),
        "{name}: enabled hvnode units {units:?}"
    );
    for u in &units {
        let (rc, _) = c
            .run(&format!("systemctl is-failed --quiet {u}"), CMD)
            .unwrap();
        assert_ne!(rc, 0, "{name}: {u} failed");
    }
    assert_eq!(
        c.check("systemctl is-active hvnode-agent.service", CMD)
            .unwrap()
            .trim(),
        "active",
        "{name}"
    );
    // The serial console's device waits past systemd's 90 s default, so a
    // slow boot still gets its serial login.
    assert_eq!(
        c.check(
            "systemctl show -p JobRunningTimeoutUSec dev-ttyS0.device",
            CMD
        )
        .unwrap()
        .trim(),
        "JobRunningTimeoutUSec=10min",
        "{name}"
    );
    let identity = c.check("cat /usr/lib/hvnode/image.json", CMD).unwrap();
    assert!(identity.contains(&img.nvr), "{name}: {identity}");
    let avcs = c.run("dmesg | grep 'avc:  denied'", CMD).unwrap().1;
    let count = avcs.lines().filter(|l| l.contains("avc:")).count();
    eprintln!("{name}: {count} AVC denials since boot");
    assert_eq!(count, 0, "{name}: AVC denials since boot:\n{avcs}");
    c.send("poweroff\n").unwrap();
    let _ = vm.wait_exit(Duration::from_secs(120));
}

#[test]
fn iso_boots_on_seabios() {
    let Some(img) = image() else { return };
    boot_and_check(
        "cd-bios",
        Config::new(Firmware::Bios, Boot::Cdrom(img.iso.clone())),
        &img,
    );
}

#[test]
fn iso_boots_on_ovmf() {
    let Some(img) = image() else { return };
    boot_and_check(
        "cd-uefi",
        Config::new(Firmware::Uefi, Boot::Cdrom(img.iso.clone())),
        &img,
    );
}

#[test]
fn iso_written_to_usb_boots_on_ovmf() {
    let Some(img) = image() else { return };
    boot_and_check(
        "usb-uefi",
        Config::new(Firmware::Uefi, Boot::Usb(img.iso.clone())),
        &img,
    );
}

#[test]
fn pxe_tree_boots_through_tftp_and_ipxe() {
    let Some(img) = image() else { return };
    // boot.ipxe fetches the root image from http://${next-server}/hvnode/:
    // qemu's user network maps next-server (10.0.2.2) port 80 to this
    // machine's loopback.
    let pxe = img.dir.join("pxe");
    let _http = vmtest::http::Server::start(&pxe, "/hvnode/", 80)
        .expect("serving the PXE tree on 127.0.0.1:80 (is the port free?)");
    let mut cfg = Config::new(
        Firmware::Bios,
        Boot::Pxe {
            dir: pxe,
            bootfile: "boot.ipxe".into(),
        },
    );
    // The live root image is downloaded into memory.
    cfg.memory_mib = 4096;
    boot_and_check("pxe-bios", cfg, &img);
}
