//! The inbox proper: accepting customer messages durably and exactly once, and completing a
//! turn (message out of the queue, replies into the outbox) in one transaction.
//!
//! Adapters acknowledge a platform event only after `accept` returned, so everything `accept`
//! says yes to must already be on disk; and a platform that redelivers an event (retries,
//! replays after an outage) must not make the customer get two answers.

use super::keys;
use super::lanes::Wakeups;
use super::outbox::{from_json, to_json, OutboxEntry};
use super::{Admission, Clock, InboxOptions, QueueStats, SystemClock, TurnHandler};
use crate::channel::{AdapterError, Inbound, InboxSink, Outbound};
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sled::transaction::{abort, TransactionError, TransactionResult, Transactional};
use sled::IVec;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Expired records removed per transaction while purging.
const PURGE_CHUNK: usize = 256;

/// An accepted message as stored in its lane.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PendingRecord {
    pub accepted_at_ms: i64,
    pub message: Inbound,
    /// The rate limits' verdict taken on arrival (records written before verdicts existed
    /// read as `Unchecked`).
    #[serde(default)]
    pub admission: Admission,
}

/// The queues of a store and what wakes the worker. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Inbox {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub db: sled::Db,
    pub pending: sled::Tree,
    pub dedup: sled::Tree,
    pub outbox: sled::Tree,
    pub delivered: sled::Tree,
    pub dead_letter: sled::Tree,
    pub expiry: sled::Tree,
    pub options: InboxOptions,
    pub clock: Arc<dyn Clock>,
    /// The conversations that got a message since the worker last looked.
    pub pending_ready: Wakeups,
    /// The conversations that got replies to deliver.
    pub outbox_ready: Wakeups,
    /// Set while a worker runs on this inbox.
    pub worker_running: AtomicBool,
    /// One flush at a time (see [`Inbox::flush`]).
    pub flush_gate: tokio::sync::Mutex<()>,
    /// Flushes started and completed, numbered from 1 in order.
    pub flushes_started: AtomicU64,
    pub flushes_done: AtomicU64,
    /// The engine that takes each accepted message's rate limits ([`Inbox::admit_with`]).
    pub admitter: RwLock<Option<Arc<dyn TurnHandler>>>,
}

impl Inbox {
    /// Opens the inbox trees of `store`.
    pub fn open(store: &Store, options: InboxOptions) -> Result<Inbox, StoreError> {
        Inbox::open_with_clock(store, options, Arc::new(SystemClock))
    }

    /// Opens the inbox with another clock (tests of retention, replays).
    pub fn open_with_clock(store: &Store, options: InboxOptions, clock: Arc<dyn Clock>) -> Result<Inbox, StoreError> {
        let db = store.db().clone();
        let shared = Shared {
            pending: db.open_tree("inbox_pending")?,
            dedup: db.open_tree("inbox_dedup")?,
            outbox: db.open_tree("inbox_outbox")?,
            delivered: db.open_tree("inbox_delivered")?,
            dead_letter: db.open_tree("inbox_dead_letter")?,
            expiry: db.open_tree("inbox_expiry")?,
            db,
            options,
            clock,
            pending_ready: Wakeups::default(),
            outbox_ready: Wakeups::default(),
            worker_running: AtomicBool::new(false),
            flush_gate: tokio::sync::Mutex::new(()),
            flushes_started: AtomicU64::new(0),
            flushes_done: AtomicU64::new(0),
            admitter: RwLock::new(None),
        };
        Ok(Inbox { shared: Arc::new(shared) })
    }

    pub fn options(&self) -> &InboxOptions {
        &self.shared.options
    }

    /// Has `handler` take the rate limits of every message accepted from now on
    /// ([`TurnHandler::admit`]). The first handler attached stays: one inbox, one engine.
    pub fn admit_with(&self, handler: Arc<dyn TurnHandler>) {
        let mut admitter = self.shared.admitter.write().unwrap_or_else(PoisonError::into_inner);
        if admitter.is_none() {
            *admitter = Some(handler);
        }
    }

