//! `POST /email/inbound`: HMAC (over a timestamp and the body) and shared-secret
//! authentication, precise refusals, replays refused, the inbox taking each mail once, and no
//! body read while the webhook is off. No mail server is needed: the mail service posts the raw
//! MIME.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use frontdesk_channel::conformance::RecordingInbox;
use frontdesk_channel::ChannelAdapter;
use frontdesk_email::{EmailAdapter, EmailConfig, WebhookMode};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::support::{webhook_config, WEBHOOK_SECRET as SECRET};

fn config(mode: WebhookMode) -> EmailConfig {
    webhook_config(mode)
}

fn now_secs() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// The headers of `body` signed at `timestamp` (Unix seconds), as adapters/email/README.md says to.
fn signed_at(timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    vec![("x-frontdesk-timestamp", timestamp.to_string()), ("x-frontdesk-signature", signature)]
}

/// The headers of `body` signed now.
fn signed(body: &[u8]) -> Vec<(&'static str, String)> {
    signed_at(now_secs(), body)
}

async fn post(
    adapter: &Arc<EmailAdapter>,
    headers: Vec<(&'static str, String)>,
    body: &[u8],
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder().method("POST").uri("/email/inbound");
    for (name, value) in headers {
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

    // One signed request, sent until it is taken: answered 503 while the adapter is not running,
    // and then taken although the same signature came before (a retry is no replay).
    let request = signed(MAIL);
    let (status, body) = post(&adapter, request.clone(), MAIL).await;
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
        accepted = post(&adapter, request.clone(), MAIL).await;
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

    // The same signed request again is a replay; the same mail signed anew is a duplicate.
    let (status, body) = post(&adapter, request.clone(), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("already received (a replay)"), "{body}");
    let (status, body) = post(&adapter, signed_at(now_secs() - 1, MAIL), MAIL).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("duplicate")), "{body}");

    let (status, body) = post(&adapter, Vec::new(), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("missing x-frontdesk-signature"), "{body}");
    let mut other_body = signed(b"another body");
    let (status, body) = post(&adapter, other_body.clone(), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("does not match"), "{body}");
    other_body[1].1 = "sha256=zz".into();
    let (status, _) = post(&adapter, other_body, MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Signed too long ago, or too far ahead: refused, saying by how much.
    let (status, body) = post(&adapter, signed_at(now_secs() - 3_600, MAIL), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let why = body["error"].as_str().unwrap();
    assert!(why.contains(" s ago") && why.contains("more than 300 s"), "{why}");
    let (status, body) = post(&adapter, signed_at(now_secs() + 3_600, MAIL), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("ahead of this server's clock"), "{body}");
    // A signature of the body alone, without a timestamp: refused, saying what to sign.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(MAIL);
    let body_only = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let (status, body) = post(&adapter, vec![("x-frontdesk-signature", body_only)], MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("missing x-frontdesk-timestamp"), "{body}");

    let no_sender = b"To: support@example.test\r\nSubject: ?\r\n\r\nwho am I\r\n";
    let (status, body) = post(&adapter, signed(no_sender), no_sender).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "malformed email: the message has no valid From address");
    let (status, body) = post(&adapter, signed(b""), b"").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed email: the message is empty"))
    );

    let auto =
        b"From: ann@example.org\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@example.org>\r\n\r\nI am away.\r\n";
    let (status, body) = post(&adapter, signed(auto), auto).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ignored")));
    assert_eq!(body["reason"], "Auto-Submitted: auto-replied");
    assert_eq!(inbox.accepted().len(), 1, "only the customer's mail reached the inbox");

    shutdown.cancel();
    running.await.unwrap().unwrap();
    let (status, _) = post(&adapter, signed_at(now_secs() - 2, MAIL), MAIL).await;
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
        status = post(&adapter, vec![("authorization", format!("Bearer {SECRET}"))], MAIL).await.0;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        post(&adapter, vec![("authorization", "Bearer wrong-secret-of-some-length".into())], MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = post(&adapter, signed(MAIL), MAIL).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a signature is not the shared secret");
    assert_eq!(inbox.accepted().len(), 1);
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_mailbox_without_a_webhook_secret_has_no_webhook_and_reads_no_body() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let mut c = config(WebhookMode::Hmac);
    c.webhook.secret = None;
    c.imap.host = "127.0.0.1".into();
    c.imap.security = frontdesk_email::Security::None;
    c.imap.password = SecretString::from("x".to_string());
    let adapter = EmailAdapter::new(c, db.open_tree("email").unwrap()).unwrap();
    assert!(!adapter.webhook_on());

    // A body that records whether anyone read it.
    let read = Arc::new(AtomicBool::new(false));
    let seen = read.clone();
    let mut sent = false;
    let body = futures::stream::poll_fn(move |_| {
        seen.store(true, Ordering::SeqCst);
        let chunk = (!sent).then(|| Ok::<_, std::io::Error>(axum::body::Bytes::from_static(MAIL)));
        sent = true;
        std::task::Poll::Ready(chunk)
    });
    let mut request = Request::builder().method("POST").uri("/email/inbound");
    for (name, value) in signed(MAIL) {
        request = request.header(name, value);
    }
    let response = adapter.router().oneshot(request.body(Body::from_stream(body)).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let answer = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert!(answer["error"].as_str().unwrap().contains("not configured: set email.webhook.secret"), "{answer}");
    assert!(!read.load(Ordering::SeqCst), "the body of a call to a webhook that is off is never read");

    let mut broken = config(WebhookMode::Hmac);
    broken.address = "not an address".into();
    let error = EmailAdapter::new(broken, db.open_tree("email2").unwrap()).err().unwrap();
    assert!(error.to_string().contains("email.address"), "{error}");
}
