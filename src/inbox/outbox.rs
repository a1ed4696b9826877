//! The outbox side of the inbox: replies waiting to be delivered, the record of what was
//! delivered, and the dead letters a person has to look at.
//!
//! Each state change is one sled transaction followed by a flush, so a reply is always in
//! exactly one place (outbox, delivered or dead letter) and a restart resumes where it stopped.

use super::keys;
use super::queue::{moved, Inbox};
use crate::channel::{AdapterError, ChannelId, ConversationKey, Delivered, EventId, Outbound, Source, WorkspaceId};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use sled::transaction::{abort, Transactional};

/// A reply waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub outbound: Outbound,
    /// The event id of the customer message this answers.
    pub in_reply_to: EventId,
    /// Unix ms at which the reply was queued.
    pub queued_at_ms: i64,
}

/// What the platform said about a delivered reply. Kept for the retention period, for traces
/// and for follow-ups that need the platform's message id (editing or deleting the message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredRecord {
    pub outbound_id: String,
    pub platform_message_id: Option<String>,
    /// Unix ms at which the platform accepted the reply.
    pub delivered_at_ms: i64,
    pub source: Source,
    pub workspace: WorkspaceId,
    pub channel: ChannelId,
    pub conversation: ConversationKey,
    pub in_reply_to: EventId,
}

/// Something that will not be retried and needs a person: shown by `frontdesk doctor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Increases with each dead letter.
    pub seq: u64,
    pub item: DeadItem,
    /// Why it was given up, in the platform's or the store's words.
    pub error: String,
    /// Unix ms at which it was given up.
    pub failed_at_ms: i64,
}

/// What a dead letter holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeadItem {
    /// A reply the platform refused.
    Reply { outbound: Box<OutboxEntry> },
    /// A stored record that could not be read back (kept byte for byte rather than dropped).
    Unreadable { queue: String, raw: String },
}

impl Inbox {
    /// Marks the head of an outbox lane delivered, atomically. Returns `false` when the entry
    /// was no longer in the outbox (nothing is written then).
    pub(super) async fn record_delivered(
        &self,
        key: &[u8],
        entry: &OutboxEntry,
        delivered: Delivered,
    ) -> Result<bool, StoreError> {
        let s = &self.shared;
        let now = s.clock.now_ms();
        let record = DeliveredRecord {
            outbound_id: entry.outbound.id.clone(),
            platform_message_id: delivered.platform_message_id,
            delivered_at_ms: now,
            source: entry.outbound.source,
            workspace: entry.outbound.workspace.clone(),
            channel: entry.outbound.channel.clone(),
            conversation: entry.outbound.conversation.clone(),
            in_reply_to: entry.in_reply_to.clone(),
        };
        let value = to_json(&record, "delivered record")?;
        let record_key = keys::delivered(&record.outbound_id);
        let expiry_key = keys::expiry(now, keys::EXPIRES_DELIVERED, &record_key);
        let done = moved((&s.outbox, &s.delivered, &s.expiry).transaction(|(outbox, delivered, expiry)| {
            if outbox.remove(key)?.is_none() {
                return abort(());
            }
            delivered.insert(record_key.as_slice(), value.as_slice())?;
            expiry.insert(expiry_key.as_slice(), &[] as &[u8])?;
            Ok(())
        }))?;
        self.flush().await?;
        Ok(done)
    }

    /// Moves the head of an outbox lane to the dead letters, atomically, and logs it once.
    pub(super) async fn record_dead_reply(
        &self,
        key: &[u8],
        entry: &OutboxEntry,
        error: &AdapterError,
    ) -> Result<bool, StoreError> {
        let item = DeadItem::Reply { outbound: Box::new(entry.clone()) };
        let moved = self.dead_letter(&self.shared.outbox, key, item, error.to_string())?;
        self.flush().await?;
        if moved {
            tracing::error!(
                outbound_id = %entry.outbound.id,
                in_reply_to = %entry.in_reply_to,
                source = keys::source_name(entry.outbound.source),
                workspace = %entry.outbound.workspace,
                conversation = %entry.outbound.conversation,
                error = %error,
                "a reply was refused by the platform and moved to the dead letters (see frontdesk doctor)"
            );
        }
        Ok(moved)
    }

    /// Moves a record that cannot be read back from `queue` to the dead letters, and logs it.
    pub(super) async fn record_unreadable(
        &self,
        queue: &sled::Tree,
        queue_name: &str,
        key: &[u8],
        raw: &[u8],
        error: String,
    ) -> Result<bool, StoreError> {
        let item =
            DeadItem::Unreadable { queue: queue_name.to_string(), raw: String::from_utf8_lossy(raw).into_owned() };
        let moved = self.dead_letter(queue, key, item, error.clone())?;
        self.flush().await?;
        if moved {
            tracing::error!(
                queue = queue_name,
                lane = %keys::lane_of(key).map(keys::lane_label).unwrap_or_default(),
                error = %error,
                "a queued record could not be read and was moved to the dead letters (see frontdesk doctor)"
            );
        }
        Ok(moved)
    }

    fn dead_letter(&self, queue: &sled::Tree, key: &[u8], item: DeadItem, error: String) -> Result<bool, StoreError> {
        let s = &self.shared;
        let seq = s.db.generate_id()?;
        let letter = DeadLetter { seq, item, error, failed_at_ms: s.clock.now_ms() };
        let value = to_json(&letter, "dead letter")?;
        let letter_key = keys::dead_letter(seq);
        moved((queue, &s.dead_letter).transaction(|(queue, dead)| {
            if queue.remove(key)?.is_none() {
                return abort(());
            }
            dead.insert(letter_key.as_slice(), value.as_slice())?;
            Ok(())
        }))
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut out = Vec::new();
        for item in self.shared.dead_letter.iter() {
            let (key, value) = item?;
            let letter = serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                what: format!("dead letter {:?}", keys::dead_letter_seq(&key)),
                message: e.to_string(),
            })?;
            out.push(letter);
        }
        Ok(out)
    }

    /// The delivered record of a reply, while it is kept.
    pub fn delivered(&self, outbound_id: &str) -> Result<Option<DeliveredRecord>, StoreError> {
        match self.shared.delivered.get(keys::delivered(outbound_id))? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt {
                what: format!("delivered record {outbound_id}"),
                message: e.to_string(),
            }),
            None => Ok(None),
        }
    }

    /// Every reply waiting in the outbox, conversation by conversation, in delivery order.
    pub fn outbox_entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.shared.outbox.iter() {
            let (_, value) = item?;
            out.push(from_json(&value, "outbox entry")?);
        }
        Ok(out)
    }
}

pub(super) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt { what: what.to_string(), message: e.to_string() })
}

pub(super) fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { what: what.to_string(), message: e.to_string() })
}
