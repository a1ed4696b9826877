//! After a run, with `frontdesk serve` stopped: what became of every message it acknowledged,
//! read from its own store and from what the Slack stub received.
//!
//! A message is **answered** when the engine recorded a decision for it (the turn result kept
//! under its event id, which is what makes handling a message again after a crash return the
//! same replies) and every reply that decision produced was posted to Slack: the reply has a
//! delivered record, and the post that record names reached the stub. A decision with no reply
//! (the bot stays quiet: a person owns the thread, the message was not for the bot) is an answer
//! too — it is recorded. A message is **lost** when it was acknowledged and either has no
//! recorded decision and is no longer waiting, or one of its replies is in neither the outbox,
//! the dead letters nor the delivered records.
//!
//! A **duplicate** is a post the stub received that no delivered record names, identical
//! (channel, thread, text and blocks) to a post that one does: the same reply delivered twice.

use super::events::Message;
use super::slack_stub::Post;
use frontdesk::channel::{Source, WorkspaceId};
use frontdesk::conversation::ConversationStore;
use frontdesk::inbox::{DeadItem, Inbox, InboxOptions};
use frontdesk::store::Store;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

#[derive(Debug, Default)]
pub struct Audit {
    pub acknowledged: usize,
    pub decided: usize,
    /// Decisions with at least one reply.
    pub with_replies: usize,
    /// Decisions to stay quiet.
    pub quiet: usize,
    pub replies: usize,
    pub replies_delivered: usize,
    /// Acknowledged messages still waiting to be answered.
    pub still_waiting: usize,
    /// Replies still in the outbox.
    pub replies_waiting: usize,
    pub replies_dead: usize,
    /// Acknowledged messages with no decision, not waiting.
    pub never_decided: Vec<String>,
    /// Replies that are nowhere (not delivered, not waiting, not dead).
    pub replies_missing: Vec<String>,
    /// Delivered records whose post the stub never received.
    pub delivered_not_posted: Vec<String>,
    /// Message id → extra copies of its replies.
    pub duplicates: BTreeMap<String, usize>,
    /// Posts no delivered record names and that copy no recorded post.
    pub unexplained_posts: usize,
    /// Decision reasons (`answered`, `weak_retrieval`, `rate_limited`, `agent_owned`, ...).
    pub reasons: BTreeMap<String, usize>,
}

impl Audit {
    /// Lost messages: no decision and not waiting, or a reply that is nowhere.
    pub fn lost(&self) -> usize {
        let mut ids: HashSet<&str> = self.never_decided.iter().map(String::as_str).collect();
        for r in &self.replies_missing {
            ids.insert(r.split(" reply ").next().unwrap_or(r));
        }
        ids.len()
    }

    pub fn duplicate_posts(&self) -> usize {
        self.duplicates.values().sum()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "acknowledged": self.acknowledged,
            "decided": self.decided,
            "decided_with_replies": self.with_replies,
            "decided_quiet": self.quiet,
            "replies": self.replies,
            "replies_delivered": self.replies_delivered,
            "still_waiting": self.still_waiting,
            "replies_waiting": self.replies_waiting,
            "replies_dead_letters": self.replies_dead,
            "lost": self.lost(),
            "never_decided": self.never_decided,
            "replies_missing": self.replies_missing,
            "delivered_not_posted": self.delivered_not_posted,
            "duplicate_posts": self.duplicate_posts(),
            "messages_with_duplicates": self.duplicates,
            "unexplained_posts": self.unexplained_posts,
            "reasons": self.reasons,
        })
    }
}

fn post_key(p: &Post) -> (String, String, String, String) {
    (p.channel.clone(), p.thread_ts.clone().unwrap_or_default(), p.text.clone(), p.blocks.clone())
}

