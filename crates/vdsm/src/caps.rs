//! `Host.getCapabilities`: what the host is and can run, as the engine reads it
//! (`VdsBrokerObjectsBuilder.updateVDSDynamicData`, `VirtMonitoringStrategy`,
//! `HandleVdsVersionCommand`): the CPU and its flags, memory and NUMA layout, the
//! machine types qemu emulates (from libvirt's capabilities), random sources,
//! packages, the operating system, SELinux, the network interfaces, and the protocol
//! and cluster levels the service speaks.
//!
//! Each fact comes from the host; [`capabilities`] only shapes them, so tests give it
//! a scratch tree and a libvirt capabilities document.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::stats::{Host, parse_cpu_list};

/// The vdsm API level served (`software_version`): the engine accepts 4.20 to 4.50.
pub const SOFTWARE_VERSION: &str = "4.50";
/// Engine versions the protocol level works with (`supportedENGINEs`).
pub const SUPPORTED_ENGINES: [&str; 4] = ["4.2", "4.3", "4.4", "4.5"];

/// A Debian package's version split as vdsm reports it: the upstream version without
/// epoch, and the Debian revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub version: String,
    pub release: String,
}

impl Package {
    /// `1:7.2+dfsg-7+deb12u6` → `7.2+dfsg` and `7+deb12u6`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let no_epoch = text.split_once(':').map_or(text, |(_, v)| v);
        let (version, release) = no_epoch.rsplit_once('-').unwrap_or((no_epoch, ""));
        Some(Self {
            version: version.to_string(),
            release: release.to_string(),
        })
    }

    fn json(&self) -> Value {
        json!({"version": self.version, "release": self.release})
    }
}

/// Cluster levels by the libvirt version (vdsm's `dsaversion`: 4.7 needs libvirt 8.0;
/// 4.8 libvirt 10.10 and qemu 9.1).
pub fn cluster_levels(libvirt: Option<&Package>, qemu: Option<&Package>) -> Vec<&'static str> {
    let numbers = |p: Option<&Package>| -> (u32, u32) {
        let v = p.map(|p| p.version.as_str()).unwrap_or("0");
        let mut it = v
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty());
        let major = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let minor = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (major, minor)
    };
    let mut levels = vec!["4.2", "4.3", "4.4", "4.5", "4.6"];
    let lv = numbers(libvirt);
    if lv >= (8, 0) {
        levels.push("4.7");
    }
    if lv >= (10, 10) && numbers(qemu) >= (9, 1) {
        levels.push("4.8");
    }
    levels
}

/// The machine types of libvirt's capabilities for x86_64 hvm guests (their names and
/// their aliases, `q35` for `pc-q35-7.2`), and the host CPU's model.
pub fn parse_libvirt_caps(xml: &str) -> (Vec<String>, Option<String>) {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return (Vec::new(), None);
    };
    let mut machines = BTreeSet::new();
    for guest in doc.descendants().filter(|n| n.has_tag_name("guest")) {
        let hvm = guest
            .children()
            .any(|c| c.has_tag_name("os_type") && c.text() == Some("hvm"));
        for arch in guest
            .children()
            .filter(|c| c.has_tag_name("arch") && c.attribute("name") == Some("x86_64"))
        {
            if !hvm {
                continue;
            }
            for m in arch.descendants().filter(|n| n.has_tag_name("machine")) {
                machines.extend(m.text().map(str::to_string));
                machines.extend(m.attribute("canonical").map(str::to_string));
            }
        }
    }
    let model = doc
        .descendants()
        .find(|n| n.has_tag_name("host"))
        .and_then(|h| h.descendants().find(|n| n.has_tag_name("model")))
        .and_then(|m| m.text())
        .map(str::to_string);
    (machines.into_iter().collect(), model)
}

