//! The checks `frontdesk doctor` runs against Discord.

use super::DiscordAdapter;
use crate::errors::map_error;
use frontdesk_channel::{ChannelAdapter, Health};
use serenity::all::ApplicationFlags;

impl DiscordAdapter {
    /// Checks, for `frontdesk doctor`: the token, the application id, the privileged intent and
    /// the public key.
    pub async fn doctor(&self) -> Vec<(String, Health)> {
        let mut out = Vec::new();
        out.push(("discord token".to_string(), self.healthcheck().await));
        match self.http.get_current_application_info().await {
            Ok(app) => {
                let expected = self.config.application_id.trim();
                let ok = app.id.get().to_string() == expected;
                out.push((
                    "discord application id".to_string(),
                    Health {
                        ok,
                        detail: if ok {
                            format!("the token belongs to application {} ({})", app.name, app.id)
                        } else {
                            format!(
                                "the token belongs to application {} ({}), but application_id is {expected}",
                                app.name, app.id
                            )
                        },
                    },
                ));
                let flags = app.flags.unwrap_or(ApplicationFlags::empty());
                let content = flags.intersects(
                    ApplicationFlags::GATEWAY_MESSAGE_CONTENT | ApplicationFlags::GATEWAY_MESSAGE_CONTENT_LIMITED,
                );
                out.push((
                    "discord message content intent".to_string(),
                    Health {
                        ok: content,
                        detail: if content {
                            "the Message Content intent is enabled".into()
                        } else {
                            "the Message Content intent is off: enable it under Bot → Privileged Gateway Intents, or the bot cannot read questions".into()
                        },
                    },
                ));
                if let Some(verifier_key) = self.verifier.as_ref().map(|_| self.config.public_key.trim().to_lowercase())
                {
                    let ok = app.verify_key.to_lowercase() == verifier_key;
                    out.push((
                        "discord public key".to_string(),
                        Health {
                            ok,
                            detail: if ok {
                                "public_key matches the application's".into()
                            } else {
                                "public_key differs from the application's Public Key (General Information); interaction requests would be refused".into()
                            },
                        },
                    ));
                }
            }
            Err(e) => out.push((
                "discord application id".to_string(),
                Health {
                    ok: false,
                    detail: format!("could not read the application: {}", map_error(e, "read the application")),
                },
            )),
        }
        if self.config.interactions_endpoint && self.verifier.is_none() {
            out.push((
                "discord public key".to_string(),
                Health { ok: false, detail: "interactions_endpoint is on but public_key is not set".into() },
            ));
        }
        out
    }
}
