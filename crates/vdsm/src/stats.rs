//! `Host.getStats`: the host's usage as vdsm reports it, from `/proc` and `/sys`.
//!
//! vdsm samples the host every 15 s and reports the rates between its last two
//! samples; the engine polls about as often and shows them. [`Sampler`] does the
//! same on a thread of its own; [`host_stats`] shapes two samples and the moment's
//! memory, load and interfaces as the engine's parser reads them
//! (`VdsBrokerObjectsBuilder.updateVDSStatisticsData`): percentages and counters as
//! strings with two decimals, memory in MiB, `dateTime` in vdsm's format. What the
//! node does not run (KSM tuning by MOM, hosted-engine HA, storage domains, v2v,
//! migrations) is reported as not running, which is true.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// How often the sampler reads the counters (vdsm's `host_sample_stats_interval`).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(15);

/// CPU time in clock ticks, split as vdsm splits it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuSplit {
    /// user and nice.
    pub user: u64,
    /// system, irq and softirq.
    pub sys: u64,
    /// idle and iowait.
    pub idle: u64,
    /// All of the above, and steal.
    pub total: u64,
}

/// The aggregate `cpu` line of `/proc/stat` and each `cpuN` line.
pub fn parse_proc_stat(text: &str) -> (CpuSplit, BTreeMap<u32, CpuSplit>) {
    let mut all = CpuSplit::default();
    let mut each = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next().and_then(|w| w.strip_prefix("cpu")) else {
            continue;
        };
        let v: Vec<u64> = words.map(|w| w.parse().unwrap_or(0)).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        let split = CpuSplit {
            user: at(0) + at(1),
            sys: at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            total: (0..8).map(at).sum(),
        };
        if name.is_empty() {
            all = split;
        } else if let Ok(n) = name.parse() {
            each.insert(n, split);
        }
    }
    (all, each)
}

/// The counters at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    /// Seconds since the epoch.
    pub wall: u64,
    pub cpu: CpuSplit,
    pub cpus: BTreeMap<u32, CpuSplit>,
    pub net: Vec<hostinfo::counters::NetCounters>,
    /// This process's own CPU time (user, system), in clock ticks.
    pub own: (u64, u64),
}

/// Where the host's files are: `/` on a node, a scratch tree in tests.
#[derive(Debug, Clone)]
pub struct Host {
    pub root: PathBuf,
}

impl Host {
    /// The text of `path` under the root; empty when it cannot be read.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root.join(path.trim_start_matches('/'))).unwrap_or_default()
    }

    /// Reads the counters now.
    pub fn sample(&self) -> Sample {
        let (cpu, cpus) = parse_proc_stat(&self.read("/proc/stat"));
        let own = parse_own_times(&self.read("/proc/self/stat")).unwrap_or_default();
        Sample {
            at: Instant::now(),
            wall: hostinfo::now_unix(),
            cpu,
            cpus,
            net: hostinfo::counters::parse_net_dev(&self.read("/proc/net/dev")),
            own,
        }
    }

    /// The NUMA nodes and their CPUs (`/sys/devices/system/node/nodeN/cpulist`).
    pub fn numa_nodes(&self) -> BTreeMap<u32, Vec<u32>> {
        let mut nodes = BTreeMap::new();
        let dir = self.root.join("sys/devices/system/node");
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(node) = name.strip_prefix("node").and_then(|n| n.parse().ok()) {
                let list =
                    std::fs::read_to_string(entry.path().join("cpulist")).unwrap_or_default();
                nodes.insert(node, parse_cpu_list(&list));
            }
        }
        nodes
    }

    /// A figure of NUMA node `node`'s `meminfo`, in KiB.
    pub fn node_meminfo_kib(&self, node: u32, key: &str) -> u64 {
        meminfo_kib(
            &self.read(&format!("/sys/devices/system/node/node{node}/meminfo")),
            key,
        )
    }

    /// An interface's link state and speed (Mb/s; 0 when the driver does not say).
    fn link(&self, name: &str) -> (String, u64) {
        let dir = format!("/sys/class/net/{name}");
        let state = self.read(&format!("{dir}/operstate")).trim().to_string();
        let speed = self
            .read(&format!("{dir}/speed"))
            .trim()
            .parse::<i64>()
            .unwrap_or(0)
            .max(0) as u64;
        let up = matches!(state.as_str(), "up" | "unknown");
        (if up { "up" } else { "down" }.to_string(), speed)
    }
}

