//! The members of each workspace's agents' user group, read without making Slack wait.
//!
//! Slack wants every request acknowledged within 3 s, and a message's author must be known to
//! be an agent or not before the message is stored and acknowledged. Members are read with
//! `usergroups.users.list`, which can be slow or down, so:
//!
//! - members are cached per workspace for `agent_cache_secs`;
//! - once that has passed, the cached members still answer while one refresh runs in the
//!   background;
//! - a workspace whose members are not known yet waits at most [`FIRST_LOOKUP_WAIT`] for them;
//! - a failed lookup drops the cached members and is remembered for [`FAILURE_BACKOFF`], so an
//!   outage does not make every event call Slack again;
//! - while the members are unknown, nobody is taken for an agent (fail closed).

use frontdesk_channel::AdapterError;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a workspace whose members were never read waits for them before its event is
/// acknowledged (the first lookup goes on in the background).
pub(crate) const FIRST_LOOKUP_WAIT: Duration = Duration::from_secs(1);

/// How long a failed lookup is remembered before Slack is asked again.
pub(crate) const FAILURE_BACKOFF: Duration = Duration::from_secs(30);

/// One `usergroups.users.list` call.
pub(crate) type Lookup = Pin<Box<dyn Future<Output = Result<Vec<String>, AdapterError>> + Send>>;

/// Whether someone is in the agents' user group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Membership {
    Member,
    NotMember,
    /// The members could not be read (Slack is slow or failing): not an agent for now.
    Unknown,
}

#[derive(Default)]
struct Entry {
    members: Option<(Instant, Arc<HashSet<String>>)>,
    failed_at: Option<Instant>,
    /// Set while a lookup runs; turns true when it has finished.
    refreshing: Option<watch::Receiver<bool>>,
}

