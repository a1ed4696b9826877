//! How long to wait before trying a failed delivery again.
//!
//! Exponential backoff with jitter, so that after an outage the replies of many conversations
//! do not all hit the platform in the same instant; and a platform's own "retry after" wins,
//! because ignoring it only gets us rate limited for longer.

use crate::channel::AdapterError;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The wait before attempt `attempt + 1`, after attempt `attempt` (counted from 0) failed with
/// `error`. `jitter` is in `[0, 1)`.
///
/// - Rate limited with a `retry_after`: that long, plus up to 10% so waiting conversations
///   spread out (never less than the platform asked for; may exceed `max`).
/// - Otherwise: `base * 2^attempt`, capped at `max`, of which the upper half is random
///   ("equal jitter"): never less than half the exponential delay, never more than it.
pub(super) fn retry_delay(error: &AdapterError, attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    if let AdapterError::RateLimited { retry_after_ms, .. } = error {
        if *retry_after_ms > 0 {
            let wait = Duration::from_millis(*retry_after_ms);
            return wait + wait.mul_f64(0.1 * jitter);
        }
    }
    let exponential = base.saturating_mul(1u32 << attempt.min(30)).min(max);
    let half = exponential / 2;
    half + (exponential - half).mul_f64(jitter)
}

/// A random fraction in `[0, 1)`. Jitter only needs to differ between calls and processes, so
/// the standard library's randomly keyed hasher is enough.
pub(super) fn jitter() -> f64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    // 53 random bits make an evenly spread f64 in [0, 1).
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> AdapterError {
        AdapterError::Unavailable { platform: "slack", message: "connection reset".into() }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_is_capped() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(300);
        for attempt in 0..5 {
            let full = base * (1 << attempt);
            let low = retry_delay(&unavailable(), attempt, base, max, 0.0);
            let high = retry_delay(&unavailable(), attempt, base, max, 0.999_999);
            assert_eq!(low, full / 2);
            assert!(high <= full && high > full.mul_f64(0.99), "attempt {attempt}: {high:?}");
        }
        assert_eq!(retry_delay(&unavailable(), 40, base, max, 0.0), max / 2);
        assert!(retry_delay(&unavailable(), 40, base, max, 0.999) <= max);
    }

    #[test]
    fn rate_limits_are_honoured_even_beyond_the_cap() {
        let limited = AdapterError::RateLimited { platform: "discord", retry_after_ms: 7_000 };
        let base = Duration::from_millis(500);
        let wait = retry_delay(&limited, 0, base, Duration::from_secs(5), 0.0);
        assert_eq!(wait, Duration::from_secs(7));
        let wait = retry_delay(&limited, 0, base, Duration::from_secs(5), 0.999);
        assert!(wait >= Duration::from_secs(7) && wait < Duration::from_millis(7_700));
        let no_hint = AdapterError::RateLimited { platform: "discord", retry_after_ms: 0 };
        assert_eq!(retry_delay(&no_hint, 1, base, Duration::from_secs(5), 0.0), base);
    }

    #[test]
    fn jitter_is_a_varying_fraction() {
        let samples: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.windows(2).any(|w| w[0] != w[1]));
    }
}
