//! A whole Discord conversation through the real service: the fake Discord (gateway and REST),
//! the Discord adapter, the durable inbox and its worker, and the engine over the sample help
//! articles.
//!
//! 1. A customer mentions the bot with a question the articles answer: the answer arrives in a
//!    thread started from the question, with its buttons.
//! 2. The customer presses "Talk to a person": the thread gets the handoff with the support
//!    role pinged, and the agents' channel gets the summary card.
//! 3. An agent presses "Claim": the customer is told who joined, and the bot stays silent when
//!    the customer writes again.
//! 4. In another conversation, an agent simply writes in the thread: that takes it over too.
//!
//! That no unchecked answer reaches a Discord customer is pinned in `regression`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use frontdesk::channel::{ChannelId, ConversationKey, Source};
use frontdesk::conversation::ConvState;
use frontdesk::policy::Scope;
use frontdesk_discord::fake::{FakeDiscord, FakeUser, Posted, AGENTS_CHANNEL, GUILD_ID, SUPPORT_CHANNEL, SUPPORT_ROLE};
use std::sync::Arc;
use std::time::Duration;
use support::engine_harness::{harness_for, Harness};
use support::serving::{discord_handled, serve_discord};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_conversation_from_question_to_handoff_to_claim() {
    let Harness { _dir: _keep, engine, ws } = harness_for(&GUILD_ID.to_string()).await;
    let engine = Arc::new(engine);
    let _store = engine.kb.store.clone();
    let support = ChannelId::new(SUPPORT_CHANNEL.to_string()).unwrap();
    let pairs = [
        ("escalation_target".to_string(), format!("<@&{SUPPORT_ROLE}>")),
        ("agents_channel".to_string(), AGENTS_CHANNEL.to_string()),
    ];
    engine.policies.set(&ws, &Scope::Channel(support.clone()), &pairs).unwrap().unwrap();

    let (fake, serving) = serve_discord(&engine).await;
    let inbox = serving.inbox.clone();

    // 1. The question, answered in a thread started from it.
    let customer = FakeUser::customer();
    let question = fake.send_message(SUPPORT_CHANNEL, &customer, "How long is the free trial?", true).unwrap();
    let thread = question;
    fake.wait_posted_in(thread, 1, WAIT).await.unwrap();
    assert_eq!(fake.threads(), vec![(SUPPORT_CHANNEL, thread)]);
    // The answer is posted once, whole, with its buttons: nothing showed before it, nothing edits it.
    let answer = fake.posted_in(thread).remove(0);
    assert_eq!(fake.posted_in(thread).len(), 1);
    assert!(fake.calls().iter().all(|c| c.method != "PATCH" && c.method != "DELETE"), "{:?}", fake.calls());
    assert!(answer.content.contains("14-day free trial"), "{:?}", answer.content);
    assert!(answer.content.contains("**Sources**") && answer.content.contains("Free trial"), "{:?}", answer.content);
    assert_eq!(answer.button_labels(), ["Helpful", "Not helpful", "Talk to a person"]);
    assert!(fake.posted_in(SUPPORT_CHANNEL).is_empty(), "the channel itself stays clean");

    // 2. "Talk to a person": the role is pinged in the thread, the agents get the card.
    let talk = answer.button_ids()[2].clone();
    fake.dispatch("INTERACTION_CREATE", fake.button_interaction(&customer, &answer, &talk)).unwrap();
    let posted = fake.wait_posted_in(thread, 2, WAIT).await.unwrap();
    let handoff = &posted[1];
    assert!(handoff.content.contains("support team"), "{:?}", handoff.content);
    assert!(handoff.content.contains(&format!("<@&{SUPPORT_ROLE}>")));
    assert_eq!(handoff.request["allowed_mentions"]["roles"], serde_json::json!([SUPPORT_ROLE.to_string()]));
    let card = fake.wait_posted_in(AGENTS_CHANNEL, 1, WAIT).await.unwrap().remove(0);
    // The card points the agents at the customer's thread. (Its "Question" is the text of the
    // turn that handed off: for the button, the press itself.)
    assert!(card.content.contains(&format!("<#{thread}>")), "{:?}", card.content);
    let fields = card.request["embeds"][0]["fields"].to_string();
    assert!(fields.contains(&format!("https://discord.com/channels/{GUILD_ID}/{thread}")), "{fields}");
    assert!(card.request["embeds"][0]["fields"].to_string().contains("asked for human"));
    assert_eq!(card.button_labels(), ["Claim", "Resolve"]);
    let conv = ConversationKey::new(format!("{GUILD_ID}:{thread}")).unwrap();
    let state = engine.conversations.get(Source::Discord, &ws, &conv).unwrap().unwrap().state;
    assert_eq!(state, ConvState::Escalated);

    // 3. The agent claims from the card; the customer is told who joined.
    let claim = card.button_ids()[0].clone();
    fake.dispatch("INTERACTION_CREATE", fake.button_interaction(&FakeUser::agent(), &card, &claim)).unwrap();
    let posted = fake.wait_posted_in(thread, 3, WAIT).await.unwrap();
    assert!(posted[2].content.contains("Alex from our support team has joined"), "{:?}", posted[2].content);
    let conversation = engine.conversations.get(Source::Discord, &ws, &conv).unwrap().unwrap();
    assert_eq!(conversation.state, ConvState::Agent);
    assert_eq!(conversation.owner.as_deref(), Some(FakeUser::agent().id.to_string().as_str()));
    // The card says who has it; only Resolve is left, the summary stays.
    let agent_mention = format!("<@{}>", FakeUser::agent().id);
    let card = card_once(&fake, |c| c.content.contains(&format!("Claimed by {agent_mention}"))).await;
    assert_eq!(card.button_labels(), ["Resolve"]);
    assert!(card.content.contains(&format!("<#{thread}>")), "{:?}", card.content);
    assert!(card.request["embeds"][0]["fields"].to_string().contains("asked for human"));

    // The customer writes again: the bot stays silent, the message is kept.
    fake.send_message(thread, &customer, "Thanks, also what about annual plans?", false).unwrap();
    discord_handled(WAIT, &engine, &inbox, &ws, &conv, "also what about annual plans").await;
    assert_eq!(fake.posted_in(thread).len(), 3, "the bot must stay silent once an agent owns the thread");

    // The agent resolves from the card: the customer is told, the card loses its buttons.
    let resolve = card.button_ids()[0].clone();
    fake.dispatch("INTERACTION_CREATE", fake.button_interaction(&FakeUser::agent(), &card, &resolve)).unwrap();
    let posted = fake.wait_posted_in(thread, 4, WAIT).await.unwrap();
    assert!(posted[3].content.contains("marked as resolved"), "{:?}", posted[3].content);
    let card = card_once(&fake, |c| c.content.contains(&format!("Resolved by {agent_mention}"))).await;
    assert!(card.button_labels().is_empty() && !card.content.contains("Claimed by"), "{:?}", card.content);
    let state = engine.conversations.get(Source::Discord, &ws, &conv).unwrap().unwrap().state;
    assert_eq!(state, ConvState::Resolved);

    // 4. Another conversation: an agent writing in the thread takes it over.
    let second = fake
        .send_message(SUPPORT_CHANNEL, &customer, "Can annual plans be refunded within 30 days of the renewal?", true)
        .unwrap();
    let posted = fake.wait_posted_in(second, 1, WAIT).await.unwrap();
    assert!(posted[0].content.contains("refunded"), "{:?}", posted[0].content);
    let conv2 = ConversationKey::new(format!("{GUILD_ID}:{second}")).unwrap();
    fake.send_message(second, &FakeUser::agent(), "I'll take this one and check your invoice.", false).unwrap();
    discord_handled(WAIT, &engine, &inbox, &ws, &conv2, "check your invoice").await;
    let conversation = engine.conversations.get(Source::Discord, &ws, &conv2).unwrap().unwrap();
    assert_eq!(conversation.state, ConvState::Agent);
    fake.send_message(second, &customer, "Great, and how long is the free trial?", false).unwrap();
    discord_handled(WAIT, &engine, &inbox, &ws, &conv2, "and how long is the free trial").await;
    assert_eq!(fake.posted_in(second).len(), 1, "the bot stays silent after the agent took over");

    assert_eq!(inbox.stats().dead_letters, 0);
    serving.stop().await;
}

/// The agents' card once it satisfies `ready`, waiting up to WAIT.
async fn card_once(fake: &FakeDiscord, ready: impl Fn(&Posted) -> bool) -> Posted {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(card) = fake.posted_in(AGENTS_CHANNEL).into_iter().next().filter(|c| ready(c)) {
            return card;
        }
        let seen = fake.posted_in(AGENTS_CHANNEL).into_iter().next().map(|c| c.content);
        assert!(tokio::time::Instant::now() < deadline, "the card never got there; it reads {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
