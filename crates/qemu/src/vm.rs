//! A guest: what it boots and with what, the qemu command line that runs
//! it, and the running qemu with its serial console.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use command::CommandExt;

use crate::console::Console;
use crate::firmware::{self, Pflash};

/// Firmware the guest boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (qemu's default).
    Bios,
    /// OVMF without Secure Boot.
    Uefi,
    /// OVMF with Secure Boot enforced and Microsoft's keys enrolled, as
    /// servers ship: only a loader signed by Microsoft's UEFI CA starts
    /// (the node's shim), and SMM protects the variable store.
    UefiSecureBoot,
}

impl Firmware {
    /// Whether the guest boots through UEFI (OVMF).
    pub fn is_uefi(self) -> bool {
        matches!(self, Firmware::Uefi | Firmware::UefiSecureBoot)
    }
}

/// What the guest boots from.
#[derive(Debug, Clone)]
pub enum Boot {
    /// The ISO as a CD.
    Cdrom(PathBuf),
    /// The ISO written to a USB disk.
    Usb(PathBuf),
    /// The network: qemu's TFTP serves `dir`, iPXE runs `bootfile`.
    Pxe { dir: PathBuf, bootfile: String },
    /// The first virtio disk.
    Disk,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub firmware: Firmware,
    pub boot: Boot,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Extra virtio disks (qcow2 or raw), in order.
    pub disks: Vec<PathBuf>,
    /// TCP ports of the guest reachable from this machine: (port on
    /// 127.0.0.1, port in the guest), through qemu's user-mode network.
    pub forwards: Vec<(u16, u16)>,
}

/// vCPUs a guest gets unless `HVNODE_VM_CPUS` says otherwise: one. With two,
/// the guest's kernel finds the TCG vCPUs' time stamp counters out of step,
/// marks the TSC unstable and falls back to the HPET, whose every read is an
/// emulated MMIO access: its userspace then runs several times slower
/// (`make bench-boot` with `HVNODE_BENCH_CPUS=2` shows it). On a 2-core
/// machine two one-vCPU guests side by side do more than one two-vCPU
/// guest at a time.
pub fn default_cpus() -> u32 {
    std::env::var("HVNODE_VM_CPUS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// The vCPU model unless `HVNODE_VM_CPU_MODEL` says otherwise: qemu's
/// `max` without ERMS and FSRM ("fast `rep movsb`/`rep stosb`"). With them,
/// the guest's kernel clears every page and glibc fills large buffers with
/// `rep stosb`, which TCG runs one byte per loop turn: a page fault costs
/// 4,096 of them, and a boot spends minutes in `clear_page_erms` (soft
/// lockups of 20 s and more in its log). Without them the kernel clears
/// pages with `rep stosq` (8 bytes a turn; `rep_good` stays on for this
/// model) and glibc takes its vector loops. A page that held code TCG
/// translated still costs a slow path per store (docs/image.md, "Boot time
/// under TCG").
pub fn cpu_model() -> String {
    setting(std::env::var("HVNODE_VM_CPU_MODEL").ok(), CPU_MODEL)
}

/// The vCPU model of [`cpu_model`] when the environment names none.
pub const CPU_MODEL: &str = "max,erms=off,fsrm=off";

/// qemu's accelerator unless `HVNODE_VM_ACCEL` says otherwise: TCG with a
/// translation cache of 256 MiB. With qemu's default (1 GiB) no boot ever
/// fills the cache, so the code TCG translated from pages the guest has since
/// freed (the initramfs's programs, init code) stays, and the guest's kernel
/// pays a slow path for every store while it zeroes such a page for reuse: an
/// installed node's first boot took 54–58 s (`systemd-analyze`) and 71–74 s
/// to its login prompt. With 256 MiB the cache is flushed four times during
/// that boot (`info jit` on the monitor) and those pages are plain memory
/// again: 43.4–43.6 s and 60–61 s (one or two boots each of 64, 128, 256,
/// 512 MiB and the default; 64 MiB retranslates too often, 56 s).
/// docs/image.md, "Boot time under TCG".
pub fn accel() -> String {
    setting(std::env::var("HVNODE_VM_ACCEL").ok(), ACCEL)
}

/// The accelerator of [`accel`] when the environment names none.
pub const ACCEL: &str = "tcg,tb-size=256";

/// A setting from the environment, or `default` when it is unset or empty.
fn setting(from_env: Option<String>, default: &str) -> String {
    from_env
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.into())
}

impl Config {
    pub fn new(firmware: Firmware, boot: Boot) -> Self {
        Config {
            firmware,
            boot,
            memory_mib: 3072,
            cpus: default_cpus(),
            disks: Vec::new(),
            forwards: Vec::new(),
        }
    }
}

/// A free TCP port on 127.0.0.1 (for a forward into a guest).
pub fn free_port() -> Result<u16> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(l.local_addr()
        .context("reading the free port's number on 127.0.0.1")?
        .port())
}

/// Where a guest's serial console is logged.
pub fn serial_log(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.serial.log"))
}

