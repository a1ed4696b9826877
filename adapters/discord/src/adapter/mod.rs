//! The Discord adapter: the gateway connection that receives customers' messages, the delivery
//! of frontdesk's replies, and the health checks.
//!
//! - `intake`: gateway events → [`Inbound`] (and the servers a DM's sender shares with the bot).
//! - `deliver`: replies, hand-offs, notices and the agents' summary card posted to Discord.
//! - `reply`: the reply context carried from a message to its replies.
//! - `doctor`: the checks `frontdesk doctor` runs.

mod deliver;
mod doctor;
mod intake;
mod reply;

pub use intake::IntakeError;
pub(crate) use reply::{CardRef, ReplyContext};

use crate::config::{parse_public_key, DiscordConfig};
use crate::errors::{map_error, DiscordError};
use crate::render::{self, Mention};
use async_trait::async_trait;
use frontdesk_channel::{
    AdapterError, ChannelAdapter, Delivered, Health, Inbound, InboxSink, Outbound, OutboundKind, PolicyConsole, Source,
    UserAction, WorkspaceId,
};
use intake::run_gateway;
use secrecy::ExposeSecret;
use serenity::all::{
    ApplicationId, ButtonStyle, ChannelId, ChannelType, CreateAllowedMentions, GatewayIntents, Http, HttpBuilder,
    Permissions, RoleId, UserId,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) const PLATFORM: &str = "discord";

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
