//! The durable inbox, the turn worker and the outbox: how a customer's message becomes exactly
//! one reply, whatever crashes in between.
//!
//! # Flow
//! 1. An adapter hands a normalised [`Inbound`] to [`Inbox`] (it implements
//!    [`InboxSink`](crate::channel::InboxSink)). `accept` drops duplicates (same source,
//!    workspace and platform event id), stores the message in its conversation's lane with a
//!    global sequence number, and flushes to disk **before** it returns, so the adapter may
//!    acknowledge the platform afterwards without risking the message.
//!    When an engine is attached (a [`Worker`] attaches its [`TurnHandler`]), the message's
//!    share of the workspace's and the sender's rate limits is taken there and then
//!    ([`TurnHandler::admit`]) and stored with it: limits count messages as customers send
//!    them, not as turns come round, and a limited message still gets its turn (the limit
//!    notice), never silence.
//! 2. The [`Worker`] takes the oldest pending message of each conversation, up to
//!    [`InboxOptions::max_parallel`] turns at once, and asks the [`TurnHandler`] (the
//!    engine) for the replies. Messages of one conversation are handled one after another, in
//!    the order they arrived. Turn slots are shared fairly: a freed slot goes to the next
//!    waiting workspace in turn, then to that workspace's longest-waiting conversation, and
//!    the last free slot is kept for a workspace with no turn running (see `crate::fair`), so
//!    a workspace with a flood of conversations cannot hold up another. The embeddings inside
//!    the turns take the CPU in turn by workspace as well (`embed::fair`).
//! 3. One sled transaction removes the message from the pending queue and puts its replies in the
//!    outbox. A crash before that transaction leaves the message pending: it is handled again
//!    after the restart, and since the first attempt's replies never became visible, the
//!    customer still gets exactly one answer. A crash after it loses nothing either.
//! 4. The delivery loop sends each conversation's replies in order through the [`Deliverer`]
//!    (the adapters). Retryable failures (the platform is down or rate limiting us) are tried
//!    again with exponential backoff and jitter, honouring the platform's `retry_after`, until
//!    they go through; they stay in the outbox across restarts. Failures that cannot succeed
//!    (the platform rejected the message) move the reply to the dead-letter tree with the error,
//!    where `frontdesk doctor` shows them ([`Inbox::dead_letters`]). A delivered reply leaves a
//!    delivered record (platform message id and time) for traces and follow-ups such as editing
//!    the message.
//!
//! # The one duplicate we cannot avoid
//! No accepted message is ever lost and every message gets exactly one reply, with one
//! exception: if the process dies after the platform accepted a delivery but before the outbox
//! recorded it as delivered, that reply is sent again after the restart. At most one reply per
//! delivery in flight at the moment of the crash is repeated (so at most
//! [`InboxOptions::max_parallel_deliveries`] per crash), and never a later reply of the same
//! conversation, because the next reply of a conversation is only sent once the previous one
//! is recorded. [`Outbound::id`](crate::channel::Outbound) stays the same for the repeated
//! delivery, so adapters whose platform takes an idempotency key pass it and the platform drops
//! the repeat. A delivery still unanswered 10 seconds after shutdown was requested is abandoned
//! and falls in the same window.
//!
//! Duplicates of *incoming* events are dropped as long as their dedup record lives
//! ([`InboxOptions::dedup_retention`], 48 hours by default), even after the message was answered.
//!
//! # Storage (sled trees, keys prefixed `v1/`; see `keys.rs`)
//! - `inbox_pending`: `{source}\0{workspace}\0{conversation}\0{seq:016x}` → the accepted message
//!   (JSON). One prefix per conversation: its lane.
//! - `inbox_dedup`: `{source}\0{workspace}\0{event id}` → accepted-at (Unix ms, big-endian).
//! - `inbox_outbox`: the reply's own lane (`{source}\0{workspace}\0{conversation}\0{seq:016x}`)
//!   → [`OutboxEntry`] (JSON).
//! - `inbox_delivered`: `{outbound id}` → [`DeliveredRecord`] (JSON).
//! - `inbox_dead_letter`: `{seq:016x}` → [`DeadLetter`] (JSON).
//! - `inbox_expiry`: `{time: u64 big-endian}{kind}{record key}` → empty; the index that lets
//!   [`Inbox::purge_expired`] find dedup and delivered records older than the retention
//!   without reading the others.
//!
//! Run one [`Worker`] per store: a second one on the same [`Inbox`] refuses to start.

