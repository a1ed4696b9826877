//! The Discord adapter: the gateway connection that receives customers' messages, the delivery
//! of frontdesk's replies, and the health checks.

use crate::config::{is_snowflake, parse_public_key, DiscordConfig};
use crate::errors::{map_error, DiscordError};
use crate::render::{self, ButtonAction, Mention, MESSAGE_LIMIT};
use async_trait::async_trait;
use frontdesk_channel::{
    AdapterError, Attachment, Author, AuthorId, ChannelAdapter, ChannelId as FdChannelId, ConversationKey, Delivered,
    EventId, Health, Inbound, InboxSink, Outbound, OutboundKind, PolicyConsole, Source, UserAction, WorkspaceId,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serenity::all::{
    ApplicationFlags, ApplicationId, ButtonStyle, ChannelId, ChannelType, Context, CreateActionRow,
    CreateAllowedMentions, CreateButton, CreateEmbed, CreateMessage, CreateThread, EditMessage, EventHandler,
    GatewayIntents, GuildChannel, Http, HttpBuilder, Interaction, Message, MessageId, MessageType, Nonce, Permissions,
    Ready, RoleId, UserId,
};
use serenity::http::GuildPagination;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub(crate) const PLATFORM: &str = "discord";

/// How long the servers a user shares with the bot, looked up for their direct messages, are
/// trusted: joining or leaving a server shows within this time.
const MEMBERSHIP_TTL: Duration = Duration::from_secs(300);
/// Servers per page of `GET /users/@me/guilds` (Discord's maximum).
const GUILDS_PAGE: u64 = 200;
/// Membership lookups made at once for one direct message.
const MEMBER_LOOKUPS_AT_ONCE: usize = 8;

/// Told to the sender of a direct message who shares no server with the bot.
const DM_NO_SERVER: &str = "Hi! I answer questions for the Discord servers I help with, and I could not find one \
    that you and I are both in. Please ask in the support channel of the server you need help with (mention me \
    there, or use /ask), and I will answer you there.";
/// Told to the sender of a direct message who shares several servers with the bot.
const DM_SEVERAL_SERVERS: &str = "Hi! You and I are both in several servers, and each has its own help docs, so I \
    cannot tell which one your question is about. Please ask in the support channel of the server you need help \
    with (mention me there, or use /ask), and I will answer you there.";
/// Told to the sender of a direct message when their servers could not be looked up.
const DM_LOOKUP_FAILED: &str = "Sorry, I could not check just now which server you are asking about. Please try \
    again in a moment, or ask in your server's support channel.";

/// The gateway intents the bot asks for. MESSAGE_CONTENT is privileged: it must be switched on
/// in the Developer Portal (Bot → Privileged Gateway Intents), or Discord refuses to connect.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
        | GatewayIntents::DIRECT_MESSAGES
}

/// The permissions the bot needs in the channels it serves, and nothing more.
pub fn required_permissions() -> Permissions {
    Permissions::VIEW_CHANNEL
        | Permissions::SEND_MESSAGES
        | Permissions::SEND_MESSAGES_IN_THREADS
        | Permissions::CREATE_PUBLIC_THREADS
        | Permissions::READ_MESSAGE_HISTORY
        | Permissions::EMBED_LINKS
        | Permissions::USE_APPLICATION_COMMANDS
}

/// The link a server admin opens to add the bot to their server, with exactly the permissions it
/// needs and the `bot` and `applications.commands` scopes.
pub fn invite_url(application_id: &str) -> String {
    format!(
        "https://discord.com/oauth2/authorize?client_id={}&permissions={}&scope=bot%20applications.commands",
        application_id.trim(),
        required_permissions().bits()
    )
}

/// What the adapter needs to reply to a message, kept in `Inbound.reply_context` (opaque to
/// the engine, copied into each reply).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplyContext {
    /// The server, or none for a DM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild: Option<String>,
    /// The channel whose policy applies: the parent of a thread, the channel of a top-level
    /// message, or the DM channel.
    pub channel: String,
    /// Where replies go when the conversation already has a thread (or is a DM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// The customer's top-level message that replies start a thread from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The name of the thread to create (from the customer's question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// For Claim and Resolve: the agents' card clicked on, so the reply can show on it who took
    /// the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRef>,
}

/// An agents' card and what was done on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardRef {
    pub channel: String,
    pub message: String,
    /// The card's first line ("Handoff from #thread"), kept above the status line.
    pub heading: String,
    /// `claimed` or `resolved`.
    pub done: String,
    /// The agent's user id.
    pub by: String,
}

impl ReplyContext {
    fn from_value(v: &serde_json::Value) -> Result<ReplyContext, AdapterError> {
        let ctx: ReplyContext = serde_json::from_value(v.clone()).map_err(|e| AdapterError::Rejected {
            platform: PLATFORM,
            code: "bad_reply_context".into(),
            message: format!(
                "the reply has no usable Discord reply context ({e}); it did not come from a Discord message"
            ),
        })?;
        let bad = |what: &str, value: &str| AdapterError::Rejected {
            platform: PLATFORM,
            code: "bad_reply_context".into(),
            message: format!("the reply context's {what} {value:?} is not a Discord id"),
        };
        if !is_snowflake(&ctx.channel) {
            return Err(bad("channel", &ctx.channel));
        }
        for (what, v) in [("thread", &ctx.thread), ("message", &ctx.message), ("guild", &ctx.guild)] {
            if let Some(v) = v {
                if !is_snowflake(v) {
                    return Err(bad(what, v));
                }
            }
        }
        if ctx.thread.is_none() && ctx.message.is_none() {
            return Err(AdapterError::Rejected {
                platform: PLATFORM,
                code: "bad_reply_context".into(),
                message: "the reply context names neither a thread nor a message to reply to".into(),
            });
        }
        Ok(ctx)
    }
}

