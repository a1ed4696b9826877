//! The worker: answers pending messages through the engine and delivers the replies.
//!
//! Three loops run side by side until shutdown: turns (pending messages → replies in the
//! outbox), deliveries (outbox → the platforms) and housekeeping (purging expired dedup and
//! delivered records). Everything they need to resume is in the store, so a restarted worker
//! simply picks up every pending message and every undelivered reply.

use super::keys;
use super::lanes::{self, LaneEnd};
use super::outbox::{from_json, OutboxEntry};
use super::queue::{self, Inbox, PendingRecord};
use super::retry::{jitter, retry_delay};
use super::{Deliverer, TurnHandler};
use crate::fair::FairSlots;
use crate::ratelimit::Admission;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a delivery already sent to the platform may still finish after shutdown was asked.
/// Recording it spares the customer a repeat of that reply after the restart.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// Answers and delivers everything in an [`Inbox`].
pub struct Worker {
    inbox: Inbox,
    handler: Arc<dyn TurnHandler>,
    deliverer: Arc<dyn Deliverer>,
}

impl Worker {
    /// A worker for `inbox`. `handler` is attached to the inbox at once
    /// ([`Inbox::admit_with`]): from now on it takes each accepted message's rate limits.
    pub fn new(inbox: Inbox, handler: Arc<dyn TurnHandler>, deliverer: Arc<dyn Deliverer>) -> Worker {
        inbox.admit_with(Arc::clone(&handler));
        Worker { inbox, handler, deliverer }
    }

    /// Works until `shutdown` is cancelled. Turns in progress are abandoned at once (their
    /// messages stay pending and are handled again at the next start); deliveries in progress
    /// get a short grace period to finish. Refuses to run (logs and returns) if another worker
    /// already runs on the same inbox.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = Arc::clone(&self.inbox.shared);
        if shared.worker_running.swap(true, Ordering::SeqCst) {
            tracing::error!("a worker is already running on this inbox; not starting a second one");
            return;
        }
        let options = shared.options.clone();
        tracing::info!(
            pending_inbound = shared.pending.len(),
            pending_outbound = shared.outbox.len(),
            max_parallel = options.max_parallel,
            "inbox worker started"
        );

        let turn_slots = FairSlots::with_reserve(options.max_parallel);
        let turns =
            lanes::drive("pending", &shared.pending, &shared.pending_ready, options.rescan_every, &shutdown, |lane| {
                let turn = Turns {
                    inbox: self.inbox.clone(),
                    handler: Arc::clone(&self.handler),
                    deliverer: Arc::clone(&self.deliverer),
                    slots: Arc::clone(&turn_slots),
                    shutdown: shutdown.clone(),
                };
                turn.run_lane(lane)
            });

        let delivery_permits = Arc::new(Semaphore::new(options.max_parallel_deliveries.max(1)));
        let deliveries =
            lanes::drive("outbox", &shared.outbox, &shared.outbox_ready, options.rescan_every, &shutdown, |lane| {
                let delivery = Deliveries {
                    inbox: self.inbox.clone(),
                    deliverer: Arc::clone(&self.deliverer),
                    permits: Arc::clone(&delivery_permits),
                    shutdown: shutdown.clone(),
                };
                delivery.run_lane(lane)
            });

        tokio::join!(turns, deliveries, housekeeping(&self.inbox, &shutdown));
        if let Err(error) = self.inbox.flush().await {
            tracing::warn!(%error, "could not flush the inbox at shutdown");
        }
        shared.worker_running.store(false, Ordering::SeqCst);
        tracing::info!("inbox worker stopped");
    }
}

