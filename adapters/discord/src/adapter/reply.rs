//! The reply context: what the adapter keeps in `Inbound.reply_context` to reply to a message,
//! and its checks when a reply comes back to be delivered.

use super::PLATFORM;
use crate::config::is_snowflake;
use frontdesk_channel::AdapterError;
use serde::{Deserialize, Serialize};

/// What the adapter needs to reply to a message, kept in `Inbound.reply_context` (opaque to
/// the engine, copied into each reply).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplyContext {
    /// The server, or none for a DM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild: Option<String>,
    /// The channel whose policy applies: the parent of a thread, the channel of a top-level
    /// message, or the DM channel.
    pub channel: String,
    /// Where replies go when the conversation already has a thread (or is a DM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// The customer's top-level message that replies start a thread from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The name of the thread to create (from the customer's question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// For Claim and Resolve: the agents' card clicked on, so the reply can show on it who took
    /// the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRef>,
}

/// An agents' card and what was done on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardRef {
    pub channel: String,
    pub message: String,
    /// The card's first line ("Handoff from #thread"), kept above the status line.
    pub heading: String,
    /// `claimed` or `resolved`.
    pub done: String,
    /// The agent's user id.
    pub by: String,
}

impl ReplyContext {
    pub(super) fn from_value(v: &serde_json::Value) -> Result<ReplyContext, AdapterError> {
        let ctx: ReplyContext = serde_json::from_value(v.clone()).map_err(|e| AdapterError::Rejected {
            platform: PLATFORM,
            code: "bad_reply_context".into(),
            message: format!(
                "the reply has no usable Discord reply context ({e}); it did not come from a Discord message"
            ),
        })?;
        let bad = |what: &str, value: &str| AdapterError::Rejected {
            platform: PLATFORM,
            code: "bad_reply_context".into(),
            message: format!("the reply context's {what} {value:?} is not a Discord id"),
        };
        if !is_snowflake(&ctx.channel) {
            return Err(bad("channel", &ctx.channel));
        }
        for (what, v) in [("thread", &ctx.thread), ("message", &ctx.message), ("guild", &ctx.guild)] {
            if let Some(v) = v {
                if !is_snowflake(v) {
                    return Err(bad(what, v));
                }
            }
        }
        if ctx.thread.is_none() && ctx.message.is_none() {
            return Err(AdapterError::Rejected {
                platform: PLATFORM,
                code: "bad_reply_context".into(),
                message: "the reply context names neither a thread nor a message to reply to".into(),
            });
        }
        Ok(ctx)
    }
}
