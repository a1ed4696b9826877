//! The adapter against the fake Discord: gateway intake, replays, deliveries, limits, errors,
//! buttons and commands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{accepted, start, until, WAIT};
use frontdesk_channel::{
    AdapterError, ChannelAdapter, ChannelId, Citation, HandoffSummary, Inbound, Outbound, OutboundKind, UserAction,
};
use frontdesk_discord::fake::{
    FakeUser, AGENTS_CHANNEL, BOT_ID, DM_CHANNEL, FORUM_CHANNEL, GUILD_ID, SUPPORT_CHANNEL, SUPPORT_ROLE,
};
use serde_json::json;
use std::time::Duration;

fn reply(to: &Inbound, id: &str, text: &str, kind: OutboundKind) -> Outbound {
    Outbound::reply_to(to, id, text, kind)
}

fn answer(turn: &str) -> OutboundKind {
    OutboundKind::Answer { turn_id: turn.into(), citations: vec![], confidence: 0.9 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_becomes_one_inbound_message_with_its_thread_context() {
    let r = start().await;
    let id = r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "how do refunds work?", true).unwrap();
    let got = accepted(&r.inbox, 1).await;
    let m = &got[0];
    assert_eq!(m.id.as_str(), id.to_string());
    assert_eq!(m.workspace.as_str(), GUILD_ID.to_string());
    assert_eq!(m.channel.as_str(), SUPPORT_CHANNEL.to_string());
    assert_eq!(m.conversation.as_str(), format!("{GUILD_ID}:{id}"));
    assert_eq!(m.text, "how do refunds work?", "the bot's mention is removed");
    assert!(m.addressed_to_bot && m.top_level && !m.author.is_agent && !m.author.is_bot);
    assert_eq!(m.author.id.as_str(), FakeUser::customer().id.to_string());
    assert_eq!(m.author.display_name.as_deref(), Some("Casey"));
    assert_eq!(m.reply_context["message"], json!(id.to_string()));
    assert!(m.reply_context.get("thread").is_none());

    // A top-level message without a mention is handed over too (the engine applies the
    // channel's answer_top_level policy), marked as not addressed to the bot.
    r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "anyone around?", false).unwrap();
    let got = accepted(&r.inbox, 2).await;
    assert!(!got[1].addressed_to_bot && got[1].top_level);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_replayed_after_reconnect_and_resume_is_accepted_once() {
    let r = start().await;
    r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "is there a free trial?", true).unwrap();
    accepted(&r.inbox, 1).await;
    // Discord asks the bot to reconnect; on RESUME it sends the last event again.
    r.fake.reconnect(1).unwrap();
    r.fake.wait_resumed(1, WAIT).await.unwrap();
    until("the replayed message to be offered", || r.inbox.offered() >= 2).await;
    assert_eq!(r.inbox.accepted().len(), 1, "the replay must carry the same event id");
    assert_eq!(r.fake.sessions(), (1, 1), "the bot resumed rather than identifying again");
    // The resumed session keeps delivering new messages.
    r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "and after the trial?", true).unwrap();
    accepted(&r.inbox, 2).await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_own_and_other_bots_messages_are_ignored_and_agents_are_recognised() {
    let r = start().await;
    r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::bot_self(), "an answer the bot posted", false).unwrap();
    r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::other_bot(), "<@1150000000000000001> beep", true).unwrap();
    let thread = r.fake.new_id();
    r.fake.add_thread(thread, SUPPORT_CHANNEL, "a customer's thread");
    r.fake.send_message(thread, &FakeUser::agent(), "I can help with that", false).unwrap();
    let got = accepted(&r.inbox, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.inbox.offered(), 1, "bots' messages must not reach the inbox: {:?}", r.inbox.accepted());
    let m = &got[0];
    assert!(m.author.is_agent, "a member with the support role is an agent");
    // In a thread: the policy is the parent channel's, the conversation is the thread.
    assert_eq!(m.channel.as_str(), SUPPORT_CHANNEL.to_string());
    assert_eq!(m.conversation.as_str(), format!("{GUILD_ID}:{thread}"));
    assert!(!m.top_level && !m.addressed_to_bot);
    assert_eq!(m.reply_context["thread"], json!(thread.to_string()));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forum_posts_are_top_level_and_dms_are_addressed_to_the_bot() {
    let r = start().await;
    // A forum post: a thread whose first message has the thread's id.
    let post = r.fake.new_id();
    r.fake.add_thread(post, FORUM_CHANNEL, "Refund question");
    let m = r.fake.message_json(post, post, &FakeUser::customer(), "Can I get a refund?", false);
    r.fake.dispatch("MESSAGE_CREATE", m).unwrap();
    r.fake.send_message(DM_CHANNEL, &FakeUser::customer(), "hello, quick question", false).unwrap();
    let got = accepted(&r.inbox, 2).await;
    let forum = got.iter().find(|m| m.text.contains("refund")).unwrap();
    assert!(forum.top_level && !forum.addressed_to_bot);
    assert_eq!(forum.channel.as_str(), FORUM_CHANNEL.to_string());
    assert_eq!(forum.conversation.as_str(), format!("{GUILD_ID}:{post}"));
    let dm = got.iter().find(|m| m.text.contains("quick question")).unwrap();
    assert!(dm.addressed_to_bot);
    assert_eq!(dm.workspace.as_str(), GUILD_ID.to_string(), "the one server the customer shares with the bot");
    assert_eq!(dm.conversation.as_str(), format!("dm:{DM_CHANNEL}"));
    // A reply to the DM goes to the DM channel.
    r.adapter.deliver(&reply(dm, "dm-reply", "Hi! Ask away.", OutboundKind::Notice)).await.unwrap();
    assert_eq!(r.fake.posted_in(DM_CHANNEL).len(), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_starts_a_thread_from_the_question_and_carries_the_buttons() {
    let r = start().await;
    let id = r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "how do refunds work?", true).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    let kind = OutboundKind::Answer {
        turn_id: "t42".into(),
        citations: vec![Citation {
            doc_id: "refunds.md".into(),
            chunk_id: "c1".into(),
            title: "Refunds and credits".into(),
            url: Some("https://help.example.com/refunds".into()),
        }],
        confidence: 0.9,
    };
    let delivered = r
        .adapter
        .deliver(&reply(&m, "t42-answer", "Annual plans are refunded within 30 days [1].", kind))
        .await
        .unwrap();
    assert_eq!(r.fake.threads(), vec![(SUPPORT_CHANNEL, id)], "the thread is started from the question");
    let posted = r.fake.posted_in(id);
    assert_eq!(posted.len(), 1);
    assert_eq!(delivered.platform_message_id, Some(posted[0].id.to_string()));
    assert!(posted[0].content.contains("refunded within 30 days [1]"));
    assert!(posted[0].content.contains("[1] [Refunds and credits](<https://help.example.com/refunds>)"));
    assert_eq!(posted[0].button_labels(), ["Helpful", "Not helpful", "Talk to a person"]);
    assert!(posted[0].button_ids()[0].contains("t42"));
    assert!(r.fake.posted_in(SUPPORT_CHANNEL).is_empty(), "nothing is posted in the channel itself");

    // A second reply to the same message (e.g. a retry) reuses the thread.
    r.adapter.deliver(&reply(&m, "n1", "One more thing.", OutboundKind::Notice)).await.unwrap();
    assert_eq!(r.fake.threads().len(), 1);
    assert_eq!(r.fake.posted_in(id).len(), 2);
    // Delivering the same reply again posts nothing new (Discord's nonce check).
    r.adapter.deliver(&reply(&m, "n1", "One more thing.", OutboundKind::Notice)).await.unwrap();
    assert_eq!(r.fake.posted_in(id).len(), 2);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_answer_is_split_at_a_sentence_with_the_buttons_on_the_last_part() {
    let r = start().await;
    let id = r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "tell me everything", true).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    let sentence = "Annual plans can be refunded in full within thirty days of the renewal date. ";
    let text = sentence.repeat(2500 / sentence.len() + 1);
    assert!(text.trim().chars().count() >= 2500);
    r.adapter.deliver(&reply(&m, "long-answer", text.trim(), answer("t7"))).await.unwrap();
    let posted = r.fake.posted_in(id);
    assert_eq!(posted.len(), 2, "{posted:?}");
    for p in &posted {
        assert!(p.content.chars().count() <= 2000);
        assert!(p.content.ends_with("renewal date."), "cut mid-sentence: {:?}", &p.content[p.content.len() - 30..]);
    }
    assert_eq!(format!("{} {}", posted[0].content, posted[1].content), text.trim());
    assert!(posted[0].button_ids().is_empty());
    assert_eq!(posted[1].button_ids().len(), 3);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_errors_map_to_retry_or_rejection() {
    let r = start().await;
    let id = r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "question", true).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    r.adapter.deliver(&reply(&m, "first", "Thread opened.", OutboundKind::Notice)).await.unwrap();

    r.fake.rate_limit_next("POST", &format!("/channels/{id}/messages"), 2.5);
    let e = r.adapter.deliver(&reply(&m, "x1", "hello", OutboundKind::Notice)).await.unwrap_err();
    assert!(matches!(e, AdapterError::RateLimited { retry_after_ms, .. } if retry_after_ms > 0), "{e:?}");
    assert!(e.retryable());

    r.fake.fail_next("POST", &format!("/channels/{id}/messages"), 403, 50001, "Missing Access");
    let e = r.adapter.deliver(&reply(&m, "x2", "hello", OutboundKind::Notice)).await.unwrap_err();
    assert!(!e.retryable());
    assert!(e.to_string().contains("missing access or a permission"), "{e}");

    r.fake.fail_next("POST", &format!("/channels/{id}/messages"), 404, 10003, "Unknown Channel");
    let e = r.adapter.deliver(&reply(&m, "x3", "hello", OutboundKind::Notice)).await.unwrap_err();
    assert!(!e.retryable() && e.to_string().contains("does not know that channel"), "{e}");

    r.fake.fail_next("POST", &format!("/channels/{id}/messages"), 502, 0, "Bad Gateway");
    let e = r.adapter.deliver(&reply(&m, "x4", "hello", OutboundKind::Notice)).await.unwrap_err();
    assert!(matches!(e, AdapterError::Unavailable { .. }), "{e:?}");

    // A reply whose context did not come from Discord is refused with an explanation.
    let mut bad = reply(&m, "x5", "hello", OutboundKind::Notice);
    bad.reply_context = json!({"ts": "1.2"});
    let e = r.adapter.deliver(&bad).await.unwrap_err();
    assert!(e.to_string().contains("reply context"), "{e}");

    // After the faults, delivery works again and nothing was posted twice.
    r.adapter.deliver(&reply(&m, "x1", "hello", OutboundKind::Notice)).await.unwrap();
    assert_eq!(r.fake.posted_in(id).len(), 2);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_pings_the_role_and_the_agents_get_a_summary_with_claim_and_resolve() {
    let r = start().await;
    let id = r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "I was charged twice", true).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    let mention = format!("<@&{SUPPORT_ROLE}>");
    let handoff = OutboundKind::Handoff { mention: Some(mention.clone()) };
    r.adapter.deliver(&reply(&m, "h1", "A person will reply here.", handoff)).await.unwrap();
    let posted = r.fake.posted_in(id);
    assert!(posted[0].content.ends_with(&mention), "{:?}", posted[0].content);
    assert_eq!(posted[0].request["allowed_mentions"]["roles"], json!([SUPPORT_ROLE.to_string()]));

    let summary = HandoffSummary {
        question: "I was charged twice".into(),
        condensed_question: "Why was I charged twice this month?".into(),
        reason: "weak_retrieval".into(),
        confidence: 0.21,
        sources: vec![Citation { doc_id: "d".into(), chunk_id: "c".into(), title: "Billing".into(), url: None }],
        draft: None,
        conversation: m.conversation.clone(),
        customer_channel: m.channel.clone(),
    };
    let kind = OutboundKind::AgentSummary {
        agents_channel: Some(ChannelId::new(AGENTS_CHANNEL.to_string()).unwrap()),
        summary: summary.clone(),
    };
    r.adapter.deliver(&reply(&m, "s1", "summary", kind)).await.unwrap();
    let card = r.fake.posted_in(AGENTS_CHANNEL).remove(0);
    assert!(card.content.contains(&format!("<#{id}>")));
    let embed = &card.request["embeds"][0];
    let description = embed["description"].as_str().unwrap();
    assert!(description.contains("I was charged twice") && description.contains("Why was I charged twice"));
    let fields = embed["fields"].to_string();
    assert!(fields.contains("weak reason") || fields.contains("weak retrieval"), "{fields}");
    assert!(fields.contains("0.21") && fields.contains("Billing"), "{fields}");
    assert_eq!(card.button_labels(), ["Claim", "Resolve"]);
    assert_eq!(card.request["allowed_mentions"]["parse"], json!([]));

    // Without an agents' channel the summary has nowhere to go: a clear, final error.
    let kind = OutboundKind::AgentSummary { agents_channel: None, summary };
    let e = r.adapter.deliver(&reply(&m, "s2", "summary", kind)).await.unwrap_err();
    assert!(!e.retryable() && e.to_string().contains("agents_channel"), "{e}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_become_actions_and_claim_is_for_agents_only() {
    let r = start().await;
    let id = r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "how do refunds work?", true).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    r.adapter.deliver(&reply(&m, "a1", "Within 30 days.", answer("t9"))).await.unwrap();
    let answer_msg = r.fake.posted_in(id).remove(0);
    let ids = answer_msg.button_ids();

    // "Not helpful" from the customer.
    let press = r.fake.button_interaction(&FakeUser::customer(), &answer_msg, &ids[1]);
    let press_id = press["id"].as_str().unwrap().to_string();
    r.fake.dispatch("INTERACTION_CREATE", press).unwrap();
    let got = accepted(&r.inbox, 2).await;
    let fb = &got[1];
    assert_eq!(fb.id.as_str(), press_id);
    assert_eq!(fb.action, Some(UserAction::Feedback { turn_id: "t9".into(), helpful: false }));
    assert_eq!(fb.conversation, m.conversation, "the press belongs to the customer's conversation");
    assert_eq!(fb.reply_context["thread"], json!(id.to_string()));
    until("the press to be acknowledged", || !r.fake.interaction_responses().is_empty()).await;
    // The answer is updated in place: the rating shows, "Talk to a person" stays.
    let shown = r.fake.interaction_responses()[0].1.clone();
    assert_eq!(shown["type"], json!(7), "{shown}");
    let content = shown["data"]["content"].as_str().unwrap();
    assert!(content.starts_with("Within 30 days."), "{content}");
    assert!(content.ends_with(&format!("<@{}> found this not helpful.", FakeUser::customer().id)), "{content}");
    let labels: Vec<&str> = shown["data"]["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Talk to a person"]);
    assert_eq!(shown["data"]["allowed_mentions"]["parse"], json!([]), "the rating line pings nobody");

    // "Claim" on the agents' card: refused for the customer, accepted for an agent.
    let summary = HandoffSummary {
        question: "q".into(),
        condensed_question: "q".into(),
        reason: "asked_for_human".into(),
        confidence: 0.0,
        sources: vec![],
        draft: None,
        conversation: m.conversation.clone(),
        customer_channel: m.channel.clone(),
    };
    let kind = OutboundKind::AgentSummary {
        agents_channel: Some(ChannelId::new(AGENTS_CHANNEL.to_string()).unwrap()),
        summary,
    };
    r.adapter.deliver(&reply(&m, "s", "summary", kind)).await.unwrap();
    let card = r.fake.posted_in(AGENTS_CHANNEL).remove(0);
    let claim = card.button_ids()[0].clone();
    r.fake.dispatch("INTERACTION_CREATE", r.fake.button_interaction(&FakeUser::customer(), &card, &claim)).unwrap();
    until("the refusal", || r.fake.interaction_responses().len() >= 2).await;
    let refusal = &r.fake.interaction_responses()[1].1;
    assert_eq!(refusal["type"], json!(4));
    assert_eq!(refusal["data"]["flags"], json!(64), "only the presser sees it");
    assert!(refusal["data"]["content"].as_str().unwrap().contains("support team"));
    assert_eq!(r.inbox.offered(), 2, "a refused claim is not handed over");

    r.fake.dispatch("INTERACTION_CREATE", r.fake.button_interaction(&FakeUser::agent(), &card, &claim)).unwrap();
    let got = accepted(&r.inbox, 3).await;
    let c = &got[2];
    assert_eq!(c.action, Some(UserAction::Claim));
    assert!(c.author.is_agent);
    assert_eq!(c.conversation, m.conversation, "the claim acts on the customer's thread");
    assert_eq!(c.channel, m.channel);
    // The engine's "agent joined" notice, delivered with this context, lands in the thread.
    r.adapter
        .deliver(&reply(c, "joined", "Alex from our support team has joined.", OutboundKind::Notice))
        .await
        .unwrap();
    assert!(r.fake.posted_in(id).iter().any(|p| p.content.contains("has joined")));
    r.stop().await;
}