/// Where qemu's own output goes, beside the serial log `log`.
fn qemu_log(log: &Path) -> PathBuf {
    log.with_extension("qemu.log")
}

/// The qemu command line that runs `cfg` with its serial console on the
/// unix socket `serial`, OVMF's `pflash` (UEFI only) and the vCPU model
/// `cpu` on the accelerator `accel`.
fn command_line(
    cfg: &Config,
    serial: &Path,
    pflash: Option<&Pflash>,
    accel: &str,
    cpu: &str,
) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    machine_args(&mut c, cfg, serial, accel, cpu);
    if let Some(p) = pflash {
        pflash_args(&mut c, p, cfg.firmware == Firmware::UefiSecureBoot);
    }
    medium_args(&mut c, &cfg.boot);
    network_args(&mut c, cfg);
    disk_args(&mut c, cfg);
    c
}

/// The system UUID every test guest's firmware reports (SMBIOS type 1), as a
/// server's does: without one qemu leaves it unset and Linux shows none.
pub const SYSTEM_UUID: &str = "4c4c4544-0048-5610-8056-b4c04f4e3432";
/// The serial number every test guest's firmware reports (SMBIOS type 1).
pub const SYSTEM_SERIAL: &str = "HVNODE-QEMU-0001";

/// The machine, its vCPUs and memory, its firmware's identity, no screen, the
/// serial console.
fn machine_args(c: &mut Command, cfg: &Config, serial: &Path, accel: &str, cpu: &str) {
    // Secure Boot's OVMF needs SMM, and its variable store flash is then
    // writable from SMM only.
    let machine = if cfg.firmware == Firmware::UefiSecureBoot {
        "q35,smm=on"
    } else {
        "q35"
    };
    c.args(["-machine", machine, "-accel", accel, "-cpu", cpu])
        .args(["-uuid", SYSTEM_UUID])
        .args(["-smbios", &format!("type=1,serial={SYSTEM_SERIAL}")])
        .args([
            "-m",
            &cfg.memory_mib.to_string(),
            "-smp",
            &cfg.cpus.to_string(),
        ])
        // No graphics card: a headless server with a serial console.
        // Under TCG the kernel's bochs-drm framebuffer console costs a
        // minute of a one-vCPU boot (zeroing its memory, redrawing the
        // console in emulated video memory): emulator time, not the
        // node's.
        .args(["-display", "none", "-vga", "none", "-no-reboot"]);
    // A human monitor socket on demand, for looking at a guest from the
    // outside (`info registers` samples where a boot spends its time).
    match std::env::var_os("HVNODE_VM_MONITOR") {
        Some(path) => {
            let mut arg = std::ffi::OsString::from("unix:");
            arg.push(path);
            arg.push(",server=on,wait=off");
            c.arg("-monitor").arg(arg);
        }
        None => {
            c.args(["-monitor", "none"]);
        }
    }
    c.arg("-chardev")
        .arg(format!(
            "socket,id=serial0,path={},server=on,wait=on",
            serial.display()
        ))
        .args(["-serial", "chardev:serial0"])
        .args(["-device", "virtio-rng-pci"]);
}

/// OVMF: the shared code read-only, the guest's own variable store.
fn pflash_args(c: &mut Command, p: &Pflash, secure_boot: bool) {
    if secure_boot {
        c.args(["-global", "driver=cfi.pflash01,property=secure,value=on"]);
    }
    c.arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            p.code.display()
        ))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            p.vars.display()
        ));
}

/// The ISO as a CD or a USB disk, first in the boot order.
fn medium_args(c: &mut Command, boot: &Boot) {
    match boot {
        Boot::Cdrom(iso) => {
            c.arg("-drive")
                .arg(format!(
                    "if=none,id=cd0,media=cdrom,readonly=on,file={}",
                    iso.display()
                ))
                .args(["-device", "ide-cd,drive=cd0,bootindex=0"]);
        }
        Boot::Usb(iso) => {
            c.args(["-device", "qemu-xhci,id=xhci"])
                .arg("-drive")
                .arg(format!(
                    "if=none,id=usb0,format=raw,readonly=on,file={}",
                    iso.display()
                ))
                .args(["-device", "usb-storage,bus=xhci.0,drive=usb0,bootindex=0"]);
        }
        Boot::Pxe { .. } | Boot::Disk => {}
    }
}

