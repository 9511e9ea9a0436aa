//! One virtual machine in depth: what its domain XML says (vCPUs, memory, CPU,
//! machine, firmware, boot order, disks, NICs, graphics, serial lines), the sizes of
//! its disks and its snapshots, for the VM page (`GET /vms/{name}`) and
//! `GET /api/v1/vms/{name}`. Parsing is separate from the libvirt calls so that it
//! is tested on captured XML.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use roxmltree::Node;
use serde::Serialize;

use crate::error::ApiError;
use crate::metrics::human_bytes;
use crate::pages::{PageCtx, error_page, render};
use crate::state::{Authed, Shared};
use crate::vms::{Libvirt, VirtError, Vm};

/// What the domain XML says of a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DomainFacts {
    /// The most vCPUs it may have (`<vcpu>`); `vcpus` of [`Vm`] is how many it has.
    pub vcpus_max: u32,
    /// The memory it is given now (`<currentMemory>`), in KiB.
    pub current_memory_kib: u64,
    pub cpu: Cpu,
    /// The machine type, e.g. `pc-q35-7.2`.
    pub machine: Option<String>,
    pub arch: Option<String>,
    pub firmware: Firmware,
    /// What it boots from, first first: the `<os><boot dev>` names (`hd`, `cdrom`,
    /// `network`, `fd`), or devices by their own `<boot order>` (`disk vda`,
    /// `cdrom sda`, `nic 52:54:00:…`).
    pub boot_order: Vec<String>,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    pub graphics: Vec<Graphics>,
    pub serials: Vec<Serial>,
}

/// `<cpu mode>` and `<model>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cpu {
    /// `host-passthrough`, `host-model`, `custom`, `maximum`; none when the XML
    /// has no `<cpu>` (the hypervisor's default).
    pub mode: Option<String>,
    pub model: Option<String>,
}

/// BIOS or UEFI, and whether Secure Boot is on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Firmware {
    /// `bios` or `uefi`.
    pub kind: &'static str,
    pub secure_boot: bool,
    /// The loader's path (`<loader>`), when the XML names one.
    pub loader: Option<String>,
}

/// One `<disk>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// The guest's name of it, e.g. `vda`.
    pub target: String,
    /// `virtio`, `sata`, `scsi`, `ide`, `usb`.
    pub bus: Option<String>,
    /// `disk`, `cdrom`, `floppy` or `lun`.
    pub device: String,
    /// Where its data is: `file`, `block`, `volume`, `network`, `dir`.
    pub kind: String,
    /// The image format (`<driver type>`): `qcow2`, `raw`.
    pub format: Option<String>,
    /// The file, block device, directory or network name; none for a CD-ROM drive
    /// without a medium or a volume (see `pool` and `volume`).
    pub source: Option<String>,
    pub pool: Option<String>,
    pub volume: Option<String>,
    pub read_only: bool,
    /// Its place in the boot order (`<boot order>`).
    pub boot_order: Option<u32>,
    /// The guest's size of the disk, in bytes; none when unknown (see `size_error`).
    pub capacity: Option<u64>,
    /// What the image takes on the host, in bytes.
    pub allocation: Option<u64>,
    /// Why the sizes are unknown, when libvirt could not tell.
    pub size_error: Option<String>,
    /// Bytes the running guest read from it and wrote to it since it started
    /// (libvirt's block stats); none while it does not run.
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
}

/// One `<interface>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Nic {
    pub mac: Option<String>,
    /// `network`, `bridge`, `direct`, `user`, `ethernet`, …
    pub kind: String,
    /// The virtual network, bridge or host device it is plugged into.
    pub source: Option<String>,
    /// The device model the guest sees, e.g. `virtio`, `e1000e`.
    pub model: Option<String>,
    /// `up` or `down` (`<link state>`, up when not said).
    pub link: String,
    /// The host's tap device while it runs, e.g. `vnet3`.
    pub target: Option<String>,
    pub boot_order: Option<u32>,
    /// Bytes the running guest received and sent on it since it started
    /// (libvirt's interface stats); none while it does not run.
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
}

