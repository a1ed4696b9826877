//! The conformance kit every channel adapter must pass.
//!
//! An adapter's own tests drive its platform (a loopback fake of Slack's Web API, a fake
//! Discord gateway, a real local mail server) through a `PlatformDriver`, and `check` verifies
//! the contract the engine relies on:
//!
//! 1. `healthcheck` reports the platform reachable with the adapter's credentials;
//! 2. a customer's message reaches the inbox once, normalised (non-empty ids, the adapter's
//!    source, a human author, the text, a receive time);
//! 3. a replay of the same platform event (a retry, a gateway resume, the same email twice)
//!    carries the same event id, so the inbox drops it — a new id would mean a second reply;
//! 4. the bot's own messages are never handed over as a customer's;
//! 5. a reply delivered with the inbound's `reply_context` lands in the same thread;
//! 6. `run` returns promptly once shutdown is signalled.
//!
//! Every failed point is reported, not just the first.

use crate::adapter::{AdapterError, ChannelAdapter, InboxSink};
use crate::message::{Inbound, Outbound, OutboundKind};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the kit waits for the platform and the adapter at each step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Drives the platform side of an adapter under test.
#[async_trait]
pub trait PlatformDriver: Send + Sync {
    /// Makes the platform send the bot a customer's message (a mention, a DM, an email).
    async fn send_customer_message(&self, text: &str) -> Result<(), String>;
    /// Makes the platform send the last event again, as a retry or replay would.
    async fn replay_last(&self) -> Result<(), String>;
    /// Makes the platform report a message written by the bot itself.
    async fn send_own_message(&self, text: &str) -> Result<(), String>;
    /// Texts the platform received in the thread of the last customer message.
    async fn delivered_in_thread(&self) -> Vec<String>;
}

/// An inbox that records what it accepted and drops duplicates as the real one does.
#[derive(Default)]
pub struct RecordingInbox {
    accepted: Mutex<Vec<Inbound>>,
    offered: Mutex<usize>,
}

