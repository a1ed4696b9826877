//! Test doubles for Slack, for this crate's tests and frontdesk's end-to-end tests.
//!
//! - [`FakeSlack`]: a loopback Web API (axum on 127.0.0.1:0) that answers the methods the
//!   adapter calls with the response shapes Slack documents, keeps the channels' messages and
//!   reactions (and the messages shown to one person, [`Ephemeral`]), records every call, and
//!   fails on demand ([`Fault`]).
//! - [`SlackSender`]: posts events and button clicks to the adapter's router signed as Slack
//!   signs them, with retry headers when asked.
//! - [`Driver`]: the conformance kit's `PlatformDriver` over both.
//! - Socket Mode: `apps.connections.open` (with [`APP_TOKEN`]) hands out a `ws://` URL of the
//!   fake's WebSocket server, which greets each connection with `hello`, pushes the envelopes
//!   a test gives it ([`FakeSlack::push_socket`]), records every acknowledgement, and sends
//!   `disconnect` on demand, as Slack does when it rotates connections.

use crate::signature;
use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use base64::Engine as _;
use frontdesk_channel::conformance::PlatformDriver;
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// One Web API call as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// Query, form and JSON parameters merged into one object.
    pub params: Value,
    /// The bearer token (or `token` parameter), if any.
    pub token: Option<String>,
}

/// A message in the fake's channels (customers' and the bot's).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub user: String,
    pub text: String,
    pub blocks: Option<Value>,
    /// Posted through the Web API by a bot token.
    pub from_bot: bool,
    /// How many times `chat.update` changed it.
    pub updates: u32,
}

impl FakeMessage {
    /// The `value` of the button with `action_id`, if the message has one.
    pub fn button_value(&self, action_id: &str) -> Option<String> {
        self.blocks.as_ref()?.as_array()?.iter().find_map(|b| {
            b.get("elements")?
                .as_array()?
                .iter()
                .find(|e| e.get("action_id").and_then(Value::as_str) == Some(action_id))
                .and_then(|e| e.get("value")?.as_str().map(str::to_string))
        })
    }

    /// Every text of the message: its fallback text and its blocks' texts.
    pub fn all_text(&self) -> String {
        let mut out = self.text.clone();
        if let Some(blocks) = &self.blocks {
            collect_text(blocks, &mut out);
        }
        out
    }
}

fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(t)) = m.get("text") {
                out.push('\n');
                out.push_str(t);
            }
            for (k, x) in m {
                if k != "text" || !x.is_string() {
                    collect_text(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_text(x, out)),
        _ => {}
    }
}

/// A failure the next call of a method answers with.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 200 with `{"ok": false, "error": code}`.
    Error(String),
    /// This HTTP status with a plain-text body.
    Status(u16),
    /// No answer until [`FakeSlack::release_hung_calls`] (then the usual one), as when Slack
    /// is slow or a network path is broken.
    Hang,
}

/// A workspace the fake knows, by its bot token.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub team_id: String,
    pub team_name: String,
    pub bot_user_id: String,
    pub bot_id: String,
}

/// A code an OAuth install can exchange.
#[derive(Debug, Clone)]
struct Grant {
    workspace: Workspace,
    token: String,
}

/// A message shown to one person only (`chat.postEphemeral`).
#[derive(Debug, Clone, PartialEq)]
pub struct Ephemeral {
    pub channel: String,
    pub user: String,
    pub text: String,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    messages: Vec<FakeMessage>,
    ephemerals: Vec<Ephemeral>,
    reactions: BTreeSet<(String, String, String)>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// Wakes calls held by [`Fault::Hang`].
    release: Arc<tokio::sync::Notify>,
    hung: usize,
    workspaces: HashMap<String, Workspace>,
    usergroups: HashMap<String, Vec<String>>,
    oauth_client: Option<(String, String)>,
    codes: HashMap<String, Grant>,
    clock: u64,
    /// Socket Mode: the WebSocket server's address, every connection's sender (in the order
    /// they opened; `None` once closed), and the envelope ids acknowledged.
    socket_addr: Option<SocketAddr>,
    sockets: Vec<Option<tokio::sync::mpsc::UnboundedSender<String>>>,
    acks: Vec<String>,
}