/// One `<graphics>`: the display a console connects to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Graphics {
    /// `vnc`, `spice`, …
    pub kind: String,
    /// The TCP port while it runs; none without one (autoport before the start, a
    /// socket, or no listener).
    pub port: Option<u16>,
    pub autoport: bool,
    /// The address it listens on.
    pub listen: Option<String>,
    /// The unix socket it listens on instead.
    pub socket: Option<String>,
}

/// One `<serial>` or `<console>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Serial {
    /// `serial` or `console`.
    pub device: String,
    /// Its host side: `pty`, `unix`, `file`, `tcp`, …
    pub kind: String,
    /// The guest side: `isa-serial`, `serial`, `virtio`, …
    pub target: Option<String>,
    pub port: Option<u32>,
    /// The host's pty, socket or file, while it is known.
    pub path: Option<String>,
}

/// One snapshot, from its XML.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub name: String,
    pub description: Option<String>,
    /// The domain's state when it was taken (`running`, `shutoff`, …).
    pub state: Option<String>,
    /// When it was taken, seconds since the Unix epoch.
    pub creation_time: Option<u64>,
    /// The snapshot it was taken on top of.
    pub parent: Option<String>,
}

/// Everything the VM page shows: the list's facts, the XML's, the disks' sizes and
/// the snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct VmDetail {
    #[serde(flatten)]
    pub vm: Vm,
    #[serde(flatten)]
    pub facts: DomainFacts,
    /// Oldest first.
    pub snapshots: Vec<Snapshot>,
    /// Why the snapshots could not be listed, when they could not.
    pub snapshots_error: Option<String>,
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

fn children<'a, 'i: 'a>(n: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| c.has_tag_name(name))
}

