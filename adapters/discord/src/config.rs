//! The `[discord]` section of frontdesk's configuration.

use frontdesk_channel::WorkspaceId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// How frontdesk connects to Discord. Every key is optional in the file; `problems` lists what
/// is missing or wrong before anything connects.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    /// The bot's token (Developer Portal → your application → Bot → Reset Token). Secret: never
    /// logged or printed.
    pub bot_token: SecretString,
    /// The application id (Developer Portal → General Information). Slash commands are
    /// registered under it, and `frontdesk doctor` checks that the token belongs to it.
    pub application_id: String,
    /// The application's public key, 64 hex digits (General Information → Public Key). Needed
    /// only with `interactions_endpoint = true`: every request to the endpoint is checked
    /// against it.
    pub public_key: String,
    /// Receive slash commands and button presses over HTTP at `POST /discord/interactions`
    /// (set the same URL as "Interactions Endpoint URL" in the Developer Portal). When false
    /// they arrive over the gateway connection, which needs no public URL.
    pub interactions_endpoint: bool,
    /// The id of the Discord role of the support team. Members with it are agents: a message
    /// from them in a customer's thread takes the conversation over, and only they can use
    /// Claim and Resolve.
    pub support_role_id: String,
    /// Users who are agents without having the support role (user ids).
    pub agent_user_ids: Vec<String>,
    /// Direct messages belong to no server. A DM is answered from the workspace of the one
    /// server its sender shares with the bot. When they share none, or several, the DM is
    /// answered from this workspace if it is set, and otherwise the sender is asked (in the DM)
    /// to ask in their server's support channel. Unset by default; set it only to a workspace
    /// whose help docs anyone on Discord may read.
    pub dm_workspace: Option<String>,
    /// Tests only: the base URL of a loopback fake of Discord's API (e.g.
    /// `http://127.0.0.1:4000`). Requires `rate_limiter = false`, because Discord's rate
    /// limiter always talks to discord.com.
    pub api_base: Option<String>,
    /// Follow Discord's rate limits before each request (default true). Tests turn it off to
    /// talk to a fake; production must keep it on.
    pub rate_limiter: bool,
    /// How old the `X-Signature-Timestamp` of an interaction request may be, in seconds (default
    /// and at most 300). Older (or as far in the future) requests are refused, so a captured
    /// request cannot be replayed later.
    pub max_signature_age_secs: u64,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            bot_token: SecretString::from(String::new()),
            application_id: String::new(),
            public_key: String::new(),
            interactions_endpoint: false,
            support_role_id: String::new(),
            agent_user_ids: Vec::new(),
            dm_workspace: None,
            api_base: None,
            rate_limiter: true,
            max_signature_age_secs: 300,
        }
    }
}

impl std::fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("bot_token", &if self.bot_token.expose_secret().is_empty() { "(unset)" } else { "(set)" })
            .field("application_id", &self.application_id)
            .field("public_key", &self.public_key)
            .field("interactions_endpoint", &self.interactions_endpoint)
            .field("support_role_id", &self.support_role_id)
            .field("agent_user_ids", &self.agent_user_ids)
            .field("dm_workspace", &self.dm_workspace)
            .field("api_base", &self.api_base)
            .field("rate_limiter", &self.rate_limiter)
            .field("max_signature_age_secs", &self.max_signature_age_secs)
            .finish()
    }
}

/// Discord ids are snowflakes: unsigned 64-bit integers written in decimal.
pub(crate) fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok_and(|n| n > 0)
}

/// Parses a 64-hex-digit Ed25519 public key.
pub(crate) fn parse_public_key(hex_key: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_key.trim()).map_err(|e| format!("it is not hexadecimal ({e})"))?;
    let key: [u8; 32] =
        bytes.try_into().map_err(|b: Vec<u8>| format!("it is {} bytes long; an Ed25519 public key is 32", b.len()))?;
    Ok(key)
}

