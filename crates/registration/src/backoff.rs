//! Capped exponential backoff with jitter, for retrying registration until it succeeds.

use std::time::Duration;

/// The shortest wait between two attempts.
pub const BACKOFF_FLOOR: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// How long to wait after failed attempt number `attempt` (1 for the first failure).
///
/// The ceiling doubles from 1 s per failure up to 5 min; the wait is drawn from the
/// upper half of the ceiling by `jitter` (in `[0, 1]`, 0 giving half the ceiling and 1
/// the whole), so that a fleet of nodes booted together spreads out, and never drops
/// below 1 s. Pure: the caller supplies the randomness.
pub fn backoff_delay(attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(16);
    let ceiling = BACKOFF_FLOOR
        .saturating_mul(1u32 << exponent)
        .min(BACKOFF_CAP);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        1.0
    };
    ceiling.mul_f64(0.5 + 0.5 * jitter).max(BACKOFF_FLOOR)
}

/// A jitter value for [`backoff_delay`].
pub fn random_jitter() -> f64 {
    fastrand::f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_and_caps_at_five_minutes() {
        let table = [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (8, 128),
            (9, 256),
            (10, 300),
            (11, 300),
            (1000, 300),
            (u32::MAX, 300),
        ];
        for (attempt, secs) in table {
            assert_eq!(
                backoff_delay(attempt, 1.0),
                Duration::from_secs(secs),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn jitter_stays_in_the_upper_half_and_above_the_floor() {
        for attempt in 0..40 {
            let full = backoff_delay(attempt, 1.0);
            for jitter in [0.0, 0.1, 0.5, 0.99, -3.0, 7.0, f64::NAN] {
                let d = backoff_delay(attempt, jitter);
                assert!(d >= BACKOFF_FLOOR, "attempt {attempt} jitter {jitter}");
                assert!(
                    d <= full && d <= BACKOFF_CAP,
                    "attempt {attempt} jitter {jitter}"
                );
                assert!(d >= full / 2, "attempt {attempt} jitter {jitter}");
            }
        }
        assert_eq!(backoff_delay(10, 0.0), Duration::from_secs(150));
    }

    #[test]
    fn never_shrinks_as_attempts_grow() {
        let mut last = Duration::ZERO;
        for attempt in 0..64 {
            let d = backoff_delay(attempt, 0.5);
            assert!(d >= last);
            last = d;
        }
    }

    #[test]
    fn random_jitter_is_a_fraction() {
        for _ in 0..100 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