/// The figure `key` of a meminfo text, in KiB: `/proc/meminfo`'s `Key: N kB` lines
/// and a NUMA node's `Node 0 Key: N kB` alike; 0 when it is not there.
pub fn meminfo_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            (name.split_whitespace().last() == Some(key)).then_some(value)
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `0-3,8,10-11` as CPU numbers.
pub fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    cpus.extend(a..=b.min(a.saturating_add(4096)));
                }
            }
            None => cpus.extend(part.parse::<u32>().ok()),
        }
    }
    cpus
}

/// `utime` and `stime` of a `/proc/PID/stat` line.
fn parse_own_times(text: &str) -> Option<(u64, u64)> {
    // The command may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?))
}

/// The last two samples, read every [`SAMPLE_EVERY`] on a thread of its own.
#[derive(Debug, Default)]
pub struct Sampler {
    samples: Mutex<(Option<Sample>, Option<Sample>)>,
}

impl Sampler {
    /// Takes a first sample now, and one every `every` from a thread.
    pub fn start(host: Host, every: Duration) -> Arc<Self> {
        let sampler = Arc::new(Self::default());
        sampler.push(host.sample());
        let weak = Arc::downgrade(&sampler);
        let spawned = std::thread::Builder::new()
            .name("hvnode-vdsm-sampler".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(s) = weak.upgrade() else { return };
                    s.push(host.sample());
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(
                "no thread to sample the host's usage: {e}; Host.getStats reports since start"
            );
        }
        sampler
    }

    /// Records a sample.
    pub fn push(&self, sample: Sample) {
        let mut s = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let newest = s.1.take();
        *s = (newest.or_else(|| s.0.take()), Some(sample));
    }

    /// The two samples to report the rates between: the last two, or the first and
    /// one taken now when there is only one.
    pub fn pair(&self, host: &Host) -> (Sample, Sample) {
        let s = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        match (&s.0, &s.1) {
            (Some(a), Some(b)) => (a.clone(), b.clone()),
            (None, Some(a)) | (Some(a), None) => (a.clone(), host.sample()),
            (None, None) => {
                let a = host.sample();
                (a.clone(), a)
            }
        }
    }
}

fn two(x: f64) -> String {
    format!("{x:.2}")
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 100.0 / whole as f64).clamp(0.0, 100.0)
    }
}

/// The usage split between two samples, as percentages of all CPU time.
fn cpu_percents(a: &CpuSplit, b: &CpuSplit) -> (f64, f64, f64) {
    let total = b.total.saturating_sub(a.total);
    (
        percent(b.user.saturating_sub(a.user), total),
        percent(b.sys.saturating_sub(a.sys), total),
        percent(b.idle.saturating_sub(a.idle), total),
    )
}