impl FakeState {
    fn next_ts(&mut self) -> String {
        self.clock += 1;
        format!("1700000000.{:06}", self.clock)
    }
}

/// The loopback Slack Web API.
pub struct FakeSlack {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    stop: CancellationToken,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The default workspace's bot token.
pub const BOT_TOKEN: &str = "xoxb-fake-T1";
pub const TEAM_ID: &str = "T1";
pub const BOT_USER_ID: &str = "UBOT";
/// The app-level token `apps.connections.open` accepts.
pub const APP_TOKEN: &str = "xapp-1-AFRONTDESK-fake";

impl FakeSlack {
    /// Starts the fake with one workspace (`T1`, bot user `UBOT`, token [`BOT_TOKEN`]).
    pub async fn start() -> std::io::Result<FakeSlack> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = Router::new().route("/api/{method}", any(api)).with_state(Arc::clone(&state));
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await;
        });
        let sockets = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        state.lock().unwrap_or_else(|p| p.into_inner()).socket_addr = Some(sockets.local_addr()?);
        tokio::spawn(serve_sockets(sockets, Arc::clone(&state), stop.clone()));
        let fake = FakeSlack { addr, state, stop };
        fake.add_workspace(BOT_TOKEN, TEAM_ID, "Acme", BOT_USER_ID);
        Ok(fake)
    }

    /// How many Socket Mode connections were opened so far, and how many are open now.
    pub fn socket_connections(&self) -> (usize, usize) {
        let s = self.lock();
        (s.sockets.len(), s.sockets.iter().filter(|c| c.as_ref().is_some_and(|c| !c.is_closed())).count())
    }

    /// Sends `frame` over the most recently opened Socket Mode connection that is still open.
    pub fn push_socket(&self, frame: &Value) -> Result<(), String> {
        let s = self.lock();
        let open = s.sockets.iter().rev().flatten().find(|c| !c.is_closed()).ok_or("no open socket connection")?;
        open.send(frame.to_string()).map_err(|_| "the connection just closed".to_string())
    }

    /// Sends `disconnect` on every open connection and closes them, as Slack does before it
    /// rotates its servers; the client is expected to open new ones.
    pub fn disconnect_sockets(&self) {
        let mut s = self.lock();
        for slot in s.sockets.iter_mut() {
            if let Some(c) = slot.take() {
                let _ = c.send(
                    json!({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "fake"}})
                        .to_string(),
                );
            }
        }
    }

    /// The envelope ids acknowledged so far, in order (repeats included).
    pub fn acks(&self) -> Vec<String> {
        self.lock().acks.clone()
    }

    /// The Socket Mode envelope of an Events API event (from [`FakeSlack::event_for`]).
    pub fn socket_event(&self, event: &Value, envelope_id: &str, retry_attempt: u32) -> Value {
        json!({"type": "events_api", "envelope_id": envelope_id, "payload": event,
            "accepts_response_payload": false, "retry_attempt": retry_attempt,
            "retry_reason": if retry_attempt > 0 { "timeout" } else { "" }})
    }

    /// The Socket Mode envelope of a click (from [`FakeSlack::click`]).
    pub fn socket_click(&self, click: &Value, envelope_id: &str) -> Value {
        json!({"type": "interactive", "envelope_id": envelope_id, "payload": click, "accepts_response_payload": false})
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `http://127.0.0.1:P/api`: the adapter's `api_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn add_workspace(&self, token: &str, team_id: &str, team_name: &str, bot_user_id: &str) {
        let ws = Workspace {
            team_id: team_id.into(),
            team_name: team_name.into(),
            bot_user_id: bot_user_id.into(),
            bot_id: format!("B{bot_user_id}"),
        };
        self.lock().workspaces.insert(token.into(), ws);
    }

    pub fn set_usergroup(&self, group: &str, users: &[&str]) {
        self.lock().usergroups.insert(group.into(), users.iter().map(|u| u.to_string()).collect());
    }

    /// Accepts OAuth exchanges from this client.
    pub fn enable_oauth(&self, client_id: &str, client_secret: &str) {
        self.lock().oauth_client = Some((client_id.into(), client_secret.into()));
    }

    /// Makes `code` exchangeable once for a bot token of a new workspace.
    pub fn issue_code(&self, code: &str, team_id: &str, team_name: &str, token: &str, bot_user_id: &str) {
        let workspace = Workspace {
            team_id: team_id.into(),
            team_name: team_name.into(),
            bot_user_id: bot_user_id.into(),
            bot_id: format!("B{bot_user_id}"),
        };
        self.lock().codes.insert(code.into(), Grant { workspace, token: token.into() });
    }

    /// The next call of `method` fails with `fault` (faults queue up in order).
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.lock().faults.entry(method.into()).or_default().push_back(fault);
    }

    /// How many calls are being held by [`Fault::Hang`] now.
    pub fn hung_calls(&self) -> usize {
        self.lock().hung
    }

    /// Lets every call held by [`Fault::Hang`] go on.
    pub fn release_hung_calls(&self) {
        self.lock().release.notify_waiters();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.lock().calls.iter().filter(|c| c.method == method).cloned().collect()
    }

    pub fn messages(&self) -> Vec<FakeMessage> {
        self.lock().messages.clone()
    }

    /// The bot's messages in the thread rooted at `root_ts` of `channel`.
    pub fn thread(&self, channel: &str, root_ts: &str) -> Vec<FakeMessage> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.from_bot && m.channel == channel && m.thread_ts.as_deref() == Some(root_ts))
            .cloned()
            .collect()
    }

    /// The bot's top-level messages in `channel` (e.g. summary cards in the agents' channel).
    pub fn top_level(&self, channel: &str) -> Vec<FakeMessage> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.from_bot && m.channel == channel && m.thread_ts.is_none())
            .cloned()
            .collect()
    }

    /// Messages shown to one person only, in order.
    pub fn ephemerals(&self) -> Vec<Ephemeral> {
        self.lock().ephemerals.clone()
    }

    /// Reactions present now, as (channel, ts, name).
    pub fn reactions(&self) -> BTreeSet<(String, String, String)> {
        self.lock().reactions.clone()
    }

    /// A person writes in `channel` (in the thread `thread_ts`, if given).
    pub fn customer_message(&self, channel: &str, user: &str, text: &str, thread_ts: Option<&str>) -> FakeMessage {
        let mut s = self.lock();
        let ts = s.next_ts();
        let m = FakeMessage {
            channel: channel.into(),
            ts,
            thread_ts: thread_ts.map(str::to_string),
            user: user.into(),
            text: text.into(),
            blocks: None,
            from_bot: false,
            updates: 0,
        };
        s.messages.push(m.clone());
        m
    }

    /// The Events API envelope Slack sends for `message` as event type `kind` (`message` or
    /// `app_mention`), with `event_id`.
    pub fn event_for(&self, message: &FakeMessage, kind: &str, event_id: &str) -> Value {
        let mut event = json!({
            "type": kind,
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "channel": message.channel,
            "event_ts": message.ts,
            "team": TEAM_ID,
        });
        if kind == "message" {
            event["channel_type"] = json!(if message.channel.starts_with('D') { "im" } else { "channel" });
        }
        if let Some(t) = &message.thread_ts {
            event["thread_ts"] = json!(t);
        }
        if message.from_bot {
            event["bot_id"] = json!(format!("B{}", message.user));
        }
        json!({
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "api_app_id": "AFRONTDESK",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": 1_700_000_000,
            "authorizations": [{"enterprise_id": null, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": true,
                "is_enterprise_install": false}],
            "is_ext_shared_channel": false,
        })
    }

    /// The `block_actions` payload Slack sends when `user` clicks the button `action_id` of
    /// `message`. `None` when the message has no such button.
    pub fn click(&self, message: &FakeMessage, user: &str, action_id: &str) -> Option<Value> {
        let value = message.button_value(action_id)?;
        let action_ts = self.lock().next_ts();
        Some(json!({
            "type": "block_actions",
            "user": {"id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": TEAM_ID},
            "api_app_id": "AFRONTDESK",
            "token": "verification-token-unused",
            "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel,
                "is_ephemeral": false, "thread_ts": message.thread_ts},
            "trigger_id": "123.456.abc",
            "team": {"id": TEAM_ID, "domain": "acme"},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": message.channel, "name": "support"},
            "message": {"type": "message", "ts": message.ts, "thread_ts": message.thread_ts, "text": message.text,
                "user": BOT_USER_ID, "blocks": message.blocks},
            "response_url": "https://hooks.slack.com/actions/T1/1/abc",
            "actions": [{"action_id": action_id, "block_id": "b", "text": {"type": "plain_text", "text": "x"},
                "value": value, "type": "button", "action_ts": action_ts}],
        }))
    }
}

