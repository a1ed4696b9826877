//! A loopback Discord for tests: the REST API routes the adapter calls and a gateway v10
//! websocket, answering with Discord's documented object shapes.
//!
//! REST (`api_base()`, for serenity's proxy setting): `GET /api/v10/gateway(/bot)`,
//! `GET /users/@me`, `GET /users/@me/guilds` (the bot's servers, with `after` and `limit`),
//! `GET /guilds/{id}/members/{user}` (404 "Unknown Member" for someone not in it),
//! `GET /oauth2/applications/@me`, `GET /channels/{id}`,
//! `POST /channels/{id}/messages` (honouring `nonce` + `enforce_nonce`),
//! `PATCH /channels/{id}/messages/{id}`, `DELETE /channels/{id}/messages/{id}`, `POST /channels/{id}/messages/{id}/threads`,
//! `POST /channels/{id}/typing`, `POST /interactions/{id}/{token}/callback`,
//! `PUT /applications/{id}/commands`. Every call is recorded; the next call matching a method
//! and a path fragment can be made to fail (`fail_next`, `rate_limit_next`).
//!
//! Gateway: HELLO (op 10) → IDENTIFY (op 2) → READY; heartbeats (op 1) are ACKed (op 11);
//! events pushed by the test are dispatched (op 0) with sequence numbers; `reconnect` sends
//! RECONNECT (op 7), and RESUME (op 6) replays what the bot missed — plus, on request, events
//! it had already seen, as Discord may — then RESUMED.

use crate::DiscordConfig;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

/// The bot token the fake accepts.
pub const TOKEN: &str = "fake-discord-bot-token";
/// The application's id; on Discord the bot user has the same id.
pub const APP_ID: u64 = 1_150_000_000_000_000_001;
pub const BOT_ID: u64 = APP_ID;
pub const GUILD_ID: u64 = 1_150_000_000_000_000_010;
/// A text channel where customers ask.
pub const SUPPORT_CHANNEL: u64 = 1_150_000_000_000_000_020;
/// The agents' channel (for handoff summaries).
pub const AGENTS_CHANNEL: u64 = 1_150_000_000_000_000_030;
/// A forum channel (help forum): each post is a thread.
pub const FORUM_CHANNEL: u64 = 1_150_000_000_000_000_040;
/// The support team's role.
pub const SUPPORT_ROLE: u64 = 1_150_000_000_000_000_050;
/// A direct-message channel between the customer and the bot.
pub const DM_CHANNEL: u64 = 1_150_000_000_000_000_060;
/// Another server the bot is in: another tenant, with knowledge and customers of its own.
pub const OTHER_GUILD_ID: u64 = 1_150_000_000_000_000_210;
/// A text channel of the other server, which the bot can see.
pub const OTHER_GUILD_CHANNEL: u64 = 1_150_000_000_000_000_220;
/// The public key the fake reports for the application (RFC 8032 test 1).
pub const PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/// Discord's epoch (2015-01-01) in Unix milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Someone who writes on the fake Discord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub id: u64,
    pub name: String,
    pub bot: bool,
    pub roles: Vec<u64>,
    /// Guild permissions (bits), as interactions report them.
    pub permissions: u64,
}

impl FakeUser {
    pub fn customer() -> FakeUser {
        FakeUser { id: 1_150_000_000_000_000_101, name: "casey".into(), bot: false, roles: vec![], permissions: 0 }
    }
    pub fn agent() -> FakeUser {
        FakeUser {
            id: 1_150_000_000_000_000_102,
            name: "alex".into(),
            bot: false,
            roles: vec![SUPPORT_ROLE],
            permissions: 0,
        }
    }
    /// A server admin (Manage Server), not on the support team.
    pub fn admin() -> FakeUser {
        FakeUser {
            id: 1_150_000_000_000_000_103,
            name: "morgan".into(),
            bot: false,
            roles: vec![],
            permissions: 1 << 5,
        }
    }
    /// Someone on Discord who shares no server with the bot.
    pub fn stranger() -> FakeUser {
        FakeUser { id: 1_150_000_000_000_000_105, name: "sam".into(), bot: false, roles: vec![], permissions: 0 }
    }
    /// The bot itself.
    pub fn bot_self() -> FakeUser {
        FakeUser { id: BOT_ID, name: "frontdesk".into(), bot: true, roles: vec![], permissions: 0 }
    }
    /// Some other bot in the server.
    pub fn other_bot() -> FakeUser {
        FakeUser { id: 1_150_000_000_000_000_104, name: "otherbot".into(), bot: true, roles: vec![], permissions: 0 }
    }

