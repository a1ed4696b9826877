//! The `[slack]` section of frontdesk's configuration, and the checks that catch values which
//! parse but cannot work (a signing secret missing in events mode, a half-configured OAuth
//! install, an encryption key of the wrong length).

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;

/// How Slack's events reach frontdesk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlackMode {
    /// Slack POSTs signed events to `/slack/events` and clicks to `/slack/interactions`
    /// (needs a public HTTPS URL). The default.
    #[default]
    Events,
    /// frontdesk opens an outgoing WebSocket to Slack with an app-level token (`xapp-…`), for
    /// deployments without a public URL. One workspace only.
    Socket,
}

/// The Slack channel's settings. Every field has a default, so a section that names only what
/// differs is enough.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// `events` (HTTP Events API, default) or `socket` (Socket Mode).
    pub mode: SlackMode,
    /// The app's signing secret (Basic Information → App Credentials). Every request Slack
    /// sends is checked against it; required in events mode.
    pub signing_secret: Option<SecretString>,
    /// A bot token (`xoxb-…`) for a single workspace (OAuth & Permissions → Bot User OAuth
    /// Token). Leave it out when workspaces install the app through `/slack/install`.
    pub bot_token: Option<SecretString>,
    /// The app-level token (`xapp-…`, scope `connections:write`) that opens the Socket Mode
    /// connection; required in socket mode.
    pub app_token: Option<SecretString>,
    /// OAuth client id, for installs into several workspaces through `/slack/install`.
    pub client_id: Option<String>,
    /// OAuth client secret, paired with `client_id`.
    pub client_secret: Option<SecretString>,
    /// The public URL of `/slack/oauth/callback`, exactly as listed under the app's Redirect
    /// URLs (e.g. `https://support.example.com/slack/oauth/callback`).
    pub redirect_url: Option<String>,
    /// 32 bytes, base64 or hex, that encrypt the bot tokens of OAuth installs at rest. Required
    /// with OAuth. Losing it means every workspace must install the app again.
    pub token_encryption_key: Option<SecretString>,
    /// Base URL of Slack's Web API. Only tests change it.
    pub api_url: String,
    /// Where `/slack/install` sends the installing admin. Only tests change it.
    pub authorize_url: String,
    /// The support agents of each workspace, keyed by its team id (`T…`):
    /// `[slack.agents.T0123ABCD]` with `usergroup` and/or `user_ids`. An agent of one workspace
    /// is not an agent in another. In a workspace without an entry nobody is an agent: Claim and
    /// Resolve are refused there, and no message takes a thread over.
    pub agents: BTreeMap<String, SlackAgents>,
    /// No longer accepted: agents are set per workspace under `[slack.agents.<team id>]`.
    /// Kept only to explain the move.
    pub agent_user_ids: Option<Vec<String>>,
    /// No longer accepted: see `agent_user_ids`.
    pub agent_usergroup: Option<String>,
    /// How long the members of a workspace's agents' user group are cached, in seconds.
    pub agent_cache_secs: u64,
    /// Requests signed longer ago than this are refused (replay protection), in seconds:
    /// 1 to [`MAX_SIGNATURE_AGE_SECS`] (300, Slack's own guidance).
    pub max_signature_age_secs: u64,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            mode: SlackMode::Events,
            signing_secret: None,
            bot_token: None,
            app_token: None,
            client_id: None,
            client_secret: None,
            redirect_url: None,
            token_encryption_key: None,
            api_url: DEFAULT_API_URL.to_string(),
            authorize_url: DEFAULT_AUTHORIZE_URL.to_string(),
            agents: BTreeMap::new(),
            agent_user_ids: None,
            agent_usergroup: None,
            agent_cache_secs: 300,
            max_signature_age_secs: 300,
        }
    }
}

