//! `[server]`: how `frontdesk serve` listens and how many turns it runs at once.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address the HTTP endpoints listen on (`/slack/events`, `/discord/interactions`,
    /// `/email/inbound`, `/healthz`, `/readyz`). Put a TLS-terminating proxy in front of it.
    pub listen: String,
    /// The public https URL the platforms reach this server at (used in the Slack OAuth
    /// redirect and printed by `frontdesk serve` so the URLs to paste into the platforms'
    /// settings are exact).
    pub public_url: Option<String>,
    /// Conversations answered at the same time, shared in turn by workspace; the last free
    /// slot is kept for a workspace with no turn running.
    pub max_parallel: usize,
    /// Replies being delivered at the same time.
    pub max_parallel_deliveries: usize,
    /// Seconds `/readyz` trusts an adapter's last health check before checking again.
    pub health_cache_secs: u64,
    /// The largest request body accepted, in bytes, on every route that does not set its own
    /// (the email webhook sets a larger one for attachments). Slack's and Discord's requests
    /// are a few kilobytes; a larger body is refused with 413 before it is read.
    pub max_body_bytes: usize,
    /// Connections open at once; further ones wait until one closes.
    pub max_connections: usize,
    /// Seconds a request's head (request line and headers) may take to arrive from its first
    /// byte; a client that stalls in it is disconnected.
    pub header_timeout_secs: u64,
    /// Seconds a request's body may take to arrive in full; a slower one is answered 408.
    pub body_timeout_secs: u64,
    /// Seconds a connection may wait for its next request (a new one for its first) before it
    /// is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a handler may take to answer once the request is read; then 503.
    pub request_timeout_secs: u64,
    /// Shows `/readyz`'s details (workspaces, each channel's health message) to a caller that
    /// sends `Authorization: Bearer <token>`; without it `/readyz` names each check and whether
    /// it passed, nothing more. At least 32 characters; better set through
    /// `FRONTDESK_SERVER__ADMIN_TOKEN`.
    pub admin_token: Option<SecretString>,
}

/// The shortest `server.admin_token` accepted.
const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Bounds of `server.max_body_bytes`.
const MIN_BODY_BYTES: usize = 1024;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            max_parallel: 8,
            max_parallel_deliveries: 8,
            health_cache_secs: 30,
            max_body_bytes: 256 * 1024,
            max_connections: 256,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 60,
            request_timeout_secs: 30,
            admin_token: None,
        }
    }
}

impl ServerConfig {
    /// Values that parse but cannot work, as (key, problem).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            out.push((
                "server.listen".into(),
                format!("must be an address with a port such as 0.0.0.0:8080, not {:?}", self.listen),
            ));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                out.push(("server.public_url".into(), format!("must start with https://, not {url:?}")));
            }
        }
        if self.max_parallel == 0 || self.max_parallel > 256 {
            out.push(("server.max_parallel".into(), format!("must be between 1 and 256, not {}", self.max_parallel)));
        }
        if self.max_parallel_deliveries == 0 || self.max_parallel_deliveries > 256 {
            out.push((
                "server.max_parallel_deliveries".into(),
                format!("must be between 1 and 256, not {}", self.max_parallel_deliveries),
            ));
        }
        if !(MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(&self.max_body_bytes) {
            out.push((
                "server.max_body_bytes".into(),
                format!("must be between {MIN_BODY_BYTES} and {MAX_BODY_BYTES}, not {}", self.max_body_bytes),
            ));
        }
        if self.max_connections == 0 || self.max_connections > 16_384 {
            out.push((
                "server.max_connections".into(),
                format!("must be between 1 and 16384, not {}", self.max_connections),
            ));
        }
        for (key, value, most) in [
            ("header_timeout_secs", self.header_timeout_secs, 300),
            ("body_timeout_secs", self.body_timeout_secs, 600),
            ("idle_timeout_secs", self.idle_timeout_secs, 3600),
            ("request_timeout_secs", self.request_timeout_secs, 600),
        ] {
            if value == 0 || value > most {
                out.push((format!("server.{key}"), format!("must be between 1 and {most} seconds, not {value}")));
            }
        }
        if let Some(token) = &self.admin_token {
            let chars = token.expose_secret().trim().chars().count();
            if chars < MIN_ADMIN_TOKEN_CHARS {
                out.push((
                    "server.admin_token".into(),
                    format!(
                        "must be at least {MIN_ADMIN_TOKEN_CHARS} characters (e.g. from `openssl rand -hex 32`), not {chars}; remove it to show no details"
                    ),
                ));
            }
        }
        out
    }
}
