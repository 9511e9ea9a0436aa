//! UEFI Secure Boot on OVMF with Microsoft's keys enrolled and Secure Boot
//! enforced (`Firmware::UefiSecureBoot`). The ISO, the USB image and the
//! installed disks boot it in the other tests of this binary; here, what
//! no other boot shows: the firmware refuses an unsigned loader where the
//! shipped chain starts, and the PXE tree boots the live system through
//! shim and Debian's signed network grub over TFTP.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vmtest::{Boot, Config, Firmware, Vm};

use super::{BOOT, CMD, image, work_dir};

/// What OVMF prints when it refuses an image under Secure Boot.
const REFUSED: &str = "Access Denied";
/// What grub prints first once the firmware and shim have started it.
const GRUB_STARTED: &str = "Welcome to GRUB";

/// Runs a command on this machine, failing with its stderr.
fn run(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Boots `disk` (a FAT file system with `EFI/BOOT/BOOTX64.EFI`) on Secure
/// Boot firmware and waits for one of `outcomes`; returns which, and the
/// seconds it took.
fn first_stage(dir: &Path, name: &str, disk: &Path, outcomes: &[&str]) -> (usize, f64) {
    let mut cfg = Config::new(Firmware::UefiSecureBoot, Boot::Disk);
    cfg.disks = vec![disk.to_path_buf()];
    cfg.memory_mib = 512;
    let log = vmtest::image::serial_log(dir, name);
    let mut vm = Vm::start(&cfg, &log).unwrap();
    let (i, _) = vm
        .console
        .expect_any(outcomes, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{name}: {e}; serial log {}", log.display()));
    (i, vm.uptime())
}

/// The medium's UEFI boot image, then the same with an unsigned grub where
/// shim was: the firmware starts the first (grub greets) and refuses the
/// second. Without the signed chain the ISO would be the second.
fn unsigned_loader_is_refused(iso: &Path, dir: &Path) {
    let shipped = dir.join("efi.img");
    let _ = std::fs::remove_file(&shipped);
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", "/boot/grub/efi.img"])
        .arg(&shipped));
    run(Command::new("chmod").arg("u+w").arg(&shipped));
    let (i, secs) = first_stage(dir, "sb-shipped", &shipped, &[GRUB_STARTED, REFUSED]);
    assert_eq!(i, 0, "the shipped shim was refused on Secure Boot firmware");
    eprintln!("secure boot: the ISO's shim and grub started after {secs:.0} s");

    // grub as the ISO carried it before the signed chain: built here,
    // from grub-efi-amd64-bin, signed by nobody.
    let unsigned = dir.join("unsigned.img");
    std::fs::copy(&shipped, &unsigned).unwrap();
    let efi = dir.join("grub-unsigned.efi");
    run(Command::new("grub-mkimage")
        .args([
            "--format",
            "x86_64-efi",
            "--prefix",
            "/EFI/BOOT",
            "--output",
        ])
        .arg(&efi)
        .args(["normal", "fat", "part_gpt"]));
    run(Command::new("mcopy")
        .args(["-o", "-i"])
        .arg(&unsigned)
        .arg(&efi)
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .env("MTOOLS_SKIP_CHECK", "1"));
    let (i, secs) = first_stage(dir, "sb-unsigned", &unsigned, &[REFUSED, GRUB_STARTED]);
    assert_eq!(i, 0, "Secure Boot firmware started an unsigned grub");
    eprintln!("secure boot: an unsigned grub refused after {secs:.0} s");
}

/// The shipped `grub/grub.cfg` of the PXE tree, its HTTP server given a
/// port.
fn pxe_grub_cfg(shipped: &str, port: u16) -> String {
    shipped.replace(
        "http://${net_default_server}/hvnode/",
        &format!("http://${{net_default_server}}:{port}/hvnode/"),
    )
}

/// Secure Boot enforced, seen from inside: shim's view (`mokutil`), the
/// kernel's (it locks itself down), and SELinux still enforcing.
pub fn check_secure_boot(c: &mut vmtest::Console, name: &str) {
    let state = c.check("mokutil --sb-state", CMD).unwrap();
    assert!(
        state.contains("SecureBoot enabled"),
        "{name}: mokutil --sb-state: {state}"
    );
    let lockdown = c.check("cat /sys/kernel/security/lockdown", CMD).unwrap();
    assert!(
        lockdown.contains("[integrity]") || lockdown.contains("[confidentiality]"),
        "{name}: the kernel is not locked down under Secure Boot: {lockdown}"
    );
    assert_eq!(
        c.check("getenforce", CMD).unwrap().trim(),
        "Enforcing",
        "{name}"
    );
}

/// An installed node tells its admin it booted with Secure Boot: `nodectl
/// info` (root) and the console's Node API (its unprivileged web process,
/// which reads the firmware's variable under its own SELinux domain).
pub fn node_reports_secure_boot(c: &mut vmtest::Console, name: &str, console: bool) {
    let info = c.check("nodectl info --json", CMD).unwrap();
    assert!(
        info.contains("\"secure_boot\": true") && info.contains("\"kind\": \"uefi\""),
        "{name}: nodectl info --json: {info}"
    );
    let text = c.check("nodectl info | grep '^firmware:'", CMD).unwrap();
    assert!(
        text.contains("UEFI, Secure Boot on (kernel lockdown: integrity)"),
        "{name}: {text}"
    );
    if console {
        vmtest::live::console_login(c).unwrap_or_else(|e| panic!("{name}: {e}"));
        let node = c
            .check(
                &format!(
                    "curl -sk -b /tmp/jar {}/api/v1/node",
                    vmtest::live::CONSOLE_URL
                ),
                CMD,
            )
            .unwrap();
        assert!(
            node.contains("\"secure_boot\":true") && node.contains("\"lockdown\":\"integrity\""),
            "{name}: the console's node API: {node}"
        );
    }
}

/// The live installer ran under Secure Boot: its kernel said so on the
/// serial console, logged in `log` (the kernel's ring buffer that %post
/// keeps has lost its first lines by then).
pub fn installed_under_secure_boot(log: &Path, name: &str) {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap()).into_owned();
    for line in [
        "secureboot: Secure boot enabled",
        "Kernel is locked down from EFI Secure Boot",
    ] {
        assert!(
            text.contains(line),
            "{name}: the installer's kernel did not say {line:?}; serial log {}",
            log.display()
        );
    }
}

