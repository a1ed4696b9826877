//! Payloads in the shapes Slack documents (Events API `event_callback`s, `url_verification`, a
//! `block_actions` interaction), kept in `tests/fixtures/`, read by the adapter's own parsing
//! and normalising code: what each one becomes, or why it is not for the engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use frontdesk_channel::{Inbound, Source, UserAction};
use frontdesk_slack::normalise::{
    parse_envelope, read_event, read_interaction, ClickOutcome, Envelope, EventCallback, EventOutcome,
};
use serde_json::{json, Value};

const CHANNEL_MESSAGE: &str = include_str!("../fixtures/channel_message.json");
const THREAD_REPLY: &str = include_str!("../fixtures/thread_reply.json");
const APP_MENTION: &str = include_str!("../fixtures/app_mention.json");
const OWN_BOT_MESSAGE: &str = include_str!("../fixtures/own_bot_message.json");
const MESSAGE_CHANGED: &str = include_str!("../fixtures/message_changed.json");
const URL_VERIFICATION: &str = include_str!("../fixtures/url_verification.json");
const BLOCK_ACTIONS_HELPFUL: &str = include_str!("../fixtures/block_actions_helpful.json");

const RECEIVED_AT: i64 = 1_712_345_679_000;

fn callback(fixture: &str) -> EventCallback {
    match parse_envelope(fixture.as_bytes()).unwrap() {
        Envelope::Event(cb) => cb,
        other => panic!("not an event_callback: {other:?}"),
    }
}

/// What the adapter makes of an event, with the bot user Slack named in `authorizations`.
fn outcome(fixture: &str) -> EventOutcome {
    let cb = callback(fixture);
    assert_eq!(cb.bot_user_id.as_deref(), Some("U0BOTFD01"));
    read_event(&cb, cb.bot_user_id.as_deref()).unwrap()
}

fn inbound(fixture: &str) -> Inbound {
    match outcome(fixture) {
        EventOutcome::Message(facts) => facts.into_inbound(false, RECEIVED_AT).unwrap(),
        other => panic!("expected a message: {other:?}"),
    }
}

/// The fields the engine relies on, in one tuple so a mismatch shows all of them.
fn fields(m: &Inbound) -> (&str, &str, &str, &str, &str, &str, bool, bool) {
    (
        m.id.as_str(),
        m.workspace.as_str(),
        m.channel.as_str(),
        m.conversation.as_str(),
        m.author.id.as_str(),
        m.text.as_str(),
        m.addressed_to_bot,
        m.top_level,
    )
}

#[test]
fn a_channel_message_mentioning_the_bot() {
    let cb = callback(CHANNEL_MESSAGE);
    assert_eq!((cb.team_id.as_str(), cb.event_id.as_deref()), ("T061EG9R6", Some("Ev06UQ6Y3H7K")));
    let m = inbound(CHANNEL_MESSAGE);
    assert_eq!(
        fields(&m),
        (
            "C0LAN2Q65:1712345678.123456",
            "T061EG9R6",
            "C0LAN2Q65",
            "T061EG9R6:C0LAN2Q65:1712345678.123456",
            "U061F7AUR",
            "Hi , can I move my subscription to another workspace?",
            true,
            true,
        )
    );
    assert_eq!(m.source, Source::Slack);
    assert_eq!(m.received_at_ms, RECEIVED_AT);
    assert!(!m.author.is_bot && !m.author.is_agent && m.action.is_none() && m.attachments.is_empty());
    assert_eq!(
        m.reply_context,
        json!({"channel": "C0LAN2Q65", "thread_ts": "1712345678.123456", "message_ts": "1712345678.123456"})
    );
}

#[test]
fn a_reply_in_a_thread_joins_the_threads_conversation() {
    let m = inbound(THREAD_REPLY);
    assert_eq!(
        fields(&m),
        (
            "C0LAN2Q65:1712345790.004200",
            "T061EG9R6",
            "C0LAN2Q65",
            "T061EG9R6:C0LAN2Q65:1712345678.123456",
            "U061F7AUR",
            "And does the billing date stay the same after the move?",
            false,
            false,
        )
    );
    assert_eq!(
        m.reply_context,
        json!({"channel": "C0LAN2Q65", "thread_ts": "1712345678.123456", "message_ts": "1712345790.004200"})
    );
}

#[test]
fn an_app_mention_is_the_same_message_as_its_message_event() {
    let m = inbound(APP_MENTION);
    assert_eq!(
        fields(&m),
        (
            "C0LAN2Q65:1712346001.000300",
            "T061EG9R6",
            "C0LAN2Q65",
            "T061EG9R6:C0LAN2Q65:1712346001.000300",
            "U07QH2K1Z",
            "where do I find the invoices for last year?",
            true,
            true,
        )
    );
    // Slack also sends it as a `message` event: the same id, so the inbox keeps one.
    let mut as_message: Value = serde_json::from_str(APP_MENTION).unwrap();
    as_message["event"]["type"] = json!("message");
    as_message["event"]["channel_type"] = json!("channel");
    as_message["event_id"] = json!("Ev06UQ9C5R2U");
    assert_eq!(inbound(&as_message.to_string()), m);
}

#[test]
fn the_bots_own_message_and_an_edit_are_ignored_with_their_reason() {
    assert_eq!(outcome(OWN_BOT_MESSAGE), EventOutcome::Ignore("written by a bot".into()));
    assert_eq!(outcome(MESSAGE_CHANGED), EventOutcome::Ignore("message subtype message_changed".into()));
}

#[test]
fn url_verification_hands_back_the_challenge() {
    assert_eq!(
        parse_envelope(URL_VERIFICATION.as_bytes()).unwrap(),
        Envelope::UrlVerification { challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into() }
    );
}

#[test]
fn a_helpful_click_is_feedback_on_its_turn_in_the_customers_thread() {
    let payload: Value = serde_json::from_str(BLOCK_ACTIONS_HELPFUL).unwrap();
    let click = match read_interaction(&payload).unwrap() {
        ClickOutcome::Click(c) => c,
        other => panic!("{other:?}"),
    };
    assert!(!click.is_agent_action());
    let m = click.into_inbound(false, RECEIVED_AT).unwrap();
    assert_eq!(
        fields(&m),
        (
            "click:1712345811.482915:U061F7AUR:frontdesk_helpful",
            "T061EG9R6",
            "C0LAN2Q65",
            "T061EG9R6:C0LAN2Q65:1712345678.123456",
            "U061F7AUR",
            "",
            true,
            false,
        )
    );
    assert_eq!(m.action, Some(UserAction::Feedback { turn_id: "turn-7f3a9c".into(), helpful: true }));
    assert_eq!(m.author.display_name.as_deref(), Some("rita.ortega"));
    assert_eq!(m.reply_context, json!({"channel": "C0LAN2Q65", "thread_ts": "1712345678.123456", "message_ts": null}));
}

#[test]
fn a_damaged_payload_is_refused_with_what_is_missing() {
    let mut no_user: Value = serde_json::from_str(THREAD_REPLY).unwrap();
    no_user["event"].as_object_mut().unwrap().remove("user");
    let cb = callback(&no_user.to_string());
    assert_eq!(read_event(&cb, Some("U0BOTFD01")).unwrap_err().0, "event.user is missing or not a string");

    let mut no_value: Value = serde_json::from_str(BLOCK_ACTIONS_HELPFUL).unwrap();
    no_value["actions"][0]["value"] = json!("not json");
    let err = read_interaction(&no_value).unwrap_err().0;
    assert!(err.starts_with("payload.actions[0].value is not a frontdesk button value: "), "{err}");
}
