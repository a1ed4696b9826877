//! The channel contract's conformance kit, with the fake Discord as the platform.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use async_trait::async_trait;
use common::{RecordingPolicies, WAIT};
use frontdesk_channel::conformance::{check, PlatformDriver};
use frontdesk_discord::fake::{FakeDiscord, FakeUser, SUPPORT_CHANNEL};
use frontdesk_discord::DiscordAdapter;
use std::sync::{Arc, Mutex};

/// Drives the fake Discord: customers mention the bot in the support channel.
struct Driver<'a> {
    fake: &'a FakeDiscord,
    last: Mutex<Option<(u64, serde_json::Value)>>,
}

#[async_trait]
impl PlatformDriver for Driver<'_> {
    async fn send_customer_message(&self, text: &str) -> Result<(), String> {
        // The kit starts the adapter just before: wait until the bot is connected.
        self.fake.wait_identified(1, WAIT).await?;
        let id = self.fake.new_id();
        let message = self.fake.message_json(id, SUPPORT_CHANNEL, &FakeUser::customer(), text, true);
        self.fake.dispatch("MESSAGE_CREATE", message.clone())?;
        *self.last.lock().unwrap() = Some((id, message));
        Ok(())
    }

    async fn replay_last(&self) -> Result<(), String> {
        let (_, message) = self.last.lock().unwrap().clone().ok_or("no message was sent")?;
        self.fake.dispatch("MESSAGE_CREATE", message).map(|_| ())
    }

    async fn send_own_message(&self, text: &str) -> Result<(), String> {
        self.fake.send_message(SUPPORT_CHANNEL, &FakeUser::bot_self(), text, false).map(|_| ())
    }

    async fn delivered_in_thread(&self) -> Vec<String> {
        // The thread started from a message has the message's id.
        let Some((id, _)) = self.last.lock().unwrap().clone() else { return Vec::new() };
        self.fake.posted_in(id).into_iter().map(|p| p.content).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discord_adapter_passes_the_conformance_kit() {
    let fake = FakeDiscord::start().await.unwrap();
    let adapter = DiscordAdapter::new(fake.config(), Arc::new(RecordingPolicies::default())).unwrap();
    let driver = Driver { fake: &fake, last: Mutex::new(None) };
    let result = check(adapter, &driver).await;
    assert_eq!(result, Ok(()));
    // The reply went to a thread started from the customer's message.
    let (id, _) = driver.last.lock().unwrap().clone().unwrap();
    assert_eq!(fake.threads(), vec![(SUPPORT_CHANNEL, id)]);
}