#[test]
fn secure_boot_refuses_an_unsigned_loader_and_boots_the_pxe_tree_live() {
    let Some(img) = image() else { return };
    let dir = work_dir("secure-boot");
    unsigned_loader_is_refused(&img.iso, &dir);

    // The PXE tree as shipped, served as the TFTP root (where the network
    // grub's prefix is) and over http (the root image).
    let root = dir.join("tree");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("grub")).unwrap();
    for f in [
        "shimx64.efi",
        "grubx64.efi",
        "mmx64.efi",
        "vmlinuz",
        "initrd.img",
        "squashfs.img",
    ] {
        std::os::unix::fs::symlink(img.pxe().join(f), root.join(f)).unwrap();
    }
    let http = vmtest::http::Server::start(&root, "/hvnode/", 0).unwrap();
    let shipped = std::fs::read_to_string(img.pxe().join("grub/grub.cfg")).unwrap();
    let cfg_text = pxe_grub_cfg(&shipped, http.port);
    assert!(cfg_text.contains(&format!(":{}/hvnode/squashfs.img", http.port)));
    std::fs::write(root.join("grub/grub.cfg"), cfg_text).unwrap();

    let mut cfg = Config::new(
        Firmware::UefiSecureBoot,
        Boot::Pxe {
            dir: root.clone(),
            bootfile: "shimx64.efi".into(),
        },
    );
    // The root image is downloaded into memory.
    cfg.memory_mib = 4096;
    let log = vmtest::image::serial_log(&dir, "pxe-sb");
    let started = Instant::now();
    let mut vm = Vm::start(&cfg, &log).unwrap();
    let c = &mut vm.console;
    c.expect(GRUB_STARTED, BOOT)
        .unwrap_or_else(|e| panic!("pxe-sb: no grub: {e}; serial log {}", log.display()));
    let grub = started.elapsed().as_secs_f64();
    c.expect("root@hvnode:~#", BOOT)
        .unwrap_or_else(|e| panic!("pxe-sb: {e}; serial log {}", log.display()));
    eprintln!(
        "pxe-sb: grub after {grub:.0} s, root prompt after {:.0} s",
        vm.uptime()
    );
    drop(http);
    let c = &mut vm.console;
    c.prepare_shell().unwrap();
    vmtest::live::boot_finished(c, &dir, "pxe-sb", BOOT).unwrap();
    check_secure_boot(c, "pxe-sb");
    // The live root came over http, as the PXE tree's README says.
    let cmdline = c.check("cat /proc/cmdline", CMD).unwrap();
    assert!(cmdline.contains("root=live:http://10.0.2.2:"), "{cmdline}");
    assert_eq!(
        c.check(
            "systemctl is-active hvnode-helper.service hvnode-agent.service",
            CMD
        )
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>(),
        ["active", "active"]
    );
    vmtest::live::no_avc(c, "pxe-sb").unwrap();
    c.send("poweroff\n").unwrap();
    let _ = vm.wait_exit(Duration::from_secs(180));
}

#[test]
fn the_pxe_grub_config_keeps_the_shipped_arguments() {
    let shipped = "menuentry \"x\" --id live {\n    linux /vmlinuz root=live:http://${net_default_server}/hvnode/squashfs.img rd.live.image\n    initrd /initrd.img\n}\n";
    assert_eq!(
        pxe_grub_cfg(shipped, 8080),
        "menuentry \"x\" --id live {\n    linux /vmlinuz root=live:http://${net_default_server}:8080/hvnode/squashfs.img rd.live.image\n    initrd /initrd.img\n}\n"
    );
}