/// The host's facts that do not come from files under its root.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// libvirt's capabilities document.
    pub libvirt_caps: String,
    /// Installed packages by the name vdsm reports them under.
    pub packages: BTreeMap<String, Package>,
    /// The interfaces, as `ip -j addr` lists them.
    pub interfaces: Vec<hostinfo::Interface>,
    /// The CPU models libvirt finds usable for guests here (its domain
    /// capabilities, read by the helper); empty when unknown.
    pub cpu_models: Vec<String>,
}

/// One CPU's place: its socket, core and NUMA node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuPlace {
    cpu: u32,
    socket: u32,
    core: u32,
    node: u32,
}

fn cpu_places(host: &Host, online: &[u32], nodes: &BTreeMap<u32, Vec<u32>>) -> Vec<CpuPlace> {
    let node_of = |cpu: u32| {
        nodes
            .iter()
            .find(|(_, cpus)| cpus.contains(&cpu))
            .map_or(0, |(n, _)| *n)
    };
    online
        .iter()
        .map(|&cpu| {
            let topo = |f: &str| -> u32 {
                host.read(&format!("/sys/devices/system/cpu/cpu{cpu}/topology/{f}"))
                    .trim()
                    .parse()
                    .unwrap_or(0)
            };
            CpuPlace {
                cpu,
                socket: topo("physical_package_id"),
                core: topo("core_id"),
                node: node_of(cpu),
            }
        })
        .collect()
}

/// `SELinux` as vdsm reports it: 1 enforcing, 0 permissive, -1 disabled.
fn selinux_mode(host: &Host) -> &'static str {
    match host.read("/sys/fs/selinux/enforce").trim() {
        "1" => "1",
        "0" => "0",
        _ => "-1",
    }
}