/// Who the support agents of one workspace are (`[slack.agents.T0123ABCD]`). Either key is
/// enough; both may be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackAgents {
    /// A user group (`S…`) of this workspace whose members are agents, e.g. @support. Its
    /// members are read with `usergroups.users.list` and cached for `agent_cache_secs`.
    pub usergroup: Option<String>,
    /// Slack user ids (`U…`/`W…`) of agents in this workspace.
    pub user_ids: Vec<String>,
}

/// The longest signature window allowed: Slack asks apps to refuse requests signed more than
/// five minutes ago, and a longer window lets a captured request be replayed for longer.
pub const MAX_SIGNATURE_AGE_SECS: u64 = 300;

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";
/// Slack's OAuth v2 consent page.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://slack.com/oauth/v2/authorize";

/// The bot scopes the adapter uses, each for one Web API method or event subscription.
pub const BOT_SCOPES: &[&str] = &[
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "im:history",
    "chat:write",
    "reactions:write",
    "usergroups:read",
];

fn secret_set(s: &Option<SecretString>) -> bool {
    s.as_ref().is_some_and(|s| !s.expose_secret().trim().is_empty())
}

fn looks_like_id(value: &str, prefixes: &[char]) -> bool {
    value.len() >= 2
        && value.starts_with(prefixes)
        && value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl SlackConfig {
    /// The agents of workspace `team`, if any are configured (team ids compare without regard
    /// to case, as environment overrides write keys in lower case).
    pub fn agents_of(&self, team: &str) -> Option<&SlackAgents> {
        self.agents.iter().find(|(t, _)| t.eq_ignore_ascii_case(team)).map(|(_, a)| a)
    }

    /// True when workspaces install the app through OAuth.
    pub fn oauth_enabled(&self) -> bool {
        self.client_id.is_some() || secret_set(&self.client_secret)
    }

    /// The token-encryption key as 32 bytes, if it is set and valid.
    pub fn encryption_key(&self) -> Result<Option<[u8; 32]>, String> {
        let Some(key) = &self.token_encryption_key else { return Ok(None) };
        let text = key.expose_secret().trim();
        let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| format!("not valid hex: {e}"))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| "neither 64 hex digits nor base64".to_string())?
        };
        let key: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| format!("it is {} bytes long; it must be exactly 32", b.len()))?;
        Ok(Some(key))
    }

    /// Values that parse but cannot work, as (key, what is wrong). Every problem at once.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut problem = |key: &str, what: String| out.push((key.to_string(), what));
        match self.mode {
            SlackMode::Events => {
                if !secret_set(&self.signing_secret) {
                    problem(
                        "signing_secret",
                        "required in events mode: Slack signs every request with it (app settings → Basic \
                         Information → Signing Secret)"
                            .into(),
                    );
                }
            }
            SlackMode::Socket => {
                if !secret_set(&self.app_token) {
                    problem(
                        "app_token",
                        "required in socket mode: an app-level token (xapp-…) with the connections:write scope".into(),
                    );
                }
                if self.oauth_enabled() {
                    problem("mode", "socket mode serves one workspace; use events mode for OAuth installs".into());
                }
            }
        }
        if let Some(t) = &self.app_token {
            if !t.expose_secret().starts_with("xapp-") {
                problem("app_token", "an app-level token starts with xapp-".into());
            }
        }
        if let Some(t) = &self.bot_token {
            if !t.expose_secret().starts_with("xoxb-") {
                problem("bot_token", "a bot token starts with xoxb- (a user token xoxp- is not accepted)".into());
            }
        }
        if !secret_set(&self.bot_token) && !self.oauth_enabled() {
            problem(
                "bot_token",
                "set bot_token for one workspace, or client_id, client_secret, redirect_url and \
                 token_encryption_key for installs through /slack/install"
                    .into(),
            );
        }
        if self.oauth_enabled() {
            if self.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
                problem("client_id", "required with client_secret for OAuth installs".into());
            }
            if !secret_set(&self.client_secret) {
                problem("client_secret", "required with client_id for OAuth installs".into());
            }
            match self.redirect_url.as_deref().map(url::Url::parse) {
                None => problem(
                    "redirect_url",
                    "required for OAuth installs: the public URL of /slack/oauth/callback".into(),
                ),
                Some(Err(e)) => problem("redirect_url", format!("not a URL: {e}")),
                Some(Ok(u))
                    if u.scheme() != "https"
                        && u.host_str() != Some("127.0.0.1")
                        && u.host_str() != Some("localhost") =>
                {
                    problem("redirect_url", "Slack only redirects to https URLs".into())
                }
                Some(Ok(_)) => {}
            }
            if self.token_encryption_key.is_none() {
                problem(
                    "token_encryption_key",
                    "required for OAuth installs: 32 random bytes, base64 or hex (e.g. `openssl rand -base64 32`)"
                        .into(),
                );
            }
        }
        if let Err(e) = self.encryption_key() {
            problem("token_encryption_key", e);
        }
        for (key, value) in [("api_url", &self.api_url), ("authorize_url", &self.authorize_url)] {
            match url::Url::parse(value) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                Ok(u) => problem(key, format!("scheme {} is not http or https", u.scheme())),
                Err(e) => problem(key, format!("not a URL: {e}")),
            }
        }
        for key in ["agent_user_ids", "agent_usergroup"] {
            let set =
                if key == "agent_user_ids" { self.agent_user_ids.is_some() } else { self.agent_usergroup.is_some() };
            if set {
                problem(
                    key,
                    "agents are now set per workspace, so that an agent of one workspace is not an agent in \
                     another: move them to [slack.agents.<team id>] as usergroup = \"S…\" and user_ids = [\"U…\"] \
                     (`frontdesk doctor` shows each workspace's team id)"
                        .into(),
                );
            }
        }
        let mut seen: Vec<String> = Vec::new();
        for (team, agents) in &self.agents {
            let upper = team.to_ascii_uppercase();
            if !looks_like_id(&upper, &['T']) {
                problem(
                    "agents",
                    format!(
                        "{team:?} is not a Slack team id (T…): agents are listed per workspace as \
                         [slack.agents.T0123ABCD] (`frontdesk doctor` shows each workspace's team id)"
                    ),
                );
            }
            if seen.contains(&upper) {
                problem("agents", format!("workspace {upper} is listed twice"));
            }
            seen.push(upper);
            if agents.user_ids.is_empty() && agents.usergroup.is_none() {
                problem(&format!("agents.{team}"), "names no agents: set usergroup (S…) or user_ids (U…)".into());
            }
            for id in &agents.user_ids {
                if !looks_like_id(id, &['U', 'W']) {
                    problem(&format!("agents.{team}.user_ids"), format!("{id:?} is not a Slack user id (U… or W…)"));
                }
            }
            if let Some(group) = &agents.usergroup {
                if !looks_like_id(group, &['S']) {
                    problem(&format!("agents.{team}.usergroup"), format!("{group:?} is not a user group id (S…)"));
                }
            }
        }
        if self.max_signature_age_secs == 0 || self.max_signature_age_secs > MAX_SIGNATURE_AGE_SECS {
            problem(
                "max_signature_age_secs",
                format!(
                    "is {}; it must be between 1 and {MAX_SIGNATURE_AGE_SECS} seconds: Slack asks apps to refuse \
                     requests signed more than 5 minutes ago, and a longer window lets a captured request be \
                     replayed for longer (if requests are refused as stale, check the server's clock instead)",
                    self.max_signature_age_secs
                ),
            );
        }
        if self.agent_cache_secs > 86_400 {
            problem("agent_cache_secs", "more than a day: new agents would not be recognised for too long".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> SlackConfig {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_single_workspace_config_has_no_problems() {
        let c = parse(r#"{"signing_secret":"s3cret","bot_token":"xoxb-1"}"#);
        assert_eq!(c.problems(), vec![]);
        assert_eq!(c.max_signature_age_secs, 300);
        assert_eq!(c.api_url, DEFAULT_API_URL);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let c = parse(
            r#"{"client_id":"1.2","redirect_url":"http://example.com/cb","token_encryption_key":"c2hvcnQ=",
                "agents":{"T1":{"user_ids":["bob"],"usergroup":"U1"},"acme":{"user_ids":["U1"]},"T2":{}},
                "max_signature_age_secs":0}"#,
        );
        let keys: Vec<String> = c.problems().into_iter().map(|(k, _)| k).collect();
        for key in [
            "signing_secret",
            "client_secret",
            "redirect_url",
            "token_encryption_key",
            "agents.T1.user_ids",
            "agents.T1.usergroup",
            "agents",
            "agents.T2",
            "max_signature_age_secs",
        ] {
            assert!(keys.contains(&key.to_string()), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn the_encryption_key_is_accepted_in_hex_and_base64() {
        let hex_key = "00".repeat(32);
        let c = parse(&format!(r#"{{"token_encryption_key":"{hex_key}"}}"#));
        assert_eq!(c.encryption_key().unwrap(), Some([0u8; 32]));
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let c = parse(&format!(r#"{{"token_encryption_key":"{b64}"}}"#));
        assert_eq!(c.encryption_key().unwrap(), Some([7u8; 32]));
    }

    #[test]
    fn unknown_keys_are_refused_and_secrets_stay_out_of_debug() {
        assert!(serde_json::from_str::<SlackConfig>(r#"{"signing_secrets":"x"}"#).is_err());
        let c = parse(r#"{"signing_secret":"very-secret-value","bot_token":"xoxb-hidden"}"#);
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret-value") && !shown.contains("xoxb-hidden"), "{shown}");
    }

    #[test]
    fn agents_are_set_per_workspace_and_the_old_global_keys_explain_the_move() {
        let c = parse(
            r#"{"signing_secret":"s","bot_token":"xoxb-1",
                "agents":{"T1":{"usergroup":"S1"},"t2":{"user_ids":["U2","W3"]}}}"#,
        );
        assert_eq!(c.problems(), vec![]);
        assert_eq!(c.agents_of("T1").and_then(|a| a.usergroup.as_deref()), Some("S1"));
        // Environment overrides write keys in lower case; the team id still matches.
        assert_eq!(c.agents_of("T2").map(|a| a.user_ids.len()), Some(2));
        assert_eq!(c.agents_of("T3"), None);

        let old =
            parse(r#"{"signing_secret":"s","bot_token":"xoxb-1","agent_user_ids":["U1"],"agent_usergroup":"S1"}"#);
        let problems = old.problems();
        assert_eq!(problems.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["agent_user_ids", "agent_usergroup"]);
        assert!(problems[0].1.contains("[slack.agents.<team id>]"), "{problems:?}");

        let twice = parse(
            r#"{"signing_secret":"s","bot_token":"xoxb-1","agents":{"T1":{"user_ids":["U1"]},"t1":{"user_ids":["U2"]}}}"#,
        );
        assert_eq!(twice.problems(), vec![("agents".to_string(), "workspace T1 is listed twice".to_string())]);
    }

    #[test]
    fn the_signature_window_is_at_most_five_minutes() {
        let with = |secs: u64| {
            parse(&format!(r#"{{"signing_secret":"s","bot_token":"xoxb-1","max_signature_age_secs":{secs}}}"#))
                .problems()
        };
        assert_eq!(with(300), vec![]);
        assert_eq!(with(1), vec![]);
        for secs in [0, 301, 3600, 86_400] {
            let problems = with(secs);
            assert_eq!(problems.len(), 1, "{secs}: {problems:?}");
            assert_eq!(problems[0].0, "max_signature_age_secs");
            assert!(
                problems[0].1.starts_with(&format!("is {secs}; it must be between 1 and 300 seconds")),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn socket_mode_needs_an_app_token() {
        let c = parse(r#"{"mode":"socket","bot_token":"xoxb-1"}"#);
        assert_eq!(c.problems().into_iter().map(|(k, _)| k).collect::<Vec<_>>(), vec!["app_token"]);
    }
}
