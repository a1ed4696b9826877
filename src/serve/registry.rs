//! The channels frontdesk knows, in one list, and how `frontdesk serve` builds them.
//!
//! Each channel's crate implements [`ChannelConfig`] for its configuration section: how the
//! section is checked and how it becomes a running adapter with its routes. This module is the
//! only place that names the channels' crates: the engine's configuration keeps their sections
//! as written (`config::ChannelSections`), and they are parsed here, with every problem reported
//! beside the engine's own when the configuration is loaded.
//!
//! Adding a channel: its crate implements `ChannelConfig`; one line in `CHANNELS`, plus the
//! crate as an optional dependency behind a feature of the same name in `Cargo.toml`.

use super::http::Check;
use super::ChannelSet;
use crate::channel::{BuildContext, ChannelConfig, Health, Routes, SetupError};
use crate::config::{section, unknown_top_level_key, ChannelSections, Config, ConfigError, ConfigProblem};
use crate::engine::Engine;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;

/// Reads a channel's section into its configuration type, recording every problem.
type Parse = fn(&'static str, toml::Value, &mut Vec<ConfigProblem>) -> Option<Box<dyn ChannelConfig>>;

/// A channel frontdesk knows, whether or not this build includes it.
struct Known {
    /// Its section in `frontdesk.toml`, its cargo feature, and the name its checks carry.
    name: &'static str,
    parse: Parse,
}

/// The parser of a channel built in (the feature is on), or the problem of a section whose
/// channel this build leaves out.
macro_rules! channel {
    ($name:literal, $config:ty) => {
        Known {
            name: $name,
            parse: {
                #[cfg(feature = $name)]
                fn parse(name: &'static str, value: toml::Value, problems: &mut Vec<ConfigProblem>) -> Parsed {
                    parse_as::<$config>(name, value, problems)
                }
                #[cfg(not(feature = $name))]
                fn parse(name: &'static str, _: toml::Value, problems: &mut Vec<ConfigProblem>) -> Parsed {
                    problems.push(ConfigProblem {
                        path: name.to_string(),
                        message: format!(
                            "this build of frontdesk has no {name} channel (built without the \"{name}\" feature)"
                        ),
                    });
                    None
                }
                parse
            },
        }
    };
}

type Parsed = Option<Box<dyn ChannelConfig>>;

/// Every channel, in the order they are built and checked.
const CHANNELS: &[Known] = &[
    channel!("slack", frontdesk_slack::SlackConfig),
    channel!("discord", frontdesk_discord::DiscordConfig),
    channel!("email", frontdesk_email::EmailConfig),
];

#[allow(dead_code)] // unused only in a build without any channel
fn parse_as<T: ChannelConfig + DeserializeOwned + 'static>(
    name: &'static str,
    value: toml::Value,
    problems: &mut Vec<ConfigProblem>,
) -> Parsed {
    let mut parsed = None;
    section::<T>(name, value, problems, |config| parsed = Some(Box::new(config) as Box<dyn ChannelConfig>));
    parsed
}

/// The channels' sections, parsed, in `CHANNELS` order.
pub struct ChannelConfigs(Vec<(&'static str, Box<dyn ChannelConfig>)>);

impl ChannelConfigs {
    /// The names of the configured channels.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }
}

/// Parses every channel section; `Err` holds every problem, each with its path
/// (`slack.bot_token`), sections that name no channel included.
pub fn parse(sections: &ChannelSections) -> Result<ChannelConfigs, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    for (name, _) in sections.iter() {
        if !CHANNELS.iter().any(|c| c.name == name) {
            let known: Vec<&str> = CHANNELS.iter().map(|c| c.name).collect();
            problems.push(unknown_top_level_key(name, &known));
        }
    }
    let mut parsed = Vec::new();
    for known in CHANNELS {
        let Some(value) = sections.get(known.name) else { continue };
        let Some(config) = (known.parse)(known.name, value.clone(), &mut problems) else { continue };
        for (key, message) in config.problems() {
            let path = if key.starts_with(&format!("{}.", known.name)) { key } else { format!("{}.{key}", known.name) };
            problems.push(ConfigProblem { path, message });
        }
        parsed.push((known.name, config));
    }
    if problems.is_empty() {
        Ok(ChannelConfigs(parsed))
    } else {
        Err(problems)
    }
}

/// The channels' part of loading a configuration: every problem of their sections.
pub fn check(sections: &ChannelSections) -> Vec<ConfigProblem> {
    parse(sections).err().unwrap_or_default()
}

/// Loads `frontdesk.toml` (or the defaults), the environment over it, the channels' sections
/// checked with the rest.
pub fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    Config::load(path, &check)
}

/// Parses a configuration's text with its channels, as [`load_config`] does a file.
pub fn parse_config(text: &str, env: &[(String, String)], origin: &str) -> Result<Config, ConfigError> {
    Config::parse(text, env, origin, &check)
}

/// The configured channels, built: their adapters, HTTP routes and banner lines.
pub struct Channels {
    pub set: ChannelSet,
    pub routes: Routes,
    /// Lines for the start-up banner: the URLs to paste into each platform's settings.
    pub endpoints: Vec<String>,
}

