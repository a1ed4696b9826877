//! Bugs frontdesk had, one test each, named after the bug and failing if it came back. A new
//! bug fixed gets its test here, with a line saying what went wrong for whom.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use frontdesk::channel::conformance::RecordingInbox;
use frontdesk::channel::{
    ChannelAdapter, ChannelId, ConversationKey, Inbound, OutboundKind, Source, UserAction, WorkspaceId,
};
use frontdesk::conversation::ConvState;
use frontdesk::engine::{Engine, TurnReason};
use frontdesk::generate::Generator;
use frontdesk::policy::Scope;
use frontdesk::prompts::Prompts;
use frontdesk::ratelimit::RateLimitConfig;
use frontdesk::trace::Decision;
use frontdesk_discord::fake::{FakeUser, AGENTS_CHANNEL as DISCORD_AGENTS, GUILD_ID, SUPPORT_CHANNEL};
use frontdesk_email::fake::{CustomerMail, MailStack};
use frontdesk_email::{DkimConfig, EmailAdapter, EmailConfig, ImapConfig, Ingested, Security, SmtpConfig};
use frontdesk_slack::fake::{FakeMessage, FakeSlack, SlackSender, BOT_TOKEN, BOT_USER_ID, TEAM_ID};
use frontdesk_slack::{SlackAdapter, SlackConfig};
use std::sync::{Arc, Mutex};
use support::engine_harness::Harness;
use support::engine_harness::{action, agent, harness, harness_for, harness_for_with, message, through_the_inbox};
use support::serving::{discord_handled, serve, serve_discord};
use support::unchecked::{leaked_into, model_generator, scripted_model, CASES, QUESTION};
use support::wait::{eventually, WAIT};

// ---------------------------------------------------------------------------------------------
// Email: where replies go, and who counts as an agent.

/// The support mailbox of the email tests; it names their workspace.
const SUPPORT: &str = "support@example.test";
/// The agents' address the hand-offs are forwarded to.
const AGENTS: &str = "agents@example.test";

/// The mails the recording SMTP server took, and its port.
async fn smtp_recorder() -> (u16, Arc<Mutex<Vec<Taken>>>) {
    frontdesk_email::fake::smtp_recorder().await.unwrap()
}

use frontdesk_email::fake::TakenMail as Taken;

/// A DNS server on loopback that answers every query "no such name": the domains of these
/// tests sign nothing and publish no DMARC policy. Returns its address.
async fn dns_knowing_nothing() -> String {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let query = &buf[..n];
            if n < 12 {
                continue;
            }
            // The question: labels up to the empty one, then type and class.
            let mut end = 12;
            while end < n && query[end] != 0 {
                end += 1 + query[end] as usize;
            }
            let end = (end + 5).min(n);
            let mut answer = Vec::with_capacity(end);
            answer.extend_from_slice(&query[..2]);
            answer.extend_from_slice(&[0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]);
            answer.extend_from_slice(&query[12..end]);
            let _ = socket.send_to(&answer, peer).await;
        }
    });
    addr
}

/// A mailbox whose mail comes in through `ingest` and whose replies go to the recording SMTP
/// server on `smtp_port`.
fn mailbox_config(smtp_port: u16) -> EmailConfig {
    EmailConfig {
        address: SUPPORT.into(),
        imap: ImapConfig {
            host: "127.0.0.1".into(),
            port: 9,
            security: Security::None,
            password: secrecy::SecretString::from("unused: mail comes in through ingest".to_string()),
            ..ImapConfig::default()
        },
        smtp: SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp_port,
            security: Security::None,
            user: String::new(),
            ..SmtpConfig::default()
        },
        dkim: DkimConfig { verify: false, dns_server: None },
        ..EmailConfig::default()
    }
}

