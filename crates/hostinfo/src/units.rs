//! The clock and the byte counts as the node's tools show them: one
//! `now_unix` and one `human_bytes` for the CLI, the installer and the
//! console.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch; 0 on a clock set before 1970.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Bytes for a person, in powers of 1024: `512 B`, `1.5 GiB`.
pub fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_powers_of_1024() {
        for (n, want) in [
            (0.0, "0 B"),
            (1023.0, "1023 B"),
            (1024.0, "1.0 KiB"),
            (1536.0 * 1024.0 * 1024.0, "1.5 GiB"),
            (2.0f64.powi(60) * 3.0, "3072.0 PiB"),
        ] {
            assert_eq!(human_bytes(n), want);
        }
    }

    #[test]
    fn the_clock_is_past_2020() {
        assert!(now_unix() > 1_577_836_800);
    }
}
