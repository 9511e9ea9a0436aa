//! The qemu command line, pinned argument by argument: a guest boots the
//! same however [`Vm::start`] is arranged.

use std::ffi::OsStr;

use super::*;

const SOCK: &str = "/run/guest/serial.sock";
const ACCEL: &str = "tcg,tb-size=256";
const CPU: &str = "max,erms=off,fsrm=off";

#[test]
fn guests_run_tcg_with_a_256_mib_translation_cache_unless_the_environment_says_otherwise() {
    assert_eq!(super::ACCEL, ACCEL);
    assert_eq!(CPU_MODEL, CPU);
    assert_eq!(setting(None, super::ACCEL), ACCEL);
    assert_eq!(setting(Some(String::new()), super::ACCEL), ACCEL);
    assert_eq!(setting(Some("tcg".into()), super::ACCEL), "tcg");
}

fn pflash(secure_boot: bool) -> Pflash {
    let code = if secure_boot {
        "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
    } else {
        "/usr/share/OVMF/OVMF_CODE_4M.fd"
    };
    Pflash {
        code: code.into(),
        vars: "/run/guest/OVMF_VARS.fd".into(),
    }
}

fn config(firmware: Firmware, boot: Boot, disks: &[&str]) -> Config {
    let mut cfg = Config::new(firmware, boot);
    cfg.cpus = 1;
    cfg.disks = disks.iter().map(PathBuf::from).collect();
    cfg
}

fn args(cfg: &Config) -> Vec<String> {
    let p = pflash(cfg.firmware == Firmware::UefiSecureBoot);
    let pflash = cfg.firmware.is_uefi().then_some(&p);
    let c = command_line(cfg, Path::new(SOCK), pflash, ACCEL, CPU);
    assert_eq!(c.get_program(), OsStr::new("qemu-system-x86_64"));
    c.get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// The machine, its firmware's identity, memory, vCPUs, no screen, the serial
/// console, the RNG.
fn machine<'a>(memory: &'a str, cpus: &'a str) -> Vec<&'a str> {
    machine_of("q35", memory, cpus)
}

fn machine_of<'a>(machine: &'a str, memory: &'a str, cpus: &'a str) -> Vec<&'a str> {
    vec![
        "-machine",
        machine,
        "-accel",
        ACCEL,
        "-cpu",
        CPU,
        "-uuid",
        "4c4c4544-0048-5610-8056-b4c04f4e3432",
        "-smbios",
        "type=1,serial=HVNODE-QEMU-0001",
        "-m",
        memory,
        "-smp",
        cpus,
        "-display",
        "none",
        "-vga",
        "none",
        "-no-reboot",
        "-monitor",
        "none",
        "-chardev",
        "socket,id=serial0,path=/run/guest/serial.sock,server=on,wait=on",
        "-serial",
        "chardev:serial0",
        "-device",
        "virtio-rng-pci",
    ]
}

const OVMF: [&str; 4] = [
    "-drive",
    "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
    "-drive",
    "if=pflash,format=raw,unit=1,file=/run/guest/OVMF_VARS.fd",
];

#[test]
fn a_cd_on_seabios_with_two_disks_and_forwards() {
    let mut cfg = config(
        Firmware::Bios,
        Boot::Cdrom("/img/x.iso".into()),
        &["/w/a.qcow2", "/w/b.img"],
    );
    cfg.forwards = vec![(2222, 22), (9443, 9090)];
    let mut want = machine("3072", "1");
    want.extend([
        "-drive",
        "if=none,id=cd0,media=cdrom,readonly=on,file=/img/x.iso",
        "-device",
        "ide-cd,drive=cd0,bootindex=0",
        "-netdev",
        "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:9443-:9090",
        "-device",
        "virtio-net-pci,netdev=net0",
        "-drive",
        "if=none,id=disk0,format=qcow2,werror=report,rerror=report,file=/w/a.qcow2",
        "-device",
        "virtio-blk-pci,drive=disk0",
        "-drive",
        "if=none,id=disk1,format=raw,werror=report,rerror=report,file=/w/b.img",
        "-device",
        "virtio-blk-pci,drive=disk1",
    ]);
    assert_eq!(args(&cfg), want);
}

