//! What the adapter keeps in its sled tree. Keys (all UTF-8, prefixed by kind):
//!
//! - `imap/{folder}/validity` → UIDVALIDITY (u32 big-endian), `imap/{folder}/last` → the last UID
//!   whose message is safely handled (u32 big-endian).
//! - `mid/{message id}` → the conversation key of every Message-ID seen in or sent to a thread
//!   (customers', agents' and our own), so a reply to any of them lands in the same conversation.
//! - `thread/{conversation}` → [`ThreadRecord`] (JSON): subject, customer, Message-IDs and the
//!   messages, for References and for forwarding the thread to the agents.
//! - Mail over the sender's rate limit, kept for a person (see [`HeldLimits`] for how long and
//!   how much), under `{at}` = `{received ms:016x}/{id}` (`id`: the Message-ID, or its hash when
//!   long), so that a scan finds the oldest first:
//!   - `hold/{at}` → what a person needs to see of it (JSON: sender, subject, reason, size);
//!   - `hold-raw/{at}` → the message as received (its raw MIME bytes);
//!   - `hold-id/{id}` → `{at}`: whether a Message-ID is held, in one lookup.
//! - `held/{received ms:016x}/{message id}` → [`HeldMessage`] (JSON, the raw MIME as a number
//!   array): how earlier versions kept held mail; moved to `hold/` when the store is opened.
//! - `rate/{sender}` → the times (Unix ms) of the sender's recent messages (JSON).
//! - `agent/{address}` → empty: addresses conversations were forwarded to (they are agents).
//! - `secret/message-ids` → 64 random bytes made at the first start: the key that signs our
//!   Message-IDs, so nobody else can make one or guess one.

use serde::{Deserialize, Serialize};

/// One message of a thread, as shown to agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadEntry {
    pub from: String,
    pub at_ms: i64,
    pub text: String,
    /// The mail's `Reply-To` when it named another address than `from`: never written to, shown
    /// to the agents so that a person can decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_reply_to: Option<String>,
}

/// What the adapter knows of a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRecord {
    pub subject: String,
    pub customer: String,
    pub customer_name: Option<String>,
    /// Every Message-ID of the thread, oldest first.
    pub message_ids: Vec<String>,
    /// The messages, oldest first (at most [`MAX_ENTRIES`]).
    pub entries: Vec<ThreadEntry>,
}

/// A message not answered because its sender went over the rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMessage {
    pub message_id: String,
    pub from: String,
    pub subject: String,
    pub received_at_ms: i64,
    pub reason: String,
    /// The message as received.
    pub raw: Vec<u8>,
}

/// What is kept of a held message besides its raw MIME (stored apart, as bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HeldMeta {
    message_id: String,
    from: String,
    subject: String,
    received_at_ms: i64,
    reason: String,
    size_bytes: u64,
}

/// How much held mail is kept. Past these limits the oldest is purged first, and the log says
/// which message went and why. Mail read over IMAP stays in the folder (flagged
/// `$FrontdeskHeld`) whatever is purged here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLimits {
    /// Held mail older than this is purged (by the adapter's periodic purge).
    pub max_age_ms: i64,
    /// At most this many messages are kept.
    pub max_count: usize,
    /// At most this many bytes of raw MIME are kept, in all. The newest message is kept even when
    /// it alone is larger.
    pub max_bytes: u64,
}

impl Default for HeldLimits {
    fn default() -> Self {
        HeldLimits { max_age_ms: 30 * 24 * 3_600_000, max_count: 1000, max_bytes: 256 * 1024 * 1024 }
    }
}

/// How much held mail is stored, known once counted.
#[derive(Debug, Default)]
struct HeldTotals {
    counted: bool,
    count: usize,
    bytes: u64,
}

/// Why a held message was purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purge {
    Age,
    Count,
    Bytes,
}

const HOLD: &str = "hold/";
const HOLD_RAW: &str = "hold-raw/";
const HOLD_ID: &str = "hold-id/";
const LEGACY_HELD: &str = "held/";