/// The Socket Mode server: `hello` on connect, frames pushed by the test, acknowledgements
/// recorded; a `disconnect` frame is followed by closing the connection.
async fn serve_sockets(listener: tokio::net::TcpListener, state: Arc<Mutex<FakeState>>, stop: CancellationToken) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let tcp = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => continue,
            },
        };
        let (state, stop) = (Arc::clone(&state), stop.clone());
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
            let (mut write, mut read) = ws.split();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            let n = {
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                s.sockets.push(Some(tx));
                s.sockets.len()
            };
            let hello = json!({"type": "hello", "num_connections": n,
                "connection_info": {"app_id": "AFRONTDESK"},
                "debug_info": {"host": "fake", "approximate_connection_time": 18060}});
            if write.send(Message::Text(hello.to_string().into())).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    frame = rx.recv() => {
                        let Some(frame) = frame else { break };
                        let last = serde_json::from_str::<Value>(&frame).is_ok_and(|f| f["type"] == "disconnect");
                        if write.send(Message::Text(frame.into())).await.is_err() || last {
                            break;
                        }
                    }
                    incoming = read.next() => match incoming {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(id) = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["envelope_id"].as_str().map(str::to_string)) {
                                state.lock().unwrap_or_else(|p| p.into_inner()).acks.push(id);
                            }
                        }
                        Some(Ok(Message::Ping(body))) => {
                            let _ = write.send(Message::Pong(body)).await;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    },
                }
            }
            let _ = write.close().await;
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = s.sockets.get_mut(n - 1) {
                *slot = None;
            }
        });
    }
}