fn id_of(s: &str) -> u64 {
    s.parse().unwrap_or(0)
}

/// What the adapter knows about a channel: whether it is a thread, its parent, and the server
/// it belongs to (none for a DM). A channel never moves to another server, so this is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelInfo {
    pub is_thread: bool,
    pub parent: Option<u64>,
    pub guild: Option<u64>,
}

fn is_thread_kind(kind: ChannelType) -> bool {
    matches!(kind, ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread)
}

/// The Discord channel adapter. Create it with [`DiscordAdapter::new`], mount
/// [`DiscordAdapter::router`] when the HTTP interactions endpoint is used, and run it as any
/// other [`ChannelAdapter`].
pub struct DiscordAdapter {
    pub(crate) me: Weak<DiscordAdapter>,
    pub(crate) config: DiscordConfig,
    pub(crate) http: Arc<Http>,
    pub(crate) policies: Arc<dyn PolicyConsole>,
    pub(crate) verifier: Option<serenity::interactions_endpoint::Verifier>,
    pub(crate) inbox: RwLock<Option<Arc<dyn InboxSink>>>,
    pub(crate) bot_user: RwLock<Option<u64>>,
    pub(crate) support_role: Option<u64>,
    pub(crate) agents: HashSet<u64>,
    channels: Mutex<HashMap<u64, ChannelInfo>>,
    /// The configured `dm_workspace`: answers the DMs that match no single server.
    dm_fallback: Option<WorkspaceId>,
    /// The servers each user shares with the bot, as last looked up for their DMs.
    memberships: Mutex<HashMap<u64, (Instant, Vec<u64>)>>,
}

impl std::fmt::Debug for DiscordAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

pub(crate) fn build_http(config: &DiscordConfig) -> Http {
    let mut builder = HttpBuilder::new(config.bot_token.expose_secret().trim());
    if let Ok(id) = config.application_id.trim().parse::<u64>() {
        if id > 0 {
            builder = builder.application_id(ApplicationId::new(id));
        }
    }
    if !config.rate_limiter {
        builder = builder.ratelimiter_disabled(true);
        if let Some(base) = &config.api_base {
            builder = builder.proxy(base.trim_end_matches('/'));
        }
    }
    builder.build()
}

