//! Intake: the gateway connection and its events, and a Discord message turned into an
//! [`Inbound`] — its workspace (for a DM, the server its sender shares with the bot), channel,
//! conversation and reply context.

use super::{
    build_http, http_status, intents, is_thread_kind, now_ms, ChannelInfo, DiscordAdapter, ReplyContext, PLATFORM,
};
use crate::errors::map_error;
use crate::render;
use async_trait::async_trait;
use frontdesk_channel::{
    AdapterError, Attachment, Author, AuthorId, ChannelId as FdChannelId, ConversationKey, EventId, Inbound, InboxSink,
    InvalidId, Source, WorkspaceId,
};
use serenity::all::{
    Context, CreateAllowedMentions, EventHandler, GuildChannel, Interaction, Message, MessageType, Ready, RoleId,
    UserId,
};
use serenity::http::GuildPagination;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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

/// Why a Discord message or interaction did not become an inbound message.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Discord sent an id that is not a usable frontdesk id (an empty or oversized one).
    #[error("Discord sent an id frontdesk cannot use: {0}")]
    Id(#[from] InvalidId),
    /// The reply context could not be written as JSON.
    #[error("the reply context could not be written: {0}")]
    ReplyContext(#[from] serde_json::Error),
}

/// Why a message or interaction has no workspace to be answered from.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NoWorkspace {
    /// The server's id is not a usable workspace id.
    #[error(transparent)]
    Id(#[from] InvalidId),
    /// A direct message that no workspace answers; the text is the note for its sender.
    #[error("{0}")]
    Dm(&'static str),
}

impl DiscordAdapter {
    /// The workspace of a message or interaction: its server's, or for a direct message the
    /// one [`Self::dm_workspace`] finds for its sender. The error's text is what to tell the
    /// sender.
    pub(crate) async fn workspace_for(&self, guild: Option<u64>, user: UserId) -> Result<WorkspaceId, NoWorkspace> {
        match guild {
            Some(g) => Ok(WorkspaceId::new(g.to_string())?),
            None => self.dm_workspace(user).await.map_err(NoWorkspace::Dm),
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
    pub(crate) fn conversation_key(guild: Option<u64>, thread: u64) -> Result<ConversationKey, InvalidId> {
        match guild {
            Some(g) => ConversationKey::new(format!("{g}:{thread}")),
            None => ConversationKey::new(format!("dm:{thread}")),
        }
    }

    /// Turns a gateway message into an inbound message, or `None` when it is not for frontdesk
    /// (the bot's own, another bot's, a system notice) or is a direct message that no workspace
    /// answers (its sender is told, in the DM, where to ask).
    pub async fn inbound_from_message(&self, msg: &Message) -> Result<Option<Inbound>, IntakeError> {
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
            (_, Err(NoWorkspace::Id(e))) => return Err(e.into()),
            (_, Err(NoWorkspace::Dm(note))) => {
                self.note_in_dm(channel_id, msg.id.get(), note).await;
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
            id: EventId::new(msg.id.get().to_string())?,
            source: Source::Discord,
            workspace,
            channel: FdChannelId::new(channel.to_string())?,
            conversation: Self::conversation_key(guild, conversation_thread)?,
            author: Author {
                id: AuthorId::new(msg.author.id.get().to_string())?,
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
            reply_context: serde_json::to_value(&ctx)?,
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

/// Connects to the gateway and dispatches events until shutdown.
pub(super) async fn run_gateway(
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
