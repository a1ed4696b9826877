//! What the adapter keeps in its sled tree. Keys (all UTF-8, prefixed by kind):
//!
//! - `imap/{folder}/validity` → UIDVALIDITY (u32 big-endian), `imap/{folder}/last` → the last UID
//!   whose message is safely handled (u32 big-endian).
//! - `mid/{message id}` → the conversation key of every Message-ID seen in or sent to a thread
//!   (customers', agents' and our own), so a reply to any of them lands in the same conversation.
//! - `thread/{conversation}` → [`ThreadRecord`] (JSON): subject, customer, Message-IDs and the
//!   messages, for References and for forwarding the thread to the agents.
//! - `held/{received ms:016x}/{message id}` → [`HeldMessage`] (JSON): mail over the sender's
//!   rate limit, kept for a person with its raw MIME.
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

const MAX_ENTRIES: usize = 50;
const MAX_ENTRY_CHARS: usize = 8000;
const MAX_IDS: usize = 200;

/// Sled-backed state; every write is flushed before the call returns.
#[derive(Clone)]
pub struct State {
    tree: sled::Tree,
}

fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn read_u32(v: Option<sled::IVec>) -> Option<u32> {
    v.and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok()).map(u32::from_be_bytes)
}

impl State {
    pub fn new(tree: sled::Tree) -> State {
        State { tree }
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

    pub fn hold(&self, held: &HeldMessage) -> Result<(), sled::Error> {
        let json = serde_json::to_vec(held).map_err(|e| sled::Error::Unsupported(e.to_string()))?;
        self.tree.insert(format!("held/{:016x}/{}", held.received_at_ms.max(0), held.message_id), json)?;
        self.flush()
    }

    pub fn held(&self) -> Vec<HeldMessage> {
        self.tree
            .scan_prefix("held/")
            .filter_map(Result::ok)
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect()
    }

    pub fn is_held(&self, message_id: &str) -> bool {
        self.held().iter().any(|h| h.message_id == message_id)
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
}
