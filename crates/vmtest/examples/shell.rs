//! Boots an image and runs the commands given on the command line in the
//! guest, printing their output: `shell ISO [--uefi|--usb] CMD...`.
use std::path::PathBuf;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let iso = PathBuf::from(args.remove(0));
    let uefi = args.iter().any(|a| a == "--uefi");
    let usb = args.iter().any(|a| a == "--usb");
    args.retain(|a| !a.starts_with("--"));
    let fw = if uefi {
        vmtest::Firmware::Uefi
    } else {
        vmtest::Firmware::Bios
    };
    let boot = if usb {
        vmtest::Boot::Usb(iso)
    } else {
        vmtest::Boot::Cdrom(iso)
    };
    let mut vm = vmtest::Vm::start(
        &vmtest::Config::new(fw, boot),
        &PathBuf::from("/tmp/vm-serial.log"),
    )?;
    vm.console
        .expect("root@hvnode:~#", Duration::from_secs(400))?;
    println!("prompt after {:.0} s", vm.uptime());
    vm.console.prepare_shell()?;
    for cmd in args {
        let (rc, out) = vm.console.run(&cmd, Duration::from_secs(120))?;
        println!("$ {cmd}  [rc={rc}]\n{out}");
    }
    Ok(())
}
