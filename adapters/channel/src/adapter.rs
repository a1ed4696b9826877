//! The `ChannelAdapter` trait: how the engine runs an adapter and asks it to deliver replies.

use crate::ids::{ChannelId, WorkspaceId};
use crate::message::{Inbound, Outbound};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

/// Why an adapter could not do what was asked. `retryable` failures stay in the outbox and are
/// tried again; the others are recorded and reported (`frontdesk doctor`, logs).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("{platform} rejected the request ({code}): {message}")]
    Rejected { platform: &'static str, code: String, message: String },
    #[error("{platform} is rate limiting us; retry after {retry_after_ms} ms")]
    RateLimited { platform: &'static str, retry_after_ms: u64 },
    #[error("{platform} could not be reached: {message}")]
    Unavailable { platform: &'static str, message: String },
    #[error("the inbox refused the message: {0}")]
    Inbox(String),
}

impl AdapterError {
    /// True when trying again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, AdapterError::RateLimited { .. } | AdapterError::Unavailable { .. })
    }
}

/// The result of a delivery: the platform's id of the message that was posted, when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub platform_message_id: Option<String>,
}

/// The result of a health check: what it checked and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub ok: bool,
    pub detail: String,
}

/// Where an adapter puts accepted messages. `accept` returns only once the message is durable,
/// so an adapter may acknowledge the platform after it returns. `Ok(false)` means the message
/// was a duplicate and was dropped on purpose.
#[async_trait]
pub trait InboxSink: Send + Sync {
    async fn accept(&self, message: Inbound) -> Result<bool, AdapterError>;
}

/// A channel: receives platform events, normalises them into the inbox, delivers replies.
#[async_trait]
pub trait ChannelAdapter: Send + Sync {
    /// A short stable name ("slack", "discord", "email").
    fn name(&self) -> &'static str;

    /// Receives events until `shutdown` is cancelled, handing each accepted message to `inbox`.
    async fn run(&self, inbox: std::sync::Arc<dyn InboxSink>, shutdown: CancellationToken) -> Result<(), AdapterError>;

    /// Delivers one outbound message.
    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError>;

    /// Checks that the platform answers with our credentials, the way real traffic would.
    async fn healthcheck(&self) -> Health;

    /// `frontdesk doctor`'s checks of this channel, each named: by default the health check
    /// alone; adapters add what else an admin must know (permissions, a mailbox's settings).
    async fn doctor(&self) -> Vec<(String, Health)> {
        vec![("platform".to_string(), self.healthcheck().await)]
    }

    /// The engine started (`busy = true`) or finished (`busy = false`) working on `message`.
    /// Adapters that can show it do (Slack: an 👀 reaction on the customer's message; Discord:
    /// "typing…"). Until the turn is decided this is all the customer sees: no part of an answer
    /// is shown before its checks have passed, and the reply is then delivered whole. Best
    /// effort: a failure here is logged by the adapter and never holds up the reply.
    async fn working(&self, message: &Inbound, busy: bool) {
        let _ = (message, busy);
    }
}

/// Channel policies as a platform's admins see them from inside the platform (Discord's
/// `/frontdesk policy`). The adapter checks the admin's permission first; this only reads and
/// writes the policy store. Errors are messages meant for the admin.
#[async_trait]
pub trait PolicyConsole: Send + Sync {
    /// The channel's effective policy, one `key = value` per line.
    async fn show(&self, workspace: &WorkspaceId, channel: &ChannelId) -> Result<String, String>;
    /// Sets one key for the channel (`frontdesk policy keys` lists them) and returns the new
    /// effective policy as `show` does.
    async fn set(&self, workspace: &WorkspaceId, channel: &ChannelId, key: &str, value: &str)
        -> Result<String, String>;
    /// Where the channel's handoffs are announced to agents (`agents_channel`), if anywhere.
    async fn agents_channel(&self, workspace: &WorkspaceId, channel: &ChannelId) -> Result<Option<String>, String>;
}
