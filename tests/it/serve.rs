#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `frontdesk serve` put together: HTTP endpoints, an adapter receiving over HTTP, the durable
//! inbox, the engine and delivery back through the adapter.

mod bad_input;
mod process;
mod secrets;

use crate::support::engine_harness::harness;
use async_trait::async_trait;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use frontdesk::channel::{
    AdapterError, Author, AuthorId, ChannelAdapter, ChannelId, ConversationKey, Delivered, EventId, Health, Inbound,
    InboxSink, Outbound, OutboundKind, Source,
};
use frontdesk::config::Config;
use frontdesk::ratelimit::RateLimitConfig;
use frontdesk::serve::http::Routes;
use frontdesk::serve::{ChannelSet, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// An adapter whose "platform" is a JSON endpoint of the server itself.
#[derive(Default)]
struct LoopAdapter {
    inbox: OnceLock<Arc<dyn InboxSink>>,
    delivered: Mutex<Vec<Outbound>>,
    working: Mutex<Vec<(String, bool)>>,
    healthy: AtomicBool,
}

#[derive(serde::Deserialize)]
struct Post {
    id: String,
    text: String,
}

async fn receive(State(adapter): State<Arc<LoopAdapter>>, Json(post): Json<Post>) -> (axum::http::StatusCode, String) {
    let Some(inbox) = adapter.inbox.get() else {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not running".into());
    };
    let message = Inbound {
        id: EventId::new(post.id.clone()).unwrap(),
        source: Source::Slack,
        workspace: "T1".parse().unwrap(),
        channel: ChannelId::new("C1").unwrap(),
        conversation: ConversationKey::new(format!("thread-{}", post.id)).unwrap(),
        author: Author { id: AuthorId::new("U1").unwrap(), display_name: None, is_bot: false, is_agent: false },
        text: post.text,
        attachments: vec![],
        received_at_ms: 1,
        addressed_to_bot: true,
        top_level: true,
        reply_context: serde_json::json!({ "thread": post.id }),
        action: None,
        unverified_sender: false,
    };
    match inbox.accept(message).await {
        Ok(fresh) => (axum::http::StatusCode::OK, format!("{{\"accepted\":{fresh}}}")),
        Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[async_trait]
impl ChannelAdapter for LoopAdapter {
    fn name(&self) -> &'static str {
        "loop"
    }
    async fn run(&self, inbox: Arc<dyn InboxSink>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        let _ = self.inbox.set(inbox);
        shutdown.cancelled().await;
        Ok(())
    }
    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
        self.delivered.lock().unwrap().push(message.clone());
        Ok(Delivered { platform_message_id: Some(message.id.clone()) })
    }
    async fn healthcheck(&self) -> Health {
        let ok = self.healthy.load(Ordering::SeqCst);
        Health {
            ok,
            detail: if ok {
                "reachable".into()
            } else {
                "imap.example.com refused the login of bot@example.com".into()
            },
        }
    }
    async fn working(&self, message: &Inbound, busy: bool) {
        self.working.lock().unwrap().push((message.id.to_string(), busy));
    }
}

struct Running {
    base: String,
    addr: std::net::SocketAddr,
    adapter: Arc<LoopAdapter>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), frontdesk::serve::ServeError>>,
    _harness_dir: tempfile::TempDir,
}

impl Running {
    async fn stop(self) {
        stop_serving(self.shutdown, self.task).await;
    }
}

type ServeTask = tokio::task::JoinHandle<Result<(), frontdesk::serve::ServeError>>;

/// Stops a server and waits for it to end.
async fn stop_serving(shutdown: CancellationToken, task: ServeTask) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), task).await.expect("serve stops on shutdown").unwrap().unwrap();
}

