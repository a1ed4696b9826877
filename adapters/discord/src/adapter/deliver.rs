//! Delivery: frontdesk's replies posted in the customer's thread (created from their message
//! the first time), and the summary card posted in the agents' channel.

use super::{discord_code, id_of, CardRef, ChannelInfo, DiscordAdapter, ReplyContext, PLATFORM};
use crate::config::is_snowflake;
use crate::errors::map_error;
use crate::render::{self, ButtonAction, MESSAGE_LIMIT};
use frontdesk_channel::{AdapterError, ChannelId as FdChannelId, Delivered, Outbound, UserAction};
use serenity::all::{
    ButtonStyle, ChannelId, CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed, CreateMessage,
    CreateThread, EditMessage, MessageId, Nonce,
};

impl DiscordAdapter {
    /// The channel a reply goes to: the conversation's thread, created from the customer's
    /// message the first time (its id is the message's id, so a retried delivery finds it).
    pub(super) async fn reply_channel(&self, ctx: &ReplyContext) -> Result<u64, AdapterError> {
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
    pub(super) async fn post(
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
    pub(super) async fn update_card(&self, card: &CardRef, customer_channel: u64, thread: u64) {
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

    pub(super) async fn deliver_summary(
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
}
