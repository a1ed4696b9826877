//! The email adapter against a real mail stack (Postfix → Dovecot, started by
//! `deploy/peers/setup.sh`): customers' mail is sent by Python's smtplib (and signed by dkimpy),
//! frontdesk reads it over IMAP and answers over SMTP, and the tests read the customers'
//! mailboxes over IMAP. Without the stack's environment the tests say why and are skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use frontdesk_channel::conformance::{self, PlatformDriver, RecordingInbox};
use frontdesk_channel::{
    AdapterError, ChannelAdapter, ChannelId, Citation, HandoffSummary, Inbound, InboxSink, Outbound, OutboundKind,
};
use frontdesk_email::fake::{CustomerMail, MailStack, ReceivedMail};
use frontdesk_email::{EmailAdapter, EmailConfig, Security};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

fn stack(test: &str) -> Option<MailStack> {
    let stack = MailStack::or_skip(test)?;
    if std::env::var_os("PEER_PYTHON").is_none() {
        frontdesk_channel::skip::skipped(
            test,
            frontdesk_channel::skip::Missing::Peer,
            "PEER_PYTHON is not set: run `eval \"$(deploy/peers/setup.sh)\"`",
        );
        return None;
    }
    Some(stack)
}

/// Sends a mail with Python's smtplib (tests/peers/send_mail.py).
async fn python_send(stack: &MailStack, args: &[&str]) {
    let python = std::env::var("PEER_PYTHON").unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/send_mail.py");
    let port = stack.smtp_port.to_string();
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args(["--smtp-host", &stack.smtp_host, "--smtp-port", &port])
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "send_mail.py failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn unique_id(stack: &MailStack, name: &str) -> String {
    stack.unique_address(name).replace('@', ".id@")
}

struct Running {
    adapter: Arc<EmailAdapter>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), AdapterError>>,
}

impl Running {
    fn start(adapter: Arc<EmailAdapter>, inbox: Arc<dyn InboxSink>) -> Running {
        let shutdown = CancellationToken::new();
        let task = {
            let (adapter, shutdown) = (adapter.clone(), shutdown.clone());
            tokio::spawn(async move { adapter.run(inbox, shutdown).await })
        };
        Running { adapter, shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("run returns on shutdown")
            .unwrap()
            .unwrap();
    }
}

fn open_state(dir: &tempfile::TempDir) -> (sled::Db, sled::Tree) {
    let db = sled::open(dir.path().join("state")).unwrap();
    let tree = db.open_tree("email").unwrap();
    (db, tree)
}

/// One test's share of the stack: a support address and a customer of its own, and a folder for
/// the state of the adapters it builds (each gets a fresh state), kept until the test ends.
struct Scenario {
    stack: MailStack,
    support: String,
    customer: String,
    dir: tempfile::TempDir,
    dbs: Mutex<Vec<sled::Db>>,
}

fn scenario(test: &str) -> Option<Scenario> {
    let stack = stack(test)?;
    let (support, customer) = (stack.unique_address("support"), stack.unique_address("customer"));
    Some(Scenario { stack, support, customer, dir: tempfile::tempdir().unwrap(), dbs: Mutex::new(Vec::new()) })
}

impl Scenario {
    /// The stack's configuration for this scenario's support address.
    fn config(&self) -> EmailConfig {
        self.stack.config(&self.support)
    }

    /// An adapter for `config` with a state of its own.
    fn adapter(&self, config: EmailConfig) -> Arc<EmailAdapter> {
        let mut dbs = self.dbs.lock().unwrap();
        let db = sled::open(self.dir.path().join(format!("state-{}", dbs.len()))).unwrap();
        let tree = db.open_tree("email").unwrap();
        dbs.push(db);
        EmailAdapter::new(config, tree).unwrap()
    }

