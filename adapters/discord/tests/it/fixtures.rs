//! Payloads in the shapes Discord documents, kept in `tests/fixtures/`: gateway MESSAGE_CREATE
//! frames (a server channel, a reply in a thread, a DM) dispatched by the fake gateway, and
//! interactions (a button press, `/ask`, the endpoint's PING) posted, signed, to the
//! interactions endpoint. Each goes through the running adapter; the test checks what reaches
//! the inbox and what Discord is answered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, accepted, start_with};
use crate::endpoint::signed_post;
use axum::http::StatusCode;
use frontdesk_channel::{Attachment, Inbound, Source, UserAction};
use frontdesk_discord::fake::{DM_CHANNEL, PUBLIC_KEY, SUPPORT_CHANNEL};
use serde_json::{json, Value};

const MESSAGE_GUILD: &str = include_str!("../fixtures/message_create_guild.json");
const MESSAGE_THREAD: &str = include_str!("../fixtures/message_create_thread.json");
const MESSAGE_DM: &str = include_str!("../fixtures/message_create_dm.json");
const BUTTON: &str = include_str!("../fixtures/interaction_button.json");
const COMMAND_ASK: &str = include_str!("../fixtures/interaction_command_ask.json");
const PING: &str = include_str!("../fixtures/interaction_ping.json");

/// The server, and the customer's thread started from the message in MESSAGE_GUILD.
const GUILD: &str = "1150000000000000010";
const THREAD: u64 = 1_227_563_412_345_678_901;

async fn running() -> common::Running {
    start_with(|c| {
        c.public_key = PUBLIC_KEY.into();
        c.interactions_endpoint = true;
    })
    .await
}

/// Dispatches a recorded gateway frame and returns what the inbox accepted from it.
async fn dispatched(r: &common::Running, fixture: &str) -> Inbound {
    let frame: Value = serde_json::from_str(fixture).unwrap();
    assert_eq!(frame["op"], json!(0), "a dispatch frame");
    let before = r.inbox.accepted().len();
    r.fake.dispatch(frame["t"].as_str().unwrap(), frame["d"].clone()).unwrap();
    accepted(&r.inbox, before + 1).await.remove(before)
}

/// The fields the engine relies on, in one tuple so a mismatch shows all of them.
fn fields(m: &Inbound) -> (&str, &str, &str, &str, &str, Option<&str>, &str, bool, bool) {
    (
        m.id.as_str(),
        m.workspace.as_str(),
        m.channel.as_str(),
        m.conversation.as_str(),
        m.author.id.as_str(),
        m.author.display_name.as_deref(),
        m.text.as_str(),
        m.addressed_to_bot,
        m.top_level,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_in_a_server_channel_starts_a_conversation_on_its_message() {
    let r = running().await;
    let m = dispatched(&r, MESSAGE_GUILD).await;
    assert_eq!(
        fields(&m),
        (
            "1227563412345678901",
            GUILD,
            "1150000000000000020",
            "1150000000000000010:1227563412345678901",
            "1150000000000000101",
            Some("Casey"),
            "how do I connect a second payout account?",
            true,
            true,
        )
    );
    assert_eq!(m.source, Source::Discord);
    assert!(!m.author.is_agent && !m.author.is_bot && m.action.is_none() && m.attachments.is_empty());
    assert_eq!(
        m.reply_context,
        json!({"guild": GUILD, "channel": "1150000000000000020", "message": "1227563412345678901",
            "title": "how do I connect a second payout account?"})
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_the_bot_in_a_thread_belongs_to_the_threads_conversation() {
    let r = running().await;
    r.fake.add_thread(THREAD, SUPPORT_CHANNEL, "how do I connect a second payout account?");
    let m = dispatched(&r, MESSAGE_THREAD).await;
    assert_eq!(
        fields(&m),
        (
            "1227564855001255936",
            GUILD,
            "1150000000000000020",
            "1150000000000000010:1227563412345678901",
            "1150000000000000101",
            Some("Casey (Acme Ltd)"),
            "Does the second account need its own tax form?",
            true,
            false,
        )
    );
    assert_eq!(
        m.reply_context,
        json!({"guild": GUILD, "channel": "1150000000000000020", "thread": "1227563412345678901"})
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_is_answered_from_the_one_server_its_sender_shares_with_the_bot() {
    let r = running().await;
    let m = dispatched(&r, MESSAGE_DM).await;
    assert_eq!(
        fields(&m),
        (
            "1227573742103367680",
            GUILD,
            "1150000000000000060",
            "dm:1150000000000000060",
            "1150000000000000101",
            Some("Casey"),
            "hey, is there a limit on payout accounts per store?",
            true,
            false,
        )
    );
    assert_eq!(DM_CHANNEL, 1_150_000_000_000_000_060);
    assert_eq!(
        m.attachments,
        [Attachment { name: "payouts-page.png".into(), content_type: Some("image/png".into()), size_bytes: 48213 }]
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helpful_press_is_feedback_on_its_turn_and_a_foreign_button_is_refused_by_name() {
    let r = running().await;
    let router = r.adapter.router();
    let (status, response) = signed_post(&router, BUTTON.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    // The rating shows on the answer at once (UPDATE_MESSAGE), with only "Talk to a person" left.
    assert_eq!(response["type"], json!(7), "{response}");
    let m = accepted(&r.inbox, 1).await.remove(0);
    assert_eq!(
        fields(&m),
        (
            "1227563987654321024",
            GUILD,
            "1150000000000000020",
            "1150000000000000010:1227563412345678901",
            "1150000000000000101",
            Some("Casey"),
            "(rated the answer helpful)",
            true,
            false,
        )
    );
    assert_eq!(m.action, Some(UserAction::Feedback { turn_id: "turn-5b2e91".into(), helpful: true }));

    let mut foreign: Value = serde_json::from_str(BUTTON).unwrap();
    foreign["id"] = json!("1227563987654321025");
    foreign["data"]["custom_id"] = json!("poll:yes");
    let (status, response) = signed_post(&router, foreign.to_string().as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&response["type"], &response["data"]["content"]),
        (&json!(4), &json!("This button cannot be handled: the button \"poll:yes\" was not made by frontdesk."))
    );
    assert_eq!(r.inbox.offered(), 1, "the refused press was not handed over");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_posts_the_question_and_hands_it_over_as_a_new_conversation() {
    let r = running().await;
    let (status, response) = signed_post(&r.adapter.router(), COMMAND_ASK.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&response["type"], &response["data"]["content"]),
        (&json!(4), &json!("Got it — the answer will appear in a thread under your question."))
    );
    let m = accepted(&r.inbox, 1).await.remove(0);
    let echo = r.fake.posted_in(SUPPORT_CHANNEL).remove(0);
    assert_eq!(echo.content, "**Casey** asked: Can I schedule payouts weekly instead of daily?");
    let conversation = format!("{GUILD}:{}", echo.id);
    assert_eq!(
        fields(&m),
        (
            "1227580123456789012",
            GUILD,
            "1150000000000000020",
            conversation.as_str(),
            "1150000000000000101",
            Some("Casey"),
            "Can I schedule payouts weekly instead of daily?",
            true,
            true,
        )
    );
    assert!(m.action.is_none());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_ping_is_answered_with_pong_and_enqueues_nothing() {
    let r = running().await;
    assert_eq!(signed_post(&r.adapter.router(), PING.as_bytes()).await, (StatusCode::OK, json!({"type": 1})));
    assert_eq!(r.inbox.offered(), 0);
    r.stop().await;
}
