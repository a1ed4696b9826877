//! Mail servers scripted on loopback, for what the real stack can't be made to do. Each records
//! every line it receives.
//!
//! - STARTTLS is required, not hoped for: a server that does not upgrade the connection (or a
//!   network in between that strips the offer) gets neither the password nor any mail.
//! - A folder that keeps no keywords (Microsoft Exchange: PERMANENTFLAGS without `\*`) is
//!   reported with what to set instead.
//! - An SMTP server that takes every mail and records its envelope and text, to see where
//!   replies really go.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use frontdesk_channel::conformance::RecordingInbox;
use frontdesk_channel::{AdapterError, ChannelAdapter, Outbound, OutboundKind};
use frontdesk_email::fake::CustomerMail;
use frontdesk_email::{DkimConfig, EmailAdapter, EmailConfig, ImapConfig, Security, SmtpConfig};
use secrecy::SecretString;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const PASSWORD: &str = "the-mailbox-password";

/// A server that greets with `greeting` and answers each line it reads with `answer(line)`;
/// returns its port and the lines it received.
async fn scripted(greeting: &'static str, answer: fn(&str) -> String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                write.write_all(greeting.as_bytes()).await.unwrap();
                let mut line = String::new();
                while read.read_line(&mut line).await.unwrap_or(0) > 0 {
                    seen.lock().unwrap().push(line.trim_end().to_string());
                    let reply = answer(line.trim_end());
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                    line.clear();
                }
            });
        }
    });
    (port, lines)
}

/// The mails the recording SMTP server took, and its port.
async fn smtp_recorder() -> (u16, Arc<Mutex<Vec<Taken>>>) {
    frontdesk_email::fake::smtp_recorder().await.unwrap()
}

use frontdesk_email::fake::TakenMail as Taken;

/// A header of a recorded mail, unfolded.
fn header(data: &str, name: &str) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(data.as_bytes())?;
    message.header_raw(name).map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The text body of a recorded mail, decoded.
fn body(data: &str) -> String {
    let message = mail_parser::MessageParser::default().parse(data.as_bytes()).unwrap();
    message.body_text(0).map(|t| t.replace("\r\n", "\n")).unwrap_or_default()
}

fn config(imap_port: u16, smtp_port: u16) -> EmailConfig {
    EmailConfig {
        address: "support@example.test".into(),
        imap: ImapConfig {
            host: "127.0.0.1".into(),
            port: imap_port,
            security: Security::Starttls,
            password: SecretString::from(PASSWORD.to_string()),
            ..ImapConfig::default()
        },
        smtp: SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp_port,
            security: Security::Starttls,
            user: "support@example.test".into(),
            password: SecretString::from(PASSWORD.to_string()),
            ..SmtpConfig::default()
        },
        dkim: DkimConfig { verify: false, dns_server: None },
        ..EmailConfig::default()
    }
}

/// An IMAP server that refuses STARTTLS and would take a plain login.
fn imap_without_starttls(line: &str) -> String {
    let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
    if command.to_ascii_uppercase().starts_with("LOGIN") {
        format!("{tag} OK logged in\r\n")
    } else {
        format!("{tag} BAD STARTTLS is not available\r\n")
    }
}

