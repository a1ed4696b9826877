//! `[discord]` as `frontdesk serve` builds it.

use crate::{DiscordAdapter, DiscordConfig};
use frontdesk_channel::{BuildContext, BuiltChannel, ChannelConfig, SetupError, Source};

impl ChannelConfig for DiscordConfig {
    fn problems(&self) -> Vec<(String, String)> {
        DiscordConfig::problems(self)
    }

    fn build(&self, cx: BuildContext) -> Result<BuiltChannel, SetupError> {
        let adapter = DiscordAdapter::new(self.clone(), cx.policies).map_err(|e| SetupError::new("discord", e))?;
        let mut endpoints = vec!["Discord: gateway connection (messages, buttons and slash commands)".to_string()];
        if self.interactions_endpoint {
            endpoints.push(format!("Discord Interactions Endpoint URL: {}/discord/interactions", cx.public_url));
        }
        Ok(BuiltChannel { source: Source::Discord, routes: adapter.router().into(), adapter, endpoints })
    }
}
