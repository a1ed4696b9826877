//! The HTTP interactions endpoint: Discord's Ed25519 signatures (the published vectors, our
//! own signer, and Python's PyNaCl checked by discord-interactions), the age check, PING, and
//! the refusals that must enqueue nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{accepted, start_with, until};
use ed25519_dalek::{Signer, SigningKey};
use frontdesk_channel::{ChannelAdapter, Outbound, OutboundKind, UserAction};
use frontdesk_discord::fake::{FakeUser, SUPPORT_CHANNEL};
use frontdesk_discord::{check_timestamp, verify_signature, SignatureError, Verifier, INTERACTIONS_PATH};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

// RFC 8032 test 1 and the interaction vector from TESTING-PEERS.md.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const VECTOR_TIMESTAMP: &str = "1700000000";
const VECTOR_BODY: &str = r#"{"type":1,"id":"123","application_id":"456","token":"tok","version":1}"#;
const VECTOR_SIGNATURE: &str = "140c8ff9982da22e223709f178b6354d9436e434b230e135964479961ae1fb03e41bbd6605ebb54244988299101dbbffa5cdd5769a5ae86b8a76e3b3d8d0e20e";

fn verifier() -> Verifier {
    Verifier::new(PUBLIC_KEY)
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&hex::decode(SEED).unwrap().try_into().unwrap())
}

