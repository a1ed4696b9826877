//! `SlackAdapter`: who the bot and the agents are in each workspace, which token to use, and the
//! `ChannelAdapter` side — delivering replies in threads and the 👀 reaction while a turn is
//! decided (nothing of an answer is posted before it is checked; the reply is a new message).

use crate::agents::{GroupCache, Lookup, Membership};
use crate::api::{self, Client};
use crate::blocks::{self, ButtonValue};
use crate::config::{SlackConfig, SlackMode};
use crate::normalise::{self, ClickFacts, Malformed, MessageFacts};
use crate::reply::{CardRef, Place, ReplyContext};
use crate::store::SlackStore;
use crate::SlackError;
use async_trait::async_trait;
use frontdesk_channel::{AdapterError, ChannelAdapter, Delivered, Health, Inbound, InboxSink, Outbound, OutboundKind};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use slack_morphism::SlackApiToken;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The reaction shown on a customer's message while the engine works on it.
pub const WORKING_REACTION: &str = "eyes";

/// The Slack channel.
pub struct SlackAdapter {
    pub(crate) config: SlackConfig,
    pub(crate) client: Client,
    pub(crate) store: SlackStore,
    /// The inbox given to `run`; `None` before `run` (and after it returns): requests get 503.
    pub(crate) inbox: RwLock<Option<Arc<dyn InboxSink>>>,
    /// Our bot's user id per team.
    bot_users: Mutex<HashMap<String, String>>,
    /// Members of each workspace's agents' user group.
    groups: GroupCache,
    pub(crate) me: Weak<SlackAdapter>,
}

impl std::fmt::Debug for SlackAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackAdapter").field("mode", &self.config.mode).finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A reply's context and where it goes (`channel` and `conversation`: the customer's, for when
/// the context does not say); refused when the context is malformed or names no thread.
fn place_of(message: &Outbound, channel: &str, conversation: &str) -> Result<(ReplyContext, Place), AdapterError> {
    // Refused, not logged: the delivery worker logs the refusal once, with the reply's ids.
    let context = ReplyContext::from_value(&message.reply_context)?;
    let place = context.place(channel, conversation).ok_or_else(|| no_place(message))?;
    Ok((context, place))
}