/// An SMTP server whose EHLO offers AUTH but no STARTTLS.
fn smtp_without_starttls(line: &str) -> String {
    let upper = line.to_ascii_uppercase();
    if upper.starts_with("EHLO") {
        "250-mx.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".into()
    } else if upper.starts_with("QUIT") {
        "221 bye\r\n".into()
    } else {
        "250 ok\r\n".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_upgrade_gets_no_password_and_no_mail() {
    let (imap_port, imap_lines) = scripted("* OK [CAPABILITY IMAP4rev1] ready\r\n", imap_without_starttls).await;
    let (smtp_port, smtp_lines) = scripted("220 mx.example.test ESMTP\r\n", smtp_without_starttls).await;
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let adapter = EmailAdapter::new(config(imap_port, smtp_port), db.open_tree("email").unwrap()).unwrap();

    let health = adapter.healthcheck().await;
    assert!(!health.ok, "{}", health.detail);
    assert!(health.detail.contains("STARTTLS"), "{}", health.detail);

    let mail = CustomerMail {
        from: "ann@example.org",
        to: vec!["support@example.test"],
        subject: "Export",
        body: "How do I export my data?",
        message_id: "q1@example.org",
        ..CustomerMail::default()
    };
    let inbox = RecordingInbox::default();
    adapter.ingest(mail.render().as_bytes(), &inbox).await.unwrap();
    let question = inbox.accepted()[0].clone();
    let answer = Outbound::reply_to(
        &question,
        "t1-answer",
        "Settings → Export.",
        OutboundKind::Answer { turn_id: "t1".into(), citations: Vec::new(), confidence: 0.9 },
    );
    let e = adapter.deliver(&answer).await.unwrap_err();
    // Retried later (the server may be fixed), never sent in clear.
    assert!(matches!(e, AdapterError::Unavailable { .. }), "{e}");

    let imap = imap_lines.lock().unwrap().clone();
    assert!(imap.iter().any(|l| l.to_ascii_uppercase().ends_with("STARTTLS")), "STARTTLS was asked for: {imap:?}");
    let smtp = smtp_lines.lock().unwrap().clone();
    assert!(smtp.iter().any(|l| l.to_ascii_uppercase().starts_with("EHLO")), "{smtp:?}");
    for line in imap.iter().chain(smtp.iter()) {
        let upper = line.to_ascii_uppercase();
        assert!(!line.contains(PASSWORD), "the password went out in clear: {line}");
        assert!(!upper.contains("LOGIN") && !upper.starts_with("AUTH"), "a login was tried in clear: {line}");
        assert!(!upper.starts_with("MAIL FROM") && !upper.starts_with("DATA"), "mail went out in clear: {line}");
    }
}

/// An IMAP server whose INBOX keeps only the standard flags, as Exchange's does.
fn imap_without_keywords(line: &str) -> String {
    let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
    let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
    match verb.as_str() {
        "LOGIN" => format!("{tag} OK LOGIN completed\r\n"),
        "SELECT" => format!(
            "* 0 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)] Permanent flags\r\n\
             * OK [UIDVALIDITY 14] UIDVALIDITY value\r\n* OK [UIDNEXT 1] The next unique identifier value\r\n\
             {tag} OK [READ-WRITE] SELECT completed.\r\n"
        ),
        "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 IDLE UIDPLUS MOVE\r\n{tag} OK CAPABILITY completed.\r\n"),
        "LOGOUT" => format!("* BYE\r\n{tag} OK LOGOUT completed.\r\n"),
        _ => format!("{tag} BAD unexpected command\r\n"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_that_keeps_no_keywords_is_reported_with_what_to_set() {
    let (imap_port, _) = scripted("* OK The server is ready.\r\n", imap_without_keywords).await;
    let mut config = config(imap_port, 9);
    config.imap.security = Security::None;
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let adapter = EmailAdapter::new(config.clone(), db.open_tree("a").unwrap()).unwrap();
    let doctor = adapter.doctor().await;
    let check = |name: &str| doctor.iter().find(|(n, _)| n == name).map(|(_, h)| h.clone());
    assert!(check("IMAP folder").unwrap().ok, "{doctor:?}");
    let keywords = check("IMAP keywords").expect("the keyword check is reported");
    assert!(!keywords.ok, "{doctor:?}");
    assert!(
        keywords.detail.contains("$FrontdeskHandled") && keywords.detail.contains("imap.processed_flag"),
        "{}",
        keywords.detail
    );

    // Marking handled mail \Seen (or moving it) needs no keywords: nothing to report.
    config.imap.processed_flag = "\\Seen".into();
    let adapter = EmailAdapter::new(config, db.open_tree("b").unwrap()).unwrap();
    let doctor = adapter.doctor().await;
    assert!(doctor.iter().all(|(n, _)| n != "IMAP keywords"), "{doctor:?}");
}

/// A webhook- or IMAP-only mailbox whose replies go to the recording SMTP server.
fn recorded_config(smtp_port: u16) -> EmailConfig {
    let mut config = config(9, smtp_port);
    config.imap.security = Security::None;
    config.smtp.security = Security::None;
    config.smtp.user = String::new();
    config
}

fn answer(question: &frontdesk_channel::Inbound, id: &str, text: &str) -> Outbound {
    Outbound::reply_to(
        question,
        id,
        text,
        OutboundKind::Answer { turn_id: id.into(), citations: Vec::new(), confidence: 0.9 },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_go_to_the_sender_never_to_a_reply_to_address() {
    let (smtp_port, taken) = smtp_recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let mut config = recorded_config(smtp_port);
    config.sender_messages_per_hour = 1;
    let adapter = EmailAdapter::new(config, db.open_tree("email").unwrap()).unwrap();
    let inbox = RecordingInbox::default();

    // Someone rotates the From address and points every Reply-To at a third party.
    let victim = "victim@example.net";
    for n in 0..3 {
        let (from, id) = (format!("sender{n}@example.org"), format!("relay-{n}@example.org"));
        let raw = format!(
            "From: {from}\r\nReply-To: Victim <{victim}>\r\nTo: support@example.test\r\nSubject: Offer {n}\r\nMessage-ID: <{id}>\r\n\r\nBuy now, number {n}.\r\n"
        );
        assert_eq!(adapter.ingest(raw.as_bytes(), &inbox).await.unwrap(), frontdesk_email::Ingested::Accepted);
    }
    // The limit counts the address the replies go to: a second mail from the same sender is held.
    let again = "From: sender0@example.org\r\nReply-To: victim@example.net\r\nSubject: Offer\r\nMessage-ID: <relay-again@example.org>\r\n\r\nAgain.\r\n";
    assert!(matches!(adapter.ingest(again.as_bytes(), &inbox).await.unwrap(), frontdesk_email::Ingested::Held(_)));

    let accepted = inbox.accepted();
    assert_eq!(accepted.len(), 3);
    for (n, question) in accepted.iter().enumerate() {
        adapter.deliver(&answer(question, &format!("t{n}-answer"), "Thanks for writing.")).await.unwrap();
    }
    let summary = frontdesk_channel::HandoffSummary {
        question: accepted[0].text.clone(),
        condensed_question: accepted[0].text.clone(),
        reason: "weak_retrieval".into(),
        confidence: 0.1,
        sources: Vec::new(),
        draft: None,
        conversation: accepted[0].conversation.clone(),
        customer_channel: accepted[0].channel.clone(),
    };
    let forward = Outbound::reply_to(
        &accepted[0],
        "t0-summary",
        "summary",
        OutboundKind::AgentSummary {
            agents_channel: Some(frontdesk_channel::ChannelId::new("agents@example.test").unwrap()),
            summary,
        },
    );
    adapter.deliver(&forward).await.unwrap();

    let taken = taken.lock().unwrap().clone();
    assert_eq!(taken.len(), 4, "{taken:?}");
    for (n, mail) in taken[..3].iter().enumerate() {
        let sender = format!("sender{n}@example.org");
        assert_eq!(mail.recipients, vec![sender.clone()], "the answer goes to the sender alone");
        assert_eq!(header(&mail.data, "To").as_deref(), Some(sender.as_str()));
    }
    let to_agents = &taken[3];
    assert_eq!(to_agents.recipients, vec!["agents@example.test".to_string()]);
    assert!(!to_agents.data.contains(&format!("Reply-To: Victim <{victim}>")), "{}", to_agents.data);
    let reply_to = header(&to_agents.data, "Reply-To").unwrap();
    assert!(reply_to.contains("sender0@example.org") && !reply_to.contains(victim), "{reply_to}");
    // The agents are told what the mail asked for, to decide themselves.
    let text = body(&to_agents.data);
    assert!(text.contains(&format!("asked for replies to go to {victim}")), "{text}");
    assert!(taken.iter().all(|m| !m.recipients.iter().any(|r| r == victim)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_replying_with_a_threads_ids_starts_a_conversation_of_their_own() {
    let (smtp_port, taken) = smtp_recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let adapter = EmailAdapter::new(recorded_config(smtp_port), db.open_tree("email").unwrap()).unwrap();
    let inbox = RecordingInbox::default();
    let mail = |from: &str, id: &str, refs: &[&str], body: &str| {
        let mut raw =
            format!("From: {from}\r\nTo: support@example.test\r\nSubject: Re: Order 1234\r\nMessage-ID: <{id}>\r\n");
        if let Some(last) = refs.last() {
            let all: Vec<String> = refs.iter().map(|r| format!("<{r}>")).collect();
            raw.push_str(&format!("In-Reply-To: <{last}>\r\nReferences: {}\r\n", all.join(" ")));
        }
        raw + "\r\n" + body + "\r\n"
    };

    let first = mail("ann@example.org", "ann-1@example.org", &[], "My order 1234 went to 5 Elm Street, Springfield.");
    adapter.ingest(first.as_bytes(), &inbox).await.unwrap();
    let question = inbox.accepted()[0].clone();
    let ours = adapter
        .deliver(&answer(&question, "t1-answer", "Order 1234 ships on Monday to 5 Elm Street."))
        .await
        .unwrap()
        .platform_message_id
        .unwrap();

    // A stranger who learnt the thread's ids answers with them.
    let stranger = mail("eve@example.net", "eve-1@example.net", &["ann-1@example.org", &ours], "Where does it ship?");
    adapter.ingest(stranger.as_bytes(), &inbox).await.unwrap();
    let from_stranger = inbox.accepted()[1].clone();
    assert_ne!(from_stranger.conversation, question.conversation, "a conversation of its own");
    assert!(from_stranger.top_level);
    // Reusing the customer's own Message-ID changes nothing either.
    let reused = mail("eve@example.net", "ann-1@example.org", &[&ours], "And the address?");
    adapter.ingest(reused.as_bytes(), &inbox).await.unwrap();
    let reusing = inbox.accepted()[2].clone();
    assert_ne!(reusing.conversation, question.conversation);
    assert_ne!(reusing.id.as_str(), question.id.as_str(), "not dropped as the customer's mail");
    // An id of our form that we did not make joins nothing.
    let (head, _) = ours.strip_suffix("@example.test").unwrap().rsplit_once('.').unwrap();
    let made_up = format!("{head}.{}@example.test", "0".repeat(32));
    let guessed = mail("ann@example.org", "ann-guess@example.org", &[&made_up], "Guessed.");
    adapter.ingest(guessed.as_bytes(), &inbox).await.unwrap();
    assert_ne!(inbox.accepted()[3].conversation, question.conversation);
    // The customer's own reply to our answer continues the thread.
    let follow_up = mail("ann@example.org", "ann-2@example.org", &["ann-1@example.org", &ours], "Thanks!");
    adapter.ingest(follow_up.as_bytes(), &inbox).await.unwrap();
    assert_eq!(inbox.accepted()[4].conversation, question.conversation);

    // Handed over, the stranger's conversation shows the agents nothing of the customer's.
    let summary = frontdesk_channel::HandoffSummary {
        question: from_stranger.text.clone(),
        condensed_question: from_stranger.text.clone(),
        reason: "weak_retrieval".into(),
        confidence: 0.1,
        sources: Vec::new(),
        draft: None,
        conversation: from_stranger.conversation.clone(),
        customer_channel: from_stranger.channel.clone(),
    };
    let forward = Outbound::reply_to(
        &from_stranger,
        "t2-summary",
        "summary",
        OutboundKind::AgentSummary {
            agents_channel: Some(frontdesk_channel::ChannelId::new("agents@example.test").unwrap()),
            summary,
        },
    );
    adapter.deliver(&forward).await.unwrap();
    let reply = adapter.deliver(&answer(&from_stranger, "t2-answer", "Please ask the sender.")).await.unwrap();
    let taken = taken.lock().unwrap().clone();
    let to_agents = taken.iter().find(|m| m.recipients == ["agents@example.test"]).unwrap();
    let text = body(&to_agents.data);
    assert!(text.contains("Where does it ship?"), "{text}");
    for secret in ["Elm Street", "ships on Monday", "ann@example.org"] {
        assert!(!text.contains(secret), "{secret:?} leaked into the stranger's thread: {text}");
    }
    let to_stranger = taken.iter().find(|m| m.recipients == ["eve@example.net"]).unwrap();
    assert!(!body(&to_stranger.data).contains("Elm Street"));
    assert_ne!(reply.platform_message_id.unwrap(), ours);
}
