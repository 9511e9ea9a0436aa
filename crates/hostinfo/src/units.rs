//! The clock, dates and byte counts as the node's tools show them: one
//! `now_unix`, one [`UtcTime`] and one `human_bytes` for the CLI, the
//! installer, the image builder and the console.
//!
//! Dates are only ever shown in UTC from a Unix time (no parsing, no time
//! zones), so a date crate would be a dependency for one function: the
//! calendar arithmetic is here instead, tested below.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a day (Unix time has no leap seconds).
pub const SECS_PER_DAY: u64 = 86_400;

/// Seconds since the epoch; 0 on a clock set before 1970.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whole days since 1970-01-01 of a Unix time (the unit of `/etc/shadow`'s
/// dates).
pub fn days_since_epoch(secs: u64) -> u64 {
    secs / SECS_PER_DAY
}

/// A Unix time as a UTC calendar date and time of day (proleptic Gregorian).
///
/// `Display` writes `YYYY-MM-DD HH:MM:SS`, the form the console and
/// `nodectl` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    /// The UTC date and time `secs` seconds after 1970-01-01 00:00:00 (before
    /// it when negative). Takes `i64` and `u64` alike.
    pub fn from_unix(secs: impl Into<i128>) -> Self {
        let secs: i128 = secs.into();
        let day_secs = i128::from(SECS_PER_DAY);
        // |i64| and u64 divided by a day's seconds fit an i64 with room for
        // the era arithmetic below; the rest of a day fits a u32.
        let days = i64::try_from(secs.div_euclid(day_secs)).unwrap_or(0);
        let rem = u32::try_from(secs.rem_euclid(day_secs)).unwrap_or(0);
        let (year, month, day) = civil_from_days(days);
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Year, month and day of a day count since 1970-01-01, counted in 400-year
/// eras of 146 097 days that start on 0000-03-01 (so that a leap day is the
/// last day of its year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // doy is 0..=365, so month is 1..=12 and day 1..=31.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
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
    fn unix_times_as_utc_dates() {
        for (secs, want) in [
            (0_i64, "1970-01-01 00:00:00"),
            (-1, "1969-12-31 23:59:59"),
            (951_782_400, "2000-02-29 00:00:00"),
            (951_868_800, "2000-03-01 00:00:00"),
            (1_709_164_800, "2024-02-29 00:00:00"),
            (1_709_251_199, "2024-02-29 23:59:59"),
            (1_709_251_200, "2024-03-01 00:00:00"),
            (1_735_689_599, "2024-12-31 23:59:59"),
            (1_735_689_600, "2025-01-01 00:00:00"),
            (1_764_113_031, "2025-11-25 23:23:51"),
            (4_107_542_399, "2100-02-28 23:59:59"),
            (4_107_542_400, "2100-03-01 00:00:00"),
            (253_402_300_799, "9999-12-31 23:59:59"),
            (253_402_300_800, "10000-01-01 00:00:00"),
        ] {
            assert_eq!(UtcTime::from_unix(secs).to_string(), want, "{secs}");
        }
    }

    #[test]
    fn utc_fields_and_unsigned_times() {
        assert_eq!(
            UtcTime::from_unix(1_709_210_096_u64),
            UtcTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 12,
                minute: 34,
                second: 56,
            }
        );
        // The whole u64 range has a date (in the year 584 554 051 223).
        let far = UtcTime::from_unix(u64::MAX);
        assert_eq!((far.year, far.month, far.day), (584_554_051_223, 11, 9));
        assert_eq!((far.hour, far.minute, far.second), (7, 0, 15));
    }

    #[test]
    fn days_since_the_epoch() {
        assert_eq!(days_since_epoch(0), 0);
        assert_eq!(days_since_epoch(86_399), 0);
        assert_eq!(days_since_epoch(1_709_164_800), 19_782);
    }

    #[test]
    fn the_clock_is_past_2020() {
        assert!(now_unix() > 1_577_836_800);
    }
}
