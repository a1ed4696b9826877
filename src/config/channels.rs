//! `[slack]`, `[discord]`, `[email]`: the channels `frontdesk serve` runs. Each section is the
//! adapter's own configuration type; a channel runs when its section is present.

use std::fmt;

#[derive(Clone, Default)]
pub struct ChannelsConfig {
    #[cfg(feature = "slack")]
    pub slack: Option<frontdesk_slack::SlackConfig>,
    #[cfg(feature = "discord")]
    pub discord: Option<frontdesk_discord::DiscordConfig>,
    #[cfg(feature = "email")]
    pub email: Option<frontdesk_email::EmailConfig>,
}

/// Only which channels are configured: their sections hold secrets.
impl fmt::Debug for ChannelsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.configured()).finish()
    }
}

/// The section names, whether or not this build includes the channel.
pub const CHANNEL_SECTIONS: &[&str] = &["slack", "discord", "email"];

impl ChannelsConfig {
    /// The names of the configured channels.
    pub fn configured(&self) -> Vec<&'static str> {
        #[allow(unused_mut)]
        let mut out = Vec::new();
        #[cfg(feature = "slack")]
        if self.slack.is_some() {
            out.push("slack");
        }
        #[cfg(feature = "discord")]
        if self.discord.is_some() {
            out.push("discord");
        }
        #[cfg(feature = "email")]
        if self.email.is_some() {
            out.push("email");
        }
        out
    }

    /// Every configured channel's own checks, as (path, problem) with the section in the path.
    pub fn problems(&self) -> Vec<(String, String)> {
        #[allow(unused_mut)]
        let mut out: Vec<(String, String)> = Vec::new();
        #[allow(unused_mut, unused_variables)]
        let mut add = |section: &str, problems: Vec<(String, String)>| {
            for (key, problem) in problems {
                let path = if key.starts_with(&format!("{section}.")) { key } else { format!("{section}.{key}") };
                out.push((path, problem));
            }
        };
        #[cfg(feature = "slack")]
        if let Some(c) = &self.slack {
            add("slack", c.problems());
        }
        #[cfg(feature = "discord")]
        if let Some(c) = &self.discord {
            add("discord", c.problems());
        }
        #[cfg(feature = "email")]
        if let Some(c) = &self.email {
            add("email", c.problems());
        }
        out
    }
}

#[cfg(all(test, feature = "slack", feature = "discord", feature = "email"))]
mod tests {
    use crate::config::Config;

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
        let config = Config::from_toml_with_env(text, &[], "test").unwrap();
        assert_eq!(config.channels.configured(), vec!["slack", "email"]);
        // Debug output names the channels, never their secrets.
        let shown = format!("{config:?}");
        assert!(!shown.contains("xoxb-1-2-3") && !shown.contains("0123456789abcdef"), "{shown}");

        let bad = "[slack]\nsigning_secret = \"s\"\nbot_tokn = \"xoxb\"\n\n[server]\nlisten = \"nowhere\"\n";
        let err = Config::from_toml_with_env(bad, &[], "test").unwrap_err().to_string();
        assert!(err.contains("slack"), "{err}");
        assert!(err.contains("bot_tokn"), "{err}");
        assert!(err.contains("server.listen"), "{err}");

        let incomplete = "[discord]\napplication_id = \"123\"\n";
        let err = Config::from_toml_with_env(incomplete, &[], "test").unwrap_err().to_string();
        assert!(err.contains("discord.bot_token"), "{err}");

        // A CA file that cannot be used is named with its path in the configuration.
        let unusable = "[email]\naddress = \"support@example.com\"\n[email.smtp]\nhost = \"smtp.example.com\"\nca_file = \"/nonexistent/ca.pem\"\n[email.webhook]\nsecret = \"0123456789abcdef0123\"\n";
        let err = Config::from_toml_with_env(unusable, &[], "test").unwrap_err().to_string();
        assert!(err.contains("email.smtp.ca_file") && err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
