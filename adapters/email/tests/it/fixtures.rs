//! Raw MIME messages as mail clients send them (`tests/fixtures/*.eml`: plain text,
//! multipart/alternative, HTML only, a reply with quoted history, an attachment, a Latin-1
//! body), taken in by the adapter's real intake (`EmailAdapter::ingest`, no mail server): what
//! each one becomes in the inbox.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{webhook_config, SUPPORT};
use frontdesk_channel::conformance::RecordingInbox;
use frontdesk_channel::{Attachment, Inbound, Source};
use frontdesk_email::{EmailAdapter, Ingested, WebhookMode};
use serde_json::json;
use std::sync::Arc;

const PLAIN: &[u8] = include_bytes!("../fixtures/plain.eml");
const ALTERNATIVE: &[u8] = include_bytes!("../fixtures/alternative.eml");
const HTML_ONLY: &[u8] = include_bytes!("../fixtures/html_only.eml");
const REPLY_QUOTED: &[u8] = include_bytes!("../fixtures/reply_quoted.eml");
const ATTACHMENT: &[u8] = include_bytes!("../fixtures/attachment.eml");
const LATIN1: &[u8] = include_bytes!("../fixtures/latin1.eml");

fn adapter() -> Arc<EmailAdapter> {
    let config = webhook_config(WebhookMode::Hmac);
    let tree = sled::Config::new().temporary(true).open().unwrap().open_tree("email").unwrap();
    EmailAdapter::new(config, tree).unwrap()
}

/// Ingests one raw mail into a fresh adapter and returns what the inbox received.
async fn ingested(raw: &[u8]) -> Inbound {
    let inbox = RecordingInbox::default();
    assert_eq!(adapter().ingest(raw, &inbox).await.unwrap(), Ingested::Accepted);
    let mut got = inbox.accepted();
    assert_eq!(got.len(), 1);
    got.remove(0)
}

/// The fields the engine relies on, in one tuple so a mismatch shows all of them.
fn fields(m: &Inbound) -> (&str, &str, &str, &str, &str, Option<&str>, &str, bool) {
    (
        m.id.as_str(),
        m.workspace.as_str(),
        m.channel.as_str(),
        m.conversation.as_str(),
        m.author.id.as_str(),
        m.author.display_name.as_deref(),
        m.text.as_str(),
        m.top_level,
    )
}

#[tokio::test]
async fn a_plain_text_mail() {
    let m = ingested(PLAIN).await;
    assert_eq!(
        fields(&m),
        (
            "CAF3kq9wL1x2pT7@mail.example.org",
            SUPPORT,
            SUPPORT,
            "CAF3kq9wL1x2pT7@mail.example.org",
            "dana.whitfield@example.org",
            Some("Dana Whitfield"),
            "Password reset link never arrives\n\nHello,\n\nI asked for a password reset three times this morning \
             and no email came.\nSpam folder is empty too. How else can I get back into my account?\n\nThanks,\nDana",
            true,
        )
    );
    assert_eq!(m.source, Source::Email);
    assert!(m.addressed_to_bot && !m.author.is_agent && !m.author.is_bot && m.attachments.is_empty());
    // Not signed (DKIM is not checked here): the sender is not vouched for.
    assert!(m.unverified_sender);
    assert_eq!(
        m.reply_context,
        json!({"message_id": "CAF3kq9wL1x2pT7@mail.example.org", "references": [],
            "subject": "Password reset link never arrives", "reply_to": "dana.whitfield@example.org",
            "reply_name": "Dana Whitfield", "mailbox": SUPPORT})
    );
}

#[tokio::test]
async fn multipart_alternative_gives_its_plain_text_part() {
    let m = ingested(ALTERNATIVE).await;
    assert_eq!(
        fields(&m),
        (
            "20240410001244.7Q3M@shop.example.net",
            SUPPORT,
            SUPPORT,
            "20240410001244.7Q3M@shop.example.net",
            "kenji@shop.example.net",
            Some("Kenji Moriyama"),
            "Exporting orders to CSV\n\nIs there a way to export all orders from March as a CSV file? The export \
             button only gives me the current page.",
            true,
        )
    );
}