    /// Discord's user object.
    pub fn json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "username": self.name,
            "discriminator": "0",
            "global_name": if self.bot { Value::Null } else { Value::String(capitalised(&self.name)) },
            "avatar": null,
            "bot": self.bot,
            "public_flags": 0,
        })
    }

    /// Discord's guild member object (with `user` when `with_user`).
    pub fn member_json(&self, with_user: bool) -> Value {
        let mut m = json!({
            "roles": self.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "joined_at": "2025-06-01T12:00:00.000000+00:00",
            "nick": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "permissions": self.permissions.to_string(),
        });
        if with_user {
            m["user"] = self.json();
        }
        m
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One REST call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// A message posted through the REST API.
#[derive(Debug, Clone)]
pub struct Posted {
    pub id: u64,
    pub channel_id: u64,
    pub content: String,
    /// The request's body: `components`, `embeds`, `allowed_mentions`, `nonce`...
    pub request: Value,
}

impl Posted {
    /// The custom ids of the message's buttons, in order.
    pub fn button_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for row in self.request["components"].as_array().into_iter().flatten() {
            for b in row["components"].as_array().into_iter().flatten() {
                if let Some(id) = b["custom_id"].as_str() {
                    out.push(id.to_string());
                }
            }
        }
        out
    }

    /// The labels of the message's buttons, in order.
    pub fn button_labels(&self) -> Vec<String> {
        let mut out = Vec::new();
        for row in self.request["components"].as_array().into_iter().flatten() {
            for b in row["components"].as_array().into_iter().flatten() {
                if let Some(l) = b["label"].as_str() {
                    out.push(l.to_string());
                }
            }
        }
        out
    }
}

struct Fault {
    method: String,
    path_contains: String,
    status: u16,
    body: Value,
    retry_after: Option<f64>,
}

#[derive(Clone)]
struct FakeChannel {
    kind: u8,
    guild: Option<u64>,
    parent: Option<u64>,
    name: String,
}

#[derive(Default)]
struct Session {
    id: String,
    seq: u64,
    /// Every dispatched event of the session: (seq, type, data).
    log: Vec<(u64, String, Value)>,
    identifies: u32,
    resumes: u32,
    /// On the next RESUME, also send again this many events the bot had already received.
    redeliver: usize,
}

struct Shared {
    gateway_url: Mutex<String>,
    /// The servers the bot is in: (id, name), in id order.
    guilds: Mutex<Vec<(u64, String)>>,
    /// Who is a member of which server: (server, user id) → user.
    members: Mutex<HashMap<(u64, u64), FakeUser>>,
    counter: AtomicU64,
    channels: Mutex<HashMap<u64, FakeChannel>>,
    posted: Mutex<Vec<Posted>>,
    calls: Mutex<Vec<Call>>,
    faults: Mutex<Vec<Fault>>,
    nonces: Mutex<HashMap<(u64, String), Value>>,
    threads: Mutex<Vec<(u64, u64)>>,
    commands: Mutex<Option<Value>>,
    interaction_responses: Mutex<Vec<(u64, Value)>>,
    conn: Mutex<Option<(u64, mpsc::UnboundedSender<WsMessage>)>>,
    session: Mutex<Session>,
    application_flags: AtomicU64,
    changed: Notify,
}

