//! Cumulative counters (CPU time, network and disk bytes) and the rates between two
//! readings, which the agent's sampler turns into live graphs.

use std::path::Path;

use serde::Serialize;

use crate::{Error, read_to_string};

/// CPU time in clock ticks since boot, summed over all processors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

/// Parses the aggregate `cpu` line of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: total.saturating_sub(idle),
        total,
    })
}

/// Traffic counters of one network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Parses `/proc/net/dev`.
pub fn parse_net_dev(text: &str) -> Vec<NetCounters> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            if v.len() < 16 {
                return None;
            }
            Some(NetCounters {
                name: name.trim().to_string(),
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            })
        })
        .collect()
}

/// Bytes read and written by one block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCounters {
    pub name: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// Parses `/proc/diskstats`, keeping whole disks only (no partitions, loop or ram
/// devices, no device-mapper volumes, whose I/O their disk already counts).
pub fn parse_diskstats(text: &str) -> Vec<DiskCounters> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let name = f[2];
            let skip = ["loop", "ram", "dm-", "zram", "sr"]
                .iter()
                .any(|p| name.starts_with(p))
                || is_partition(name);
            if skip {
                return None;
            }
            let sectors = |i: usize| f[i].parse::<u64>().unwrap_or(0).saturating_mul(512);
            Some(DiskCounters {
                name: name.to_string(),
                read_bytes: sectors(5),
                write_bytes: sectors(9),
            })
        })
        .collect()
}

fn is_partition(name: &str) -> bool {
    // sda1, vdb2, nvme0n1p3, mmcblk0p1 are partitions; nvme0n1 and mmcblk0 are disks.
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        return name.rsplit_once('p').is_some_and(|(head, tail)| {
            !tail.is_empty()
                && tail.bytes().all(|b| b.is_ascii_digit())
                && head.ends_with(|c: char| c.is_ascii_digit())
        });
    }
    name.ends_with(|c: char| c.is_ascii_digit())
}

/// All the cumulative counters at one instant.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub cpu: CpuTimes,
    pub net_rx: u64,
    pub net_tx: u64,
    pub disk_read: u64,
    pub disk_write: u64,
    /// Every interface's own counters, loopback included.
    pub interfaces: Vec<NetCounters>,
}

/// Reads [`Counters`] from `/proc`. The loopback interface is not in the totals.
pub fn read_counters() -> Result<Counters, Error> {
    let cpu = parse_proc_stat(&read_to_string(Path::new("/proc/stat"))?).unwrap_or_default();
    let net = parse_net_dev(&read_to_string(Path::new("/proc/net/dev"))?);
    let disks = parse_diskstats(&read_to_string(Path::new("/proc/diskstats"))?);
    let external = || net.iter().filter(|n| n.name != "lo");
    Ok(Counters {
        cpu,
        net_rx: external().map(|n| n.rx_bytes).sum(),
        net_tx: external().map(|n| n.tx_bytes).sum(),
        disk_read: disks.iter().map(|d| d.read_bytes).sum(),
        disk_write: disks.iter().map(|d| d.write_bytes).sum(),
        interfaces: net,
    })
}

/// Received and sent bytes per second of each interface between two readings.
pub fn interface_rates(before: &Counters, after: &Counters, secs: f64) -> Vec<(String, f64, f64)> {
    let secs = if secs > 0.0 { secs } else { 1.0 };
    after
        .interfaces
        .iter()
        .filter_map(|a| {
            let b = before.interfaces.iter().find(|b| b.name == a.name)?;
            Some((
                a.name.clone(),
                a.rx_bytes.saturating_sub(b.rx_bytes) as f64 / secs,
                a.tx_bytes.saturating_sub(b.tx_bytes) as f64 / secs,
            ))
        })
        .collect()
}

/// Rates between two readings `secs` seconds apart: one point of the live graphs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Busy CPU, 0–100 % of all processors.
    pub cpu_percent: f64,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
}

