//! `[email]` as `frontdesk serve` builds it.

use crate::{EmailAdapter, EmailConfig, INBOUND_PATH};
use async_trait::async_trait;
use frontdesk_channel::{
    AdapterError, BuildContext, BuiltChannel, ChannelAdapter, ChannelConfig, ChannelId, Delivered, Health, Inbound,
    InboxSink, Outbound, PolicyConsole, Routes, SetupError, Source, WorkspaceId,
};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl ChannelConfig for EmailConfig {
    fn problems(&self) -> Vec<(String, String)> {
        EmailConfig::problems(self)
    }

    fn build(&self, cx: BuildContext) -> Result<BuiltChannel, SetupError> {
        let adapter = EmailAdapter::new(self.clone(), cx.state).map_err(|e| SetupError::new("email", e))?;
        let mut endpoints = Vec::new();
        if !self.imap.host.is_empty() {
            endpoints.push(format!("Email: reading {} over IMAP", self.address));
        }
        let routes = Routes::from(adapter.router());
        let routes = if adapter.webhook_on() {
            endpoints.push(format!("Email inbound webhook URL: {}/email/inbound", cx.public_url));
            // Mail carries attachments: the webhook takes larger bodies than the chat platforms send.
            routes.body_limit(INBOUND_PATH, adapter.inbound_body_limit())
        } else {
            // Off: answered 404 at once; nobody may make the server read a body it will never use.
            routes.without_body(INBOUND_PATH)
        };
        let mailbox = self.address.trim().to_ascii_lowercase();
        let channel = MailboxChannel { adapter, policies: cx.policies, mailbox };
        Ok(BuiltChannel { source: Source::Email, adapter: Arc::new(channel), routes, endpoints })
    }
}

/// The email adapter as the server runs it: its checks include where handoffs go, which needs
/// the mailbox's policy.
struct MailboxChannel {
    adapter: Arc<EmailAdapter>,
    policies: Arc<dyn PolicyConsole>,
    /// The support address, lower-cased: the workspace and channel of every mail to it.
    mailbox: String,
}

#[async_trait]
impl ChannelAdapter for MailboxChannel {
    fn name(&self) -> &'static str {
        self.adapter.name()
    }

    async fn run(&self, inbox: Arc<dyn InboxSink>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        self.adapter.run(inbox, shutdown).await
    }

    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
        self.adapter.deliver(message).await
    }

    async fn healthcheck(&self) -> Health {
        self.adapter.healthcheck().await
    }

    async fn working(&self, message: &Inbound, busy: bool) {
        self.adapter.working(message, busy).await
    }

    async fn doctor(&self) -> Vec<(String, Health)> {
        let mut checks = ChannelAdapter::doctor(self.adapter.as_ref()).await;
        checks.push(("handoffs".to_string(), handoffs(self.policies.as_ref(), &self.mailbox).await));
        checks
    }
}

/// Where the support mailbox's handoffs go. In chat a handoff is seen in the channel; by email
/// the customer's thread is theirs alone, so without an agents' address nobody learns of it.
async fn handoffs(policies: &dyn PolicyConsole, mailbox: &str) -> Health {
    let (Ok(ws), Ok(channel)) = (WorkspaceId::new(mailbox), ChannelId::new(mailbox)) else {
        return Health { ok: false, detail: format!("{mailbox:?} cannot name a workspace") };
    };
    match policies.agents_channel(&ws, &channel).await {
        Ok(Some(to)) => Health { ok: true, detail: format!("handed-off threads are forwarded to {to}") },
        Ok(None) => Health {
            ok: false,
            detail: format!(
                "no agents' address: a handed-off customer is told a person will answer, but nobody is sent the \
                 thread; set one with `frontdesk policy set --workspace {mailbox} agents_channel=team@your-domain`"
            ),
        },
        Err(e) => Health { ok: false, detail: format!("policies could not be read: {e}") },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;

    /// Policies with one settable agents' channel.
    struct Policies(Mutex<Option<String>>);

    #[async_trait]
    impl PolicyConsole for Policies {
        async fn show(&self, _: &WorkspaceId, _: &ChannelId) -> Result<String, String> {
            Ok(String::new())
        }
        async fn set(&self, _: &WorkspaceId, _: &ChannelId, _: &str, value: &str) -> Result<String, String> {
            *self.0.lock().unwrap() = Some(value.to_string());
            Ok(String::new())
        }
        async fn agents_channel(&self, _: &WorkspaceId, _: &ChannelId) -> Result<Option<String>, String> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    #[tokio::test]
    async fn a_support_mailbox_without_an_agents_address_fails_the_handoff_check() {
        let policies = Policies(Mutex::new(None));
        let check = handoffs(&policies, "support@example.com").await;
        assert!(!check.ok && check.detail.contains("agents_channel="), "{}", check.detail);
        let (ws, ch) = ("support@example.com".parse().unwrap(), "support@example.com".parse().unwrap());
        policies.set(&ws, &ch, "agents_channel", "team@example.com").await.unwrap();
        let check = handoffs(&policies, "support@example.com").await;
        assert!(check.ok && check.detail.contains("team@example.com"), "{}", check.detail);
    }
}
