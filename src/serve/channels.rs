//! Builds the channel adapters the configuration asks for.

use super::ChannelSet;
use crate::config::Config;
use crate::engine::Engine;
use crate::serve::http::{Check, Routes};
use std::sync::Arc;

/// The configured channels, their HTTP routes, and a way to run their diagnostics.
pub struct Channels {
    pub set: ChannelSet,
    pub routes: Routes,
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
        Channels { set: ChannelSet::new(), routes: Routes::new(), endpoints: Vec::new(), doctors: Vec::new() };
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
        let imap = !email.imap.host.is_empty();
        let mailbox = email.address.clone();
        let adapter = frontdesk_email::EmailAdapter::new(email.clone(), tree).map_err(|e| setup(e.to_string()))?;
        let webhook = adapter.webhook_on();
        let routes = channels.routes.merge(adapter.router());
        channels.routes = if webhook {
            // Mail carries attachments: the webhook takes larger bodies than the chat platforms send.
            routes.body_limit(frontdesk_email::INBOUND_PATH, adapter.inbound_body_limit())
        } else {
            // Off: answered 404 at once; nobody may make the server read a body it will never use.
            routes.without_body(frontdesk_email::INBOUND_PATH)
        };
        if imap {
            channels.endpoints.push(format!("Email: reading {mailbox} over IMAP"));
        }
        if webhook {
            channels.endpoints.push(format!("Email inbound webhook URL: {public}/email/inbound"));
        }
        let doctor = Arc::clone(&adapter);
        let policies = engine.policies.clone();
        let mailbox_id = mailbox.trim().to_ascii_lowercase();
        channels.doctors.push(Box::new(move || {
            let a = Arc::clone(&doctor);
            let handoffs = email_handoffs(&policies, &mailbox_id);
            Box::pin(async move {
                let mut checks = named("email", a.doctor().await);
                checks.push(handoffs);
                checks
            })
        }));
        channels.set = channels.set.with(crate::channel::Source::Email, adapter);
    }
    Ok(channels)
}

/// Where the support mailbox's handoffs go. In chat a handoff is seen in the channel; by email
/// the customer's thread is theirs alone, so without an agents' address nobody learns of it.
#[cfg(feature = "email")]
fn email_handoffs(policies: &crate::policy::PolicyStore, mailbox: &str) -> Check {
    let name = "email: handoffs".to_string();
    let (Ok(ws), Ok(channel)) = (crate::channel::WorkspaceId::new(mailbox), crate::channel::ChannelId::new(mailbox))
    else {
        return Check { name, ok: false, detail: format!("{mailbox:?} cannot name a workspace") };
    };
    match policies.effective(&ws, &channel) {
        Ok(p) => match p.agents_channel {
            Some(to) => Check { name, ok: true, detail: format!("handed-off threads are forwarded to {to}") },
            None => Check {
                name,
                ok: false,
                detail: format!(
                    "no agents' address: a handed-off customer is told a person will answer, but nobody is sent \
                     the thread; set one with `frontdesk policy set --workspace {mailbox} \
                     agents_channel=team@your-domain`"
                ),
            },
        },
        Err(e) => Check { name, ok: false, detail: format!("policies could not be read: {e}") },
    }
}

/// An adapter's named health checks as `frontdesk doctor` lines.
#[allow(dead_code)]
fn named(channel: &str, checks: Vec<(String, crate::channel::Health)>) -> Vec<Check> {
    checks
        .into_iter()
        .map(|(name, health)| Check { name: format!("{channel}: {name}"), ok: health.ok, detail: health.detail })
        .collect()
}

#[cfg(all(test, feature = "email"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::{PolicyStore, Scope};
    use crate::store::Store;

    #[test]
    fn a_support_mailbox_without_an_agents_address_fails_the_handoff_check() {
        let store = Store::temporary().unwrap();
        let policies = PolicyStore::open(&store).unwrap();
        let check = email_handoffs(&policies, "support@example.com");
        assert!(!check.ok && check.detail.contains("agents_channel="), "{}", check.detail);
        let ws = crate::channel::WorkspaceId::new("support@example.com").unwrap();
        let set = [("agents_channel".to_string(), "team@example.com".to_string())];
        policies.set(&ws, &Scope::Workspace, &set).unwrap().unwrap();
        let check = email_handoffs(&policies, "support@example.com");
        assert!(check.ok && check.detail.contains("team@example.com"), "{}", check.detail);
    }
}