mod keys;
mod lanes;
mod outbox;
mod queue;
mod retry;
mod worker;

pub use outbox::{DeadItem, DeadLetter, DeliveredRecord, OutboxEntry};
pub use queue::Inbox;
pub use worker::Worker;

pub use crate::ratelimit::Admission;

use crate::channel::{AdapterError, Delivered, Inbound, Outbound};
use async_trait::async_trait;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The engine's side of a turn: the replies to one message. It never fails: the engine turns its
/// own errors into an escalation message. It may run more than once for the same message (after
/// a crash or a shutdown mid-turn), and only the replies of the run that completes are sent.
/// Nothing of a turn is shown to the customer before it completes (only the adapter's
/// [`working`](Deliverer::working) sign, and only on messages the handler
/// [`works_on`](TurnHandler::works_on)): an answer goes out whole, once it has been checked.
#[async_trait]
pub trait TurnHandler: Send + Sync {
    /// The replies to `message`. `admission` is the rate limits' verdict taken when the message
    /// was accepted ([`admit`](TurnHandler::admit)); `Unchecked` leaves them to the turn.
    async fn handle(&self, message: &Inbound, admission: Admission) -> Vec<Outbound>;

    /// Takes `message`'s share of the rate limits as the inbox accepts it (before it waits for
    /// a turn), so limits count messages as customers send them. Called once per message that
    /// is not a duplicate, when the handler is attached to the inbox (a [`Worker`] attaches
    /// its handler when it is built). Default: `Unchecked`.
    async fn admit(&self, message: &Inbound) -> Admission {
        let _ = message;
        Admission::Unchecked
    }

    /// Whether the turn on `message` will work on an answer, asked before the turn so that the
    /// customer is shown the working sign only then: never on a message the bot stays silent
    /// on (a thread a person owns, an agent's or a bot's message, one not addressed to the bot)
    /// or on a button press. Default: yes.
    async fn works_on(&self, message: &Inbound) -> bool {
        let _ = message;
        true
    }
}

/// Sends one reply through the adapter of its source.
#[async_trait]
pub trait Deliverer: Send + Sync {
    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError>;

    /// The worker started (`busy = true`) or finished working on `message`; see
    /// [`ChannelAdapter::working`](crate::channel::ChannelAdapter::working). Best effort.
    async fn working(&self, message: &Inbound, busy: bool) {
        let _ = (message, busy);
    }
}

/// The time, as Unix milliseconds. Replaceable so retention can be tested without waiting days.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }
}

/// How the inbox and its worker behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxOptions {
    /// Turns handled at the same time (each of a different conversation), shared fairly
    /// between workspaces; one of them is kept for a workspace with no turn running.
    pub max_parallel: usize,
    /// Conversations whose replies are being delivered at the same time. Each delivery in flight
    /// is one reply that a crash may send twice (see the module docs).
    pub max_parallel_deliveries: usize,
    /// How long dedup records (and delivered records) are kept. Platforms redeliver events for
    /// hours at most; 48 hours leaves a wide margin.
    pub dedup_retention: Duration,
    /// The first retry delay of a failed delivery; it doubles with each attempt.
    pub retry_base: Duration,
    /// The longest retry delay (a platform's own `retry_after` may be longer and is honoured).
    pub retry_max: Duration,
    /// How often the queues are re-read even without a wake-up, and expired records purged.
    pub rescan_every: Duration,
}

impl Default for InboxOptions {
    fn default() -> Self {
        InboxOptions {
            max_parallel: 8,
            max_parallel_deliveries: 8,
            dedup_retention: Duration::from_secs(48 * 60 * 60),
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(5 * 60),
            rescan_every: Duration::from_secs(30),
        }
    }
}

/// What is waiting, for `frontdesk doctor` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Accepted messages not yet answered.
    pub pending_inbound: usize,
    /// Replies not yet delivered (including those waiting to be retried).
    pub pending_outbound: usize,
    /// Replies (or unreadable records) that will not be retried.
    pub dead_letters: usize,
}

#[cfg(test)]
mod tests;