    /// An adapter for `config` running, handing mail to a recording inbox.
    fn run(&self, config: EmailConfig) -> (Running, Arc<RecordingInbox>) {
        let inbox = Arc::new(RecordingInbox::default());
        (Running::start(self.adapter(config), inbox.clone()), inbox)
    }
}

async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ready() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// UIDs of the support mailbox's messages carrying `keyword`.
async fn with_keyword(stack: &MailStack, user: &str, keyword: &str) -> usize {
    let tcp = tokio::net::TcpStream::connect((stack.imap_host.as_str(), stack.imap_port)).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap();
    let mut session = client.login(user, &stack.password).await.map_err(|(e, _)| e).unwrap();
    session.select("INBOX").await.unwrap();
    let found = session.uid_search(format!("KEYWORD {keyword}")).await.unwrap();
    let _ = session.logout().await;
    found.len()
}

fn reply(to: &Inbound, id: &str, text: &str, kind: OutboundKind) -> Outbound {
    Outbound::reply_to(to, id, text, kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_answered_in_the_thread_and_the_follow_up_stays_in_the_conversation() {
    let Some(sc) = scenario("thread") else { return };
    let (stack, support, customer) = (&sc.stack, &sc.support, &sc.customer);
    let mut config = sc.config();
    // With a poll interval of an hour, only IMAP IDLE can pick the mail up in time.
    config.imap.poll_secs = 3600;
    let (running, inbox) = sc.run(config);
    let adapter = running.adapter.clone();

    let first_id = unique_id(stack, "q1");
    python_send(
        stack,
        &[
            "--from",
            customer,
            "--to",
            support,
            "--subject",
            "Refund for the annual plan",
            "--body",
            "Hello,\nCan I get a refund on my annual plan?\n\n-- \nAnn from ACME",
            "--message-id",
            &first_id,
            "--html",
        ],
    )
    .await;
    wait_until("the first mail in the inbox", || inbox.accepted().len() == 1).await;
    let first = inbox.accepted()[0].clone();
    assert_eq!(first.id.as_str(), first_id);
    assert_eq!(first.author.id.as_str(), customer);
    assert!(!first.author.is_bot && !first.author.is_agent && first.addressed_to_bot && first.top_level);
    assert_eq!(first.workspace.as_str(), support);
    assert_eq!(first.text, "Refund for the annual plan\n\nHello,\nCan I get a refund on my annual plan?");
    assert!(first.received_at_ms > 0);
    assert!(first.unverified_sender, "example.test does not sign its mail: nothing vouches for the sender");

    let citations = vec![Citation {
        doc_id: "refunds.md".into(),
        chunk_id: "refunds.md#1".into(),
        title: "Refunds and credits".into(),
        url: Some("https://help.example.com/refunds".into()),
    }];
    let answer = reply(
        &first,
        "t1-answer",
        "Annual plans can be refunded in full within 30 days of the renewal date [1].",
        OutboundKind::Answer { turn_id: "t1".into(), citations, confidence: 0.9 },
    );
    let delivered = adapter.deliver(&answer).await.unwrap();
    let ours = delivered.platform_message_id.unwrap();
    // A retried delivery carries the same Message-ID.
    assert_eq!(adapter.deliver(&answer).await.unwrap().platform_message_id.unwrap(), ours);

    let got = stack.wait_for(customer, WAIT, |m| m.message_id == ours).await.unwrap();
    assert_eq!(got.in_reply_to, vec![first_id.clone()]);
    assert_eq!(got.references, vec![first_id.clone()]);
    assert_eq!(got.subject, "Re: Refund for the annual plan");
    assert_eq!(&got.from, support);
    assert_eq!(got.auto_submitted.as_deref(), Some("auto-replied"));
    assert!(got.body.contains("within 30 days of the renewal date [1]"), "{}", got.body);
    assert!(got.body.contains("[1] Refunds and credits — https://help.example.com/refunds"), "{}", got.body);

    // The customer answers our reply; their client quotes it.
    let second_id = unique_id(stack, "q2");
    let refs = format!("{first_id} {ours}");
    python_send(
        stack,
        &[
            "--from",
            customer,
            "--to",
            support,
            "--subject",
            "Re: Refund for the annual plan",
            "--body",
            "And after those 30 days?\n\nOn Tue, 4 Mar 2025, Example Support wrote:\n> Annual plans can be refunded",
            "--message-id",
            &second_id,
            "--in-reply-to",
            &ours,
            "--references",
            &refs,
        ],
    )
    .await;
    wait_until("the follow-up in the inbox", || inbox.accepted().len() == 2).await;
    let second = inbox.accepted()[1].clone();
    assert_eq!(second.conversation, first.conversation, "the follow-up belongs to the same conversation");
    assert!(!second.top_level);
    assert_eq!(second.text, "And after those 30 days?");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machines_malformed_mail_and_big_attachments_are_handled_without_losing_anything() {
    let Some(sc) = scenario("machines") else { return };
    let (stack, support, customer) = (&sc.stack, &sc.support, &sc.customer);
    let mut config = sc.config();
    config.max_attachment_bytes = 50_000;
    let (running, inbox) = sc.run(config);

    let id = |n: &str| unique_id(stack, n);
    let (auto, bounce, dsn, broken, big, noform, last) =
        (id("auto"), id("bounce"), id("dsn"), id("broken"), id("big"), id("nofrom"), id("last"));
    python_send(
        stack,
        &[
            "--from",
            customer,
            "--to",
            support,
            "--subject",
            "Out of office",
            "--body",
            "I am away until Monday.",
            "--message-id",
            &auto,
            "--header",
            "Auto-Submitted: auto-replied",
        ],
    )
    .await;
    python_send(
        stack,
        &[
            "--from",
            "MAILER-DAEMON@example.test",
            "--to",
            support,
            "--subject",
            "Undelivered Mail Returned to Sender",
            "--body",
            "This is the mail system. Your message could not be delivered.",
            "--message-id",
            &bounce,
            "--header",
            "Return-Path: <>",
        ],
    )
    .await;
    let files = tempfile::tempdir().unwrap();
    let dsn_file = files.path().join("dsn.eml");
    std::fs::write(
        &dsn_file,
        format!(
            "From: Mail Delivery System <daemon@example.test>\r\nTo: {support}\r\nSubject: Delivery Status Notification\r\nMessage-ID: <{dsn}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; x@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n--b1--\r\n"
        ),
    )
    .unwrap();
    python_send(
        stack,
        &[
            "--from",
            "daemon@example.test",
            "--to",
            support,
            "--message-id",
            &dsn,
            "--raw-file",
            dsn_file.to_str().unwrap(),
        ],
    )
    .await;
    // No sender at all, and a multipart without its closing boundary: nobody to answer.
    let nofrom_file = files.path().join("nofrom.eml");
    std::fs::write(
        &nofrom_file,
        format!("To: {support}\r\nSubject: ???\r\nMessage-ID: <{noform}>\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhalf a message\r\n"),
    )
    .unwrap();
    python_send(
        stack,
        &["--from", customer, "--to", support, "--message-id", &noform, "--raw-file", nofrom_file.to_str().unwrap()],
    )
    .await;
    // Broken MIME from a real sender: bad base64, an unknown charset, a missing closing boundary.
    let broken_file = files.path().join("broken.eml");
    std::fs::write(
        &broken_file,
        format!("From: {customer}\r\nTo: {support}\r\nSubject: broken\r\nMessage-ID: <{broken}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/plain; charset=x-unknown-charset\r\nContent-Transfer-Encoding: base64\r\n\r\nSG93IGRvIEkgZXhwb3J0\x21\x21 my data?\r\n--q\r\nContent-Type: text/html\r\n\r\n<p>How do I export my data?"),
    )
    .unwrap();
    python_send(
        stack,
        &["--from", customer, "--to", support, "--message-id", &broken, "--raw-file", broken_file.to_str().unwrap()],
    )
    .await;
    python_send(
        stack,
        &[
            "--from",
            customer,
            "--to",
            support,
            "--subject",
            "Logs attached",
            "--body",
            "The export fails, logs attached.",
            "--message-id",
            &big,
            "--attachment-bytes",
            "120000",
        ],
    )
    .await;
    python_send(
        stack,
        &[
            "--from",
            customer,
            "--to",
            support,
            "--subject",
            "Trial",
            "--body",
            "How long is the free trial?",
            "--message-id",
            &last,
        ],
    )
    .await;

    wait_until("the last mail in the inbox", || inbox.accepted().iter().any(|m| m.id.as_str() == last)).await;
    let ids: Vec<String> = inbox.accepted().iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids, vec![broken.clone(), big.clone(), last.clone()], "only people's mail reaches the inbox, in order");
    let big_mail = inbox.accepted().into_iter().find(|m| m.id.as_str() == big).unwrap();
    assert_eq!(big_mail.attachments.len(), 1);
    assert_eq!(big_mail.attachments[0].name, "logs.bin (oversized, not kept)");
    assert_eq!(big_mail.attachments[0].size_bytes, 120_000);
    assert_eq!(big_mail.attachments[0].content_type.as_deref(), Some("application/octet-stream"));
    assert!(!big_mail.text.contains("SG93"), "attachments are never part of the text");
    let broken_mail = inbox.accepted().into_iter().find(|m| m.id.as_str() == broken).unwrap();
    assert!(!broken_mail.text.is_empty());

    // Everything was looked at: the unreadable mail is left flagged for a person, the rest
    // (ignored ones included) is marked handled.
    assert_eq!(with_keyword(stack, support, "$FrontdeskMalformed").await, 1);
    assert_eq!(with_keyword(stack, support, "$FrontdeskHandled").await, 7);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_reaches_the_inbox_once_across_restarts_and_failures() {
    let Some(stack) = stack("exactly-once") else { return };
    let support = stack.unique_address("support");
    let customer = stack.unique_address("customer");
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FlakyInbox::default());
    let send = |n: usize| {
        let (stack, support, customer) = (stack.clone(), support.clone(), customer.clone());
        async move {
            let (subject, body) = (format!("question {n}"), format!("question number {n}"));
            let message_id = format!("restart-{n}-{}", support.replace('@', "."));
            let mail = CustomerMail {
                from: &customer,
                to: vec![&support],
                subject: &subject,
                body: &body,
                message_id: &message_id,
                ..CustomerMail::default()
            };
            stack.send_mail(&mail).await.unwrap();
        }
    };

    let (db, tree1) = open_state(&dir);
    let running = Running::start(EmailAdapter::new(stack.config(&support), tree1).unwrap(), inbox.clone());
    for n in 0..3 {
        send(n).await;
    }
    wait_until("three messages", || inbox.inner.accepted().len() == 3).await;
    running.stop().await;
    drop(db);

    // While frontdesk is down, more mail arrives; one of it meets an inbox that stores the
    // message but fails before it can say so (as a crash between accept and flag would).
    inbox.fail_once_for.lock().unwrap().push("question number 4".into());
    for n in 3..6 {
        send(n).await;
    }
    let (db, tree2) = open_state(&dir);
    let running = Running::start(EmailAdapter::new(stack.config(&support), tree2).unwrap(), inbox.clone());
    wait_until("six messages", || inbox.inner.accepted().len() == 6).await;
    // Give a wrongly repeated read the chance to show up.
    send(6).await;
    wait_until("seven messages", || inbox.inner.accepted().len() == 7).await;
    running.stop().await;
    drop(db);

    let texts: Vec<String> = inbox.inner.accepted().iter().map(|m| m.text.clone()).collect();
    let expected: Vec<String> = (0..7).map(|n| format!("question {n}\n\nquestion number {n}")).collect();
    assert_eq!(texts, expected, "every message once, in order");
    // Offered once each, plus once more for the message whose first accept failed.
    assert_eq!(inbox.inner.offered(), 8);
}

/// The recording inbox, failing (after storing) once for messages with chosen texts.
#[derive(Default)]
struct FlakyInbox {
    inner: RecordingInbox,
    fail_once_for: Mutex<Vec<String>>,
}

#[async_trait]
impl InboxSink for FlakyInbox {
    async fn accept(&self, message: Inbound) -> Result<bool, AdapterError> {
        let fail = {
            let mut list = self.fail_once_for.lock().unwrap();
            let hit = list.iter().position(|t| message.text.contains(t.as_str()));
            hit.map(|i| list.remove(i)).is_some()
        };
        let stored = self.inner.accept(message).await?;
        if fail {
            return Err(AdapterError::Inbox("the disk went away after writing".into()));
        }
        Ok(stored)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_signatures_are_checked_against_the_published_key() {
    let Some(sc) = scenario("dkim") else { return };
    let (stack, support) = (&sc.stack, &sc.support);
    let signer = format!("alice@{}", stack.dkim_domain);
    // The signing domain is the team's: only its signed mail is an agent's.
    let mut config = sc.config();
    config.agent_domains = vec![stack.dkim_domain.clone()];
    let (running, inbox) = sc.run(config);

    let sign: [&str; 6] =
        ["--dkim-key", &stack.dkim_key, "--dkim-domain", &stack.dkim_domain, "--dkim-selector", &stack.dkim_selector];
    let good = unique_id(stack, "signed");
    let tampered = unique_id(stack, "tampered");
    let unsigned = unique_id(stack, "unsigned");
    let other = unique_id(stack, "other-domain");
    let mut args: Vec<&str> = vec![
        "--from",
        &signer,
        "--to",
        &support,
        "--subject",
        "Signed",
        "--body",
        "A signed question",
        "--message-id",
        &good,
    ];
    args.extend(sign);
    python_send(stack, &args).await;
    let mut args: Vec<&str> = vec![
        "--from",
        &signer,
        "--to",
        &support,
        "--subject",
        "Signed",
        "--body",
        "A tampered question",
        "--message-id",
        &tampered,
        "--tamper",
    ];
    args.extend(sign);
    python_send(stack, &args).await;
    // The signing domain publishes a DMARC policy: its mail without a signature is unverified.
    python_send(
        stack,
        &[
            "--from",
            &signer,
            "--to",
            support,
            "--subject",
            "Unsigned",
            "--body",
            "No signature",
            "--message-id",
            &unsigned,
        ],
    )
    .await;
    let plain = stack.unique_address("bob");
    python_send(
        stack,
        &[
            "--from",
            &plain,
            "--to",
            support,
            "--subject",
            "Plain",
            "--body",
            "From a domain without DKIM",
            "--message-id",
            &other,
        ],
    )
    .await;

    wait_until("four messages", || inbox.accepted().len() == 4).await;
    let verdict = |id: &str| {
        let m = inbox.accepted().into_iter().find(|m| m.id.as_str() == id).unwrap();
        (m.unverified_sender, m.author.is_agent)
    };
    assert_eq!(verdict(&good), (false, true), "a valid signature verifies the sender, here an agent");
    assert_eq!(verdict(&tampered), (true, false), "a body changed after signing fails");
    assert_eq!(verdict(&unsigned), (true, false), "a signing domain's mail without a signature is unverified");
    assert_eq!(verdict(&other), (true, false), "nothing vouches for a domain that does not sign");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_over_the_rate_limit_is_held_for_a_person() {
    let Some(sc) = scenario("rate") else { return };
    let (stack, support, customer) = (&sc.stack, &sc.support, &sc.customer);
    let mut config = sc.config();
    config.sender_messages_per_hour = 2;
    let (running, inbox) = sc.run(config);
    for n in 0..3 {
        let id = unique_id(stack, &format!("rate{n}"));
        let body = format!("message {n}");
        python_send(
            stack,
            &["--from", customer, "--to", support, "--subject", "spam?", "--body", &body, "--message-id", &id],
        )
        .await;
    }
    let adapter = running.adapter.clone();
    wait_until("two accepted and one held", || inbox.accepted().len() == 2 && adapter.held().len() == 1).await;
    let held = adapter.held();
    assert_eq!(&held[0].from, customer);
    assert!(String::from_utf8_lossy(&held[0].raw).contains("message 2"), "the held mail is kept whole");
    assert!(held[0].reason.contains("more than 2 messages"));
    assert_eq!(with_keyword(stack, support, "$FrontdeskHeld").await, 1);
    let doctor = adapter.doctor().await;
    assert!(doctor.iter().any(|(name, h)| name == "held mail" && !h.ok), "{doctor:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_forwards_the_thread_and_the_agents_reply_is_an_agents() {
    let Some(sc) = scenario("handoff") else { return };
    let (stack, support, customer) = (&sc.stack, &sc.support, &sc.customer);
    let agents = stack.unique_address("agents");
    let mut config = sc.config();
    config.agent_domains = vec![stack.dkim_domain.clone()];
    let (running, inbox) = sc.run(config);
    let adapter = running.adapter.clone();

    let first_id = unique_id(stack, "h1");
    python_send(
        stack,
        &[
            "--from",
            customer,
            "--to",
            support,
            "--subject",
            "Invoice",
            "--body",
            "Why was I charged twice?",
            "--message-id",
            &first_id,
        ],
    )
    .await;
    wait_until("the question", || inbox.accepted().len() == 1).await;
    let question = inbox.accepted()[0].clone();

    let handoff = reply(&question, "t9-handoff", "A person will reply here.", OutboundKind::Handoff { mention: None });
    let told = adapter.deliver(&handoff).await.unwrap().platform_message_id.unwrap();
    let summary = HandoffSummary {
        question: question.text.clone(),
        condensed_question: question.text.clone(),
        reason: "weak_retrieval".into(),
        confidence: 0.2,
        sources: vec![],
        draft: None,
        conversation: question.conversation.clone(),
        customer_channel: question.channel.clone(),
    };
    let forward = reply(
        &question,
        "t9-summary",
        "summary",
        OutboundKind::AgentSummary { agents_channel: Some(ChannelId::new(agents.clone()).unwrap()), summary },
    );
    let forwarded = adapter.deliver(&forward).await.unwrap().platform_message_id.unwrap();

    let customer_copy = stack.wait_for(customer, WAIT, |m| m.message_id == told).await.unwrap();
    assert_eq!(customer_copy.in_reply_to, vec![first_id.clone()]);
    assert!(customer_copy.body.contains("A person will reply here."));
    let agent_copy: ReceivedMail = stack.wait_for(&agents, WAIT, |m| m.message_id == forwarded).await.unwrap();
    assert_eq!(agent_copy.reply_to, vec![customer.clone(), support.clone()]);
    assert!(agent_copy.subject.starts_with("[Handoff] Invoice"), "{}", agent_copy.subject);
    assert!(agent_copy.body.contains("Why was I charged twice?"), "{}", agent_copy.body);
    assert!(agent_copy.body.contains("weak_retrieval"));
    assert!(agent_copy.references.contains(&first_id), "the forward belongs to the customer's thread");

    // Someone writes "from" the agents' address without a signature: not an agent's reply.
    let refs = agent_copy.references.iter().chain([&forwarded]).cloned().collect::<Vec<_>>().join(" ");
    let forged_id = unique_id(stack, "forged");
    python_send(
        stack,
        &[
            "--from",
            &agents,
            "--to",
            support,
            "--subject",
            "Re: [Handoff] Invoice",
            "--body",
            "Taken care of, the bot can stop.",
            "--message-id",
            &forged_id,
            "--in-reply-to",
            &forwarded,
            "--references",
            &refs,
        ],
    )
    .await;
    wait_until("the unsigned mail", || inbox.accepted().len() == 2).await;
    let forged = inbox.accepted()[1].clone();
    assert!(!forged.author.is_agent && forged.unverified_sender, "an address alone makes no agent");

    // An agent of the team's signing domain answers with their client's reply button: to the
    // customer, a copy to support.
    let agent =
        stack.unique_address("agent").replace(&format!("@{}", stack.domain), &format!("@{}", stack.dkim_domain));
    let agent_reply_id = unique_id(stack, "agent");
    python_send(
        stack,
        &[
            "--from",
            &agent,
            "--to",
            customer,
            "--cc",
            support,
            "--subject",
            "Re: [Handoff] Invoice",
            "--body",
            "Hi, I refunded the second charge.",
            "--message-id",
            &agent_reply_id,
            "--in-reply-to",
            &forwarded,
            "--references",
            &refs,
            "--dkim-key",
            &stack.dkim_key,
            "--dkim-domain",
            &stack.dkim_domain,
            "--dkim-selector",
            &stack.dkim_selector,
        ],
    )
    .await;
    wait_until("the agent's reply", || inbox.accepted().len() == 3).await;
    let from_agent = inbox.accepted()[2].clone();
    assert!(from_agent.author.is_agent, "a signed mail of the team's domain is an agent's");
    assert!(!from_agent.unverified_sender);
    assert_eq!(from_agent.conversation, question.conversation);
    assert_eq!(from_agent.text, "Hi, I refunded the second charge.");
    assert!(stack.wait_for(customer, WAIT, |m| m.message_id == agent_reply_id).await.is_ok());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_failures_are_retried_or_not_by_their_kind() {
    let Some(sc) = scenario("smtp-errors") else { return };
    let support = &sc.support;
    let adapter = sc.adapter(sc.config());
    let to = |address: &str| Outbound {
        id: format!("o-{address}"),
        source: frontdesk_channel::Source::Email,
        workspace: frontdesk_channel::WorkspaceId::new(support.clone()).unwrap(),
        channel: ChannelId::new(support.clone()).unwrap(),
        conversation: frontdesk_channel::ConversationKey::new("c-smtp").unwrap(),
        text: "hello".into(),
        kind: OutboundKind::Notice,
        reply_context: serde_json::json!({"message_id": "x@example.test", "reply_to": address, "subject": "s"}),
    };
    let rejecting = std::env::var("PEER_MAIL_REJECTING").unwrap();
    let deferring = std::env::var("PEER_MAIL_DEFERRING").unwrap();
    let e = adapter.deliver(&to(&rejecting)).await.unwrap_err();
    assert!(matches!(e, AdapterError::Rejected { .. }) && !e.retryable(), "{e}");
    let e = adapter.deliver(&to(&deferring)).await.unwrap_err();
    assert!(matches!(e, AdapterError::Unavailable { .. }) && e.retryable(), "{e}");
    let mut bad = to("someone@example.test");
    bad.reply_context = serde_json::json!({"unrelated": true});
    let e = adapter.deliver(&bad).await.unwrap_err();
    assert!(matches!(e, AdapterError::Rejected { .. }), "{e}");

    let mut closed = sc.config();
    closed.smtp.port = 9; // nothing listens there
    let down = sc.adapter(closed);
    let e = down.deliver(&to("someone@example.test")).await.unwrap_err();
    assert!(matches!(e, AdapterError::Unavailable { .. }), "{e}");
    assert!(!down.healthcheck().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_doctor_report_what_they_checked() {
    let Some(sc) = scenario("doctor") else { return };
    let adapter = sc.adapter(sc.config());
    let health = adapter.healthcheck().await;
    assert!(health.ok, "{}", health.detail);
    let doctor = adapter.doctor().await;
    let names: Vec<&str> = doctor.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["IMAP login", "IMAP folder", "IMAP IDLE", "SMTP", "DKIM resolver"]);
    assert!(doctor.iter().all(|(_, h)| h.ok), "{doctor:?}");

    let mut wrong = sc.config();
    wrong.imap.password = secrecy::SecretString::from("not the password".to_string());
    let refused = sc.adapter(wrong);
    let health = refused.healthcheck().await;
    assert!(!health.ok && health.detail.contains("login"), "{}", health.detail);
}

/// A customer's question, sent as a plain mail from `customer` to `support`; returns its Message-ID.
async fn ask(stack: &MailStack, customer: &str, support: &str, subject: &str, body: &str) -> String {
    let id = unique_id(stack, "question");
    let mail =
        CustomerMail { from: customer, to: vec![support], subject, body, message_id: &id, ..CustomerMail::default() };
    stack.send_mail(&mail).await.unwrap();
    id
}

fn answer_to(question: &Inbound, id: &str, text: &str) -> Outbound {
    reply(question, id, text, OutboundKind::Answer { turn_id: id.into(), citations: Vec::new(), confidence: 0.9 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_read_and_answered_over_tls_and_over_starttls() {
    for security in [Security::Tls, Security::Starttls] {
        let Some(sc) = scenario("tls") else { return };
        let (stack, support, customer) = (&sc.stack, &sc.support, &sc.customer);
        let (running, inbox) = sc.run(stack.config_secured(support, security));

        let id = ask(stack, customer, support, "Password reset", "How do I reset my password?").await;
        wait_until("the mail in the inbox", || inbox.accepted().len() == 1).await;
        let question = inbox.accepted()[0].clone();
        assert_eq!(question.id.as_str(), id, "{security:?}");
        assert_eq!(question.text, "Password reset\n\nHow do I reset my password?");
        // Dovecot logs whether each login was encrypted (its log process may write a moment later).
        wait_until("Dovecot's login line", || !stack.imap_logins(support).is_empty()).await;
        let logins = stack.imap_logins(support);
        assert!(!logins.is_empty() && logins.iter().all(|l| l.contains(", TLS,")), "{security:?}: {logins:?}");

        let answer = answer_to(&question, "tls-answer", "Use the reset link on the sign-in page.");
        let ours = running.adapter.deliver(&answer).await.unwrap().platform_message_id.unwrap();
        let got = stack.wait_for(customer, WAIT, |m| m.message_id == ours).await.unwrap();
        assert_eq!(got.in_reply_to, vec![id.clone()]);
        assert!(got.body.contains("reset link"), "{}", got.body);
        // Postfix records in its Received header how the reply was submitted.
        let raw = String::from_utf8_lossy(&got.raw);
        assert!(raw.contains("(using TLSv1.") && raw.contains("with ESMTPS"), "{security:?}: {raw}");
        running.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_is_not_trusted_or_not_for_the_host_is_refused() {
    let Some(sc) = scenario("untrusted") else { return };
    let (stack, support, customer) = (&sc.stack, &sc.support, &sc.customer);

    // Without the stack's CA, its certificate is like a self-signed one: nothing is sent or read.
    let mut untrusted = stack.config_secured(support, Security::Tls);
    untrusted.imap.ca_file = None;
    untrusted.smtp.ca_file = None;
    let adapter = sc.adapter(untrusted);
    let doctor = adapter.doctor().await;
    let check = |name: &str| doctor.iter().find(|(n, _)| n == name).map(|(_, h)| h.clone()).unwrap();
    let login = check("IMAP login");
    assert!(!login.ok && login.detail.contains("UnknownIssuer"), "{}", login.detail);
    assert!(login.detail.contains("imap.ca_file"), "the error names what to set: {}", login.detail);
    let smtp = check("SMTP");
    assert!(!smtp.ok && smtp.detail.contains("smtp.ca_file"), "{}", smtp.detail);
    let id = unique_id(stack, "untrusted");
    let mail = CustomerMail {
        from: customer,
        to: vec![support],
        subject: "Hi",
        body: "Hello?",
        message_id: &id,
        ..CustomerMail::default()
    };
    let inbox = RecordingInbox::default();
    adapter.ingest(mail.render().as_bytes(), &inbox).await.unwrap();
    let question = inbox.accepted()[0].clone();
    let e = adapter.deliver(&answer_to(&question, "untrusted-answer", "Hello")).await.unwrap_err();
    assert!(matches!(&e, AdapterError::Unavailable { message, .. } if message.contains("smtp.ca_file")), "{e}");

    // With the CA trusted, a host name the certificate does not carry is still refused.
    let mut other_name = stack.config_secured(support, Security::Starttls);
    other_name.imap.host = stack.imap_noidle_host.clone();
    let adapter = sc.adapter(other_name);
    let health = adapter.healthcheck().await;
    assert!(!health.ok && health.detail.contains("not valid for name"), "{}", health.detail);
    assert!(health.detail.contains("set imap.host to a name"), "{}", health.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_idle_is_polled() {
    let Some(sc) = scenario("polling") else { return };
    let (stack, support, customer) = (&sc.stack, &sc.support, &sc.customer);
    // The same Dovecot at the address where it offers no IDLE; IDLE stays on in the config, so
    // the adapter has to notice and fall back.
    let mut config = sc.config();
    config.imap.host = stack.imap_noidle_host.clone();
    config.imap.idle = true;
    config.imap.poll_secs = 1;
    let doctor = sc.adapter(config.clone()).doctor().await;
    let idle = doctor.iter().find(|(n, _)| n == "IMAP IDLE").map(|(_, h)| h.clone()).unwrap();
    assert!(idle.ok && idle.detail.contains("not offered") && idle.detail.contains("every 1 s"), "{}", idle.detail);

    let (running, inbox) = sc.run(config);
    let first = ask(stack, customer, support, "Invoices", "Where are my invoices?").await;
    wait_until("the first mail", || inbox.accepted().len() == 1).await;
    // Mail arriving after a few checks is picked up too, once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = ask(stack, customer, support, "Invoices", "And the receipts?").await;
    wait_until("the second mail", || inbox.accepted().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let ids: Vec<String> = inbox.accepted().iter().map(|m| m.id.as_str().to_string()).collect();
    assert_eq!(ids, vec![first, second]);
    assert_eq!(with_keyword(stack, support, "$FrontdeskHandled").await, 2);
    running.stop().await;
}

/// The platform side of the conformance kit: a customer writing to the support address.
struct Driver {
    stack: MailStack,
    support: String,
    customer: String,
    last: Mutex<Option<(String, String)>>,
}

#[async_trait]
impl PlatformDriver for Driver {
    async fn send_customer_message(&self, text: &str) -> Result<(), String> {
        let id = unique_id(&self.stack, "conformance");
        let raw = CustomerMail {
            from: &self.customer,
            to: vec![&self.support],
            subject: "Question",
            body: text,
            message_id: &id,
            ..CustomerMail::default()
        }
        .render();
        *self.last.lock().unwrap() = Some((id, raw.clone()));
        self.stack.send_raw(&self.customer, &[&self.support], raw.as_bytes()).await
    }

    async fn replay_last(&self) -> Result<(), String> {
        let (_, raw) = self.last.lock().unwrap().clone().ok_or("nothing sent yet")?;
        self.stack.send_raw(&self.customer, &[&self.support], raw.as_bytes()).await
    }

    async fn send_own_message(&self, text: &str) -> Result<(), String> {
        let id = unique_id(&self.stack, "own");
        let raw = CustomerMail {
            from: &self.support,
            to: vec![&self.support],
            subject: "Note",
            body: text,
            message_id: &id,
            ..CustomerMail::default()
        }
        .render();
        self.stack.send_raw(&self.support, &[&self.support], raw.as_bytes()).await
    }

    async fn delivered_in_thread(&self) -> Vec<String> {
        let Some((id, _)) = self.last.lock().unwrap().clone() else { return Vec::new() };
        let mails = self.stack.mailbox(&self.customer).await.unwrap_or_default();
        mails.into_iter().filter(|m| m.in_reply_to.contains(&id)).map(|m| m.body).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_passes_the_channel_conformance_kit() {
    let Some(sc) = scenario("conformance") else { return };
    let adapter = sc.adapter(sc.config());
    let driver = Driver {
        stack: sc.stack.clone(),
        support: sc.support.clone(),
        customer: sc.customer.clone(),
        last: Mutex::new(None),
    };
    conformance::check(adapter, &driver).await.unwrap();
}
