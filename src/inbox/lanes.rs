//! Runs one task per conversation lane that has work, and never two for the same lane.
//!
//! Both the turn loop (pending messages) and the delivery loop (outbox) work this way: inside a
//! conversation strictly one item after another, so a customer's messages are answered in the
//! order they wrote them and replies arrive in the order they were written; across
//! conversations in parallel, so one slow conversation does not hold up the others.
//!
//! Whoever queues an item names its lane in a [`Wakeups`]; the driver starts a task for each lane
//! named (or marks a lane whose task is running to be looked at again when that task ends). So
//! the work per queued item does not depend on how many conversations are waiting: with
//! thousands of lanes queued, re-reading the whole queue on every wake-up would take a runtime
//! thread for itself and starve the turns. The whole queue is read once at the start (what a
//! previous run left) and then every `rescan_every`, in case a lane was missed (an item written
//! by another process on the same store, a task that failed). A lane whose task failed (a
//! storage error, a panic) rests for `rescan_every` before it is tried again, so a persistent
//! fault costs a log line per period rather than a busy loop.

use super::keys;
use super::queue;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a lane task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LaneEnd {
    /// The lane is empty.
    Drained,
    /// Something went wrong and was logged; try the lane again later.
    Failed,
    /// Shutdown was requested.
    Stopped,
}

/// The lowest rescan period, whatever the options say: a period of zero would spin.
const MIN_RESCAN: Duration = Duration::from_millis(10);

/// The lanes that got new items since the driver last looked, and what wakes it.
#[derive(Default)]
pub(super) struct Wakeups {
    lanes: Mutex<Vec<Vec<u8>>>,
    notify: Notify,
    /// Times the driver read the whole queue.
    pub(super) full_scans: std::sync::atomic::AtomicU64,
}

impl Wakeups {
    /// Tells the driver that `lanes` have new items (call after they are written).
    pub(super) fn wake<I: IntoIterator<Item = Vec<u8>>>(&self, lanes: I) {
        let mut named = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let before = named.len();
        named.extend(lanes);
        let woke = named.len() > before;
        drop(named);
        if woke {
            self.notify.notify_one();
        }
    }

    fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.lanes.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Drives the lanes of `tree` until `shutdown`, then waits for the lane tasks to stop.
/// `start(lane)` makes the task for one lane; it must watch `shutdown` itself.
pub(super) async fn drive<F, Fut>(
    what: &'static str,
    tree: &sled::Tree,
    wakeups: &Wakeups,
    rescan_every: Duration,
    shutdown: &CancellationToken,
    mut start: F,
) where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: Future<Output = LaneEnd> + Send + 'static,
{
    let rescan_every = rescan_every.max(MIN_RESCAN);
    let mut lanes = Lanes::default();
    // The first pass reads the whole queue.
    let mut next_rescan = Instant::now();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let now = Instant::now();
        // Lanes named since the last pass, lanes whose task ended after they were named again,
        // lanes done resting; and every lane of the queue when a rescan is due.
        let mut candidates = wakeups.take();
        candidates.append(&mut lanes.again);
        let rested: Vec<Vec<u8>> =
            lanes.resting.iter().filter(|(_, until)| **until <= now).map(|(lane, _)| lane.clone()).collect();
        for lane in &rested {
            lanes.resting.remove(lane);
        }
        candidates.extend(rested);
        if now >= next_rescan {
            next_rescan = now + rescan_every;
            wakeups.full_scans.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match queue::lanes(tree) {
                Ok(found) => candidates.extend(found),
                Err(error) => tracing::error!(queue = what, %error, "could not read the queue; retrying"),
            }
        }
        // A lane may be named more than once in a pass (woken and found by the rescan, several
        // replies queued at once): one task, started now, sees all of it.
        let mut started_now: HashSet<Vec<u8>> = HashSet::new();
        for lane in candidates {
            if started_now.contains(&lane) {
                continue;
            }
            if lanes.busy.contains(&lane) {
                // Its task may already have looked past the new item: look again when it ends.
                lanes.named_while_busy.insert(lane);
                continue;
            }
            if lanes.resting.contains_key(&lane) {
                continue;
            }
            let handle = lanes.tasks.spawn(start(lane.clone()));
            lanes.by_task.insert(handle.id(), lane.clone());
            lanes.busy.insert(lane.clone());
            started_now.insert(lane);
        }
        let wake_at = lanes.resting.values().copied().chain([next_rescan]).min().unwrap_or(next_rescan);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wakeups.notify.notified() => {}
            Some(joined) = lanes.tasks.join_next_with_id() => lanes.settle(what, joined, rescan_every),
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }
    while let Some(joined) = lanes.tasks.join_next_with_id().await {
        lanes.settle(what, joined, rescan_every);
    }
}

#[derive(Default)]
struct Lanes {
    tasks: JoinSet<LaneEnd>,
    by_task: HashMap<Id, Vec<u8>>,
    busy: HashSet<Vec<u8>>,
    resting: HashMap<Vec<u8>, Instant>,
    /// Lanes named by a wake-up while their task ran.
    named_while_busy: HashSet<Vec<u8>>,
    /// Lanes to start again at the next pass (their task ended after they were named).
    again: Vec<Vec<u8>>,
}

impl Lanes {
    fn settle(&mut self, what: &'static str, joined: Result<(Id, LaneEnd), JoinError>, rest: Duration) {
        let (id, end) = match joined {
            Ok((id, end)) => (id, end),
            Err(error) => {
                let id = error.id();
                let lane = self.by_task.get(&id).map(|l| keys::lane_label(l)).unwrap_or_default();
                if error.is_panic() {
                    tracing::error!(queue = what, lane, "a conversation's task panicked; it will be retried");
                }
                (id, LaneEnd::Failed)
            }
        };
        if let Some(lane) = self.by_task.remove(&id) {
            self.busy.remove(&lane);
            let named = self.named_while_busy.remove(&lane);
            if end == LaneEnd::Failed {
                self.resting.insert(lane, Instant::now() + rest);
            } else if named && end == LaneEnd::Drained {
                self.again.push(lane);
            }
        }
    }
}