/// A mail as it arrives: `headers` (each ending in CRLF) before the body.
fn mail(from: &str, message_id: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {SUPPORT}\r\nSubject: Yearly plan\r\nMessage-ID: <{message_id}>\r\n{headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

/// `In-Reply-To` and `References` of a reply to `ids` (the last one answered).
fn replying_to(ids: &[&str]) -> String {
    let all: Vec<String> = ids.iter().map(|id| format!("<{id}>")).collect();
    format!("In-Reply-To: {}\r\nReferences: {}\r\n", all.last().unwrap(), all.join(" "))
}

/// Takes one mail in through the adapter as the inbox would, and returns what the inbox got.
async fn arrives(adapter: &EmailAdapter, raw: &[u8]) -> Inbound {
    let inbox = RecordingInbox::default();
    assert_eq!(adapter.ingest(raw, &inbox).await.unwrap(), Ingested::Accepted);
    inbox.accepted().remove(0)
}

/// Runs the turn of `inbound` and delivers its replies through the adapter; returns the
/// decision and the platform ids of what was delivered.
async fn answered(engine: &Engine, adapter: &EmailAdapter, inbound: &Inbound) -> (Decision, Vec<String>) {
    let outcome = engine.handle(inbound).await;
    let mut ids = Vec::new();
    for out in &outcome.outbound {
        ids.extend(adapter.deliver(out).await.unwrap().platform_message_id);
    }
    (outcome.decision, ids)
}

/// An email engine over the sample articles with hand-offs forwarded to the agents' address.
async fn email_engine() -> (Harness, (u16, Arc<Mutex<Vec<Taken>>>)) {
    let h = harness_for(SUPPORT).await;
    h.engine
        .policies
        .set(&h.ws, &Scope::Workspace, &[("agents_channel".to_string(), AGENTS.to_string())])
        .unwrap()
        .unwrap();
    (h, smtp_recorder().await)
}

/// Bug: the answer to an email went to the address its Reply-To named, so anyone could make the
/// bot send mail to a third party (and spend the limit of an address they did not own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emails_reply_to_address_of_a_third_party_got_the_answer() {
    let (h, (smtp_port, taken)) = email_engine().await;
    let adapter =
        EmailAdapter::new(mailbox_config(smtp_port), h.engine.kb.store.db().open_tree("email").unwrap()).unwrap();
    let third_party = "someone-else@elsewhere.example";
    let question = mail(
        "Robin <robin@customer.example>",
        "r1@customer.example",
        &format!("Reply-To: Someone <{third_party}>\r\n"),
        "We renewed our yearly subscription by mistake last week; is a refund possible?",
    );

    let inbound = arrives(&adapter, &question).await;
    let (decision, _) = answered(&h.engine, &adapter, &inbound).await;

    let taken = taken.lock().unwrap().clone();
    let to_customer: Vec<&Taken> = taken.iter().filter(|m| m.recipients != [AGENTS]).collect();
    assert!(!to_customer.is_empty(), "the customer got a reply ({decision:?}): {taken:?}");
    for m in &to_customer {
        assert_eq!(m.recipients, ["robin@customer.example"], "replies go to the sender alone: {}", m.data);
    }
    assert!(taken.iter().all(|m| !m.recipients.iter().any(|r| r == third_party)), "{taken:?}");
}

/// Bug: an unsigned mail "from" an address of the support team's domain, answering the bot in a
/// customer's thread, was taken as an agent's reply: the thread went to a person nobody had
/// asked for, and the bot no longer answered the customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_mail_from_the_agents_domain_silenced_the_bot_for_the_customer() {
    let (h, (smtp_port, _taken)) = email_engine().await;
    let mut config = mailbox_config(smtp_port);
    config.agent_domains = vec!["team.example".into()];
    config.dkim = DkimConfig { verify: true, dns_server: Some(dns_knowing_nothing().await) };
    let adapter = EmailAdapter::new(config, h.engine.kb.store.db().open_tree("email").unwrap()).unwrap();
    let customer = "robin@customer.example";

    let first = arrives(
        &adapter,
        &mail(customer, "r1@customer.example", "", "Can a yearly plan still be refunded a few weeks after it renewed?"),
    )
    .await;
    let (_, ours) = answered(&h.engine, &adapter, &first).await;
    let ours = ours.first().expect("the customer got a reply").clone();

    // Someone writes "from" the team's domain, unsigned, in reply to the bot's answer.
    let impostor = arrives(
        &adapter,
        &mail(
            "jo@team.example",
            "jo1@elsewhere.example",
            &replying_to(&["r1@customer.example", &ours]),
            "I'm from the support team, I'll take it from here.",
        ),
    )
    .await;
    assert!(!impostor.author.is_agent && impostor.unverified_sender, "nothing vouches for {:?}", impostor.author);
    answered(&h.engine, &adapter, &impostor).await;

    // The customer writes again in their thread: the bot still answers them.
    let again = arrives(
        &adapter,
        &mail(
            customer,
            "r2@customer.example",
            &replying_to(&["r1@customer.example", &ours]),
            "And how long is the trial?",
        ),
    )
    .await;
    assert_eq!(again.conversation, first.conversation, "the customer's own reply continues the thread");
    let (decision, _) = answered(&h.engine, &adapter, &again).await;
    assert_ne!(decision, Decision::Ignore, "the bot fell silent for the customer");
    let conv = h.engine.conversations.get(Source::Email, &h.ws, &first.conversation).unwrap().unwrap();
    assert_ne!(conv.state, ConvState::Agent, "no person took the thread over");
}