/// Purges expired records now and then every `rescan_every`.
async fn housekeeping(inbox: &Inbox, shutdown: &CancellationToken) {
    let every = inbox.options().rescan_every.max(Duration::from_secs(1));
    loop {
        if let Err(error) = inbox.purge_expired(inbox.shared.clock.now_ms()) {
            tracing::warn!(%error, "could not purge expired dedup records; will retry");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn permit(permits: &Arc<Semaphore>, shutdown: &CancellationToken) -> Option<OwnedSemaphorePermit> {
    tokio::select! {
        permit = Arc::clone(permits).acquire_owned() => permit.ok(),
        _ = shutdown.cancelled() => None,
    }
}

/// Handles the messages of one conversation, oldest first.
struct Turns {
    inbox: Inbox,
    handler: Arc<dyn TurnHandler>,
    deliverer: Arc<dyn Deliverer>,
    slots: Arc<FairSlots>,
    shutdown: CancellationToken,
}

/// What happened to the head of a lane.
enum Step {
    /// It was dealt with; look at the next one.
    Next,
    /// The lane is empty.
    Empty,
    Failed,
    Stopped,
}

impl Turns {
    async fn run_lane(self, lane: Vec<u8>) -> LaneEnd {
        let workspace = keys::workspace_of(&lane).to_vec();
        loop {
            // One slot per turn, not per lane, so a busy conversation takes its turn with the
            // others (and a busy workspace with the other workspaces) instead of holding a slot.
            let _slot = tokio::select! {
                slot = self.slots.acquire(&workspace) => slot,
                _ = self.shutdown.cancelled() => return LaneEnd::Stopped,
            };
            match self.next_turn(&lane).await {
                Step::Next => {}
                Step::Empty => return LaneEnd::Drained,
                Step::Failed => return LaneEnd::Failed,
                Step::Stopped => return LaneEnd::Stopped,
            }
        }
    }

    /// Handles the oldest pending message of the lane.
    async fn next_turn(&self, lane: &[u8]) -> Step {
        let shared = &self.inbox.shared;
        let (key, value) = match queue::head(&shared.pending, lane) {
            Ok(Some(head)) => head,
            Ok(None) => return Step::Empty,
            Err(error) => {
                tracing::error!(lane = %keys::lane_label(lane), %error, "could not read a pending message");
                return Step::Failed;
            }
        };
        let record: PendingRecord = match from_json(&value, "pending message") {
            Ok(record) => record,
            Err(error) => {
                let moved =
                    self.inbox.record_unreadable(&shared.pending, "pending", &key, &value, error.to_string()).await;
                return if moved.is_ok() { Step::Next } else { Step::Failed };
            }
        };
        // Everything logged from here on, by the worker and by the engine, carries the
        // message's workspace, conversation and id, and the turn's trace id.
        let span = crate::trace::turn_span(&record.message);
        self.take_turn(&key, &record).instrument(span).await
    }

    /// Hands the message to the engine, shows the working sign meanwhile, and records the
    /// replies with the message's completion.
    async fn take_turn(&self, key: &[u8], record: &PendingRecord) -> Step {
        let message = &record.message;
        let clock = &self.inbox.shared.clock;
        let started_ms = clock.now_ms();
        // Decided before anything is shown: a customer whose thread a person owns must not see
        // the bot "looking" at a message it will not answer. A message over a rate limit gets
        // its notice (or nothing) at once, so it gets no sign either: under a flood that would
        // be two more platform calls per message.
        let working = !matches!(record.admission, Admission::Limited { .. }) && self.handler.works_on(message).await;
        if working {
            self.deliverer.working(message, true).await;
        }
        let replies = tokio::select! {
            replies = self.handler.handle(message, record.admission) => replies,
            _ = self.shutdown.cancelled() => return Step::Stopped,
        };
        let completed = self.inbox.complete_turn(key, message, &replies).await;
        if working {
            self.deliverer.working(message, false).await;
        }
        match completed {
            Ok(true) => {
                // Where a message's time goes, for tuning under load: waiting for a turn slot,
                // then the turn (engine and recording).
                tracing::debug!(
                    event = %message.id,
                    replies = replies.len(),
                    waited_ms = started_ms.saturating_sub(record.accepted_at_ms),
                    turn_ms = clock.now_ms().saturating_sub(started_ms),
                    "turn completed"
                );
                Step::Next
            }
            Ok(false) => {
                tracing::warn!(event = %message.id, "the message was already answered elsewhere; replies dropped");
                Step::Next
            }
            Err(error) => {
                // Either the transaction did not happen (the message is still pending and is handled
                // again) or only the flush failed (the next flush, before any delivery, retries it).
                tracing::error!(event = %message.id, %error, "could not record a turn; it will be retried");
                Step::Failed
            }
        }
    }
}

/// Delivers the replies of one conversation, oldest first, each until it is delivered or
/// refused.
struct Deliveries {
    inbox: Inbox,
    deliverer: Arc<dyn Deliverer>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl Deliveries {
    async fn run_lane(self, lane: Vec<u8>) -> LaneEnd {
        let shared = Arc::clone(&self.inbox.shared);
        let options = &shared.options;
        // Failed attempts at the current head of the lane.
        let mut attempt: u32 = 0;
        let mut head_key: Option<sled::IVec> = None;
        loop {
            if self.shutdown.is_cancelled() {
                return LaneEnd::Stopped;
            }
            let (key, value) = match queue::head(&shared.outbox, &lane) {
                Ok(Some(head)) => head,
                Ok(None) => return LaneEnd::Drained,
                Err(error) => {
                    tracing::error!(lane = %keys::lane_label(&lane), %error, "could not read the outbox");
                    return LaneEnd::Failed;
                }
            };
            if head_key.as_ref() != Some(&key) {
                attempt = 0;
                head_key = Some(key.clone());
            }
            let entry: OutboxEntry = match from_json(&value, "outbox entry") {
                Ok(entry) => entry,
                Err(error) => {
                    let moved =
                        self.inbox.record_unreadable(&shared.outbox, "outbox", &key, &value, error.to_string()).await;
                    if moved.is_err() {
                        return LaneEnd::Failed;
                    }
                    continue;
                }
            };

            let Some(permit) = permit(&self.permits, &self.shutdown).await else {
                return LaneEnd::Stopped;
            };
            // The turn that queued this reply must be on disk before the customer can see the
            // reply; usually it already is and this returns at once.
            if let Err(error) = self.inbox.flush().await {
                tracing::error!(%error, "could not flush the outbox before a delivery");
                return LaneEnd::Failed;
            }
            let cut_off = async {
                self.shutdown.cancelled().await;
                tokio::time::sleep(DELIVERY_GRACE).await;
            };
            let result = tokio::select! {
                result = self.deliverer.deliver(&entry.outbound) => result,
                _ = cut_off => {
                    tracing::warn!(outbound_id = %entry.outbound.id, "shutdown interrupted a delivery; it will be sent again at the next start");
                    return LaneEnd::Stopped;
                }
            };
            let outcome = match result {
                Ok(delivered) => {
                    let recorded = self.inbox.record_delivered(&key, &entry, delivered).await;
                    tracing::debug!(
                        outbound_id = %entry.outbound.id,
                        workspace = %entry.outbound.workspace,
                        in_reply_to = %entry.in_reply_to,
                        queued_ms = shared.clock.now_ms().saturating_sub(entry.queued_at_ms),
                        "reply delivered"
                    );
                    recorded.map(|_| None)
                }
                Err(error) if error.retryable() => Ok(Some(error)),
                Err(error) => self.inbox.record_dead_reply(&key, &entry, &error).await.map(|_| None),
            };
            drop(permit);
            match outcome {
                Ok(None) => {}
                Ok(Some(error)) => {
                    let wait = retry_delay(&error, attempt, options.retry_base, options.retry_max, jitter());
                    if attempt.is_multiple_of(10) {
                        tracing::warn!(outbound_id = %entry.outbound.id, attempt = attempt + 1, retry_in_ms = wait.as_millis() as u64, %error, "delivery failed; will retry");
                    } else {
                        tracing::debug!(outbound_id = %entry.outbound.id, attempt = attempt + 1, retry_in_ms = wait.as_millis() as u64, %error, "delivery failed; will retry");
                    }
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.shutdown.cancelled() => return LaneEnd::Stopped,
                    }
                }
                Err(error) => {
                    tracing::error!(outbound_id = %entry.outbound.id, %error, "could not record a delivery; it will be retried");
                    return LaneEnd::Failed;
                }
            }
        }
    }
}
