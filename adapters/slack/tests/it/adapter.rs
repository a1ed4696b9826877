//! The Slack adapter against the loopback fake of Slack: signatures, normalisation and
//! deduplication of events, the conformance kit, replies in threads (Block Kit, each a new
//! message; the working reaction), button clicks, error mapping and the OAuth install.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::Method;
use frontdesk_channel::conformance::{self, RecordingInbox};
use frontdesk_channel::{
    AdapterError, Author, AuthorId, ChannelAdapter, ChannelId, Citation, ConversationKey, EventId, HandoffSummary,
    Inbound, Outbound, OutboundKind, Source, UserAction, WorkspaceId,
};
use frontdesk_slack::blocks::{ACTION_CLAIM, ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_REQUEST_HUMAN, ACTION_RESOLVE};
use frontdesk_slack::fake::{Driver, FakeMessage, FakeSlack, Fault, SlackSender, BOT_TOKEN, BOT_USER_ID, TEAM_ID};
use frontdesk_slack::signature::{self, SignatureError};
use frontdesk_slack::store::{SlackStore, MAX_PENDING_INSTALLS};
use frontdesk_slack::{SlackAdapter, SlackAgents, SlackConfig};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

struct Rig {
    fake: Arc<FakeSlack>,
    adapter: Arc<SlackAdapter>,
    sender: SlackSender,
    inbox: Arc<RecordingInbox>,
    tree: sled::Tree,
    shutdown: CancellationToken,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `[slack.agents.<team>]` with these user ids and user group.
fn agents(team: &str, user_ids: &[&str], usergroup: Option<&str>) -> (String, SlackAgents) {
    let agents = SlackAgents {
        user_ids: user_ids.iter().map(|u| u.to_string()).collect(),
        usergroup: usergroup.map(str::to_string),
    };
    (team.to_string(), agents)
}

fn temp_tree() -> sled::Tree {
    sled::Config::new().temporary(true).open().unwrap().open_tree("slack").unwrap()
}

async fn rig_with(tweak: impl FnOnce(&mut SlackConfig)) -> Rig {
    let fake = Arc::new(FakeSlack::start().await.unwrap());
    let mut config = SlackConfig {
        signing_secret: Some(SECRET.into()),
        bot_token: Some(BOT_TOKEN.into()),
        api_url: fake.api_url(),
        ..SlackConfig::default()
    };
    tweak(&mut config);
    let tree = temp_tree();
    let adapter = SlackAdapter::new(config, tree.clone()).unwrap();
    let sender = SlackSender::new(adapter.router(), SECRET);
    Rig { fake, adapter, sender, inbox: Arc::new(RecordingInbox::default()), tree, shutdown: CancellationToken::new() }
}

/// A rig whose adapter is running (receiving into `inbox`).
async fn running_with(tweak: impl FnOnce(&mut SlackConfig)) -> Rig {
    let rig = rig_with(tweak).await;
    let (adapter, inbox, shutdown) = (rig.adapter.clone(), rig.inbox.clone(), rig.shutdown.clone());
    tokio::spawn(async move { adapter.run(inbox, shutdown).await });
    for _ in 0..500 {
        if rig.adapter.is_receiving() {
            return rig;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the adapter never started receiving");
}

async fn running() -> Rig {
    running_with(|_| {}).await
}

/// A customer writes `text` in `channel` mentioning the bot; returns the message and its event.
fn mention(fake: &FakeSlack, channel: &str, text: &str, event_id: &str) -> (FakeMessage, Value) {
    let m = fake.customer_message(channel, "UCUSTOMER", &format!("<@{BOT_USER_ID}> {text}"), None);
    let e = fake.event_for(&m, "app_mention", event_id);
    (m, e)
}

fn outbound(inbound: &Inbound, id: &str, text: &str, kind: OutboundKind) -> Outbound {
    Outbound::reply_to(inbound, id, text, kind)
}

fn citation(title: &str, url: Option<&str>) -> Citation {
    Citation { doc_id: title.to_lowercase(), chunk_id: "c1".into(), title: title.into(), url: url.map(str::to_string) }
}

/// A customer's question, accepted by the running adapter.
async fn question(rig: &Rig, channel: &str, text: &str) -> (FakeMessage, Inbound) {
    let before = rig.inbox.accepted().len();
    let (m, e) = mention(&rig.fake, channel, text, &format!("Ev-{channel}-{}", before));
    assert_eq!(rig.sender.event(&e).await.status, 200);
    let accepted = rig.inbox.accepted();
    assert_eq!(accepted.len(), before + 1);
    (m, accepted[before].clone())
}

// --- Signatures ---------------------------------------------------------------------------

#[test]
fn slacks_published_signing_vector_is_verified() {
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    assert_eq!(signature::sign(SECRET.as_bytes(), "1531420618", body.as_bytes()), expected);
    assert_eq!(signature::verify_signature(SECRET.as_bytes(), "1531420618", body.as_bytes(), expected), Ok(()));
    // The vector's timestamp is years old: the age check alone refuses it now.
    let now = signature::now_secs();
    assert!(matches!(signature::verify_age("1531420618", now, 300), Err(SignatureError::Stale { .. })));
    assert_eq!(
        signature::verify_request(
            SECRET.as_bytes(),
            Some("1531420618"),
            Some(expected),
            body.as_bytes(),
            1531420618 + 299,
            300
        ),
        Ok(())
    );
    let tampered = body.replace("roadrunner", "coyote");
    assert_eq!(
        signature::verify_signature(SECRET.as_bytes(), "1531420618", tampered.as_bytes(), expected),
        Err(SignatureError::Mismatch)
    );
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_and_malformed_bodies_enqueue_nothing() {
    let rig = running().await;
    let (_, envelope) = mention(&rig.fake, "C1", "hello", "Ev1");
    let body = serde_json::to_vec(&envelope).unwrap();
    let now = signature::now_secs();

    // Signed with another secret.
    let wrong = SlackSender::new(rig.adapter.router(), "another-secret");
    let a = wrong.event(&envelope).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (401, "the signature does not match the body (wrong signing secret, or a modified body)")
    );
    // Signed long ago, and in the future.
    for ts in [now - 301, now + 400] {
        let a = rig.sender.signed("/slack/events", body.clone(), "application/json", ts, &[]).await;
        assert_eq!(a.status, 401, "{a:?}");
        assert!(a.body.contains("at most 300 s"), "{a:?}");
    }
    // No signature headers at all.
    let a = rig.sender.raw(Method::POST, "/slack/events", body.clone(), "application/json", &[]).await;
    assert_eq!((a.status, a.body.as_str()), (401, "the X-Slack-Signature header is missing"));
    // A body changed after signing.
    let ts = now.to_string();
    let sig = signature::sign(SECRET.as_bytes(), &ts, &body);
    let mut changed = body.clone();
    changed.extend_from_slice(b" ");
    let headers = [("x-slack-request-timestamp", ts.as_str()), ("x-slack-signature", sig.as_str())];
    let a = rig.sender.raw(Method::POST, "/slack/events", changed, "application/json", &headers).await;
    assert_eq!(a.status, 401);

    // Correctly signed but malformed: 400 and a precise message.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "the body is not JSON"),
        (b"[1,2]".to_vec(), "the body is not a JSON object"),
        (br#"{"type":"event_callback","team_id":"T1"}"#.to_vec(), "event is missing"),
        (
            serde_json::to_vec(
                &json!({"type":"event_callback","team_id":"T1","event":{"type":"message","channel":"C1","text":"x"}}),
            )
            .unwrap(),
            "event.user is missing or not a string",
        ),
    ];
    for (body, want) in cases {
        let a = rig.sender.signed("/slack/events", body, "application/json", now, &[]).await;
        assert_eq!(a.status, 400, "{a:?}");
        assert!(a.body.starts_with(want), "{a:?} should start with {want}");
    }
    // Interactions: no payload field, payload not JSON, a foreign button value.
    for (body, want) in [("foo=bar", "the form has no payload field"), ("payload=%7Bnope", "payload is not JSON")] {
        let a = rig
            .sender
            .signed("/slack/interactions", body.as_bytes().to_vec(), "application/x-www-form-urlencoded", now, &[])
            .await;
        assert_eq!(a.status, 400, "{a:?}");
        assert!(a.body.starts_with(want), "{a:?}");
    }
    let forged = json!({"type":"block_actions","user":{"id":"U1"},"team":{"id":"T1"},
        "actions":[{"action_id": ACTION_CLAIM, "action_ts":"1.0", "value":"not ours"}]});
    let a = rig.sender.interaction(&forged).await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("is not a frontdesk button value"), "{a:?}");

    assert_eq!(rig.inbox.offered(), 0, "nothing may reach the inbox");
}

#[tokio::test]
async fn url_verification_is_answered_and_events_wait_for_run() {
    let rig = rig_with(|_| {}).await;
    let a = rig.sender.event(&json!({"type":"url_verification","token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&a.body).unwrap()["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    // Before `run`, a message is refused with 503 so that Slack retries it.
    let (_, e) = mention(&rig.fake, "C1", "early", "Ev-early");
    assert_eq!(rig.sender.event(&e).await.status, 503);
    assert_eq!(rig.inbox.offered(), 0);
}

// --- Normalisation and deduplication ------------------------------------------------------

#[tokio::test]
async fn retries_and_message_plus_app_mention_make_one_message() {
    let rig = running().await;
    let m = rig.fake.customer_message("C1", "UCUSTOMER", &format!("<@{BOT_USER_ID}> how do refunds work?"), None);
    let as_message = rig.fake.event_for(&m, "message", "EvA");
    let as_mention = rig.fake.event_for(&m, "app_mention", "EvB");
    assert_eq!(rig.sender.event(&as_message).await.status, 200);
    for n in 1..=3 {
        assert_eq!(rig.sender.event_retry(&as_message, Some(n)).await.status, 200);
    }
    assert_eq!(rig.sender.event(&as_mention).await.status, 200);
    assert_eq!(rig.sender.event_retry(&as_mention, Some(1)).await.status, 200);
    assert_eq!(rig.inbox.offered(), 6);
    let accepted = rig.inbox.accepted();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let msg = &accepted[0];
    assert_eq!(msg.id.as_str(), format!("C1:{}", m.ts));
    assert_eq!(msg.text, "how do refunds work?");
    assert!(msg.addressed_to_bot && msg.top_level && !msg.author.is_agent && !msg.author.is_bot);
    assert_eq!(msg.workspace.as_str(), TEAM_ID);
    assert_eq!(msg.conversation.as_str(), format!("T1:C1:{}", m.ts));
    assert_eq!(msg.reply_context, json!({"channel": "C1", "thread_ts": m.ts, "message_ts": m.ts}));

    // The same pair arriving mention-first gives the same message.
    let rig2 = running().await;
    let m2 = rig2.fake.customer_message("C1", "UCUSTOMER", &format!("<@{BOT_USER_ID}> hi"), None);
    rig2.sender.event(&rig2.fake.event_for(&m2, "app_mention", "E1")).await;
    rig2.sender.event(&rig2.fake.event_for(&m2, "message", "E2")).await;
    let accepted = rig2.inbox.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0].addressed_to_bot);
}

#[tokio::test]
async fn threads_dms_agents_and_ignored_events() {
    let rig = running_with(|c| c.agents = [agents(TEAM_ID, &["ULEAD"], Some("SAGENTS"))].into()).await;
    rig.fake.set_usergroup("SAGENTS", &["UAGENT"]);
    let root = rig.fake.customer_message("C1", "UCUSTOMER", "my export fails", None);
    rig.sender.event(&rig.fake.event_for(&root, "message", "E1")).await;
    let reply = rig.fake.customer_message("C1", "UCUSTOMER", "with TH-4012", Some(&root.ts));
    rig.sender.event(&rig.fake.event_for(&reply, "message", "E2")).await;
    let agent = rig.fake.customer_message("C1", "UAGENT", "I'll take this", Some(&root.ts));
    rig.sender.event(&rig.fake.event_for(&agent, "message", "E3")).await;
    let lead = rig.fake.customer_message("C1", "ULEAD", "thanks", Some(&root.ts));
    rig.sender.event(&rig.fake.event_for(&lead, "message", "E4")).await;
    let dm = rig.fake.customer_message("D1", "UCUSTOMER", "hello there", None);
    rig.sender.event(&rig.fake.event_for(&dm, "message", "E5")).await;

    // Ignored: our own message, another bot, edits, deletes, joins.
    let mut own = rig.fake.customer_message("C1", BOT_USER_ID, "an answer", Some(&root.ts));
    own.from_bot = true;
    rig.sender.event(&rig.fake.event_for(&own, "message", "E6")).await;
    for (i, event) in [
        json!({"type":"message","channel":"C1","user":"U2","bot_id":"BOTHER","text":"beep","ts":"1.1"}),
        json!({"type":"message","subtype":"message_changed","channel":"C1","ts":"1.2","message":{"text":"x"}}),
        json!({"type":"message","subtype":"message_deleted","channel":"C1","ts":"1.3","deleted_ts":"1.0"}),
        json!({"type":"message","subtype":"channel_join","channel":"C1","user":"U3","text":"joined","ts":"1.4"}),
    ]
    .into_iter()
    .enumerate()
    {
        let envelope = json!({"type":"event_callback","team_id":"T1","event_id":format!("EI{i}"),"event":event,
            "authorizations":[{"team_id":"T1","user_id":BOT_USER_ID,"is_bot":true}]});
        assert_eq!(rig.sender.event(&envelope).await.status, 200);
    }

    let got = rig.inbox.accepted();
    assert_eq!(got.len(), 5, "{got:#?}");
    let conv = format!("T1:C1:{}", root.ts);
    assert!(got[0].top_level && !got[0].addressed_to_bot);
    assert_eq!(got[1].conversation.as_str(), conv);
    assert!(!got[1].top_level);
    assert_eq!(got[1].reply_context["thread_ts"], json!(root.ts));
    assert_eq!(got[1].reply_context["message_ts"], json!(reply.ts));
    assert!(!got[1].author.is_agent);
    assert!(got[2].author.is_agent, "a member of the agents' user group is an agent");
    assert!(got[3].author.is_agent, "a listed agent is an agent");
    assert!(got[4].addressed_to_bot, "a DM is addressed to the bot");
    // The user group was read once and cached.
    assert_eq!(rig.fake.calls_of("usergroups.users.list").len(), 1);
}

#[tokio::test]
async fn the_conformance_kit_passes() {
    let rig = rig_with(|_| {}).await;
    let driver = Driver::new(rig.fake.clone(), rig.sender.clone());
    let result = conformance::check(rig.adapter.clone(), &driver).await;
    assert_eq!(result, Ok(()));
}

// --- Replies ------------------------------------------------------------------------------

#[tokio::test]
async fn answers_carry_sources_and_buttons_that_come_back_as_actions() {
    let rig = running().await;
    let (m, inbound) = question(&rig, "C1", "how do refunds work?").await;
    let answer = outbound(
        &inbound,
        "t1-answer",
        "Annual plans are refunded within **30 days** [1]. <!channel> & more",
        OutboundKind::Answer {
            turn_id: "t1".into(),
            citations: vec![citation("Refunds", Some("https://help.example.com/refunds")), citation("Plans", None)],
            confidence: 0.9,
        },
    );
    rig.adapter.deliver(&answer).await.unwrap();
    let thread = rig.fake.thread("C1", &m.ts);
    assert_eq!(thread.len(), 1);
    let posted = &thread[0];
    let blocks = posted.blocks.clone().unwrap();
    assert_eq!(
        blocks[0]["text"]["text"],
        "Annual plans are refunded within *30 days* [1]. &lt;!channel&gt; &amp; more"
    );
    assert_eq!(
        blocks[1]["elements"][0]["text"],
        "Sources: <https://help.example.com/refunds|[1] Refunds>  ·  [2] Plans"
    );
    let labels: Vec<&str> =
        blocks[2]["elements"].as_array().unwrap().iter().map(|b| b["text"]["text"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Helpful", "Not helpful", "Talk to a person"]);

    for (action_id, want) in [
        (ACTION_HELPFUL, UserAction::Feedback { turn_id: "t1".into(), helpful: true }),
        (ACTION_NOT_HELPFUL, UserAction::Feedback { turn_id: "t1".into(), helpful: false }),
        (ACTION_REQUEST_HUMAN, UserAction::RequestHuman),
    ] {
        let before = rig.inbox.accepted().len();
        let click = rig.fake.click(posted, "UCUSTOMER", action_id).unwrap();
        assert_eq!(rig.sender.interaction(&click).await.status, 200);
        let got = rig.inbox.accepted();
        assert_eq!(got.len(), before + 1);
        let action = &got[before];
        assert_eq!(action.action, Some(want));
        assert_eq!(action.conversation, inbound.conversation, "the click belongs to the customer's conversation");
        assert_eq!(action.channel, inbound.channel);
        assert_eq!(action.reply_context["thread_ts"], json!(m.ts));
        assert!(!action.author.is_agent);
        if action_id == ACTION_HELPFUL {
            // The answer shows the rating in place of the rating buttons.
            let rated = rated_answer(&rig, "C1", &m.ts, "<@UCUSTOMER> found this helpful").await;
            assert!(rated.button_value(ACTION_HELPFUL).is_none() && rated.button_value(ACTION_NOT_HELPFUL).is_none());
            assert!(rated.button_value(ACTION_REQUEST_HUMAN).is_some(), "Talk to a person stays");
            assert!(rated.all_text().contains("refunded within *30 days*"), "{}", rated.all_text());
        }
    }
    rated_answer(&rig, "C1", &m.ts, "<@UCUSTOMER> found this not helpful").await;
}

/// The bot's answer in the thread once its text contains `line`.
async fn rated_answer(rig: &Rig, channel: &str, thread_ts: &str, line: &str) -> FakeMessage {
    for _ in 0..500 {
        if let Some(m) = rig.fake.thread(channel, thread_ts).into_iter().find(|m| m.all_text().contains(line)) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the answer never showed {line:?}: {:?}", rig.fake.thread(channel, thread_ts));
}

fn summary_of(inbound: &Inbound, agents_channel: Option<&str>) -> Outbound {
    let summary = HandoffSummary {
        question: "can I get a refund after 40 days?".into(),
        condensed_question: "refund after 40 days on an annual plan".into(),
        reason: "weak_retrieval".into(),
        confidence: 0.31,
        sources: vec![citation("Refunds", Some("https://help.example.com/refunds"))],
        draft: Some("After 30 days unused months become credit [1].".into()),
        conversation: inbound.conversation.clone(),
        customer_channel: inbound.channel.clone(),
    };
    outbound(
        inbound,
        "t2-summary",
        "Handoff (weak_retrieval)",
        OutboundKind::AgentSummary { agents_channel: agents_channel.map(|c| ChannelId::new(c).unwrap()), summary },
    )
}

#[tokio::test]
async fn handoffs_mention_in_the_thread_and_agents_claim_from_their_card() {
    let rig = running_with(|c| c.agents = [agents(TEAM_ID, &["UAGENT"], None)].into()).await;
    let (m, inbound) = question(&rig, "C1", "can I get a refund after 40 days?").await;
    let handoff = outbound(
        &inbound,
        "t2-handoff",
        "I'm not sure about this one, so I've passed your question to our support team.",
        OutboundKind::Handoff { mention: Some("<!subteam^S123>".into()) },
    );
    rig.adapter.deliver(&handoff).await.unwrap();
    let thread = rig.fake.thread("C1", &m.ts);
    assert_eq!(thread.len(), 1);
    assert!(thread[0].text.ends_with("\n<!subteam^S123>"), "{:?}", thread[0].text);

    rig.adapter.deliver(&summary_of(&inbound, Some("CAGENTS"))).await.unwrap();
    let cards = rig.fake.top_level("CAGENTS");
    assert_eq!(cards.len(), 1);
    let card = &cards[0];
    let text = card.all_text();
    for part in [
        "can I get a refund after 40 days?",
        "refund after 40 days on an annual plan",
        "weak_retrieval",
        "0.31",
        "<https://help.example.com/refunds|[1] Refunds>",
        "After 30 days unused months become credit",
        "<#C1>",
    ] {
        assert!(text.contains(part), "{part} missing from the card: {text}");
    }

    // An agent claims; someone else tries to resolve and is refused, privately.
    let claim = rig.fake.click(card, "UAGENT", ACTION_CLAIM).unwrap();
    assert_eq!(rig.sender.interaction(&claim).await.status, 200);
    let before = rig.inbox.offered();
    let resolve = rig.fake.click(card, "UOTHER", ACTION_RESOLVE).unwrap();
    assert_eq!(rig.sender.interaction(&resolve).await.status, 200);
    assert_eq!(rig.inbox.offered(), before, "a refused resolve is not handed over");
    let told = ephemeral_for(&rig, "UOTHER").await;
    assert_eq!(told.channel, "CAGENTS");
    assert_eq!(told.text, "Only members of the support team can claim or resolve a conversation.");
    let got = rig.inbox.accepted();
    let claimed = &got[got.len() - 1];
    assert_eq!(claimed.action, Some(UserAction::Claim));
    assert!(claimed.author.is_agent);
    assert_eq!(claimed.author.display_name.as_deref(), Some("uagent"));
    assert_eq!(claimed.conversation, inbound.conversation);
    assert_eq!(claimed.channel, inbound.channel);
    // Replies go to the customer's thread; the card clicked on is remembered for the reply.
    let context = &claimed.reply_context;
    assert_eq!(
        (&context["channel"], &context["thread_ts"], &context["message_ts"]),
        (&json!("C1"), &json!(m.ts), &json!(null))
    );
    assert_eq!((&context["card"]["channel"], &context["card"]["ts"]), (&json!("CAGENTS"), &json!(card.ts)));

    // The engine's notice for the claim goes to the customer's thread.
    let joined = outbound(claimed, "claim-notice", "uagent from our support team has joined.", OutboundKind::Notice);
    rig.adapter.deliver(&joined).await.unwrap();
    assert_eq!(rig.fake.thread("C1", &m.ts).len(), 2);
    // ... and the card says who has it.
    let card = rig.fake.top_level("CAGENTS").remove(0);
    assert!(card.all_text().contains("Claimed by <@UAGENT>"), "{}", card.all_text());
    assert!(card.button_value(ACTION_CLAIM).is_none() && card.button_value(ACTION_RESOLVE).is_some());

    // A card that can no longer be changed (deleted meanwhile) does not fail the notice.
    rig.fake.fail_next("chat.update", Fault::Error("message_not_found".into()));
    let again = outbound(claimed, "claim-notice-2", "uagent from our support team has joined.", OutboundKind::Notice);
    rig.adapter.deliver(&again).await.unwrap();
    assert_eq!(rig.fake.thread("C1", &m.ts).len(), 3);
}

/// The message shown to `user` alone, once it is there.
async fn ephemeral_for(rig: &Rig, user: &str) -> frontdesk_slack::fake::Ephemeral {
    for _ in 0..500 {
        if let Some(e) = rig.fake.ephemerals().into_iter().find(|e| e.user == user) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{user} was never told anything: {:?}", rig.fake.ephemerals());
}

#[tokio::test]
async fn without_configured_agents_nobody_may_claim_and_the_clicker_is_told_why() {
    let rig = running().await;
    let (_, inbound) = question(&rig, "C1", "refund?").await;
    rig.adapter.deliver(&summary_of(&inbound, Some("CAGENTS"))).await.unwrap();
    let card = rig.fake.top_level("CAGENTS").remove(0);
    for (user, action) in [("UANYONE", ACTION_CLAIM), ("USOMEONE", ACTION_RESOLVE)] {
        let a = rig.sender.interaction(&rig.fake.click(&card, user, action).unwrap()).await;
        assert_eq!(a.status, 200, "{a:?}");
        let told = ephemeral_for(&rig, user).await;
        assert_eq!(told.channel, "CAGENTS");
        assert!(told.text.contains("no support agents are set up for this workspace"), "{told:?}");
    }
    assert_eq!(rig.inbox.accepted().len(), 1, "only the question reached the inbox: {:?}", rig.inbox.accepted());
}

#[tokio::test]
async fn an_agent_of_one_workspace_is_not_an_agent_in_another() {
    let rig = running_with(|c| {
        c.agents = [agents(TEAM_ID, &["UAGENT"], Some("SAGENTS")), agents("T2", &["UOTHER"], None)].into()
    })
    .await;
    rig.fake.set_usergroup("SAGENTS", &["UGROUPED"]);
    // The same people write in a thread of workspace T1 and of workspace T2.
    let in_team = |envelope: &mut Value, team: &str| {
        envelope["team_id"] = json!(team);
        envelope["event"]["team"] = json!(team);
        envelope["authorizations"][0]["team_id"] = json!(team);
    };
    let mut n = 0;
    for (team, user, agent) in [
        (TEAM_ID, "UAGENT", true),
        (TEAM_ID, "UGROUPED", true),
        ("T2", "UAGENT", false),
        ("T2", "UGROUPED", false),
        ("T2", "UOTHER", true),
        (TEAM_ID, "UOTHER", false),
    ] {
        n += 1;
        let m = rig.fake.customer_message("C1", user, "on it", Some("1700000000.000001"));
        let mut envelope = rig.fake.event_for(&m, "message", &format!("Ev{n}"));
        in_team(&mut envelope, team);
        assert_eq!(rig.sender.event(&envelope).await.status, 200);
        let got = rig.inbox.accepted().pop().unwrap();
        assert_eq!((got.workspace.as_str(), got.author.is_agent), (team, agent), "{user} in {team}");
    }
    // T2 has no user group: T1's group is never read for it.
    let lookups = rig.fake.calls_of("usergroups.users.list");
    assert!(lookups.iter().all(|c| c.params["usergroup"] == "SAGENTS"), "{lookups:?}");

    // T1's agent clicks Claim on a card in T2: refused, and told so.
    let (_, inbound) = question(&rig, "C1", "refund?").await;
    rig.adapter.deliver(&summary_of(&inbound, Some("CAGENTS"))).await.unwrap();
    let card = rig.fake.top_level("CAGENTS").remove(0);
    let mut click = rig.fake.click(&card, "UAGENT", ACTION_CLAIM).unwrap();
    click["team"]["id"] = json!("T2");
    click["user"]["team_id"] = json!("T2");
    let before = rig.inbox.offered();
    assert_eq!(rig.sender.interaction(&click).await.status, 200);
    assert_eq!(rig.inbox.offered(), before, "the claim is not handed over");
    assert!(ephemeral_for(&rig, "UAGENT").await.text.contains("Only members of the support team"));
    // In T1 the same click counts.
    let click = rig.fake.click(&card, "UAGENT", ACTION_CLAIM).unwrap();
    assert_eq!(rig.sender.interaction(&click).await.status, 200);
    let claimed = rig.inbox.accepted().pop().unwrap();
    assert_eq!(claimed.action, Some(UserAction::Claim));
    assert!(claimed.author.is_agent);
}

/// `user` writes in a thread of C1; returns the answer to Slack, how long it took (in the
/// test's time), and whether the message counts as an agent's.
async fn writes_in_a_thread(rig: &Rig, user: &str, event_id: &str) -> (u16, Duration, Inbound) {
    let m = rig.fake.customer_message("C1", user, "I'll take this one", Some("1700000000.000001"));
    let envelope = rig.fake.event_for(&m, "message", event_id);
    let started = tokio::time::Instant::now();
    let answer = rig.sender.event(&envelope).await;
    let took = started.elapsed();
    (answer.status, took, rig.inbox.accepted().pop().unwrap())
}

// Time is paused here: it moves only when every task waits, so the loopback Web API answers at
// once and the durations measured are the adapter's own waiting.
#[tokio::test(start_paused = true)]
async fn a_hung_or_failing_user_group_lookup_never_holds_the_ack_and_counts_as_no_agent() {
    let rig = running_with(|c| c.agents = [agents(TEAM_ID, &[], Some("SAGENTS"))].into()).await;
    rig.fake.set_usergroup("SAGENTS", &["UAGENT"]);
    let slack_limit = Duration::from_secs(3);

    // Slack's Web API does not answer: the event is still acknowledged within Slack's 3 s, and
    // the writer is not taken for an agent.
    rig.fake.fail_next("usergroups.users.list", Fault::Hang);
    let (status, took, first) = writes_in_a_thread(&rig, "UAGENT", "Ev1").await;
    assert_eq!(status, 200);
    assert!(took < slack_limit, "the ack waited {took:?} for the user group");
    assert!(!first.author.is_agent, "unknown members count as no agent");
    assert_eq!(rig.fake.hung_calls(), 1, "the lookup goes on in the background");

    // The lookup gives up; the failure is remembered: the next events neither wait nor call Slack.
    tokio::time::sleep(Duration::from_secs(20)).await;
    for i in 0..3 {
        let (status, took, m) = writes_in_a_thread(&rig, "UAGENT", &format!("Ev-down-{i}")).await;
        assert_eq!((status, took, m.author.is_agent), (200, Duration::ZERO, false));
    }
    assert_eq!(rig.fake.calls_of("usergroups.users.list").len(), 1, "an outage is not asked about on every event");

    // A Claim meanwhile is refused, and the agent is told why.
    rig.adapter.deliver(&summary_of(&first, Some("CAGENTS"))).await.unwrap();
    let card = rig.fake.top_level("CAGENTS").remove(0);
    let before = rig.inbox.offered();
    assert_eq!(rig.sender.interaction(&rig.fake.click(&card, "UAGENT", ACTION_CLAIM).unwrap()).await.status, 200);
    assert_eq!(rig.inbox.offered(), before);
    assert!(ephemeral_for(&rig, "UAGENT").await.text.contains("could not check with Slack"));

    // After the back-off Slack is asked again, and answers.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let (_, took, m) = writes_in_a_thread(&rig, "UAGENT", "Ev-back").await;
    assert!(took < slack_limit);
    assert!(m.author.is_agent);
    let (_, took, m) = writes_in_a_thread(&rig, "UCUSTOMER", "Ev-customer").await;
    assert_eq!((took, m.author.is_agent), (Duration::ZERO, false));
    assert_eq!(rig.fake.calls_of("usergroups.users.list").len(), 2, "the members are cached");
    rig.fake.release_hung_calls();
}

#[tokio::test]
async fn a_summary_without_an_agents_channel_is_not_posted() {
    let rig = running().await;
    let (_, inbound) = question(&rig, "C1", "refund?").await;
    let posts_before = rig.fake.calls_of("chat.postMessage").len();
    let err = rig.adapter.deliver(&summary_of(&inbound, None)).await.unwrap_err();
    assert!(matches!(&err, AdapterError::Rejected { code, .. } if code == "agents_channel_not_set"), "{err}");
    assert!(!err.retryable());
    assert_eq!(rig.fake.calls_of("chat.postMessage").len(), posts_before);
}

#[tokio::test]
async fn each_reply_is_a_new_message_in_the_thread_never_an_edit() {
    let rig = running().await;
    let (m, inbound) = question(&rig, "C1", "how long is the trial?").await;
    rig.adapter.working(&inbound, true).await;
    let answer = outbound(
        &inbound,
        "t3-answer",
        "Every new workspace starts with a 14-day free trial [1].",
        OutboundKind::Answer { turn_id: "t3".into(), citations: vec![citation("Free trial", None)], confidence: 0.8 },
    );
    let delivered = rig.adapter.deliver(&answer).await.unwrap();
    rig.adapter.working(&inbound, false).await;
    let thread = rig.fake.thread("C1", &m.ts);
    assert_eq!(thread.len(), 1, "{thread:#?}");
    assert_eq!(delivered.platform_message_id.as_deref(), Some(thread[0].ts.as_str()));
    assert!(thread[0].button_value(ACTION_HELPFUL).is_some(), "the answer comes with its buttons");

    let (m2, inbound2) = question(&rig, "C2", "what is TH-4012?").await;
    let handoff = outbound(
        &inbound2,
        "t4-handoff",
        "A person will reply here.",
        OutboundKind::Handoff { mention: Some("<@UONCALL>".into()) },
    );
    rig.adapter.deliver(&handoff).await.unwrap();
    let thread = rig.fake.thread("C2", &m2.ts);
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0].text, "A person will reply here.\n<@UONCALL>");

    assert_eq!(rig.fake.calls_of("chat.postMessage").len(), 2);
    assert!(rig.fake.calls_of("chat.update").is_empty(), "{:?}", rig.fake.calls_of("chat.update"));
}

#[tokio::test]
async fn the_eyes_reaction_shows_while_working() {
    let rig = running().await;
    let (m, inbound) = question(&rig, "C1", "hi").await;
    rig.adapter.working(&inbound, true).await;
    let eyes = ("C1".to_string(), m.ts.clone(), "eyes".to_string());
    assert!(rig.fake.reactions().contains(&eyes));
    // Twice is harmless (Slack answers already_reacted).
    rig.adapter.working(&inbound, true).await;
    rig.adapter.working(&inbound, false).await;
    assert!(rig.fake.reactions().is_empty());
    assert_eq!(rig.fake.calls_of("reactions.add").len(), 2);
    assert_eq!(rig.fake.calls_of("reactions.remove").len(), 1);
}

// --- Failures -----------------------------------------------------------------------------

#[tokio::test]
async fn slack_failures_map_onto_retryable_or_rejected() {
    let rig = running().await;
    let (_, inbound) = question(&rig, "C1", "hi").await;
    let reply = outbound(&inbound, "n", "hello", OutboundKind::Notice);

    rig.fake.fail_next("chat.postMessage", Fault::RateLimited { retry_after_secs: 7 });
    let err = rig.adapter.deliver(&reply).await.unwrap_err();
    assert!(matches!(err, AdapterError::RateLimited { retry_after_ms: 7000, .. }), "{err}");
    assert!(err.retryable());

    for code in
        ["not_in_channel", "channel_not_found", "invalid_auth", "account_inactive", "token_revoked", "missing_scope"]
    {
        rig.fake.fail_next("chat.postMessage", Fault::Error(code.into()));
        let err = rig.adapter.deliver(&reply).await.unwrap_err();
        match &err {
            AdapterError::Rejected { code: got, message, .. } => {
                assert_eq!(got, code);
                assert!(message.len() > 40, "{code} needs an explanation: {message}");
            }
            other => panic!("{code} → {other}"),
        }
        assert!(!err.retryable());
    }
    rig.fake.fail_next("chat.postMessage", Fault::Error("missing_scope".into()));
    let err = rig.adapter.deliver(&reply).await.unwrap_err();
    assert!(err.to_string().contains("needed: chat:write"), "{err}");

    for status in [500, 503] {
        rig.fake.fail_next("chat.postMessage", Fault::Status(status));
        let err = rig.adapter.deliver(&reply).await.unwrap_err();
        assert!(matches!(err, AdapterError::Unavailable { .. }), "{status} → {err}");
    }
    // Nothing listening at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let offline = SlackAdapter::new(
        SlackConfig {
            signing_secret: Some(SECRET.into()),
            bot_token: Some(BOT_TOKEN.into()),
            api_url: format!("http://127.0.0.1:{closed}/api"),
            ..SlackConfig::default()
        },
        temp_tree(),
    )
    .unwrap();
    let err = offline.deliver(&reply).await.unwrap_err();
    assert!(matches!(err, AdapterError::Unavailable { .. }), "{err}");
    assert!(!offline.healthcheck().await.ok);

    // After the faults, delivery works again.
    rig.adapter.deliver(&reply).await.unwrap();
    let health = rig.adapter.healthcheck().await;
    assert!(health.ok, "{health:?}");
}

#[tokio::test]
async fn doctor_names_each_check() {
    let rig = running_with(|c| c.agents = [agents(TEAM_ID, &[], Some("SAGENTS"))].into()).await;
    rig.fake.set_usergroup("SAGENTS", &["UAGENT", "UAGENT2"]);
    let checks = rig.adapter.doctor().await;
    let find = |name: &str| checks.iter().find(|(n, _)| n.starts_with(name)).map(|(_, h)| h.clone());
    assert!(find("slack config").unwrap().ok);
    assert!(find("slack signing secret").unwrap().ok);
    assert!(find("slack bot token").unwrap().ok);
    assert_eq!(find("slack bot user").unwrap().detail, BOT_USER_ID);
    assert_eq!(find("slack agents' user group").unwrap().detail, "2 members");

    // Without agents for the workspace, doctor says what that means and how to fix it.
    let bare = running().await;
    let checks = bare.adapter.doctor().await;
    let agents = checks.iter().find(|(n, _)| n == &format!("slack agents in {TEAM_ID}")).unwrap();
    assert!(!agents.1.ok, "{agents:?}");
    assert!(agents.1.detail.contains("refused for everyone"), "{agents:?}");
    assert!(agents.1.detail.contains(&format!("[slack.agents.{TEAM_ID}]")), "{agents:?}");

    rig.fake.fail_next("auth.test", Fault::Error("token_revoked".into()));
    let checks = rig.adapter.doctor().await;
    let token = checks.iter().find(|(n, _)| n == "slack bot token").unwrap();
    assert!(!token.1.ok && token.1.detail.contains("install it again"), "{token:?}");
}

// --- OAuth --------------------------------------------------------------------------------

#[tokio::test]
async fn oauth_install_stores_the_token_encrypted_and_uses_it_for_that_team() {
    let key = "11".repeat(32);
    let rig = running_with(|c| {
        c.bot_token = None;
        c.client_id = Some("111.222".into());
        c.client_secret = Some("client-secret".into());
        c.redirect_url = Some("https://support.example.com/slack/oauth/callback".into());
        c.token_encryption_key = Some(key.into());
        c.authorize_url = "https://slack.example/oauth/v2/authorize".into();
    })
    .await;
    rig.fake.enable_oauth("111.222", "client-secret");
    rig.fake.issue_code("code-1", "T2", "Globex", "xoxb-globex-secret-token", "UBOT2");

    let a = rig.sender.raw(Method::GET, "/slack/install", Vec::new(), "text/plain", &[]).await;
    assert_eq!(a.status, 302);
    let location = url::Url::parse(a.location.as_deref().unwrap()).unwrap();
    assert_eq!(location.host_str(), Some("slack.example"));
    let q: std::collections::HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "111.222");
    assert!(q["scope"].contains("chat:write") && q["scope"].contains("reactions:write"));
    let state = q["state"].clone();

    // A forged state is refused and the code is not spent.
    let a = rig
        .sender
        .raw(Method::GET, "/slack/oauth/callback?code=code-1&state=forged", Vec::new(), "text/plain", &[])
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body,
        "this install link was not issued by this server, or expired long ago; start again at /slack/install"
    );
    assert!(rig.fake.calls_of("oauth.v2.access").is_empty());

    let path = format!("/slack/oauth/callback?code=code-1&state={state}");
    let a = rig.sender.raw(Method::GET, &path, Vec::new(), "text/plain", &[]).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains("Globex"));
    // The state works once.
    let a = rig.sender.raw(Method::GET, &path, Vec::new(), "text/plain", &[]).await;
    assert_eq!((a.status, a.body.as_str()), (400, "this install link was used already; start again at /slack/install"));
    assert_eq!(rig.fake.calls_of("oauth.v2.access").len(), 1);

    // At rest the token is encrypted.
    let raw = rig.tree.get("install/T2").unwrap().expect("the installation is stored");
    assert!(!raw.windows(b"xoxb-globex".len()).any(|w| w == b"xoxb-globex"), "the token is stored in clear");
    for (_, v) in rig.tree.iter().map(Result::unwrap) {
        assert!(!v.windows(b"xoxb-globex".len()).any(|w| w == b"xoxb-globex"));
    }

    // A message of that team is answered with that team's token.
    let m = rig.fake.customer_message("CG", "UCUST2", "<@UBOT2> hello", None);
    let mut envelope = rig.fake.event_for(&m, "app_mention", "EvG");
    envelope["team_id"] = json!("T2");
    envelope["authorizations"] = json!([{"team_id": "T2", "user_id": "UBOT2", "is_bot": true}]);
    assert_eq!(rig.sender.event(&envelope).await.status, 200);
    let inbound = rig.inbox.accepted().pop().unwrap();
    assert_eq!(inbound.workspace.as_str(), "T2");
    assert_eq!(inbound.text, "hello");
    rig.adapter.deliver(&outbound(&inbound, "g1", "hi Globex", OutboundKind::Notice)).await.unwrap();
    let post = rig.fake.calls_of("chat.postMessage").pop().unwrap();
    assert_eq!(post.token.as_deref(), Some("xoxb-globex-secret-token"));

    // A team that never installed the app gets a clear refusal.
    let mut stranger = inbound.clone();
    stranger.workspace = WorkspaceId::new("T9").unwrap();
    let err = rig.adapter.deliver(&outbound(&stranger, "g2", "x", OutboundKind::Notice)).await.unwrap_err();
    assert!(matches!(&err, AdapterError::Rejected { code, .. } if code == "no_installation"), "{err}");

    // Restarted with the same key, the installation is still readable; with another, it is not.
    let health = rig.adapter.healthcheck().await;
    assert!(health.ok, "{health:?}");
}

#[tokio::test]
async fn install_links_expire_are_purged_and_capped() {
    let rig = running_with(|c| {
        c.bot_token = None;
        c.client_id = Some("111.222".into());
        c.client_secret = Some("client-secret".into());
        c.redirect_url = Some("https://support.example.com/slack/oauth/callback".into());
        c.token_encryption_key = Some("11".repeat(32).into());
    })
    .await;
    let store = SlackStore::new(rig.tree.clone(), None);
    let now = signature::now_secs() * 1000;
    let states = || rig.tree.scan_prefix("oauth_state/").count();
    let install = || rig.sender.raw(Method::GET, "/slack/install", Vec::new(), "text/plain", &[]);
    // Links that expired a while ago are forgotten when the next one is issued.
    for i in 0..5 {
        assert!(store.put_oauth_state(&format!("old-{i}"), now - 20_000, now - 10_000, usize::MAX).unwrap());
    }
    assert_eq!(install().await.status, 302);
    assert_eq!(states(), 1);
    // An expired link is refused with a reason.
    assert!(store.put_oauth_state("stale", now - 20_000, now - 1, usize::MAX).unwrap());
    let a =
        rig.sender.raw(Method::GET, "/slack/oauth/callback?code=c&state=stale", Vec::new(), "text/plain", &[]).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "this install link has expired (it lasts 10 minutes); start again at /slack/install")
    );

    // Anyone can open /slack/install, so the links outstanding are capped.
    let mut n = 0;
    while store.put_oauth_state(&format!("flood-{n}"), now, now + 600_000, MAX_PENDING_INSTALLS).unwrap() {
        n += 1;
    }
    assert_eq!(states(), MAX_PENDING_INSTALLS);
    let a = install().await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (429, "too many installs are in progress right now; try again in a few minutes")
    );
    assert!(a.location.is_none());
    assert_eq!(states(), MAX_PENDING_INSTALLS, "nothing more was stored");
    assert!(rig.fake.calls_of("oauth.v2.access").is_empty());
}