fn policy_set(key: &str, value: &str) -> serde_json::Value {
    json!([{"name": "policy", "type": 2, "options": [{"name": "set", "type": 1, "options": [
        {"name": "key", "type": 3, "value": key},
        {"name": "value", "type": 3, "value": value},
    ]}]}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_commands_need_manage_server() {
    let r = start().await;
    let refused = r.fake.command_interaction(
        &FakeUser::customer(),
        SUPPORT_CHANNEL,
        "frontdesk",
        policy_set("answer_top_level", "true"),
    );
    r.fake.dispatch("INTERACTION_CREATE", refused).unwrap();
    until("the refusal", || !r.fake.interaction_responses().is_empty()).await;
    let response = r.fake.interaction_responses()[0].1.clone();
    assert!(response["data"]["content"].as_str().unwrap().contains("Manage Server"), "{response}");
    assert!(r.policies.sets.lock().unwrap().is_empty(), "nothing changed without the permission");

    let allowed = r.fake.command_interaction(
        &FakeUser::admin(),
        SUPPORT_CHANNEL,
        "frontdesk",
        policy_set("answer_top_level", "true"),
    );
    r.fake.dispatch("INTERACTION_CREATE", allowed).unwrap();
    until("the change", || r.fake.interaction_responses().len() >= 2).await;
    assert_eq!(
        *r.policies.sets.lock().unwrap(),
        vec![(GUILD_ID.to_string(), SUPPORT_CHANNEL.to_string(), "answer_top_level".into(), "true".into())]
    );
    let shown = r.fake.interaction_responses()[1].1["data"]["content"].as_str().unwrap().to_string();
    assert!(shown.contains("answer_top_level = true"), "{shown}");

    // A bad key is explained, and nothing is set.
    let bad = r.fake.command_interaction(&FakeUser::admin(), SUPPORT_CHANNEL, "frontdesk", policy_set("colour", "red"));
    r.fake.dispatch("INTERACTION_CREATE", bad).unwrap();
    until("the error", || r.fake.interaction_responses().len() >= 3).await;
    let said = r.fake.interaction_responses()[2].1["data"]["content"].as_str().unwrap().to_string();
    assert!(said.contains("unknown policy key \"colour\""), "{said}");
    assert_eq!(r.policies.sets.lock().unwrap().len(), 1);

    // `show` from inside a thread shows the parent channel's policy.
    let thread = r.fake.new_id();
    r.fake.add_thread(thread, SUPPORT_CHANNEL, "t");
    let show = json!([{"name": "policy", "type": 2, "options": [{"name": "show", "type": 1, "options": []}]}]);
    r.fake
        .dispatch("INTERACTION_CREATE", r.fake.command_interaction(&FakeUser::admin(), thread, "frontdesk", show))
        .unwrap();
    until("the policy", || r.fake.interaction_responses().len() >= 4).await;
    let shown = r.fake.interaction_responses()[3].1["data"]["content"].as_str().unwrap().to_string();
    assert!(shown.contains(&format!("<#{SUPPORT_CHANNEL}>")) && shown.contains("answer_top_level = true"), "{shown}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_posts_the_question_and_hands_it_over_once() {
    let r = start().await;
    let options = json!([{"name": "question", "type": 3, "value": "Is there a free trial?"}]);
    let ask = r.fake.command_interaction(&FakeUser::customer(), SUPPORT_CHANNEL, "ask", options);
    let ask_id = ask["id"].as_str().unwrap().to_string();
    r.fake.dispatch("INTERACTION_CREATE", ask.clone()).unwrap();
    let got = accepted(&r.inbox, 1).await;
    let m = &got[0];
    assert_eq!(m.id.as_str(), ask_id);
    assert_eq!(m.text, "Is there a free trial?");
    assert!(m.addressed_to_bot && m.top_level);
    let echo = r.fake.posted_in(SUPPORT_CHANNEL).remove(0);
    assert!(echo.content.contains("asked: Is there a free trial?"));
    assert_eq!(m.conversation.as_str(), format!("{GUILD_ID}:{}", echo.id));
    until("the acknowledgement", || !r.fake.interaction_responses().is_empty()).await;
    assert_eq!(r.fake.interaction_responses()[0].1["data"]["flags"], json!(64));
    // The answer goes to a thread under the echoed question.
    r.adapter.deliver(&reply(m, "ask-answer", "Yes, 14 days.", answer("t1"))).await.unwrap();
    assert_eq!(r.fake.threads(), vec![(SUPPORT_CHANNEL, echo.id)]);
    // The same interaction delivered twice posts and hands over nothing new.
    r.fake.dispatch("INTERACTION_CREATE", ask).unwrap();
    until("the replay to be offered", || r.inbox.offered() >= 2).await;
    assert_eq!(r.inbox.accepted().len(), 1);
    assert_eq!(r.fake.posted_in(SUPPORT_CHANNEL).len(), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_registers_the_commands_and_doctor_checks_the_application() {
    let r = start().await;
    let commands = r.fake.wait_commands(WAIT).await.unwrap();
    let names: Vec<&str> = commands.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ask", "frontdesk"]);
    assert_eq!(commands[1]["default_member_permissions"], json!("32"), "/frontdesk is for Manage Server");
    let health = r.adapter.healthcheck().await;
    assert!(health.ok && health.detail.contains(&BOT_ID.to_string()), "{health:?}");
    let report = r.adapter.doctor().await;
    assert!(report.iter().all(|(_, h)| h.ok), "{report:?}");
    r.fake.disable_message_content_intent();
    let report = r.adapter.doctor().await;
    let intent = report.iter().find(|(k, _)| k.contains("intent")).unwrap();
    assert!(!intent.1.ok && intent.1.detail.contains("Privileged Gateway Intents"), "{intent:?}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_reported_by_healthcheck_doctor_and_run() {
    let fake = frontdesk_discord::fake::FakeDiscord::start().await.unwrap();
    let mut config = fake.config();
    config.bot_token = secrecy::SecretString::from("not-the-token".to_string());
    let adapter =
        frontdesk_discord::DiscordAdapter::new(config, std::sync::Arc::new(common::RecordingPolicies::default()))
            .unwrap();
    let health = adapter.healthcheck().await;
    assert!(!health.ok && health.detail.contains("bot_token"), "{health:?}");
    let inbox = std::sync::Arc::new(frontdesk_channel::conformance::RecordingInbox::default());
    let ended = tokio::time::timeout(WAIT, adapter.run(inbox, tokio_util::sync::CancellationToken::new())).await;
    let e = ended.expect("run must give up on a refused token").unwrap_err();
    assert!(!e.retryable() && e.to_string().contains("bot_token"), "{e:?}");
}

#[test]
fn the_invite_asks_for_exactly_what_the_bot_uses() {
    use serenity::all::Permissions as P;
    let url = frontdesk_discord::invite_url("123");
    let expected = P::VIEW_CHANNEL
        | P::SEND_MESSAGES
        | P::SEND_MESSAGES_IN_THREADS
        | P::CREATE_PUBLIC_THREADS
        | P::READ_MESSAGE_HISTORY
        | P::EMBED_LINKS
        | P::USE_APPLICATION_COMMANDS;
    assert_eq!(
        url,
        format!(
            "https://discord.com/oauth2/authorize?client_id=123&permissions={}&scope=bot%20applications.commands",
            expected.bits()
        )
    );
    assert!(!frontdesk_discord::required_permissions().contains(P::ADMINISTRATOR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reply_is_a_new_message_in_the_thread_never_an_edit() {
    let r = start().await;
    let id = r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "how do refunds work?", true).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    r.adapter.working(&m, true).await;
    let delivered = r
        .adapter
        .deliver(&reply(&m, "a1", "Annual plans can be refunded within 30 days.", answer("t1")))
        .await
        .unwrap();
    let posted = r.fake.posted_in(id);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(delivered.platform_message_id, Some(posted[0].id.to_string()));
    assert_eq!(posted[0].content, "Annual plans can be refunded within 30 days.");
    assert_eq!(posted[0].button_labels(), ["Helpful", "Not helpful", "Talk to a person"]);

    // A handoff in the same thread is a new message too, so its mention notifies.
    r.fake.send_message(id, &FakeUser::customer(), "and for monthly plans?", false).unwrap();
    let follow = accepted(&r.inbox, 2).await.remove(1);
    let handoff = OutboundKind::Handoff { mention: Some(format!("<@&{SUPPORT_ROLE}>")) };
    r.adapter.deliver(&reply(&follow, "h1", "A person will answer here.", handoff)).await.unwrap();
    let posted = r.fake.posted_in(id);
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert!(posted[1].content.contains(&format!("<@&{SUPPORT_ROLE}>")));

    let rewrites: Vec<_> = r.fake.calls().into_iter().filter(|c| c.method == "PATCH" || c.method == "DELETE").collect();
    assert!(rewrites.is_empty(), "no reply edits or removes a message: {rewrites:?}");
    r.stop().await;
}
