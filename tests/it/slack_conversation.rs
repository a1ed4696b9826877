#![allow(clippy::unwrap_used, clippy::expect_used)]

//! A whole Slack conversation through the real pieces: signed events into the Slack adapter's
//! router, the durable inbox (with its dedup), the worker, the engine over sample help articles,
//! and replies delivered by the adapter to a loopback fake of Slack's Web API.
//!
//! Question → answer in the thread with sources and buttons → "Talk to a person" → handoff
//! with the escalation target mentioned in the thread and a summary card in the agents'
//! channel → an agent clicks Claim → "joined" notice in the customer's thread → the customer
//! writes again and the bot stays silent → Resolve → resolved notice.
//!
//! That no unchecked answer reaches a Slack thread is pinned in `regression`.

use crate::support;

use frontdesk::channel::{ChannelId, ConversationKey, Source};
use frontdesk::conversation::ConvState;
use frontdesk::policy::Scope;
use frontdesk::ratelimit::RateLimitConfig;
use frontdesk_slack::blocks::{ACTION_CLAIM, ACTION_HELPFUL, ACTION_REQUEST_HUMAN, ACTION_RESOLVE};
use frontdesk_slack::fake::{FakeMessage, FakeSlack, SlackSender, BOT_TOKEN, BOT_USER_ID, TEAM_ID};
use frontdesk_slack::{SlackAdapter, SlackAgents, SlackConfig};
use std::sync::Arc;
use support::engine_harness::{harness, Harness};
use support::serving::serve;
use support::wait::eventually;

const SECRET: &str = "e2e-signing-secret";
const CUSTOMER_CHANNEL: &str = "CSUPPORT";
const AGENTS_CHANNEL: &str = "CAGENTS";
const ESCALATION: &str = "<!subteam^SSUPPORT>";

