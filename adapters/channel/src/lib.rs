//! The contract between frontdesk's engine and its channel adapters.
//!
//! Every channel (Slack, Discord, email) turns its platform's events into the types here and
//! delivers the engine's replies from them. The engine never sees a platform type, and the
//! adapters never see the engine: both depend on this crate only.
//!
//! Layout:
//! - `ids`: newtype identifiers, so a channel id can never be passed where a workspace id is meant.
//! - `message`: the normalised inbound and outbound messages.
//! - `adapter`: the `ChannelAdapter` trait that every adapter implements.
//! - `setup`: how `frontdesk serve` builds a channel from its configuration section
//!   (`ChannelConfig::build` → adapter, HTTP routes, banner lines).
//! - `conformance` (feature `test-util`): the kit every adapter's tests run against it
//!   (`conformance::check`).
//! - `skip`: how a test that cannot run here (a peer or service is missing) gets reported.

pub mod adapter;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod ids;
pub mod message;
pub mod setup;
pub mod skip;

pub use adapter::{AdapterError, ChannelAdapter, Delivered, Health, InboxSink, PolicyConsole};
pub use ids::{AuthorId, ChannelId, ConversationKey, EventId, InvalidId, WorkspaceId};
pub use message::{Attachment, Author, Citation, HandoffSummary, Inbound, Outbound, OutboundKind, Source, UserAction};
pub use setup::{BuildContext, BuiltChannel, ChannelConfig, Routes, SetupError};