const MAX_ENTRIES: usize = 50;
const MAX_ENTRY_CHARS: usize = 8000;
const MAX_IDS: usize = 200;

/// Sled-backed state; every write is flushed before the call returns.
#[derive(Clone)]
pub struct State {
    tree: sled::Tree,
    held_limits: HeldLimits,
    /// Also serialises every change to held mail (holding, purging).
    held_totals: std::sync::Arc<std::sync::Mutex<HeldTotals>>,
}

fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn read_u32(v: Option<sled::IVec>) -> Option<u32> {
    v.and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok()).map(u32::from_be_bytes)
}

impl State {
    pub fn new(tree: sled::Tree) -> State {
        State::with_limits(tree, HeldLimits::default())
    }

    pub fn with_limits(tree: sled::Tree, held_limits: HeldLimits) -> State {
        State { tree, held_limits, held_totals: Default::default() }
    }

    fn flush(&self) -> Result<(), sled::Error> {
        self.tree.flush().map(|_| ())
    }

    /// (UIDVALIDITY, last handled UID) of a folder.
    pub fn imap_position(&self, folder: &str) -> Result<Option<(u32, u32)>, sled::Error> {
        let validity = read_u32(self.tree.get(format!("imap/{folder}/validity"))?);
        let last = read_u32(self.tree.get(format!("imap/{folder}/last"))?).unwrap_or(0);
        Ok(validity.map(|v| (v, last)))
    }

    pub fn set_imap_position(&self, folder: &str, validity: u32, last: u32) -> Result<(), sled::Error> {
        let mut batch = sled::Batch::default();
        batch.insert(format!("imap/{folder}/validity").as_bytes(), &be(validity));
        batch.insert(format!("imap/{folder}/last").as_bytes(), &be(last));
        self.tree.apply_batch(batch)?;
        self.flush()
    }

    /// The install's key for our Message-IDs, made (from the system's randomness) and stored at
    /// the first call; every later call, by this process or another on the same store, gets it.
    pub fn message_id_secret(&self) -> Result<crate::outbound::IdSecret, sled::Error> {
        const KEY: &str = "secret/message-ids";
        if let Some(stored) = self.tree.get(KEY)? {
            return crate::outbound::IdSecret::try_from(stored.as_ref())
                .map_err(|_| sled::Error::Unsupported(format!("{KEY} holds {} bytes, not 64", stored.len())));
        }
        let mut fresh = [0u8; 64];
        getrandom::fill(&mut fresh)
            .map_err(|e| sled::Error::Unsupported(format!("the system gave no randomness for {KEY}: {e}")))?;
        match self.tree.compare_and_swap(KEY, None::<&[u8]>, Some(&fresh[..]))? {
            Ok(()) => {
                self.flush()?;
                Ok(fresh)
            }
            // Another process made it first: use theirs.
            Err(_) => self.message_id_secret(),
        }
    }

    pub fn conversation_of(&self, message_id: &str) -> Result<Option<String>, sled::Error> {
        Ok(self.tree.get(format!("mid/{message_id}"))?.and_then(|v| String::from_utf8(v.to_vec()).ok()))
    }