impl Shared {
    fn snowflake(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(DISCORD_EPOCH_MS);
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        (now.saturating_sub(DISCORD_EPOCH_MS) << 22) | (n & 0x3f_ffff)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The timestamp of a snowflake, as Discord writes it.
fn timestamp_of(id: u64) -> String {
    let ms = (id >> 22) + DISCORD_EPOCH_MS;
    serenity::model::Timestamp::from_millis(ms as i64)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "2025-01-01T00:00:00Z".into())
}

/// A loopback Discord. Dropping it stops its servers.
pub struct FakeDiscord {
    shared: Arc<Shared>,
    api: SocketAddr,
    stop: CancellationToken,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeDiscord {
    /// Starts the REST API and the gateway on loopback ports.
    pub async fn start() -> Result<FakeDiscord, String> {
        let mut channels = HashMap::new();
        for (id, kind, name) in [
            (SUPPORT_CHANNEL, 0u8, "support"),
            (AGENTS_CHANNEL, 0, "support-agents"),
            (FORUM_CHANNEL, 15, "help-forum"),
        ] {
            channels.insert(id, FakeChannel { kind, guild: Some(GUILD_ID), parent: None, name: name.into() });
        }
        channels.insert(
            OTHER_GUILD_CHANNEL,
            FakeChannel { kind: 0, guild: Some(OTHER_GUILD_ID), parent: None, name: "globex-agents".into() },
        );
        channels.insert(DM_CHANNEL, FakeChannel { kind: 1, guild: None, parent: None, name: String::new() });
        let mut members = HashMap::new();
        for user in
            [FakeUser::customer(), FakeUser::agent(), FakeUser::admin(), FakeUser::bot_self(), FakeUser::other_bot()]
        {
            members.insert((GUILD_ID, user.id), user);
        }
        members.insert((OTHER_GUILD_ID, BOT_ID), FakeUser::bot_self());
        let shared = Arc::new(Shared {
            gateway_url: Mutex::new(String::new()),
            guilds: Mutex::new(vec![(GUILD_ID, "Acme".into()), (OTHER_GUILD_ID, "Globex".into())]),
            members: Mutex::new(members),
            counter: AtomicU64::new(1),
            channels: Mutex::new(channels),
            posted: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            nonces: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            commands: Mutex::new(None),
            interaction_responses: Mutex::new(Vec::new()),
            conn: Mutex::new(None),
            session: Mutex::new(Session::default()),
            // GATEWAY_MESSAGE_CONTENT: the privileged intent is enabled.
            application_flags: AtomicU64::new(1 << 19),
            changed: Notify::new(),
        });
        let stop = CancellationToken::new();
        let gateway = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let gw_addr = gateway.local_addr().map_err(|e| e.to_string())?;
        *lock(&shared.gateway_url) = format!("ws://{gw_addr}");
        let api = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let api_addr = api.local_addr().map_err(|e| e.to_string())?;
        let app = Router::new().fallback(rest).with_state(shared.clone());
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(api, app).with_graceful_shutdown(async move { s.cancelled().await }).await;
        });
        let (sh, s) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            let mut conn_ids = 0u64;
            loop {
                let accepted = tokio::select! {
                    _ = s.cancelled() => return,
                    a = gateway.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                conn_ids += 1;
                let (sh, s, id) = (sh.clone(), s.clone(), conn_ids);
                tokio::spawn(async move { gateway_connection(sh, stream, id, s).await });
            }
        });
        Ok(FakeDiscord { shared, api: api_addr, stop })
    }

    /// The base URL to give serenity as its proxy (`DiscordConfig::api_base`).
    pub fn api_base(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The gateway's websocket URL.
    pub fn gateway_url(&self) -> String {
        lock(&self.shared.gateway_url).clone()
    }

    /// A configuration that talks to this fake: its token and application, the support role,
    /// the rate limiter off (required for the proxy), no interactions endpoint.
    pub fn config(&self) -> DiscordConfig {
        DiscordConfig {
            bot_token: SecretString::from(TOKEN.to_string()),
            application_id: APP_ID.to_string(),
            support_role_id: SUPPORT_ROLE.to_string(),
            api_base: Some(self.api_base()),
            rate_limiter: false,
            ..DiscordConfig::default()
        }
    }

    /// Reports the application without the Message Content intent (as the Developer Portal
    /// does until it is switched on).
    pub fn disable_message_content_intent(&self) {
        self.shared.application_flags.store(0, Ordering::SeqCst);
    }

    async fn wait(&self, what: &str, timeout: Duration, mut ready: impl FnMut(&Shared) -> bool) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            if ready(&self.shared) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return if ready(&self.shared) { Ok(()) } else { Err(format!("timed out waiting for {what}")) };
            }
        }
    }

    /// Waits until the bot has identified `n` times in all (READY sent).
    pub async fn wait_identified(&self, n: u32, timeout: Duration) -> Result<(), String> {
        self.wait("the bot to identify", timeout, |s| lock(&s.session).identifies >= n && lock(&s.conn).is_some()).await
    }

    /// Waits until the bot has resumed `n` times in all (RESUMED sent).
    pub async fn wait_resumed(&self, n: u32, timeout: Duration) -> Result<(), String> {
        self.wait("the bot to resume", timeout, |s| lock(&s.session).resumes >= n && lock(&s.conn).is_some()).await
    }

    /// Waits until at least `n` messages were posted in `channel`.
    pub async fn wait_posted_in(&self, channel: u64, n: usize, timeout: Duration) -> Result<Vec<Posted>, String> {
        self.wait(&format!("{n} messages in channel {channel}"), timeout, |s| {
            lock(&s.posted).iter().filter(|p| p.channel_id == channel).count() >= n
        })
        .await?;
        Ok(self.posted_in(channel))
    }

    /// Waits until the slash commands were registered.
    pub async fn wait_commands(&self, timeout: Duration) -> Result<Value, String> {
        self.wait("the slash commands", timeout, |s| lock(&s.commands).is_some()).await?;
        Ok(lock(&self.shared.commands).clone().unwrap_or(Value::Null))
    }

    /// How many times the bot identified and resumed.
    pub fn sessions(&self) -> (u32, u32) {
        let s = lock(&self.shared.session);
        (s.identifies, s.resumes)
    }

    /// Dispatches a gateway event to the connected bot; returns its sequence number.
    pub fn dispatch(&self, event: &str, data: Value) -> Result<u64, String> {
        let conn = lock(&self.shared.conn).as_ref().map(|(_, tx)| tx.clone());
        let Some(tx) = conn else { return Err("the bot is not connected to the fake gateway".into()) };
        let mut s = lock(&self.shared.session);
        s.seq += 1;
        let seq = s.seq;
        s.log.push((seq, event.to_string(), data.clone()));
        let payload = json!({"op": 0, "s": seq, "t": event, "d": data});
        tx.send(WsMessage::Text(payload.to_string())).map_err(|_| "the gateway connection closed".to_string())?;
        Ok(seq)
    }

    /// Asks the bot to reconnect (op 7). On its RESUME, the events it missed are replayed, and
    /// the last `redeliver` events it had already received are sent again.
    pub fn reconnect(&self, redeliver: usize) -> Result<(), String> {
        lock(&self.shared.session).redeliver = redeliver;
        let conn = lock(&self.shared.conn).as_ref().map(|(_, tx)| tx.clone());
        let Some(tx) = conn else { return Err("the bot is not connected to the fake gateway".into()) };
        tx.send(WsMessage::Text(json!({"op": 7, "d": null}).to_string())).map_err(|e| e.to_string())
    }

    /// Makes `user` a member of the server `guild` (the customer, the agent and the admin are
    /// members of `GUILD_ID` from the start; nobody but the bot is in `OTHER_GUILD_ID`).
    pub fn join(&self, guild: u64, user: &FakeUser) {
        lock(&self.shared.members).insert((guild, user.id), user.clone());
    }

    /// Removes the user `user` from the server `guild`.
    pub fn leave(&self, guild: u64, user: u64) {
        lock(&self.shared.members).remove(&(guild, user));
    }

    /// Adds a server the bot is in (it has the bot as its only member).
    pub fn add_guild(&self, guild: u64, name: &str) {
        let mut guilds = lock(&self.shared.guilds);
        if !guilds.iter().any(|(g, _)| *g == guild) {
            guilds.push((guild, name.into()));
            guilds.sort();
        }
        drop(guilds);
        self.join(guild, &FakeUser::bot_self());
    }

    /// A new message id (a snowflake).
    pub fn new_id(&self) -> u64 {
        self.shared.snowflake()
    }

    /// Registers a thread (as if someone had opened it) under `parent`.
    pub fn add_thread(&self, thread: u64, parent: u64, name: &str) {
        lock(&self.shared.channels)
            .insert(thread, FakeChannel { kind: 11, guild: Some(GUILD_ID), parent: Some(parent), name: name.into() });
    }

    /// Discord's message object for a message by `author` in `channel` (a guild channel or
    /// thread, or `DM_CHANNEL`). `mention_bot` prefixes the bot's mention, as Discord's client
    /// does when the bot is @-mentioned.
    pub fn message_json(&self, id: u64, channel: u64, author: &FakeUser, text: &str, mention_bot: bool) -> Value {
        let guild = lock(&self.shared.channels).get(&channel).and_then(|c| c.guild);
        let content = if mention_bot { format!("<@{BOT_ID}> {text}") } else { text.to_string() };
        let mentions = if mention_bot { vec![FakeUser::bot_self().json()] } else { vec![] };
        let mut m = json!({
            "id": id.to_string(),
            "channel_id": channel.to_string(),
            "author": author.json(),
            "content": content,
            "timestamp": timestamp_of(id),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": false,
            "type": 0,
            "flags": 0,
        });
        if let Some(g) = guild {
            m["guild_id"] = json!(g.to_string());
            m["member"] = author.member_json(false);
        }
        m
    }

    /// Sends a new message from `author` over the gateway (MESSAGE_CREATE); returns its id.
    pub fn send_message(&self, channel: u64, author: &FakeUser, text: &str, mention_bot: bool) -> Result<u64, String> {
        let id = self.new_id();
        self.dispatch("MESSAGE_CREATE", self.message_json(id, channel, author, text, mention_bot))?;
        Ok(id)
    }

    fn interaction_base(&self, kind: u8, user: &FakeUser, channel: u64) -> Value {
        let id = self.new_id();
        let channels = lock(&self.shared.channels);
        let ch = channels.get(&channel).cloned();
        drop(channels);
        let guild = ch.as_ref().and_then(|c| c.guild);
        let mut partial = json!({"id": channel.to_string(), "type": ch.as_ref().map(|c| c.kind).unwrap_or(0)});
        if let Some(c) = &ch {
            partial["name"] = json!(c.name);
            if let Some(p) = c.parent {
                partial["parent_id"] = json!(p.to_string());
            }
        }
        let mut v = json!({
            "id": id.to_string(),
            "application_id": APP_ID.to_string(),
            "type": kind,
            "channel_id": channel.to_string(),
            "channel": partial,
            "token": format!("interaction-token-{id}"),
            "version": 1,
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "attachment_size_limit": 10_485_760,
        });
        match guild {
            Some(g) => {
                v["guild_id"] = json!(g.to_string());
                v["guild_locale"] = json!("en-US");
                v["member"] = user.member_json(true);
                v["context"] = json!(0);
            }
            None => {
                v["user"] = user.json();
                v["context"] = json!(1);
            }
        }
        v
    }

    /// Discord's interaction object for a press of the button `custom_id` on `message` (a
    /// message the fake recorded as posted).
    pub fn button_interaction(&self, user: &FakeUser, message: &Posted, custom_id: &str) -> Value {
        let mut v = self.interaction_base(3, user, message.channel_id);
        v["data"] = json!({"custom_id": custom_id, "component_type": 2});
        let mut m = self.message_json(message.id, message.channel_id, &FakeUser::bot_self(), &message.content, false);
        m["components"] = message.request.get("components").cloned().unwrap_or_else(|| json!([]));
        if let Some(obj) = m.as_object_mut() {
            obj.remove("member");
        }
        v["message"] = m;
        v
    }

    /// Discord's interaction object for a slash command; `options` are the command's options as
    /// Discord sends them (`[{"name":..,"type":..,"value"|"options":..}]`).
    pub fn command_interaction(&self, user: &FakeUser, channel: u64, name: &str, options: Value) -> Value {
        let mut v = self.interaction_base(2, user, channel);
        v["data"] = json!({
            "id": self.new_id().to_string(),
            "name": name,
            "type": 1,
            "options": options,
        });
        v
    }

    /// Every REST call so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// Every message posted through the REST API.
    pub fn posted(&self) -> Vec<Posted> {
        lock(&self.shared.posted).clone()
    }

    /// The messages posted in one channel or thread.
    pub fn posted_in(&self, channel: u64) -> Vec<Posted> {
        lock(&self.shared.posted).iter().filter(|p| p.channel_id == channel).cloned().collect()
    }

    /// Threads created from messages: (parent channel, thread id = the message id).
    pub fn threads(&self) -> Vec<(u64, u64)> {
        lock(&self.shared.threads).clone()
    }

    /// Interaction responses received: (interaction id, body).
    pub fn interaction_responses(&self) -> Vec<(u64, Value)> {
        lock(&self.shared.interaction_responses).clone()
    }

    /// Makes the next call of `method` whose path contains `path_contains` fail with `status`
    /// and Discord's JSON error `{code, message}`.
    pub fn fail_next(&self, method: &str, path_contains: &str, status: u16, code: i64, message: &str) {
        lock(&self.shared.faults).push(Fault {
            method: method.to_uppercase(),
            path_contains: path_contains.into(),
            status,
            body: json!({"code": code, "message": message}),
            retry_after: None,
        });
    }

    /// Makes the next matching call answer 429 as Discord does (`Retry-After` header and a
    /// `retry_after` body, in seconds).
    pub fn rate_limit_next(&self, method: &str, path_contains: &str, retry_after_secs: f64) {
        lock(&self.shared.faults).push(Fault {
            method: method.to_uppercase(),
            path_contains: path_contains.into(),
            status: 429,
            body: json!({"message": "You are being rate limited.", "retry_after": retry_after_secs, "global": false}),
            retry_after: Some(retry_after_secs),
        });
    }
}