fn slack_error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code})).into_response()
}

fn params_of(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut params = Map::new();
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            params.insert(k.into_owned(), json!(v.into_owned()));
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
            params.extend(m);
        }
    } else if !body.is_empty() {
        for (k, v) in url::form_urlencoded::parse(body) {
            params.insert(k.into_owned(), json!(v.into_owned()));
        }
    }
    Value::Object(params)
}

/// A parameter that Slack's clients may send as a string or as JSON (blocks).
fn json_param(params: &Value, key: &str) -> Option<Value> {
    match params.get(key)? {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Null => None,
        v => Some(v.clone()),
    }
}

fn str_param<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

async fn api(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(method): Path<String>,
    http_method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params_of(query.as_deref(), &headers, &body);
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token =
        auth.strip_prefix("Bearer ").map(str::to_string).or_else(|| str_param(&params, "token").map(str::to_string));
    let (fault, hold) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.calls.push(Call { method: method.clone(), params: params.clone(), token: token.clone() });
        match s.faults.get_mut(&method).and_then(VecDeque::pop_front) {
            Some(Fault::Hang) => (None, Some(Arc::clone(&s.release))),
            other => (other, None),
        }
    };
    if let Some(release) = hold {
        let released = release.notified();
        state.lock().unwrap_or_else(|p| p.into_inner()).hung += 1;
        released.await;
        state.lock().unwrap_or_else(|p| p.into_inner()).hung -= 1;
    }
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(fault) = fault {
        return match fault {
            Fault::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response(),
            Fault::Error(code) if code == "missing_scope" => {
                Json(json!({"ok": false, "error": code, "needed": "chat:write", "provided": "app_mentions:read"}))
                    .into_response()
            }
            Fault::Error(code) => slack_error(&code),
            Fault::Status(n) => {
                (StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "fake failure").into_response()
            }
            Fault::Hang => slack_error("internal_error"),
        };
    }
    if method == "oauth.v2.access" {
        return oauth_access(&mut s, auth, &params);
    }
    if method == "apps.connections.open" {
        if token.as_deref() != Some(APP_TOKEN) {
            return slack_error(if token.is_some_and(|t| t.starts_with("xoxb-")) {
                "not_allowed_token_type"
            } else {
                "invalid_auth"
            });
        }
        let Some(addr) = s.socket_addr else { return slack_error("internal_error") };
        let ticket = s.next_ts();
        return Json(json!({"ok": true, "url": format!("ws://{addr}/link/?ticket={ticket}&app_id=AFRONTDESK")}))
            .into_response();
    }
    let _ = http_method;
    let Some(token) = token else { return slack_error("not_authed") };
    let Some(ws) = s.workspaces.get(&token).cloned() else { return slack_error("invalid_auth") };
    match method.as_str() {
        "auth.test" => Json(json!({
            "ok": true,
            "url": format!("https://{}.slack.com/", ws.team_name.to_lowercase()),
            "team": ws.team_name,
            "user": "frontdesk",
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": false,
        }))
        .into_response(),
        "chat.postMessage" => {
            let Some(channel) = str_param(&params, "channel").map(str::to_string) else {
                return slack_error("channel_not_found");
            };
            let text = str_param(&params, "text").unwrap_or("").to_string();
            let blocks = json_param(&params, "blocks");
            if text.is_empty() && blocks.is_none() {
                return slack_error("no_text");
            }
            let thread_ts = str_param(&params, "thread_ts").map(str::to_string);
            let ts = s.next_ts();
            let m = FakeMessage {
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts: thread_ts.clone(),
                user: ws.bot_user_id.clone(),
                text: text.clone(),
                blocks: blocks.clone(),
                from_bot: true,
                updates: 0,
            };
            s.messages.push(m);
            let mut message = json!({
                "type": "message",
                "user": ws.bot_user_id,
                "bot_id": ws.bot_id,
                "app_id": "AFRONTDESK",
                "text": text,
                "ts": ts,
                "team": ws.team_id,
            });
            if let Some(b) = blocks {
                message["blocks"] = b;
            }
            if let Some(t) = thread_ts {
                message["thread_ts"] = json!(t);
            }
            Json(json!({"ok": true, "channel": channel, "ts": ts, "message": message})).into_response()
        }
        "chat.postEphemeral" => {
            let (Some(channel), Some(user)) = (str_param(&params, "channel"), str_param(&params, "user")) else {
                return slack_error("channel_not_found");
            };
            let text = str_param(&params, "text").unwrap_or("").to_string();
            if text.is_empty() && json_param(&params, "blocks").is_none() {
                return slack_error("no_text");
            }
            let e = Ephemeral { channel: channel.to_string(), user: user.to_string(), text };
            s.ephemerals.push(e);
            let ts = s.next_ts();
            Json(json!({"ok": true, "message_ts": ts})).into_response()
        }
        "chat.update" => {
            let (Some(channel), Some(ts)) = (str_param(&params, "channel"), str_param(&params, "ts")) else {
                return slack_error("message_not_found");
            };
            let (channel, ts) = (channel.to_string(), ts.to_string());
            let text = str_param(&params, "text").map(str::to_string);
            let blocks = json_param(&params, "blocks");
            let Some(m) = s.messages.iter_mut().find(|m| m.channel == channel && m.ts == ts) else {
                return slack_error("message_not_found");
            };
            if !m.from_bot || m.user != ws.bot_user_id {
                return slack_error("cant_update_message");
            }
            if let Some(t) = text {
                m.text = t;
            }
            if let Some(b) = blocks {
                m.blocks = if b.as_array().is_some_and(Vec::is_empty) { None } else { Some(b) };
            }
            m.updates += 1;
            let mut message = json!({"type": "message", "text": m.text, "user": m.user, "bot_id": ws.bot_id});
            if let Some(b) = &m.blocks {
                message["blocks"] = b.clone();
            }
            let text = m.text.clone();
            Json(json!({"ok": true, "channel": channel, "ts": ts, "text": text, "message": message})).into_response()
        }
        "reactions.add" | "reactions.remove" => {
            let (Some(channel), Some(ts), Some(name)) =
                (str_param(&params, "channel"), str_param(&params, "timestamp"), str_param(&params, "name"))
            else {
                return slack_error("invalid_arguments");
            };
            let key = (channel.to_string(), ts.to_string(), name.to_string());
            if !s.messages.iter().any(|m| m.channel == key.0 && m.ts == key.1) {
                return slack_error("message_not_found");
            }
            if method == "reactions.add" {
                if !s.reactions.insert(key) {
                    return slack_error("already_reacted");
                }
            } else if !s.reactions.remove(&key) {
                return slack_error("no_reaction");
            }
            Json(json!({"ok": true})).into_response()
        }
        "usergroups.users.list" => {
            let Some(group) = str_param(&params, "usergroup") else { return slack_error("invalid_arguments") };
            match s.usergroups.get(group) {
                Some(users) => Json(json!({"ok": true, "users": users})).into_response(),
                None => slack_error("no_such_subteam"),
            }
        }
        _ => slack_error("unknown_method"),
    }
}

