//! Set-up shared by the tests that need no mail server.

use frontdesk_email::{DkimConfig, EmailConfig, Security, SmtpConfig, WebhookConfig, WebhookMode};
use secrecy::SecretString;

/// The support mailbox's address.
pub const SUPPORT: &str = "support@example.test";
/// The mail webhook's secret.
pub const WEBHOOK_SECRET: &str = "a-webhook-secret-of-some-length";

/// A support mailbox that takes mail through the webhook (authenticated as `mode` says) and
/// would send its replies over plain SMTP to a loopback port, with DKIM checks off.
pub fn webhook_config(mode: WebhookMode) -> EmailConfig {
    EmailConfig {
        address: SUPPORT.into(),
        webhook: WebhookConfig { secret: Some(SecretString::from(WEBHOOK_SECRET.to_string())), mode },
        smtp: SmtpConfig { host: "127.0.0.1".into(), port: 2525, security: Security::None, ..SmtpConfig::default() },
        dkim: DkimConfig { verify: false, dns_server: None },
        ..EmailConfig::default()
    }
}