impl SlackAdapter {
    /// Builds the adapter. `tokens` is its sled tree (OAuth installations, encrypted with
    /// `token_encryption_key`; install states). Fails on a config with problems.
    pub fn new(config: SlackConfig, tokens: sled::Tree) -> Result<Arc<SlackAdapter>, SlackError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(SlackError::Config(problems));
        }
        let key = config.encryption_key().map_err(|e| SlackError::Config(vec![("token_encryption_key".into(), e)]))?;
        let client = api::client(&config.api_url).map_err(SlackError::Client)?;
        let groups = GroupCache::new(Duration::from_secs(config.agent_cache_secs));
        Ok(Arc::new_cyclic(|me| SlackAdapter {
            store: SlackStore::new(tokens, key),
            client,
            config,
            inbox: RwLock::new(None),
            bot_users: Mutex::new(HashMap::new()),
            groups,
            me: me.clone(),
        }))
    }

    pub fn config(&self) -> &SlackConfig {
        &self.config
    }

    /// True while `run` is receiving (events are accepted rather than answered with 503).
    pub fn is_receiving(&self) -> bool {
        self.current_inbox().is_some()
    }

    pub(crate) fn current_inbox(&self) -> Option<Arc<dyn InboxSink>> {
        self.inbox.read().ok().and_then(|i| i.clone())
    }

    /// The bot token for `team`: its OAuth installation, else the configured `bot_token`.
    pub(crate) fn token_for(&self, team: &str) -> Result<SlackApiToken, AdapterError> {
        match self.store.installation(team) {
            Ok(Some(install)) => return Ok(api::token(&install.bot_token)),
            Ok(None) => {}
            Err(e) => {
                return Err(AdapterError::Unavailable {
                    platform: "slack",
                    message: format!("cannot read the installation of workspace {team}: {e}"),
                });
            }
        }
        match &self.config.bot_token {
            Some(t) if !t.expose_secret().is_empty() => Ok(api::token(t)),
            _ => Err(AdapterError::Rejected {
                platform: "slack",
                code: "no_installation".into(),
                message: format!(
                    "no bot token for workspace {team}: {}",
                    api::explain("no_installation").unwrap_or("")
                ),
            }),
        }
    }

    /// Our bot's user id in `team`: from the event's `authorizations`, the cache, the
    /// installation, or `auth.test`.
    pub(crate) async fn bot_user(&self, team: &str, hint: Option<&str>) -> Option<String> {
        if let Some(h) = hint {
            if let Ok(mut m) = self.bot_users.lock() {
                m.insert(team.to_string(), h.to_string());
            }
            return Some(h.to_string());
        }
        if let Some(known) = self.bot_users.lock().ok().and_then(|m| m.get(team).cloned()) {
            return Some(known);
        }
        if let Ok(Some(id)) = self.store.installation(team).map(|i| i.and_then(|i| i.bot_user_id)) {
            return Some(id);
        }
        let token = self.token_for(team).ok()?;
        match api::auth_test(&self.client, &token).await {
            Ok(r) => {
                let id = r.user_id.0;
                if let Ok(mut m) = self.bot_users.lock() {
                    m.insert(team.to_string(), id.clone());
                }
                Some(id)
            }
            Err(e) => {
                tracing::warn!(team, error = %e, "cannot learn the bot's user id; relying on bot_id to skip own messages");
                None
            }
        }
    }

    /// Whether `user` of `team` is a support agent of that workspace: listed in its
    /// `[slack.agents.<team>]`, or a member of its agents' user group. Nobody is an agent in a
    /// workspace without agents configured. Never waits long for Slack (see `agents`):
    /// `Unknown` when the user group could not be read, which counts as not an agent.
    pub(crate) async fn agent_status(&self, team: &str, user: &str) -> Membership {
        let Some(agents) = self.config.agents_of(team) else { return Membership::NotMember };
        if agents.user_ids.iter().any(|u| u == user) {
            return Membership::Member;
        }
        let Some(group) = agents.usergroup.clone() else { return Membership::NotMember };
        let me = self.me.upgrade();
        let team_id = team.to_string();
        let lookup = move || -> Lookup {
            Box::pin(async move {
                let Some(me) = me else {
                    return Err(AdapterError::Unavailable { platform: "slack", message: "shutting down".into() });
                };
                let token = me.token_for(&team_id)?;
                api::usergroup_members(&me.client, &token, &group).await
            })
        };
        self.groups.check(team, user, lookup).await
    }

    /// Whether `user` of `team` is a support agent; not when that cannot be checked now.
    pub(crate) async fn is_agent(&self, team: &str, user: &str) -> bool {
        self.agent_status(team, user).await == Membership::Member
    }

    /// A message event's facts → the inbox message.
    pub(crate) async fn message_inbound(&self, facts: MessageFacts) -> Result<Inbound, Malformed> {
        let is_agent = self.is_agent(&facts.team, &facts.user).await;
        facts.into_inbound(is_agent, now_ms())
    }

    /// A click's facts → the inbox message, `is_agent` as checked by the caller.
    pub(crate) fn click_inbound(&self, facts: ClickFacts, is_agent: bool) -> Result<Inbound, Malformed> {
        facts.into_inbound(is_agent, now_ms())
    }

    /// Why a Claim or Resolve by someone who is not an agent of `team` was refused, for the
    /// person who clicked.
    pub(crate) fn not_an_agent_text(&self, team: &str, status: Membership) -> String {
        if status == Membership::Unknown {
            "frontdesk could not check with Slack whether you are on the support team just now, so this was not \
             done. Please try again in a minute."
                .into()
        } else if self.config.agents_of(team).is_some() {
            "Only members of the support team can claim or resolve a conversation.".into()
        } else {
            "Only support agents can claim or resolve a conversation, and no support agents are set up for this \
             workspace yet. Ask whoever runs frontdesk to add your team."
                .into()
        }
    }

    /// Shows `text` to `user` alone in `channel`. Best effort: logged when it fails.
    pub(crate) async fn tell_privately(&self, team: &str, channel: &str, user: &str, text: &str) {
        let result = match self.token_for(team) {
            Ok(token) => api::post_ephemeral(&self.client, &token, channel, user, text).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(team, channel, error = %e, "a private explanation could not be shown");
        }
    }

    /// Reads and hands over one Events API envelope (after its signature was checked).
    /// `Ok(None)` when there was nothing for the inbox.
    pub(crate) async fn intake_event(&self, cb: &normalise::EventCallback) -> Result<Option<Inbound>, Malformed> {
        let bot = self.bot_user(&cb.team_id, cb.bot_user_id.as_deref()).await;
        match normalise::read_event(cb, bot.as_deref())? {
            normalise::EventOutcome::Ignore(why) => {
                tracing::debug!(team = %cb.team_id, event_id = ?cb.event_id, reason = %why, "event ignored");
                Ok(None)
            }
            normalise::EventOutcome::Message(facts) => Ok(Some(self.message_inbound(facts).await?)),
        }
    }

    /// Replaces an answer's rating buttons with who rated it. Best effort: the rating is stored.
    pub(crate) async fn show_rating(&self, team: &str, channel: &str, ts: &str, blocks: Vec<Value>) {
        let body = json!({"channel": channel, "ts": ts, "blocks": blocks});
        self.update_or_log(team, &body, "the rated answer").await;
    }

    /// `chat.update` where a failure only costs a cosmetic change: logged, not returned.
    async fn update_or_log(&self, team: &str, body: &Value, what: &str) {
        let result = match self.token_for(team) {
            Ok(token) => api::update_message(&self.client, &token, body).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, channel = %body["channel"], ts = %body["ts"], "{what} could not be updated");
        }
    }

    /// Shows on the agents' card who claimed or resolved the conversation. Best effort: the
    /// customer was told already, and a card that can't be changed only lacks the status line.
    async fn update_card(&self, team: &str, card: &CardRef) {
        let (channel, ts, done, by) = (&card.channel, &card.ts, card.done.as_str(), card.by.as_str());
        let original = &card.blocks;
        if channel.is_empty() || ts.is_empty() || original.is_empty() {
            return;
        }
        let who = by.replace(['<', '>', '|', '@'], "");
        let text = if done == "claimed" { format!("Claimed by <@{who}>") } else { format!("Resolved by <@{who}>") };
        let body =
            json!({"channel": channel, "ts": ts, "text": text, "blocks": blocks::card_after(original, done, by)});
        self.update_or_log(team, &body, "the agents' card").await;
    }

    /// Posts a reply in the customer's thread, as a new message.
    async fn post(
        &self,
        team: &str,
        place: &Place,
        text: String,
        blocks: Option<Vec<Value>>,
    ) -> Result<Delivered, AdapterError> {
        let token = self.token_for(team)?;
        let mut body = json!({
            "channel": place.channel,
            "thread_ts": place.thread_ts,
            "text": text,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Some(b) = blocks {
            body["blocks"] = json!(b);
        }
        let ts = api::post_message(&self.client, &token, &body).await?;
        Ok(Delivered { platform_message_id: Some(ts) })
    }

    /// Named checks for `frontdesk doctor`.
    pub async fn doctor(&self) -> Vec<(String, Health)> {
        let mut out = Vec::new();
        let ok = |detail: String| Health { ok: true, detail };
        let bad = |detail: String| Health { ok: false, detail };
        let problems = self.config.problems();
        out.push((
            "slack config".to_string(),
            if problems.is_empty() {
                ok(format!("{:?} mode", self.config.mode).to_lowercase())
            } else {
                bad(problems.iter().map(|(k, w)| format!("{k}: {w}")).collect::<Vec<_>>().join("; "))
            },
        ));
        match self.config.mode {
            SlackMode::Events => out.push((
                "slack signing secret".into(),
                if self.config.signing_secret.as_ref().is_some_and(|s| !s.expose_secret().is_empty()) {
                    ok("set; requests older than the signature window are refused".into())
                } else {
                    bad("not set: every event would be refused".into())
                },
            )),
            SlackMode::Socket => out.push((
                "slack app token".into(),
                match &self.config.app_token {
                    Some(t) => match api::open_connection(&self.client, &api::token(t)).await {
                        Ok(()) => ok("apps.connections.open accepts it".into()),
                        Err(e) => bad(e.to_string()),
                    },
                    None => bad("not set".into()),
                },
            )),
        }
        let mut teams: Vec<(String, SlackApiToken)> = Vec::new();
        if let Some(t) = &self.config.bot_token {
            match api::auth_test(&self.client, &api::token(t)).await {
                Ok(r) => {
                    out.push(("slack bot token".into(), ok(format!("valid for team {} ({})", r.team_id.0, r.team))));
                    out.push(("slack bot user".into(), ok(r.user_id.0.clone())));
                    if let Ok(mut m) = self.bot_users.lock() {
                        m.insert(r.team_id.0.clone(), r.user_id.0.clone());
                    }
                    teams.push((r.team_id.0, api::token(t)));
                }
                Err(e) => out.push(("slack bot token".into(), bad(e.to_string()))),
            }
        }
        if self.config.oauth_enabled() {
            match self.store.installed_teams() {
                Ok(installed) if installed.is_empty() => out.push((
                    "slack installations".into(),
                    ok("none yet: an admin of each workspace opens /slack/install".into()),
                )),
                Ok(installed) => {
                    for team in installed {
                        match self.token_for(&team) {
                            Ok(token) => match api::auth_test(&self.client, &token).await {
                                Ok(r) => {
                                    out.push((format!("slack installation {team}"), ok(format!("valid ({})", r.team))));
                                    teams.push((team, token));
                                }
                                Err(e) => out.push((format!("slack installation {team}"), bad(e.to_string()))),
                            },
                            Err(e) => out.push((format!("slack installation {team}"), bad(e.to_string()))),
                        }
                    }
                }
                Err(e) => out.push(("slack installations".into(), bad(e.to_string()))),
            }
        }
        if teams.is_empty() && self.config.agents.is_empty() {
            out.push((
                "slack agents".into(),
                bad("none configured: Claim and Resolve are refused for everyone, and no message takes a thread \
                     over; list each workspace's agents under [slack.agents.<team id>]"
                    .into()),
            ));
        }
        for (team, token) in &teams {
            let name = format!("slack agents in {team}");
            let Some(agents) = self.config.agents_of(team) else {
                out.push((
                    name,
                    bad(format!(
                        "none configured for this workspace: Claim and Resolve are refused for everyone, and no \
                         message takes a thread over; add [slack.agents.{team}] with usergroup or user_ids"
                    )),
                ));
                continue;
            };
            if !agents.user_ids.is_empty() {
                out.push((name, ok(format!("{} user ids", agents.user_ids.len()))));
            }
            if let Some(group) = &agents.usergroup {
                out.push((
                    format!("slack agents' user group {group} in {team}"),
                    match api::usergroup_members(&self.client, token, group).await {
                        Ok(m) if m.is_empty() => bad("resolvable but empty: nobody counts as an agent".into()),
                        Ok(m) => ok(format!("{} members", m.len())),
                        Err(e) => bad(e.to_string()),
                    },
                ));
            }
        }
        out
    }
}

fn answer_value(message: &Outbound, place: &Place, turn_id: &str) -> ButtonValue {
    ButtonValue {
        turn_id: Some(turn_id.to_string()),
        conversation: Some(message.conversation.to_string()),
        channel: place.channel.clone(),
        thread: place.thread_ts.clone(),
    }
}

fn no_place(message: &Outbound) -> AdapterError {
    let text =
        format!("reply {} has no Slack thread to go to (its reply_context names no channel and thread)", message.id);
    tracing::error!("{text}");
    AdapterError::Rejected { platform: "slack", code: "no_thread".into(), message: text }
}

#[async_trait]
impl ChannelAdapter for SlackAdapter {
    fn name(&self) -> &'static str {
        "slack"
    }

    async fn run(&self, inbox: Arc<dyn InboxSink>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        if let Ok(mut slot) = self.inbox.write() {
            *slot = Some(inbox);
        }
        if self.config.agents.is_empty() {
            tracing::warn!(
                "slack: no agents are configured for any workspace ([slack.agents.<team id>]): Claim and Resolve \
                 will be refused for everyone"
            );
        }
        let result = match self.config.mode {
            SlackMode::Events => {
                tracing::info!("slack: receiving events on /slack/events and /slack/interactions");
                shutdown.cancelled().await;
                Ok(())
            }
            SlackMode::Socket => match self.me.upgrade() {
                Some(me) => crate::socket::run(me, shutdown).await,
                None => Ok(()),
            },
        };
        if let Ok(mut slot) = self.inbox.write() {
            *slot = None;
        }
        result
    }

    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
        let team = message.workspace.as_str();
        match &message.kind {
            OutboundKind::AgentSummary { agents_channel, summary } => {
                let Some(agents) = agents_channel else {
                    let text = format!(
                        "no agents' channel is set for channel {}: the summary card of {} was not posted (set the \
                         agents_channel policy)",
                        summary.customer_channel, summary.conversation
                    );
                    return Err(AdapterError::Rejected {
                        platform: "slack",
                        code: "agents_channel_not_set".into(),
                        message: text,
                    });
                };
                let (_, customer) =
                    place_of(message, summary.customer_channel.as_str(), summary.conversation.as_str())?;
                let value = ButtonValue {
                    turn_id: None,
                    conversation: Some(summary.conversation.to_string()),
                    channel: customer.channel,
                    thread: customer.thread_ts,
                };
                let token = self.token_for(team)?;
                let body = json!({
                    "channel": agents.as_str(),
                    "text": blocks::mrkdwn(&message.text),
                    "blocks": blocks::summary_blocks(summary, &value),
                    "unfurl_links": false,
                    "unfurl_media": false,
                });
                let ts = api::post_message(&self.client, &token, &body).await?;
                Ok(Delivered { platform_message_id: Some(ts) })
            }
            OutboundKind::Answer { turn_id, citations, .. } => {
                let (_, place) = place_of(message, message.channel.as_str(), message.conversation.as_str())?;
                let value = answer_value(message, &place, turn_id);
                let blocks = blocks::answer_blocks(&message.text, citations, &value);
                self.post(team, &place, blocks::answer_fallback(&message.text, citations), Some(blocks)).await
            }
            OutboundKind::Handoff { mention } => {
                let (_, place) = place_of(message, message.channel.as_str(), message.conversation.as_str())?;
                self.post(team, &place, blocks::handoff_text(&message.text, mention.as_deref()), None).await
            }
            OutboundKind::Notice => {
                let (context, place) = place_of(message, message.channel.as_str(), message.conversation.as_str())?;
                let delivered = self.post(team, &place, blocks::mrkdwn(&message.text), None).await?;
                if let Some(card) = &context.card {
                    self.update_card(team, card).await;
                }
                Ok(delivered)
            }
        }
    }

    async fn doctor(&self) -> Vec<(String, Health)> {
        SlackAdapter::doctor(self).await
    }

    async fn healthcheck(&self) -> Health {
        if let Some(t) = &self.config.bot_token {
            return match api::auth_test(&self.client, &api::token(t)).await {
                Ok(r) => {
                    Health { ok: true, detail: format!("auth.test ok for team {} as {}", r.team_id.0, r.user_id.0) }
                }
                Err(e) => Health { ok: false, detail: e.to_string() },
            };
        }
        let teams = match self.store.installed_teams() {
            Ok(t) => t,
            Err(e) => return Health { ok: false, detail: e.to_string() },
        };
        if teams.is_empty() {
            return Health { ok: true, detail: "no workspace has installed the app yet (/slack/install)".into() };
        }
        let mut failed = Vec::new();
        for team in &teams {
            let result = match self.token_for(team) {
                Ok(token) => api::auth_test(&self.client, &token).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                failed.push(format!("{team}: {e}"));
            }
        }
        if failed.is_empty() {
            Health { ok: true, detail: format!("auth.test ok for {} installed workspaces", teams.len()) }
        } else {
            Health { ok: false, detail: failed.join("; ") }
        }
    }

    async fn working(&self, message: &Inbound, busy: bool) {
        if message.action.is_some() {
            return;
        }
        let Some(place) = ReplyContext::from_value(&message.reply_context)
            .ok()
            .and_then(|c| c.place(message.channel.as_str(), message.conversation.as_str()))
        else {
            return;
        };
        let Some(ts) = &place.message_ts else { return };
        let team = message.workspace.as_str();
        let token = match self.token_for(team) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot show that the bot is working");
                return;
            }
        };
        let result = if busy {
            api::add_reaction(&self.client, &token, &place.channel, ts, WORKING_REACTION).await
        } else {
            api::remove_reaction(&self.client, &token, &place.channel, ts, WORKING_REACTION).await
        };
        match result {
            Ok(()) => {}
            Err(e) if matches!(api::rejected_code(&e), Some("already_reacted" | "no_reaction")) => {}
            Err(e) => tracing::warn!(busy, error = %e, "the working reaction could not be changed"),
        }
    }
}