#[tokio::test]
async fn replies_need_a_thread() {
    let rig = running().await;
    let inbound = Inbound {
        id: EventId::new("x").unwrap(),
        source: Source::Slack,
        workspace: WorkspaceId::new(TEAM_ID).unwrap(),
        channel: ChannelId::new("C1").unwrap(),
        conversation: ConversationKey::new("somewhere-else").unwrap(),
        author: Author { id: AuthorId::new("U1").unwrap(), display_name: None, is_bot: false, is_agent: false },
        text: "x".into(),
        attachments: vec![],
        received_at_ms: 1,
        addressed_to_bot: true,
        top_level: true,
        reply_context: Value::Null,
        action: None,
        unverified_sender: false,
    };
    let err = rig.adapter.deliver(&outbound(&inbound, "o", "x", OutboundKind::Notice)).await.unwrap_err();
    assert!(matches!(&err, AdapterError::Rejected { code, .. } if code == "no_thread"), "{err}");
    // Without reply_context, the conversation key still names the thread.
    let mut keyed = inbound.clone();
    keyed.conversation = ConversationKey::new("T1:C1:1700000000.000001").unwrap();
    rig.fake.customer_message("C1", "U1", "root", None);
    rig.adapter.deliver(&outbound(&keyed, "o2", "in thread", OutboundKind::Notice)).await.unwrap();
    assert_eq!(rig.fake.thread("C1", "1700000000.000001").len(), 1);
}

