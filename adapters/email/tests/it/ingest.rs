//! What the adapter keeps and hands on of each received mail, without a mail server: held mail
//! (kept compactly, found by its Message-ID, purged past its limits, earlier records kept), and
//! the text of a very long mail (cut, with a note saying so).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::webhook_config;
use frontdesk_channel::conformance::RecordingInbox;
use frontdesk_channel::ChannelAdapter;
use frontdesk_email::{EmailAdapter, EmailConfig, HeldMessage, Ingested, WebhookMode};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn config() -> EmailConfig {
    webhook_config(WebhookMode::Hmac)
}

fn mail(n: usize, body: &str) -> Vec<u8> {
    format!(
        "From: Flood <flood@example.org>\r\nTo: support@example.test\r\nSubject: Again {n}\r\nMessage-ID: <flood-{n}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Every byte the adapter's tree holds.
fn stored_bytes(tree: &sled::Tree) -> usize {
    tree.iter().map(|e| e.map(|(k, v)| k.len() + v.len()).unwrap()).sum()
}

#[tokio::test]
async fn mail_over_the_rate_limit_is_held_whole_and_compactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let mut c = config();
    c.sender_messages_per_hour = 1;
    let adapter = EmailAdapter::new(c, db.open_tree("email").unwrap()).unwrap();
    let inbox = RecordingInbox::default();
    assert_eq!(adapter.ingest(&mail(0, "first"), &inbox).await.unwrap(), Ingested::Accepted);
    let before = stored_bytes(&db.open_tree("email").unwrap());

    let body = "All work and no play. ".repeat(10_000);
    let raw = mail(1, &body);
    assert!(matches!(adapter.ingest(&raw, &inbox).await.unwrap(), Ingested::Held(_)));
    // Received again (a redelivery): still held once.
    assert!(matches!(adapter.ingest(&raw, &inbox).await.unwrap(), Ingested::Held(_)));
    let held = adapter.held();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].raw, raw, "the held mail is kept as received");
    assert_eq!(held[0].message_id, "flood-1@example.org");
    let grown = stored_bytes(&db.open_tree("email").unwrap()) - before;
    assert!(grown < raw.len() + 4_000, "{} bytes of mail took {grown} bytes of the store", raw.len());
    assert_eq!(inbox.accepted().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_mail_of_earlier_versions_is_kept_and_purged_once_past_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let tree = db.open_tree("email").unwrap();
    // Two records as earlier versions stored them (the raw MIME as a JSON number array): one
    // held 40 days ago, one held a day ago.
    let now_ms =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let day = 24 * 3_600_000;
    for (n, age) in [(1, 40 * day), (2, day)] {
        let held = HeldMessage {
            message_id: format!("flood-{n}@example.org"),
            from: "flood@example.org".into(),
            subject: format!("Again {n}"),
            received_at_ms: now_ms - age,
            reason: "more than 1 messages from flood@example.org in an hour".into(),
            raw: mail(n, "again"),
        };
        let key = format!("held/{:016x}/{}", held.received_at_ms, held.message_id);
        tree.insert(key, serde_json::to_vec(&held).unwrap()).unwrap();
    }

    let adapter = EmailAdapter::new(config(), tree).unwrap();
    let held = adapter.held();
    assert_eq!(held.len(), 2, "both readable after the upgrade");
    assert_eq!(held[1].raw, mail(2, "again"));

    // A running adapter purges what is past the keeping period.
    let inbox = Arc::new(RecordingInbox::default());
    let shutdown = CancellationToken::new();
    let running = {
        let (adapter, inbox, shutdown) = (adapter.clone(), inbox.clone(), shutdown.clone());
        tokio::spawn(async move { adapter.run(inbox, shutdown).await })
    };
    for _ in 0..500 {
        if adapter.held().len() < 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held: Vec<String> = adapter.held().into_iter().map(|h| h.message_id).collect();
    assert_eq!(held, vec!["flood-2@example.org"], "the mail held 40 days ago is purged, the other kept");
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_20_mb_mail_is_taken_in_with_its_text_cut_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let adapter = EmailAdapter::new(config(), db.open_tree("email").unwrap()).unwrap();
    let inbox = RecordingInbox::default();
    let line = "My export keeps failing, here is the whole log it wrote, line after line.\r\n";
    let body = format!("Hello,\r\n\r\n{}", line.repeat(20 * 1024 * 1024 / line.len()));
    let raw = format!(
        "From: Ann <ann@example.org>\r\nTo: support@example.test\r\nSubject: Export fails\r\nMessage-ID: <long-1@example.org>\r\n\r\n{body}"
    );
    assert!(raw.len() > 20 * 1024 * 1024);
    assert_eq!(adapter.ingest(raw.as_bytes(), &inbox).await.unwrap(), Ingested::Accepted);
    let taken = inbox.accepted();
    let text = &taken[0].text;
    assert!(text.len() <= 64 * 1024 + 200, "{} bytes of text handed on", text.len());
    let (note, _) = text.split_once("\n\n").unwrap();
    assert!(
        note.starts_with("[This email was cut: its text is 19.")
            || note.starts_with("[This email was cut: its text is 20."),
        "{note}"
    );
    assert!(note.ends_with(" MB, and only the first 64 KB follow.]"), "{note}");
    assert!(text.contains("Export fails\n\nHello,\n\nMy export keeps failing"), "the start is kept");
    assert!(text.ends_with(" […]"));

    // Within the limit, the text is handed on as it is.
    let raw =
        "From: ann@example.org\r\nSubject: Export\r\nMessage-ID: <long-2@example.org>\r\n\r\nHow do I export?\r\n";
    assert_eq!(adapter.ingest(raw.as_bytes(), &inbox).await.unwrap(), Ingested::Accepted);
    assert_eq!(inbox.accepted()[1].text, "How do I export?");
}
