//! Conversations: who owns a thread, and what was said in it.
//!
//! State machine:
//! ```text
//!   bot ──escalate──▶ escalated ──claim──▶ agent ──resolve──▶ resolved
//!    │                    │                  ▲                   │
//!    └──────claim─────────┼──────────────────┘                   │
//!                         └──resolve──────────────▶ resolved     │
//!   resolved ──new customer message──▶ bot (if the policy lets the bot resume) or escalated
//! ```
//! While a conversation is `escalated` or `agent` the bot stays silent in it. Every transition
//! records who made it, when, and why. The record also keeps every message (customer, bot,
//! agent), including those the bot did not answer, so nothing said is lost and the history of
//! a thread is available to condense follow-ups.

use crate::channel::ids::InvalidId;
use crate::channel::{Author, AuthorId, ChannelId, ConversationKey, EventId, Inbound, Source, WorkspaceId};
use crate::store::{expiry, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Who owns a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvState {
    /// The bot answers.
    Bot,
    /// Handed off; waiting for an agent. The bot is silent.
    Escalated,
    /// An agent owns the thread. The bot is silent.
    Agent,
    /// Closed by an agent.
    Resolved,
}

impl ConvState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConvState::Bot => "bot",
            ConvState::Escalated => "escalated",
            ConvState::Agent => "agent",
            ConvState::Resolved => "resolved",
        }
    }
}

/// One change of state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: ConvState,
    pub to: ConvState,
    /// `bot`, or the id of the customer or agent who caused it.
    pub by: String,
    pub at_ms: i64,
    /// A reason code (`weak_retrieval`, `asked_for_human`, `claimed`, `agent_replied`, ...).
    pub reason: String,
}

/// Who wrote a recorded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Customer,
    Bot,
    Agent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedMessage {
    pub speaker: Speaker,
    pub author: String,
    pub text: String,
    pub at_ms: i64,
    /// The turn's trace id for bot messages; the platform event id for others.
    pub reference: String,
}

/// A transition that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a conversation that is {from} cannot become {to}")]
pub struct InvalidTransition {
    pub from: &'static str,
    pub to: &'static str,
}

/// A conversation's state and record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub source: Source,
    pub workspace: WorkspaceId,
    pub channel: ChannelId,
    pub key: ConversationKey,
    pub state: ConvState,
    /// The agent who owns it, once claimed.
    pub owner: Option<String>,
    /// The customer who started it.
    pub customer: Option<String>,
    pub transitions: Vec<Transition>,
    /// The latest messages (see [`Conversation::record`]).
    pub messages: Vec<RecordedMessage>,
    /// Older messages no longer kept.
    #[serde(default)]
    pub messages_dropped: u64,
    /// The bot has written in the thread (kept when its messages are no longer).
    #[serde(default)]
    pub bot_joined: bool,
}

/// Messages kept per conversation.
pub const MAX_RECORDED_MESSAGES: usize = 100;
/// Characters kept of each message.
pub const MAX_RECORDED_CHARS: usize = 4000;

/// `text` cut to at most `max` characters, saying how much was left out.
pub fn clipped(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => {
            let left = text[end..].chars().count();
            format!("{} … [{left} more characters not kept]", &text[..end])
        }
    }
}

impl Conversation {
    pub fn new(source: Source, workspace: WorkspaceId, channel: ChannelId, key: ConversationKey) -> Self {
        Conversation {
            source,
            workspace,
            channel,
            key,
            state: ConvState::Bot,
            owner: None,
            customer: None,
            transitions: Vec::new(),
            messages: Vec::new(),
            messages_dropped: 0,
            bot_joined: false,
        }
    }

    fn allowed(from: ConvState, to: ConvState) -> bool {
        use ConvState::*;
        matches!(
            (from, to),
            (Bot, Escalated)
                | (Bot, Agent)
                | (Escalated, Agent)
                | (Escalated, Resolved)
                | (Agent, Resolved)
                | (Agent, Agent)
                | (Resolved, Bot)
                | (Resolved, Escalated)
                | (Resolved, Agent)
                | (Bot, Resolved)
        )
    }

    /// Moves to `to`, recording who, when and why.
    pub fn transition(&mut self, to: ConvState, by: &str, reason: &str, at_ms: i64) -> Result<(), InvalidTransition> {
        if !Self::allowed(self.state, to) {
            return Err(InvalidTransition { from: self.state.as_str(), to: to.as_str() });
        }
        self.transitions.push(Transition {
            from: self.state,
            to,
            by: by.to_string(),
            at_ms,
            reason: reason.to_string(),
        });
        self.state = to;
        match to {
            ConvState::Agent => self.owner = Some(by.to_string()),
            ConvState::Bot | ConvState::Escalated => self.owner = None,
            ConvState::Resolved => {}
        }
        Ok(())
    }

