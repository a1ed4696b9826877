//! Per-workspace and per-user rate limits (governor's keyed GCRA limiters).
//!
//! Every customer message the bot works on takes one cell from its workspace's bucket and one
//! from its author's (per workspace). Quotas come from `[rate_limits]`, with per-workspace
//! overrides. The clock is tokio's, so tests run with paused time.
//!
//! The cells are taken when the inbox accepts a message (see [`Admission`]), so the limits
//! count messages as customers send them, not as turns happen to come round. Senders and
//! workspaces that have been idle long enough to be back to a full bucket are forgotten every
//! few minutes, so memory does not grow with everyone who ever wrote.

use crate::channel::{AuthorId, WorkspaceId};
use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often idle keys are dropped from the limiters (in the limiters' own time).
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(5 * 60);

/// The rate limits' verdict on a message, taken when the inbox accepted it and kept with it, so
/// the message's turn (however long it waited, and after a restart) follows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Admission {
    /// Not taken on arrival (the message did not look like one the bot would work on, or no
    /// engine was attached to the inbox yet): the turn takes it, if it comes to that.
    #[default]
    Unchecked,
    /// Within the workspace's and the sender's limits.
    Admitted,
    /// Over a limit: the customer gets the rate-limit notice instead of an answer.
    Limited {
        retry_after_ms: u64,
        /// The sender's own quota was used up (not the workspace's). Verdicts stored before
        /// this field existed read as the workspace's.
        #[serde(default)]
        sender: bool,
    },
}

impl Admission {
    /// The verdict of one [`RateLimits::check`].
    pub fn of(checked: Result<(), Limited>) -> Admission {
        match checked {
            Ok(()) => Admission::Admitted,
            Err(limited) => Admission::Limited {
                retry_after_ms: u64::try_from(limited.retry_after().as_millis()).unwrap_or(u64::MAX),
                sender: matches!(limited, Limited::User { .. }),
            },
        }
    }
}

/// `[rate_limits]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Customer messages per minute a workspace may send the bot.
    pub workspace_per_minute: u32,
    /// How many of them may come at once.
    pub workspace_burst: u32,
    /// Customer messages per minute one person may send.
    pub user_per_minute: u32,
    pub user_burst: u32,
    /// Workspaces with their own quota.
    pub overrides: Vec<WorkspaceQuota>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkspaceQuota {
    pub workspace: String,
    pub per_minute: u32,
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            workspace_per_minute: 120,
            workspace_burst: 30,
            user_per_minute: 10,
            user_burst: 5,
            overrides: Vec::new(),
        }
    }
}

impl RateLimitConfig {
    /// Problems with the values, as `(path, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut check = |path: String, v: u32| {
            if v == 0 {
                out.push((path, "must be greater than 0".to_string()));
            }
        };
        check("rate_limits.workspace_per_minute".into(), self.workspace_per_minute);
        check("rate_limits.workspace_burst".into(), self.workspace_burst);
        check("rate_limits.user_per_minute".into(), self.user_per_minute);
        check("rate_limits.user_burst".into(), self.user_burst);
        for (i, o) in self.overrides.iter().enumerate() {
            check(format!("rate_limits.overrides[{i}].per_minute"), o.per_minute);
            check(format!("rate_limits.overrides[{i}].burst"), o.burst);
        }
        out
    }
}

/// governor's clock backed by tokio's time, so `tokio::time::pause` controls it.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock { base: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.base)
    }
}

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, TokioClock, NoOpMiddleware<Duration>>;

/// Which limit was hit, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Workspace { retry_after: Duration },
    User { retry_after: Duration },
}

impl Limited {
    pub fn retry_after(&self) -> Duration {
        match self {
            Limited::Workspace { retry_after } | Limited::User { retry_after } => *retry_after,
        }
    }
}