impl DiscordAdapter {
    /// Checks the configuration and prepares the adapter; nothing connects until `run`.
    pub fn new(config: DiscordConfig, policies: Arc<dyn PolicyConsole>) -> Result<Arc<DiscordAdapter>, DiscordError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(DiscordError::Config(problems));
        }
        let verifier = if config.public_key.trim().is_empty() {
            None
        } else {
            let key = parse_public_key(&config.public_key)
                .map_err(|e| DiscordError::Config(vec![("public_key".into(), e)]))?;
            Some(serenity::interactions_endpoint::Verifier::try_new(key).map_err(|e| {
                DiscordError::Config(vec![("public_key".into(), format!("not a valid Ed25519 public key: {e}"))])
            })?)
        };
        let http = Arc::new(build_http(&config));
        let support_role = config.support_role_id.trim().parse::<u64>().ok();
        let agents = config.agent_user_ids.iter().filter_map(|id| id.trim().parse::<u64>().ok()).collect();
        let dm_fallback = match &config.dm_workspace {
            Some(ws) => Some(
                WorkspaceId::new(ws.as_str())
                    .map_err(|e| DiscordError::Config(vec![("dm_workspace".into(), e.to_string())]))?,
            ),
            None => None,
        };
        Ok(Arc::new_cyclic(|me| DiscordAdapter {
            me: me.clone(),
            config,
            http,
            policies,
            verifier,
            inbox: RwLock::new(None),
            bot_user: RwLock::new(None),
            support_role,
            agents,
            channels: Mutex::new(HashMap::new()),
            dm_fallback,
            memberships: Mutex::new(HashMap::new()),
        }))
    }

    pub(crate) fn current_inbox(&self) -> Option<Arc<dyn InboxSink>> {
        self.inbox.read().ok().and_then(|i| i.clone())
    }

    fn bot_id(&self) -> Option<u64> {
        self.bot_user.read().ok().and_then(|b| *b)
    }

    /// True when a member with these roles, or this user, belongs to the support team.
    pub(crate) fn is_agent(&self, user: u64, roles: &[RoleId]) -> bool {
        self.agents.contains(&user) || self.support_role.is_some_and(|r| roles.iter().any(|x| x.get() == r))
    }

    /// The workspace of a message or interaction: its server's, or for a direct message the
    /// one [`Self::dm_workspace`] finds for its sender. `Err` holds what to tell the sender.
    pub(crate) async fn workspace_for(&self, guild: Option<u64>, user: UserId) -> Result<WorkspaceId, String> {
        match guild {
            Some(g) => WorkspaceId::new(g.to_string()).map_err(|e| e.to_string()),
            None => self.dm_workspace(user).await.map_err(str::to_string),
        }
    }

    /// The workspace a direct message is answered from. DMs belong to no server, and each
    /// server's help docs are for its own members: a DM is answered from the workspace of the
    /// one server its sender shares with the bot. Sharing none or several, it is answered from
    /// the configured `dm_workspace`, if any; otherwise (and whenever the servers could not be
    /// looked up) `Err` holds a note for the sender saying where to ask instead.
    pub(crate) async fn dm_workspace(&self, user: UserId) -> Result<WorkspaceId, &'static str> {
        let servers = match self.shared_servers(user).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(user = %user, error = %e, "a direct message was not answered: the servers its sender is in could not be looked up; they were asked to try again");
                return Err(DM_LOOKUP_FAILED);
            }
        };
        if let [only] = servers.as_slice() {
            return WorkspaceId::new(only.to_string()).map_err(|_| DM_LOOKUP_FAILED);
        }
        if let Some(ws) = &self.dm_fallback {
            return Ok(ws.clone());
        }
        tracing::info!(
            user = %user,
            shared_servers = servers.len(),
            "a direct message was not answered: its sender shares no single server with the bot and no dm_workspace is set; they were asked to ask in their server"
        );
        Err(if servers.is_empty() { DM_NO_SERVER } else { DM_SEVERAL_SERVERS })
    }

    /// The servers `user` shares with the bot, in id order: each server the bot is in where the
    /// user is a member. Kept for `MEMBERSHIP_TTL`; a failed lookup is not kept.
    async fn shared_servers(&self, user: UserId) -> Result<Vec<u64>, AdapterError> {
        let known =
            self.memberships.lock().ok().and_then(|m| {
                m.get(&user.get()).filter(|(at, _)| at.elapsed() < MEMBERSHIP_TTL).map(|(_, s)| s.clone())
            });
        if let Some(servers) = known {
            return Ok(servers);
        }
        let doing = "look up the servers the bot is in";
        let mut servers = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .http
                .get_guilds(after.map(GuildPagination::After), Some(GUILDS_PAGE))
                .await
                .map_err(|e| map_error(e, doing))?;
            let full = page.len() as u64 >= GUILDS_PAGE;
            after = page.last().map(|g| g.id);
            servers.extend(page.into_iter().map(|g| g.id));
            if !full || after.is_none() {
                break;
            }
        }
        let mut shared = Vec::new();
        for batch in servers.chunks(MEMBER_LOOKUPS_AT_ONCE) {
            let mut lookups = tokio::task::JoinSet::new();
            for guild in batch.iter().copied() {
                let http = self.http.clone();
                lookups.spawn(async move { (guild, http.get_member(guild, user).await) });
            }
            while let Some(done) = lookups.join_next().await {
                match done {
                    Ok((guild, Ok(_))) => shared.push(guild.get()),
                    // Not a member (10007), or the bot left that server meanwhile.
                    Ok((_, Err(e))) if matches!(http_status(&e), Some(403 | 404)) => {}
                    Ok((_, Err(e))) => return Err(map_error(e, "look up whether the sender is a member of a server")),
                    Err(e) => {
                        return Err(AdapterError::Unavailable {
                            platform: PLATFORM,
                            message: format!("a membership lookup stopped: {e}"),
                        })
                    }
                }
            }
        }
        shared.sort_unstable();
        if let Ok(mut m) = self.memberships.lock() {
            if m.len() > 10_000 {
                m.retain(|_, (at, _)| at.elapsed() < MEMBERSHIP_TTL);
                if m.len() > 10_000 {
                    m.clear();
                }
            }
            m.insert(user.get(), (Instant::now(), shared.clone()));
        }
        Ok(shared)
    }

    /// Tells the sender of a direct message that is not answered where to ask (best effort;
    /// the same message sent again by Discord gets no second note).
    async fn note_in_dm(&self, channel: u64, message: u64, note: &str) {
        let no_pings = CreateAllowedMentions::new().empty_roles().empty_users().everyone(false);
        if let Err(e) = self.post(channel, &format!("dm-note-{message}"), note, Vec::new(), None, no_pings).await {
            tracing::warn!(channel, message, error = %e, "could not tell the sender of a direct message where to ask");
        }
    }

    /// The conversation key: `<guild>:<thread>` in a server (for a top-level message, the
    /// message id, which becomes the id of the thread started from it), `dm:<channel>` in a DM.
    pub(crate) fn conversation_key(guild: Option<u64>, thread: u64) -> Result<ConversationKey, String> {
        match guild {
            Some(g) => ConversationKey::new(format!("{g}:{thread}")),
            None => ConversationKey::new(format!("dm:{thread}")),
        }
        .map_err(|e| e.to_string())
    }

    pub(crate) fn remember_channel(&self, id: u64, info: ChannelInfo) {
        if let Ok(mut c) = self.channels.lock() {
            if c.len() > 50_000 {
                c.clear();
            }
            c.insert(id, info);
        }
    }

    /// Whether a channel is a thread, its parent and its server: from what the gateway told us,
    /// else asked of Discord once.
    pub(crate) async fn channel_info(&self, channel: u64) -> Result<ChannelInfo, serenity::Error> {
        if let Some(info) = self.channels.lock().ok().and_then(|c| c.get(&channel).copied()) {
            return Ok(info);
        }
        let info = match self.http.get_channel(ChannelId::new(channel)).await? {
            serenity::all::Channel::Guild(g) => ChannelInfo {
                is_thread: is_thread_kind(g.kind),
                parent: g.parent_id.map(|p| p.get()),
                guild: Some(g.guild_id.get()),
            },
            _ => ChannelInfo { is_thread: false, parent: None, guild: None },
        };
        self.remember_channel(channel, info);
        Ok(info)
    }

    /// Turns a gateway message into an inbound message, or `None` when it is not for frontdesk
    /// (the bot's own, another bot's, a system notice) or is a direct message that no workspace
    /// answers (its sender is told, in the DM, where to ask).
    pub async fn inbound_from_message(&self, msg: &Message) -> Result<Option<Inbound>, String> {
        let bot = match self.bot_id() {
            Some(b) => Some(b),
            // Events are handled concurrently: a message may be read before READY was.
            None => self.http.get_current_user().await.ok().map(|u| {
                let id = u.id.get();
                if let Ok(mut b) = self.bot_user.write() {
                    *b = Some(id);
                }
                id
            }),
        };
        if msg.author.bot || msg.author.system || Some(msg.author.id.get()) == bot || msg.webhook_id.is_some() {
            return Ok(None);
        }
        if !matches!(msg.kind, MessageType::Regular | MessageType::InlineReply) {
            return Ok(None);
        }
        let guild = msg.guild_id.map(|g| g.get());
        let channel_id = msg.channel_id.get();
        let workspace = match (guild, self.workspace_for(guild, msg.author.id).await) {
            (_, Ok(ws)) => ws,
            (Some(_), Err(e)) => return Err(e),
            (None, Err(note)) => {
                self.note_in_dm(channel_id, msg.id.get(), &note).await;
                return Ok(None);
            }
        };
        let mentioned = bot.is_some_and(|b| msg.mentions.iter().any(|u| u.id.get() == b));
        let replied_to_bot =
            bot.is_some_and(|b| msg.referenced_message.as_ref().is_some_and(|r| r.author.id.get() == b));
        let (channel, conversation_thread, top_level, ctx) = match guild {
            None => {
                let ctx = ReplyContext {
                    guild: None,
                    channel: channel_id.to_string(),
                    thread: Some(channel_id.to_string()),
                    ..ReplyContext::default()
                };
                (channel_id, channel_id, false, ctx)
            }
            Some(g) => {
                let info = match self.channel_info(channel_id).await {
                    Ok(i) => i,
                    Err(e) => {
                        // Without knowing, treat it as a plain channel: delivery posts in the
                        // channel itself if Discord refuses a thread there.
                        tracing::warn!(channel = channel_id, error = %e, "could not look the channel up; treating it as a text channel");
                        ChannelInfo { is_thread: false, parent: None, guild: Some(g) }
                    }
                };
                if info.is_thread {
                    let parent = info.parent.unwrap_or(channel_id);
                    let ctx = ReplyContext {
                        guild: Some(g.to_string()),
                        channel: parent.to_string(),
                        thread: Some(channel_id.to_string()),
                        ..ReplyContext::default()
                    };
                    // The first message of a forum post (or of a thread) has the thread's id.
                    (parent, channel_id, msg.id.get() == channel_id, ctx)
                } else {
                    let ctx = ReplyContext {
                        guild: Some(g.to_string()),
                        channel: channel_id.to_string(),
                        thread: None,
                        message: Some(msg.id.get().to_string()),
                        title: Some(thread_title(&msg.content, bot)),
                        card: None,
                    };
                    (channel_id, msg.id.get(), true, ctx)
                }
            }
        };
        let roles: &[RoleId] = msg.member.as_ref().map(|m| m.roles.as_slice()).unwrap_or(&[]);
        let display_name = msg
            .member
            .as_ref()
            .and_then(|m| m.nick.clone())
            .or_else(|| msg.author.global_name.clone())
            .or_else(|| Some(msg.author.name.clone()));
        let inbound = Inbound {
            id: EventId::new(msg.id.get().to_string()).map_err(|e| e.to_string())?,
            source: Source::Discord,
            workspace,
            channel: FdChannelId::new(channel.to_string()).map_err(|e| e.to_string())?,
            conversation: Self::conversation_key(guild, conversation_thread)?,
            author: Author {
                id: AuthorId::new(msg.author.id.get().to_string()).map_err(|e| e.to_string())?,
                display_name,
                is_bot: false,
                is_agent: guild.is_some() && self.is_agent(msg.author.id.get(), roles),
            },
            text: strip_bot_mention(&msg.content, bot),
            attachments: msg
                .attachments
                .iter()
                .map(|a| Attachment {
                    name: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size_bytes: u64::from(a.size),
                })
                .collect(),
            received_at_ms: now_ms(),
            addressed_to_bot: guild.is_none() || mentioned || replied_to_bot,
            top_level,
            reply_context: serde_json::to_value(&ctx).map_err(|e| e.to_string())?,
            action: None,
            unverified_sender: false,
        };
        Ok(Some(inbound))
    }

    /// Hands a message to the inbox, trying again a few times if the inbox is briefly unable
    /// (the gateway cannot redeliver it later). Returns whether it was new.
    pub(crate) async fn hand_over(&self, inbox: &dyn InboxSink, message: Inbound) -> Result<bool, AdapterError> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match inbox.accept(message.clone()).await {
                Ok(fresh) => return Ok(fresh),
                Err(e) if attempt < 5 => {
                    tracing::warn!(message = %message.id, attempt, error = %e, "the inbox refused a Discord message; trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The channel a reply goes to: the conversation's thread, created from the customer's
    /// message the first time (its id is the message's id, so a retried delivery finds it).
    async fn reply_channel(&self, ctx: &ReplyContext) -> Result<u64, AdapterError> {
        if let Some(thread) = &ctx.thread {
            return Ok(id_of(thread));
        }
        let channel = id_of(&ctx.channel);
        let message = ctx.message.as_deref().map(id_of).unwrap_or(0);
        let title = ctx.title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "Support".into());
        let created = ChannelId::new(channel)
            .create_thread_from_message(&*self.http, MessageId::new(message), CreateThread::new(title))
            .await;
        match created {
            Ok(thread) => {
                self.remember_channel(
                    thread.id.get(),
                    ChannelInfo { is_thread: true, parent: Some(channel), guild: Some(thread.guild_id.get()) },
                );
                Ok(thread.id.get())
            }
            Err(e) => match discord_code(&e) {
                // "A thread has already been created for this message": an earlier attempt did.
                Some(160004) => Ok(message),
                // "Cannot execute action on this channel type": no threads here (e.g. a
                // channel type without threads); answer in the channel itself.
                Some(50024) => Ok(channel),
                _ => Err(map_error(e, "create a thread for the customer's message")),
            },
        }
    }

    /// Posts `text` (split to Discord's limit) in `channel`; the last part carries `components`.
    async fn post(
        &self,
        channel: u64,
        outbound_id: &str,
        text: &str,
        components: Vec<CreateActionRow>,
        embed: Option<CreateEmbed>,
        mentions: CreateAllowedMentions,
    ) -> Result<Delivered, AdapterError> {
        let mut parts = render::split_message(text, MESSAGE_LIMIT);
        if parts.is_empty() {
            parts.push(String::new());
        }
        let last = parts.len() - 1;
        let mut posted = None;
        for (i, part) in parts.into_iter().enumerate() {
            let mut builder = CreateMessage::new()
                .content(part)
                .allowed_mentions(mentions.clone())
                .nonce(Nonce::String(render::nonce(outbound_id, i)))
                .enforce_nonce(true);
            if i == last {
                if !components.is_empty() {
                    builder = builder.components(components.clone());
                }
                if let Some(e) = &embed {
                    builder = builder.embed(e.clone());
                }
            }
            let message = ChannelId::new(channel)
                .send_message(&*self.http, builder)
                .await
                .map_err(|e| map_error(e, "post the reply"))?;
            posted = Some(message.id.get().to_string());
        }
        Ok(Delivered { platform_message_id: posted })
    }

    pub(crate) fn buttons(
        channel: u64,
        thread: u64,
        actions: &[(UserAction, &str, ButtonStyle)],
    ) -> Vec<CreateActionRow> {
        let mut buttons = Vec::new();
        for (action, label, style) in actions {
            match render::custom_id(&ButtonAction { action: action.clone(), channel, thread }) {
                Ok(id) => buttons.push(CreateButton::new(id).label(*label).style(*style)),
                Err(e) => tracing::error!(error = %e, "a button was left out"),
            }
        }
        if buttons.is_empty() {
            Vec::new()
        } else {
            vec![CreateActionRow::Buttons(buttons)]
        }
    }

    /// Shows on the agents' card who claimed the conversation (only Resolve left) or resolved it
    /// (no buttons). Best effort: the customer was told already.
    async fn update_card(&self, card: &CardRef, customer_channel: u64, thread: u64) {
        let (channel, message) = (id_of(&card.channel), id_of(&card.message));
        if channel == 0 || message == 0 || !is_snowflake(&card.by) {
            return;
        }
        let (status, components) = if card.done == "claimed" {
            let resolve =
                Self::buttons(customer_channel, thread, &[(UserAction::Resolve, "Resolve", ButtonStyle::Success)]);
            (format!("✋ Claimed by <@{}>", card.by), resolve)
        } else {
            (format!("✅ Resolved by <@{}>", card.by), Vec::new())
        };
        let edit = EditMessage::new()
            .content(format!("{}\n{status}", card.heading))
            .components(components)
            .allowed_mentions(CreateAllowedMentions::new().empty_roles().empty_users().everyone(false));
        if let Err(e) = ChannelId::new(channel).edit_message(&*self.http, MessageId::new(message), edit).await {
            tracing::warn!(error = %map_error(e, "update the agents' card"), "the agents' card could not be updated");
        }
    }

    /// The agents' card shows the customer's question and conversation, so it goes only to a
    /// channel of the conversation's own server (workspace). A workspace that is not a server —
    /// the operator's `dm_workspace` for direct messages — has its policy set by the operator
    /// alone (server admins set their own server's), so any server channel is taken for it.
    async fn check_agents_channel(&self, m: &Outbound, channel: u64) -> Result<(), AdapterError> {
        let info = self.channel_info(channel).await.map_err(|e| {
            map_error(e, &format!("find the agents' channel {channel} named by the policy's agents_channel"))
        })?;
        let workspace = m.workspace.as_str();
        let fix = |server: &str| {
            format!(
                "set agents_channel to a channel of {server} (`/frontdesk policy set key:agents_channel value:<channel id>` \
                 in that server, or `frontdesk policy set --workspace {workspace} … agents_channel=<channel id>`)"
            )
        };
        let server = Some(workspace).filter(|w| is_snowflake(w)).map(id_of);
        match (info.guild, server) {
            (Some(g), Some(s)) if g == s => Ok(()),
            (Some(_), None) => Ok(()),
            (None, _) => Err(AdapterError::Rejected {
                platform: PLATFORM,
                code: "agents_channel_not_in_server".into(),
                message: format!(
                    "the policy's agents_channel {channel} (workspace {workspace}, channel {}) is not a server channel; \
                     the summary for the agents was not posted: {}",
                    m.channel,
                    fix(&server.map_or_else(|| "a Discord server".to_string(), |s| format!("server {s}")))
                ),
            }),
            (Some(_), Some(s)) => Err(AdapterError::Rejected {
                platform: PLATFORM,
                code: "agents_channel_other_server".into(),
                message: format!(
                    "the policy's agents_channel {channel} (workspace {workspace}, channel {}) is not a channel of \
                     this conversation's Discord server {s}; the summary for the agents, which shows the customer's \
                     question and conversation, was not posted: {}",
                    m.channel,
                    fix(&format!("server {s}"))
                ),
            }),
        }
    }

    async fn deliver_summary(
        &self,
        m: &Outbound,
        agents_channel: Option<&FdChannelId>,
        summary: &frontdesk_channel::HandoffSummary,
    ) -> Result<Delivered, AdapterError> {
        let Some(agents) = agents_channel else {
            return Err(AdapterError::Rejected {
                platform: PLATFORM,
                code: "no_agents_channel".into(),
                message: format!(
                    "the summary for the agents has nowhere to go: set the policy's agents_channel for channel {} (`/frontdesk policy set agents_channel <channel id>`)",
                    m.channel
                ),
            });
        };
        if !is_snowflake(agents.as_str()) {
            return Err(AdapterError::Rejected {
                platform: PLATFORM,
                code: "bad_agents_channel".into(),
                message: format!("the policy's agents_channel {:?} is not a Discord channel id", agents.as_str()),
            });
        }
        self.check_agents_channel(m, id_of(agents.as_str())).await?;
        // The customer's thread: the last part of the conversation key.
        let thread = summary.conversation.as_str().rsplit(':').next().map(id_of).filter(|t| *t > 0);
        let customer_channel = id_of(summary.customer_channel.as_str());
        let ctx = ReplyContext::from_value(&m.reply_context).ok();
        let guild = ctx.as_ref().and_then(|c| c.guild.clone());
        let link = match (&guild, thread) {
            (Some(g), Some(t)) => Some(format!("https://discord.com/channels/{g}/{t}")),
            _ => None,
        };
        let card = render::summary_card(summary, link.as_deref());
        let mut embed = CreateEmbed::new().title(card.title).description(card.description).colour(0xE67E22);
        for (name, value) in card.fields {
            let inline = name == "Reason" || name == "Confidence";
            embed = embed.field(name, value, inline);
        }
        let content = match (thread, &guild) {
            (Some(t), Some(_)) => format!("Handoff from <#{t}>"),
            _ => "Handoff from a direct message".to_string(),
        };
        let components = match thread {
            Some(t) if customer_channel > 0 => Self::buttons(
                customer_channel,
                t,
                &[
                    (UserAction::Claim, "Claim", ButtonStyle::Primary),
                    (UserAction::Resolve, "Resolve", ButtonStyle::Success),
                ],
            ),
            _ => Vec::new(),
        };
        let mentions = CreateAllowedMentions::new().empty_roles().empty_users().everyone(false);
        self.post(id_of(agents.as_str()), &m.id, &content, components, Some(embed), mentions).await
    }

    /// Checks, for `frontdesk doctor`: the token, the application id, the privileged intent and
    /// the public key.
    pub async fn doctor(&self) -> Vec<(String, Health)> {
        let mut out = Vec::new();
        out.push(("discord token".to_string(), self.healthcheck().await));
        match self.http.get_current_application_info().await {
            Ok(app) => {
                let expected = self.config.application_id.trim();
                let ok = app.id.get().to_string() == expected;
                out.push((
                    "discord application id".to_string(),
                    Health {
                        ok,
                        detail: if ok {
                            format!("the token belongs to application {} ({})", app.name, app.id)
                        } else {
                            format!(
                                "the token belongs to application {} ({}), but application_id is {expected}",
                                app.name, app.id
                            )
                        },
                    },
                ));
                let flags = app.flags.unwrap_or(ApplicationFlags::empty());
                let content = flags.intersects(
                    ApplicationFlags::GATEWAY_MESSAGE_CONTENT | ApplicationFlags::GATEWAY_MESSAGE_CONTENT_LIMITED,
                );
                out.push((
                    "discord message content intent".to_string(),
                    Health {
                        ok: content,
                        detail: if content {
                            "the Message Content intent is enabled".into()
                        } else {
                            "the Message Content intent is off: enable it under Bot → Privileged Gateway Intents, or the bot cannot read questions".into()
                        },
                    },
                ));
                if let Some(verifier_key) = self.verifier.as_ref().map(|_| self.config.public_key.trim().to_lowercase())
                {
                    let ok = app.verify_key.to_lowercase() == verifier_key;
                    out.push((
                        "discord public key".to_string(),
                        Health {
                            ok,
                            detail: if ok {
                                "public_key matches the application's".into()
                            } else {
                                "public_key differs from the application's Public Key (General Information); interaction requests would be refused".into()
                            },
                        },
                    ));
                }
            }
            Err(e) => out.push((
                "discord application id".to_string(),
                Health {
                    ok: false,
                    detail: format!("could not read the application: {}", map_error(e, "read the application")),
                },
            )),
        }
        if self.config.interactions_endpoint && self.verifier.is_none() {
            out.push((
                "discord public key".to_string(),
                Health { ok: false, detail: "interactions_endpoint is on but public_key is not set".into() },
            ));
        }
        out
    }
}

/// The HTTP status of a request Discord refused, if it was one.
fn http_status(e: &serenity::Error) -> Option<u16> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => Some(r.status_code.as_u16()),
        _ => None,
    }
}

