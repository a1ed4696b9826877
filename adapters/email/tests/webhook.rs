//! `POST /email/inbound`: HMAC and shared-secret authentication, precise refusals, and the inbox
//! taking each mail once. No mail server is needed: the mail service posts the raw MIME.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use frontdesk_channel::conformance::RecordingInbox;
use frontdesk_channel::ChannelAdapter;
use frontdesk_email::{EmailAdapter, EmailConfig, SmtpConfig, WebhookConfig, WebhookMode};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const SECRET: &str = "a-webhook-secret-of-some-length";

fn config(mode: WebhookMode) -> EmailConfig {
    EmailConfig {
        address: "support@example.test".into(),
        webhook: WebhookConfig { secret: Some(SecretString::from(SECRET.to_string())), mode },
        smtp: SmtpConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            security: frontdesk_email::Security::None,
            ..SmtpConfig::default()
        },
        dkim: frontdesk_email::DkimConfig { verify: false, dns_server: None },
        ..EmailConfig::default()
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(
    adapter: &Arc<EmailAdapter>,
    header: Option<(&str, String)>,
    body: &[u8],
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder().method("POST").uri("/email/inbound");
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = adapter.router().oneshot(request.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

const MAIL: &[u8] = b"From: Ann <ann@example.org>\r\nTo: support@example.test\r\nSubject: Export\r\nMessage-ID: <hook-1@example.org>\r\n\r\nHow do I export my data?\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_mail_is_taken_once_and_everything_else_is_refused_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let adapter = EmailAdapter::new(config(WebhookMode::Hmac), db.open_tree("email").unwrap()).unwrap();

    let (status, body) = post(&adapter, Some(("x-frontdesk-signature", sign(MAIL))), MAIL).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "before run: {body}");

    let inbox = Arc::new(RecordingInbox::default());
    let shutdown = CancellationToken::new();
    let running = {
        let (adapter, inbox, shutdown) = (adapter.clone(), inbox.clone(), shutdown.clone());
        tokio::spawn(async move { adapter.run(inbox, shutdown).await })
    };
    // `run` makes the inbox available at once; wait for it without assuming when.
    let mut accepted = (StatusCode::SERVICE_UNAVAILABLE, serde_json::Value::Null);
    for _ in 0..100 {
        accepted = post(&adapter, Some(("x-frontdesk-signature", sign(MAIL))), MAIL).await;
        if accepted.0 != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(accepted.0, StatusCode::OK, "{}", accepted.1);
    assert_eq!(accepted.1["status"], "accepted");
    let m = &inbox.accepted()[0];
    assert_eq!(m.id.as_str(), "hook-1@example.org");
    // The subject is left out when the body already says it.
    assert_eq!(m.text, "How do I export my data?");
    assert_eq!(m.workspace.as_str(), "support@example.test");

    let (status, body) = post(&adapter, Some(("x-frontdesk-signature", sign(MAIL))), MAIL).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("duplicate")));

    let (status, body) = post(&adapter, None, MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("missing x-frontdesk-signature"), "{body}");
    let (status, body) = post(&adapter, Some(("x-frontdesk-signature", sign(b"another body"))), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("does not match"), "{body}");
    let (status, _) = post(&adapter, Some(("x-frontdesk-signature", "sha256=zz".into())), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let no_sender = b"To: support@example.test\r\nSubject: ?\r\n\r\nwho am I\r\n";
    let (status, body) = post(&adapter, Some(("x-frontdesk-signature", sign(no_sender))), no_sender).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "malformed email: the message has no valid From address");
    let (status, body) = post(&adapter, Some(("x-frontdesk-signature", sign(b""))), b"").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed email: the message is empty"))
    );

    let auto =
        b"From: ann@example.org\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@example.org>\r\n\r\nI am away.\r\n";
    let (status, body) = post(&adapter, Some(("x-frontdesk-signature", sign(auto))), auto).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ignored")));
    assert_eq!(body["reason"], "Auto-Submitted: auto-replied");
    assert_eq!(inbox.accepted().len(), 1, "only the customer's mail reached the inbox");

    shutdown.cancel();
    running.await.unwrap().unwrap();
    let (status, _) = post(&adapter, Some(("x-frontdesk-signature", sign(MAIL))), MAIL).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "after run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_secret_mode_checks_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let adapter = EmailAdapter::new(config(WebhookMode::Shared), db.open_tree("email").unwrap()).unwrap();
    let inbox = Arc::new(RecordingInbox::default());
    let shutdown = CancellationToken::new();
    let running = {
        let (adapter, inbox, shutdown) = (adapter.clone(), inbox.clone(), shutdown.clone());
        tokio::spawn(async move { adapter.run(inbox, shutdown).await })
    };
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = post(&adapter, Some(("authorization", format!("Bearer {SECRET}"))), MAIL).await.0;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        post(&adapter, Some(("authorization", "Bearer wrong-secret-of-some-length".into())), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = post(&adapter, Some(("x-frontdesk-signature", sign(MAIL))), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a signature is not the shared secret");
    assert_eq!(inbox.accepted().len(), 1);
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_mailbox_without_a_webhook_secret_has_no_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let mut c = config(WebhookMode::Hmac);
    c.webhook.secret = None;
    c.imap.host = "127.0.0.1".into();
    c.imap.security = frontdesk_email::Security::None;
    c.imap.password = SecretString::from("x".to_string());
    let adapter = EmailAdapter::new(c, db.open_tree("email").unwrap()).unwrap();
    let (status, body) = post(&adapter, Some(("x-frontdesk-signature", sign(MAIL))), MAIL).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let mut broken = config(WebhookMode::Hmac);
    broken.address = "not an address".into();
    let error = EmailAdapter::new(broken, db.open_tree("email2").unwrap()).err().unwrap();
    assert!(error.to_string().contains("email.address"), "{error}");
}