impl RecordingInbox {
    pub fn accepted(&self) -> Vec<Inbound> {
        self.accepted.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Messages offered, duplicates included.
    pub fn offered(&self) -> usize {
        self.offered.lock().map(|n| *n).unwrap_or(0)
    }
}

#[async_trait]
impl InboxSink for RecordingInbox {
    async fn accept(&self, message: Inbound) -> Result<bool, AdapterError> {
        if let Ok(mut n) = self.offered.lock() {
            *n += 1;
        }
        let mut accepted = self.accepted.lock().map_err(|_| AdapterError::Inbox("poisoned".into()))?;
        let duplicate = accepted
            .iter()
            .any(|m| m.source == message.source && m.workspace == message.workspace && m.id == message.id);
        if duplicate {
            return Ok(false);
        }
        accepted.push(message);
        Ok(true)
    }
}

async fn wait_for(mut ready: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ready()
}

/// Runs the whole contract against an adapter. `Ok(())` when every point holds; otherwise
/// every failure, in order.
pub async fn check(adapter: Arc<dyn ChannelAdapter>, driver: &dyn PlatformDriver) -> Result<(), Vec<String>> {
    let mut failures = Vec::new();
    let health = adapter.healthcheck().await;
    if !health.ok {
        failures.push(format!("1. healthcheck failed: {}", health.detail));
    }

    let inbox = Arc::new(RecordingInbox::default());
    let shutdown = CancellationToken::new();
    let running = {
        let (adapter, inbox, shutdown) = (adapter.clone(), inbox.clone(), shutdown.clone());
        tokio::spawn(async move { adapter.run(inbox, shutdown).await })
    };

    let text = "conformance: how do refunds work?";
    if let Err(e) = driver.send_customer_message(text).await {
        failures.push(format!("2. the platform could not send a message: {e}"));
    }
    let arrived = wait_for(|| !inbox.accepted().is_empty()).await;
    let first = inbox.accepted().first().cloned();
    match (&first, arrived) {
        (Some(m), true) => {
            if !m.text.contains("how do refunds work?") {
                failures.push(format!("2. the message text was not kept: {:?}", m.text));
            }
            if m.author.is_bot || m.author.is_agent {
                failures.push("2. a customer's message was marked as from a bot or an agent".into());
            }
            if m.received_at_ms <= 0 {
                failures.push("2. received_at_ms is not set".into());
            }
            let name = format!("{:?}", m.source).to_lowercase();
            if name != adapter.name() {
                failures.push(format!("2. source is {name}, the adapter is {}", adapter.name()));
            }
        }
        _ => failures.push("2. the customer's message never reached the inbox".into()),
    }

    // A replay must carry the same event id (the inbox then drops it).
    let offered_before = inbox.offered();
    if let Err(e) = driver.replay_last().await {
        failures.push(format!("3. the platform could not replay the event: {e}"));
    }
    let _ = wait_for(|| inbox.offered() > offered_before).await;
    if inbox.accepted().len() > 1 {
        failures.push("3. a replayed event reached the inbox with a new event id (it would be answered twice)".into());
    }

    // The bot's own messages are not customers' messages.
    if let Err(e) = driver.send_own_message("conformance: the bot's own reply").await {
        failures.push(format!("4. the platform could not send the bot's own message: {e}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let own_as_customer = inbox.accepted().iter().any(|m| m.text.contains("the bot's own reply") && !m.author.is_bot);
    if own_as_customer {
        failures.push("4. the bot's own message was handed over as a customer's".into());
    }

    // A reply goes to the same thread.
    if let Some(m) = &first {
        let reply = Outbound::reply_to(
            m,
            format!("conformance-{}", m.id),
            "conformance: a reply in the thread",
            OutboundKind::Notice,
        );
        match adapter.deliver(&reply).await {
            Ok(_) => {
                let mut landed = false;
                let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
                while !landed && tokio::time::Instant::now() < deadline {
                    landed = driver.delivered_in_thread().await.iter().any(|t| t.contains("a reply in the thread"));
                    if !landed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                if !landed {
                    failures.push("5. the reply was delivered but not in the customer's thread".into());
                }
            }
            Err(e) => failures.push(format!("5. delivering a reply failed: {e}")),
        }
    }

    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(5), running).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => failures.push(format!("6. run ended with an error on shutdown: {e}")),
        Ok(Err(e)) => failures.push(format!("6. run panicked: {e}")),
        Err(_) => failures.push("6. run did not return within 5 s of shutdown".into()),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

#[cfg(test)]
mod tests {
    //! The kit against a loopback adapter whose "platform" is in memory — once well-behaved,
    //! and once with each kind of bug the kit must catch.

    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::adapter::{Delivered, Health};
    use crate::ids::{AuthorId, ChannelId, ConversationKey, EventId, WorkspaceId};
    use crate::message::{Author, Source};
    use tokio::sync::mpsc;

    #[derive(Clone, Copy, Default)]
    struct Bugs {
        new_id_on_replay: bool,
        own_messages_as_customer: bool,
        reply_elsewhere: bool,
    }

    struct Event {
        id: String,
        text: String,
        from_bot: bool,
    }

    struct Loopback {
        bugs: Bugs,
        events: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
        thread: Arc<Mutex<Vec<String>>>,
        elsewhere: Arc<Mutex<Vec<String>>>,
        counter: Mutex<u64>,
    }

    #[async_trait]
    impl ChannelAdapter for Loopback {
        fn name(&self) -> &'static str {
            "cli"
        }

        async fn run(&self, inbox: Arc<dyn InboxSink>, shutdown: CancellationToken) -> Result<(), AdapterError> {
            let Some(mut events) = self.events.lock().unwrap().take() else { return Ok(()) };
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    e = events.recv() => match e { Some(e) => e, None => return Ok(()) },
                };
                if event.from_bot && !self.bugs.own_messages_as_customer {
                    continue;
                }
                let id = if self.bugs.new_id_on_replay {
                    let mut n = self.counter.lock().unwrap();
                    *n += 1;
                    format!("{}-{n}", event.id)
                } else {
                    event.id.clone()
                };
                let message = Inbound {
                    id: EventId::new(id).unwrap(),
                    source: Source::Cli,
                    workspace: WorkspaceId::new("W").unwrap(),
                    channel: ChannelId::new("C").unwrap(),
                    conversation: ConversationKey::new("thread-1").unwrap(),
                    author: Author {
                        id: AuthorId::new("U1").unwrap(),
                        display_name: None,
                        is_bot: false,
                        is_agent: false,
                    },
                    text: event.text,
                    attachments: Vec::new(),
                    received_at_ms: 1,
                    addressed_to_bot: true,
                    top_level: true,
                    reply_context: serde_json::json!({"thread": "thread-1"}),
                    action: None,
                    unverified_sender: false,
                };
                inbox.accept(message).await?;
            }
        }

        async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
            let target = if self.bugs.reply_elsewhere { &self.elsewhere } else { &self.thread };
            target.lock().unwrap().push(message.text.clone());
            Ok(Delivered { platform_message_id: None })
        }

        async fn healthcheck(&self) -> Health {
            Health { ok: true, detail: "loopback".into() }
        }
    }

    struct Driver {
        tx: mpsc::UnboundedSender<Event>,
        last: Mutex<Option<(String, String)>>,
        thread: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl PlatformDriver for Driver {
        async fn send_customer_message(&self, text: &str) -> Result<(), String> {
            *self.last.lock().unwrap() = Some(("ev-1".into(), text.into()));
            self.tx.send(Event { id: "ev-1".into(), text: text.into(), from_bot: false }).map_err(|e| e.to_string())
        }
        async fn replay_last(&self) -> Result<(), String> {
            let (id, text) = self.last.lock().unwrap().clone().ok_or("nothing sent")?;
            self.tx.send(Event { id, text, from_bot: false }).map_err(|e| e.to_string())
        }
        async fn send_own_message(&self, text: &str) -> Result<(), String> {
            self.tx.send(Event { id: "ev-bot".into(), text: text.into(), from_bot: true }).map_err(|e| e.to_string())
        }
        async fn delivered_in_thread(&self) -> Vec<String> {
            self.thread.lock().unwrap().clone()
        }
    }

    async fn run_with(bugs: Bugs) -> Result<(), Vec<String>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = Arc::new(Mutex::new(Vec::new()));
        let adapter = Arc::new(Loopback {
            bugs,
            events: Mutex::new(Some(rx)),
            thread: thread.clone(),
            elsewhere: Arc::new(Mutex::new(Vec::new())),
            counter: Mutex::new(0),
        });
        let driver = Driver { tx, last: Mutex::new(None), thread };
        check(adapter, &driver).await
    }

    #[tokio::test]
    async fn a_well_behaved_adapter_passes() {
        assert_eq!(run_with(Bugs::default()).await, Ok(()));
    }

    #[tokio::test]
    async fn each_broken_promise_is_reported() {
        let e = run_with(Bugs { new_id_on_replay: true, ..Bugs::default() }).await.unwrap_err();
        assert!(e.iter().any(|f| f.starts_with("3.")), "{e:?}");
        let e = run_with(Bugs { own_messages_as_customer: true, ..Bugs::default() }).await.unwrap_err();
        assert!(e.iter().any(|f| f.starts_with("4.")), "{e:?}");
        let e = run_with(Bugs { reply_elsewhere: true, ..Bugs::default() }).await.unwrap_err();
        assert!(e.iter().any(|f| f.starts_with("5.")), "{e:?}");
    }
}