/// Discord's JSON error code of a failed request, if any.
pub(crate) fn discord_code(e: &serenity::Error) -> Option<isize> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => Some(r.error.code),
        _ => None,
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Removes the bot's own mention from a message, keeping the question.
pub(crate) fn strip_bot_mention(text: &str, bot: Option<u64>) -> String {
    match bot {
        Some(b) => text.replace(&format!("<@{b}>"), "").replace(&format!("<@!{b}>"), "").trim().to_string(),
        None => text.trim().to_string(),
    }
}

/// A thread name from the customer's question (Discord allows 100 characters).
fn thread_title(text: &str, bot: Option<u64>) -> String {
    let text = strip_bot_mention(text, bot);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if first.is_empty() {
        "Support".into()
    } else {
        render::truncate(first, 80)
    }
}

#[async_trait]
impl ChannelAdapter for DiscordAdapter {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    async fn run(&self, inbox: Arc<dyn InboxSink>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        let Some(me) = self.me.upgrade() else {
            return Err(AdapterError::Unavailable {
                platform: PLATFORM,
                message: "the adapter is being dropped".into(),
            });
        };
        if let Ok(mut slot) = self.inbox.write() {
            *slot = Some(inbox.clone());
        }
        let result = run_gateway(me, inbox, shutdown).await;
        if let Ok(mut slot) = self.inbox.write() {
            *slot = None;
        }
        result
    }