fn discord_error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn channel_json(id: u64, c: &FakeChannel) -> Value {
    let mut v = json!({
        "id": id.to_string(),
        "type": c.kind,
        "flags": 0,
    });
    if c.kind == 1 {
        v["recipients"] = json!([FakeUser::customer().json()]);
        v["last_message_id"] = Value::Null;
        return v;
    }
    v["guild_id"] = json!(c.guild.map(|g| g.to_string()));
    v["name"] = json!(c.name);
    v["position"] = json!(0);
    v["permission_overwrites"] = json!([]);
    v["nsfw"] = json!(false);
    v["parent_id"] = json!(c.parent.map(|p| p.to_string()));
    v["rate_limit_per_user"] = json!(0);
    if matches!(c.kind, 10..=12) {
        v["owner_id"] = json!(BOT_ID.to_string());
        v["message_count"] = json!(0);
        v["member_count"] = json!(1);
        v["total_message_sent"] = json!(0);
        v["thread_metadata"] = json!({
            "archived": false,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2025-06-01T12:00:00.000000+00:00",
            "locked": false,
        });
    }
    v
}

async fn rest(State(s): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let body_json: Value =
        if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    lock(&s.calls).push(Call { method: method.to_string(), path: path.clone(), body: body_json.clone() });
    s.changed.notify_waiters();

    let fault = {
        let mut faults = lock(&s.faults);
        let i = faults.iter().position(|f| f.method == method.as_str() && path.contains(&f.path_contains));
        i.map(|i| faults.remove(i))
    };
    if let Some(f) = fault {
        let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(f.body)).into_response();
        if let Some(secs) = f.retry_after {
            if let Ok(v) = format!("{}", secs.ceil() as u64).parse() {
                response.headers_mut().insert("retry-after", v);
            }
            if let Ok(v) = "0".parse() {
                response.headers_mut().insert("x-ratelimit-remaining", v);
            }
        }
        return response;
    }

    let Some(rest) = path.strip_prefix("/api/v10/") else {
        return discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found");
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let is_callback = matches!(segments.as_slice(), ["interactions", _, _, "callback"]);
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start_matches("Bot ").trim() == TOKEN);
    if !authorised && !is_callback {
        return discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    }
    let gateway_url = lock(&s.gateway_url).clone();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["gateway"]) => Json(json!({"url": gateway_url})).into_response(),
        ("GET", ["gateway", "bot"]) => Json(json!({
            "url": gateway_url,
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
        }))
        .into_response(),
        ("GET", ["users", "@me"]) => {
            let mut me = FakeUser::bot_self().json();
            me["verified"] = json!(true);
            me["mfa_enabled"] = json!(false);
            me["flags"] = json!(0);
            Json(me).into_response()
        }
        ("GET", ["users", "@me", "guilds"]) => {
            // Partial guild objects, in id order, after `after`, at most `limit` (1-200, default 200).
            let query = |name: &str| {
                uri.query()
                    .unwrap_or("")
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let limit = query("limit").unwrap_or(200);
            if !(1..=200).contains(&limit) {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            }
            let after = query("after").unwrap_or(0);
            let page: Vec<Value> = lock(&s.guilds)
                .iter()
                .filter(|(id, _)| *id > after)
                .take(limit as usize)
                .map(|(id, name)| {
                    json!({
                        "id": id.to_string(),
                        "name": name,
                        "icon": null,
                        "owner": false,
                        "permissions": "2248473465835073",
                        "features": [],
                    })
                })
                .collect();
            Json(Value::Array(page)).into_response()
        }
        ("GET", ["guilds", guild, "members", user]) => {
            let (guild, user) = (guild.parse::<u64>().unwrap_or(0), user.parse::<u64>().unwrap_or(0));
            if !lock(&s.guilds).iter().any(|(g, _)| *g == guild) {
                return discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            }
            match lock(&s.members).get(&(guild, user)) {
                Some(u) => Json(u.member_json(true)).into_response(),
                None => discord_error(StatusCode::NOT_FOUND, 10007, "Unknown Member"),
            }
        }
        ("GET", ["oauth2", "applications", "@me"]) => Json(json!({
            "id": APP_ID.to_string(),
            "name": "frontdesk",
            "icon": null,
            "description": "Customer support assistant",
            "bot_public": false,
            "bot_require_code_grant": false,
            "verify_key": PUBLIC_KEY,
            "team": null,
            "flags": s.application_flags.load(Ordering::SeqCst),
            "owner": FakeUser::admin().json(),
        }))
        .into_response(),
        ("GET", ["channels", id]) => {
            let id = id.parse::<u64>().unwrap_or(0);
            match lock(&s.channels).get(&id) {
                Some(c) => Json(channel_json(id, c)).into_response(),
                None => discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
            }
        }
        ("POST", ["channels", id, "typing"]) => {
            if lock(&s.channels).contains_key(&id.parse::<u64>().unwrap_or(0)) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel")
            }
        }
        ("POST", ["channels", id, "messages"]) => post_message(&s, id.parse().unwrap_or(0), body_json),
        ("PATCH", ["channels", id, "messages", mid]) => {
            let (channel, mid) = (id.parse::<u64>().unwrap_or(0), mid.parse::<u64>().unwrap_or(0));
            let mut posted = lock(&s.posted);
            match posted.iter_mut().find(|p| p.id == mid && p.channel_id == channel) {
                Some(p) => {
                    if let Some(c) = body_json["content"].as_str() {
                        p.content = c.to_string();
                    }
                    // Fields left out of an edit keep their value.
                    if let (Some(request), Some(edit)) = (p.request.as_object_mut(), body_json.as_object()) {
                        for (k, v) in edit {
                            request.insert(k.clone(), v.clone());
                        }
                    }
                    let message = bot_message(mid, channel, &p.content, &body_json);
                    drop(posted);
                    s.changed.notify_waiters();
                    Json(message).into_response()
                }
                None => discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
            }
        }
        ("DELETE", ["channels", id, "messages", mid]) => {
            let (channel, mid) = (id.parse::<u64>().unwrap_or(0), mid.parse::<u64>().unwrap_or(0));
            let mut posted = lock(&s.posted);
            let before = posted.len();
            posted.retain(|p| !(p.id == mid && p.channel_id == channel));
            let gone = posted.len() < before;
            drop(posted);
            if gone {
                s.changed.notify_waiters();
                StatusCode::NO_CONTENT.into_response()
            } else {
                discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message")
            }
        }
        ("POST", ["channels", id, "messages", mid, "threads"]) => {
            let (channel, mid) = (id.parse::<u64>().unwrap_or(0), mid.parse::<u64>().unwrap_or(0));
            let parent = lock(&s.channels).get(&channel).cloned();
            let Some(parent) = parent else { return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel") };
            if parent.kind != 0 && parent.kind != 5 {
                return discord_error(StatusCode::BAD_REQUEST, 50024, "Cannot execute action on this channel type");
            }
            if lock(&s.channels).contains_key(&mid) {
                return discord_error(
                    StatusCode::BAD_REQUEST,
                    160004,
                    "A thread has already been created for this message",
                );
            }
            let name = body_json["name"].as_str().unwrap_or("thread").to_string();
            let thread = FakeChannel { kind: 11, guild: parent.guild, parent: Some(channel), name };
            let json = channel_json(mid, &thread);
            lock(&s.channels).insert(mid, thread);
            lock(&s.threads).push((channel, mid));
            s.changed.notify_waiters();
            (StatusCode::CREATED, Json(json)).into_response()
        }
        ("POST", ["interactions", id, _token, "callback"]) => {
            lock(&s.interaction_responses).push((id.parse().unwrap_or(0), body_json));
            s.changed.notify_waiters();
            StatusCode::NO_CONTENT.into_response()
        }
        ("PUT", ["applications", app, "commands"]) => {
            if *app != APP_ID.to_string() {
                return discord_error(StatusCode::FORBIDDEN, 50001, "Missing Access");
            }
            let commands: Vec<Value> = body_json
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    c["id"] = json!(s.snowflake().to_string());
                    c["application_id"] = json!(APP_ID.to_string());
                    c["version"] = json!(s.snowflake().to_string());
                    if c.get("type").is_none() {
                        c["type"] = json!(1);
                    }
                    c
                })
                .collect();
            *lock(&s.commands) = Some(Value::Array(commands.clone()));
            s.changed.notify_waiters();
            Json(Value::Array(commands)).into_response()
        }
        _ => discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

