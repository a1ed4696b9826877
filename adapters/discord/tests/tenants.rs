//! One bot serves several Discord servers, each a tenant with its own knowledge and policies:
//! what one server's admins configure, and what its customers ask, never reaches another server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{accepted, start, until, Running};
use frontdesk_channel::{AdapterError, ChannelAdapter, ChannelId, HandoffSummary, Inbound, Outbound, OutboundKind};
use frontdesk_discord::fake::{FakeUser, AGENTS_CHANNEL, DM_CHANNEL, GUILD_ID, OTHER_GUILD_CHANNEL, SUPPORT_CHANNEL};
use serde_json::json;

fn summary_to(m: &Inbound, channel: u64) -> Outbound {
    let summary = HandoffSummary {
        question: "I was charged twice, my card ends in 4242".into(),
        condensed_question: "Why was the card ending in 4242 charged twice?".into(),
        reason: "asked_for_human".into(),
        confidence: 0.0,
        sources: vec![],
        draft: None,
        conversation: m.conversation.clone(),
        customer_channel: m.channel.clone(),
    };
    let kind =
        OutboundKind::AgentSummary { agents_channel: Some(ChannelId::new(channel.to_string()).unwrap()), summary };
    Outbound::reply_to(m, format!("summary-{channel}"), "summary", kind)
}

fn rejection(e: &AdapterError) -> (&str, &str) {
    match e {
        AdapterError::Rejected { code, message, .. } => (code.as_str(), message.as_str()),
        other => panic!("expected a final rejection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_card_goes_only_to_a_channel_of_the_conversations_server() {
    let r = start().await;
    r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "why was I charged twice?", true).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    assert_eq!(m.workspace.as_str(), GUILD_ID.to_string());

    // Another server's channel, which the bot can see: refused, nothing posted there.
    let e = r.adapter.deliver(&summary_to(&m, OTHER_GUILD_CHANNEL)).await.unwrap_err();
    assert!(!e.retryable(), "{e:?}");
    let (code, message) = rejection(&e);
    assert_eq!(code, "agents_channel_other_server");
    assert!(message.contains("agents_channel") && message.contains(&format!("server {GUILD_ID}")), "{message}");
    assert!(r.fake.posted_in(OTHER_GUILD_CHANNEL).is_empty(), "the customer's conversation reached another server");
    // The channel's server is remembered: a second card is refused without asking Discord again.
    r.adapter.deliver(&summary_to(&m, OTHER_GUILD_CHANNEL)).await.unwrap_err();
    let lookups = r
        .fake
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path.ends_with(&format!("/channels/{OTHER_GUILD_CHANNEL}")))
        .count();
    assert_eq!(lookups, 1);
    assert!(r.fake.posted_in(OTHER_GUILD_CHANNEL).is_empty());

    // A direct-message channel is no agents' channel either.
    let e = r.adapter.deliver(&summary_to(&m, DM_CHANNEL)).await.unwrap_err();
    assert_eq!(rejection(&e).0, "agents_channel_not_in_server");
    assert!(r.fake.posted_in(DM_CHANNEL).is_empty());

    // A channel Discord does not know: a final error that names the policy key.
    let e = r.adapter.deliver(&summary_to(&m, 1_150_000_000_000_009_999)).await.unwrap_err();
    assert!(!e.retryable() && rejection(&e).1.contains("agents_channel"), "{e}");

    // The server's own agents' channel gets the card.
    r.adapter.deliver(&summary_to(&m, AGENTS_CHANNEL)).await.unwrap();
    assert_eq!(r.fake.posted_in(AGENTS_CHANNEL).len(), 1);
    r.stop().await;
}

fn policy_set(key: &str, value: &str) -> serde_json::Value {
    json!([{"name": "policy", "type": 2, "options": [{"name": "set", "type": 1, "options": [
        {"name": "key", "type": 3, "value": key},
        {"name": "value", "type": 3, "value": value},
    ]}]}])
}

/// The `n`th interaction response's text, once it came; only the one who asked may see it.
async fn answer(r: &Running, n: usize) -> String {
    until(&format!("{n} interaction responses"), || r.fake.interaction_responses().len() >= n).await;
    let response = r.fake.interaction_responses()[n - 1].1.clone();
    assert_eq!(response["data"]["flags"], json!(64), "only the admin sees the answer: {response}");
    response["data"]["content"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_admin_can_set_agents_channel_only_to_a_channel_of_that_server() {
    let r = start().await;
    let set = |value: &str| {
        let c = r.fake.command_interaction(
            &FakeUser::admin(),
            SUPPORT_CHANNEL,
            "frontdesk",
            policy_set("agents_channel", value),
        );
        r.fake.dispatch("INTERACTION_CREATE", c).unwrap();
    };

    set(&OTHER_GUILD_CHANNEL.to_string());
    let said = answer(&r, 1).await;
    assert!(said.contains("not changed") && said.contains("not a channel of this server"), "{said}");
    set(&format!("<#{OTHER_GUILD_CHANNEL}>"));
    let said = answer(&r, 2).await;
    assert!(said.contains("not a channel of this server"), "{said}");
    set(&DM_CHANNEL.to_string());
    let said = answer(&r, 3).await;
    assert!(said.contains("not a channel of this server"), "{said}");
    set("support-agents");
    let said = answer(&r, 4).await;
    assert!(said.contains("not changed") && said.contains("give its id"), "{said}");
    set("1150000000000009999");
    let said = answer(&r, 5).await;
    assert!(said.contains("not changed") && said.contains("cannot see channel"), "{said}");
    assert!(r.policies.sets.lock().unwrap().is_empty(), "nothing was set: {:?}", r.policies.sets.lock().unwrap());

    // The server's own agents' channel, #mentioned: stored as its id. `none` clears it.
    set(&format!("<#{AGENTS_CHANNEL}>"));
    let said = answer(&r, 6).await;
    assert!(said.contains(&format!("agents_channel = {AGENTS_CHANNEL}")), "{said}");
    set("none");
    answer(&r, 7).await;
    let key =
        |v: &str| (GUILD_ID.to_string(), SUPPORT_CHANNEL.to_string(), "agents_channel".to_string(), v.to_string());
    assert_eq!(*r.policies.sets.lock().unwrap(), vec![key(&AGENTS_CHANNEL.to_string()), key("none")]);
    r.stop().await;
}
