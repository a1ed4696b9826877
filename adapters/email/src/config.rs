//! The `[email]` configuration section.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::PathBuf;

/// How a connection to a mail server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    Tls,
    /// A plain connection upgraded with STARTTLS before logging in (IMAP 143, SMTP 587).
    Starttls,
    /// No encryption at all. Only accepted for a server on the loopback interface (a local relay,
    /// a test server): credentials and mail would otherwise cross the network in clear.
    None,
}

/// Where customers' mail is read from (IMAP).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// The IMAP server's host name. Empty turns IMAP off (mail then arrives through the webhook).
    pub host: String,
    /// The server's port; 0 picks the usual one for `security` (993 for tls, 143 otherwise).
    pub port: u16,
    /// `tls` (default), `starttls`, or `none` (loopback only).
    pub security: Security,
    /// A PEM file of certificate authorities to trust besides the public ones, for a server whose
    /// certificate your own CA issued (or a self-signed one).
    pub ca_file: Option<PathBuf>,
    /// The login name; empty means the support address.
    pub user: String,
    /// The password or app password. Never logged.
    pub password: SecretString,
    /// The folder customers' mail arrives in.
    pub folder: String,
    /// The flag set on a message once it is safely in frontdesk's inbox: `\Seen`, or a keyword
    /// such as `$FrontdeskHandled` (the default, which leaves the read/unread state to people).
    pub processed_flag: String,
    /// When set, handled messages are moved to this folder instead of being flagged.
    pub processed_folder: Option<String>,
    /// Wait for new mail with IMAP IDLE when the server offers it (falls back to polling).
    pub idle: bool,
    /// Seconds between two checks for new mail when IDLE is off or not offered by the server.
    pub poll_secs: u64,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            host: String::new(),
            port: 0,
            security: Security::Tls,
            ca_file: None,
            user: String::new(),
            password: SecretString::from(String::new()),
            folder: "INBOX".into(),
            processed_flag: "$FrontdeskHandled".into(),
            processed_folder: None,
            idle: true,
            poll_secs: 60,
        }
    }
}

/// How the inbound webhook (`POST /email/inbound`) authenticates the service that posts mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookMode {
    /// `X-Frontdesk-Timestamp: <Unix seconds>` and
    /// `X-Frontdesk-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`;
    /// refused when the timestamp is more than 300 s away from the server's clock, or when the
    /// same signed request comes again.
    Hmac,
    /// `Authorization: Bearer <secret>` (for services that can only send a fixed header).
    Shared,
}

/// The inbound webhook, for mail services that post each received mail (raw MIME) over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// The shared secret. Unset turns the webhook off (it answers 404). Never logged.
    pub secret: Option<SecretString>,
    /// `hmac` (default) or `shared`.
    pub mode: WebhookMode,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig { secret: None, mode: WebhookMode::Hmac }
    }
}

/// Where replies are sent through (SMTP submission).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// The SMTP server's host name.
    pub host: String,
    /// The server's port; 0 picks the usual one for `security` (465 tls, 587 starttls, 25 none).
    pub port: u16,
    /// `starttls` (default), `tls`, or `none` (loopback only).
    pub security: Security,
    /// A PEM file of certificate authorities to trust besides the public ones (as `imap.ca_file`).
    pub ca_file: Option<PathBuf>,
    /// The login name; empty sends without logging in (a local relay).
    pub user: String,
    /// The password or app password. Never logged.
    pub password: SecretString,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 0,
            security: Security::Starttls,
            ca_file: None,
            user: String::new(),
            password: SecretString::from(String::new()),
        }
    }
}

/// DKIM checking of incoming mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DkimConfig {
    /// Check DKIM signatures. Only a valid signature of the sender's domain verifies the sender;
    /// other mail is marked as from an unverified sender (it may be answered, but never triggers
    /// an action), and mail from agents' addresses counts as an agent's only when verified, so
    /// `agent_addresses` and `agent_domains` need this on.
    pub verify: bool,
    /// A DNS server (`ip:port`) to use instead of the system's resolvers.
    pub dns_server: Option<String>,
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig { verify: true, dns_server: None }
    }
}