/// Audits the acknowledged `messages` against the store in `data_dir` and the stub's `posts`.
/// `frontdesk serve` must be stopped (sled allows one process per database).
pub fn audit(data_dir: &Path, messages: &[&Message], posts: &[Post]) -> anyhow::Result<Audit> {
    let store = Store::open(data_dir)?;
    let conversations = ConversationStore::open(&store)?;
    let inbox = Inbox::open(&store, InboxOptions::default())?;

    let waiting: HashSet<String> = inbox.pending_messages()?.into_iter().map(|m| m.id.to_string()).collect();
    let in_outbox: HashSet<String> = inbox.outbox_entries()?.into_iter().map(|e| e.outbound.id).collect();
    let dead: HashSet<String> = inbox
        .dead_letters()?
        .into_iter()
        .filter_map(|l| match l.item {
            DeadItem::Reply { outbound } => Some(outbound.outbound.id),
            DeadItem::Unreadable { .. } => None,
        })
        .collect();
    let by_ts: HashMap<&str, &Post> = posts.iter().map(|p| (p.ts.as_str(), p)).collect();

    let mut a = Audit { acknowledged: messages.len(), ..Audit::default() };
    // Posts a delivered record names, and which message each answers.
    let mut recorded: HashMap<String, String> = HashMap::new();
    let mut recorded_keys: HashMap<(String, String, String, String), String> = HashMap::new();
    for m in messages {
        let id = m.inbound_id();
        let ws = WorkspaceId::new(m.team.as_str())?;
        let Some(bytes) = conversations.turn_result(Source::Slack, &ws, &id)? else {
            if waiting.contains(&id) {
                a.still_waiting += 1;
            } else {
                a.never_decided.push(id);
            }
            continue;
        };
        a.decided += 1;
        let turn: Value = serde_json::from_slice(&bytes)?;
        let reason = turn["reason"].as_str().unwrap_or("unknown").to_string();
        *a.reasons.entry(reason).or_default() += 1;
        let outbound = turn["outbound"].as_array().cloned().unwrap_or_default();
        if outbound.is_empty() {
            a.quiet += 1;
            continue;
        }
        a.with_replies += 1;
        for reply in outbound {
            let Some(reply_id) = reply["id"].as_str() else { continue };
            a.replies += 1;
            match inbox.delivered(reply_id)? {
                Some(record) => {
                    a.replies_delivered += 1;
                    match record.platform_message_id.as_deref().and_then(|ts| by_ts.get(ts)) {
                        Some(post) => {
                            recorded.insert(post.ts.clone(), id.clone());
                            recorded_keys.insert(post_key(post), id.clone());
                        }
                        None => a.delivered_not_posted.push(format!("{id} reply {reply_id}")),
                    }
                }
                None if in_outbox.contains(reply_id) => a.replies_waiting += 1,
                None if dead.contains(reply_id) => a.replies_dead += 1,
                None => a.replies_missing.push(format!("{id} reply {reply_id}")),
            }
        }
    }
    for p in posts {
        if recorded.contains_key(&p.ts) {
            continue;
        }
        match recorded_keys.get(&post_key(p)) {
            Some(id) => *a.duplicates.entry(id.clone()).or_default() += 1,
            None => a.unexplained_posts += 1,
        }
    }
    Ok(a)
}

/// Decision reasons per workspace, for every message of `messages` that has one.
pub fn reasons_by_workspace(
    data_dir: &Path,
    messages: &[&Message],
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, usize>>> {
    let store = Store::open(data_dir)?;
    let conversations = ConversationStore::open(&store)?;
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for m in messages {
        let ws = WorkspaceId::new(m.team.as_str())?;
        if let Some(bytes) = conversations.turn_result(Source::Slack, &ws, &m.inbound_id())? {
            let turn: Value = serde_json::from_slice(&bytes)?;
            let reason = turn["reason"].as_str().unwrap_or("unknown").to_string();
            *out.entry(m.team.clone()).or_default().entry(reason).or_default() += 1;
        }
    }
    Ok(out)
}