fn attr(n: Option<Node>, name: &str) -> Option<String> {
    n.and_then(|n| n.attribute(name))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn text(n: Option<Node>) -> Option<String> {
    n.and_then(|n| n.text())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// A `<memory unit='…'>N</memory>` in KiB (libvirt writes KiB, but accepts other
/// units in what it is given).
fn kib(n: Option<Node>) -> Option<u64> {
    let value: u64 = text(n)?.parse().ok()?;
    let unit = n.and_then(|n| n.attribute("unit")).unwrap_or("KiB");
    let bytes_per = match unit {
        "b" | "bytes" => 1,
        "KB" => 1_000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    Some(value.saturating_mul(bytes_per) / 1024)
}

fn boot_order(n: Node) -> Option<u32> {
    attr(child(n, "boot"), "order")?.parse().ok()
}

/// Parses a domain's XML (`virDomainGetXMLDesc`).
pub fn parse_domain(xml: &str) -> Result<DomainFacts, roxmltree::Error> {
    let doc = roxmltree::Document::parse(xml)?;
    let dom = doc.root_element();
    let vcpu = child(dom, "vcpu");
    let vcpus_max = text(vcpu).and_then(|t| t.parse().ok()).unwrap_or(0);
    let memory = kib(child(dom, "memory")).unwrap_or(0);
    let os = child(dom, "os");
    let cpu = child(dom, "cpu").map(|c| Cpu {
        mode: attr(Some(c), "mode").or_else(|| child(c, "model").map(|_| "custom".into())),
        model: text(child(c, "model")),
    });
    let devices = child(dom, "devices");
    let disks: Vec<Disk> = devices
        .into_iter()
        .flat_map(|d| children(d, "disk"))
        .map(disk)
        .collect();
    let nics: Vec<Nic> = devices
        .into_iter()
        .flat_map(|d| children(d, "interface"))
        .map(nic)
        .collect();
    let mut boot: Vec<String> = os
        .into_iter()
        .flat_map(|o| children(o, "boot"))
        .filter_map(|b| attr(Some(b), "dev"))
        .collect();
    let mut by_device: Vec<(u32, String)> = disks
        .iter()
        .filter_map(|d| Some((d.boot_order?, format!("{} {}", d.device, d.target))))
        .chain(nics.iter().filter_map(|n| {
            let name = n.mac.as_deref().unwrap_or("without a MAC address");
            Some((n.boot_order?, format!("nic {name}")))
        }))
        .collect();
    by_device.sort();
    boot.extend(by_device.into_iter().map(|(_, d)| d));
    Ok(DomainFacts {
        vcpus_max,
        current_memory_kib: kib(child(dom, "currentMemory")).unwrap_or(memory),
        cpu: cpu.unwrap_or_default(),
        machine: attr(os.and_then(|o| child(o, "type")), "machine"),
        arch: attr(os.and_then(|o| child(o, "type")), "arch"),
        firmware: firmware(os),
        boot_order: boot,
        graphics: devices
            .into_iter()
            .flat_map(|d| children(d, "graphics"))
            .map(graphics)
            .collect(),
        serials: devices
            .into_iter()
            .flat_map(|d| {
                d.children()
                    .filter(|c| c.has_tag_name("serial") || c.has_tag_name("console"))
            })
            .map(serial)
            .collect(),
        disks,
        nics,
    })
}

/// UEFI when `<os firmware='efi'>` or a pflash `<loader>` (or one named after
/// edk2/OVMF/AAVMF); BIOS otherwise. Secure Boot when the loader is `secure='yes'`
/// or the firmware's `secure-boot` feature is enabled.
fn firmware(os: Option<Node>) -> Firmware {
    let loader = os.and_then(|o| child(o, "loader"));
    let loader_path = text(loader);
    let efi_loader = loader.is_some_and(|l| {
        l.attribute("type") == Some("pflash")
            || loader_path.as_deref().is_some_and(|p| {
                let p = p.to_ascii_lowercase();
                ["ovmf", "edk2", "aavmf"].iter().any(|f| p.contains(f))
            })
    });
    let uefi = attr(os, "firmware").as_deref() == Some("efi") || efi_loader;
    let feature_on = os
        .and_then(|o| child(o, "firmware"))
        .into_iter()
        .flat_map(|f| children(f, "feature"))
        .any(|f| {
            f.attribute("name") == Some("secure-boot") && f.attribute("enabled") == Some("yes")
        });
    Firmware {
        kind: if uefi { "uefi" } else { "bios" },
        secure_boot: attr(loader, "secure").as_deref() == Some("yes") || feature_on,
        loader: loader_path,
    }
}

fn disk(d: Node) -> Disk {
    let source = child(d, "source");
    let kind = attr(Some(d), "type").unwrap_or_else(|| "file".into());
    let path = match kind.as_str() {
        "block" => attr(source, "dev"),
        "dir" => attr(source, "dir"),
        "network" => attr(source, "name").map(|name| {
            let protocol = attr(source, "protocol").unwrap_or_default();
            if protocol.is_empty() {
                name
            } else {
                format!("{protocol}:{name}")
            }
        }),
        "volume" => None,
        _ => attr(source, "file"),
    };
    let target = child(d, "target");
    Disk {
        target: attr(target, "dev").unwrap_or_default(),
        bus: attr(target, "bus"),
        device: attr(Some(d), "device").unwrap_or_else(|| "disk".into()),
        format: attr(child(d, "driver"), "type"),
        source: path,
        pool: attr(source, "pool"),
        volume: attr(source, "volume"),
        read_only: child(d, "readonly").is_some(),
        boot_order: boot_order(d),
        kind,
        ..Disk::default()
    }
}

fn nic(n: Node) -> Nic {
    let kind = attr(Some(n), "type").unwrap_or_default();
    let source = child(n, "source");
    let source_name = match kind.as_str() {
        "network" => attr(source, "network"),
        "bridge" => attr(source, "bridge"),
        "direct" => attr(source, "dev").map(|dev| match attr(source, "mode") {
            Some(mode) => format!("{dev} ({mode})"),
            None => dev,
        }),
        _ => attr(source, "network")
            .or_else(|| attr(source, "bridge"))
            .or_else(|| attr(source, "dev")),
    };
    Nic {
        mac: attr(child(n, "mac"), "address"),
        source: source_name,
        model: attr(child(n, "model"), "type"),
        link: attr(child(n, "link"), "state").unwrap_or_else(|| "up".into()),
        target: attr(child(n, "target"), "dev"),
        boot_order: boot_order(n),
        kind,
        rx_bytes: None,
        tx_bytes: None,
    }
}

fn graphics(g: Node) -> Graphics {
    let listens: Vec<Node> = children(g, "listen").collect();
    let socket = attr(Some(g), "socket").or_else(|| {
        listens
            .iter()
            .find(|l| l.attribute("type") == Some("socket"))
            .and_then(|l| attr(Some(*l), "socket"))
    });
    let listen = attr(Some(g), "listen").or_else(|| {
        listens
            .iter()
            .find(|l| l.attribute("type") == Some("address"))
            .and_then(|l| attr(Some(*l), "address"))
    });
    Graphics {
        kind: attr(Some(g), "type").unwrap_or_default(),
        // -1 (not started yet) and 0 are no port.
        port: attr(Some(g), "port")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p > 0),
        autoport: attr(Some(g), "autoport").as_deref() == Some("yes"),
        listen: listen.filter(|_| socket.is_none()),
        socket,
    }
}

fn serial(s: Node) -> Serial {
    let target = child(s, "target");
    Serial {
        device: s.tag_name().name().to_string(),
        kind: attr(Some(s), "type").unwrap_or_default(),
        target: attr(target, "type"),
        port: attr(target, "port").and_then(|p| p.parse().ok()),
        path: attr(child(s, "source"), "path").or_else(|| attr(Some(s), "tty")),
    }
}

/// Parses a snapshot's XML (`virDomainSnapshotGetXMLDesc`).
pub fn parse_snapshot(xml: &str) -> Result<Snapshot, roxmltree::Error> {
    let doc = roxmltree::Document::parse(xml)?;
    let s = doc.root_element();
    Ok(Snapshot {
        name: text(child(s, "name")).unwrap_or_default(),
        description: text(child(s, "description")),
        state: text(child(s, "state")),
        creation_time: text(child(s, "creationTime")).and_then(|t| t.parse().ok()),
        parent: text(child(s, "parent").and_then(|p| child(p, "name"))),
    })
}

/// The sizes of one disk, as libvirt's block info gives them, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSize {
    pub capacity: u64,
    pub allocation: u64,
}

/// Fills in each disk's sizes from `read` (called with the disk's target); a disk
/// whose sizes cannot be read keeps them unknown and says why, and a drive without
/// a medium is not asked.
pub fn fill_sizes(disks: &mut [Disk], mut read: impl FnMut(&str) -> Result<DiskSize, String>) {
    for d in disks {
        if d.source.is_none() && d.volume.is_none() {
            continue;
        }
        match read(&d.target) {
            Ok(s) => {
                d.capacity = Some(s.capacity);
                d.allocation = Some(s.allocation);
            }
            Err(e) => {
                let what = d
                    .source
                    .clone()
                    .or_else(|| Some(format!("{}/{}", d.pool.as_deref()?, d.volume.as_deref()?)))
                    .unwrap_or_default();
                d.size_error = Some(format!(
                    "the size of {} ({what}) is unknown: {e}; check that the image exists and libvirt may read it",
                    d.target
                ));
            }
        }
    }
}

/// The snapshots from their XML, oldest first; one whose XML does not parse is
/// listed by name alone.
pub fn snapshots_from(xml: Vec<(String, Result<String, String>)>) -> Vec<Snapshot> {
    let mut out: Vec<Snapshot> = xml
        .into_iter()
        .map(|(name, xml)| {
            xml.ok()
                .and_then(|x| parse_snapshot(&x).ok())
                .filter(|s| !s.name.is_empty())
                .unwrap_or(Snapshot {
                    name,
                    ..Snapshot::default()
                })
        })
        .collect();
    out.sort_by(|a, b| (a.creation_time, &a.name).cmp(&(b.creation_time, &b.name)));
    out
}

/// Reads one VM in depth: the list's facts, its XML's, its disks' sizes and its
/// snapshots. Only the VM's absence or libvirt's fails it; a disk or the snapshots
/// that cannot be read are shown with the reason.
pub fn read(lv: &Libvirt, name: &str) -> Result<VmDetail, VirtError> {
    let (vm, (facts, snapshots)) = lv.inspect(name, |conn, dom, xml| {
        let mut facts = parse_domain(xml)
            .map_err(|e| VirtError::Failed(format!("reading the domain XML of {name}: {e}")))?;
        fill_sizes(&mut facts.disks, |target| {
            conn.block_info(dom, target)
                .map(|b| DiskSize {
                    capacity: b.capacity,
                    allocation: b.allocation,
                })
                .map_err(|e| e.to_string())
        });
        if dom.id > 0 {
            fill_counters(conn, dom, &mut facts.disks, &mut facts.nics);
        }
        let snapshots = conn
            .list_snapshots(dom)
            .map(|list| {
                snapshots_from(
                    list.iter()
                        .map(|s| {
                            let xml = conn.snapshot_xml(s, 0).map_err(|e| e.to_string());
                            (s.name.clone(), xml)
                        })
                        .collect(),
                )
            })
            .map_err(|e| format!("the snapshots could not be listed: {e}"));
        Ok((facts, snapshots))
    })?;
    let (snapshots, snapshots_error) = match snapshots {
        Ok(s) => (s, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Ok(VmDetail {
        vm,
        facts,
        snapshots,
        snapshots_error,
    })
}

/// The running guest's I/O counters of its disks (not its CD-ROMs) and NICs; a
/// device libvirt has no counters for (one without a host device, a driver that
/// does not count) keeps none. Negative numbers are libvirt's "not counted".
fn fill_counters(
    conn: &hvnode_libvirt::Client,
    dom: &hvnode_libvirt::Domain,
    disks: &mut [Disk],
    nics: &mut [Nic],
) {
    let counted = |v: i64| u64::try_from(v).ok();
    for d in disks.iter_mut().filter(|d| d.device == "disk") {
        if let Ok(s) = conn.block_stats(dom, &d.target) {
            d.read_bytes = counted(s.rd_bytes);
            d.write_bytes = counted(s.wr_bytes);
        }
    }
    for n in nics.iter_mut() {
        let Some(dev) = n.target.as_deref().or(n.mac.as_deref()) else {
            continue;
        };
        if let Ok(s) = conn.interface_stats(dom, dev) {
            n.rx_bytes = counted(s.rx_bytes);
            n.tx_bytes = counted(s.tx_bytes);
        }
    }
}

/// A size for the page.
fn size(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "unknown".into(), |b| human_bytes(b as f64))
}

/// A Unix time for the page, in UTC.
fn when(t: Option<u64>) -> String {
    let Some(t) = t else {
        return "unknown".into();
    };
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[derive(Template)]
#[template(path = "vm.html")]
struct VmPage {
    page: PageCtx,
    d: VmDetail,
}

impl VmPage {
    fn memory(&self) -> String {
        format!(
            "{} (at most {})",
            human_bytes(self.d.vm.memory_kib as f64 * 1024.0),
            human_bytes(self.d.vm.max_memory_kib as f64 * 1024.0)
        )
    }

    fn size(&self, bytes: &Option<u64>) -> String {
        size(*bytes)
    }

    fn when(&self, t: &Option<u64>) -> String {
        when(*t)
    }
}

/// `GET /vms/{name}`: the VM page, or a 404 page naming the VM that is not there.
pub async fn page(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(name): Path<String>,
) -> Response {
    let page = PageCtx::new(&authed, "/vms");
    let lv = state.libvirt.clone();
    let result = tokio::task::spawn_blocking(move || read(&lv, &name))
        .await
        .unwrap_or_else(|e| Err(VirtError::Failed(format!("reading the VM failed: {e}"))));
    match result {
        Ok(d) => {
            // The serial console's xterm.js sets inline styles.
            let mut resp = render(&VmPage { page, d }).into_response();
            crate::guard::allow_inline_styles(&mut resp);
            resp
        }
        Err(e) => error_page(page, &ApiError::from(e), "/vms"),
    }
}

#[cfg(test)]
mod tests;
