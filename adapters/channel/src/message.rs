//! The normalised message model: what an adapter hands the engine, and what the engine asks an
//! adapter to deliver.

use crate::ids::{AuthorId, ChannelId, ConversationKey, EventId, WorkspaceId};
use serde::{Deserialize, Serialize};

/// Which channel a message came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Slack,
    Discord,
    Email,
    /// The command line (`frontdesk ask`, `frontdesk chat`) and the eval harness.
    Cli,
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub id: AuthorId,
    /// A name to show agents; never used for decisions.
    pub display_name: Option<String>,
    /// True for bots and automated senders; the engine never answers them.
    pub is_bot: bool,
    /// True for the support team (the adapter knows them: a Slack user group, a Discord role, the
    /// agents' email address). An agent writing in a thread takes it over from the bot.
    pub is_agent: bool,
}

/// Something a person did other than writing a message: a button, a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum UserAction {
    /// An agent takes the conversation; the bot stays silent in it.
    Claim,
    /// An agent closes the conversation.
    Resolve,
    /// The customer rated an answer.
    Feedback { turn_id: String, helpful: bool },
    /// The customer asked for a person (the "Talk to a person" button).
    RequestHuman,
}

/// A file attached to a message. Listed, never indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: Option<String>,
    pub size_bytes: u64,
}

/// One message from a customer or an agent, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// The platform's event id: the inbox drops a second message with the same id.
    pub id: EventId,
    pub source: Source,
    pub workspace: WorkspaceId,
    pub channel: ChannelId,
    pub conversation: ConversationKey,
    pub author: Author,
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// Unix time in milliseconds at which the adapter accepted the message.
    pub received_at_ms: i64,
    /// True when the bot was addressed directly (a mention, a DM, a mail to the support address).
    pub addressed_to_bot: bool,
    /// True when the message starts a conversation rather than replying inside one.
    pub top_level: bool,
    /// Platform data the adapter needs to reply (e.g. Slack's message ts, email Message-ID),
    /// kept opaque to the engine.
    pub reply_context: serde_json::Value,
    /// Set when this is a button press or command rather than a written message.
    #[serde(default)]
    pub action: Option<UserAction>,
    /// True when the platform could not vouch for the sender (e.g. an email whose DKIM check
    /// failed): the engine may answer but never runs an action for it.
    #[serde(default)]
    pub unverified_sender: bool,
}

/// What kind of message the engine wants delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundKind {
    /// A grounded answer with its sources; `turn_id` ties feedback buttons to the turn.
    Answer { turn_id: String, citations: Vec<Citation>, confidence: f32 },
    /// The customer is told a person is coming; `mention` is the policy's escalation target
    /// (a user group, users, an address), to be mentioned in the thread.
    Handoff { mention: Option<String> },
    /// A summary card for the agents, posted to `agents_channel` (with Claim and Resolve).
    AgentSummary { agents_channel: Option<ChannelId>, summary: HandoffSummary },
    /// A short notice (a person joined, the conversation was resolved).
    Notice,
}

/// What agents see when a conversation is handed to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffSummary {
    pub question: String,
    /// The question made standalone with the thread's history.
    pub condensed_question: String,
    /// Reason code (`weak_retrieval`, `asked_for_human`, ...).
    pub reason: String,
    pub confidence: f32,
    pub sources: Vec<Citation>,
    /// In `suggest` mode: the answer the bot would have given, for the agent to use or not.
    pub draft: Option<String>,
    /// The conversation's key, so the agents' buttons act on the right thread.
    pub conversation: ConversationKey,
    pub customer_channel: ChannelId,
}

/// A source cited by an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub doc_id: String,
    pub chunk_id: String,
    pub title: String,
    pub url: Option<String>,
}

/// One message the engine asks an adapter to deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    /// Unique per delivery; adapters use it as an idempotency key where the platform allows.
    pub id: String,
    pub source: Source,
    pub workspace: WorkspaceId,
    pub channel: ChannelId,
    pub conversation: ConversationKey,
    pub text: String,
    pub kind: OutboundKind,
    /// Copied from the inbound message this replies to.
    pub reply_context: serde_json::Value,
}

impl Outbound {
    /// A reply to `to`: in its source, workspace, channel and conversation, with its reply context.
    pub fn reply_to(to: &Inbound, id: impl Into<String>, text: impl Into<String>, kind: OutboundKind) -> Outbound {
        Outbound {
            id: id.into(),
            source: to.source,
            workspace: to.workspace.clone(),
            channel: to.channel.clone(),
            conversation: to.conversation.clone(),
            text: text.into(),
            kind,
            reply_context: to.reply_context.clone(),
        }
    }
}