#[tokio::test]
async fn replies_queued_by_an_earlier_version_deliver_and_malformed_contexts_are_refused_by_name() {
    let rig = running().await;
    let root = rig.fake.customer_message("C1", "U1", "where is my invoice?", None);
    let mut inbound = Inbound {
        id: EventId::new(format!("C1:{}", root.ts)).unwrap(),
        source: Source::Slack,
        workspace: WorkspaceId::new(TEAM_ID).unwrap(),
        channel: ChannelId::new("C1").unwrap(),
        conversation: ConversationKey::new(format!("{TEAM_ID}:C1:{}", root.ts)).unwrap(),
        author: Author { id: AuthorId::new("U1").unwrap(), display_name: None, is_bot: false, is_agent: false },
        text: "where is my invoice?".into(),
        attachments: vec![],
        received_at_ms: 1,
        addressed_to_bot: true,
        top_level: true,
        reply_context: Value::Null,
        action: None,
        unverified_sender: false,
    };
    // An outbox entry as earlier versions stored it: the reply context is JSON text in the entry.
    let stored = format!(r#"{{"channel":"C1","thread_ts":"{0}","message_ts":"{0}"}}"#, root.ts);
    inbound.reply_context = serde_json::from_str(&stored).unwrap();
    rig.adapter.deliver(&outbound(&inbound, "old-1", "It is under Billing.", OutboundKind::Notice)).await.unwrap();
    let thread = rig.fake.thread("C1", &root.ts);
    assert_eq!(thread.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["It is under Billing."]);

    let posts = rig.fake.calls_of("chat.postMessage").len();
    for (context, expected) in [
        (
            json!({"channel": "C1", "thread_ts": 1700000000}),
            "the reply context's thread_ts 1700000000 is not a Slack message timestamp (invalid type: integer \
             `1700000000`, expected a string)",
        ),
        (
            json!({"channel": "C1", "thread_ts": "soon"}),
            "the reply context's thread_ts \"soon\" is not a Slack message timestamp",
        ),
        (
            json!(["C1", root.ts]),
            &*format!(
                "the reply context [\"C1\",\"{}\"] is not a JSON object with the Slack channel and thread to reply \
                 in; the reply did not come from a Slack message",
                root.ts
            ),
        ),
    ] {
        inbound.reply_context = context.clone();
        let err = rig.adapter.deliver(&outbound(&inbound, "bad", "x", OutboundKind::Notice)).await.unwrap_err();
        match err {
            AdapterError::Rejected { code, message, .. } => {
                assert_eq!((code.as_str(), message.as_str()), ("bad_reply_context", expected), "{context}")
            }
            other => panic!("{context}: {other:?}"),
        }
    }
    assert_eq!(rig.fake.calls_of("chat.postMessage").len(), posts, "nothing was posted for a malformed context");
}
