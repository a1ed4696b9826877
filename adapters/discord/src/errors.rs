//! Errors: why the adapter could not be created, and how Discord's failures map onto the
//! channel contract (`Rejected` is final, `RateLimited` and `Unavailable` are retried).

use crate::adapter::PLATFORM;
use frontdesk_channel::AdapterError;
use serenity::http::HttpError;

/// Why a [`DiscordAdapter`](crate::DiscordAdapter) could not be created.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// The `[discord]` configuration has problems, as `(key, what is wrong)`.
    #[error("the [discord] configuration is not usable: {}", describe(.0))]
    Config(Vec<(String, String)>),
}

fn describe(problems: &[(String, String)]) -> String {
    problems.iter().map(|(k, w)| format!("{k}: {w}")).collect::<Vec<_>>().join("; ")
}

/// How long to wait after a 429 whose `Retry-After` the HTTP client did not pass on (serenity
/// keeps neither the header nor the body's `retry_after`; with its rate limiter on, it waits
/// out such limits itself and this is rarely reached).
pub const DEFAULT_RETRY_AFTER_MS: u64 = 1000;

/// Maps a failed Discord call to the channel contract. `doing` says what frontdesk was trying
/// to do, for the person reading the error.
pub fn map_error(e: serenity::Error, doing: &str) -> AdapterError {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            let status = r.status_code.as_u16();
            let code = r.error.code;
            let said = r.error.message.clone();
            match status {
                429 => AdapterError::RateLimited { platform: PLATFORM, retry_after_ms: DEFAULT_RETRY_AFTER_MS },
                401 => AdapterError::Rejected {
                    platform: PLATFORM,
                    code: "401".into(),
                    message: format!("could not {doing}: Discord refused the bot token ({said}); check [discord] bot_token"),
                },
                403 => AdapterError::Rejected {
                    platform: PLATFORM,
                    code: format!("403/{code}"),
                    message: format!(
                        "could not {doing}: the bot is missing access or a permission there ({said}); give its role View Channel, Send Messages, Send Messages in Threads, Create Public Threads, Read Message History and Embed Links in that channel"
                    ),
                },
                404 => AdapterError::Rejected {
                    platform: PLATFORM,
                    code: format!("404/{code}"),
                    message: format!(
                        "could not {doing}: Discord does not know that channel or message ({said}); it may have been deleted, or the id is wrong"
                    ),
                },
                500..=599 => AdapterError::Unavailable {
                    platform: PLATFORM,
                    message: format!("could not {doing}: Discord answered {status} ({said})"),
                },
                _ => AdapterError::Rejected {
                    platform: PLATFORM,
                    code: format!("{status}/{code}"),
                    message: format!("could not {doing}: Discord refused the request ({said})"),
                },
            }
        }
        serenity::Error::Http(HttpError::Request(e)) => {
            AdapterError::Unavailable { platform: PLATFORM, message: format!("could not {doing}: {e}") }
        }
        serenity::Error::Io(e) => {
            AdapterError::Unavailable { platform: PLATFORM, message: format!("could not {doing}: {e}") }
        }
        serenity::Error::Tungstenite(e) => {
            AdapterError::Unavailable { platform: PLATFORM, message: format!("could not {doing}: {e}") }
        }
        serenity::Error::Gateway(g) => {
            use serenity::gateway::GatewayError as G;
            let hint = match &g {
                G::InvalidAuthentication => " — Discord refused the bot token; check [discord] bot_token",
                G::DisallowedGatewayIntents => {
                    " — enable the Message Content intent in the Developer Portal (Bot → Privileged Gateway Intents)"
                }
                _ => "",
            };
            let retryable = !matches!(
                g,
                G::InvalidAuthentication | G::DisallowedGatewayIntents | G::InvalidGatewayIntents | G::InvalidShardData
            );
            if retryable {
                AdapterError::Unavailable { platform: PLATFORM, message: format!("could not {doing}: {g}") }
            } else {
                AdapterError::Rejected {
                    platform: PLATFORM,
                    code: "gateway".into(),
                    message: format!("could not {doing}: {g}{hint}"),
                }
            }
        }
        other => AdapterError::Rejected {
            platform: PLATFORM,
            code: "client".into(),
            message: format!("could not {doing}: {other}"),
        },
    }
}