/// The cache, shared with the background lookups.
#[derive(Clone)]
pub(crate) struct GroupCache {
    ttl: Duration,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl GroupCache {
    pub(crate) fn new(ttl: Duration) -> GroupCache {
        GroupCache { ttl, entries: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Whether `user` is in `team`'s agents' user group. `lookup` reads the members from Slack;
    /// it is called only when the cache needs a refresh and none is running.
    pub(crate) async fn check(&self, team: &str, user: &str, lookup: impl FnOnce() -> Lookup) -> Membership {
        let done = {
            let Ok(mut entries) = self.entries.lock() else { return Membership::Unknown };
            let entry = entries.entry(team.to_string()).or_default();
            let now = Instant::now();
            if let Some((at, members)) = &entry.members {
                if now.duration_since(*at) < self.ttl {
                    return membership(members, user);
                }
            }
            if entry.refreshing.is_none() {
                if entry.failed_at.is_some_and(|at| now.duration_since(at) < FAILURE_BACKOFF) {
                    return Membership::Unknown;
                }
                let (tx, rx) = watch::channel(false);
                entry.refreshing = Some(rx);
                tokio::spawn(self.clone().refresh(team.to_string(), lookup(), tx));
            }
            // Stale members answer while the refresh runs.
            if let Some((_, members)) = &entry.members {
                return membership(members, user);
            }
            entry.refreshing.clone()
        };
        if let Some(mut done) = done {
            let _ = tokio::time::timeout(FIRST_LOOKUP_WAIT, done.wait_for(|finished| *finished)).await;
        }
        let Ok(entries) = self.entries.lock() else { return Membership::Unknown };
        match entries.get(team).and_then(|e| e.members.as_ref()) {
            Some((_, members)) => membership(members, user),
            None => Membership::Unknown,
        }
    }

    async fn refresh(self, team: String, lookup: Lookup, done: watch::Sender<bool>) {
        let result = lookup.await;
        if let Ok(mut entries) = self.entries.lock() {
            let entry = entries.entry(team.clone()).or_default();
            entry.refreshing = None;
            match result {
                Ok(members) => {
                    entry.members = Some((Instant::now(), Arc::new(members.into_iter().collect())));
                    entry.failed_at = None;
                }
                Err(e) => {
                    tracing::warn!(
                        team = %team,
                        error = %e,
                        retry_in_s = FAILURE_BACKOFF.as_secs(),
                        "slack: cannot read the agents' user group; nobody in it counts as an agent until it can be read"
                    );
                    entry.members = None;
                    entry.failed_at = Some(Instant::now());
                }
            }
        }
        let _ = done.send(true);
    }
}

fn membership(members: &HashSet<String>, user: &str) -> Membership {
    if members.contains(user) {
        Membership::Member
    } else {
        Membership::NotMember
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A lookup that answers `result` after `delay`, counting its calls.
    fn lookup(calls: &Arc<AtomicUsize>, delay: Duration, result: Result<&[&str], ()>) -> impl FnOnce() -> Lookup {
        let calls = Arc::clone(calls);
        let result: Result<Vec<String>, AdapterError> = match result {
            Ok(users) => Ok(users.iter().map(|u| u.to_string()).collect()),
            Err(()) => Err(AdapterError::Unavailable { platform: "slack", message: "down".into() }),
        };
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                result
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn members_are_cached_then_refreshed_in_the_background() {
        let cache = GroupCache::new(Duration::from_secs(300));
        let calls = Arc::new(AtomicUsize::new(0));
        let quick = Duration::from_millis(50);
        assert_eq!(cache.check("T1", "UA", lookup(&calls, quick, Ok(&["UA"]))).await, Membership::Member);
        assert_eq!(cache.check("T1", "UB", lookup(&calls, quick, Ok(&["UA"]))).await, Membership::NotMember);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "read once, then cached");
        // Another workspace has its own members.
        assert_eq!(cache.check("T2", "UA", lookup(&calls, quick, Ok(&["UB"]))).await, Membership::NotMember);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Past the TTL the old members answer at once while the new ones are read.
        tokio::time::advance(Duration::from_secs(301)).await;
        let started = Instant::now();
        let slow = Duration::from_secs(10);
        assert_eq!(cache.check("T1", "UA", lookup(&calls, slow, Ok(&["UB"]))).await, Membership::Member);
        assert_eq!(started.elapsed(), Duration::ZERO, "a stale answer does not wait for Slack");
        assert_eq!(cache.check("T1", "UA", lookup(&calls, slow, Ok(&["UB"]))).await, Membership::Member);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one refresh at a time");
        tokio::time::sleep(slow + Duration::from_secs(1)).await;
        assert_eq!(cache.check("T1", "UA", lookup(&calls, quick, Ok(&[]))).await, Membership::NotMember);
        assert_eq!(cache.check("T1", "UB", lookup(&calls, quick, Ok(&[]))).await, Membership::Member);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_lookup_is_waited_for_briefly_and_a_failure_is_remembered() {
        let cache = GroupCache::new(Duration::from_secs(300));
        let calls = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let hung = Duration::from_secs(3600);
        assert_eq!(cache.check("T1", "UA", lookup(&calls, hung, Ok(&["UA"]))).await, Membership::Unknown);
        let waited = started.elapsed();
        assert!(waited >= FIRST_LOOKUP_WAIT && waited < Duration::from_secs(3), "{waited:?}");

        // Slack fails: the old members are dropped, and Slack is not asked again for a while.
        let cache = GroupCache::new(Duration::from_secs(0));
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(cache.check("T1", "UA", lookup(&calls, Duration::ZERO, Ok(&["UA"]))).await, Membership::Member);
        // (TTL 0: every check refreshes; this one answers from the stale list, then fails.)
        assert_eq!(cache.check("T1", "UA", lookup(&calls, Duration::ZERO, Err(()))).await, Membership::Member);
        tokio::task::yield_now().await;
        for _ in 0..3 {
            assert_eq!(cache.check("T1", "UA", lookup(&calls, Duration::ZERO, Ok(&["UA"]))).await, Membership::Unknown);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "a failure is not retried on every event");
        tokio::time::advance(FAILURE_BACKOFF).await;
        assert_eq!(cache.check("T1", "UA", lookup(&calls, Duration::ZERO, Ok(&["UA"]))).await, Membership::Member);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
