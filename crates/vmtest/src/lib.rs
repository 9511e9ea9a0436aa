//! Boots hvnode images in qemu (TCG: these machines have no hardware
//! virtualisation) and drives the guest's serial console like an admin at a
//! terminal would: wait for text, type a command, read what it printed.
//!
//! Every network peer stays on the build host: the guest reaches it only
//! through qemu's user-mode network (the host is 10.0.2.2 from inside).

pub mod console;
pub mod disk_image;
pub mod http;
pub mod image;
pub mod install;
pub mod live;
pub mod profile;

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub use console::Console;
pub use image::Image;

/// Firmware the guest boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (qemu's default).
    Bios,
    /// OVMF.
    Uefi,
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
/// lockups of 20 s and more in its log). Without them the kernel takes its
/// unrolled loops, which TCG translates once and runs at speed.
pub fn cpu_model() -> String {
    std::env::var("HVNODE_VM_CPU_MODEL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "max,erms=off,fsrm=off".into())
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

/// Makes a small FAT disk image labelled `OEMDRV` holding `ks.cfg`: where
/// Anaconda (and hvnode-install) look for a kickstart when the kernel
/// command line names none.
pub fn oemdrv_disk(kickstart: &str, path: &Path) -> Result<()> {
    use command::CommandExt;
    let dir = tempfile::tempdir()?;
    let ks = dir.path().join("ks.cfg");
    fs::write(&ks, kickstart)?;
    let _ = fs::remove_file(path);
    Command::new("mkfs.vfat")
        .args(["-C", "-n", "OEMDRV"])
        .arg(path)
        .arg("4096")
        .run()
        .context("making the OEMDRV disk (apt-get install dosfstools)")?;
    Command::new("mcopy")
        .arg("-i")
        .arg(path)
        .arg(&ks)
        .arg("::ks.cfg")
        .run()
        .context("copying ks.cfg onto the OEMDRV disk (apt-get install mtools)")?;
    Ok(())
}

/// A free TCP port on 127.0.0.1 (for a forward into a guest).
pub fn free_port() -> Result<u16> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// A qcow2 overlay at `path` over `base`: a guest writes to the overlay and
/// `base` stays as it is, so one installed disk serves several boots.
pub fn overlay_disk(base: &Path, path: &Path) -> Result<()> {
    use command::CommandExt;
    let _ = fs::remove_file(path);
    let base = base
        .canonicalize()
        .with_context(|| format!("finding {}", base.display()))?;
    Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(path)
        .run()
        .context("making an overlay disk (apt-get install qemu-utils)")?;
    Ok(())
}

/// Creates an empty qcow2 disk of `gib` GiB (sparse: it grows as written).
pub fn blank_disk(path: &Path, gib: u64) -> Result<()> {
    use command::CommandExt;
    let _ = fs::remove_file(path);
    Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(format!("{gib}G"))
        .run()
        .context("making a disk image (apt-get install qemu-utils)")?;
    Ok(())
}

/// A running guest; dropping it kills qemu.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    pub console: Console,
    pub started: Instant,
    _dir: tempfile::TempDir,
}

/// OVMF's code and variable templates, as Debian installs them.
fn ovmf() -> Result<(PathBuf, PathBuf)> {
    for (code, vars) in [
        (
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
        ),
        (
            "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/OVMF/OVMF_VARS.fd",
        ),
    ] {
        if Path::new(code).is_file() && Path::new(vars).is_file() {
            return Ok((code.into(), vars.into()));
        }
    }
    bail!("OVMF is not installed (apt-get install ovmf; `make deps` does)")
}

impl Vm {
    /// Starts qemu; the serial console log is copied to `log`.
    pub fn start(cfg: &Config, log: &Path) -> Result<Vm> {
        let dir = tempfile::tempdir()?;
        let sock = dir.path().join("serial.sock");
        let mut c = Command::new("qemu-system-x86_64");
        c.args(["-machine", "q35", "-accel", "tcg", "-cpu", &cpu_model()])
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
            .args([
                "-display",
                "none",
                "-vga",
                "none",
                "-no-reboot",
                "-monitor",
                "none",
            ])
            .arg("-chardev")
            .arg(format!(
                "socket,id=serial0,path={},server=on,wait=on",
                sock.display()
            ))
            .args(["-serial", "chardev:serial0"])
            .args(["-device", "virtio-rng-pci"]);
        if cfg.firmware == Firmware::Uefi {
            let (code, vars) = ovmf()?;
            let my_vars = dir.path().join("OVMF_VARS.fd");
            fs::copy(&vars, &my_vars)?;
            c.arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={}",
                    code.display()
                ))
                .arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,unit=1,file={}",
                    my_vars.display()
                ));
        }
        let mut netdev = "user,id=net0".to_string();
        match &cfg.boot {
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
            Boot::Pxe { dir, bootfile } => {
                netdev.push_str(&format!(",tftp={},bootfile={bootfile}", dir.display()));
            }
            Boot::Disk => {}
        }
        for (host, guest) in &cfg.forwards {
            netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
        }
        let net_boot = if matches!(cfg.boot, Boot::Pxe { .. }) {
            ",bootindex=0"
        } else {
            ""
        };
        // qemu's own iPXE ROM for the NIC (BIOS and EFI drivers in one).
        c.arg("-netdev")
            .arg(netdev)
            .arg("-device")
            .arg(format!("virtio-net-pci,netdev=net0{net_boot}"));
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
            c.arg("-drive")
                .arg(format!(
                    "if=none,id=disk{i},format={fmt},file={}",
                    d.display()
                ))
                .arg("-device")
                .arg(format!("virtio-blk-pci,drive=disk{i}{boot}"));
        }
        let qemu_log = fs::File::create(log.with_extension("qemu.log"))?;
        tracing::info!(command = %command::command_line(&c), "starting qemu");
        let mut child = c
            .stdin(Stdio::null())
            .stdout(qemu_log.try_clone()?)
            .stderr(qemu_log)
            .spawn()
            .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
        // qemu creates the socket, then waits for us before running the guest.
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match UnixStream::connect(&sock) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    if let Some(status) = child.try_wait()? {
                        bail!(
                            "qemu exited at once ({status}); see {}",
                            log.with_extension("qemu.log").display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => bail!("qemu's serial socket never appeared: {e}"),
            }
        };
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
            let answered = Command::new("curl")
                .args(["-sk", "-o", "/dev/null", "--max-time", "3", "--fail", &url])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .context("running curl (apt-get install curl)")?
                .success();
            if answered {
                return Ok(self.uptime());
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
            if self.child.try_wait()?.is_some() {
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