fn oauth_access(s: &mut FakeState, auth: &str, params: &Value) -> Response {
    let basic = auth
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| pair.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())));
    let given = basic.or_else(|| {
        Some((str_param(params, "client_id")?.to_string(), str_param(params, "client_secret")?.to_string()))
    });
    let Some((id, secret)) = given else { return slack_error("invalid_client_id") };
    match &s.oauth_client {
        Some((want_id, _)) if *want_id != id => return slack_error("invalid_client_id"),
        Some((_, want_secret)) if *want_secret != secret => return slack_error("bad_client_secret"),
        None => return slack_error("invalid_client_id"),
        Some(_) => {}
    }
    let Some(code) = str_param(params, "code") else { return slack_error("invalid_code") };
    let Some(grant) = s.codes.remove(code) else { return slack_error("invalid_code") };
    s.workspaces.insert(grant.token.clone(), grant.workspace.clone());
    let ws = grant.workspace;
    Json(json!({
        "ok": true,
        "access_token": grant.token,
        "token_type": "bot",
        "scope": crate::config::BOT_SCOPES.join(","),
        "bot_user_id": ws.bot_user_id,
        "app_id": "AFRONTDESK",
        "team": {"name": ws.team_name, "id": ws.team_id},
        "enterprise": null,
        "authed_user": {"id": "UINSTALLER", "scope": "", "access_token": null, "token_type": null},
        "is_enterprise_install": false,
    }))
    .into_response()
}