impl Channels {
    /// `frontdesk doctor`'s checks for every configured channel.
    pub async fn doctor(&self) -> Vec<Check> {
        let mut out = Vec::new();
        for adapter in self.set.adapters() {
            out.extend(named(adapter.name(), adapter.doctor().await));
        }
        out
    }
}

/// Builds every channel whose section is present in the configuration.
pub fn build(config: &Config, engine: &Arc<Engine>) -> Result<Channels, SetupError> {
    let configs = parse(&config.channels).map_err(|problems| {
        let first = problems.first().map(|p| p.path.split('.').next().unwrap_or_default().to_string());
        let channel = CHANNELS.iter().find(|c| Some(c.name) == first.as_deref()).map_or("unknown", |c| c.name);
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        SetupError::new(channel, listed.join("; "))
    })?;
    let public_url = config.server.public_url.clone().unwrap_or_else(|| format!("http://{}", config.server.listen));
    let policies = Arc::new(super::console::StorePolicyConsole::new(engine.policies.clone()));
    let db = engine.kb.store.db();
    let mut channels = Channels { set: ChannelSet::new(), routes: Routes::new(), endpoints: Vec::new() };
    for (name, config) in configs.0 {
        let state = db.open_tree(name).map_err(|e| SetupError::new(name, e))?;
        let cx = BuildContext { public_url: public_url.clone(), state, policies: policies.clone() };
        let built = config.build(cx)?;
        channels.routes = channels.routes.merge(built.routes);
        channels.endpoints.extend(built.endpoints);
        channels.set = channels.set.with(built.source, built.adapter);
    }
    Ok(channels)
}

/// An adapter's named health checks as `frontdesk doctor` lines.
fn named(channel: &str, checks: Vec<(String, Health)>) -> Vec<Check> {
    checks
        .into_iter()
        .map(|(name, health)| Check { name: format!("{channel}: {name}"), ok: health.ok, detail: health.detail })
        .collect()
}

#[cfg(all(test, feature = "slack", feature = "discord", feature = "email"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn channel_sections_parse_and_their_problems_carry_the_section_path() {
        let text = r#"
[server]
listen = "0.0.0.0:8080"
public_url = "https://bot.example.com"

[slack]
signing_secret = "0123456789abcdef"
bot_token = "xoxb-1-2-3"

[email]
address = "support@example.com"
[email.smtp]
host = "smtp.example.com"
[email.webhook]
secret = "0123456789abcdef0123"
"#;
        let config = parse_config(text, &[], "test").unwrap();
        assert_eq!(parse(&config.channels).unwrap().names(), vec!["slack", "email"]);
        // Debug output names the channels, never their secrets.
        let shown = format!("{config:?}");
        assert!(!shown.contains("xoxb-1-2-3") && !shown.contains("0123456789abcdef"), "{shown}");

        let bad = "[slack]\nsigning_secret = \"s\"\nbot_tokn = \"xoxb\"\n\n[server]\nlisten = \"nowhere\"\n";
        let err = parse_config(bad, &[], "test").unwrap_err().to_string();
        assert!(err.contains("slack"), "{err}");
        assert!(err.contains("bot_tokn"), "{err}");
        assert!(err.contains("server.listen"), "{err}");

        let incomplete = "[discord]\napplication_id = \"123\"\n";
        let err = parse_config(incomplete, &[], "test").unwrap_err().to_string();
        assert!(err.contains("discord.bot_token"), "{err}");

        // A CA file that cannot be used is named with its path in the configuration.
        let unusable = "[email]\naddress = \"support@example.com\"\n[email.smtp]\nhost = \"smtp.example.com\"\nca_file = \"/nonexistent/ca.pem\"\n[email.webhook]\nsecret = \"0123456789abcdef0123\"\n";
        let err = parse_config(unusable, &[], "test").unwrap_err().to_string();
        assert!(err.contains("email.smtp.ca_file") && err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_section_that_names_no_channel_is_an_unknown_key_that_lists_the_channels() {
        let err = parse_config("[slak]\nbot_token = \"x\"\n", &[], "test").unwrap_err().to_string();
        assert!(err.contains("slak") && err.contains("unknown key"), "{err}");
        assert!(err.contains("slack, discord, email") && err.contains("retrieval"), "{err}");
        // Without the channels, the engine's own configuration names only its keys.
        let err = Config::from_toml_with_env("[slack]\n", &[], "test").unwrap_err().to_string();
        assert!(err.contains("slack") && err.contains("unknown key") && !err.contains("discord"), "{err}");
        // Environment overrides reach a channel's section like any other.
        let env = [("FRONTDESK_SLACK__BOT_TOKN".to_string(), "xoxb".to_string())];
        let err =
            parse_config("[slack]\nsigning_secret = \"0123456789abcdef\"\n", &env, "test").unwrap_err().to_string();
        assert!(err.contains("slack.bot_tokn"), "{err}");
    }
}