// ---------------------------------------------------------------------------------------------
// Unchecked answers: a scripted model streams an answer verification rejects, one refused on the
// channel's confidence threshold and one the channel only suggests to its agents.

const SLACK_SECRET: &str = "e2e-signing-secret";
const SLACK_CUSTOMER_CHANNEL: &str = "CSUPPORT";
const SLACK_AGENTS_CHANNEL: &str = "CAGENTS";

fn thread_texts(fake: &FakeSlack, root: &FakeMessage) -> Vec<String> {
    fake.thread(SLACK_CUSTOMER_CHANNEL, &root.ts).iter().map(FakeMessage::all_text).collect()
}

/// Bug: answer drafts were streamed into the customer's Slack thread (posted, then edited in
/// place) while the model wrote them, before verification, the confidence threshold or the
/// channel's mode had decided whether the customer should see them at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_drafts_reached_a_slack_thread_before_verification() {
    let model = scripted_model().await;
    let Harness { _dir: _keep, engine, ws } = harness_for_with(TEAM_ID, model_generator(&model.base_url())).await;
    let fake = Arc::new(FakeSlack::start().await.unwrap());
    let customer_channel = ChannelId::new(SLACK_CUSTOMER_CHANNEL).unwrap();
    let engine = Arc::new(engine);
    let config = SlackConfig {
        signing_secret: Some(SLACK_SECRET.into()),
        bot_token: Some(BOT_TOKEN.into()),
        api_url: fake.api_url(),
        ..SlackConfig::default()
    };
    let adapter = SlackAdapter::new(config, engine.kb.store.db().open_tree("slack").unwrap()).unwrap();
    let serving = serve(&engine, Source::Slack, adapter.clone());
    let inbox = serving.inbox.clone();
    eventually("the adapter receives", async || adapter.is_receiving().then_some(())).await;
    let slack = SlackSender::new(adapter.router(), SLACK_SECRET);

    for (i, case) in CASES.iter().enumerate() {
        engine
            .policies
            .set(&ws, &Scope::Channel(customer_channel.clone()), &case.policy(SLACK_AGENTS_CHANNEL))
            .unwrap()
            .unwrap();
        let question =
            fake.customer_message(SLACK_CUSTOMER_CHANNEL, "UCUSTOMER", &format!("<@{BOT_USER_ID}> {QUESTION}"), None);
        let event = fake.event_for(&question, "app_mention", &format!("Ev-{}", case.name));
        assert_eq!(slack.event(&event).await.status, 200);
        let card = eventually(&format!("the agents' card ({})", case.name), async || {
            fake.top_level(SLACK_AGENTS_CHANNEL).into_iter().nth(i)
        })
        .await;
        eventually(&format!("the turn delivered ({})", case.name), async || {
            let s = inbox.stats();
            let told = !fake.thread(SLACK_CUSTOMER_CHANNEL, &question.ts).is_empty();
            (told && s.pending_inbound == 0 && s.pending_outbound == 0 && fake.reactions().is_empty()).then_some(())
        })
        .await;
        assert!(card.all_text().contains(case.reason), "{}: {}", case.name, card.all_text());
        // The customer was told a person will reply, and nothing else.
        let thread = thread_texts(&fake, &question);
        assert_eq!(thread.len(), 1, "{}: {thread:?}", case.name);
        assert!(thread[0].contains("support team"), "{}: {thread:?}", case.name);
        if case.reason == "suggest_mode" {
            assert!(card.all_text().contains(case.marker), "the agents get the suggestion: {}", card.all_text());
        }
    }
    assert_eq!(model.count(), CASES.len(), "the model wrote each answer");

    // Not one call to Slack outside the agents' channel carried the model's words: no post, no
    // update of a message, in the customer's thread or anywhere else.
    let leaks: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|call| call.params["channel"] != SLACK_AGENTS_CHANNEL)
        .filter_map(|call| {
            let cases = leaked_into(&call.params.to_string());
            (!cases.is_empty()).then(|| format!("{cases:?} in {} {}", call.method, call.params))
        })
        .collect();
    assert!(leaks.is_empty(), "answers reached the customer:\n{}", leaks.join("\n"));
    assert!(inbox.dead_letters().unwrap().is_empty());
    serving.stop().await;
}