fn sign(timestamp: &str, body: &[u8]) -> String {
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    hex::encode(signing_key().sign(&message).to_bytes())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn the_published_vector_verifies_and_any_change_breaks_it() {
    let v = verifier();
    assert_eq!(verify_signature(&v, VECTOR_SIGNATURE, VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes()), Ok(()));
    // Our test signer reproduces the vector (Ed25519 signatures are deterministic).
    assert_eq!(sign(VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes()), VECTOR_SIGNATURE);
    let tampered = VECTOR_BODY.replace("tok", "tik");
    assert_eq!(
        verify_signature(&v, VECTOR_SIGNATURE, VECTOR_TIMESTAMP, tampered.as_bytes()),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify_signature(&v, VECTOR_SIGNATURE, "1700000001", VECTOR_BODY.as_bytes()),
        Err(SignatureError::Invalid)
    );
    assert_eq!(verify_signature(&v, "zz", VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes()), Err(SignatureError::Invalid));
}

#[test]
fn the_age_check_is_separate_and_symmetric() {
    let signed = 1_700_000_000;
    assert_eq!(check_timestamp(VECTOR_TIMESTAMP, signed + 300, 300), Ok(()));
    assert_eq!(check_timestamp(VECTOR_TIMESTAMP, signed - 300, 300), Ok(()));
    assert_eq!(
        check_timestamp(VECTOR_TIMESTAMP, signed + 301, 300),
        Err(SignatureError::Stale { age_secs: 301, max_secs: 300 })
    );
    assert_eq!(
        check_timestamp(VECTOR_TIMESTAMP, signed - 301, 300),
        Err(SignatureError::Stale { age_secs: -301, max_secs: 300 })
    );
    assert_eq!(check_timestamp("yesterday", signed, 300), Err(SignatureError::BadTimestamp));
}

async fn post(router: &axum::Router, timestamp: &str, signature: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
    let mut request = Request::post(INTERACTIONS_PATH).header("content-type", "application/json");
    if let Some(s) = signature {
        request = request.header("X-Signature-Ed25519", s).header("X-Signature-Timestamp", timestamp);
    }
    let response = router.clone().oneshot(request.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub(crate) async fn signed_post(router: &axum::Router, body: &[u8]) -> (StatusCode, Value) {
    let ts = now().to_string();
    post(router, &ts, Some(&sign(&ts, body)), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_accepts_signed_interactions_and_refuses_the_rest_without_enqueueing() {
    let r = start_with(|c| {
        c.public_key = PUBLIC_KEY.into();
        c.interactions_endpoint = true;
    })
    .await;
    let router = r.adapter.router();

    // PING → PONG.
    let ping = br#"{"type":1,"id":"1","application_id":"1150000000000000001","token":"t","version":1}"#;
    assert_eq!(signed_post(&router, ping).await, (StatusCode::OK, json!({"type": 1})));

    // A button press under an answer, properly signed: acknowledged and handed over.
    let question = r.fake.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "refunds?", true).unwrap();
    let m = accepted(&r.inbox, 1).await.remove(0);
    let answer = Outbound::reply_to(
        &m,
        "t5-answer",
        "Within 30 days.",
        OutboundKind::Answer { turn_id: "t5".into(), citations: vec![], confidence: 0.9 },
    );
    r.adapter.deliver(&answer).await.unwrap();
    let posted = r.fake.posted_in(question).remove(0);
    let press = r.fake.button_interaction(&FakeUser::customer(), &posted, &posted.button_ids()[0]);
    let body = serde_json::to_vec(&press).unwrap();

    // Refusals first: none of them may reach the inbox.
    let ts = now().to_string();
    let (status, said) = post(&router, &ts, Some(&sign(&ts, b"something else")), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{said}");
    assert!(said["error"].as_str().unwrap().contains("signature does not match"));
    let (status, _) = post(&router, &ts, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stale = (now() - 600).to_string();
    let (status, said) = post(&router, &stale, Some(&sign(&stale, &body)), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(said["error"].as_str().unwrap().contains("signed 600 s away"), "{said}");
    let (status, said) = signed_post(&router, br#"{"type":3,"id":"77"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(said["error"].as_str().unwrap().starts_with("the interaction is malformed: missing field"), "{said}");
    let (status, said) = signed_post(&router, b"{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(said["error"].as_str().unwrap().contains("not JSON"), "{said}");
    assert_eq!(r.inbox.offered(), 1, "refused requests must enqueue nothing");

    let (status, response) = signed_post(&router, &body).await;
    assert_eq!(status, StatusCode::OK);
    // "Helpful" was stored: the answer shows the rating (an UPDATE_MESSAGE response).
    assert_eq!(response["type"], json!(7), "{response}");
    assert!(response["data"]["content"].as_str().unwrap().contains("found this helpful"), "{response}");
    let got = accepted(&r.inbox, 2).await;
    assert_eq!(got[1].action, Some(UserAction::Feedback { turn_id: "t5".into(), helpful: true }));
    assert_eq!(got[1].conversation, m.conversation);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_run_the_endpoint_answers_ping_but_defers_everything_else() {
    let fake = frontdesk_discord::fake::FakeDiscord::start().await.unwrap();
    let mut config = fake.config();
    config.public_key = PUBLIC_KEY.into();
    config.interactions_endpoint = true;
    let adapter =
        frontdesk_discord::DiscordAdapter::new(config, std::sync::Arc::new(common::RecordingPolicies::default()))
            .unwrap();
    let router = adapter.router();
    let ping = br#"{"type":1,"id":"1","application_id":"1150000000000000001","token":"t","version":1}"#;
    assert_eq!(signed_post(&router, ping).await.0, StatusCode::OK);
    let options = json!([{"name": "question", "type": 3, "value": "hi"}]);
    let ask = fake.command_interaction(&FakeUser::customer(), SUPPORT_CHANNEL, "ask", options);
    let (status, said) = signed_post(&router, &serde_json::to_vec(&ask).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{said}");
    assert!(fake.posted().is_empty(), "nothing was done for a request that could not be handed over");
}

/// Interaction requests signed by Python's PyNaCl (and checked by `discord_interactions`'
/// `verify_key`) are accepted. Needs the Python peer (`deploy/peers/setup.sh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_signed_by_pynacl_are_accepted() {
    let Some(python) = std::env::var_os("PEER_PYTHON") else {
        return frontdesk_channel::skip::skipped(
            "requests_signed_by_pynacl_are_accepted",
            frontdesk_channel::skip::Missing::Peer,
            "PEER_PYTHON is not set (run `eval \"$(deploy/peers/setup.sh)\"`)",
        );
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sign_interaction.py");
    let sign_with_python = |timestamp: &str, body: &[u8]| -> (String, String) {
        use std::io::Write;
        let mut child = std::process::Command::new(&python)
            .arg(&script)
            .arg(SEED)
            .arg(timestamp)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the Python peer could not be started");
        child.stdin.take().unwrap().write_all(body).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "the Python signer failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        (lines.next().unwrap().to_string(), lines.next().unwrap().to_string())
    };

    // The published vector, signed by PyNaCl.
    let (public, signature) = sign_with_python(VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes());
    assert_eq!((public.as_str(), signature.as_str()), (PUBLIC_KEY, VECTOR_SIGNATURE));

    let r = start_with(|c| {
        c.public_key = PUBLIC_KEY.into();
        c.interactions_endpoint = true;
    })
    .await;
    let router = r.adapter.router();
    let ping = br#"{"type":1,"id":"2","application_id":"1150000000000000001","token":"t","version":1}"#;
    let ts = now().to_string();
    let (_, sig) = sign_with_python(&ts, ping);
    assert_eq!(post(&router, &ts, Some(&sig), ping).await, (StatusCode::OK, json!({"type": 1})));

    let options = json!([{"name": "question", "type": 3, "value": "Is there a free trial?"}]);
    let ask = r.fake.command_interaction(&FakeUser::customer(), SUPPORT_CHANNEL, "ask", options);
    let body = serde_json::to_vec(&ask).unwrap();
    let ts = now().to_string();
    let (_, sig) = sign_with_python(&ts, &body);
    let (status, response) = post(&router, &ts, Some(&sig), &body).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["type"], json!(4));
    assert_eq!(response["data"]["flags"], json!(64));
    let got = accepted(&r.inbox, 1).await;
    assert_eq!(got[0].text, "Is there a free trial?");
    assert_eq!(got[0].id.as_str(), ask["id"].as_str().unwrap());
    // A signature made for another body is refused.
    let (status, _) = post(&router, &ts, Some(&sig), ping).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    until("nothing more", || r.inbox.offered() == 1).await;
    r.stop().await;
}
