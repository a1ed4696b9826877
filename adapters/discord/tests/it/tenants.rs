//! One bot serves several Discord servers, each a tenant with its own knowledge and policies:
//! what one server's admins configure, and what its customers ask, never reaches another server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{accepted, start, start_with, until, Running, WAIT};
use frontdesk_channel::{AdapterError, ChannelAdapter, ChannelId, HandoffSummary, Inbound, Outbound, OutboundKind};
use frontdesk_discord::fake::{
    FakeUser, AGENTS_CHANNEL, DM_CHANNEL, GUILD_ID, OTHER_GUILD_CHANNEL, OTHER_GUILD_ID, SUPPORT_CHANNEL,
};
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

fn ask(question: &str) -> serde_json::Value {
    json!([{"name": "question", "type": 3, "value": question}])
}

fn member_lookups(r: &Running, user: u64) -> usize {
    r.fake.calls().iter().filter(|c| c.method == "GET" && c.path.ends_with(&format!("/members/{user}"))).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_is_answered_from_the_one_server_its_sender_shares_with_the_bot() {
    let r = start().await;
    // The bot is in two servers; the customer is a member of one of them.
    let customer = FakeUser::customer();
    r.fake.send_message(DM_CHANNEL, &customer, "how do refunds work?", false).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    assert_eq!(m.workspace.as_str(), GUILD_ID.to_string(), "answered from the customer's own server");
    assert_eq!(m.conversation.as_str(), format!("dm:{DM_CHANNEL}"));
    assert!(m.addressed_to_bot);

    // A rating of the answer in the DM, and /ask in the DM, belong to the same workspace.
    let kind = OutboundKind::Answer { turn_id: "t1".into(), citations: vec![], confidence: 0.9 };
    r.adapter.deliver(&Outbound::reply_to(&m, "dm-answer", "Within 30 days.", kind)).await.unwrap();
    let answer_msg = r.fake.posted_in(DM_CHANNEL).remove(0);
    let helpful = answer_msg.button_ids()[0].clone();
    r.fake.dispatch("INTERACTION_CREATE", r.fake.button_interaction(&customer, &answer_msg, &helpful)).unwrap();
    let rated = accepted(&r.inbox, 2).await.remove(1);
    assert!(rated.action.is_some());
    assert_eq!(rated.workspace.as_str(), GUILD_ID.to_string());
    let command = r.fake.command_interaction(&customer, DM_CHANNEL, "ask", ask("and for monthly plans?"));
    r.fake.dispatch("INTERACTION_CREATE", command).unwrap();
    let asked = accepted(&r.inbox, 3).await.remove(2);
    assert_eq!(asked.text, "and for monthly plans?");
    assert_eq!(asked.workspace.as_str(), GUILD_ID.to_string());
    // The customer's servers were looked up once for all three.
    assert_eq!(member_lookups(&r, customer.id), 2, "one lookup per server the bot is in");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_that_matches_no_single_server_is_not_guessed_and_the_sender_is_told_where_to_ask() {
    let r = start().await;
    // The customer is in both servers the bot serves: which one's knowledge applies is unknown.
    r.fake.join(OTHER_GUILD_ID, &FakeUser::customer());
    r.fake.send_message(DM_CHANNEL, &FakeUser::customer(), "what does my plan include?", false).unwrap();
    let notes = r.fake.wait_posted_in(DM_CHANNEL, 1, WAIT).await.unwrap();
    assert!(notes[0].content.contains("several") && notes[0].content.contains("support channel"), "{notes:?}");
    assert_eq!(notes[0].request["allowed_mentions"]["parse"], json!([]));
    // Someone who shares no server with the bot.
    r.fake.send_message(DM_CHANNEL, &FakeUser::stranger(), "hello?", false).unwrap();
    let notes = r.fake.wait_posted_in(DM_CHANNEL, 2, WAIT).await.unwrap();
    assert!(!notes[1].content.contains("several") && notes[1].content.contains("support channel"), "{notes:?}");
    // Both messages sent again after a gateway resume: no second note.
    r.fake.reconnect(2).unwrap();
    r.fake.wait_resumed(1, WAIT).await.unwrap();
    let note_posts = || {
        r.fake
            .calls()
            .iter()
            .filter(|c| c.method == "POST" && c.path.ends_with(&format!("/channels/{DM_CHANNEL}/messages")))
            .count()
    };
    until("the replayed messages to be answered", || note_posts() >= 4).await;
    assert_eq!(r.fake.posted_in(DM_CHANNEL).len(), 2);
    // /ask in the DM: told the same, only the asker sees it, and the question is not posted.
    let command = r.fake.command_interaction(&FakeUser::customer(), DM_CHANNEL, "ask", ask("my invoices?"));
    r.fake.dispatch("INTERACTION_CREATE", command).unwrap();
    let said = answer(&r, 1).await;
    assert!(said.contains("support channel"), "{said}");
    assert_eq!(r.fake.posted_in(DM_CHANNEL).len(), 2);
    // A button press in the DM (e.g. on an answer from before) is not taken either.
    let old = notes[0].clone();
    let press = r.fake.button_interaction(&FakeUser::customer(), &old, &format!("fd1:up:{DM_CHANNEL}:{DM_CHANNEL}:t1"));
    r.fake.dispatch("INTERACTION_CREATE", press).unwrap();
    let said = answer(&r, 2).await;
    assert!(said.contains("support channel"), "{said}");
    assert_eq!(r.inbox.offered(), 0, "nothing was handed to any workspace: {:?}", r.inbox.accepted());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_dm_workspace_answers_only_the_dms_that_match_no_single_server() {
    let r = start_with(|c| c.dm_workspace = Some("dm-help".to_string())).await;
    r.fake.send_message(DM_CHANNEL, &FakeUser::customer(), "one server", false).unwrap();
    r.fake.send_message(DM_CHANNEL, &FakeUser::stranger(), "no server", false).unwrap();
    r.fake.join(OTHER_GUILD_ID, &FakeUser::agent());
    r.fake.send_message(DM_CHANNEL, &FakeUser::agent(), "two servers", false).unwrap();
    let got = accepted(&r.inbox, 3).await;
    let workspace_of = |text: &str| got.iter().find(|m| m.text == text).unwrap().workspace.as_str().to_string();
    assert_eq!(workspace_of("one server"), GUILD_ID.to_string());
    assert_eq!(workspace_of("no server"), "dm-help");
    assert_eq!(workspace_of("two servers"), "dm-help");
    assert!(r.fake.posted_in(DM_CHANNEL).is_empty());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_servers_cannot_be_looked_up_the_sender_is_asked_to_try_again() {
    // Even with a dm_workspace to fall back on: the customer may well be in one server.
    let r = start_with(|c| c.dm_workspace = Some("dm-help".to_string())).await;
    r.fake.fail_next("GET", "/members/", 502, 0, "Bad Gateway");
    r.fake.send_message(DM_CHANNEL, &FakeUser::customer(), "how do refunds work?", false).unwrap();
    let notes = r.fake.wait_posted_in(DM_CHANNEL, 1, WAIT).await.unwrap();
    assert!(notes[0].content.contains("try again"), "{notes:?}");
    assert_eq!(r.inbox.offered(), 0);
    // The failure is not remembered: the next message is looked up afresh and answered.
    r.fake.send_message(DM_CHANNEL, &FakeUser::customer(), "how do refunds work?", false).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    assert_eq!(m.workspace.as_str(), GUILD_ID.to_string());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_are_looked_up_page_by_page() {
    let r = start().await;
    // 250 more servers: Discord lists at most 200 per page. The customer is only in the last.
    let last = 1_150_000_000_000_100_250;
    for guild in 1_150_000_000_000_100_001..=last {
        r.fake.add_guild(guild, "another server");
    }
    r.fake.leave(GUILD_ID, FakeUser::customer().id);
    r.fake.join(last, &FakeUser::customer());
    r.fake.send_message(DM_CHANNEL, &FakeUser::customer(), "where is my order?", false).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    assert_eq!(m.workspace.as_str(), last.to_string());
    let pages = r.fake.calls().iter().filter(|c| c.method == "GET" && c.path.ends_with("/users/@me/guilds")).count();
    assert_eq!(pages, 2);
    assert_eq!(member_lookups(&r, FakeUser::customer().id), 252);
    r.stop().await;
}