impl DiscordConfig {
    /// Everything wrong with this configuration, as `(key, what is wrong)`; empty when usable.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut problem = |key: &str, what: String| out.push((key.to_string(), what));
        let token = self.bot_token.expose_secret().trim();
        if token.is_empty() {
            problem("bot_token", "missing: copy it from the Developer Portal (your application → Bot)".into());
        } else if token.starts_with("Bearer ") {
            problem("bot_token", "this is an OAuth2 bearer token; frontdesk needs the bot's token".into());
        } else if token.chars().any(char::is_whitespace) && !token.starts_with("Bot ") {
            problem("bot_token", "it contains spaces; paste the token exactly as the Developer Portal shows it".into());
        }
        if self.application_id.trim().is_empty() {
            problem("application_id", "missing: copy it from the Developer Portal (General Information)".into());
        } else if !is_snowflake(self.application_id.trim()) {
            problem("application_id", format!("{:?} is not a Discord id (a number)", self.application_id));
        }
        if self.interactions_endpoint {
            if self.public_key.trim().is_empty() {
                problem(
                    "public_key",
                    "missing: interactions_endpoint is on, and every request to it is checked against the application's public key (General Information → Public Key)"
                        .into(),
                );
            } else if let Err(e) = parse_public_key(&self.public_key) {
                problem("public_key", format!("not a 64-hex-digit Ed25519 public key: {e}"));
            }
        } else if !self.public_key.trim().is_empty() {
            if let Err(e) = parse_public_key(&self.public_key) {
                problem("public_key", format!("not a 64-hex-digit Ed25519 public key: {e}"));
            }
        }
        if !self.support_role_id.trim().is_empty() && !is_snowflake(self.support_role_id.trim()) {
            problem("support_role_id", format!("{:?} is not a Discord role id (a number)", self.support_role_id));
        }
        for id in &self.agent_user_ids {
            if !is_snowflake(id.trim()) {
                problem("agent_user_ids", format!("{id:?} is not a Discord user id (a number)"));
            }
        }
        if self.support_role_id.trim().is_empty() && self.agent_user_ids.is_empty() {
            problem(
                "support_role_id",
                "no agents: set the support team's role (or agent_user_ids), or nobody can claim a conversation".into(),
            );
        }
        if let Some(ws) = &self.dm_workspace {
            if let Err(e) = WorkspaceId::new(ws.as_str()) {
                problem(
                    "dm_workspace",
                    format!(
                        "{ws:?} is not a usable workspace name ({e}); leave dm_workspace out to answer direct \
                         messages only from the one server their sender shares with the bot"
                    ),
                );
            }
        }
        if let Some(base) = &self.api_base {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                problem("api_base", format!("{base:?} is not an http(s) URL"));
            }
            if self.rate_limiter {
                problem(
                    "api_base",
                    "is ignored while rate_limiter is on (Discord's rate limiter always talks to discord.com); it is meant for tests with rate_limiter = false"
                        .into(),
                );
            }
        }
        if self.max_signature_age_secs == 0 || self.max_signature_age_secs > 300 {
            problem(
                "max_signature_age_secs",
                format!(
                    "is {}; it must be between 1 and 300 seconds: a longer window lets a captured interaction \
                     request be replayed for longer (if requests are refused as stale, check the server's clock)",
                    self.max_signature_age_secs
                ),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn good() -> DiscordConfig {
        DiscordConfig {
            bot_token: SecretString::from("MTIz.abc.def".to_string()),
            application_id: "123456789012345678".into(),
            support_role_id: "223456789012345678".into(),
            ..DiscordConfig::default()
        }
    }

    #[test]
    fn a_complete_config_has_no_problems() {
        assert!(good().problems().is_empty(), "{:?}", good().problems());
    }

    #[test]
    fn each_mistake_names_its_key() {
        let keys = |c: DiscordConfig| c.problems().into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(keys(DiscordConfig { bot_token: SecretString::from(String::new()), ..good() }), ["bot_token"]);
        assert_eq!(keys(DiscordConfig { application_id: "app".into(), ..good() }), ["application_id"]);
        assert_eq!(keys(DiscordConfig { interactions_endpoint: true, ..good() }), ["public_key"]);
        assert_eq!(
            keys(DiscordConfig { interactions_endpoint: true, public_key: "abcd".into(), ..good() }),
            ["public_key"]
        );
        assert_eq!(keys(DiscordConfig { support_role_id: String::new(), ..good() }), ["support_role_id"]);
        assert_eq!(keys(DiscordConfig { agent_user_ids: vec!["bob".into()], ..good() }), ["agent_user_ids"]);
        for ws in ["", "  ", "dm\n"] {
            assert_eq!(keys(DiscordConfig { dm_workspace: Some(ws.into()), ..good() }), ["dm_workspace"]);
        }
        assert!(keys(DiscordConfig { dm_workspace: Some("dm".into()), ..good() }).is_empty());
        assert_eq!(keys(DiscordConfig { api_base: Some("http://127.0.0.1:1".into()), ..good() }), ["api_base"]);
        for secs in [0, 301, 3600] {
            assert_eq!(keys(DiscordConfig { max_signature_age_secs: secs, ..good() }), ["max_signature_age_secs"]);
        }
        assert!(keys(DiscordConfig { max_signature_age_secs: 300, ..good() }).is_empty());
        assert!(keys(DiscordConfig { api_base: Some("http://127.0.0.1:1".into()), rate_limiter: false, ..good() })
            .is_empty());
    }

    #[test]
    fn the_token_never_appears_in_debug_output() {
        let shown = format!("{:?}", good());
        assert!(!shown.contains("MTIz"), "{shown}");
        assert!(shown.contains("(set)"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let parsed: Result<DiscordConfig, _> = serde_json::from_str(r#"{"bot_tokn": "x"}"#);
        assert!(parsed.unwrap_err().to_string().contains("bot_tokn"));
        let parsed: DiscordConfig = serde_json::from_str(r#"{"bot_token": "x", "application_id": "1"}"#).unwrap();
        assert_eq!(parsed.bot_token.expose_secret(), "x");
        assert!(parsed.rate_limiter);
        assert_eq!(parsed.dm_workspace, None, "direct messages have no workspace of their own unless one is set");
        let parsed: DiscordConfig = serde_json::from_str(r#"{"dm_workspace": "dm"}"#).unwrap();
        assert_eq!(parsed.dm_workspace.as_deref(), Some("dm"));
        assert_eq!(parsed.max_signature_age_secs, 300);
    }
}