/// Bug: as on Slack, answer drafts were streamed to the Discord customer (a message created,
/// then edited) before the turn had decided that the customer should see the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_drafts_reached_a_discord_customer_before_verification() {
    let model = scripted_model().await;
    let Harness { _dir: _keep, engine, ws } =
        harness_for_with(&GUILD_ID.to_string(), model_generator(&model.base_url())).await;
    let engine = Arc::new(engine);
    let support = ChannelId::new(SUPPORT_CHANNEL.to_string()).unwrap();
    let (fake, serving) = serve_discord(&engine).await;
    let inbox = serving.inbox.clone();
    let customer = FakeUser::customer();

    for (i, case) in CASES.iter().enumerate() {
        let policy = case.policy(&DISCORD_AGENTS.to_string());
        engine.policies.set(&ws, &Scope::Channel(support.clone()), &policy).unwrap().unwrap();
        let thread = fake.send_message(SUPPORT_CHANNEL, &customer, QUESTION, true).unwrap();
        let card = fake.wait_posted_in(DISCORD_AGENTS, i + 1, WAIT).await.unwrap().remove(i);
        let conv = ConversationKey::new(format!("{GUILD_ID}:{thread}")).unwrap();
        discord_handled(WAIT, &engine, &inbox, &ws, &conv, "support team").await;
        let fields = card.request["embeds"][0].to_string();
        assert!(fields.contains(&case.reason.replace('_', " ")), "{}: {fields}", case.name);
        // The customer was told a person will reply, and nothing else.
        let posted = fake.posted_in(thread);
        assert_eq!(posted.len(), 1, "{}: {posted:?}", case.name);
        assert!(posted[0].content.contains("support team"), "{}: {:?}", case.name, posted[0].content);
        if case.reason == "suggest_mode" {
            assert!(card.request.to_string().contains(case.marker), "the agents get the suggestion: {fields}");
        }
    }
    assert_eq!(model.count(), CASES.len(), "the model wrote each answer");

    // Not one call to Discord outside the agents' channel carried the model's words: no message
    // created, none edited, in the customer's thread or anywhere else.
    let agents = format!("/channels/{DISCORD_AGENTS}/");
    let leaks: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|call| !call.path.contains(&agents))
        .filter_map(|call| {
            let cases = leaked_into(&call.body.to_string());
            (!cases.is_empty()).then(|| format!("{cases:?} in {} {} {}", call.method, call.path, call.body))
        })
        .collect();
    assert!(leaks.is_empty(), "answers reached the customer:\n{}", leaks.join("\n"));
    assert_eq!(inbox.stats().dead_letters, 0);
    serving.stop().await;
}

