//! `[slack]` as `frontdesk serve` builds it.

use crate::{SlackAdapter, SlackConfig, SlackMode};
use frontdesk_channel::{BuildContext, BuiltChannel, ChannelConfig, SetupError, Source};

impl ChannelConfig for SlackConfig {
    fn problems(&self) -> Vec<(String, String)> {
        SlackConfig::problems(self)
    }

    fn build(&self, cx: BuildContext) -> Result<BuiltChannel, SetupError> {
        let adapter = SlackAdapter::new(self.clone(), cx.state).map_err(|e| SetupError::new("slack", e))?;
        let public = cx.public_url;
        let mut endpoints = Vec::new();
        if self.mode == SlackMode::Socket {
            endpoints.push("Slack: Socket Mode (no public URL needed)".to_string());
        } else {
            endpoints.push(format!("Slack Event Subscriptions request URL: {public}/slack/events"));
            endpoints.push(format!("Slack Interactivity request URL:       {public}/slack/interactions"));
        }
        if self.client_id.is_some() {
            endpoints.push(format!("Slack install link: {public}/slack/install"));
            endpoints.push(format!("Slack OAuth redirect URL: {public}/slack/oauth/callback"));
        }
        Ok(BuiltChannel { source: Source::Slack, routes: adapter.router().into(), adapter, endpoints })
    }
}
