//! Builds the channel adapters the configuration asks for.

use super::ChannelSet;
use crate::config::Config;
use crate::engine::Engine;
use crate::serve::http::Check;
use axum::Router;
use std::sync::Arc;

/// The configured channels, their HTTP routes, and a way to run their diagnostics.
pub struct Channels {
    pub set: ChannelSet,
    pub routes: Router,
    /// Lines for the start-up banner: the URLs to paste into each platform's settings.
    pub endpoints: Vec<String>,
    doctors: Vec<Doctor>,
}

type Doctor = Box<dyn Fn() -> futures::future::BoxFuture<'static, Vec<Check>> + Send + Sync>;

impl Channels {
    /// `frontdesk doctor`'s checks for every configured channel.
    pub async fn doctor(&self) -> Vec<Check> {
        let mut out = Vec::new();
        for d in &self.doctors {
            out.extend(d().await);
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the {channel} channel: {message}")]
pub struct ChannelSetupError {
    pub channel: &'static str,
    pub message: String,
}

/// Builds every adapter whose section is present in the configuration.
pub fn build(config: &Config, engine: &Arc<Engine>) -> Result<Channels, ChannelSetupError> {
    #[allow(unused_mut)]
    let mut channels =
        Channels { set: ChannelSet::new(), routes: Router::new(), endpoints: Vec::new(), doctors: Vec::new() };
    #[allow(unused_variables)]
    let public = config.server.public_url.clone().unwrap_or_else(|| format!("http://{}", config.server.listen));
    #[allow(unused_variables)]
    let db = engine.kb.store.db();

    #[cfg(feature = "slack")]
    if let Some(slack) = &config.channels.slack {
        let setup = |message: String| ChannelSetupError { channel: "slack", message };
        let tree = db.open_tree("slack").map_err(|e| setup(e.to_string()))?;
        let oauth = slack.client_id.is_some();
        let socket = slack.mode == frontdesk_slack::SlackMode::Socket;
        let adapter = frontdesk_slack::SlackAdapter::new(slack.clone(), tree).map_err(|e| setup(e.to_string()))?;
        channels.routes = channels.routes.merge(adapter.router());
        if socket {
            channels.endpoints.push("Slack: Socket Mode (no public URL needed)".into());
        } else {
            channels.endpoints.push(format!("Slack Event Subscriptions request URL: {public}/slack/events"));
            channels.endpoints.push(format!("Slack Interactivity request URL:       {public}/slack/interactions"));
        }
        if oauth {
            channels.endpoints.push(format!("Slack install link: {public}/slack/install"));
            channels.endpoints.push(format!("Slack OAuth redirect URL: {public}/slack/oauth/callback"));
        }
        let doctor = Arc::clone(&adapter);
        channels.doctors.push(Box::new(move || {
            let a = Arc::clone(&doctor);
            Box::pin(async move { named("slack", a.doctor().await) })
        }));
        channels.set = channels.set.with(crate::channel::Source::Slack, adapter);
    }

    #[cfg(feature = "discord")]
    if let Some(discord) = &config.channels.discord {
        let setup = |message: String| ChannelSetupError { channel: "discord", message };
        let console = Arc::new(super::console::StorePolicyConsole::new(engine.policies.clone()));
        let endpoint = discord.interactions_endpoint;
        let adapter =
            frontdesk_discord::DiscordAdapter::new(discord.clone(), console).map_err(|e| setup(e.to_string()))?;
        channels.routes = channels.routes.merge(adapter.router());
        channels.endpoints.push("Discord: gateway connection (messages, buttons and slash commands)".into());
        if endpoint {
            channels.endpoints.push(format!("Discord Interactions Endpoint URL: {public}/discord/interactions"));
        }
        let doctor = Arc::clone(&adapter);
        channels.doctors.push(Box::new(move || {
            let a = Arc::clone(&doctor);
            Box::pin(async move { named("discord", a.doctor().await) })
        }));
        channels.set = channels.set.with(crate::channel::Source::Discord, adapter);
    }

    #[cfg(feature = "email")]
    if let Some(email) = &config.channels.email {
        let setup = |message: String| ChannelSetupError { channel: "email", message };
        let tree = db.open_tree("email").map_err(|e| setup(e.to_string()))?;
        let webhook = email.webhook.secret.is_some();
        let imap = !email.imap.host.is_empty();
        let mailbox = email.address.clone();
        let adapter = frontdesk_email::EmailAdapter::new(email.clone(), tree).map_err(|e| setup(e.to_string()))?;
        channels.routes = channels.routes.merge(adapter.router());
        if imap {
            channels.endpoints.push(format!("Email: reading {mailbox} over IMAP"));
        }
        if webhook {
            channels.endpoints.push(format!("Email inbound webhook URL: {public}/email/inbound"));
        }
        let doctor = Arc::clone(&adapter);
        channels.doctors.push(Box::new(move || {
            let a = Arc::clone(&doctor);
            Box::pin(async move { named("email", a.doctor().await) })
        }));
        channels.set = channels.set.with(crate::channel::Source::Email, adapter);
    }
    Ok(channels)
}

/// An adapter's named health checks as `frontdesk doctor` lines.
#[allow(dead_code)]
fn named(channel: &str, checks: Vec<(String, crate::channel::Health)>) -> Vec<Check> {
    checks
        .into_iter()
        .map(|(name, health)| Check { name: format!("{channel}: {name}"), ok: health.ok, detail: health.detail })
        .collect()
}