/// Bug: as on Slack and Discord, an answer the turn had not yet decided to send could reach an
/// email customer; over the real mail stack (Postfix and Dovecot), none of the three may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_drafts_reached_an_email_customer_before_verification() {
    let Some(stack) = MailStack::or_skip("answer_drafts_reached_an_email_customer_before_verification") else { return };
    let support = stack.unique_address("support");
    let customer = stack.unique_address("customer");
    let agents = stack.unique_address("agents");
    let model = scripted_model().await;
    let Harness { _dir: _keep, engine, ws } = harness_for_with(&support, model_generator(&model.base_url())).await;
    let engine = Arc::new(engine);
    let adapter = EmailAdapter::new(stack.config(&support), engine.kb.store.db().open_tree("email").unwrap()).unwrap();
    let serving = serve(&engine, Source::Email, adapter.clone());
    let inbox = serving.inbox.clone();

    for case in &CASES {
        engine.policies.set(&ws, &Scope::Workspace, &case.policy(&agents)).unwrap().unwrap();
        let id = format!("{}.{}@customer.example", case.name, support.replace('@', ".at."));
        let subject = format!("Refunds ({})", case.name);
        let mail = CustomerMail {
            from: &customer,
            to: vec![&support],
            subject: &subject,
            body: QUESTION,
            message_id: &id,
            ..CustomerMail::default()
        };
        stack.send_mail(&mail).await.unwrap();
        let told = eventually(&format!("the customer told ({})", case.name), async || {
            let mails = stack.mailbox(&customer).await.ok()?;
            mails.into_iter().find(|m| m.in_reply_to == vec![id.clone()])
        })
        .await;
        assert!(told.body.contains("support team"), "{}: {}", case.name, told.body);
        let forward = eventually(&format!("the forward for the agents ({})", case.name), async || {
            let mails = stack.mailbox(&agents).await.ok()?;
            mails.into_iter().find(|m| m.subject == format!("[Handoff] {subject}"))
        })
        .await;
        assert!(forward.body.contains(case.reason), "{}: {}", case.name, forward.body);
        if case.reason == "suggest_mode" {
            assert!(forward.body.contains(case.marker), "the agents get the suggestion: {}", forward.body);
        }
        eventually(&format!("the turn delivered ({})", case.name), async || {
            let s = inbox.stats();
            (s.pending_inbound == 0 && s.pending_outbound == 0).then_some(())
        })
        .await;
    }
    assert_eq!(model.count(), CASES.len(), "the model wrote each answer");

    // The customer received one mail per question, the handoff, and none of the model's words.
    let mails = stack.mailbox(&customer).await.unwrap();
    assert_eq!(mails.len(), CASES.len(), "{mails:?}");
    let leaks: Vec<String> = mails
        .iter()
        .filter_map(|mail| {
            let seen = format!("{}\n{}\n{}", mail.subject, mail.body, String::from_utf8_lossy(&mail.raw));
            let cases = leaked_into(&seen);
            (!cases.is_empty()).then(|| format!("{cases:?} in {seen}"))
        })
        .collect();
    assert!(leaks.is_empty(), "answers reached the customer:\n{}", leaks.join("\n"));
    assert_eq!(inbox.stats().dead_letters, 0);
    serving.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The engine.

/// Bug: the working sign (👀) went up on messages the bot was never going to answer — in a
/// thread a person owns, from an agent or another bot, not addressed to it — so customers
/// waited for an answer that could not come.
#[tokio::test]
async fn the_working_sign_showed_on_messages_the_bot_would_not_answer() {
    let h = harness(RateLimitConfig::default()).await;
    // A thread a person has claimed.
    let o = h.engine.handle(&message(&h.ws, "w1", "U1", "How long is the free trial?")).await;
    assert_eq!(o.decision, Decision::Answer);
    h.engine.handle(&action(agent(message(&h.ws, "w1", "AGENT1", "")), UserAction::Claim)).await;
    let in_owned_thread = message(&h.ws, "w1", "U1", "And can annual plans be refunded within 30 days?");
    let by_agent = agent(message(&h.ws, "w1", "AGENT1", "Yes, within 30 days of the renewal."));
    let button = action(message(&h.ws, "w1", "U1", ""), UserAction::RequestHuman);
    let mut not_addressed = message(&h.ws, "w2", "U2", "How long is the free trial?");
    not_addressed.addressed_to_bot = false;
    let mut by_bot = message(&h.ws, "w3", "B1", "How long is the free trial?");
    by_bot.author.is_bot = true;
    let question = message(&h.ws, "w4", "U3", "How long is the free trial?");
    let Harness { engine, ws, _dir } = h;
    let engine = Arc::new(engine);

    let platform = through_the_inbox(
        &engine,
        &[in_owned_thread.clone(), by_agent, button, not_addressed, by_bot, question.clone()],
    )
    .await;
    let id = question.id.to_string();
    assert_eq!(platform.working(), vec![(id.clone(), true), (id, false)]);
    // Every message was handled: the question answered, the others kept without a word.
    let delivered = platform.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(matches!(delivered[0].kind, OutboundKind::Answer { .. }) && delivered[0].conversation.as_str() == "w4");
    let conv = engine.conversations.get(Source::Slack, &ws, &ConversationKey::new("w1").unwrap()).unwrap().unwrap();
    assert!(conv.messages.iter().any(|m| m.text == in_owned_thread.text));
    assert_eq!(conv.state, ConvState::Agent);
}

