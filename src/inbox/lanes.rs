//! Runs one task per conversation lane that has work, and never two for the same lane.
//!
//! Both the turn loop (pending messages) and the delivery loop (outbox) work this way: inside a
//! conversation strictly one item after another, so a customer's messages are answered in the
//! order they wrote them and replies arrive in the order they were written; across
//! conversations in parallel, so one slow conversation does not hold up the others.
//!
//! The queue is re-read when something is queued (a wake-up), when a lane task finishes, and
//! every `rescan_every` in case a wake-up was missed. A lane whose task failed (a storage error,
//! a panic) rests for `rescan_every` before it is tried again, so a persistent fault costs a log
//! line per period rather than a busy loop.

use super::keys;
use super::queue;
use std::collections::{HashMap, HashSet};
use std::future::Future;
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

/// Drives the lanes of `tree` until `shutdown`, then waits for the lane tasks to stop.
/// `start(lane)` makes the task for one lane; it must watch `shutdown` itself.
pub(super) async fn drive<F, Fut>(
    what: &'static str,
    tree: &sled::Tree,
    ready: &Notify,
    rescan_every: Duration,
    shutdown: &CancellationToken,
    mut start: F,
) where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: Future<Output = LaneEnd> + Send + 'static,
{
    let rescan_every = rescan_every.max(MIN_RESCAN);
    let mut lanes = Lanes::default();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let now = Instant::now();
        lanes.resting.retain(|_, until| *until > now);
        match queue::lanes(tree) {
            Ok(found) => {
                for lane in found {
                    if lanes.busy.contains(&lane) || lanes.resting.contains_key(&lane) {
                        continue;
                    }
                    let handle = lanes.tasks.spawn(start(lane.clone()));
                    lanes.by_task.insert(handle.id(), lane.clone());
                    lanes.busy.insert(lane);
                }
            }
            Err(error) => tracing::error!(queue = what, %error, "could not read the queue; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ready.notified() => {}
            Some(joined) = lanes.tasks.join_next_with_id() => lanes.settle(what, joined, rescan_every),
            _ = tokio::time::sleep(rescan_every) => {}
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
            if end == LaneEnd::Failed {
                self.resting.insert(lane, Instant::now() + rest);
            }
        }
    }
}