/// Computes [`Rates`]; counters that went backwards (a device removed) count as zero.
pub fn rates(before: &Counters, after: &Counters, secs: f64) -> Rates {
    let secs = if secs > 0.0 { secs } else { 1.0 };
    let per_sec = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    let total = after.cpu.total.saturating_sub(before.cpu.total);
    let busy = after.cpu.busy.saturating_sub(before.cpu.busy);
    Rates {
        cpu_percent: if total == 0 {
            0.0
        } else {
            (busy as f64 * 100.0 / total as f64).min(100.0)
        },
        net_rx_bps: per_sec(before.net_rx, after.net_rx),
        net_tx_bps: per_sec(before.net_tx, after.net_tx),
        disk_read_bps: per_sec(before.disk_read, after.disk_read),
        disk_write_bps: per_sec(before.disk_write, after.disk_write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fixture() {
        let t = parse_proc_stat(include_str!("../tests/fixtures/proc-stat.txt")).unwrap();
        assert!(t.total > t.busy && t.busy > 0);
        let t = parse_proc_stat("cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 1 1 1 1\n").unwrap();
        assert_eq!(
            t,
            CpuTimes {
                busy: 20,
                total: 100
            }
        );
        assert!(parse_proc_stat("intr 1 2").is_none());
    }

    #[test]
    fn net_dev_fixture() {
        let n = parse_net_dev(include_str!("../tests/fixtures/proc-net-dev.txt"));
        let names: Vec<_> = n.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        assert_eq!(n[3].rx_bytes, 158_703_178);
        assert_eq!(n[3].tx_packets, 4291);
    }

    #[test]
    fn diskstats_keeps_whole_disks() {
        let d = parse_diskstats(include_str!("../tests/fixtures/diskstats.txt"));
        let names: Vec<_> = d.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["vda"]);
        assert_eq!(d[0].read_bytes, 6_385_282 * 512);
        assert_eq!(d[0].write_bytes, 14_781_944 * 512);
    }

    #[test]
    fn partitions_are_recognised() {
        for (name, part) in [
            ("sda", false),
            ("sda1", true),
            ("vdb", false),
            ("nvme0n1", false),
            ("nvme0n1p2", true),
            ("mmcblk0", false),
            ("mmcblk0p1", true),
        ] {
            assert_eq!(is_partition(name), part, "{name}");
        }
    }

    #[test]
    fn rates_between_readings() {
        let nic = |name: &str, rx, tx| NetCounters {
            name: name.into(),
            rx_bytes: rx,
            rx_packets: 0,
            rx_errors: 0,
            rx_dropped: 0,
            tx_bytes: tx,
            tx_packets: 0,
            tx_errors: 0,
            tx_dropped: 0,
        };
        let a = Counters {
            cpu: CpuTimes {
                busy: 100,
                total: 1000,
            },
            net_rx: 1000,
            net_tx: 0,
            disk_read: 0,
            disk_write: 4096,
            interfaces: vec![nic("eth0", 1000, 0)],
        };
        let b = Counters {
            cpu: CpuTimes {
                busy: 150,
                total: 1200,
            },
            net_rx: 3000,
            net_tx: 10,
            disk_read: 0,
            disk_write: 0,
            // eth1 appeared between the readings: no rate yet.
            interfaces: vec![nic("eth0", 3000, 10), nic("eth1", 5, 5)],
        };
        let r = rates(&a, &b, 2.0);
        assert_eq!(r.cpu_percent, 25.0);
        assert_eq!(r.net_rx_bps, 1000.0);
        assert_eq!(r.net_tx_bps, 5.0);
        assert_eq!(
            r.disk_write_bps, 0.0,
            "a counter going backwards is not negative"
        );
        assert_eq!(rates(&a, &a, 0.0).cpu_percent, 0.0);
        assert_eq!(
            interface_rates(&a, &b, 2.0),
            [("eth0".to_string(), 1000.0, 5.0)]
        );
    }
}