    /// True while a person has (or is about to have) the thread: the bot must stay silent.
    pub fn bot_silenced(&self) -> bool {
        matches!(self.state, ConvState::Escalated | ConvState::Agent)
    }

    /// True once the bot has written in the thread: a customer's follow-up there is addressed
    /// to it without a mention.
    pub fn bot_in_thread(&self) -> bool {
        self.bot_joined || self.messages.iter().any(|m| m.speaker == Speaker::Bot)
    }

    /// Keeps a message of the thread: at most [`MAX_RECORDED_CHARS`] of its text, and only the
    /// latest [`MAX_RECORDED_MESSAGES`] messages (the thread itself, on the platform, keeps them
    /// all), so a long or flooded thread costs bounded storage, prompt and summary space.
    pub fn record(&mut self, speaker: Speaker, author: &str, text: &str, at_ms: i64, reference: &str) {
        if speaker == Speaker::Bot {
            self.bot_joined = true;
        }
        self.messages.push(RecordedMessage {
            speaker,
            author: author.to_string(),
            text: clipped(text, MAX_RECORDED_CHARS),
            at_ms,
            reference: reference.to_string(),
        });
        if self.messages.len() > MAX_RECORDED_MESSAGES {
            let over = self.messages.len() - MAX_RECORDED_MESSAGES;
            self.messages.drain(..over);
            self.messages_dropped = self.messages_dropped.saturating_add(over as u64);
        }
    }

    /// Earlier turns as `(is_customer, text)`, oldest first, excluding the latest message.
    pub fn history(&self) -> Vec<(Speaker, String)> {
        let n = self.messages.len().saturating_sub(1);
        self.messages[..n].iter().map(|m| (m.speaker, m.text.clone())).collect()
    }
}

/// Conversations in sled (tree `conversations`), one JSON record per conversation, and the
/// result of every handled message (tree `turn_results`), written together in one transaction.
///
/// A fresh id for something started outside a channel: `prefix`, the time and the process.
pub fn unique_id(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{t:x}-{}", std::process::id())
}

/// A local message could not be made: one of its ids is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {source}")]
pub struct InvalidLocalMessage {
    /// `event` or `author`.
    pub field: &'static str,
    pub source: InvalidId,
}

/// A message typed at the command line (`frontdesk ask`, `chat`, `demo`) or asked by an eval
/// run, as a channel adapter would hand it over: from a customer, addressed to the bot, with a
/// fresh event id.
pub fn cli_inbound(
    workspace: &WorkspaceId,
    channel: &ChannelId,
    conversation: &ConversationKey,
    author: &str,
    text: &str,
) -> Result<Inbound, InvalidLocalMessage> {
    Ok(Inbound {
        id: EventId::new(unique_id("cli")).map_err(|source| InvalidLocalMessage { field: "event", source })?,
        source: Source::Cli,
        workspace: workspace.clone(),
        channel: channel.clone(),
        conversation: conversation.clone(),
        author: Author {
            id: AuthorId::new(author).map_err(|source| InvalidLocalMessage { field: "author", source })?,
            display_name: None,
            is_bot: false,
            is_agent: false,
        },
        text: text.to_string(),
        attachments: Vec::new(),
        received_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        addressed_to_bot: true,
        top_level: false,
        reply_context: serde_json::Value::Null,
        action: None,
        unverified_sender: false,
    })
}

