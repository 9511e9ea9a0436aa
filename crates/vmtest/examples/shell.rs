//! Boots an image's live system and runs the commands given on the command
//! line in the guest, printing their output:
//! `shell ISO [--uefi|--usb] [--disk=PATH]... [--timeout=SECS] CMD...`;
//! with `--installed=PASSWORD` it boots the first disk instead (ISO is then
//! ignored) and logs in as root; `--grub-password` first tries grub's
//! password at its menu, as the install tests do.
use std::path::PathBuf;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let iso = PathBuf::from(args.remove(0));
    let uefi = args.iter().any(|a| a == "--uefi");
    let usb = args.iter().any(|a| a == "--usb");
    let disks: Vec<PathBuf> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--disk="))
        .map(PathBuf::from)
        .collect();
    let timeout = args
        .iter()
        .find_map(|a| a.strip_prefix("--timeout="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let grub_password = args.iter().any(|a| a == "--grub-password");
    let installed = args
        .iter()
        .find_map(|a| a.strip_prefix("--installed="))
        .map(String::from);
    args.retain(|a| !a.starts_with("--"));
    let fw = if uefi {
        vmtest::Firmware::Uefi
    } else {
        vmtest::Firmware::Bios
    };
    let boot = if installed.is_some() {
        vmtest::Boot::Disk
    } else if usb {
        vmtest::Boot::Usb(iso)
    } else {
        vmtest::Boot::Cdrom(iso)
    };
    let mut cfg = vmtest::Config::new(fw, boot);
    cfg.disks = disks;
    let mut vm = vmtest::Vm::start(&cfg, &PathBuf::from("/tmp/vm-serial.log"))?;
    if grub_password {
        vmtest::install::check_grub_password(&mut vm, Duration::from_secs(600))?;
        println!("grub password checked after {:.0} s", vm.uptime());
    }
    if let Some(pw) = &installed {
        vm.console.login("root", pw, Duration::from_secs(900))?;
    } else {
        // The default entry installs: pick "Start hvnode live" by its hotkey.
        vm.console
            .expect("Start hvnode", Duration::from_secs(600))?;
        vm.console.send("l")?;
        vm.console
            .expect("root@hvnode:~#", Duration::from_secs(900))?;
    }
    println!("prompt after {:.0} s", vm.uptime());
    vm.console.prepare_shell()?;
    for cmd in args {
        let (rc, out) = vm.console.run(&cmd, Duration::from_secs(timeout))?;
        println!("$ {cmd}  [rc={rc}]\n{out}");
    }
    Ok(())
}
