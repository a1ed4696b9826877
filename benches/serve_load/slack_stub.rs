//! A loopback stand-in for Slack's Web API that records every `chat.postMessage` with the
//! moment it arrived.
//!
//! The adapter's own fake (`frontdesk_slack::fake`) checks shapes and keeps whole channel
//! histories, which makes each call scan everything posted so far; at hundreds of events per
//! second the fake itself would become the bottleneck being measured. This stub answers the
//! methods `frontdesk serve` calls on the events path (`auth.test`, `chat.postMessage`,
//! `chat.update`, `reactions.add`, `reactions.remove`) in constant time, with the response
//! shapes Slack documents (the same ones the adapter's fake is checked against with the
//! official `slack_sdk` client).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The bot token `frontdesk serve` is configured with.
pub const BOT_TOKEN: &str = "xoxb-load-bench";
/// The bot's user id in every workspace.
pub const BOT_USER_ID: &str = "UBOT";

/// One `chat.postMessage` as it arrived.
#[derive(Debug, Clone)]
pub struct Post {
    pub channel: String,
    pub thread_ts: Option<String>,
    /// The ts the stub gave the message (what frontdesk records as the platform's message id).
    pub ts: String,
    pub text: String,
    /// The blocks as sent, serialised (empty when none).
    pub blocks: String,
    pub at: Instant,
}

#[derive(Default)]
struct StubState {
    posts: Vec<Post>,
    calls: HashMap<String, u64>,
    reactions: HashSet<(String, String, String)>,
    next: u64,
}

/// The running stub. Stops when dropped.
pub struct SlackStub {
    addr: SocketAddr,
    state: Arc<Mutex<StubState>>,
    stop: CancellationToken,
}

impl Drop for SlackStub {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl SlackStub {
    pub async fn start() -> anyhow::Result<SlackStub> {
        let state = Arc::new(Mutex::new(StubState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = Router::new().route("/api/{method}", any(api)).with_state(Arc::clone(&state));
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await;
        });
        Ok(SlackStub { addr, state, stop })
    }

    /// The `[slack] api_url` to give `frontdesk serve`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, StubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn post_count(&self) -> usize {
        self.lock().posts.len()
    }

    /// Posts from index `from` on.
    pub fn posts_since(&self, from: usize) -> Vec<Post> {
        let s = self.lock();
        s.posts.get(from..).map(<[Post]>::to_vec).unwrap_or_default()
    }

    /// Calls per Web API method so far.
    pub fn calls(&self) -> HashMap<String, u64> {
        self.lock().calls.clone()
    }

    /// 👀 reactions still on customers' messages.
    pub fn reactions_left(&self) -> usize {
        self.lock().reactions.len()
    }
}

fn error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code})).into_response()
}

/// Query, form or JSON parameters, merged.
fn params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    let mut form = |text: &str| {
        for (k, v) in form_pairs(text) {
            out.insert(k, Value::String(v));
        }
    };
    if let Some(q) = query {
        form(q);
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if json_body {
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
            out.extend(m);
        }
    } else if let Ok(text) = std::str::from_utf8(body) {
        form(text);
    }
    out
}

/// `application/x-www-form-urlencoded` pairs.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn text_param(p: &Map<String, Value>, key: &str) -> Option<String> {
    p.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

async fn api(
    State(state): State<Arc<Mutex<StubState>>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(query.as_deref(), &headers, &body);
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|a| a.strip_prefix("Bearer "));
    let token = bearer.map(str::to_string).or_else(|| text_param(&p, "token"));
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    *s.calls.entry(method.clone()).or_default() += 1;
    match token.as_deref() {
        None => return error("not_authed"),
        Some(BOT_TOKEN) => {}
        Some(_) => return error("invalid_auth"),
    }
    match method.as_str() {
        "auth.test" => Json(json!({
            "ok": true, "url": "https://bench.slack.com/", "team": "Bench", "user": "frontdesk",
            "team_id": "T1", "user_id": BOT_USER_ID, "bot_id": "BBOT", "is_enterprise_install": false,
        }))
        .into_response(),
        "chat.postMessage" => {
            let Some(channel) = text_param(&p, "channel") else { return error("channel_not_found") };
            let text = text_param(&p, "text").unwrap_or_default();
            let blocks = p.get("blocks").map(|b| match b {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            if text.is_empty() && blocks.is_none() {
                return error("no_text");
            }
            s.next += 1;
            let ts = format!("{}.{:06}", 1_800_000_000 + s.next / 1_000_000, s.next % 1_000_000);
            let thread_ts = text_param(&p, "thread_ts");
            let mut message = json!({"type": "message", "user": BOT_USER_ID, "bot_id": "BBOT", "app_id": "ABENCH",
                "text": text, "ts": ts, "team": "T1"});
            if let Some(b) = blocks.as_deref().and_then(|b| serde_json::from_str::<Value>(b).ok()) {
                message["blocks"] = b;
            }
            if let Some(t) = &thread_ts {
                message["thread_ts"] = json!(t);
            }
            s.posts.push(Post {
                channel: channel.clone(),
                thread_ts,
                ts: ts.clone(),
                text,
                blocks: blocks.unwrap_or_default(),
                at: Instant::now(),
            });
            Json(json!({"ok": true, "channel": channel, "ts": ts, "message": message})).into_response()
        }
        "chat.update" => {
            let (Some(channel), Some(ts)) = (text_param(&p, "channel"), text_param(&p, "ts")) else {
                return error("message_not_found");
            };
            let text = text_param(&p, "text").unwrap_or_default();
            Json(json!({"ok": true, "channel": channel, "ts": ts, "text": text,
                "message": {"type": "message", "text": text, "user": BOT_USER_ID, "bot_id": "BBOT"}}))
            .into_response()
        }
        "reactions.add" | "reactions.remove" => {
            let (Some(channel), Some(ts), Some(name)) =
                (text_param(&p, "channel"), text_param(&p, "timestamp"), text_param(&p, "name"))
            else {
                return error("invalid_arguments");
            };
            let key = (channel, ts, name);
            if method == "reactions.add" {
                if !s.reactions.insert(key) {
                    return error("already_reacted");
                }
            } else if !s.reactions.remove(&key) {
                return error("no_reaction");
            }
            Json(json!({"ok": true})).into_response()
        }
        _ => error("unknown_method"),
    }
}
