//! Discord channel adapter for frontdesk.
//!
//! - Customers' messages arrive over the gateway (intents GUILDS, GUILD_MESSAGES,
//!   MESSAGE_CONTENT, DIRECT_MESSAGES). The bot answers mentions, DMs, replies to itself, and —
//!   when the channel's policy says `answer_top_level` — every top-level message (e.g. a help
//!   forum). It replies in a thread started from the customer's message, or in the thread or
//!   forum post the message was written in; never to bots or itself.
//! - Workspace = the server (guild) id. A direct message belongs to no server: it is answered
//!   from the workspace of the one server its sender shares with the bot (the bot's servers,
//!   `GET /users/@me/guilds`, where `GET /guilds/{id}/members/{user}` finds the sender; kept
//!   5 minutes). Sharing none or several, it is answered from `dm_workspace` if the operator set
//!   one (no default), else the sender is asked in the DM to ask in their server's support
//!   channel; if the lookup fails they are asked to try again. Buttons and `/ask` in a DM alike.
//!   Channel = the channel whose policy applies (a thread's parent). Conversation =
//!   `<guild>:<thread id>` (a top-level message's id is the id of the thread started from it),
//!   or `dm:<channel>`. Event id = the Discord message id, or the interaction id for buttons and
//!   commands, so replays after a gateway RESUME are dropped by the inbox.
//! - Answers carry "Helpful", "Not helpful" and "Talk to a person" buttons; handoffs mention
//!   the policy's escalation target; the agents' channel gets a summary card with "Claim" and
//!   "Resolve". `/ask` and `/frontdesk policy show|set` are registered as global commands.
//! - The summary card shows the customer's question and conversation, so it is posted only in a
//!   channel of the conversation's own server: a policy `agents_channel` in another server, or a
//!   DM channel, is refused when an admin sets it with `/frontdesk policy set` and when a card is
//!   delivered (`agents_channel_other_server`, `agents_channel_not_in_server`; final errors). A
//!   DM answered from a server's workspace hands off to that server's agents' channel; a
//!   workspace that is no server (a `dm_workspace` name, whose policy only the operator sets)
//!   may name any server channel.
//! - Button presses and commands arrive over the gateway, or over HTTP at
//!   `POST /discord/interactions` when the application has an Interactions Endpoint URL.

mod adapter;
mod config;
mod endpoint;
mod errors;
mod interactions;
pub mod render;
mod setup;

#[cfg(feature = "test-util")]
pub mod fake;

pub use adapter::{intents, invite_url, required_permissions, DiscordAdapter, IntakeError};
pub use config::DiscordConfig;
pub use endpoint::{check_timestamp, verify_signature, SignatureError, INTERACTIONS_PATH};
pub use errors::{map_error, DiscordError, DEFAULT_RETRY_AFTER_MS};
pub use interactions::commands;
pub use serenity::interactions_endpoint::Verifier;