    fn admitter(&self) -> Option<Arc<dyn TurnHandler>> {
        self.shared.admitter.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Stores a message unless it is a duplicate, and returns only once it is on disk.
    async fn accept_durably(&self, message: Inbound) -> Result<bool, StoreError> {
        let s = &self.shared;
        let now = s.clock.now_ms();
        let dedup_key = keys::dedup(message.source, &message.workspace, &message.id);
        let expiry_key = keys::expiry(now, keys::EXPIRES_DEDUP, &dedup_key);
        let lane = keys::lane(message.source, &message.workspace, &message.conversation);
        // The limits are taken on arrival; a copy of a message already accepted takes nothing.
        // (Two copies racing each other may both take a share: the transaction below still
        // keeps only one.)
        let admission = match self.admitter() {
            Some(handler) if !s.dedup.contains_key(&dedup_key)? => handler.admit(&message).await,
            _ => Admission::Unchecked,
        };
        let value = to_json(&PendingRecord { accepted_at_ms: now, message, admission }, "pending message")?;
        let accepted = moved((&s.dedup, &s.pending, &s.expiry).transaction(|(dedup, pending, expiry)| {
            if dedup.get(&dedup_key)?.is_some() {
                return abort(());
            }
            // Drawn inside the transaction (which excludes every other write), so sequence
            // order is commit order and a conversation's lane is always in arrival order.
            let seq = pending.generate_id()?;
            dedup.insert(dedup_key.as_slice(), &now.to_be_bytes()[..])?;
            pending.insert(keys::in_lane(&lane, seq), value.as_slice())?;
            expiry.insert(expiry_key.as_slice(), &[] as &[u8])?;
            Ok(())
        }))?;
        // Flushed for duplicates too: the first copy may still be on its way to disk in a
        // concurrent call, and the adapter is about to acknowledge this one.
        self.flush().await?;
        if accepted {
            s.pending_ready.wake([lane]);
        }
        Ok(accepted)
    }

    /// Removes dedup and delivered records older than the retention (kept while
    /// `now_ms - accepted_at < dedup_retention`). Returns how many were removed.
    pub fn purge_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        let s = &self.shared;
        let retention_ms = i64::try_from(s.options.dedup_retention.as_millis()).unwrap_or(i64::MAX);
        let end = keys::expiry_bound(now_ms.saturating_sub(retention_ms));
        let mut purged = 0;
        loop {
            let batch = s
                .expiry
                .range(keys::first_lane()..end.clone())
                .take(PURGE_CHUNK)
                .map(|item| item.map(|(key, _)| key))
                .collect::<Result<Vec<IVec>, _>>()?;
            if batch.is_empty() {
                break;
            }
            moved((&s.expiry, &s.dedup, &s.delivered).transaction(|(expiry, dedup, delivered)| {
                for key in &batch {
                    expiry.remove(key)?;
                    match keys::parse_expiry(key) {
                        Some((keys::EXPIRES_DEDUP, target)) => {
                            dedup.remove(target)?;
                        }
                        Some((keys::EXPIRES_DELIVERED, target)) => {
                            delivered.remove(target)?;
                        }
                        _ => {}
                    }
                }
                Ok(())
            }))?;
            purged += batch.len();
        }
        if purged > 0 {
            tracing::info!(
                purged,
                retention_hours = s.options.dedup_retention.as_secs() / 3600,
                "purged expired dedup and delivered records (store.dedup_retention_hours)"
            );
        }
        Ok(purged)
    }

    /// What is waiting. Counts by reading the trees, so it is exact but not free: meant for
    /// `frontdesk doctor` and periodic metrics, not for every message.
    pub fn stats(&self) -> QueueStats {
        let s = &self.shared;
        QueueStats {
            pending_inbound: s.pending.len(),
            pending_outbound: s.outbox.len(),
            dead_letters: s.dead_letter.len(),
        }
    }

    /// Every accepted message not yet answered, conversation by conversation, in order.
    pub fn pending_messages(&self) -> Result<Vec<Inbound>, StoreError> {
        let mut out = Vec::new();
        for item in self.shared.pending.iter() {
            let (_, value) = item?;
            out.push(from_json::<PendingRecord>(&value, "pending message")?.message);
        }
        Ok(out)
    }