/// Sends requests to the adapter's router the way Slack does.
#[derive(Clone)]
pub struct SlackSender {
    router: Router,
    secret: String,
}

/// An answer of the adapter's router.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

impl SlackSender {
    pub fn new(router: Router, signing_secret: &str) -> SlackSender {
        SlackSender { router, secret: signing_secret.into() }
    }

    /// Posts an Events API envelope, signed now.
    pub async fn event(&self, envelope: &Value) -> Answer {
        self.event_retry(envelope, None).await
    }

    /// Posts an envelope as Slack's retry number `retry` (`X-Slack-Retry-Num`).
    pub async fn event_retry(&self, envelope: &Value, retry: Option<u32>) -> Answer {
        let body = serde_json::to_vec(envelope).unwrap_or_default();
        let retry_num = retry.map(|n| n.to_string());
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(n) = &retry_num {
            headers.push(("x-slack-retry-num", n));
            headers.push(("x-slack-retry-reason", "http_timeout"));
        }
        self.signed("/slack/events", body, "application/json", signature::now_secs(), &headers).await
    }

    /// Posts a button click (`payload=` form field), signed now.
    pub async fn interaction(&self, payload: &Value) -> Answer {
        let body: String =
            url::form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish();
        self.signed(
            "/slack/interactions",
            body.into_bytes(),
            "application/x-www-form-urlencoded",
            signature::now_secs(),
            &[],
        )
        .await
    }