/// Bug: anyone in a channel could rate the customer's answer or hand the customer's thread to a
/// person, and a button press the platform could not vouch for counted as the customer's.
#[tokio::test]
async fn a_bystander_could_rate_a_customers_answer_or_hand_their_thread_off() {
    let h = harness(RateLimitConfig::default()).await;
    let state = |conv: &str| {
        let key = ConversationKey::new(conv).unwrap();
        h.engine.conversations.get(Source::Slack, &h.ws, &key).unwrap().unwrap().state
    };
    let o = h.engine.handle(&message(&h.ws, "p1", "U1", "How long is the free trial?")).await;
    let turn = o.trace.unwrap().trace_id;
    let rate = |who: &str, conv: &str, turn_id: &str| {
        action(message(&h.ws, conv, who, ""), UserAction::Feedback { turn_id: turn_id.into(), helpful: false })
    };

    // Another member of the channel can neither rate the customer's answer nor hand it off.
    assert_eq!(h.engine.handle(&rate("U2", "p1", &turn)).await.reason, TurnReason::NotAllowed);
    assert_eq!(h.engine.traces.get(&turn).unwrap().unwrap().feedback, None);
    let handoff = h.engine.handle(&action(message(&h.ws, "p1", "U2", ""), UserAction::RequestHuman)).await;
    assert_eq!(handoff.reason, TurnReason::NotAllowed);
    assert!(handoff.outbound.is_empty());
    assert_eq!(state("p1"), ConvState::Bot);

    // Nor can the customer rate an answer of another conversation from this one.
    let other = h.engine.handle(&message(&h.ws, "p2", "U3", "How long is the free trial?")).await;
    let other_turn = other.trace.unwrap().trace_id;
    assert_eq!(h.engine.handle(&rate("U1", "p1", &other_turn)).await.reason, TurnReason::NotAllowed);
    assert_eq!(h.engine.traces.get(&other_turn).unwrap().unwrap().feedback, None);

    // A press the platform could not vouch for changes nothing, whoever it names.
    let mut forged = rate("U1", "p1", &turn);
    forged.unverified_sender = true;
    assert_eq!(h.engine.handle(&forged).await.reason, TurnReason::NotAllowed);

    // The customer and an agent may.
    assert_eq!(h.engine.handle(&rate("U1", "p1", &turn)).await.reason, TurnReason::FeedbackRecorded);
    assert_eq!(h.engine.traces.get(&turn).unwrap().unwrap().feedback, Some(false));
    let by_agent = h.engine.handle(&agent(action(message(&h.ws, "p1", "A1", ""), UserAction::RequestHuman))).await;
    assert_eq!(by_agent.reason, TurnReason::AskedForHuman);
    assert_eq!(state("p1"), ConvState::Escalated);
}

/// A knowledge base of `docs` (file name, text) embedded with the real MiniLM model, and an
/// engine over it with the extractive generator and the built-in confidence model and threshold.
async fn real_engine(docs: &[(String, String)]) -> (tempfile::TempDir, Engine, WorkspaceId) {
    use frontdesk::embed::bert::{BertOptions, LocalBertEmbedder};
    use frontdesk::knowledge::chunk::ChunkOptions;
    use frontdesk::knowledge::ingest::IngestSource;
    use frontdesk::knowledge::{KnowledgeBase, SearchSettings};
    use frontdesk::retrieval::embedded::EmbeddedRetriever;
    use frontdesk::store::Store;
    let model = frontdesk::testing::ensure_model(&frontdesk::models::MINILM).expect("the embedding model");
    let embedder = Arc::new(LocalBertEmbedder::load(&model, BertOptions::default()).unwrap());
    let dims = frontdesk::embed::Embedder::dimensions(embedder.as_ref());
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("docs");
    std::fs::create_dir_all(&folder).unwrap();
    for (name, text) in docs {
        std::fs::write(folder.join(name), text).unwrap();
    }
    let store = Store::open(&dir.path().join("data")).unwrap();
    let kb = KnowledgeBase {
        retriever: Arc::new(EmbeddedRetriever::open(&dir.path().join("data"), &store, dims).unwrap()),
        store,
        embedder: embedder.clone(),
        search: SearchSettings { semantic_ratio: 0.5, candidates: 50 },
        chunking: ChunkOptions::default(),
        batch_size: 16,
    };
    let ws = WorkspaceId::new("help").unwrap();
    kb.ingest(&IngestSource::Paths(vec![folder]), ws.clone(), None, false, &()).await.unwrap();
    let config = frontdesk::config::Config::default();
    let generator: Arc<dyn Generator> = Arc::new(frontdesk::generate::Extractive::new(embedder));
    let engine =
        Engine::with_parts(&config, Arc::new(kb), generator, None, Arc::new(Prompts::built_in().unwrap())).unwrap();
    (dir, engine, ws)
}

