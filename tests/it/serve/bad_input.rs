//! The bad-input catalogue: requests a hostile or broken client sends to `frontdesk serve`, each
//! with the answer it must get, and afterwards nothing of them in the inbox.
//!
//! Requests are written byte by byte over TCP, so a test can declare a body it never sends, put a
//! bare CR in a header or stream a chunked body, which an HTTP client library would not allow.

use super::process::{free_port, serve_binary, store_dump, toml_str};
use frontdesk_discord::fake::{FakeDiscord, APP_ID, PUBLIC_KEY, SUPPORT_ROLE};
use frontdesk_slack::fake::{FakeSlack, BOT_TOKEN, BOT_USER_ID};
use frontdesk_slack::signature::{now_secs, sign};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "bad-input-signing-secret";
const WEBHOOK_SECRET: &str = "bad-input-webhook-secret";
const CHANNEL: &str = "CBADINPUT";

/// Sends `head` (request line and headers, without the blank line), then `body`, and reads the
/// answer's status and body. The connection is closed by the server or after 30 s.
async fn raw(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = format!("{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    // The server may answer and close before reading all of it; that is the point of some cases.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A POST of `body` to `path` with Slack's signature headers made at `ts` with `secret`.
fn slack_head(path: &str, content_type: &str, len: usize, ts: i64, secret: &str, body: &[u8]) -> String {
    let ts = ts.to_string();
    let sig = sign(secret.as_bytes(), &ts, body);
    format!(
        "POST {path} HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {sig}"
    )
}

/// One entry of the catalogue: what was sent, the status it must get, and words its message
/// must contain (empty: any message).
struct Case {
    name: &'static str,
    want: u16,
    says: &'static str,
    got: (u16, String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_request_gets_its_answer_and_nothing_is_enqueued() {
    let model = frontdesk::testing::ensure_model(&frontdesk::models::MINILM).expect("the embedding model");
    let models = model.parent().unwrap().to_path_buf();
    let slack = FakeSlack::start().await.unwrap();
    let discord = FakeDiscord::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("frontdesk.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = {data}

[server]
listen = "127.0.0.1:{port}"

[slack]
mode = "events"
signing_secret = "{SECRET}"
bot_token = "{BOT_TOKEN}"
api_url = {slack_api}

[slack.agents.T1]
user_ids = ["UAGENT"]

[discord]
bot_token = {discord_token}
application_id = "{APP_ID}"
support_role_id = "{SUPPORT_ROLE}"
api_base = {discord_api}
rate_limiter = false
interactions_endpoint = true
public_key = "{PUBLIC_KEY}"

[email]
address = "support@example.com"

[email.imap]
host = ""

[email.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"

[email.webhook]
secret = "{WEBHOOK_SECRET}"
"#,
            data = toml_str(&data.to_string_lossy()),
            slack_api = toml_str(&slack.api_url()),
            discord_token = toml_str(frontdesk_discord::fake::TOKEN),
            discord_api = toml_str(&discord.api_base()),
            smtp_port = free_port(),
        ),
    )
    .unwrap();
    let serving = serve_binary(&config, &models, &[], &dir.path().join("serve.log"), &base).await;

    let question =
        slack.customer_message(CHANNEL, "UCUSTOMER", &format!("<@{BOT_USER_ID}> How do refunds work?"), None);
    let event = serde_json::to_vec(&slack.event_for(&question, "app_mention", "EvBadInput1")).unwrap();
    let now = now_secs();
    let mut cases = Vec::new();
    let mut case = |name, want, says, got| cases.push(Case { name, want, says, got });

    // Slack events.
    let head = slack_head("/slack/events", "application/json", 50_000_000, now, SECRET, b"");
    case("slack: a declared 50 MB body, never sent", 413, "", raw(port, &head, b"").await);
    let chunk = vec![b'a'; 64 * 1024];
    let mut chunked = Vec::new();
    for _ in 0..64 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let ts = now.to_string();
    let head = format!(
        "POST /slack/events HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: v0=00"
    );
    case("slack: a 4 MB chunked body", 413, "", raw(port, &head, &chunked).await);
    let bytes: &[u8] = b"{\"type\":\"event_callback\",\"event\":{\"text\":\"\xff\xfe\"}}";
    let head = slack_head("/slack/events", "application/json", bytes.len(), now, SECRET, bytes);
    case("slack: signed, invalid UTF-8", 400, "", raw(port, &head, bytes).await);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let head = slack_head("/slack/events", "application/json", deep.len(), now, SECRET, &deep);
    case("slack: signed, JSON nested 100,000 deep", 400, "", raw(port, &head, &deep).await);
    let head = slack_head("/slack/events", "application/json", event.len(), now - 3600, SECRET, &event);
    case("slack: signed an hour ago", 401, "", raw(port, &head, &event).await);
    let head = slack_head("/slack/events", "application/json", event.len(), now + 3600, SECRET, &event);
    case("slack: signed an hour from now", 401, "", raw(port, &head, &event).await);
    let head = slack_head("/slack/events", "application/json", event.len(), now, "another-secret", &event);
    case("slack: signed with another secret", 401, "", raw(port, &head, &event).await);
    let head =
        format!("POST /slack/events HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}", event.len());
    case("slack: no signature", 401, "", raw(port, &head, &event).await);
    let head = format!(
        "{}\r\nX-Injected: a\rb",
        slack_head("/slack/events", "application/json", event.len(), now, SECRET, &event)
    );
    case("slack: a header with a bare CR", 400, "", raw(port, &head, &event).await);
    let form = format!(
        "payload={}",
        url_escape(
            r#"{"type":"block_actions","team":{"id":"T1"},"user":{"id":"UCUSTOMER"},"channel":{"id":"CBADINPUT"},"container":{"type":"message","message_ts":"1.2","channel_id":"CBADINPUT"},"actions":[{"action_id":"frontdesk_claim","action_ts":"3.4","value":"{not a frontdesk value"}]}"#
        )
    );
    let head = slack_head(
        "/slack/interactions",
        "application/x-www-form-urlencoded",
        form.len(),
        now,
        SECRET,
        form.as_bytes(),
    );
    case(
        "slack: a signed click with a forged button value",
        400,
        "button value",
        raw(port, &head, form.as_bytes()).await,
    );

    // Discord interactions.
    let ping = br#"{"type":1}"#;
    let head = format!(
        "POST /discord/interactions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         X-Signature-Ed25519: {}\r\nX-Signature-Timestamp: {now}",
        ping.len(),
        "00".repeat(64)
    );
    case("discord: a forged signature", 401, "", raw(port, &head, ping).await);
    let head = format!(
        "POST /discord/interactions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\
         X-Signature-Ed25519: {}\r\nX-Signature-Timestamp: {now}",
        "00".repeat(64)
    );
    case("discord: a declared 50 MB body, never sent", 413, "", raw(port, &head, b"").await);

    // The inbound-mail webhook.
    let mail = b"From: customer@example.net\r\nTo: support@example.com\r\nSubject: Refunds\r\nMessage-ID: <bad-input@example.net>\r\n\r\nHow do refunds work?\r\n";
    let head = format!(
        "POST /email/inbound HTTP/1.1\r\nContent-Type: message/rfc822\r\nContent-Length: {}\r\nX-Frontdesk-Signature: sha256={}",
        mail.len(),
        "00".repeat(32)
    );
    case("email: a forged webhook signature", 401, "", raw(port, &head, mail).await);
    let head = "POST /email/inbound HTTP/1.1\r\nContent-Type: message/rfc822\r\nContent-Length: 500000000".to_string();
    case("email: a declared 500 MB body, never sent", 413, "", raw(port, &head, b"").await);

    // The one good request, sent twice (a replay of a valid signature within its window is the
    // same event again): accepted, and stored once.
    let head = slack_head("/slack/events", "application/json", event.len(), now, SECRET, &event);
    case("slack: the good event", 200, "", raw(port, &head, &event).await);
    case("slack: the good event replayed", 200, "", raw(port, &head, &event).await);

    let mut wrong = Vec::new();
    for c in &cases {
        if c.got.0 != c.want || !c.got.1.contains(c.says) {
            wrong.push(format!("{}: want {} {:?}, got {} {:?}", c.name, c.want, c.says, c.got.0, c.got.1));
        }
        // Every refusal says what was wrong, except those of HTTP itself (a header with a bare
        // CR is refused by the parser before any handler sees the request).
        if c.want != 200 && !c.name.contains("bare CR") && c.got.1.trim().is_empty() {
            wrong.push(format!("{}: {} without a message", c.name, c.got.0));
        }
    }
    let log = serving.stop();
    let (stored, _) = store_dump(&data);
    let accepted: Vec<&str> = stored.lines().filter(|l| l.starts_with("inbox_dedup\t")).collect();
    assert!(wrong.is_empty(), "{}\n\nlog:\n{log}", wrong.join("\n"));
    assert_eq!(accepted.len(), 1, "only the good event is accepted, once: {accepted:?}");
}

/// Percent-encodes a form value.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
