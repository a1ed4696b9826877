//! Slash commands and button presses, from the gateway or the HTTP interactions endpoint alike:
//! each becomes an inbound message (with its `UserAction`) or a reply to an admin, and is
//! answered with the interaction response Discord expects.

use crate::adapter::{now_ms, CardRef, DiscordAdapter, IntakeError, ReplyContext};
use crate::config::is_snowflake;
use crate::render::{self, parse_custom_id, ButtonAction};
use frontdesk_channel::{
    Author, AuthorId, ChannelId as FdChannelId, EventId, Inbound, InboxSink, Source, UserAction, WorkspaceId,
};
use serenity::all::{
    ButtonStyle, ChannelId, ChannelType, CommandDataOption, CommandDataOptionValue, CommandInteraction,
    CommandOptionType, ComponentInteraction, CreateAllowedMentions, CreateCommand, CreateCommandOption,
    CreateInteractionResponse, CreateInteractionResponseMessage, CreateMessage, Http, Interaction, InteractionContext,
    Member, Nonce, PartialChannel, Permissions, User,
};

/// The slash commands frontdesk registers (globally, for every server the bot is in, when the
/// gateway connects):
/// - `/ask question:<text>` — anyone: ask a question; the answer comes in a thread;
/// - `/frontdesk policy show [channel]` and `/frontdesk policy set key:<k> value:<v> [channel]`
///   — members with Manage Server: read or change the channel's policy.
pub fn commands() -> Vec<CreateCommand> {
    let channel_option = || {
        CreateCommandOption::new(CommandOptionType::Channel, "channel", "The channel (default: this one)")
            .required(false)
            .channel_types(vec![ChannelType::Text, ChannelType::Forum, ChannelType::News])
    };
    vec![
        CreateCommand::new("ask").description("Ask the support assistant a question").add_option(
            CreateCommandOption::new(CommandOptionType::String, "question", "Your question")
                .required(true)
                .max_length(1500),
        ),
        CreateCommand::new("frontdesk")
            .description("Support assistant settings")
            .default_member_permissions(Permissions::MANAGE_GUILD)
            .contexts(vec![InteractionContext::Guild])
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::SubCommandGroup,
                    "policy",
                    "The channel's answering policy",
                )
                .add_sub_option(
                    CreateCommandOption::new(CommandOptionType::SubCommand, "show", "Show the channel's policy")
                        .add_sub_option(channel_option()),
                )
                .add_sub_option(
                    CreateCommandOption::new(CommandOptionType::SubCommand, "set", "Change one policy key")
                        .add_sub_option(
                            CreateCommandOption::new(
                                CommandOptionType::String,
                                "key",
                                "The key, e.g. answer_top_level",
                            )
                            .required(true),
                        )
                        .add_sub_option(
                            CreateCommandOption::new(CommandOptionType::String, "value", "The new value")
                                .required(true),
                        )
                        .add_sub_option(channel_option()),
                ),
            ),
    ]
}

/// Registers (replaces) the global slash commands.
pub(crate) async fn register_commands(http: &Http) -> Result<(), serenity::Error> {
    http.create_global_commands(&commands()).await.map(|_| ())
}

fn ephemeral(text: impl Into<String>) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(render::truncate(&text.into(), render::MESSAGE_LIMIT))
            .ephemeral(true)
            .allowed_mentions(CreateAllowedMentions::new().empty_roles().empty_users().everyone(false)),
    )
}

const INBOX_FAILED: &str = "Sorry, that did not go through. Please try again in a moment.";

fn display_name(user: &User, member: Option<&Member>) -> String {
    member.and_then(|m| m.nick.clone()).or_else(|| user.global_name.clone()).unwrap_or_else(|| user.name.clone())
}

impl DiscordAdapter {
    /// Handles one interaction and returns Discord's response to it. Whatever goes wrong, the
    /// person who pressed or typed gets a message saying so.
    pub async fn handle_interaction(
        &self,
        inbox: &dyn InboxSink,
        interaction: Interaction,
    ) -> CreateInteractionResponse {
        match interaction {
            Interaction::Ping(_) => CreateInteractionResponse::Pong,
            Interaction::Component(c) => self.on_button(inbox, &c).await,
            Interaction::Command(c) => match c.data.name.as_str() {
                "ask" => self.on_ask(inbox, &c).await,
                "frontdesk" => self.on_policy_command(&c).await,
                other => ephemeral(format!("frontdesk has no /{other} command.")),
            },
            Interaction::Autocomplete(_) | Interaction::Modal(_) => {
                ephemeral("frontdesk does not handle this kind of interaction.")
            }
            _ => ephemeral("frontdesk does not handle this kind of interaction."),
        }
    }

