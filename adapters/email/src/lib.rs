//! Email channel adapter: customers write to the support address, frontdesk answers in the same
//! thread.
//!
//! - **In**: IMAP (IDLE, with polling when the server has no IDLE or the connection drops; TLS,
//!   STARTTLS, or plain on loopback; reconnects with backoff), or the webhook
//!   `POST /email/inbound` for mail services that post raw MIME. Each message is handed to the
//!   durable inbox once: it is flagged (or moved) only after the inbox holds it, and its
//!   Message-ID is the event id, so the same mail twice is dropped by the inbox.
//! - **Threads**: a conversation is an email thread. A mail continues one when it answers one of
//!   our messages (replies and forwards) and its sender is the conversation's customer or a
//!   verified agent; any other mail starts a conversation of its own, keyed by its Message-ID.
//! - **Out**: SMTP with `In-Reply-To`/`References`, `Subject: Re: ...`, and a Message-ID derived
//!   from the reply's id (a retried delivery carries the same one) and signed with a secret made
//!   at the first start, so nobody can guess or make one of ours.
//! - **Handoff**: the customer is told in the thread; the thread (summary and the customer's
//!   messages) is forwarded to the agents' address, with `Reply-To` set to the customer and the
//!   support address so the agent's reply both answers the customer and tells frontdesk that a
//!   person took over. Mail from agents' addresses marks the author as an agent, but only when
//!   a valid DKIM signature of the From domain proves the address (anyone can write it).
//! - **No loops, no abuse**: auto-replies, bounces and bulk mail are ignored (logged with the
//!   reason), our own mail is never answered, each sender has an hourly limit (mail over it is
//!   held for a person, see [`EmailAdapter::held`]). A sender is verified only by a valid DKIM
//!   signature of its domain: every other mail is marked `unverified_sender`.

mod adapter;
mod config;
mod dkim;
mod imap;
mod outbound;
mod parse;
mod setup;
mod state;
mod tls;
mod webhook;

#[cfg(feature = "test-util")]
pub mod fake;

pub use adapter::{EmailAdapter, EmailError, Ingested};
pub use config::{DkimConfig, EmailConfig, ImapConfig, Security, SmtpConfig, WebhookConfig, WebhookMode};
pub use dkim::{DkimVerdict, DkimVerifier};
pub use parse::{new_text, parse, Malformed, ParsedAttachment, ParsedMail};
pub use state::HeldMessage;
pub use webhook::INBOUND_PATH;

/// The header carrying the webhook's HMAC: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-frontdesk-signature";

/// The header carrying the time the webhook request was signed: Unix seconds, in decimal. The
/// HMAC covers it: the signed string is `{timestamp}.{body}`.
pub const TIMESTAMP_HEADER: &str = "x-frontdesk-timestamp";

/// How far (seconds) a signed webhook request's timestamp may be behind or ahead of the
/// server's clock.
pub const MAX_SIGNATURE_AGE_SECS: i64 = 300;

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Compares without leaking where the first difference is.
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