/// The email channel. One support mailbox is one workspace.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// The support address customers write to (`support@example.com`). It names the workspace
    /// and the channel, and replies are sent from it.
    pub address: String,
    /// The display name on replies ("Example Support").
    pub from_name: String,
    /// The domain of the Message-IDs of replies; empty means the support address's domain.
    pub message_id_domain: String,
    /// Reading customers' mail over IMAP.
    pub imap: ImapConfig,
    /// Receiving customers' mail over HTTP instead of (or as well as) IMAP.
    pub webhook: WebhookConfig,
    /// Sending replies over SMTP.
    pub smtp: SmtpConfig,
    /// Addresses of the support team: their mail in a thread is an agent's reply, which takes the
    /// conversation over from the bot, when it carries a valid DKIM signature of the address's
    /// domain (`dkim.verify`). The agents' address of the policy (`agents_channel`) is added once
    /// a conversation was forwarded to it.
    pub agent_addresses: Vec<String>,
    /// Domains whose every address is an agent's (`example.com` for a team writing from it).
    pub agent_domains: Vec<String>,
    /// Attachments larger than this are listed as oversized (and never kept).
    pub max_attachment_bytes: u64,
    /// Messages one sender may send per hour before further ones are held for a person instead
    /// of being answered; 0 turns the limit off.
    pub sender_messages_per_hour: u32,
    /// DKIM checking.
    pub dkim: DkimConfig,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            address: String::new(),
            from_name: "Support".into(),
            message_id_domain: String::new(),
            imap: ImapConfig::default(),
            webhook: WebhookConfig::default(),
            smtp: SmtpConfig::default(),
            agent_addresses: Vec::new(),
            agent_domains: Vec::new(),
            max_attachment_bytes: 10 * 1024 * 1024,
            sender_messages_per_hour: 20,
            dkim: DkimConfig::default(),
        }
    }
}

/// Whether `host` is the loopback interface.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// `local@domain` with both parts non-empty, no spaces and one `@`.
pub(crate) fn looks_like_address(address: &str) -> bool {
    let address = address.trim();
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && (domain.contains('.') || domain.eq_ignore_ascii_case("localhost"))
                && !address.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        }
        None => false,
    }
}

impl EmailConfig {
    /// Everything wrong with the configuration, as (key, what is wrong); empty when it is usable.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut problem = |key: &str, what: String| out.push((format!("email.{key}"), what));
        if self.address.trim().is_empty() {
            problem("address", "the support address is not set".into());
        } else if !looks_like_address(&self.address) {
            problem("address", format!("{:?} is not an email address", self.address));
        }
        if !self.message_id_domain.is_empty()
            && (self.message_id_domain.contains(['@', '<', '>', ' ']) || !self.message_id_domain.contains('.'))
        {
            problem("message_id_domain", format!("{:?} is not a domain name", self.message_id_domain));
        }
        let imap_on = !self.imap.host.trim().is_empty();
        let webhook_on = self.webhook.secret.as_ref().is_some_and(|s| !s.expose_secret().is_empty());
        if !imap_on && !webhook_on {
            problem("imap.host", "no way to receive mail: set imap.host, or webhook.secret for the webhook".into());
        }
        if imap_on {
            if self.imap.security == Security::None && !is_loopback(&self.imap.host) {
                problem(
                    "imap.security",
                    format!("\"none\" is only allowed for a loopback server, not {}", self.imap.host),
                );
            }
            if self.imap.password.expose_secret().is_empty() {
                problem("imap.password", "the IMAP password is not set".into());
            }
            if self.imap.folder.trim().is_empty() {
                problem("imap.folder", "the folder is empty".into());
            }
            let flag = self.imap.processed_flag.trim();
            if self.imap.processed_folder.is_none() && !valid_flag(flag) {
                problem(
                    "imap.processed_flag",
                    format!("{flag:?} is neither \\Seen nor a keyword (letters, digits, $, _, -, .)"),
                );
            }
            if let Some(folder) = &self.imap.processed_folder {
                if folder.trim().is_empty() || folder == &self.imap.folder {
                    problem("imap.processed_folder", "must name a folder other than imap.folder".into());
                }
            }
            if self.imap.poll_secs == 0 {
                problem("imap.poll_secs", "must be at least 1".into());
            }
        }
        if let Some(secret) = &self.webhook.secret {
            if !secret.expose_secret().is_empty() && secret.expose_secret().len() < 16 {
                problem("webhook.secret", "use at least 16 characters".into());
            }
        }
        if self.smtp.host.trim().is_empty() {
            problem("smtp.host", "the SMTP server is not set: replies could not be sent".into());
        } else if self.smtp.security == Security::None && !is_loopback(&self.smtp.host) {
            problem("smtp.security", format!("\"none\" is only allowed for a loopback server, not {}", self.smtp.host));
        }
        for (key, ca_file) in [("imap.ca_file", &self.imap.ca_file), ("smtp.ca_file", &self.smtp.ca_file)] {
            if let Some(path) = ca_file {
                if let Err(e) = crate::tls::load_ca_file(path) {
                    problem(key, e);
                }
            }
        }
        if !self.smtp.user.is_empty() && self.smtp.password.expose_secret().is_empty() {
            problem("smtp.password", "smtp.user is set but the password is not".into());
        }
        for a in &self.agent_addresses {
            if !looks_like_address(a) {
                problem("agent_addresses", format!("{a:?} is not an email address"));
            }
        }
        for d in &self.agent_domains {
            if d.trim().is_empty() || d.contains(['@', ' ']) {
                problem("agent_domains", format!("{d:?} is not a domain name"));
            }
        }
        if !self.dkim.verify && (!self.agent_addresses.is_empty() || !self.agent_domains.is_empty()) {
            problem(
                "dkim.verify",
                "agents are recognised by the DKIM signature of their domain: with dkim.verify = false anyone could \
                 write as an agent; turn it on, or remove agent_addresses and agent_domains"
                    .into(),
            );
        }
        if self.max_attachment_bytes == 0 {
            problem("max_attachment_bytes", "must be more than 0".into());
        }
        if let Some(dns) = &self.dkim.dns_server {
            if dns.parse::<std::net::SocketAddr>().is_err() {
                problem("dkim.dns_server", format!("{dns:?} is not ip:port"));
            }
        }
        out
    }

    /// The support address, lowercased.
    pub(crate) fn mailbox(&self) -> String {
        self.address.trim().to_ascii_lowercase()
    }

    pub(crate) fn id_domain(&self) -> String {
        if !self.message_id_domain.trim().is_empty() {
            return self.message_id_domain.trim().to_ascii_lowercase();
        }
        self.mailbox().rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_else(|| "frontdesk.invalid".into())
    }

    pub(crate) fn imap_port(&self) -> u16 {
        match (self.imap.port, self.imap.security) {
            (0, Security::Tls) => 993,
            (0, _) => 143,
            (p, _) => p,
        }
    }

    pub(crate) fn smtp_port(&self) -> u16 {
        match (self.smtp.port, self.smtp.security) {
            (0, Security::Tls) => 465,
            (0, Security::Starttls) => 587,
            (0, Security::None) => 25,
            (p, _) => p,
        }
    }

    pub(crate) fn imap_user(&self) -> String {
        if self.imap.user.trim().is_empty() {
            self.mailbox()
        } else {
            self.imap.user.trim().to_string()
        }
    }
}