/// Discord's message object for a message the bot posted.
fn bot_message(id: u64, channel: u64, content: &str, request: &Value) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel.to_string(),
        "author": FakeUser::bot_self().json(),
        "content": content,
        "timestamp": timestamp_of(id),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": request.get("embeds").cloned().unwrap_or(json!([])),
        "components": request.get("components").cloned().unwrap_or(json!([])),
        "pinned": false,
        "type": 0,
        "flags": 0,
        "nonce": request.get("nonce").cloned().unwrap_or(Value::Null),
    })
}

fn post_message(s: &Shared, channel: u64, body: Value) -> Response {
    if !lock(&s.channels).contains_key(&channel) {
        return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    let content = body["content"].as_str().unwrap_or("").to_string();
    let has_embeds = body["embeds"].as_array().is_some_and(|e| !e.is_empty());
    if content.is_empty() && !has_embeds {
        return discord_error(StatusCode::BAD_REQUEST, 50006, "Cannot send an empty message");
    }
    if content.chars().count() > 2000 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "code": 50035,
                "message": "Invalid Form Body",
                "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}},
            })),
        )
            .into_response();
    }
    let nonce = body["nonce"].as_str().map(str::to_string);
    if let (Some(n), true) = (&nonce, body["enforce_nonce"].as_bool().unwrap_or(false)) {
        if let Some(existing) = lock(&s.nonces).get(&(channel, n.clone())) {
            return Json(existing.clone()).into_response();
        }
    }
    let id = s.snowflake();
    let message = bot_message(id, channel, &content, &body);
    lock(&s.posted).push(Posted { id, channel_id: channel, content, request: body });
    if let Some(n) = nonce {
        lock(&s.nonces).insert((channel, n), message.clone());
    }
    s.changed.notify_waiters();
    Json(message).into_response()
}