#[test]
fn a_usb_disk_on_ovmf() {
    let cfg = config(
        Firmware::Uefi,
        Boot::Usb("/img/x.iso".into()),
        &["/w/x.qcow2"],
    );
    let mut want = machine("3072", "1");
    want.extend(OVMF);
    want.extend([
        "-device",
        "qemu-xhci,id=xhci",
        "-drive",
        "if=none,id=usb0,format=raw,readonly=on,file=/img/x.iso",
        "-device",
        "usb-storage,bus=xhci.0,drive=usb0,bootindex=0",
        "-netdev",
        "user,id=net0",
        "-device",
        "virtio-net-pci,netdev=net0",
        "-drive",
        "if=none,id=disk0,format=qcow2,werror=report,rerror=report,file=/w/x.qcow2",
        "-device",
        "virtio-blk-pci,drive=disk0",
    ]);
    assert_eq!(args(&cfg), want);
}

#[test]
fn pxe_on_seabios_boots_the_nic_first() {
    let mut cfg = config(
        Firmware::Bios,
        Boot::Pxe {
            dir: "/w/tftp".into(),
            bootfile: "boot.ipxe".into(),
        },
        &["/w/t.qcow2"],
    );
    cfg.forwards = vec![(1, 2)];
    let mut want = machine("3072", "1");
    want.extend([
        "-netdev",
        "user,id=net0,tftp=/w/tftp,bootfile=boot.ipxe,hostfwd=tcp:127.0.0.1:1-:2",
        "-device",
        "virtio-net-pci,netdev=net0,bootindex=0",
        "-drive",
        "if=none,id=disk0,format=qcow2,werror=report,rerror=report,file=/w/t.qcow2",
        "-device",
        "virtio-blk-pci,drive=disk0",
    ]);
    assert_eq!(args(&cfg), want);
}

#[test]
fn the_first_disk_on_ovmf_with_memory_and_vcpus() {
    let mut cfg = config(Firmware::Uefi, Boot::Disk, &["/w/d.qcow2", "/w/oemdrv.img"]);
    cfg.memory_mib = 2048;
    cfg.cpus = 2;
    let mut want = machine("2048", "2");
    want.extend(OVMF);
    want.extend([
        "-netdev",
        "user,id=net0",
        "-device",
        "virtio-net-pci,netdev=net0",
        "-drive",
        "if=none,id=disk0,format=qcow2,werror=report,rerror=report,file=/w/d.qcow2",
        "-device",
        "virtio-blk-pci,drive=disk0,bootindex=0",
        "-drive",
        "if=none,id=disk1,format=raw,werror=report,rerror=report,file=/w/oemdrv.img",
        "-device",
        "virtio-blk-pci,drive=disk1",
    ]);
    assert_eq!(args(&cfg), want);
}

#[test]
fn pxe_on_ovmf_with_secure_boot_has_smm_and_a_secure_flash() {
    let cfg = config(
        Firmware::UefiSecureBoot,
        Boot::Pxe {
            dir: "/w/pxe".into(),
            bootfile: "shimx64.efi".into(),
        },
        &[],
    );
    let mut want = machine_of("q35,smm=on", "3072", "1");
    want.extend([
        "-global",
        "driver=cfi.pflash01,property=secure,value=on",
        "-drive",
        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
        "-drive",
        "if=pflash,format=raw,unit=1,file=/run/guest/OVMF_VARS.fd",
        "-netdev",
        "user,id=net0,tftp=/w/pxe,bootfile=shimx64.efi",
        "-device",
        "virtio-net-pci,netdev=net0,bootindex=0,romfile=",
    ]);
    assert_eq!(args(&cfg), want);
}

#[test]
fn secure_boot_firmware_is_debians_with_microsofts_keys() {
    let d = tempfile::tempdir().unwrap();
    if !hvnode_testutil::require_path(Path::new("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")) {
        return;
    }
    let p = firmware::pflash(d.path(), true).unwrap();
    assert_eq!(p.code, Path::new("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"));
    assert_eq!(
        fs::read(&p.vars).unwrap(),
        fs::read("/usr/share/OVMF/OVMF_VARS_4M.ms.fd").unwrap(),
        "the guest's own copy of the variable store with the keys enrolled"
    );
}
