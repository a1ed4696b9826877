//! Socket Mode against the fake's WebSocket server: the connection is opened with the app-level
//! token, events and clicks arrive as envelopes and are acknowledged only once the inbox holds
//! them (an envelope the inbox refused is left unacknowledged, so Slack redelivers it), a
//! redelivered envelope gives one message, and a `disconnect` is followed by a new connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use frontdesk_channel::conformance::RecordingInbox;
use frontdesk_channel::{AdapterError, ChannelAdapter, Inbound, InboxSink, UserAction};
use frontdesk_slack::blocks::ACTION_CLAIM;
use frontdesk_slack::fake::{FakeSlack, APP_TOKEN, BOT_TOKEN, BOT_USER_ID, TEAM_ID};
use frontdesk_slack::{SlackAdapter, SlackAgents, SlackConfig, SlackMode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// An inbox that can be made to fail, as a full disk or a crashed store would.
#[derive(Default)]
struct Inbox {
    inner: RecordingInbox,
    failing: AtomicBool,
}

#[async_trait]
impl InboxSink for Inbox {
    async fn accept(&self, message: Inbound) -> Result<bool, AdapterError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AdapterError::Inbox("the store is not writable".into()));
        }
        self.inner.accept(message).await
    }
}

async fn until<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_takes_events_and_clicks_acknowledges_only_what_is_stored_and_reconnects() {
    let fake = Arc::new(FakeSlack::start().await.unwrap());
    let config = SlackConfig {
        mode: SlackMode::Socket,
        app_token: Some(APP_TOKEN.into()),
        bot_token: Some(BOT_TOKEN.into()),
        api_url: fake.api_url(),
        agents: [(TEAM_ID.to_string(), SlackAgents { user_ids: vec!["UAGENT".into()], usergroup: None })].into(),
        ..SlackConfig::default()
    };
    let tree = sled::Config::new().temporary(true).open().unwrap().open_tree("slack").unwrap();
    let adapter = SlackAdapter::new(config, tree).unwrap();
    let inbox = Arc::new(Inbox::default());
    let shutdown = CancellationToken::new();
    let running = {
        let (adapter, inbox, shutdown) = (adapter.clone(), inbox.clone(), shutdown.clone());
        tokio::spawn(async move { adapter.run(inbox, shutdown).await })
    };
    until("a socket connection", || (fake.socket_connections().1 > 0).then_some(())).await;
    let opened = fake.calls_of("apps.connections.open");
    assert!(opened.iter().all(|c| c.token.as_deref() == Some(APP_TOKEN)), "opened with the app-level token");

    // A customer's mention arrives as an events_api envelope: stored, then acknowledged.
    let question = fake.customer_message("C1", "UCUSTOMER", &format!("<@{BOT_USER_ID}> how do refunds work?"), None);
    let event = fake.event_for(&question, "app_mention", "Ev1");
    fake.push_socket(&fake.socket_event(&event, "env-1", 0)).unwrap();
    until("the ack of env-1", || fake.acks().contains(&"env-1".to_string()).then_some(())).await;
    let got = inbox.inner.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "how do refunds work?");
    assert_eq!(got[0].id.as_str(), format!("C1:{}", question.ts));
    assert!(got[0].addressed_to_bot && got[0].top_level);

    // Slack redelivers an envelope whose ack it did not see in time: one message still.
    fake.push_socket(&fake.socket_event(&event, "env-1", 1)).unwrap();
    until("the second ack of env-1", || (fake.acks().iter().filter(|a| *a == "env-1").count() == 2).then_some(()))
        .await;
    assert_eq!(inbox.inner.accepted().len(), 1);
    assert_eq!(inbox.inner.offered(), 2);

    // While the inbox cannot store anything, nothing is acknowledged ...
    inbox.failing.store(true, Ordering::SeqCst);
    let second = fake.customer_message("C1", "UCUSTOMER", &format!("<@{BOT_USER_ID}> and for annual plans?"), None);
    let second_event = fake.event_for(&second, "app_mention", "Ev2");
    fake.push_socket(&fake.socket_event(&second_event, "env-2", 0)).unwrap();
    // A later envelope on the same connection is acknowledged, so env-2 was seen and refused.
    fake.push_socket(&serde_json::json!({"type": "events_api", "envelope_id": "env-probe", "payload": {"type": "app_rate_limited"}, "accepts_response_payload": false})).unwrap();
    until("the probe's ack", || fake.acks().contains(&"env-probe".to_string()).then_some(())).await;
    assert!(!fake.acks().contains(&"env-2".to_string()), "an envelope the inbox refused must not be acknowledged");
    // ... and Slack's redelivery, once the inbox works again, is stored and acknowledged.
    inbox.failing.store(false, Ordering::SeqCst);
    fake.push_socket(&fake.socket_event(&second_event, "env-2", 1)).unwrap();
    until("the ack of env-2", || fake.acks().contains(&"env-2".to_string()).then_some(())).await;
    assert_eq!(inbox.inner.accepted().len(), 2);
    assert_eq!(inbox.inner.accepted()[1].text, "and for annual plans?");

    // A click arrives as an interactive envelope.
    let card = fake.customer_message("CAGENTS", BOT_USER_ID, "card", None);
    let mut card = card;
    card.blocks = Some(serde_json::json!([{"type": "actions", "block_id": "frontdesk_agent", "elements": [
        {"type": "button", "action_id": ACTION_CLAIM, "text": {"type": "plain_text", "text": "Claim"},
         "value": serde_json::json!({"c": format!("T1:C1:{}", question.ts), "ch": "C1", "th": question.ts}).to_string()}]}]));
    let click = fake.click(&card, "UAGENT", ACTION_CLAIM).unwrap();
    fake.push_socket(&fake.socket_click(&click, "env-3")).unwrap();
    until("the ack of env-3", || fake.acks().contains(&"env-3".to_string()).then_some(())).await;
    let claimed = inbox.inner.accepted().pop().unwrap();
    assert_eq!(claimed.action, Some(UserAction::Claim));
    assert_eq!(claimed.conversation.as_str(), format!("T1:C1:{}", question.ts));

    // Slack rotates its servers: `disconnect`, then the client opens new connections.
    let (before, _) = fake.socket_connections();
    fake.disconnect_sockets();
    until("a new connection", || {
        let (total, open) = fake.socket_connections();
        (total > before && open > 0).then_some(())
    })
    .await;
    let third = fake.customer_message("C1", "UCUSTOMER", &format!("<@{BOT_USER_ID}> is there a free trial?"), None);
    fake.push_socket(&fake.socket_event(&fake.event_for(&third, "app_mention", "Ev3"), "env-4", 0)).unwrap();
    until("the ack of env-4", || fake.acks().contains(&"env-4".to_string()).then_some(())).await;
    assert_eq!(inbox.inner.accepted().len(), 4);

    shutdown.cancel();
    tokio::time::timeout(WAIT, running).await.expect("run returns on shutdown").unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_app_token_stops_socket_mode_with_slacks_reason() {
    let fake = Arc::new(FakeSlack::start().await.unwrap());
    let config = SlackConfig {
        mode: SlackMode::Socket,
        app_token: Some("xapp-1-not-the-token".into()),
        bot_token: Some(BOT_TOKEN.into()),
        api_url: fake.api_url(),
        ..SlackConfig::default()
    };
    let tree = sled::Config::new().temporary(true).open().unwrap().open_tree("slack").unwrap();
    let adapter = SlackAdapter::new(config, tree).unwrap();
    let result = tokio::time::timeout(WAIT, adapter.run(Arc::new(RecordingInbox::default()), CancellationToken::new()))
        .await
        .expect("a refused token ends run");
    let e = result.unwrap_err();
    assert!(e.to_string().contains("invalid_auth"), "{e}");
    let doctor = adapter.doctor().await;
    let check = doctor.iter().find(|(name, _)| name == "slack app token").unwrap();
    assert!(!check.1.ok && check.1.detail.contains("invalid_auth"), "{doctor:?}");
    eprintln!("what an admin reads: {e}");
}
