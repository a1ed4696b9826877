//! `[store]`: how much memory the state database may use for its cache, and how long the records
//! that every message leaves behind are kept.

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// MiB of the state database's page cache (sled's `cache_capacity`). Records beyond it are
    /// read from disk when needed. sled counts records at their size on disk; in memory they
    /// take somewhat more.
    pub cache_mib: u64,
    /// Hours an incoming event's dedup record is kept, and with it the record of a delivered
    /// reply and the stored result of the turn: a platform that redelivers an event within this
    /// time gets no second answer. Slack retries an event for a few minutes.
    pub dedup_retention_hours: u64,
    /// Days a turn's trace (`frontdesk trace`, the customer's "Helpful" button) is kept.
    pub trace_retention_days: u64,
    /// Days a conversation nobody wrote in is kept. A message in its thread after that starts a
    /// new conversation: the bot no longer remembers the earlier messages, nor that a person
    /// had taken the thread.
    pub conversation_retention_days: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_mib: 64,
            dedup_retention_hours: 48,
            trace_retention_days: 30,
            conversation_retention_days: 90,
        }
    }
}

/// Bounds of `store.cache_mib`.
const MIN_CACHE_MIB: u64 = 8;
const MAX_CACHE_MIB: u64 = 64 * 1024;
/// The shortest dedup retention: platforms redeliver within minutes or hours; a day leaves a margin.
const MIN_DEDUP_HOURS: u64 = 24;
const MAX_DEDUP_HOURS: u64 = 24 * 365;
const MAX_RETENTION_DAYS: u64 = 10 * 365;

const HOUR: u64 = 60 * 60;
const DAY: u64 = 24 * HOUR;

impl StoreConfig {
    /// The page cache in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_mib.saturating_mul(1024 * 1024)
    }

    pub fn dedup_retention(&self) -> Duration {
        Duration::from_secs(self.dedup_retention_hours.saturating_mul(HOUR))
    }

    pub fn trace_retention(&self) -> Duration {
        Duration::from_secs(self.trace_retention_days.saturating_mul(DAY))
    }

    pub fn conversation_retention(&self) -> Duration {
        Duration::from_secs(self.conversation_retention_days.saturating_mul(DAY))
    }

    /// Values that parse but cannot work, as (key, problem).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(MIN_CACHE_MIB..=MAX_CACHE_MIB).contains(&self.cache_mib) {
            out.push((
                "store.cache_mib".into(),
                format!("must be between {MIN_CACHE_MIB} and {MAX_CACHE_MIB} (MiB), not {}", self.cache_mib),
            ));
        }
        if !(MIN_DEDUP_HOURS..=MAX_DEDUP_HOURS).contains(&self.dedup_retention_hours) {
            out.push((
                "store.dedup_retention_hours".into(),
                format!(
                    "must be between {MIN_DEDUP_HOURS} and {MAX_DEDUP_HOURS}, not {} (a shorter time would answer \
                     an event a platform redelivers a second time)",
                    self.dedup_retention_hours
                ),
            ));
        }
        for (key, days) in [
            ("trace_retention_days", self.trace_retention_days),
            ("conversation_retention_days", self.conversation_retention_days),
        ] {
            if days == 0 || days > MAX_RETENTION_DAYS {
                out.push((format!("store.{key}"), format!("must be between 1 and {MAX_RETENTION_DAYS}, not {days}")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cache_is_far_below_sleds_own_default() {
        // sled's own default is 1 GiB, which let resident memory grow past 2 GiB under load.
        let config = StoreConfig::default();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert!(config.cache_bytes() <= 128 * 1024 * 1024, "{}", config.cache_bytes());
    }

    #[test]
    fn out_of_range_values_are_each_reported() {
        let config = StoreConfig {
            cache_mib: 0,
            dedup_retention_hours: 1,
            trace_retention_days: 0,
            conversation_retention_days: 100_000,
        };
        let keys: Vec<String> = config.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "store.cache_mib",
                "store.dedup_retention_hours",
                "store.trace_retention_days",
                "store.conversation_retention_days"
            ]
        );
    }
}