/// What `Host.getStats` answers, from samples `a` then `b`; `started` is when the
/// service started (vdsm's `elapsedTime`).
pub fn host_stats(host: &Host, a: &Sample, b: &Sample, started: Instant) -> Value {
    let (user, sys, idle) = cpu_percents(&a.cpu, &b.cpu);
    let nodes = host.numa_nodes();
    let node_of = |cpu: &u32| {
        nodes
            .iter()
            .find(|(_, cpus)| cpus.contains(cpu))
            .map_or(0, |(n, _)| *n)
    };
    let mut per_cpu = Map::new();
    for (n, split) in &b.cpus {
        let before = a.cpus.get(n).copied().unwrap_or_default();
        let (u, s, i) = cpu_percents(&before, split);
        per_cpu.insert(
            n.to_string(),
            json!({"cpuUser": two(u), "cpuSys": two(s), "cpuIdle": two(i),
                   "nodeIndex": node_of(n)}),
        );
    }
    // The service's own share of all CPU time, as vdsm reports its own.
    let total = b.cpu.total.saturating_sub(a.cpu.total);
    let own_user = percent(b.own.0.saturating_sub(a.own.0), total);
    let own_sys = percent(b.own.1.saturating_sub(a.own.1), total);

    let meminfo = host.read("/proc/meminfo");
    let mem = hostinfo::system::parse_meminfo(&meminfo);
    let mib = |bytes: u64| bytes / (1024 * 1024);
    let load = hostinfo::system::parse_loadavg(&host.read("/proc/loadavg")).unwrap_or_default();
    let uptime = hostinfo::system::parse_uptime(&host.read("/proc/uptime")).unwrap_or(0);
    let thp = host.read("/sys/kernel/mm/transparent_hugepage/enabled");
    let thp_state = thp
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or("never")
        .to_string();
    let ksm_run = host.read("/sys/kernel/mm/ksm/run").trim() == "1";
    let ksm_pages: u64 = host
        .read("/sys/kernel/mm/ksm/pages_to_scan")
        .trim()
        .parse()
        .unwrap_or(0);
    let ksm_shared: u64 = host
        .read("/sys/kernel/mm/ksm/pages_sharing")
        .trim()
        .parse()
        .unwrap_or(0);
    let page = 4096u64;

    let mut network = Map::new();
    let (mut rx_dropped, mut tx_dropped) = (0u64, 0u64);
    for n in b.net.iter().filter(|n| n.name != "lo") {
        let name = &n.name;
        let (state, speed) = host.link(name);
        rx_dropped += n.rx_dropped;
        tx_dropped += n.tx_dropped;
        network.insert(
            name.clone(),
            json!({
                "name": name,
                "rx": n.rx_bytes.to_string(),
                "tx": n.tx_bytes.to_string(),
                "rxDropped": n.rx_dropped.to_string(),
                "txDropped": n.tx_dropped.to_string(),
                "state": state,
                "speed": speed.to_string(),
                "sampleTime": b.wall as f64,
            }),
        );
    }

    json!({
        "cpuUser": two(user),
        "cpuSys": two(sys),
        "cpuIdle": two(idle),
        "cpuUserVdsmd": two(own_user),
        "cpuSysVdsmd": two(own_sys),
        "cpuLoad": two(load.one),
        "cpuStatistics": per_cpu,
        "memFree": mib(mem.available),
        "memUsed": percent(mem.used(), mem.total).round() as u64,
        "memShared": mib(ksm_shared * page),
        "swapTotal": mib(mem.swap_total),
        "swapFree": mib(mem.swap_free),
        "anonHugePages": meminfo_kib(&meminfo, "AnonHugePages") / 1024,
        "hugepages": {},
        "ksmState": ksm_run,
        "ksmPages": ksm_pages,
        "ksmCpu": 0,
        "ksmMergeAcrossNodes": host.read("/sys/kernel/mm/ksm/merge_across_nodes").trim() != "0",
        "thpState": thp_state,
        "network": network,
        "rxDropped": rx_dropped.to_string(),
        "txDropped": tx_dropped.to_string(),
        "netConfigDirty": "False",
        "storageDomains": {},
        "diskStats": disk_stats(host),
        "haStats": {"score": 0, "configured": false, "active": false,
                    "globalMaintenance": false, "localMaintenance": false},
        "haScore": 0,
        "momStatus": "disabled",
        "v2vJobs": {},
        "incomingVmMigrations": 0,
        "outgoingVmMigrations": 0,
        "bootTime": b.wall.saturating_sub(uptime).to_string(),
        "elapsedTime": started.elapsed().as_secs().to_string(),
        "dateTime": date_time(b.wall),
        "numaNodeMemFree": numa_mem_free(host, &nodes),
    })
}

/// `2026-12-05T12:56:23 GMT`, vdsm's form (the engine compares it with its own
/// clock to warn of a drift).
pub fn date_time(secs: u64) -> String {
    let utc = hostinfo::units::UtcTime::from_unix(secs).to_string();
    format!("{} GMT", utc.replacen(' ', "T", 1))
}

/// Free bytes under the paths vdsm reports.
fn disk_stats(host: &Host) -> Value {
    let mut stats = Map::new();
    for path in ["/var/log", "/var/log/core", "/tmp", "/var/run/vdsm/"] {
        let full = host.root.join(path.trim_start_matches('/'));
        if let Ok(fs) = nix::sys::statvfs::statvfs(&full) {
            let free = fs.blocks_available().saturating_mul(fs.fragment_size());
            stats.insert(path.to_string(), json!({"free": free.to_string()}));
        }
    }
    Value::Object(stats)
}