/// The limiters of one running frontdesk.
pub struct RateLimits {
    clock: TokioClock,
    workspaces: Keyed<String>,
    overridden: HashMap<String, Keyed<()>>,
    users: Keyed<(String, String)>,
    /// One handoff a minute per sender over their own quota (see [`RateLimits::first_over_quota`]).
    over_quota_handoffs: Keyed<(String, String)>,
    /// When idle keys were last dropped, in milliseconds of `clock`.
    forgotten_at_ms: AtomicU64,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(rate).allow_burst(burst)
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        let clock = TokioClock::default();
        let overridden = config
            .overrides
            .iter()
            .map(|o| {
                (o.workspace.clone(), RateLimiter::dashmap_with_clock(quota(o.per_minute, o.burst), clock.clone()))
            })
            .collect();
        RateLimits {
            workspaces: RateLimiter::dashmap_with_clock(
                quota(config.workspace_per_minute, config.workspace_burst),
                clock.clone(),
            ),
            users: RateLimiter::dashmap_with_clock(quota(config.user_per_minute, config.user_burst), clock.clone()),
            over_quota_handoffs: RateLimiter::dashmap_with_clock(quota(1, 1), clock.clone()),
            overridden,
            clock,
            forgotten_at_ms: AtomicU64::new(0),
        }
    }

    /// Takes one message from both buckets, or says which one is empty. A message refused by
    /// the user's bucket does not use up the workspace's.
    pub fn check(&self, workspace: &WorkspaceId, author: &AuthorId) -> Result<(), Limited> {
        let now = self.clock.now();
        self.forget_idle_now_and_then(now);
        let wait = |earliest: Duration| earliest.duration_since(now).into();
        let user_key = (workspace.to_string(), author.to_string());
        if let Err(not_until) = self.users.check_key(&user_key) {
            return Err(Limited::User { retry_after: wait(not_until.earliest_possible()) });
        }
        let ws = workspace.to_string();
        let result = match self.overridden.get(&ws) {
            Some(l) => l.check_key(&()),
            None => self.workspaces.check_key(&ws),
        };
        result.map_err(|not_until| Limited::Workspace { retry_after: wait(not_until.earliest_possible()) })
    }

    /// True the first time in a minute that `author` is over their own quota. Only that message
    /// hands its conversation to a person (the customer is told, the agents get one card); the
    /// sender's further messages that minute are recorded and not answered, so a sender writing
    /// in many new threads at once cannot fill the agents' channel with cards.
    pub fn first_over_quota(&self, workspace: &WorkspaceId, author: &AuthorId) -> bool {
        self.over_quota_handoffs.check_key(&(workspace.to_string(), author.to_string())).is_ok()
    }

    /// Forgets idle keys: those whose bucket is full again, indistinguishable from a sender never
    /// seen. `check` does it at most every five minutes (`FORGET_IDLE_EVERY`).
    pub fn shrink(&self) {
        self.users.retain_recent();
        self.users.shrink_to_fit();
        self.over_quota_handoffs.retain_recent();
        self.over_quota_handoffs.shrink_to_fit();
        self.workspaces.retain_recent();
        self.workspaces.shrink_to_fit();
    }

    /// How many senders and workspaces the limiters remember.
    pub fn remembered(&self) -> (usize, usize) {
        (self.users.len(), self.workspaces.len())
    }

    fn forget_idle_now_and_then(&self, now: Duration) {
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let last = self.forgotten_at_ms.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= FORGET_IDLE_EVERY.as_millis() as u64;
        // One caller does it; the others go on at once.
        if due && self.forgotten_at_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.shrink();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(w: &str, u: &str) -> (WorkspaceId, AuthorId) {
        (WorkspaceId::new(w).unwrap(), AuthorId::new(u).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_verdict_says_whose_quota_ran_out_and_old_stored_verdicts_still_read() {
        let limits = RateLimits::new(&RateLimitConfig {
            user_per_minute: 1,
            user_burst: 1,
            workspace_per_minute: 1,
            workspace_burst: 2,
            ..Default::default()
        });
        let (w, u) = ids("T1", "U1");
        assert_eq!(Admission::of(limits.check(&w, &u)), Admission::Admitted);
        assert!(matches!(Admission::of(limits.check(&w, &u)), Admission::Limited { sender: true, .. }));
        let (_, other) = ids("T1", "U2");
        assert_eq!(Admission::of(limits.check(&w, &other)), Admission::Admitted);
        let (_, third) = ids("T1", "U3");
        assert!(matches!(Admission::of(limits.check(&w, &third)), Admission::Limited { sender: false, .. }));
        // Verdicts kept in the inbox before `sender` existed count as the workspace's.
        let stored: Admission = serde_json::from_str(r#"{"verdict":"limited","retry_after_ms":500}"#).unwrap();
        assert_eq!(stored, Admission::Limited { retry_after_ms: 500, sender: false });
    }

    #[tokio::test(start_paused = true)]
    async fn user_burst_then_refill_over_time() {
        let limits = RateLimits::new(&RateLimitConfig { user_per_minute: 6, user_burst: 2, ..Default::default() });
        let (w, u) = ids("T1", "U1");
        assert!(limits.check(&w, &u).is_ok());
        assert!(limits.check(&w, &u).is_ok());
        let limited = limits.check(&w, &u).unwrap_err();
        assert!(matches!(limited, Limited::User { .. }));
        assert!(limited.retry_after() <= Duration::from_secs(10) && limited.retry_after() > Duration::ZERO);
        // Another person in the same workspace is not affected.
        assert!(limits.check(&w, &AuthorId::new("U2").unwrap()).is_ok());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(limits.check(&w, &u).is_ok());
        assert!(limits.check(&w, &u).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn senders_idle_for_a_while_are_forgotten() {
        let config = RateLimitConfig { user_per_minute: 1, user_burst: 5, ..RateLimitConfig::default() };
        let limits = RateLimits::new(&config);
        for i in 0..100 {
            let (w, u) = ids(&format!("T{}", i % 10), &format!("U{i}"));
            limits.check(&w, &u).unwrap();
        }
        assert_eq!(limits.remembered(), (100, 10));
        // Long enough for every bucket to be full again.
        tokio::time::advance(Duration::from_secs(15 * 60)).await;
        let (w, u) = ids("T1", "U1");
        limits.check(&w, &u).unwrap();
        assert_eq!(limits.remembered(), (1, 1));
        // A sender whose bucket is not full again by the next round is remembered.
        for _ in 0..4 {
            limits.check(&w, &u).unwrap();
        }
        assert!(limits.check(&w, &u).is_err());
        tokio::time::advance(FORGET_IDLE_EVERY).await;
        limits.check(&ids("T2", "U2").0, &ids("T2", "U2").1).unwrap();
        assert_eq!(limits.remembered(), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn workspace_limit_spans_users_and_overrides_apply() {
        let config = RateLimitConfig {
            workspace_per_minute: 60,
            workspace_burst: 3,
            overrides: vec![WorkspaceQuota { workspace: "BIG".into(), per_minute: 600, burst: 10 }],
            ..Default::default()
        };
        let limits = RateLimits::new(&config);
        for i in 0..3 {
            assert!(limits.check(&ids("T1", &format!("U{i}")).0, &ids("T1", &format!("U{i}")).1).is_ok());
        }
        let (w, u) = ids("T1", "U9");
        assert!(matches!(limits.check(&w, &u), Err(Limited::Workspace { .. })));
        // Workspaces are separate; the overridden one has a bigger burst.
        for i in 0..10 {
            let (w, u) = ids("BIG", &format!("U{i}"));
            assert!(limits.check(&w, &u).is_ok(), "message {i}");
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limits.check(&w, &u).is_ok());
    }
}