    /// Ends a turn: removes the message (`key` in the pending queue) and queues its replies,
    /// in one transaction, then flushes. Returns `false`, writing nothing, when the message was
    /// no longer pending (another worker finished it first).
    pub(super) async fn complete_turn(
        &self,
        key: &[u8],
        message: &Inbound,
        replies: &[Outbound],
    ) -> Result<bool, StoreError> {
        let s = &self.shared;
        let queued_at_ms = s.clock.now_ms();
        let mut entries = Vec::with_capacity(replies.len());
        for outbound in replies {
            let lane = keys::lane(outbound.source, &outbound.workspace, &outbound.conversation);
            let entry = OutboxEntry { outbound: outbound.clone(), in_reply_to: message.id.clone(), queued_at_ms };
            entries.push((lane, to_json(&entry, "outbox entry")?));
        }
        let done = moved((&s.pending, &s.outbox).transaction(|(pending, outbox)| {
            if pending.remove(key)?.is_none() {
                return abort(());
            }
            for (lane, value) in &entries {
                let seq = outbox.generate_id()?;
                outbox.insert(keys::in_lane(lane, seq), value.as_slice())?;
            }
            Ok(())
        }))?;
        // On disk before anything can deliver these replies: a delivered reply whose turn was
        // lost in a crash would be answered a second time, differently.
        self.flush().await?;
        if done && !entries.is_empty() {
            s.outbox_ready.wake(entries.into_iter().map(|(lane, _)| lane));
        }
        Ok(done)
    }

    /// Makes everything written before this call durable.
    ///
    /// sled's flush holds its process-wide concurrency lock while it waits for the log write, and
    /// that write runs on sled's own small thread pool. Many `flush_async` calls at once (one per
    /// accepted message, turn and delivery) can occupy every thread of that pool waiting for a
    /// write that then has no thread to run on, and a transaction waiting for the lock freezes
    /// everything else: we saw exactly this hang under load. So the flush runs on tokio's blocking
    /// pool, one at a time per inbox, and a caller whose writes a flush already covered (one that
    /// started after the caller's writes) returns without flushing again: under a burst, one
    /// disk sync serves many messages.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let s = &self.shared;
        // Any flush numbered above what has started so far begins after our writes.
        let needed = s.flushes_started.load(Ordering::SeqCst) + 1;
        let _gate = s.flush_gate.lock().await;
        if s.flushes_done.load(Ordering::SeqCst) >= needed {
            return Ok(());
        }
        let ticket = s.flushes_started.fetch_add(1, Ordering::SeqCst) + 1;
        let db = s.db.clone();
        let flushed = tokio::task::spawn_blocking(move || db.flush()).await.map_err(|e| {
            StoreError::Sled(sled::Error::Io(std::io::Error::other(format!("the flush task failed: {e}"))))
        })?;
        flushed?;
        s.flushes_done.store(ticket, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl InboxSink for Inbox {
    async fn accept(&self, message: Inbound) -> Result<bool, AdapterError> {
        self.accept_durably(message).await.map_err(|e| AdapterError::Inbox(e.to_string()))
    }
}

/// The oldest item of a lane.
pub(super) fn head(tree: &sled::Tree, lane: &[u8]) -> Result<Option<(IVec, IVec)>, StoreError> {
    Ok(tree.scan_prefix(lane).next().transpose()?)
}

/// Every lane with at least one item, one seek per lane.
pub(super) fn lanes(tree: &sled::Tree) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::new();
    let mut from = keys::first_lane();
    while let Some(item) = tree.range(from.as_slice()..).next() {
        let (key, _) = item?;
        match keys::lane_of(&key) {
            Some(lane) => {
                from = keys::after_lane(lane);
                out.push(lane.to_vec());
            }
            None => {
                // Not a queue key: step over it.
                from = key.to_vec();
                from.push(0);
            }
        }
    }
    Ok(out)
}

/// Our transactions abort only for "that record is gone": `Ok(true)` when the transaction was
/// applied, `Ok(false)` when it aborted, and the storage error otherwise.
pub(super) fn moved(result: TransactionResult<(), ()>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(TransactionError::Abort(())) => Ok(false),
        Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
    }
}