/// The interfaces as the engine's network parser reads them.
fn network(host: &Host, interfaces: &[hostinfo::Interface]) -> Map<String, Value> {
    let mut nics = Map::new();
    let mut bridges = Map::new();
    let mut bondings = Map::new();
    let mut vlans = Map::new();
    let mut networks = Map::new();
    let mut by_name = Map::new();
    for i in interfaces.iter().filter(|i| i.link_type != "loopback") {
        let sys = |f: &str| host.read(&format!("/sys/class/net/{}/{f}", i.name));
        let (v4, v6): (Vec<&String>, Vec<&String>) =
            i.addresses.iter().partition(|a| !a.contains(':'));
        let (addr, netmask) = v4
            .first()
            .and_then(|a| a.split_once('/'))
            .map(|(ip, len)| (ip.to_string(), netmask_of(len.parse().unwrap_or(0))))
            .unwrap_or_default();
        let speed: i64 = sys("speed").trim().parse().unwrap_or(0);
        let mut facts = json!({
            "hwaddr": i.mac,
            "mtu": i.mtu.to_string(),
            "addr": addr,
            "netmask": netmask,
            "ipv4addrs": v4,
            "ipv6addrs": v6,
            "gateway": "",
            "ipv6gateway": "::",
            "dhcpv4": false,
            "dhcpv6": false,
            "speed": speed.max(0),
        });
        by_name.insert(i.name.clone(), facts.clone());
        let dir = host.root.join(format!("sys/class/net/{}", i.name));
        if dir.join("bridge").is_dir() {
            let ports: Vec<String> = std::fs::read_dir(dir.join("brif"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            facts["ports"] = json!(ports);
            facts["stp"] = json!(sys("bridge/stp_state").trim() != "0");
            by_name.insert(i.name.clone(), facts.clone());
            // A management bridge made at install (a kickstart's network line),
            // before the engine set any network up.
            if i.name == "ovirtmgmt" {
                let mut net = facts.clone();
                net["bridged"] = json!(true);
                net["iface"] = json!(i.name);
                networks.insert(i.name.clone(), net);
            }
            bridges.insert(i.name.clone(), facts);
        } else if dir.join("bonding").is_dir() {
            let slaves: Vec<String> = sys("bonding/slaves")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            facts["slaves"] = json!(slaves);
            bondings.insert(i.name.clone(), facts);
        } else if let Some((base, id)) = i
            .name
            .rsplit_once('.')
            .filter(|_| !dir.join("device").exists())
        {
            facts["iface"] = json!(base);
            facts["vlanid"] = json!(id.parse::<u32>().unwrap_or(0));
            vlans.insert(i.name.clone(), facts);
        } else if dir.join("device").exists() {
            nics.insert(i.name.clone(), facts);
        }
    }
    let running = netconf::store::Store::new(&host.root)
        .running()
        .unwrap_or_else(|e| {
            tracing::warn!("the engine's networks: {e}");
            netconf::Networks::default()
        });
    networks.extend(crate::network::report(
        &running,
        &by_name,
        &host.read("/proc/net/route"),
    ));
    let mut out = Map::new();
    out.insert("nics".into(), Value::Object(nics));
    out.insert("bridges".into(), Value::Object(bridges));
    out.insert("bondings".into(), Value::Object(bondings));
    out.insert("vlans".into(), Value::Object(vlans));
    out.insert("networks".into(), Value::Object(networks));
    out
}

fn netmask_of(len: u8) -> String {
    let bits: u32 = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    std::net::Ipv4Addr::from(bits).to_string()
}

/// What `Host.getCapabilities` answers for the host under `host.root`.
pub fn capabilities(host: &Host, gathered: &Gathered) -> Value {
    let cpuinfo = host.read("/proc/cpuinfo");
    let field = |key: &str| -> Option<String> {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let (machines, host_model) = parse_libvirt_caps(&gathered.libvirt_caps);
    let mut flags: Vec<String> = field("flags")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // vdsm's cpuFlags name every usable model (the engine finds the cluster's
    // CPU type among them) and the host's own.
    for m in gathered.cpu_models.iter().chain(host_model.iter()) {
        let flag = format!("model_{m}");
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }

    let online = {
        let listed = parse_cpu_list(&host.read("/sys/devices/system/cpu/online"));
        if listed.is_empty() {
            let count = cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count();
            (0..count as u32).collect()
        } else {
            listed
        }
    };
    let nodes = host.numa_nodes();
    let places = cpu_places(host, &online, &nodes);
    let sockets: BTreeSet<u32> = places.iter().map(|p| p.socket).collect();
    let cores: BTreeSet<(u32, u32)> = places.iter().map(|p| (p.socket, p.core)).collect();

    let mem = hostinfo::system::parse_meminfo(&host.read("/proc/meminfo"));
    let mut numa = Map::new();
    let mut distances = Map::new();
    for (n, cpus) in &nodes {
        let total_kib = host.node_meminfo_kib(*n, "MemTotal");
        numa.insert(
            n.to_string(),
            json!({"cpus": cpus, "totalMemory": (total_kib / 1024).to_string()}),
        );
        let d: Vec<u32> = host
            .read(&format!("/sys/devices/system/node/node{n}/distance"))
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        distances.insert(n.to_string(), json!(d));
    }

    let os = hostinfo::system::parse_os_release(&host.read("/etc/os-release"));
    let os_field = |k: &str| {
        os.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let kernel = host.read("/proc/sys/kernel/osrelease").trim().to_string();
    let mut packages2 = Map::new();
    for (name, p) in &gathered.packages {
        packages2.insert(name.clone(), p.json());
    }
    let (kernel_version, kernel_release) = kernel.split_once('-').unwrap_or((&kernel, ""));
    packages2.insert(
        "kernel".into(),
        json!({"version": kernel_version, "release": kernel_release}),
    );
    packages2.insert(
        "vdsm".into(),
        json!({"version": format!("{SOFTWARE_VERSION}.0"), "release": "hvnode"}),
    );
    let initiator = host
        .read("/etc/iscsi/initiatorname.iscsi")
        .lines()
        .find_map(|l| l.strip_prefix("InitiatorName="))
        .map(str::to_string)
        .unwrap_or_default();
    let nameservers: Vec<String> = host
        .read("/etc/resolv.conf")
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .map(|s| s.trim().to_string())
        .collect();
    let mut rng = Vec::new();
    if host.root.join("dev/urandom").exists() {
        rng.push("urandom");
    }
    if host.root.join("dev/hwrng").exists() {
        rng.push("hwrng");
    }
    let iommu = std::fs::read_dir(host.root.join("sys/kernel/iommu_groups"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    let numa_balancing = match host.read("/proc/sys/kernel/numa_balancing").trim() {
        "0" => 0,
        "1" => 1,
        _ => 2,
    };

    let parts = [
        json!({
        "kvmEnabled": if host.root.join("dev/kvm").exists() { "true" } else { "false" },
        "cpuModel": field("model name").unwrap_or_default(),
        "cpuSpeed": field("cpu MHz").unwrap_or_default(),
        "cpuFlags": flags.join(","),
        "cpuCores": cores.len().to_string(),
        "cpuSockets": sockets.len().to_string(),
        "cpuThreads": online.len().to_string(),
        "onlineCpus": online.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        "cpuTopology": places.iter().map(|p| json!({
            "cpu_id": p.cpu, "core_id": p.core, "socket_id": p.socket, "numa_id": p.node,
        })).collect::<Vec<_>>(),
        "numaNodes": numa,
        "numaNodeDistance": distances,
        "autoNumaBalancing": numa_balancing,
        }),
        json!({
        "memSize": (mem.total / (1024 * 1024)).to_string(),
        "reservedMem": "321",
        "guestOverhead": "65",
        "emulatedMachines": machines,
        "rngSources": rng,
        "vmTypes": ["kvm"],
        "clusterLevels": cluster_levels(gathered.packages.get("libvirt"), gathered.packages.get("qemu-kvm")),
        "supportedENGINEs": SUPPORTED_ENGINES,
        "software_version": SOFTWARE_VERSION,
        "software_revision": "0",
        "version_name": "Snow Man",
        }),
        json!({
        "packages2": packages2,
        "operatingSystem": {
            "name": os_field("NAME"),
            "version": os_field("VERSION_ID"),
            "release": kernel,
            "pretty_name": os_field("PRETTY_NAME"),
        },
        "selinux": {"mode": selinux_mode(host)},
        "uuid": host.read("/etc/vdsm/vdsm.id").trim(),
        "ISCSIInitiatorName": initiator,
        "HBAInventory": {"iSCSI": if initiator.is_empty() { json!([]) } else { json!([{"InitiatorName": initiator}]) }, "FC": []},
        "hostdevPassthrough": if iommu { "true" } else { "false" },
        "fipsEnabled": host.read("/proc/sys/crypto/fips_enabled").trim() == "1",
        "kdumpStatus": 0,
        "nameservers": nameservers,
        "netConfigDirty": "False",
        "supportsIPv6": true,
        "lastClientIface": "",
        "vdsmToCpusAffinity": online,
        "vncEncrypted": false,
        "liveSnapshot": "true",
        "liveMerge": "true",
        "additionalFeatures": [],
        "hooks": {},
        "kernelArgs": host.read("/proc/cmdline").trim(),

        }),
        Value::Object(network(host, &gathered.interfaces)),
    ];
    let mut caps = Map::new();
    for part in parts {
        if let Value::Object(p) = part {
            caps.extend(p);
        }
    }
    Value::Object(caps)
}

/// Installed versions of the packages vdsm reports, by the names it uses.
pub fn packages(root: &Path) -> BTreeMap<String, Package> {
    use command::CommandExt;
    let mut out = BTreeMap::new();
    for (name, deb) in [
        ("qemu-kvm", "qemu-system-x86"),
        ("qemu-img", "qemu-utils"),
        ("libvirt", "libvirt-daemon"),
        ("seabios", "seabios"),
        ("edk2-ovmf", "ovmf"),
    ] {
        let mut cmd = std::process::Command::new("dpkg-query");
        cmd.arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Version}", deb]);
        if let Some(p) = cmd.run_capture().ok().and_then(|v| Package::parse(&v)) {
            out.insert(name.to_string(), p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::put;

    const LIBVIRT_CAPS: &str = "<capabilities>
  <host><cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model></cpu></host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <machine maxCpus='255'>pc-i440fx-7.2</machine>
      <machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>
      <machine maxCpus='288'>pc-q35-7.2</machine>
      <machine canonical='pc-q35-7.2' maxCpus='288'>q35</machine>
      <machine maxCpus='255'>pc-i440fx-2.12</machine>
      <domain type='qemu'/>
    </arch>
  </guest>
  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'><machine>isapc</machine></arch>
  </guest>
</capabilities>";

    #[test]
    fn machine_types_and_the_host_model_come_from_libvirt() {
        let (machines, model) = parse_libvirt_caps(LIBVIRT_CAPS);
        assert_eq!(
            machines,
            ["pc", "pc-i440fx-2.12", "pc-i440fx-7.2", "pc-q35-7.2", "q35"]
        );
        assert_eq!(model.as_deref(), Some("Skylake-Client-IBRS"));
        assert_eq!(parse_libvirt_caps("not xml"), (vec![], None));
    }

    #[test]
    fn packages_and_cluster_levels() {
        let p = Package::parse("1:7.2+dfsg-7+deb12u6\n").unwrap();
        assert_eq!(
            (p.version.as_str(), p.release.as_str()),
            ("7.2+dfsg", "7+deb12u6")
        );
        let libvirt = Package::parse("9.0.0-4+deb12u2").unwrap();
        assert_eq!(
            cluster_levels(Some(&libvirt), Some(&p)),
            ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7"]
        );
        let old = Package::parse("7.0.0-3").unwrap();
        assert!(!cluster_levels(Some(&old), None).contains(&"4.7"));
        let new = Package::parse("10.10.0-1").unwrap();
        let qemu = Package::parse("1:9.1.0-1").unwrap();
        assert!(cluster_levels(Some(&new), Some(&qemu)).contains(&"4.8"));
        assert_eq!(netmask_of(24), "255.255.255.0");
        assert_eq!(netmask_of(0), "0.0.0.0");
    }

    #[test]
    fn the_facts_the_engine_needs_to_take_the_host_up() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        put(
            root,
            "/proc/cpuinfo",
            "processor\t: 0\nmodel name\t: Intel Xeon\ncpu MHz\t\t: 2600.000\nflags\t\t: fpu vmx nx sse4_2\n\nprocessor\t: 1\nmodel name\t: Intel Xeon\n",
        );
        put(root, "/sys/devices/system/cpu/online", "0-1\n");
        for cpu in 0..2 {
            put(
                root,
                &format!("/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id"),
                "0\n",
            );
            put(
                root,
                &format!("/sys/devices/system/cpu/cpu{cpu}/topology/core_id"),
                &format!("{cpu}\n"),
            );
        }
        put(root, "/sys/devices/system/node/node0/cpulist", "0-1\n");
        put(
            root,
            "/sys/devices/system/node/node0/meminfo",
            "Node 0 MemTotal: 8388608 kB\n",
        );
        put(root, "/sys/devices/system/node/node0/distance", "10\n");
        put(root, "/proc/meminfo", "MemTotal: 8388608 kB\n");
        put(
            root,
            "/etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
        );
        put(root, "/proc/sys/kernel/osrelease", "6.1.0-57-amd64\n");
        put(root, "/sys/fs/selinux/enforce", "1");
        put(
            root,
            "/etc/vdsm/vdsm.id",
            "4c4c4544-0042-3510-8052-b4c04f4a4d32\n",
        );
        put(root, "/dev/urandom", "");
        put(root, "/dev/kvm", "");
        put(
            root,
            "/etc/iscsi/initiatorname.iscsi",
            "InitiatorName=iqn.2004-10.org.debian:node1\n",
        );
        put(root, "/sys/class/net/eth0/device/vendor", "0x1af4\n");
        put(root, "/sys/class/net/eth0/speed", "1000\n");
        put(root, "/sys/class/net/ovirtmgmt/bridge/stp_state", "0\n");
        put(root, "/sys/class/net/ovirtmgmt/brif/eth0", "");
        let mut packages = BTreeMap::new();
        packages.insert("libvirt".to_string(), Package::parse("9.0.0-4").unwrap());
        let interface = |name: &str, addresses: &[&str]| hostinfo::Interface {
            name: name.into(),
            mac: "52:54:00:12:34:56".into(),
            mtu: 1500,
            state: "UP".into(),
            link_type: "ether".into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            counters: None,
        };
        let gathered = Gathered {
            libvirt_caps: LIBVIRT_CAPS.into(),
            packages,
            interfaces: vec![
                interface("eth0", &[]),
                interface("ovirtmgmt", &["192.0.2.10/24", "fe80::1/64"]),
            ],
            cpu_models: vec!["Skylake-Client-IBRS".into(), "Nehalem".into()],
        };
        let c = capabilities(
            &Host {
                root: root.to_path_buf(),
            },
            &gathered,
        );
        assert_eq!(c["kvmEnabled"], "true");
        // The usable models, then the host's own, each once.
        assert_eq!(
            c["cpuFlags"],
            "fpu,vmx,nx,sse4_2,model_Skylake-Client-IBRS,model_Nehalem"
        );
        assert_eq!(
            (
                c["cpuSockets"].clone(),
                c["cpuCores"].clone(),
                c["cpuThreads"].clone()
            ),
            (json!("1"), json!("2"), json!("2"))
        );
        assert_eq!(
            c["cpuTopology"][1],
            json!({"cpu_id": 1, "core_id": 1, "socket_id": 0, "numa_id": 0})
        );
        assert_eq!(
            c["numaNodes"]["0"],
            json!({"cpus": [0, 1], "totalMemory": "8192"})
        );
        assert_eq!(c["memSize"], "8192");
        assert!(
            c["emulatedMachines"]
                .as_array()
                .unwrap()
                .contains(&json!("pc-i440fx-2.12"))
        );
        assert_eq!(c["rngSources"], json!(["urandom"]));
        assert_eq!(
            c["clusterLevels"].as_array().unwrap().last(),
            Some(&json!("4.7"))
        );
        assert_eq!(c["supportedENGINEs"], json!(["4.2", "4.3", "4.4", "4.5"]));
        assert_eq!(c["selinux"]["mode"], "1");
        assert_eq!(c["uuid"], "4c4c4544-0042-3510-8052-b4c04f4a4d32");
        assert_eq!(
            c["HBAInventory"]["iSCSI"][0]["InitiatorName"],
            "iqn.2004-10.org.debian:node1"
        );
        assert_eq!(
            c["packages2"]["libvirt"],
            json!({"version": "9.0.0", "release": "4"})
        );
        assert_eq!(
            c["packages2"]["kernel"],
            json!({"version": "6.1.0", "release": "57-amd64"})
        );
        assert_eq!(
            c["operatingSystem"]["pretty_name"],
            "Debian GNU/Linux 12 (bookworm)"
        );
        // The management network: a bridge named ovirtmgmt carrying the address.
        assert_eq!(c["nics"]["eth0"]["speed"], 1000);
        assert_eq!(c["bridges"]["ovirtmgmt"]["ports"], json!(["eth0"]));
        let mgmt = &c["networks"]["ovirtmgmt"];
        assert_eq!(mgmt["bridged"], true);
        assert_eq!(mgmt["addr"], "192.0.2.10");
        assert_eq!(mgmt["netmask"], "255.255.255.0");
        assert_eq!(mgmt["ipv6addrs"], json!(["fe80::1/64"]));
    }
}