    async fn deliver(&self, m: &Outbound) -> Result<Delivered, AdapterError> {
        if let OutboundKind::AgentSummary { agents_channel, summary } = &m.kind {
            return self.deliver_summary(m, agents_channel.as_ref(), summary).await;
        }
        let ctx = ReplyContext::from_value(&m.reply_context)?;
        let channel = self.reply_channel(&ctx).await?;
        let policy_channel = id_of(&ctx.channel);
        let no_pings = CreateAllowedMentions::new().empty_roles().empty_users().everyone(false);
        match &m.kind {
            OutboundKind::Answer { turn_id, citations, .. } => {
                let text = render::answer_text(&m.text, citations);
                let buttons = Self::buttons(
                    policy_channel,
                    channel,
                    &[
                        (
                            UserAction::Feedback { turn_id: turn_id.clone(), helpful: true },
                            "Helpful",
                            ButtonStyle::Success,
                        ),
                        (
                            UserAction::Feedback { turn_id: turn_id.clone(), helpful: false },
                            "Not helpful",
                            ButtonStyle::Secondary,
                        ),
                        (UserAction::RequestHuman, "Talk to a person", ButtonStyle::Primary),
                    ],
                );
                self.post(channel, &m.id, &text, buttons, None, no_pings).await
            }
            OutboundKind::Handoff { mention } => {
                let text = render::handoff_text(&m.text, mention.as_deref());
                let mut allowed = CreateAllowedMentions::new().empty_roles().empty_users().everyone(false);
                let found = mention.as_deref().map(render::mentions_in).unwrap_or_default();
                let roles: Vec<RoleId> = found
                    .iter()
                    .filter_map(|x| if let Mention::Role(r) = x { Some(RoleId::new(*r)) } else { None })
                    .collect();
                let users: Vec<UserId> = found
                    .iter()
                    .filter_map(|x| if let Mention::User(u) = x { Some(UserId::new(*u)) } else { None })
                    .collect();
                if !roles.is_empty() {
                    allowed = allowed.roles(roles);
                }
                if !users.is_empty() {
                    allowed = allowed.users(users);
                }
                if found.contains(&Mention::Everyone) {
                    allowed = allowed.everyone(true);
                }
                self.post(channel, &m.id, &text, Vec::new(), None, allowed).await
            }
            OutboundKind::Notice | OutboundKind::AgentSummary { .. } => {
                let delivered = self.post(channel, &m.id, &m.text, Vec::new(), None, no_pings).await?;
                if let (Some(card), Some(thread)) = (&ctx.card, &ctx.thread) {
                    self.update_card(card, policy_channel, id_of(thread)).await;
                }
                Ok(delivered)
            }
        }
    }