/// The user-mode network: TFTP for a PXE boot, the port forwards, and a
/// virtio NIC (with qemu's own iPXE ROM, except for a UEFI network boot).
fn network_args(c: &mut Command, cfg: &Config) {
    let mut netdev = "user,id=net0".to_string();
    if let Boot::Pxe { dir, bootfile } = &cfg.boot {
        netdev.push_str(&format!(",tftp={},bootfile={bootfile}", dir.display()));
    }
    for (host, guest) in &cfg.forwards {
        netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    let net_boot = match (&cfg.boot, cfg.firmware.is_uefi()) {
        // UEFI's network boot with the firmware's own PXE stack, as a
        // server's firmware has, not the NIC's iPXE ROM: shim fetches grub
        // through the firmware's PXE protocol, and the iPXE build qemu ships
        // gives it the buffer's size for the file's (shim then finds the
        // binary malformed and refuses it).
        (Boot::Pxe { .. }, true) => ",bootindex=0,romfile=",
        (Boot::Pxe { .. }, false) => ",bootindex=0",
        _ => "",
    };
    c.arg("-netdev")
        .arg(netdev)
        .arg("-device")
        .arg(format!("virtio-net-pci,netdev=net0{net_boot}"));
}

/// The virtio disks, in order; the first boots when the guest boots from
/// its disk.
fn disk_args(c: &mut Command, cfg: &Config) {
    for (i, d) in cfg.disks.iter().enumerate() {
        let fmt = if d.extension().is_some_and(|e| e == "qcow2") {
            "qcow2"
        } else {
            "raw"
        };
        let boot = if i == 0 && matches!(cfg.boot, Boot::Disk) {
            ",bootindex=0"
        } else {
            ""
        };
        // A host disk that fills up is an I/O error the guest (and so the
        // test) sees, not qemu's default for ENOSPC: pausing the guest,
        // which leaves a test waiting in silence until its timeout.
        c.arg("-drive")
            .arg(format!(
                "if=none,id=disk{i},format={fmt},werror=report,rerror=report,file={}",
                d.display()
            ))
            .arg("-device")
            .arg(format!("virtio-blk-pci,drive=disk{i}{boot}"));
    }
}

/// Starts qemu with stdin closed and its output in the qemu log beside
/// `log`.
fn spawn(c: &mut Command, log: &Path) -> Result<Child> {
    let path = qemu_log(log);
    let out = fs::File::create(&path)
        .with_context(|| format!("creating qemu's log {}", path.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("opening qemu's log {} for its stderr", path.display()))?;
    tracing::info!(command = %command::command_line(c), "starting qemu");
    c.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")
}

/// Connects to the serial console's socket: qemu creates it, then waits
/// for us before running the guest.
fn connect_serial(child: &mut Child, sock: &Path, log: &Path) -> Result<UnixStream> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match UnixStream::connect(sock) {
            Ok(s) => return Ok(s),
            Err(_) if Instant::now() < deadline => {
                let exited = child
                    .try_wait()
                    .context("checking whether qemu is still running")?;
                if let Some(status) = exited {
                    bail!(
                        "qemu exited at once ({status}); see {}",
                        qemu_log(log).display()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => bail!(
                "qemu's serial socket never appeared: {e}; see {}",
                qemu_log(log).display()
            ),
        }
    }
}

/// A running guest; dropping it kills qemu.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    pub console: Console,
    pub started: Instant,
    _dir: tempfile::TempDir,
}

impl Vm {
    /// Starts qemu; the serial console log is copied to `log`, qemu's own
    /// output to `log` with the extension `qemu.log`.
    pub fn start(cfg: &Config, log: &Path) -> Result<Vm> {
        let dir = tempfile::tempdir()
            .context("making a folder for the guest's serial socket (is TMPDIR writable?)")?;
        let sock = dir.path().join("serial.sock");
        let pflash = match cfg.firmware {
            Firmware::Uefi => Some(firmware::pflash(dir.path(), false)?),
            Firmware::UefiSecureBoot => Some(firmware::pflash(dir.path(), true)?),
            Firmware::Bios => None,
        };
        let mut c = command_line(cfg, &sock, pflash.as_ref(), &accel(), &cpu_model());
        let mut child = spawn(&mut c, log)?;
        let stream = connect_serial(&mut child, &sock, log)?;
        Ok(Vm {
            child,
            console: Console::new(stream, log)?,
            started: Instant::now(),
            _dir: dir,
        })
    }

    /// Seconds since qemu started.
    pub fn uptime(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Waits until the guest's web console answers at `https://127.0.0.1:PORT/login`
    /// (`port` forwarded to the guest's 9090), reading the serial console
    /// meanwhile; returns seconds since qemu started.
    pub fn wait_https(&mut self, port: u16, timeout: Duration) -> Result<f64> {
        let deadline = Instant::now() + timeout;
        let url = format!("https://127.0.0.1:{port}/login");
        while Instant::now() < deadline {
            let answer = Command::new("curl")
                .args(["-sk", "-o", "/dev/null", "--max-time", "3", "--fail", &url])
                .stdin_closed()
                .run();
            match answer {
                Ok(()) => return Ok(self.uptime()),
                Err(e) if e.not_found => {
                    return Err(e).context("running curl (apt-get install curl)");
                }
                // Not answering yet.
                Err(_) => {}
            }
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                self.console.fill()?;
            }
        }
        bail!(
            "the web console did not answer at {url} within {} s",
            timeout.as_secs()
        )
    }

    /// Waits for qemu to exit (after a poweroff in the guest), reading the
    /// serial console meanwhile: qemu stops the guest when nobody reads it,
    /// and a shutdown writes plenty.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let exited = self
                .child
                .try_wait()
                .context("checking whether qemu has exited")?;
            if exited.is_some() {
                return Ok(());
            }
            if !self.console.fill().unwrap_or(false) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        bail!("the guest did not power off within {} s", timeout.as_secs())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests;