/// `\Seen` or an IMAP keyword (atom characters only).
fn valid_flag(flag: &str) -> bool {
    flag.eq_ignore_ascii_case("\\Seen")
        || (!flag.is_empty() && flag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '$' | '_' | '-' | '.')))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(c: &EmailConfig) -> Vec<String> {
        c.problems().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn an_empty_config_names_what_is_missing() {
        let k = keys(&EmailConfig::default());
        assert!(k.contains(&"email.address".to_string()), "{k:?}");
        assert!(k.contains(&"email.imap.host".to_string()), "{k:?}");
        assert!(k.contains(&"email.smtp.host".to_string()), "{k:?}");
    }

    #[test]
    fn plain_connections_are_only_for_loopback() {
        let toml_like = EmailConfig {
            address: "support@example.com".into(),
            imap: ImapConfig {
                host: "imap.example.com".into(),
                security: Security::None,
                password: SecretString::from("x".to_string()),
                ..ImapConfig::default()
            },
            smtp: SmtpConfig { host: "127.0.0.1".into(), security: Security::None, ..SmtpConfig::default() },
            ..EmailConfig::default()
        };
        assert_eq!(keys(&toml_like), vec!["email.imap.security".to_string()]);
    }

    #[test]
    fn a_complete_config_has_no_problems_and_hides_secrets() {
        let json = serde_json::json!({
            "address": "support@example.com",
            "imap": {"host": "imap.example.com", "password": "app-password-1"},
            "smtp": {"host": "smtp.example.com", "user": "support@example.com", "password": "app-password-1"},
            "webhook": {"secret": "0123456789abcdef0123", "mode": "shared"},
            "agent_domains": ["example.com"],
        });
        let c: EmailConfig = serde_json::from_value(json).unwrap();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!((c.imap_port(), c.smtp_port()), (993, 587));
        assert!(!format!("{c:?}").contains("app-password-1"));
        assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.txt");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let json = serde_json::json!({
            "address": "support@example.com",
            "imap": {"host": "imap.example.com", "password": "p", "ca_file": not_pem},
            "smtp": {"host": "smtp.example.com", "ca_file": dir.path().join("missing.pem")},
        });
        let c: EmailConfig = serde_json::from_value(json).unwrap();
        let problems = c.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, "email.imap.ca_file");
        assert!(problems[0].1.contains("holds no certificate"), "{problems:?}");
        assert_eq!(problems[1].0, "email.smtp.ca_file");
        assert!(problems[1].1.contains("cannot read"), "{problems:?}");
    }

    #[test]
    fn agents_need_dkim_checking() {
        let json = serde_json::json!({
            "address": "support@example.com",
            "imap": {"host": "imap.example.com", "password": "p"},
            "smtp": {"host": "smtp.example.com"},
            "agent_domains": ["example.com"],
            "dkim": {"verify": false},
        });
        let c: EmailConfig = serde_json::from_value(json).unwrap();
        assert_eq!(keys(&c), vec!["email.dkim.verify".to_string()]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let json = serde_json::json!({"address": "a@b.c", "imap": {"hots": "x"}});
        assert!(serde_json::from_value::<EmailConfig>(json).is_err());
    }
}