/// The turn results make handling a message idempotent: after a crash between the engine's
/// work and the inbox recording the reply, the message is handled again and gets back exactly
/// the replies (same ids) that the first run decided, instead of a second decision taken on a
/// conversation the first run already changed.
///
/// Both are kept for a while and then purged ([`ConversationStore::purge_expired`]): a turn
/// result as long as its message's dedup record (a redelivered event is dropped before it gets
/// here), a conversation until nobody has written in it for the conversation retention.
/// `turn_results_expiry` and `conversations_expiry` are their time indexes (`store::expiry`);
/// `conversations_activity` holds each conversation's last write, so that the write that
/// follows replaces the conversation's index entry instead of adding one.
#[derive(Clone)]
pub struct ConversationStore {
    tree: sled::Tree,
    turns: sled::Tree,
    turns_expiry: sled::Tree,
    expiry: sled::Tree,
    activity: sled::Tree,
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgedConversations {
    pub turn_results: usize,
    pub conversations: usize,
}

/// Key of a handled message: source, workspace and platform event id.
fn turn_key(source: Source, ws: &WorkspaceId, event: &str) -> Vec<u8> {
    let src = serde_json::to_string(&source).unwrap_or_default();
    crate::store::key2(ws.as_str(), &format!("{}\0{event}", src.trim_matches('"')))
}

/// The system's time, as Unix ms.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A time stored as 8 big-endian bytes (0 for anything else).
fn millis(bytes: &[u8]) -> i64 {
    bytes.try_into().map(i64::from_be_bytes).unwrap_or(0)
}

fn conv_key(source: Source, ws: &WorkspaceId, key: &ConversationKey) -> Vec<u8> {
    let src = serde_json::to_string(&source).unwrap_or_default();
    let mut k = crate::store::key2(ws.as_str(), key.as_str());
    k.extend_from_slice(b"\0");
    k.extend_from_slice(src.trim_matches('"').as_bytes());
    k
}

impl ConversationStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let db = store.db();
        Ok(ConversationStore {
            tree: db.open_tree("conversations")?,
            turns: db.open_tree("turn_results")?,
            turns_expiry: db.open_tree("turn_results_expiry")?,
            expiry: db.open_tree("conversations_expiry")?,
            activity: db.open_tree("conversations_activity")?,
        })
    }

    pub fn get(
        &self,
        source: Source,
        ws: &WorkspaceId,
        key: &ConversationKey,
    ) -> Result<Option<Conversation>, StoreError> {
        match self.tree.get(conv_key(source, ws, key))? {
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt { what: format!("conversation {key}"), message: e.to_string() }),
            None => Ok(None),
        }
    }

    /// Saves the conversation, written at `at_ms` (its retention counts from there).
    pub fn put(&self, conv: &Conversation, at_ms: i64) -> Result<(), StoreError> {
        self.write(conv, None, at_ms)
    }

    /// The stored result of a message handled before, if any.
    pub fn turn_result(&self, source: Source, ws: &WorkspaceId, event: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.turns.get(turn_key(source, ws, event))?.map(|v| v.to_vec()))
    }

    /// Saves the conversation and the result of the message that changed it, atomically;
    /// both written at `at_ms` (their retention counts from there).
    pub fn put_with_turn(&self, conv: &Conversation, event: &str, result: &[u8], at_ms: i64) -> Result<(), StoreError> {
        self.write(conv, Some((event, result)), at_ms)
    }

    fn write(&self, conv: &Conversation, turn: Option<(&str, &[u8])>, at_ms: i64) -> Result<(), StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let bytes = serde_json::to_vec(conv)
            .map_err(|e| StoreError::Corrupt { what: format!("conversation {}", conv.key), message: e.to_string() })?;
        let ck = conv_key(conv.source, &conv.workspace, &conv.key);
        let turn = turn.map(|(event, result)| (turn_key(conv.source, &conv.workspace, event), result));
        let at = at_ms.to_be_bytes();
        (&self.tree, &self.turns, &self.turns_expiry, &self.expiry, &self.activity)
            .transaction(|(convs, turns, turns_expiry, expiry, activity)| {
                convs.insert(ck.as_slice(), bytes.as_slice())?;
                // One index entry per conversation: its last write.
                if let Some(before) = activity.insert(ck.as_slice(), &at[..])? {
                    expiry.remove(expiry::entry(millis(&before), &ck))?;
                }
                expiry.insert(expiry::entry(at_ms, &ck), &[] as &[u8])?;
                if let Some((tk, result)) = &turn {
                    turns.insert(tk.as_slice(), *result)?;
                    turns_expiry.insert(expiry::entry(at_ms, tk), &[] as &[u8])?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StoreError::Sled(e),
                TransactionError::Abort(()) => StoreError::Corrupt { what: "turn".into(), message: "aborted".into() },
            })?;
        Ok(())
    }

    /// Removes the turn results written more than `turn_retention` before `now_ms`, and the
    /// conversations nobody wrote in for `conversation_retention`. Records written before
    /// these indexes existed are not in them and stay.
    pub fn purge_expired(
        &self,
        now_ms: i64,
        turn_retention: std::time::Duration,
        conversation_retention: std::time::Duration,
    ) -> Result<PurgedConversations, StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let storage = |e: TransactionError<()>| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => StoreError::Corrupt { what: "purge".into(), message: "aborted".into() },
        };
        let mut purged = PurgedConversations::default();
        let cut_off = expiry::cut_off(now_ms, turn_retention);
        loop {
            let batch = expiry::due(&self.turns_expiry, cut_off)?;
            if batch.is_empty() {
                break;
            }
            (&self.turns, &self.turns_expiry)
                .transaction(|(turns, index)| {
                    for key in &batch {
                        index.remove(key)?;
                        if let Some((_, target)) = expiry::parse(key) {
                            turns.remove(target)?;
                        }
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(storage)?;
            purged.turn_results += batch.len();
        }
        let cut_off = expiry::cut_off(now_ms, conversation_retention);
        loop {
            let batch = expiry::due(&self.expiry, cut_off)?;
            if batch.is_empty() {
                break;
            }
            let removed = (&self.tree, &self.expiry, &self.activity)
                .transaction(|(convs, index, activity)| {
                    let mut removed = 0;
                    for key in &batch {
                        index.remove(key)?;
                        let Some((at_ms, ck)) = expiry::parse(key) else { continue };
                        // Only the conversation's latest entry counts; a later write replaced it.
                        if activity.get(ck)?.is_some_and(|last| millis(&last) == at_ms) {
                            activity.remove(ck)?;
                            convs.remove(ck)?;
                            removed += 1;
                        }
                    }
                    Ok::<usize, ConflictableTransactionError<()>>(removed)
                })
                .map_err(storage)?;
            purged.conversations += removed;
        }
        Ok(purged)
    }

    /// Seeds the conversation of `inbound` with earlier turns, oldest first (`frontdesk ask
    /// --history`, eval cases): the customer's turns under the inbound message's author, the
    /// others under `bot`. With no turns nothing is written.
    pub fn seed_history<'a>(
        &self,
        inbound: &Inbound,
        history: impl IntoIterator<Item = (Speaker, &'a str)>,
    ) -> Result<(), StoreError> {
        let mut history = history.into_iter().peekable();
        if history.peek().is_none() {
            return Ok(());
        }
        let mut conv = Conversation::new(
            inbound.source,
            inbound.workspace.clone(),
            inbound.channel.clone(),
            inbound.conversation.clone(),
        );
        for (i, (speaker, text)) in history.enumerate() {
            let author = if speaker == Speaker::Customer { inbound.author.id.to_string() } else { "bot".to_string() };
            conv.record(speaker, &author, text, 0, &format!("history-{i}"));
        }
        conv.customer = Some(inbound.author.id.to_string());
        self.put(&conv, now_ms())
    }

    /// Every conversation whose key equals `key`, in any workspace and channel (for
    /// `frontdesk trace`, which is given just a conversation id).
    pub fn find(&self, key: &str) -> Result<Vec<Conversation>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (_, v) = item?;
            if let Ok(c) = serde_json::from_slice::<Conversation>(&v) {
                if c.key.as_str() == key {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Conversation {
        Conversation::new(
            Source::Slack,
            WorkspaceId::new("T1").unwrap(),
            ChannelId::new("C1").unwrap(),
            ConversationKey::new("C1:1700.1").unwrap(),
        )
    }

    #[test]
    fn full_lifecycle_records_every_transition() {
        let mut c = conv();
        c.transition(ConvState::Escalated, "bot", "weak_retrieval", 1).unwrap();
        assert!(c.bot_silenced());
        c.transition(ConvState::Agent, "U_AGENT", "claimed", 2).unwrap();
        assert_eq!(c.owner.as_deref(), Some("U_AGENT"));
        c.transition(ConvState::Resolved, "U_AGENT", "resolved", 3).unwrap();
        assert!(!c.bot_silenced());
        c.transition(ConvState::Bot, "U_CUSTOMER", "new_message_after_resolve", 4).unwrap();
        let path: Vec<(ConvState, ConvState, &str)> =
            c.transitions.iter().map(|t| (t.from, t.to, t.reason.as_str())).collect();
        assert_eq!(
            path,
            vec![
                (ConvState::Bot, ConvState::Escalated, "weak_retrieval"),
                (ConvState::Escalated, ConvState::Agent, "claimed"),
                (ConvState::Agent, ConvState::Resolved, "resolved"),
                (ConvState::Resolved, ConvState::Bot, "new_message_after_resolve"),
            ]
        );
        assert_eq!(c.transitions[1].by, "U_AGENT");
        assert_eq!(c.transitions[1].at_ms, 2);
    }

    #[test]
    fn invalid_transitions_are_refused_and_change_nothing() {
        let mut c = conv();
        assert!(c.transition(ConvState::Bot, "bot", "x", 1).is_err());
        c.transition(ConvState::Escalated, "bot", "x", 1).unwrap();
        assert!(c.transition(ConvState::Bot, "bot", "x", 2).is_err());
        assert!(c.transition(ConvState::Escalated, "bot", "x", 2).is_err());
        assert_eq!(c.state, ConvState::Escalated);
        assert_eq!(c.transitions.len(), 1);
    }

    #[test]
    fn a_long_thread_keeps_bounded_text_and_still_knows_the_bot_joined() {
        let mut c = conv();
        let long = "é".repeat(MAX_RECORDED_CHARS + 10);
        c.record(Speaker::Customer, "U1", &long, 1, "ev0");
        assert!(c.messages[0].text.starts_with(&"é".repeat(MAX_RECORDED_CHARS)));
        assert!(c.messages[0].text.ends_with("[10 more characters not kept]"), "{}", &c.messages[0].text[8000..]);
        c.record(Speaker::Bot, "bot", "An answer [1].", 2, "t1");
        for i in 0..MAX_RECORDED_MESSAGES + 5 {
            c.record(Speaker::Customer, "U1", &format!("message {i}"), 3, &format!("ev{}", i + 1));
        }
        assert_eq!(c.messages.len(), MAX_RECORDED_MESSAGES);
        assert_eq!(c.messages_dropped, 7);
        assert_eq!(c.messages.last().unwrap().text, format!("message {}", MAX_RECORDED_MESSAGES + 4));
        assert!(c.messages.iter().all(|m| m.speaker == Speaker::Customer));
        assert!(c.bot_in_thread(), "the bot's message scrolled out, but it did join the thread");
        assert_eq!(clipped("short", 10), "short");
    }

    #[test]
    fn conversations_round_trip_through_the_store() {
        let store = Store::temporary().unwrap();
        let convs = ConversationStore::open(&store).unwrap();
        let mut c = conv();
        c.record(Speaker::Customer, "U1", "hello", 1, "ev1");
        convs.put(&c, 1).unwrap();
        let back = convs.get(Source::Slack, &c.workspace, &c.key).unwrap().unwrap();
        assert_eq!(back, c);
        assert!(convs.get(Source::Discord, &c.workspace, &c.key).unwrap().is_none());
        assert_eq!(convs.find("C1:1700.1").unwrap().len(), 1);
    }

    #[test]
    fn turn_results_and_idle_conversations_are_purged_after_their_retention() {
        use std::time::Duration;
        let store = Store::temporary().unwrap();
        let convs = ConversationStore::open(&store).unwrap();
        let ws = WorkspaceId::new("T1").unwrap();
        let old = conv();
        let mut busy = conv();
        busy.key = ConversationKey::new("C1:1700.2").unwrap();
        convs.put_with_turn(&old, "Ev1", b"one", 1_000).unwrap();
        convs.put_with_turn(&busy, "Ev2", b"two", 1_000).unwrap();
        // Written again later: its retention counts from the last write.
        convs.put_with_turn(&busy, "Ev3", b"three", 50_000).unwrap();
        let (turns, idle) = (Duration::from_secs(10), Duration::from_secs(100));

        // 20 s after the first turns: their results are past the turn retention.
        let purged = convs.purge_expired(21_000, turns, idle).unwrap();
        assert_eq!(purged, PurgedConversations { turn_results: 2, conversations: 0 });
        assert!(convs.turn_result(Source::Slack, &ws, "Ev1").unwrap().is_none());
        assert!(convs.turn_result(Source::Slack, &ws, "Ev2").unwrap().is_none());
        assert!(convs.turn_result(Source::Slack, &ws, "Ev3").unwrap().is_some());
        assert!(convs.get(Source::Slack, &ws, &old.key).unwrap().is_some(), "still within its retention");

        // 101 s after the first write: the idle conversation goes, the busy one stays.
        let purged = convs.purge_expired(101_001, turns, idle).unwrap();
        assert_eq!(purged, PurgedConversations { turn_results: 1, conversations: 1 });
        assert!(convs.get(Source::Slack, &ws, &old.key).unwrap().is_none());
        assert!(convs.get(Source::Slack, &ws, &busy.key).unwrap().is_some());
        // Nothing is left behind in the indexes for the conversation still kept but its one entry.
        assert_eq!(convs.expiry.len(), 1);
        assert_eq!(convs.activity.len(), 1);
        assert_eq!(convs.turns_expiry.len(), 0);

        let purged = convs.purge_expired(150_001, turns, idle).unwrap();
        assert_eq!(purged.conversations, 1);
        assert!(convs.tree.is_empty() && convs.expiry.is_empty() && convs.activity.is_empty());
    }
}