    /// Posts `body` signed with this sender's secret at `timestamp`.
    pub async fn signed(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        timestamp: i64,
        extra: &[(&str, &str)],
    ) -> Answer {
        let ts = timestamp.to_string();
        let sig = signature::sign(self.secret.as_bytes(), &ts, &body);
        let mut headers = vec![("x-slack-request-timestamp", ts.as_str()), ("x-slack-signature", sig.as_str())];
        headers.extend_from_slice(extra);
        self.raw(Method::POST, path, body, content_type, &headers).await
    }

    /// Sends a request exactly as given (no signing added).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, content_type);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let Ok(request) = request.body(axum::body::Body::from(body)) else {
            return Answer { status: 0, body: "the request could not be built".into(), location: None };
        };
        let response = match self.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
        Answer { status, body: String::from_utf8_lossy(&bytes).into_owned(), location }
    }

    /// Posts an event as Slack does until it is acknowledged: Slack retries a request that
    /// failed (503 while frontdesk starts), so this retries for up to `patience`.
    pub async fn event_until_acknowledged(&self, envelope: &Value, patience: Duration) -> Answer {
        let deadline = tokio::time::Instant::now() + patience;
        let mut retry = None;
        loop {
            let answer = self.event_retry(envelope, retry).await;
            if answer.status != 503 || tokio::time::Instant::now() >= deadline {
                return answer;
            }
            retry = Some(retry.map_or(1, |n| n + 1));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The conformance kit's driver: a customer in channel `C-SUPPORT` writing to the bot.
pub struct Driver {
    pub fake: Arc<FakeSlack>,
    pub sender: SlackSender,
    pub channel: String,
    last: Mutex<Option<(Value, FakeMessage)>>,
    events: Mutex<u32>,
}

impl Driver {
    pub fn new(fake: Arc<FakeSlack>, sender: SlackSender) -> Driver {
        Driver { fake, sender, channel: "CSUPPORT".into(), last: Mutex::new(None), events: Mutex::new(0) }
    }

    fn event_id(&self) -> String {
        let mut n = self.events.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        format!("Ev{:04}", *n)
    }

    fn acknowledged(answer: &Answer) -> Result<(), String> {
        if answer.status == 200 {
            Ok(())
        } else {
            Err(format!("the adapter answered {}: {}", answer.status, answer.body))
        }
    }
}

#[async_trait]
impl PlatformDriver for Driver {
    async fn send_customer_message(&self, text: &str) -> Result<(), String> {
        let m = self.fake.customer_message(&self.channel, "UCUSTOMER", &format!("<@{BOT_USER_ID}> {text}"), None);
        let envelope = self.fake.event_for(&m, "app_mention", &self.event_id());
        let answer = self.sender.event_until_acknowledged(&envelope, Duration::from_secs(5)).await;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((envelope, m));
        Self::acknowledged(&answer)
    }

    async fn replay_last(&self) -> Result<(), String> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (envelope, _) = last.ok_or("no event was sent yet")?;
        Self::acknowledged(&self.sender.event_retry(&envelope, Some(1)).await)
    }

    async fn send_own_message(&self, text: &str) -> Result<(), String> {
        let mut m = self.fake.customer_message(&self.channel, BOT_USER_ID, text, None);
        m.from_bot = true;
        let envelope = self.fake.event_for(&m, "message", &self.event_id());
        Self::acknowledged(&self.sender.event(&envelope).await)
    }

    async fn delivered_in_thread(&self) -> Vec<String> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match last {
            Some((_, m)) => self.fake.thread(&m.channel, &m.ts).into_iter().map(|r| r.all_text()).collect(),
            None => Vec::new(),
        }
    }
}