fn thread_texts(fake: &FakeSlack, root: &FakeMessage) -> Vec<String> {
    fake.thread(CUSTOMER_CHANNEL, &root.ts).iter().map(FakeMessage::all_text).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_conversation_from_question_to_resolution() {
    let Harness { _dir: _keep, engine, ws } = harness(RateLimitConfig::default()).await;
    let fake = Arc::new(FakeSlack::start().await.unwrap());
    assert_eq!(ws.as_str(), frontdesk_slack::fake::TEAM_ID, "the fake's team is the harness's workspace");
    let customer_channel = ChannelId::new(CUSTOMER_CHANNEL).unwrap();
    let policy =
        [("escalation_target".to_string(), ESCALATION.to_string()), ("agents_channel".into(), AGENTS_CHANNEL.into())];
    engine.policies.set(&ws, &Scope::Channel(customer_channel.clone()), &policy).unwrap().unwrap();

    let engine = Arc::new(engine);
    let store = engine.kb.store.clone();
    let config = SlackConfig {
        signing_secret: Some(SECRET.into()),
        bot_token: Some(BOT_TOKEN.into()),
        api_url: fake.api_url(),
        agents: [(TEAM_ID.to_string(), SlackAgents { user_ids: vec!["UAGENT".into()], usergroup: None })].into(),
        ..SlackConfig::default()
    };
    let adapter = SlackAdapter::new(config, store.db().open_tree("slack").unwrap()).unwrap();
    let serving = serve(&engine, Source::Slack, adapter.clone());
    let inbox = serving.inbox.clone();
    eventually("the adapter receives", async || adapter.is_receiving().then_some(())).await;
    let slack = SlackSender::new(adapter.router(), SECRET);

    // 1. The customer asks, mentioning the bot. Slack sends the message twice (message and
    //    app_mention) and retries one of them: one answer.
    let question = fake.customer_message(
        CUSTOMER_CHANNEL,
        "UCUSTOMER",
        &format!("<@{BOT_USER_ID}> Can annual plans be refunded within 30 days of the renewal?"),
        None,
    );
    for (kind, id, retry) in [("message", "Ev1", None), ("app_mention", "Ev2", None), ("message", "Ev1", Some(1))] {
        let a = slack.event_retry(&fake.event_for(&question, kind, id), retry).await;
        assert_eq!(a.status, 200, "{a:?}");
    }
    let answer = eventually("the answer in the thread", async || {
        fake.thread(CUSTOMER_CHANNEL, &question.ts).into_iter().find(|m| m.button_value(ACTION_HELPFUL).is_some())
    })
    .await;
    let text = answer.all_text();
    assert!(text.contains("30 days"), "{text}");
    assert!(text.contains("Sources: <https://help.example.com/refunds|[1] Refunds and credits>"), "{text}");
    assert!(answer.button_value(ACTION_REQUEST_HUMAN).is_some());
    assert_eq!(fake.thread(CUSTOMER_CHANNEL, &question.ts).len(), 1, "one message in the thread");
    // The answer was posted once, whole: nothing showed before it and it was not edited.
    assert_eq!(answer.updates, 0, "the answer must be posted as it is, not edited into place");
    assert_eq!(fake.calls_of("chat.postMessage").len(), 1, "{:?}", fake.calls_of("chat.postMessage"));
    // 👀 came and went on the customer's message.
    assert!(fake.calls_of("reactions.add").iter().any(|c| c.params["timestamp"] == question.ts.as_str()));
    eventually("the reaction removed", async || fake.reactions().is_empty().then_some(())).await;

    // 2. "Talk to a person": handoff in the thread with the escalation target, and a card for
    //    the agents.
    let click = fake.click(&answer, "UCUSTOMER", ACTION_REQUEST_HUMAN).unwrap();
    assert_eq!(slack.interaction(&click).await.status, 200);
    let texts = eventually("the handoff in the thread", async || {
        let t = thread_texts(&fake, &question);
        (t.len() >= 2).then_some(t)
    })
    .await;
    assert!(texts[1].contains("asked a person from our support team") && texts[1].contains(ESCALATION), "{texts:?}");
    let card = eventually("the agents' card", async || fake.top_level(AGENTS_CHANNEL).into_iter().next()).await;
    let card_text = card.all_text();
    assert!(card_text.contains("<#CSUPPORT>") && card_text.contains("asked_for_human"), "{card_text}");
    assert!(card_text.contains("Can annual plans be refunded within 30 days"), "the customer's question: {card_text}");

    // 3. An agent claims the conversation from the card: the customer is told in the thread.
    let claim = fake.click(&card, "UAGENT", ACTION_CLAIM).unwrap();
    assert_eq!(slack.interaction(&claim).await.status, 200);
    let texts = eventually("the joined notice", async || {
        let t = thread_texts(&fake, &question);
        (t.len() >= 3).then_some(t)
    })
    .await;
    assert!(texts[2].contains("uagent from our support team has joined"), "{texts:?}");
    // The card shows who has it; only Resolve is left on it.
    let card = eventually("the card marked claimed", async || {
        fake.top_level(AGENTS_CHANNEL).into_iter().next().filter(|c| c.all_text().contains("Claimed by <@UAGENT>"))
    })
    .await;
    assert!(card.button_value(ACTION_CLAIM).is_none() && card.button_value(ACTION_RESOLVE).is_some(), "{card:?}");
    assert!(card.all_text().contains("Can annual plans be refunded within 30 days"), "the summary stays: {card:?}");

    // 4. The customer writes again in the thread: the agent owns it, the bot stays silent.
    let follow_up =
        fake.customer_message(CUSTOMER_CHANNEL, "UCUSTOMER", "How long is the free trial?", Some(&question.ts));
    assert_eq!(slack.event(&fake.event_for(&follow_up, "message", "Ev3")).await.status, 200);
    eventually("the follow-up handled", async || {
        let s = inbox.stats();
        (s.pending_inbound == 0 && s.pending_outbound == 0).then_some(())
    })
    .await;
    assert_eq!(thread_texts(&fake, &question).len(), 3, "the bot must not answer in an agent's thread");
    let key = ConversationKey::new(format!("{ws}:{CUSTOMER_CHANNEL}:{}", question.ts)).unwrap();
    let conversation = engine.conversations.get(Source::Slack, &ws, &key).unwrap().unwrap();
    assert_eq!(conversation.state, ConvState::Agent);
    assert!(
        conversation.messages.iter().any(|m| m.text == "How long is the free trial?"),
        "the follow-up was recorded"
    );

    // 5. The agent resolves it.
    let resolve = fake.click(&card, "UAGENT", ACTION_RESOLVE).unwrap();
    assert_eq!(slack.interaction(&resolve).await.status, 200);
    let texts = eventually("the resolved notice", async || {
        let t = thread_texts(&fake, &question);
        (t.len() >= 4).then_some(t)
    })
    .await;
    assert!(texts[3].contains("marked as resolved"), "{texts:?}");
    assert_eq!(texts.len(), 4);
    let card = eventually("the card marked resolved", async || {
        fake.top_level(AGENTS_CHANNEL).into_iter().next().filter(|c| c.all_text().contains("Resolved by <@UAGENT>"))
    })
    .await;
    assert!(!card.all_text().contains("Claimed by"), "{card:?}");
    assert!(card.button_value(ACTION_CLAIM).is_none() && card.button_value(ACTION_RESOLVE).is_none(), "{card:?}");
    assert!(inbox.dead_letters().unwrap().is_empty());
    assert_eq!(engine.conversations.get(Source::Slack, &ws, &key).unwrap().unwrap().state, ConvState::Resolved);

    serving.stop().await;
}