/// Serves the channels a configuration file sets up, with their real routes. Keep the data
/// directory until the server is stopped.
async fn start_channels(text: &str) -> (std::net::SocketAddr, CancellationToken, ServeTask, tempfile::TempDir) {
    let h = harness(RateLimitConfig::default()).await;
    let config = frontdesk::serve::registry::parse_config(text, &[], "test").unwrap();
    let engine = Arc::new(h.engine);
    let built = frontdesk::serve::registry::build(&config, &engine).unwrap();
    let server = Server::bind(&config, engine, built.set.clone(), built.routes.clone()).await.unwrap();
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    (addr, shutdown, task, h._dir)
}

/// The admin token of the tests that set one.
const ADMIN_TOKEN: &str = "4f1c0e9a7b3d2e8f6a5c4b3a2d1e0f9a";

/// The largest body `/loop/upload` takes: more than the server's default.
const UPLOAD_LIMIT: usize = 1024 * 1024;

async fn start(health_cache_secs: u64) -> Running {
    start_with(|server| server.health_cache_secs = health_cache_secs).await
}

/// Serves the loop adapter with `[server]` as `configure` leaves it.
async fn start_with(configure: impl FnOnce(&mut frontdesk::config::ServerConfig)) -> Running {
    let h = harness(RateLimitConfig::default()).await;
    let adapter = Arc::new(LoopAdapter::default());
    adapter.healthy.store(true, Ordering::SeqCst);
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    configure(&mut config.server);
    let router = Router::new()
        .route("/loop/messages", post(receive))
        .route("/loop/echo", post(echo))
        .route("/loop/upload", post(echo))
        .route("/loop/stall", post(stall))
        .with_state(Arc::clone(&adapter));
    let routes = Routes::new().merge(router).body_limit("/loop/upload", UPLOAD_LIMIT);
    let channels = ChannelSet::new().with(Source::Slack, adapter.clone());
    let server = Server::bind(&config, Arc::new(h.engine), channels, routes).await.unwrap();
    let addr = server.local_addr();
    let base = format!("http://{addr}");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    Running { base, addr, adapter, shutdown, task, _harness_dir: h._dir }
}

/// Answers with the length of the body it was given.
async fn echo(body: axum::body::Bytes) -> String {
    body.len().to_string()
}

/// Never answers.
async fn stall() -> &'static str {
    std::future::pending::<()>().await;
    "never"
}

/// Reads from `stream` until what was read ends with `end`.
async fn read_until(stream: &mut tokio::net::TcpStream, end: &[u8]) -> String {
    use tokio::io::AsyncReadExt;
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    while !read.ends_with(end) {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&read));
        read.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&read).into_owned()
}