#[tokio::test]
async fn an_html_only_mail_is_read_as_text() {
    let m = ingested(HTML_ONLY).await;
    assert_eq!(
        fields(&m),
        (
            "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d@example.com",
            SUPPORT,
            SUPPORT,
            "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d@example.com",
            "priya.raman@example.com",
            Some("Priya Raman"),
            // The HTML's blocks are read as running text.
            "Invoice address\n\nHi team, How do I change the billing address printed on our invoices?",
            true,
        )
    );
    assert!(!m.text.contains('<'), "no markup reaches the engine: {:?}", m.text);
}

#[tokio::test]
async fn a_reply_keeps_its_new_text_and_its_references_but_joins_no_thread_it_was_not_sent() {
    // It answers a Message-ID frontdesk did not make (anyone can copy ids), so it starts a
    // conversation of its own; its references are kept for the reply's threading headers.
    let m = ingested(REPLY_QUOTED).await;
    assert_eq!(
        fields(&m),
        (
            "CAF3kq9wR8m4nQ2@mail.example.org",
            SUPPORT,
            SUPPORT,
            "CAF3kq9wR8m4nQ2@mail.example.org",
            "dana.whitfield@example.org",
            Some("Dana Whitfield"),
            "Password reset link never arrives\n\nIt worked after I allow-listed your domain, thank you!",
            true,
        )
    );
    assert_eq!(
        m.reply_context["references"],
        json!(["CAF3kq9wL1x2pT7@mail.example.org", "fd.20240409T1405.7c1e@frontdesk.example.test"])
    );
    assert_eq!(m.reply_context["subject"], json!("Password reset link never arrives"));
}

#[tokio::test]
async fn an_attachment_is_listed_not_kept() {
    let m = ingested(ATTACHMENT).await;
    assert_eq!(
        fields(&m),
        (
            "9f2e7c1b.4a3d@studio.example.pl",
            SUPPORT,
            SUPPORT,
            "9f2e7c1b.4a3d@studio.example.pl",
            "marta@studio.example.pl",
            Some("Marta Kowalska"),
            "Error when uploading the logo\n\nThe logo upload fails with \"unsupported file\". The screenshot is \
             attached.",
            true,
        )
    );
    assert_eq!(
        m.attachments,
        [Attachment { name: "upload-error.png".into(), content_type: Some("image/png".into()), size_bytes: 70 }]
    );
}

#[tokio::test]
async fn a_latin1_mail_is_decoded() {
    let m = ingested(LATIN1).await;
    assert_eq!(
        fields(&m),
        (
            "5e1d.0c3a.helene@example.fr",
            SUPPORT,
            SUPPORT,
            "5e1d.0c3a.helene@example.fr",
            "helene.dupre@example.fr",
            Some("Hélène Dupré"),
            // The body already says what the subject does, so the subject is not put in front.
            "Bonjour, où se trouve la facture de février ? Je ne la vois pas dans mon espace client.",
            true,
        )
    );
}

#[tokio::test]
async fn the_same_mail_twice_is_one_message_and_a_damaged_one_says_why() {
    let adapter = adapter();
    let inbox = RecordingInbox::default();
    assert_eq!(adapter.ingest(PLAIN, &inbox).await.unwrap(), Ingested::Accepted);
    assert_eq!(adapter.ingest(PLAIN, &inbox).await.unwrap(), Ingested::Duplicate);
    assert_eq!(inbox.accepted().len(), 1);

    let no_from = String::from_utf8_lossy(PLAIN).replace("From: Dana Whitfield <Dana.Whitfield@example.org>\r\n", "");
    let err = adapter.ingest(no_from.as_bytes(), &inbox).await.unwrap_err();
    assert_eq!(err.to_string(), "malformed email: the message has no valid From address");
    assert_eq!(inbox.accepted().len(), 1, "nothing more was handed on");
}