    async fn doctor(&self) -> Vec<(String, Health)> {
        DiscordAdapter::doctor(self).await
    }

    async fn healthcheck(&self) -> Health {
        match self.http.get_current_user().await {
            Ok(user) => {
                if let Ok(mut b) = self.bot_user.write() {
                    b.get_or_insert(user.id.get());
                }
                Health { ok: true, detail: format!("signed in to Discord as {} ({})", user.name, user.id) }
            }
            Err(e) => Health { ok: false, detail: map_error(e, "sign in with the bot token").to_string() },
        }
    }

    /// Shows "frontdesk is typing…" in the conversation while the engine works on a message.
    async fn working(&self, message: &Inbound, busy: bool) {
        if !busy || message.source != Source::Discord || message.action.is_some() {
            return;
        }
        let Ok(ctx) = ReplyContext::from_value(&message.reply_context) else { return };
        let channel = ctx.thread.as_deref().map(id_of).unwrap_or_else(|| id_of(&ctx.channel));
        if let Err(e) = self.http.broadcast_typing(ChannelId::new(channel)).await {
            tracing::debug!(error = %e, "typing indicator not shown");
        }
    }
}

/// Connects to the gateway and dispatches events until shutdown.
async fn run_gateway(
    adapter: Arc<DiscordAdapter>,
    inbox: Arc<dyn InboxSink>,
    shutdown: CancellationToken,
) -> Result<(), AdapterError> {
    // Check the token first: a refused token is final, and Discord may be briefly unreachable.
    let mut delay = Duration::from_secs(1);
    loop {
        match adapter.http.get_current_user().await {
            Ok(user) => {
                if let Ok(mut b) = adapter.bot_user.write() {
                    *b = Some(user.id.get());
                }
                break;
            }
            Err(e) => {
                let e = map_error(e, "sign in to Discord with the bot token");
                if !e.retryable() {
                    return Err(e);
                }
                tracing::warn!(error = %e, retry_in_s = delay.as_secs(), "Discord is not reachable yet");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
    let handler = Gateway { adapter: adapter.clone(), inbox };
    let http = build_http(&adapter.config);
    let mut client = serenity::client::ClientBuilder::new_with_http(http, intents())
        .event_handler(handler)
        .await
        .map_err(|e| map_error(e, "start the gateway client"))?;
    let manager = client.shard_manager.clone();
    let mut running = tokio::spawn(async move { client.start().await });
    tokio::select! {
        _ = shutdown.cancelled() => {
            manager.shutdown_all().await;
            // A shard that had not started yet leaves `start` waiting: stop it.
            if tokio::time::timeout(Duration::from_secs(3), &mut running).await.is_err() {
                running.abort();
            }
            Ok(())
        }
        ended = &mut running => match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(map_error(e, "stay connected to the Discord gateway")),
            Err(e) => Err(AdapterError::Unavailable { platform: PLATFORM, message: format!("the gateway task failed: {e}") }),
        },
    }
}

/// The gateway's events, handed to the adapter.
struct Gateway {
    adapter: Arc<DiscordAdapter>,
    inbox: Arc<dyn InboxSink>,
}

#[async_trait]
impl EventHandler for Gateway {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        if let Ok(mut b) = self.adapter.bot_user.write() {
            *b = Some(ready.user.id.get());
        }
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "connected to the Discord gateway");
        if let Err(e) = crate::interactions::register_commands(&self.adapter.http).await {
            tracing::error!(error = %e, "the slash commands could not be registered");
        }
    }

    async fn thread_create(&self, _ctx: Context, thread: GuildChannel) {
        self.adapter.remember_channel(
            thread.id.get(),
            ChannelInfo {
                is_thread: is_thread_kind(thread.kind),
                parent: thread.parent_id.map(|p| p.get()),
                guild: Some(thread.guild_id.get()),
            },
        );
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        let inbound = match self.adapter.inbound_from_message(&msg).await {
            Ok(Some(i)) => i,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(message = %msg.id, error = %e, "a Discord message could not be read");
                return;
            }
        };
        match self.adapter.hand_over(self.inbox.as_ref(), inbound).await {
            Ok(true) => tracing::debug!(message = %msg.id, "message accepted"),
            Ok(false) => tracing::debug!(message = %msg.id, "message already accepted (a replay)"),
            Err(e) => {
                tracing::error!(message = %msg.id, error = %e, "a Discord message was NOT accepted: the inbox refused it")
            }
        }
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let id = interaction.id();
        let token = interaction.token().to_string();
        let response = self.adapter.handle_interaction(self.inbox.as_ref(), interaction).await;
        if let Err(e) = self.adapter.http.create_interaction_response(id, &token, &response, Vec::new()).await {
            tracing::warn!(interaction = %id, error = %e, "could not answer an interaction");
        }
    }
}