fn sample_article(name: &str) -> (String, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("evals/tallyhawk/docs").join(name);
    (name.to_string(), std::fs::read_to_string(&path).unwrap())
}

/// Questions written for this test, each answered by one of the three articles.
const IN_DOCS: &[(&str, &str)] = &[
    ("What does the {YYYY} token mean in the invoice number prefix?", "invoicing-numbering-and-branding"),
    ("I used up my two-factor backup codes, how do I fix that and get new ones?", "accounts-two-factor-authentication"),
    ("Which Android version does the phone app need?", "mobile-getting-started"),
];

const ARTICLES: &[&str] =
    &["invoicing-numbering-and-branding.md", "accounts-two-factor-authentication.md", "mobile-getting-started.md"];

/// The decision, reason, confidence and cited documents for each of `IN_DOCS`.
async fn decide_all(docs: &[(String, String)]) -> Vec<(Decision, TurnReason, f32, Vec<String>)> {
    let (_dir, engine, ws) = real_engine(docs).await;
    let mut out = Vec::new();
    for (i, (question, _)) in IN_DOCS.iter().enumerate() {
        let o = engine.handle(&message(&ws, &format!("c{i}"), "U1", question)).await;
        out.push((o.decision, o.reason, o.confidence, o.citations.iter().map(|c| c.doc_id.clone()).collect()));
    }
    out
}

/// Bug: a help centre of three short articles handed off plain questions with `weak_retrieval`,
/// because everyday words of the question that it never used counted against the answer as
/// unknown terms. The same three articles, alone and among three hundred (the 297 others are
/// government help pages from the shared evaluation data, their opening 800 characters, on other
/// subjects), must get the same decisions at nearly the same confidence, and what is answered
/// must cite the article that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_help_centres_everyday_words_counted_as_unknown_terms() {
    let small: Vec<(String, String)> = ARTICLES.iter().map(|a| sample_article(a)).collect();
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/evals/mtrag_govt/docs");
    let mut others: Vec<std::path::PathBuf> = std::fs::read_dir(&shared)
        .unwrap_or_else(|e| panic!("{} is needed for this test: {e}", shared.display()))
        .map(|e| e.unwrap().path())
        .collect();
    others.sort();
    let mut large = small.clone();
    for path in others.into_iter().take(300 - small.len()) {
        let text = std::fs::read_to_string(&path).unwrap();
        let cut = text.char_indices().nth(800).map(|(i, _)| i).unwrap_or(text.len());
        large.push((path.file_name().unwrap().to_string_lossy().into_owned(), text[..cut].to_string()));
    }
    assert_eq!(large.len(), 300);
    let a = decide_all(&small).await;
    let b = decide_all(&large).await;
    for (((question, doc), s), l) in IN_DOCS.iter().zip(&a).zip(&b) {
        assert_eq!(s.0, l.0, "{question:?}: 3 articles {s:?}, 300 articles {l:?}");
        assert!((s.2 - l.2).abs() < 0.05, "{question:?}: the confidence moved with the size: {s:?} vs {l:?}");
        assert!(
            !matches!(s.1, TurnReason::WeakRetrieval),
            "{question:?}: an in-docs question was stopped at the retrieval gate: {s:?}"
        );
        for r in [s, l] {
            if r.0 == Decision::Answer {
                assert!(r.3.iter().any(|c| c == doc), "{question:?} cited {:?}", r.3);
            }
        }
    }
    let answered = a.iter().filter(|r| r.0 == Decision::Answer).count();
    assert!(answered >= 1, "nothing was answered on three articles: {a:?}");
}