    async fn on_button(&self, inbox: &dyn InboxSink, c: &ComponentInteraction) -> CreateInteractionResponse {
        let ButtonAction { action, channel, thread } = match parse_custom_id(&c.data.custom_id) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(custom_id = %c.data.custom_id, error = %e, "an unknown button was pressed");
                return ephemeral(format!("This button cannot be handled: {e}."));
            }
        };
        let guild = c.guild_id.map(|g| g.get());
        let user = &c.user;
        let roles = c.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
        let is_agent = guild.is_some() && self.is_agent(user.id.get(), &roles);
        if matches!(action, UserAction::Claim | UserAction::Resolve) && !is_agent {
            return ephemeral("Only members of the support team can claim or resolve a conversation.");
        }
        let workspace = match self.workspace_for(guild, user.id).await {
            Ok(ws) => ws,
            Err(why) => return ephemeral(why.to_string()),
        };
        let text = match &action {
            UserAction::Claim => "(claimed the conversation)",
            UserAction::Resolve => "(resolved the conversation)",
            UserAction::Feedback { helpful: true, .. } => "(rated the answer helpful)",
            UserAction::Feedback { helpful: false, .. } => "(rated the answer not helpful)",
            UserAction::RequestHuman => "(asked to talk to a person)",
        };
        let rating = match &action {
            UserAction::Feedback { helpful, .. } => Some(*helpful),
            _ => None,
        };
        let card = match &action {
            UserAction::Claim | UserAction::Resolve => Some(CardRef {
                channel: c.message.channel_id.get().to_string(),
                message: c.message.id.get().to_string(),
                heading: c.message.content.lines().next().unwrap_or_default().to_string(),
                done: if action == UserAction::Claim { "claimed" } else { "resolved" }.to_string(),
                by: user.id.get().to_string(),
            }),
            _ => None,
        };
        let ctx = ReplyContext {
            guild: guild.map(|g| g.to_string()),
            channel: channel.to_string(),
            thread: Some(thread.to_string()),
            card,
            ..ReplyContext::default()
        };
        let inbound = match self.interaction_inbound(
            c.id.get(),
            workspace,
            guild,
            channel,
            thread,
            user,
            c.member.as_ref(),
            is_agent,
            text.to_string(),
            &ctx,
            Some(action),
        ) {
            Ok(i) => i,
            Err(e) => return ephemeral(format!("This button cannot be handled: {e}.")),
        };
        match (self.hand_over(inbox, inbound).await, rating) {
            // A rating shows on the answer at once, in place of the rating buttons.
            (Ok(_), Some(helpful)) => {
                let talk = DiscordAdapter::buttons(
                    channel,
                    thread,
                    &[(UserAction::RequestHuman, "Talk to a person", ButtonStyle::Primary)],
                );
                CreateInteractionResponse::UpdateMessage(
                    CreateInteractionResponseMessage::new()
                        .content(render::with_rating(&c.message.content, helpful, user.id.get()))
                        .components(talk)
                        .allowed_mentions(CreateAllowedMentions::new().empty_roles().empty_users().everyone(false)),
                )
            }
            // Acknowledged without changing the message; the engine's reply follows in the thread.
            (Ok(_), None) => CreateInteractionResponse::Acknowledge,
            (Err(e), _) => {
                tracing::error!(interaction = %c.id, error = %e, "a button press was NOT accepted");
                ephemeral(INBOX_FAILED)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn interaction_inbound(
        &self,
        id: u64,
        workspace: WorkspaceId,
        guild: Option<u64>,
        channel: u64,
        thread: u64,
        user: &User,
        member: Option<&Member>,
        is_agent: bool,
        text: String,
        ctx: &ReplyContext,
        action: Option<UserAction>,
    ) -> Result<Inbound, IntakeError> {
        Ok(Inbound {
            id: EventId::new(id.to_string())?,
            source: Source::Discord,
            workspace,
            channel: FdChannelId::new(channel.to_string())?,
            conversation: Self::conversation_key(guild, thread)?,
            author: Author {
                id: AuthorId::new(user.id.get().to_string())?,
                display_name: Some(display_name(user, member)),
                is_bot: user.bot,
                is_agent,
            },
            text,
            attachments: Vec::new(),
            received_at_ms: now_ms(),
            addressed_to_bot: true,
            top_level: false,
            reply_context: serde_json::to_value(ctx)?,
            action,
            unverified_sender: false,
        })
    }

    /// Where an interaction happened: (policy channel, whether it is a thread).
    async fn interaction_channel(&self, channel_id: u64, partial: Option<&PartialChannel>) -> (u64, bool) {
        if let Some(p) = partial {
            let thread =
                matches!(p.kind, ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread);
            return (if thread { p.parent_id.map(|x| x.get()).unwrap_or(channel_id) } else { channel_id }, thread);
        }
        match self.channel_info(channel_id).await {
            Ok(i) if i.is_thread => (i.parent.unwrap_or(channel_id), true),
            _ => (channel_id, false),
        }
    }

    /// `/ask`: the question is posted in the channel under the asker's name (so the thread has a
    /// message to start from and everyone sees what was asked), then handed to the engine.
    async fn on_ask(&self, inbox: &dyn InboxSink, c: &CommandInteraction) -> CreateInteractionResponse {
        let question = c.data.options.iter().find(|o| o.name == "question").and_then(|o| match &o.value {
            CommandDataOptionValue::String(s) => Some(s.trim().to_string()),
            _ => None,
        });
        let Some(question) = question.filter(|q| !q.is_empty()) else {
            return ephemeral("Please write your question after /ask.");
        };
        let guild = c.guild_id.map(|g| g.get());
        // Before anything is posted: a DM that no workspace answers gets a note instead.
        let workspace = match self.workspace_for(guild, c.user.id).await {
            Ok(ws) => ws,
            Err(why) => return ephemeral(why.to_string()),
        };
        let channel_id = c.channel_id.get();
        let (policy_channel, in_thread) = match guild {
            Some(_) => self.interaction_channel(channel_id, c.channel.as_ref()).await,
            None => (channel_id, true),
        };
        let asker = display_name(&c.user, c.member.as_deref());
        let echo = CreateMessage::new()
            .content(render::truncate(&format!("**{asker}** asked: {question}"), render::MESSAGE_LIMIT))
            .allowed_mentions(CreateAllowedMentions::new().empty_roles().empty_users().everyone(false))
            // The same interaction replayed posts nothing new.
            .nonce(Nonce::String(render::nonce(&format!("ask-{}", c.id.get()), 0)))
            .enforce_nonce(true);
        let posted = match ChannelId::new(channel_id).send_message(&*self.http, echo).await {
            Ok(m) => m,
            Err(e) => {
                let e = crate::errors::map_error(e, "post your question in this channel");
                tracing::warn!(error = %e, "/ask could not post the question");
                return ephemeral(format!("Sorry, I could not post your question here: {e}"));
            }
        };
        let (thread, ctx) = if guild.is_none() || in_thread {
            let ctx = ReplyContext {
                guild: guild.map(|g| g.to_string()),
                channel: policy_channel.to_string(),
                thread: Some(channel_id.to_string()),
                ..ReplyContext::default()
            };
            (channel_id, ctx)
        } else {
            let ctx = ReplyContext {
                guild: guild.map(|g| g.to_string()),
                channel: policy_channel.to_string(),
                thread: None,
                message: Some(posted.id.get().to_string()),
                title: Some(render::truncate(&question, 80)),
                card: None,
            };
            (posted.id.get(), ctx)
        };
        let is_agent = guild.is_some()
            && self.is_agent(c.user.id.get(), &c.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default());
        let inbound = match self.interaction_inbound(
            c.id.get(),
            workspace,
            guild,
            policy_channel,
            thread,
            &c.user,
            c.member.as_deref(),
            is_agent,
            question,
            &ctx,
            None,
        ) {
            Ok(mut i) => {
                i.top_level = !in_thread;
                i
            }
            Err(e) => return ephemeral(format!("Sorry, your question could not be taken: {e}.")),
        };
        match self.hand_over(inbox, inbound).await {
            Ok(_) => ephemeral(if in_thread || guild.is_none() {
                "Got it — the answer will appear here."
            } else {
                "Got it — the answer will appear in a thread under your question."
            }),
            Err(e) => {
                tracing::error!(interaction = %c.id, error = %e, "an /ask question was NOT accepted");
                ephemeral(INBOX_FAILED)
            }
        }
    }

    /// An `agents_channel` set from a server must be one of that server's channels: the agents'
    /// cards show customers' questions and conversations. Returns the value to store (a channel
    /// id; a `#channel` mention is taken as its id, `none` clears it), or why it is refused.
    async fn agents_channel_in_server(&self, guild: u64, value: &str) -> Result<String, String> {
        let value = value.trim();
        if value.is_empty() || value == "none" {
            return Ok(value.to_string());
        }
        let id = value.strip_prefix("<#").and_then(|v| v.strip_suffix('>')).unwrap_or(value);
        let Some(channel) = id.parse::<u64>().ok().filter(|_| is_snowflake(id)) else {
            return Err(format!(
                "agents_channel must be a channel of this server: #mention it or give its id (right-click the channel → Copy Channel ID), not {value:?}."
            ));
        };
        match self.channel_info(channel).await {
            Ok(info) if info.guild == Some(guild) => Ok(channel.to_string()),
            Ok(_) => Err(format!(
                "<#{channel}> is not a channel of this server. The agents' summary cards show customers' questions and conversations, so agents_channel must be one of this server's own channels."
            )),
            Err(e) => {
                let e = crate::errors::map_error(e, &format!("look channel {channel} up"));
                if e.retryable() {
                    Err(format!("I could not check channel {channel} just now ({e}); please try again in a moment."))
                } else {
                    Err(format!(
                        "I cannot see channel {channel}: check the id, and that it is a channel of this server my role can view."
                    ))
                }
            }
        }
    }

    /// `/frontdesk policy show|set`: only for members with Manage Server (or Administrator).
    async fn on_policy_command(&self, c: &CommandInteraction) -> CreateInteractionResponse {
        let Some(guild) = c.guild_id.map(|g| g.get()) else {
            return ephemeral("Policies belong to server channels: use this command in the server.");
        };
        let permissions = c.member.as_ref().and_then(|m| m.permissions).unwrap_or(Permissions::empty());
        if !permissions.intersects(Permissions::MANAGE_GUILD | Permissions::ADMINISTRATOR) {
            return ephemeral("Only members with the Manage Server permission can see or change frontdesk's policies.");
        }
        let Some(group) = c.data.options.iter().find(|o| o.name == "policy") else {
            return ephemeral("Use /frontdesk policy show or /frontdesk policy set.");
        };
        let CommandDataOptionValue::SubCommandGroup(subs) = &group.value else {
            return ephemeral("Use /frontdesk policy show or /frontdesk policy set.");
        };
        let Some(sub) = subs.first() else {
            return ephemeral("Use /frontdesk policy show or /frontdesk policy set.");
        };
        let CommandDataOptionValue::SubCommand(args) = &sub.value else {
            return ephemeral("Use /frontdesk policy show or /frontdesk policy set.");
        };
        let text_arg = |name: &str| -> Option<String> {
            args.iter().find(|o| o.name == name).and_then(|o: &CommandDataOption| match &o.value {
                CommandDataOptionValue::String(s) => Some(s.trim().to_string()),
                _ => None,
            })
        };
        let chosen = args.iter().find_map(|o| match (&o.value, o.name.as_str()) {
            (CommandDataOptionValue::Channel(ch), "channel") => Some(ch.get()),
            _ => None,
        });
        let channel = match chosen {
            Some(ch) => ch,
            None => self.interaction_channel(c.channel_id.get(), c.channel.as_ref()).await.0,
        };
        let (Ok(ws), Ok(ch)) = (WorkspaceId::new(guild.to_string()), FdChannelId::new(channel.to_string())) else {
            return ephemeral("This channel cannot be identified.");
        };
        let result =
            match sub.name.as_str() {
                "show" => self.policies.show(&ws, &ch).await,
                "set" => match (text_arg("key"), text_arg("value")) {
                    (Some(k), Some(v)) if !k.is_empty() => {
                        let v = if k == "agents_channel" {
                            match self.agents_channel_in_server(guild, &v).await {
                                Ok(v) => v,
                                Err(why) => return ephemeral(format!("The policy was not changed: {why}")),
                            }
                        } else {
                            v
                        };
                        let r = self.policies.set(&ws, &ch, &k, &v).await;
                        if r.is_ok() {
                            tracing::info!(guild, channel, key = %k, by = %c.user.id, "policy changed from Discord");
                        }
                        r
                    }
                    _ => Err("Give both a key and a value, e.g. /frontdesk policy set key:answer_top_level value:true"
                        .into()),
                },
                other => Err(format!("Unknown policy command {other:?}; use show or set.")),
            };
        match result {
            Ok(policy) => ephemeral(format!("Policy for <#{channel}>:\n```\n{}\n```", policy.trim())),
            Err(e) => ephemeral(format!("The policy was not changed: {e}")),
        }
    }
}