/// Sends `head` (and then each of `body`) over a fresh connection while reading the answer, and
/// returns everything the server sent before it closed the connection. Writes the server no
/// longer reads are not an error: the answer is what counts.
async fn exchange(addr: std::net::SocketAddr, head: String, body: Vec<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        for part in body {
            write.write_all(&part).await?;
        }
        write.flush().await?;
        // Keeps the sending side open: the server decides when the exchange ends.
        std::future::pending::<()>().await;
        Ok::<_, std::io::Error>(write)
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writer.abort();
    read.expect("the server neither answered nor closed the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

/// One chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

async fn wait_until(mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ready()
}

async fn post_message(client: &reqwest::Client, base: &str, id: &str, text: &str) -> (u16, String) {
    // The adapter registers its inbox when `run` starts, a moment after the listener is up.
    for _ in 0..100 {
        let r = client
            .post(format!("{base}/loop/messages"))
            .json(&serde_json::json!({ "id": id, "text": text }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        if status != 503 {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the adapter never started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_over_http_gets_exactly_one_reply_through_its_adapter() {
    let r = start(30).await;
    let client = reqwest::Client::new();

    let (status, body) = post_message(&client, &r.base, "m1", "How long is the free trial?").await;
    assert_eq!((status, body.as_str()), (200, "{\"accepted\":true}"));
    // The platform retries the same event: acknowledged, not answered twice.
    let (status, body) = post_message(&client, &r.base, "m1", "How long is the free trial?").await;
    assert_eq!((status, body.as_str()), (200, "{\"accepted\":false}"));

    assert!(wait_until(|| !r.adapter.delivered.lock().unwrap().is_empty()).await, "no reply was delivered");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = r.adapter.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(matches!(delivered[0].kind, OutboundKind::Answer { .. }), "{:?}", delivered[0].kind);
    assert!(delivered[0].text.contains("14-day"), "{}", delivered[0].text);
    assert_eq!(delivered[0].reply_context, serde_json::json!({ "thread": "m1" }));
    // The adapter was told when the engine started and finished working on the message.
    assert!(wait_until(|| r.adapter.working.lock().unwrap().len() == 2).await);
    assert_eq!(*r.adapter.working.lock().unwrap(), vec![("m1".to_string(), true), ("m1".to_string(), false)]);

    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_report_what_is_wrong() {
    let r = start_with(|server| {
        server.health_cache_secs = 0;
        server.admin_token = Some(ADMIN_TOKEN.to_string().into());
    })
    .await;
    let client = reqwest::Client::new();
    let health = client.get(format!("{}/healthz", r.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // Wait for the worker to start, then: ready, with every check named, nothing more.
    let mut text = String::new();
    for _ in 0..100 {
        let ready = client.get(format!("{}/readyz", r.base)).send().await.unwrap();
        let status = ready.status();
        text = ready.text().await.unwrap();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "ready": true, "checks": [
            { "name": "knowledge", "ok": true },
            { "name": "inbox", "ok": true },
            { "name": "loop", "ok": true },
        ]})
    );
    assert!(!text.contains("T1"), "the public /readyz names a workspace: {text}");

    // The admin sees what each check found.
    let ready = client.get(format!("{}/readyz", r.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(body["checks"][0]["detail"].as_str().unwrap().contains("T1"), "{body}");
    assert_eq!(body["checks"][2]["detail"], "reachable");

    // A channel whose credentials stop working makes the server unready, and says which; the
    // host and login in its health message are for the admin only.
    r.adapter.healthy.store(false, Ordering::SeqCst);
    let ready = client.get(format!("{}/readyz", r.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"][2], serde_json::json!({ "name": "loop", "ok": false }));
    assert!(!text.contains("example.com") && !text.contains("detail"), "{text}");
    let ready = client.get(format!("{}/readyz", r.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"][2]["detail"], "imap.example.com refused the login of bot@example.com");

    // A wrong token gets nothing but the refusal.
    let wrong = format!("{}x", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    let refused = client.get(format!("{}/readyz", r.base)).bearer_auth(wrong).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let text = refused.text().await.unwrap();
    assert!(text.contains("the admin token does not match") && !text.contains("example.com"), "{text}");

    let missing = client.get(format!("{}/slack/evnts", r.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("/slack/events"));

    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_details_need_an_admin_token_the_server_has() {
    let r = start(0).await;
    let client = reqwest::Client::new();
    let refused = client.get(format!("{}/readyz", r.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("no admin token (server.admin_token)"));
    r.stop().await;

    let text = "[server]\nadmin_token = \"too-short\"\n";
    let error = Config::from_toml_with_env(text, &[], "test").unwrap_err().to_string();
    assert!(error.contains("server.admin_token: must be at least 32 characters"), "{error}");
    assert!(!error.contains("too-short"), "the token was printed: {error}");
    let env = [("FRONTDESK_SERVER__ADMIN_TOKEN".to_string(), ADMIN_TOKEN.to_string())];
    let config = Config::from_toml_with_env("", &env, "test").unwrap();
    assert!(config.server.admin_token.is_some());
    assert!(!format!("{config:?}").contains(ADMIN_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_over_the_limit_is_refused_without_being_read() {
    let r = start_with(|_| {}).await;
    // Only the head is sent: the server must answer without waiting for ten megabytes.
    let head = "POST /loop/echo HTTP/1.1\r\nhost: test\r\ncontent-length: 10000000\r\n\r\n".to_string();
    let answer = exchange(r.addr, head, vec![]).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("the request body is 10000000 bytes; /loop/echo accepts at most 262144 bytes"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    // A route that declared a larger limit is held to that one.
    let head = "POST /loop/upload HTTP/1.1\r\nhost: test\r\ncontent-length: 1048577\r\n\r\n".to_string();
    let answer = exchange(r.addr, head, vec![]).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("/loop/upload accepts at most 1048576 bytes"), "{answer}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_is_cut_off_at_the_limit() {
    let r = start_with(|_| {}).await;
    let head = "POST /loop/echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n";
    // Five chunks of 64 KiB: the fifth goes over 256 KiB. No final chunk is ever sent.
    let piece = vec![b'a'; 64 * 1024];
    let answer = exchange(r.addr, head.to_string(), (0..5).map(|_| chunk(&piece)).collect()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("the request body is larger than the 262144 bytes /loop/echo accepts"), "{answer}");

    // Within the limit, a chunked body reaches the handler whole.
    let mut body: Vec<Vec<u8>> = (0..4).map(|_| chunk(&piece)).collect();
    body.push(b"0\r\n\r\n".to_vec());
    let head = "POST /loop/echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    let answer = exchange(r.addr, head.to_string(), body).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n262144"), "{answer}");

    // A route that declared a larger limit takes a body over the server's default.
    let client = reqwest::Client::new();
    let reply = client.post(format!("{}/loop/upload", r.base)).body(vec![b'b'; 600 * 1024]).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.unwrap(), (600 * 1024).to_string());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_webhook_takes_larger_bodies_than_the_chat_routes() {
    let text = r#"
[server]
listen = "127.0.0.1:0"

[email]
address = "support@example.com"
smtp = { host = "127.0.0.1", port = 1, security = "none" }
webhook = { secret = "a-webhook-secret-of-some-length" }
"#;
    let (addr, shutdown, task, _dir) = start_channels(text).await;
    let base = format!("http://{addr}");

    // Half a megabyte is read, and refused for its signature, not for its size.
    let client = reqwest::Client::new();
    let reply = client
        .post(format!("{base}/email/inbound"))
        .header("x-frontdesk-signature", "sha256=00")
        .body(vec![b'm'; 512 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401, "{:?}", reply.text().await);

    stop_serving(shutdown, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_webhook_when_off_answers_without_reading_the_body() {
    let text = r#"
[server]
listen = "127.0.0.1:0"

[email]
address = "support@example.com"
smtp = { host = "127.0.0.1", port = 1, security = "none" }
imap = { host = "127.0.0.1", port = 1, security = "none", password = "an imap password" }
"#;
    let (addr, shutdown, task, _dir) = start_channels(text).await;

    // Only the head is sent: the answer comes without waiting for the body, and says why.
    let head = "POST /email/inbound HTTP/1.1\r\nhost: test\r\ncontent-length: 500000000\r\n\r\n".to_string();
    let answer = exchange(addr, head, vec![]).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("the email webhook is not configured: set email.webhook.secret"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");

    stop_serving(shutdown, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_or_idles_is_disconnected() {
    let r = start_with(|server| {
        server.header_timeout_secs = 1;
        server.idle_timeout_secs = 2;
    })
    .await;
    // Half a request head, then nothing: closed without an answer.
    let answer = exchange(r.addr, "POST /loop/echo HTTP/1.1\r\nhost: test\r\ncontent-le".into(), vec![]).await;
    assert_eq!(answer, "");
    // A connection that never sends a byte.
    let answer = exchange(r.addr, String::new(), vec![]).await;
    assert_eq!(answer, "");
    // A kept-alive connection that sends no further request after its answer.
    let answer = exchange(r.addr, "GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n".into(), vec![]).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"), "{answer}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_off_and_a_slow_handler_answered_for() {
    let r = start_with(|server| {
        server.body_timeout_secs = 1;
        server.request_timeout_secs = 1;
    })
    .await;
    // Ten of the hundred bytes announced, then nothing.
    let head = "POST /loop/echo HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n".to_string();
    let answer = exchange(r.addr, head, vec![b"ten bytes.".to_vec()]).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("the request body did not arrive in full within 1 seconds"), "{answer}");

    let client = reqwest::Client::new();
    let reply =
        tokio::time::timeout(Duration::from_secs(20), client.post(format!("{}/loop/stall", r.base)).body("x").send())
            .await
            .expect("a handler that never finishes is answered for")
            .unwrap();
    assert_eq!(reply.status(), 503);
    assert!(reply.text().await.unwrap().contains("did not answer this request within 1 seconds"));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let r = start_with(|server| server.max_connections = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
        let answer = read_until(&mut c, b"ok\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(c);
    }
    // Both slots are taken by kept-alive connections: a third one is not served...
    let mut third = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "a connection over the cap was served: {early:?}");
    // ...until one of them closes.
    drop(held.pop());
    let answer = read_until(&mut third, b"ok\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    r.stop().await;
}

#[test]
fn the_server_limits_are_validated() {
    let text = "[server]\nmax_body_bytes = 10\nmax_connections = 0\nheader_timeout_secs = 0\n\
                body_timeout_secs = 100000\nidle_timeout_secs = 0\nrequest_timeout_secs = 0\n";
    let error = Config::from_toml_with_env(text, &[], "test").unwrap_err().to_string();
    for key in [
        "server.max_body_bytes: must be between 1024 and 16777216, not 10",
        "server.max_connections: must be between 1 and 16384, not 0",
        "server.header_timeout_secs: must be between 1 and 300 seconds, not 0",
        "server.body_timeout_secs: must be between 1 and 600 seconds, not 100000",
        "server.idle_timeout_secs: must be between 1 and 3600 seconds, not 0",
        "server.request_timeout_secs: must be between 1 and 600 seconds, not 0",
    ] {
        assert!(error.contains(key), "{key} missing from: {error}");
    }
    let server = Config::default().server;
    assert_eq!(server.max_body_bytes, 256 * 1024);
    assert_eq!(
        (
            server.max_connections,
            server.header_timeout_secs,
            server.body_timeout_secs,
            server.idle_timeout_secs,
            server.request_timeout_secs
        ),
        (256, 10, 30, 60, 30)
    );
}

#[tokio::test]
async fn an_overlong_policy_value_from_a_chat_command_is_refused() {
    use frontdesk::channel::{PolicyConsole, WorkspaceId};
    use frontdesk::serve::console::{StorePolicyConsole, MAX_POLICY_VALUE_CHARS};
    let store = frontdesk::store::Store::temporary().unwrap();
    let console = StorePolicyConsole::new(frontdesk::policy::PolicyStore::open(&store).unwrap());
    let (ws, ch): (WorkspaceId, ChannelId) = ("G1".parse().unwrap(), "C1".parse().unwrap());

    let long = "p".repeat(MAX_POLICY_VALUE_CHARS + 1);
    let err = console.set(&ws, &ch, "products", &long).await.unwrap_err();
    assert_eq!(err, format!("the value of products is {} characters long; a policy value is at most 500", long.len()));
    // Nothing was stored.
    assert!(console.show(&ws, &ch).await.unwrap().contains("products = []"));
    // The longest value taken is stored.
    let longest = "p".repeat(MAX_POLICY_VALUE_CHARS);
    assert!(console.set(&ws, &ch, "products", &longest).await.unwrap().contains(&longest));
    // An unknown key is echoed back only in part.
    let err = console.set(&ws, &ch, &"k".repeat(10_000), "true").await.unwrap_err();
    assert!(err.starts_with(&format!("unknown policy key \"{}\"...;", "k".repeat(40))), "{err}");
    assert!(err.len() < 400, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_is_echoed_only_in_part() {
    let r = start_with(|_| {}).await;
    let path = format!("/{}", "x".repeat(20_000));
    let missing = reqwest::Client::new().get(format!("{}{path}", r.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let text = missing.text().await.unwrap();
    assert!(text.starts_with(&format!("no endpoint at {}...:", &path[..100])), "{text}");
    assert!(text.len() < 400, "{} characters", text.len());
    r.stop().await;
}