/// Free memory per NUMA node (`/sys/devices/system/node/nodeN/meminfo`), MiB and
/// percent used.
fn numa_mem_free(host: &Host, nodes: &BTreeMap<u32, Vec<u32>>) -> Value {
    let mut free_by_node = Map::new();
    for n in nodes.keys() {
        let total = host.node_meminfo_kib(*n, "MemTotal");
        let free = host.node_meminfo_kib(*n, "MemFree");
        free_by_node.insert(
            n.to_string(),
            json!({"memFree": (free / 1024).to_string(),
                   "memPercent": percent(total.saturating_sub(free), total).round() as u64}),
        );
    }
    Value::Object(free_by_node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::put;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5000000   4000    0    7    0     0          0         0  2000000    3000    0    2    0     0       0          0
";

    #[test]
    fn usage_between_two_samples_as_the_engine_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        put(
            root,
            "/proc/stat",
            "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\n",
        );
        put(
            root,
            "/proc/self/stat",
            "42 (hvnode vdsm) S 1 42 42 0 -1 4194560 1 0 0 0 10 5 0 0 20 0 3 0 100 1 1\n",
        );
        put(root, "/proc/net/dev", NET_DEV);
        let host = Host {
            root: root.to_path_buf(),
        };
        let a = host.sample();
        put(
            root,
            "/proc/stat",
            "cpu  160 0 70 900 70 0 0 0 0 0\ncpu0 110 0 45 400 25 0 0 0 0 0\ncpu1 50 0 25 500 45 0 0 0 0 0\n",
        );
        put(
            root,
            "/proc/self/stat",
            "42 (hvnode vdsm) S 1 42 42 0 -1 4194560 1 0 0 0 12 6 0 0 20 0 3 0 100 1 1\n",
        );
        put(
            root,
            "/proc/meminfo",
            "MemTotal: 8388608 kB\nMemFree: 1048576 kB\nMemAvailable: 2097152 kB\nSwapTotal: 1048576 kB\nSwapFree: 524288 kB\nAnonHugePages: 204800 kB\n",
        );
        put(root, "/proc/loadavg", "0.52 0.40 0.30 1/200 1234\n");
        put(root, "/proc/uptime", "3600.50 7000.00\n");
        put(root, "/sys/class/net/eth0/operstate", "up\n");
        put(root, "/sys/class/net/eth0/speed", "1000\n");
        put(
            root,
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "always [madvise] never\n",
        );
        put(root, "/sys/devices/system/node/node0/cpulist", "0-1\n");
        put(
            root,
            "/sys/devices/system/node/node0/meminfo",
            "Node 0 MemTotal: 8388608 kB\nNode 0 MemFree: 1048576 kB\n",
        );
        let b = host.sample();
        let s = host_stats(&host, &a, &b, Instant::now());
        // 200 ticks passed: 60 user, 20 system, 120 idle or waiting.
        assert_eq!(s["cpuUser"], "30.00");
        assert_eq!(s["cpuSys"], "10.00");
        assert_eq!(s["cpuIdle"], "60.00");
        assert_eq!(s["cpuUserVdsmd"], "1.00");
        assert_eq!(s["cpuSysVdsmd"], "0.50");
        assert_eq!(
            s["cpuStatistics"]["0"],
            json!({"cpuUser": "75.00", "cpuSys": "25.00", "cpuIdle": "0.00", "nodeIndex": 0})
        );
        assert_eq!(s["cpuStatistics"]["1"]["cpuIdle"], "100.00");
        assert_eq!(s["cpuLoad"], "0.52");
        assert_eq!(s["memFree"], 2048);
        assert_eq!(s["memUsed"], 75);
        assert_eq!(
            (s["swapTotal"].clone(), s["swapFree"].clone()),
            (json!(1024), json!(512))
        );
        assert_eq!(s["anonHugePages"], 200);
        assert_eq!(s["thpState"], "madvise");
        let eth0 = &s["network"]["eth0"];
        assert_eq!(eth0["rx"], "5000000");
        assert_eq!(eth0["txDropped"], "2");
        assert_eq!(eth0["state"], "up");
        assert_eq!(eth0["speed"], "1000");
        assert!(s["network"].get("lo").is_none());
        assert_eq!(s["rxDropped"], "7");
        assert_eq!(
            s["numaNodeMemFree"]["0"],
            json!({"memFree": "1024", "memPercent": 88})
        );
        assert_eq!(s["storageDomains"], json!({}));
        let boot: u64 = s["bootTime"].as_str().unwrap().parse().unwrap();
        assert_eq!(boot, b.wall - 3600);
        assert!(s["dateTime"].as_str().unwrap().ends_with(" GMT"));
    }

    #[test]
    fn meminfo_figures_of_the_host_and_of_a_node() {
        let host = "MemTotal:        8388608 kB\nAnonHugePages:    204800 kB\n";
        assert_eq!(meminfo_kib(host, "MemTotal"), 8_388_608);
        assert_eq!(meminfo_kib(host, "AnonHugePages"), 204_800);
        assert_eq!(meminfo_kib(host, "HugePages"), 0);
        let node = "Node 1 MemTotal:       4194304 kB\nNode 1 MemFree:     1024 kB\n";
        assert_eq!(meminfo_kib(node, "MemFree"), 1024);
    }

    #[test]
    fn cpu_lists_and_date_times() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
        assert_eq!(date_time(1_796_474_183), "2026-12-05T12:36:23 GMT");
    }

    #[test]
    fn the_sampler_keeps_the_last_two_samples() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host {
            root: dir.path().to_path_buf(),
        };
        let sampler = Sampler::default();
        let mut s = host.sample();
        for wall in [1, 2, 3] {
            s.wall = wall;
            sampler.push(s.clone());
        }
        let (a, b) = sampler.pair(&host);
        assert_eq!((a.wall, b.wall), (2, 3));
    }
}
