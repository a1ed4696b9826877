//! Shared by the adapter's tests: the fake Discord with the adapter running against it, an
//! inbox that records what it accepted, and a policy console that records what admins set.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use async_trait::async_trait;
use frontdesk_channel::conformance::RecordingInbox;
use frontdesk_channel::{AdapterError, ChannelAdapter, ChannelId, Inbound, PolicyConsole, WorkspaceId};
use frontdesk_discord::fake::FakeDiscord;
use frontdesk_discord::{DiscordAdapter, DiscordConfig};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A bound on every wait, so a broken adapter fails the test instead of hanging CI.
pub const WAIT: Duration = Duration::from_secs(10);

/// Policies kept in memory; `set` refuses keys it does not know, as the real store does.
#[derive(Default)]
pub struct RecordingPolicies {
    pub values: Mutex<BTreeMap<(String, String), BTreeMap<String, String>>>,
    pub sets: Mutex<Vec<(String, String, String, String)>>,
}

const KEYS: &[&str] = &["answer_top_level", "mode", "escalation_target", "agents_channel", "confidence_threshold"];

impl RecordingPolicies {
    fn render(&self, ws: &WorkspaceId, ch: &ChannelId) -> String {
        let values = self.values.lock().unwrap();
        let set = values.get(&(ws.to_string(), ch.to_string())).cloned().unwrap_or_default();
        KEYS.iter()
            .map(|k| format!("{k} = {}", set.get(*k).cloned().unwrap_or_else(|| "(default)".into())))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[async_trait]
impl PolicyConsole for RecordingPolicies {
    async fn show(&self, ws: &WorkspaceId, ch: &ChannelId) -> Result<String, String> {
        Ok(self.render(ws, ch))
    }

    async fn set(&self, ws: &WorkspaceId, ch: &ChannelId, key: &str, value: &str) -> Result<String, String> {
        if !KEYS.contains(&key) {
            return Err(format!("unknown policy key {key:?}"));
        }
        self.sets.lock().unwrap().push((ws.to_string(), ch.to_string(), key.to_string(), value.to_string()));
        self.values
            .lock()
            .unwrap()
            .entry((ws.to_string(), ch.to_string()))
            .or_default()
            .insert(key.to_string(), value.to_string());
        Ok(self.render(ws, ch))
    }

    async fn agents_channel(&self, ws: &WorkspaceId, ch: &ChannelId) -> Result<Option<String>, String> {
        Ok(self
            .values
            .lock()
            .unwrap()
            .get(&(ws.to_string(), ch.to_string()))
            .and_then(|v| v.get("agents_channel"))
            .cloned())
    }
}

pub struct Running {
    pub fake: FakeDiscord,
    pub adapter: Arc<DiscordAdapter>,
    pub inbox: Arc<RecordingInbox>,
    pub policies: Arc<RecordingPolicies>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), AdapterError>>,
}

impl Running {
    /// Stops the adapter and checks that `run` ended cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let ended = tokio::time::timeout(WAIT, self.task).await.expect("run did not return after shutdown");
        ended.expect("run panicked").expect("run failed");
    }
}

/// Starts the fake and the adapter (configured by `tweak`), and waits until the bot is
/// connected and has registered its commands.
pub async fn start_with(tweak: impl FnOnce(&mut DiscordConfig)) -> Running {
    let fake = FakeDiscord::start().await.unwrap();
    let mut config = fake.config();
    tweak(&mut config);
    let policies = Arc::new(RecordingPolicies::default());
    let adapter = DiscordAdapter::new(config, policies.clone()).unwrap();
    let inbox = Arc::new(RecordingInbox::default());
    let shutdown = CancellationToken::new();
    let task = {
        let (a, i, s) = (adapter.clone(), inbox.clone(), shutdown.clone());
        tokio::spawn(async move { a.run(i, s).await })
    };
    fake.wait_identified(1, WAIT).await.unwrap();
    fake.wait_commands(WAIT).await.unwrap();
    Running { fake, adapter, inbox, policies, shutdown, task }
}

pub async fn start() -> Running {
    start_with(|_| {}).await
}

/// Waits until `ready` holds (bounded by `WAIT`).
pub async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ready() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the inbox has accepted `n` messages and returns them.
pub async fn accepted(inbox: &RecordingInbox, n: usize) -> Vec<Inbound> {
    until(&format!("{n} accepted messages"), || inbox.accepted().len() >= n).await;
    inbox.accepted()
}