    pub fn thread(&self, conversation: &str) -> Result<Option<ThreadRecord>, sled::Error> {
        Ok(self.tree.get(format!("thread/{conversation}"))?.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Records a message of a conversation: its Message-ID maps to the conversation (unless it
    /// already maps to another one: a Message-ID reused by someone else never moves a thread),
    /// and the thread record gains the message (once, however often it is recorded).
    pub fn record_message(
        &self,
        conversation: &str,
        message_id: &str,
        subject: &str,
        customer: Option<(String, Option<String>)>,
        entry: Option<ThreadEntry>,
    ) -> Result<ThreadRecord, sled::Error> {
        let mut thread = self.thread(conversation)?.unwrap_or_default();
        if thread.subject.is_empty() {
            thread.subject = subject.to_string();
        }
        if let Some((address, name)) = customer {
            if thread.customer.is_empty() {
                thread.customer = address;
                thread.customer_name = name;
            }
        }
        if !thread.message_ids.iter().any(|m| m == message_id) {
            thread.message_ids.push(message_id.to_string());
            if thread.message_ids.len() > MAX_IDS {
                // Keep the root: clients thread on the first reference.
                thread.message_ids.remove(1);
            }
            if let Some(mut entry) = entry {
                if entry.text.chars().count() > MAX_ENTRY_CHARS {
                    entry.text = entry.text.chars().take(MAX_ENTRY_CHARS).collect::<String>() + " […]";
                }
                thread.entries.push(entry);
                if thread.entries.len() > MAX_ENTRIES {
                    thread.entries.remove(0);
                }
            }
        }
        let json = serde_json::to_vec(&thread).map_err(|e| sled::Error::Unsupported(e.to_string()))?;
        let mut batch = sled::Batch::default();
        let mid = format!("mid/{message_id}");
        if self.tree.get(&mid)?.is_none_or(|mapped| mapped == conversation.as_bytes()) {
            batch.insert(mid.as_bytes(), conversation.as_bytes());
        }
        batch.insert(format!("thread/{conversation}").as_bytes(), json);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        Ok(thread)
    }

    /// Counts the held mail stored.
    fn count_held(&self) -> Result<HeldTotals, sled::Error> {
        let (mut count, mut bytes) = (0, 0);
        for entry in self.tree.scan_prefix(HOLD) {
            let (_, value) = entry?;
            count += 1;
            bytes += serde_json::from_slice::<HeldMeta>(&value).map(|m| m.size_bytes).unwrap_or(0);
        }
        Ok(HeldTotals { counted: true, count, bytes })
    }

    /// The held-mail totals, locked: counted from the stored records at the first call.
    fn held_totals(&self) -> Result<std::sync::MutexGuard<'_, HeldTotals>, sled::Error> {
        // Each change to sled is one batch, so a panic elsewhere while holding the lock leaves
        // the records whole; only the totals may be off, and they are counted again.
        let mut totals = self.held_totals.lock().unwrap_or_else(|poisoned| {
            let mut totals = poisoned.into_inner();
            totals.counted = false;
            totals
        });
        if !totals.counted {
            *totals = self.count_held()?;
        }
        Ok(totals)
    }

    /// Moves held mail stored by earlier versions (the raw MIME as a JSON number array, four
    /// bytes or so per byte) to the compact records. A record that cannot be read is left where
    /// it is and reported: the log names its key, and `frontdesk doctor` counts it. Returns how
    /// many records were moved.
    pub fn migrate_held(&self) -> Result<usize, sled::Error> {
        let mut totals = self.held_totals()?;
        let mut moved = 0;
        for entry in self.tree.scan_prefix(LEGACY_HELD) {
            let (key, value) = entry?;
            let held = match serde_json::from_slice::<HeldMessage>(&value) {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(
                        key = %String::from_utf8_lossy(&key),
                        error = %e,
                        "a held email stored by an earlier version could not be read; it is left in the store under this key for a person"
                    );
                    continue;
                }
            };
            let mut batch = sled::Batch::default();
            batch.remove(key);
            if self.tree.contains_key(format!("{HOLD_ID}{}", crate::adapter::id_key(&held.message_id)))? {
                // Held twice by an earlier version: the copy already moved is the same mail.
                self.tree.apply_batch(batch)?;
                continue;
            }
            let size = held.raw.len() as u64;
            self.add_held(&mut batch, &held);
            self.tree.apply_batch(batch)?;
            totals.count += 1;
            totals.bytes += size;
            moved += 1;
        }
        if moved > 0 {
            self.flush()?;
            tracing::info!(moved, "held emails stored by an earlier version moved to the compact format");
        }
        Ok(moved)
    }

    /// Records held by an earlier version that could not be read (see [`State::migrate_held`]).
    pub fn unreadable_held(&self) -> usize {
        self.tree.scan_prefix(LEGACY_HELD).count()
    }

    /// `{received ms:016x}/{id}`: where a held message's records are.
    fn held_at(received_at_ms: i64, message_id: &str) -> String {
        format!("{:016x}/{}", received_at_ms.max(0), crate::adapter::id_key(message_id))
    }

    fn add_held(&self, batch: &mut sled::Batch, held: &HeldMessage) {
        let at = State::held_at(held.received_at_ms, &held.message_id);
        let meta = HeldMeta {
            message_id: held.message_id.clone(),
            from: held.from.clone(),
            subject: held.subject.clone(),
            received_at_ms: held.received_at_ms,
            reason: held.reason.clone(),
            size_bytes: held.raw.len() as u64,
        };
        // Plain strings and numbers: serialising cannot fail.
        let json = serde_json::to_vec(&meta).unwrap_or_default();
        batch.insert(format!("{HOLD}{at}").as_bytes(), json);
        batch.insert(format!("{HOLD_RAW}{at}").as_bytes(), held.raw.as_slice());
        batch.insert(format!("{HOLD_ID}{}", crate::adapter::id_key(&held.message_id)).as_bytes(), at.as_bytes());
    }

    /// Keeps a message for a person (once per Message-ID). Past [`HeldLimits::max_count`] or
    /// [`HeldLimits::max_bytes`], the oldest held mail is purged.
    pub fn hold(&self, held: &HeldMessage) -> Result<(), sled::Error> {
        let mut totals = self.held_totals()?;
        if self.is_held(&held.message_id) {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        self.add_held(&mut batch, held);
        self.tree.apply_batch(batch)?;
        totals.count += 1;
        totals.bytes += held.raw.len() as u64;
        self.purge_over_limits(&mut totals)?;
        self.flush()
    }

    /// Removes a held message's records; returns what it was, when its summary could be read.
    fn remove_held(&self, at: &str, totals: &mut HeldTotals) -> Result<Option<HeldMeta>, sled::Error> {
        let meta_key = format!("{HOLD}{at}");
        let meta: Option<HeldMeta> = self.tree.get(&meta_key)?.and_then(|v| serde_json::from_slice(&v).ok());
        let id = at.split_once('/').map(|(_, id)| id).unwrap_or("");
        let mut batch = sled::Batch::default();
        batch.remove(meta_key.as_bytes());
        batch.remove(format!("{HOLD_RAW}{at}").as_bytes());
        let index = format!("{HOLD_ID}{id}");
        if self.tree.get(&index)?.is_some_and(|v| v == at.as_bytes()) {
            batch.remove(index.as_bytes());
        }
        self.tree.apply_batch(batch)?;
        totals.count = totals.count.saturating_sub(1);
        totals.bytes = totals.bytes.saturating_sub(meta.as_ref().map(|m| m.size_bytes).unwrap_or(0));
        Ok(meta)
    }

    fn log_purged(&self, at: &str, meta: Option<&HeldMeta>, why: Purge) {
        let limits = &self.held_limits;
        let why = match why {
            Purge::Age => format!("held longer than {} days", limits.max_age_ms / (24 * 3_600_000)),
            Purge::Count => format!("more than {} held emails are kept", limits.max_count),
            Purge::Bytes => format!("held emails are kept up to {} MiB in all", limits.max_bytes / (1024 * 1024)),
        };
        match meta {
            Some(m) => tracing::warn!(
                message_id = %m.message_id,
                from = %m.from,
                subject = %m.subject,
                received_at_ms = m.received_at_ms,
                size_bytes = m.size_bytes,
                reason = %why,
                "held email purged (over IMAP it stays in the folder, flagged $FrontdeskHeld)"
            ),
            None => tracing::warn!(key = %at, reason = %why, "held email purged"),
        }
    }

    /// Purges the oldest held mail while more is kept than the limits allow; the newest message
    /// is always kept.
    fn purge_over_limits(&self, totals: &mut HeldTotals) -> Result<usize, sled::Error> {
        let limits = self.held_limits;
        let mut purged = 0;
        while totals.count > 1 && (totals.count > limits.max_count || totals.bytes > limits.max_bytes) {
            let why = if totals.count > limits.max_count { Purge::Count } else { Purge::Bytes };
            let Some(oldest) = self.tree.scan_prefix(HOLD).keys().next().transpose()? else { break };
            let at = String::from_utf8_lossy(&oldest[HOLD.len()..]).into_owned();
            let meta = self.remove_held(&at, totals)?;
            self.log_purged(&at, meta.as_ref(), why);
            purged += 1;
        }
        Ok(purged)
    }

    /// Purges held mail received more than [`HeldLimits::max_age_ms`] before `now_ms`, then the
    /// oldest while more is kept than the limits allow. Returns how many messages went.
    pub fn purge_held(&self, now_ms: i64) -> Result<usize, sled::Error> {
        let mut totals = self.held_totals()?;
        // Counted again, so that the limits apply to what the store really holds.
        *totals = self.count_held()?;
        let cutoff = now_ms.saturating_sub(self.held_limits.max_age_ms);
        let mut expired = Vec::new();
        for key in self.tree.scan_prefix(HOLD).keys() {
            let at = String::from_utf8_lossy(&key?[HOLD.len()..]).into_owned();
            let received = at.split_once('/').and_then(|(ms, _)| i64::from_str_radix(ms, 16).ok()).unwrap_or(0);
            if received >= cutoff {
                // Keys sort by the time received: the rest is younger.
                break;
            }
            expired.push(at);
        }
        for at in &expired {
            let meta = self.remove_held(at, &mut totals)?;
            self.log_purged(at, meta.as_ref(), Purge::Age);
        }
        let purged = expired.len() + self.purge_over_limits(&mut totals)?;
        if purged > 0 {
            self.flush()?;
        }
        Ok(purged)
    }

    /// Held mail, oldest first, with its raw MIME.
    pub fn held(&self) -> Vec<HeldMessage> {
        self.tree
            .scan_prefix(HOLD)
            .filter_map(Result::ok)
            .filter_map(|(key, value)| {
                let meta: HeldMeta = serde_json::from_slice(&value).ok()?;
                let raw_key = [HOLD_RAW.as_bytes(), &key[HOLD.len()..]].concat();
                let raw = self.tree.get(raw_key).ok().flatten().map(|v| v.to_vec()).unwrap_or_default();
                Some(HeldMessage {
                    message_id: meta.message_id,
                    from: meta.from,
                    subject: meta.subject,
                    received_at_ms: meta.received_at_ms,
                    reason: meta.reason,
                    raw,
                })
            })
            .collect()
    }

    pub fn held_limits(&self) -> HeldLimits {
        self.held_limits
    }

    /// How many messages are held.
    pub fn held_count(&self) -> Result<usize, sled::Error> {
        Ok(self.held_totals()?.count)
    }

    pub fn is_held(&self, message_id: &str) -> bool {
        self.tree.contains_key(format!("{HOLD_ID}{}", crate::adapter::id_key(message_id))).unwrap_or(false)
    }

    /// Counts a message of `sender` at `now_ms` and says whether it is within `per_hour`
    /// messages in the last hour. A message counted once is not counted again (a redelivery).
    pub fn within_rate(&self, sender: &str, message_id: &str, now_ms: i64, per_hour: u32) -> Result<bool, sled::Error> {
        if per_hour == 0 {
            return Ok(true);
        }
        let key = format!("rate/{sender}");
        let mut seen: Vec<(i64, String)> =
            self.tree.get(&key)?.and_then(|v| serde_json::from_slice(&v).ok()).unwrap_or_default();
        seen.retain(|(t, _)| now_ms - *t < 3_600_000);
        if let Some(pos) = seen.iter().position(|(_, id)| id == message_id) {
            return Ok(pos < per_hour as usize);
        }
        seen.push((now_ms, message_id.to_string()));
        let within = seen.len() <= per_hour as usize;
        let json = serde_json::to_vec(&seen).map_err(|e| sled::Error::Unsupported(e.to_string()))?;
        self.tree.insert(key, json)?;
        self.flush()?;
        Ok(within)
    }

    pub fn add_agent(&self, address: &str) -> Result<(), sled::Error> {
        if self.tree.insert(format!("agent/{address}"), &[])?.is_none() {
            self.flush()?;
        }
        Ok(())
    }

    pub fn is_agent(&self, address: &str) -> bool {
        self.tree.contains_key(format!("agent/{address}")).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn state() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, State::new(db.open_tree("email").unwrap()))
    }

    #[test]
    fn positions_threads_and_rates_survive_as_written() {
        let (_dir, s) = state();
        assert_eq!(s.imap_position("INBOX").unwrap(), None);
        s.set_imap_position("INBOX", 7, 42).unwrap();
        assert_eq!(s.imap_position("INBOX").unwrap(), Some((7, 42)));

        let e = |t: &str| Some(ThreadEntry { from: "a@x.y".into(), at_ms: 1, text: t.into(), asked_reply_to: None });
        let customer = || Some(("a@x.y".to_string(), None));
        s.record_message("c1", "m1@x", "Refund", customer(), e("first")).unwrap();
        let t = s.record_message("c1", "m1@x", "Refund", customer(), e("first again")).unwrap();
        assert_eq!(t.entries.len(), 1, "a message recorded twice is kept once");
        assert_eq!((t.subject.as_str(), t.customer.as_str()), ("Refund", "a@x.y"));
        s.record_message("c1", "m2@x", "other", None, e("second")).unwrap();
        assert_eq!(s.conversation_of("m2@x").unwrap().as_deref(), Some("c1"));
        assert_eq!(s.thread("c1").unwrap().unwrap().message_ids, vec!["m1@x", "m2@x"]);

        // A Message-ID of one conversation recorded in another stays mapped to the first.
        s.record_message("c2", "m1@x", "Refund", Some(("eve@x.y".to_string(), None)), e("reused id")).unwrap();
        assert_eq!(s.conversation_of("m1@x").unwrap().as_deref(), Some("c1"));
        assert_eq!(s.thread("c2").unwrap().unwrap().entries.len(), 1);

        let secret = s.message_id_secret().unwrap();
        assert_eq!(s.message_id_secret().unwrap(), secret, "made once, kept");
        assert_ne!(secret, [0u8; 64]);
        let (_other_dir, other) = state();
        assert_ne!(other.message_id_secret().unwrap(), secret, "each install has its own");

        assert!(s.within_rate("a@x.y", "1", 0, 2).unwrap());
        assert!(s.within_rate("a@x.y", "2", 1, 2).unwrap());
        assert!(!s.within_rate("a@x.y", "3", 2, 2).unwrap());
        assert!(s.within_rate("a@x.y", "2", 3, 2).unwrap(), "a redelivered message keeps its verdict");
        assert!(s.within_rate("a@x.y", "4", 3_600_001, 2).unwrap(), "the window slides");
    }

    fn held(id: &str, at_ms: i64, raw: Vec<u8>) -> HeldMessage {
        HeldMessage {
            message_id: id.into(),
            from: "flood@x.y".into(),
            subject: "again".into(),
            received_at_ms: at_ms,
            reason: "more than 2 messages from flood@x.y in an hour".into(),
            raw,
        }
    }

    fn stored_bytes(s: &State) -> usize {
        s.tree.iter().map(|e| e.map(|(k, v)| k.len() + v.len()).unwrap()).sum()
    }

    fn held_ids(s: &State) -> Vec<String> {
        s.held().into_iter().map(|h| h.message_id).collect()
    }

    #[test]
    fn held_mail_is_kept_as_bytes_and_found_by_its_message_id() {
        let (_dir, s) = state();
        let raw: Vec<u8> = (0..100_000u32).map(|n| (n * 7 % 251) as u8).collect();
        s.hold(&held("h1@x", 5, raw.clone())).unwrap();
        let size = stored_bytes(&s);
        assert!(size < raw.len() + 2_000, "100 kB of mail takes {size} bytes of the store");
        assert!(s.is_held("h1@x"));
        assert!(!s.is_held("h2@x"));
        s.hold(&held("h1@x", 9, raw.clone())).unwrap();
        assert_eq!(s.held(), vec![held("h1@x", 5, raw)], "held once, whole");

        let long = format!("{}@x", "l".repeat(300));
        s.hold(&held(&long, 6, b"From: flood@x.y\r\n\r\nhi".to_vec())).unwrap();
        assert!(s.is_held(&long));
        assert_eq!(held_ids(&s), vec!["h1@x".to_string(), long]);
        assert_eq!(s.held_count().unwrap(), 2);
    }

    #[test]
    fn held_mail_over_the_limits_goes_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let limits = HeldLimits { max_age_ms: 1_000_000, max_count: 3, max_bytes: 1_000 };
        let s = State::with_limits(db.open_tree("email").unwrap(), limits);
        for n in 1..=4 {
            s.hold(&held(&format!("m{n}"), n, vec![b'x'; 10])).unwrap();
        }
        assert_eq!(held_ids(&s), vec!["m2", "m3", "m4"], "at most 3 kept");
        assert!(!s.is_held("m1"), "a purged message is no longer held");

        s.hold(&held("big", 5, vec![b'x'; 900])).unwrap();
        assert_eq!(held_ids(&s), vec!["m3", "m4", "big"]);
        s.hold(&held("m6", 6, vec![b'x'; 200])).unwrap();
        assert_eq!(held_ids(&s), vec!["m6"], "at most 1,000 bytes kept: the oldest go until it fits");
        s.hold(&held("huge", 7, vec![b'x'; 5_000])).unwrap();
        assert_eq!(held_ids(&s), vec!["huge"], "the newest is kept even when it alone is larger");
        assert_eq!(s.held_count().unwrap(), 1);

        // The totals are counted from the store again when it is opened again.
        drop(s);
        let s = State::with_limits(db.open_tree("email").unwrap(), limits);
        s.hold(&held("m8", 8, vec![b'x'; 10])).unwrap();
        assert_eq!(held_ids(&s), vec!["m8"]);
    }