async fn gateway_connection(s: Arc<Shared>, stream: tokio::net::TcpStream, conn_id: u64, stop: CancellationToken) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
    let (mut sink, mut incoming) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<WsMessage>();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 45_000}});
    if sink.send(WsMessage::Text(hello.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = sink.send(WsMessage::Close(Some(CloseFrame { code: CloseCode::Away, reason: "".into() }))).await;
                break;
            }
            out = rx.recv() => match out {
                Some(m) => if sink.send(m).await.is_err() { break },
                None => break,
            },
            frame = incoming.next() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(WsMessage::Ping(p))) => { let _ = sink.send(WsMessage::Pong(p)).await; continue }
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    let _ = sink.send(WsMessage::Close(Some(CloseFrame { code: CloseCode::Library(4002), reason: "decode error".into() }))).await;
                    break;
                };
                match v["op"].as_u64() {
                    Some(1) => { let _ = tx.send(WsMessage::Text(json!({"op": 11}).to_string())); }
                    Some(2) => {
                        let token = v["d"]["token"].as_str().unwrap_or("");
                        if token.trim_start_matches("Bot ").trim() != TOKEN {
                            let _ = sink.send(WsMessage::Close(Some(CloseFrame { code: CloseCode::Library(4004), reason: "Authentication failed.".into() }))).await;
                            break;
                        }
                        *lock(&s.conn) = Some((conn_id, tx.clone()));
                        let ready = {
                            let mut session = lock(&s.session);
                            session.identifies += 1;
                            session.id = format!("fake-session-{}-{}", session.identifies, conn_id);
                            session.log.clear();
                            session.seq = 1;
                            json!({"op": 0, "s": 1, "t": "READY", "d": {
                                "v": 10,
                                "user": FakeUser::bot_self().json(),
                                "guilds": [
                                    {"id": GUILD_ID.to_string(), "unavailable": true},
                                    {"id": OTHER_GUILD_ID.to_string(), "unavailable": true},
                                ],
                                "session_id": session.id,
                                "resume_gateway_url": lock(&s.gateway_url).clone(),
                                "shard": [0, 1],
                                "application": {"id": APP_ID.to_string(), "flags": s.application_flags.load(Ordering::SeqCst)},
                            }})
                        };
                        let _ = tx.send(WsMessage::Text(ready.to_string()));
                        s.changed.notify_waiters();
                    }
                    Some(6) => {
                        let session_id = v["d"]["session_id"].as_str().unwrap_or("").to_string();
                        let client_seq = v["d"]["seq"].as_u64().unwrap_or(0);
                        let replay = {
                            let mut session = lock(&s.session);
                            if session.id != session_id {
                                None
                            } else {
                                let already = session.log.iter().filter(|(seq, _, _)| *seq <= client_seq).count();
                                let from = already.saturating_sub(session.redeliver);
                                session.redeliver = 0;
                                let mut out: Vec<String> = session.log[from..]
                                    .iter()
                                    .map(|(seq, t, d)| json!({"op": 0, "s": seq, "t": t, "d": d}).to_string())
                                    .collect();
                                session.seq += 1;
                                out.push(json!({"op": 0, "s": session.seq, "t": "RESUMED", "d": {}}).to_string());
                                session.resumes += 1;
                                Some(out)
                            }
                        };
                        match replay {
                            Some(events) => {
                                *lock(&s.conn) = Some((conn_id, tx.clone()));
                                for e in events {
                                    let _ = tx.send(WsMessage::Text(e));
                                }
                                s.changed.notify_waiters();
                            }
                            None => { let _ = tx.send(WsMessage::Text(json!({"op": 9, "d": false}).to_string())); }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let mut conn = lock(&s.conn);
    if conn.as_ref().is_some_and(|(id, _)| *id == conn_id) {
        *conn = None;
    }
    drop(conn);
    s.changed.notify_waiters();
}
