//! CPU, memory, load, uptime and identity of the host, parsed from `/proc` and `/etc`.

use std::path::Path;

use serde::Serialize;

use crate::Error;
use crate::read_to_string;

/// The processor as `/proc/cpuinfo` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuInfo {
    /// `model name` of the first processor.
    pub model: String,
    /// Number of logical processors.
    pub count: usize,
    /// Hardware virtualisation flags present (`vmx`, `svm`).
    pub virt_flags: Vec<String>,
}

impl CpuInfo {
    /// Whether KVM can use hardware virtualisation on this CPU.
    pub fn hardware_virtualisation(&self) -> bool {
        !self.virt_flags.is_empty()
    }
}

/// Parses `/proc/cpuinfo`.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut model = String::new();
    let mut count = 0;
    let mut virt_flags = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => count += 1,
            "model name" | "cpu model" if model.is_empty() => model = value.to_string(),
            "flags" if virt_flags.is_empty() => {
                virt_flags = value
                    .split_whitespace()
                    .filter(|f| matches!(*f, "vmx" | "svm"))
                    .map(str::to_string)
                    .collect();
            }
            _ => {}
        }
    }
    CpuInfo {
        model,
        count,
        virt_flags,
    }
}

/// Memory figures from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemInfo {
    pub total: u64,
    pub available: u64,
    pub free: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemInfo {
    /// Memory in use: what is not available to new allocations.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }
}

/// Parses `/proc/meminfo` (values are in KiB).
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let kib: u64 = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = kib.saturating_mul(1024);
        match key {
            "MemTotal" => m.total = bytes,
            "MemAvailable" => m.available = bytes,
            "MemFree" => m.free = bytes,
            "SwapTotal" => m.swap_total = bytes,
            "SwapFree" => m.swap_free = bytes,
            _ => {}
        }
    }
    m
}

/// The 1, 5 and 15 minute load averages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Parses `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<LoadAvg> {
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some(LoadAvg {
        one: it.next()??,
        five: it.next()??,
        fifteen: it.next()??,
    })
}

/// Parses `/proc/uptime` into whole seconds.
pub fn parse_uptime(text: &str) -> Option<u64> {
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(secs as u64)
}

/// `PRETTY_NAME`, `VERSION_ID` and friends of an os-release file.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.trim_start().starts_with('#'))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// Formats seconds as "3 days, 4:05".
pub fn format_uptime(secs: u64) -> String {
    let days = secs / 86_400;
    let hours = secs % 86_400 / 3600;
    let minutes = secs % 3600 / 60;
    match days {
        0 => format!("{hours}:{minutes:02}"),
        1 => format!("1 day, {hours}:{minutes:02}"),
        d => format!("{d} days, {hours}:{minutes:02}"),
    }
}

/// What the overview page shows about the host.
#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    pub hostname: String,
    /// The OS `PRETTY_NAME`.
    pub os: String,
    /// The image name-version-release, when this is an hvnode image
    /// ([`crate::image::IMAGE_IDENTITY`]).
    pub image_nvr: Option<String>,
    pub kernel: String,
    pub uptime_secs: u64,
    pub cpu: CpuInfo,
    pub memory: MemInfo,
    pub load: LoadAvg,
}

/// Reads [`SystemInfo`] from the running host.
pub fn system_info() -> Result<SystemInfo, Error> {
    let os_release = read_to_string(Path::new("/etc/os-release"))
        .or_else(|_| read_to_string(Path::new("/usr/lib/os-release")))
        .unwrap_or_default();
    let os = parse_os_release(&os_release);
    let field = |name: &str| os.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let image_nvr = crate::image::ImageIdentity::running_nvr();
    Ok(SystemInfo {
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        os: field("PRETTY_NAME").unwrap_or_else(|| "Linux".to_string()),
        image_nvr,
        kernel: read_to_string(Path::new("/proc/sys/kernel/osrelease"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        uptime_secs: parse_uptime(&read_to_string(Path::new("/proc/uptime"))?).unwrap_or(0),
        cpu: parse_cpuinfo(&read_to_string(Path::new("/proc/cpuinfo"))?),
        memory: parse_meminfo(&read_to_string(Path::new("/proc/meminfo"))?),
        load: parse_loadavg(&read_to_string(Path::new("/proc/loadavg"))?).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = include_str!("../tests/fixtures/cpuinfo.txt");
    const MEMINFO: &str = include_str!("../tests/fixtures/meminfo.txt");

    #[test]
    fn cpuinfo_of_a_guest_without_nested_virtualisation() {
        let cpu = parse_cpuinfo(CPUINFO);
        assert_eq!(cpu.model, "Intel(R) Xeon(R) Processor");
        assert_eq!(cpu.count, 2);
        assert!(cpu.virt_flags.is_empty());
        assert!(!cpu.hardware_virtualisation());
    }

    #[test]
    fn cpuinfo_with_vmx_and_svm() {
        for (flags, want) in [("fpu vmx sse", "vmx"), ("svm lm", "svm")] {
            let text = format!("processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n");
            assert_eq!(parse_cpuinfo(&text).virt_flags, [want]);
        }
    }

    #[test]
    fn meminfo_in_bytes() {
        let m = parse_meminfo(MEMINFO);
        assert!(m.total > 0 && m.available > 0 && m.available <= m.total);
        assert_eq!(m.total % 1024, 0);
        assert_eq!(m.used(), m.total - m.available);
        let m = parse_meminfo("MemTotal: 2048 kB\nMemAvailable: 1024 kB\n");
        assert_eq!(
            (m.total, m.available, m.used()),
            (2_097_152, 1_048_576, 1_048_576)
        );
    }

    #[test]
    fn loadavg_and_uptime() {
        let l = parse_loadavg(include_str!("../tests/fixtures/loadavg.txt")).unwrap();
        assert!(l.one >= 0.0);
        assert_eq!(parse_loadavg("0.50 0.25 0.10 1/100 42").unwrap().five, 0.25);
        assert!(parse_loadavg("garbage").is_none());
        assert_eq!(parse_uptime("93784.51 180000.10\n"), Some(93784));
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn uptime_formatting() {
        for (secs, want) in [
            (59, "0:00"),
            (3_660, "1:01"),
            (90_000, "1 day, 1:00"),
            (3 * 86_400 + 4 * 3600 + 5 * 60, "3 days, 4:05"),
        ] {
            assert_eq!(format_uptime(secs), want);
        }
    }

    #[test]
    fn os_release_quotes_and_comments() {
        let os =
            parse_os_release("# c\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n");
        assert_eq!(
            os,
            [
                (
                    "PRETTY_NAME".into(),
                    "Debian GNU/Linux 12 (bookworm)".into()
                ),
                ("ID".into(), "debian".into())
            ]
        );
    }
}