    #[test]
    fn held_mail_past_its_age_is_purged() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let limits = HeldLimits { max_age_ms: 1_000, ..HeldLimits::default() };
        let s = State::with_limits(db.open_tree("email").unwrap(), limits);
        for (id, at) in [("old", 0), ("older than the limit", 500), ("recent", 2_000)] {
            s.hold(&held(id, at, b"From: flood@x.y\r\n\r\nhi".to_vec())).unwrap();
        }
        assert_eq!(s.purge_held(2_400).unwrap(), 2);
        assert_eq!(held_ids(&s), vec!["recent"]);
        assert!(!s.is_held("old"));
        assert_eq!(s.held_count().unwrap(), 1);
        assert_eq!(s.purge_held(2_400).unwrap(), 0, "nothing more to purge");
        assert_eq!(s.purge_held(3_001).unwrap(), 1);
        assert!(s.held().is_empty());
        assert_eq!(stored_bytes(&s), 0, "nothing of it is left behind");
    }

    #[test]
    fn held_mail_stored_by_earlier_versions_is_moved_not_lost() {
        let (_dir, s) = state();
        // Earlier versions stored the whole message as JSON, the raw MIME as a number array.
        let old = held("before@x", 1_700_000_000_000, b"From: flood@x.y\r\nSubject: again\r\n\r\nhi".to_vec());
        let key = format!("held/{:016x}/before@x", old.received_at_ms);
        s.tree.insert(key.as_bytes(), serde_json::to_vec(&old).unwrap()).unwrap();
        s.tree.insert(b"held/0000000000000001/broken@x", &b"{not json"[..]).unwrap();

        assert_eq!(s.migrate_held().unwrap(), 1);
        assert_eq!(s.held(), vec![old]);
        assert!(s.is_held("before@x"));
        assert_eq!(s.held_count().unwrap(), 1);
        assert!(s.tree.get(&key).unwrap().is_none(), "moved, not copied");
        assert_eq!(s.unreadable_held(), 1, "a record that cannot be read stays where it is");
        assert!(s.tree.get("held/0000000000000001/broken@x").unwrap().is_some());
        assert_eq!(s.migrate_held().unwrap(), 0, "moved once");
    }
}
