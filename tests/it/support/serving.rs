//! One channel at work over an engine, wired as `frontdesk serve` wires it: a durable inbox
//! that rescans and retries quickly, the worker answering from it, and the adapter receiving
//! into it. Shared by the whole-conversation tests of each channel.

use super::wait::eventually_within;
use frontdesk::channel::{ChannelAdapter, ConversationKey, InboxSink, Source, WorkspaceId};
use frontdesk::engine::Engine;
use frontdesk::inbox::{Inbox, InboxOptions, Worker};
use frontdesk::serve::console::StorePolicyConsole;
use frontdesk::serve::ChannelSet;
use frontdesk_discord::fake::FakeDiscord;
use frontdesk_discord::DiscordAdapter;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Serving {
    pub inbox: Inbox,
    shutdown: CancellationToken,
    worker: JoinHandle<()>,
    receiving: JoinHandle<Result<(), frontdesk::channel::AdapterError>>,
}

/// Starts the worker over `engine` and `adapter`, and the adapter, on the engine's store.
pub fn serve(engine: &Arc<Engine>, source: Source, adapter: Arc<dyn ChannelAdapter>) -> Serving {
    let options = InboxOptions {
        rescan_every: Duration::from_millis(100),
        retry_base: Duration::from_millis(50),
        ..InboxOptions::default()
    };
    let inbox = Inbox::open(&engine.kb.store, options).unwrap();
    let channels = ChannelSet::new().with(source, adapter.clone());
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(inbox.clone(), engine.clone(), Arc::new(channels)).run(shutdown.clone()));
    let receiving = {
        let (sink, shutdown) = (Arc::new(inbox.clone()) as Arc<dyn InboxSink>, shutdown.clone());
        tokio::spawn(async move { adapter.run(sink, shutdown).await })
    };
    Serving { inbox, shutdown, worker, receiving }
}

/// The Discord channel over `engine`, connected to a fake Discord, its server admins' policy
/// commands writing the engine's policies; returns once the bot has identified on the fake's
/// gateway and registered its slash commands.
pub async fn serve_discord(engine: &Arc<Engine>) -> (FakeDiscord, Serving) {
    const READY: Duration = Duration::from_secs(20);
    let fake = FakeDiscord::start().await.unwrap();
    let console = Arc::new(StorePolicyConsole::new(engine.policies.clone()));
    let adapter = DiscordAdapter::new(fake.config(), console).unwrap();
    let serving = serve(engine, frontdesk::channel::Source::Discord, adapter);
    fake.wait_identified(1, READY).await.unwrap();
    fake.wait_commands(READY).await.unwrap();
    (fake, serving)
}

impl Serving {
    /// Stops both; the adapter must return without an error.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.receiving).await.unwrap().unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.worker).await.unwrap().unwrap();
    }
}

/// Waits, at most `bound`, until the engine has recorded `text` in the Discord conversation
/// `conv` and the inbox is drained: the message was handled, and whatever it produced was
/// delivered.
pub async fn discord_handled(
    bound: Duration,
    engine: &Engine,
    inbox: &Inbox,
    ws: &WorkspaceId,
    conv: &ConversationKey,
    text: &str,
) {
    eventually_within(bound, &format!("{text:?} to be handled"), async || {
        let recorded = engine
            .conversations
            .get(Source::Discord, ws, conv)
            .unwrap()
            .is_some_and(|c| c.messages.iter().any(|m| m.text.contains(text)));
        let stats = inbox.stats();
        (recorded && stats.pending_inbound == 0 && stats.pending_outbound == 0).then_some(())
    })
    .await;
}
