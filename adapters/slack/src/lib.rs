//! Slack channel adapter for frontdesk.
//!
//! Customers ask in Slack channels, threads and DMs; the bot answers in the thread with its
//! sources and feedback buttons, and hands the thread to a person when it is not sure. This
//! crate turns Slack's events into frontdesk's neutral messages and delivers the engine's
//! replies; it never decides anything itself.
//!
//! Layout:
//! - `config`: the `[slack]` section ([`SlackConfig`]) and its sanity checks.
//! - `signature`: Slack's request signing (HMAC-SHA256 and the timestamp window).
//! - `normalise`: Slack payloads → [`frontdesk_channel::Inbound`] (ids that make retries and
//!   `message`/`app_mention` pairs one message).
//! - `reply`: the reply context kept with each message and its replies (channel, thread, the
//!   agents' card), read back and checked when a reply is delivered.
//! - `blocks`: Block Kit for answers and the agents' summary card; the buttons' values.
//! - `agents`: the members of each workspace's agents' user group, cached so that Slack is
//!   never kept waiting for them.
//! - `api`: Web API calls and how their failures map onto retryable or not.
//! - `store`: OAuth installations (bot tokens encrypted at rest), install states.
//! - `adapter`: [`SlackAdapter`] and its `ChannelAdapter` implementation.
//! - `http`: the routes Slack calls (`/slack/events`, `/slack/interactions`, `/slack/install`,
//!   `/slack/oauth/callback`).
//! - `socket`: Socket Mode intake.
//! - `fake` (feature `test-util`): a loopback Slack Web API and a signed sender, for tests.

mod adapter;
mod agents;
pub mod api;
pub mod blocks;
pub mod config;
mod http;
pub mod normalise;
mod reply;
mod setup;
pub mod signature;
mod socket;
pub mod store;

#[cfg(feature = "test-util")]
pub mod fake;

pub use adapter::{SlackAdapter, WORKING_REACTION};
pub use config::{SlackAgents, SlackConfig, SlackMode};

/// Why the adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Values in `[slack]` that cannot work, as (key, what is wrong).
    #[error("the [slack] configuration has problems: {}", .0.iter().map(|(k, w)| format!("{k}: {w}")).collect::<Vec<_>>().join("; "))]
    Config(Vec<(String, String)>),
    /// The HTTP client for Slack's Web API could not be set up.
    #[error("cannot set up the Slack client: {0}")]
    Client(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}
