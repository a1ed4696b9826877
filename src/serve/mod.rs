//! `frontdesk serve`: the channel adapters, the durable inbox, the engine and the HTTP endpoints
//! in one process.
//!
//! [`ChannelSet`] is the [`Deliverer`] the inbox worker talks to: it sends each reply, and each
//! progress report, through the adapter of the message's source.

use crate::channel::{AdapterError, ChannelAdapter, Delivered, Inbound, Outbound, Source};
use crate::inbox::Deliverer;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The running channel adapters, by the source their messages carry.
#[derive(Clone, Default)]
pub struct ChannelSet {
    adapters: BTreeMap<SourceKey, Arc<dyn ChannelAdapter>>,
}

/// `Source` as a map key (the enum itself has no ordering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SourceKey(u8);

impl From<Source> for SourceKey {
    fn from(source: Source) -> Self {
        SourceKey(match source {
            Source::Slack => 0,
            Source::Discord => 1,
            Source::Email => 2,
            Source::Cli => 3,
        })
    }
}

impl ChannelSet {
    pub fn new() -> ChannelSet {
        ChannelSet::default()
    }

    /// Adds the adapter that delivers messages of `source`, replacing any earlier one.
    pub fn with(mut self, source: Source, adapter: Arc<dyn ChannelAdapter>) -> ChannelSet {
        self.adapters.insert(source.into(), adapter);
        self
    }

    pub fn get(&self, source: Source) -> Option<&Arc<dyn ChannelAdapter>> {
        self.adapters.get(&source.into())
    }

    /// Every adapter, in a stable order.
    pub fn adapters(&self) -> impl Iterator<Item = &Arc<dyn ChannelAdapter>> {
        self.adapters.values()
    }

    pub fn is_empty(&self) -> bool {
        self.adapters.is_empty()
    }
}

#[async_trait]
impl Deliverer for ChannelSet {
    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
        match self.get(message.source) {
            Some(adapter) => adapter.deliver(message).await,
            // Not retryable: without the adapter configured the reply can never go out; it is
            // kept as a dead letter, visible in `frontdesk doctor`, rather than retried forever.
            None => Err(AdapterError::Rejected {
                platform: "frontdesk",
                code: "channel_not_configured".into(),
                message: format!("no {:?} adapter is configured to deliver this reply", message.source),
            }),
        }
    }

    async fn working(&self, message: &Inbound, busy: bool) {
        if let Some(adapter) = self.get(message.source) {
            adapter.working(message, busy).await;
        }
    }
}

pub mod console;
pub mod http;
pub mod listen;
pub mod registry;
pub mod run;

pub use run::{ServeError, Server};
