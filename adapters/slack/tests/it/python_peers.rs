//! The fake and the signature check against Slack's official Python SDK (`slack_sdk`):
//! - every Web API method the adapter calls, called through `slack_sdk.WebClient` against the
//!   fake, decodes as the official client expects;
//! - requests signed by `slack_sdk.signature.SignatureVerifier` are accepted by the adapter.
//!
//! The interpreter comes from `PEER_PYTHON` (`eval "$(deploy/peers/setup.sh)"`); when
//! it is unset the tests say so and skip (CI always sets it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::Method;
use frontdesk_channel::conformance::RecordingInbox;
use frontdesk_channel::skip::{skipped, Missing};
use frontdesk_channel::ChannelAdapter;
use frontdesk_slack::fake::{FakeSlack, Fault, BOT_TOKEN, BOT_USER_ID};
use frontdesk_slack::{SlackAdapter, SlackConfig};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "peer-signing-secret";

fn python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("PEER_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            skipped(test, Missing::Peer, "PEER_PYTHON is not set (run `eval \"$(deploy/peers/setup.sh)\"`)");
            None
        }
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_answers_in_shapes_the_official_client_accepts() {
    let Some(python) = python("the_fake_answers_in_shapes_the_official_client_accepts") else { return };
    let fake = FakeSlack::start().await.unwrap();
    fake.set_usergroup("SAGENTS", &["UAGENT"]);
    fake.enable_oauth("111.222", "client-secret");
    fake.issue_code("code-9", "T9", "Initech", "xoxb-initech", "UBOT9");
    // The script's first call meets a scripted rate limit.
    fake.fail_next("auth.test", Fault::RateLimited { retry_after_secs: 7 });
    let base_url = format!("{}/", fake.api_url());
    let state_script = script("web_api.py");
    let args = [
        base_url.clone(),
        BOT_TOKEN.to_string(),
        "C1".into(),
        "SAGENTS".into(),
        "111.222".into(),
        "client-secret".into(),
        "code-9".into(),
    ];
    let output = tokio::task::spawn_blocking(move || Command::new(python).arg(state_script).args(args).output())
        .await
        .unwrap()
        .expect("the Python peer runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "slack_sdk rejected the fake:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let checked: Vec<&str> = report["checked"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        checked,
        [
            "429",
            "auth.test",
            "chat.postMessage",
            "chat.update",
            "reactions.add",
            "reactions.remove",
            "usergroups.users.list",
            "oauth.v2.access",
        ]
    );
    // The official client's calls were recorded with its token.
    let post = fake.calls_of("chat.postMessage").pop().unwrap();
    assert_eq!(post.token.as_deref(), Some(BOT_TOKEN));
    assert_eq!(post.params["text"], "hello");
}

fn peer_signature(python: &PathBuf, timestamp: &str, body: &[u8]) -> String {
    let mut child = Command::new(python)
        .arg(script("sign.py"))
        .args([SECRET, timestamp])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the Python peer runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_signed_by_the_official_sdk_are_accepted() {
    let Some(python) = python("requests_signed_by_the_official_sdk_are_accepted") else { return };
    let fake = FakeSlack::start().await.unwrap();
    let config = SlackConfig {
        signing_secret: Some(SECRET.into()),
        bot_token: Some(BOT_TOKEN.into()),
        api_url: fake.api_url(),
        ..SlackConfig::default()
    };
    let tree = sled::Config::new().temporary(true).open().unwrap().open_tree("slack").unwrap();
    let adapter = SlackAdapter::new(config, tree).unwrap();
    let inbox = Arc::new(RecordingInbox::default());
    let shutdown = CancellationToken::new();
    {
        let (adapter, inbox, shutdown) = (adapter.clone(), inbox.clone(), shutdown.clone());
        tokio::spawn(async move { adapter.run(inbox, shutdown).await });
    }
    while !adapter.is_receiving() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let router = adapter.router();
    let sender = frontdesk_slack::fake::SlackSender::new(router, "unused");

    let m = fake.customer_message("C1", "UCUSTOMER", &format!("<@{BOT_USER_ID}> signed by the SDK"), None);
    let body = serde_json::to_vec(&fake.event_for(&m, "app_mention", "EvPy")).unwrap();
    let ts = frontdesk_slack::signature::now_secs().to_string();
    let sig = peer_signature(&python, &ts, &body);
    let headers = [("x-slack-request-timestamp", ts.as_str()), ("x-slack-signature", sig.as_str())];
    let a = sender.raw(Method::POST, "/slack/events", body.clone(), "application/json", &headers).await;
    assert_eq!(a.status, 200, "{a:?}");

    // A click, form-encoded as Slack sends it, signed by the SDK.
    let click = serde_json::json!({"type":"block_actions","user":{"id":"UCUSTOMER"},"team":{"id":"T1"},
        "actions":[{"action_id":"frontdesk_request_human","action_ts":"1700000001.1","type":"button",
        "value": serde_json::json!({"c": format!("T1:C1:{}", m.ts), "ch": "C1", "th": m.ts}).to_string()}]});
    let form = url::form_urlencoded::Serializer::new(String::new()).append_pair("payload", &click.to_string()).finish();
    let sig = peer_signature(&python, &ts, form.as_bytes());
    let headers = [("x-slack-request-timestamp", ts.as_str()), ("x-slack-signature", sig.as_str())];
    let a = sender
        .raw(Method::POST, "/slack/interactions", form.into_bytes(), "application/x-www-form-urlencoded", &headers)
        .await;
    assert_eq!(a.status, 200, "{a:?}");

    // The SDK's signature of another body does not pass for this one.
    let other = peer_signature(&python, &ts, b"{}");
    let headers = [("x-slack-request-timestamp", ts.as_str()), ("x-slack-signature", other.as_str())];
    let a = sender.raw(Method::POST, "/slack/events", body, "application/json", &headers).await;
    assert_eq!(a.status, 401);

    let accepted = inbox.accepted();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0].text, "signed by the SDK");
    assert_eq!(accepted[1].action, Some(frontdesk_channel::UserAction::RequestHuman));
    shutdown.cancel();
}
