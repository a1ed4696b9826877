//! `POST /email/inbound`: a mail service posts each received email as raw MIME.
//!
//! Authentication (`email.webhook.mode`):
//! - `hmac`: `X-Frontdesk-Timestamp: <Unix seconds>` and
//!   `X-Frontdesk-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`: the
//!   timestamp exactly as sent in its header, a dot, then the body's bytes. A request whose
//!   timestamp is more than [`MAX_SIGNATURE_AGE_SECS`] away from the server's clock, or that
//!   was already received (the same signature), is refused;
//! - `shared`: `Authorization: Bearer <secret>`.
//!
//! Answers: 200 with `{"status": "accepted" | "duplicate" | "ignored" | "own" | "held", ...}`
//! once the mail is durable (or deliberately not answered, with the reason); 400 with a precise
//! message for mail that cannot be read; 401 for a missing or wrong signature, a timestamp out
//! of the window, or a replayed request; 404 when the webhook is not configured (answered
//! without reading the body); 503 while the adapter is not running or the inbox is unavailable
//! (the sender should retry).

use crate::adapter::{EmailAdapter, IngestError, Ingested};
use crate::config::WebhookMode;
use crate::MAX_SIGNATURE_AGE_SECS;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The path of the webhook.
pub const INBOUND_PATH: &str = "/email/inbound";

impl EmailAdapter {
    /// The webhook's routes, to be merged into the service's HTTP server. Without a webhook
    /// secret the route answers 404 at once, without reading the body.
    pub fn router(self: &Arc<Self>) -> Router {
        if !self.webhook_on() {
            return Router::new().route(INBOUND_PATH, post(not_configured));
        }
        Router::new()
            .route(INBOUND_PATH, post(inbound))
            .layer(DefaultBodyLimit::max(self.inbound_body_limit()))
            .with_state(Arc::clone(self))
    }

    /// Whether the webhook is on: `email.webhook.secret` is set. When it is off, the server
    /// must not read the route's request bodies at all (see [`EmailAdapter::router`]).
    pub fn webhook_on(&self) -> bool {
        self.config.webhook.secret.as_ref().is_some_and(|s| !s.expose_secret().is_empty())
    }

    /// The largest body `POST /email/inbound` takes, in bytes; the server reads no more.
    pub fn inbound_body_limit(&self) -> usize {
        // Room for the largest attachment allowed, base64-encoded, and the rest of the mail.
        let limit = usize::try_from(self.config.max_attachment_bytes.saturating_mul(2)).unwrap_or(usize::MAX);
        limit.saturating_add(1024 * 1024)
    }
}

/// The signatures of the HMAC requests taken in the last [`MAX_SIGNATURE_AGE_SECS`], so that a
/// captured request sent again within its window is refused.
///
/// The inbox already drops a mail it holds (the Message-ID is the event id), so a replay could
/// not get a mail answered twice. The cache is kept for what that does not cover: a replay is
/// refused after the HMAC alone, before the body (tens of MB at most) is parsed and its DKIM
/// signature looked up in DNS, so a captured request cannot make the server redo that work,
/// nor log a held or ignored mail again, at will. It lives in memory and only as long as the
/// window: after a restart the Message-ID dedup still stands.
///
/// A request is remembered only once it was answered for good (taken, or refused as
/// unreadable): one answered 503, or cut off by the server's request timeout, is forgotten, so
/// that the sender's retry of the same signed request is taken.
#[derive(Debug, Default)]
pub(crate) struct Replays {
    /// Signature → the request's timestamp (Unix seconds).
    seen: HashMap<[u8; 32], i64>,
    /// Expired entries are swept when `seen` grows to this size.
    sweep_at: usize,
}

impl Replays {
    /// Claims `signature` (of a request signed at `timestamp`); false when it was claimed before.
    fn claim(&mut self, signature: [u8; 32], timestamp: i64, now_secs: i64) -> bool {
        if self.seen.len() >= self.sweep_at {
            // A signature older than the window is refused by its timestamp anyway.
            self.seen.retain(|_, at| *at >= now_secs.saturating_sub(MAX_SIGNATURE_AGE_SECS));
            self.sweep_at = (self.seen.len() * 2).max(1024);
        }
        self.seen.insert(signature, timestamp).is_none()
    }

    fn release(&mut self, signature: &[u8; 32]) {
        self.seen.remove(signature);
    }
}

/// A claimed signature, released when dropped unless kept: a request that did not get a final
/// answer (503, or cancelled by the request timeout) may be sent again.
struct Claim<'a> {
    replays: &'a Mutex<Replays>,
    signature: [u8; 32],
    keep: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.keep {
            if let Ok(mut replays) = self.replays.lock() {
                replays.release(&self.signature);
            }
        }
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    answer(status, serde_json::json!({ "error": message.into() }))
}

/// What authenticated a request: the HMAC and the timestamp it covers (none in shared mode).
type Signed = Option<([u8; 32], i64)>;

/// Checks a request's authentication; `now_secs` is the server's clock (Unix seconds).
fn authenticate(
    mode: WebhookMode,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<Signed, String> {
    match mode {
        WebhookMode::Hmac => {
            let Some(value) = headers.get(crate::SIGNATURE_HEADER) else {
                return Err(format!("missing {} header", crate::SIGNATURE_HEADER));
            };
            let value = value.to_str().map_err(|_| "the signature header is not text".to_string())?;
            let hex_sig = value.trim().strip_prefix("sha256=").unwrap_or(value.trim());
            let signature = hex::decode(hex_sig).map_err(|_| "the signature is not hex".to_string())?;
            let Some(stamp) = headers.get(crate::TIMESTAMP_HEADER) else {
                return Err(format!(
                    "missing {} header: send the time of signing in Unix seconds, and sign \"<timestamp>.<body>\"",
                    crate::TIMESTAMP_HEADER
                ));
            };
            let stamp = stamp.to_str().unwrap_or("").trim();
            let timestamp = Some(stamp)
                .filter(|s| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| {
                    format!("{} must be the time of signing in Unix seconds (digits only)", crate::TIMESTAMP_HEADER)
                })?;
            let max = MAX_SIGNATURE_AGE_SECS;
            if now_secs - timestamp > max {
                return Err(format!(
                    "the request was signed {} s ago ({}: {timestamp}); requests signed more than {max} s before they \
                     arrive are refused: sign each delivery when it is sent, and check the sender's clock",
                    now_secs - timestamp,
                    crate::TIMESTAMP_HEADER
                ));
            }
            if timestamp - now_secs > max {
                return Err(format!(
                    "{}: {timestamp} is {} s ahead of this server's clock (at most {max} s are allowed): check the \
                     clocks of the sender and of this server",
                    crate::TIMESTAMP_HEADER,
                    timestamp - now_secs
                ));
            }
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
                .map_err(|_| "the webhook secret is unusable".to_string())?;
            mac.update(stamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected: [u8; 32] = mac.finalize().into_bytes().into();
            if crate::same_bytes(&signature, &expected) {
                Ok(Some((expected, timestamp)))
            } else {
                Err(format!("the signature does not match \"{}.<body>\" signed with the webhook secret", stamp))
            }
        }
        WebhookMode::Shared => {
            let given = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().strip_prefix("Bearer "))
                .ok_or_else(|| "missing Authorization: Bearer header".to_string())?;
            if crate::same_bytes(given.trim().as_bytes(), secret.as_bytes()) {
                Ok(None)
            } else {
                Err("the shared secret does not match".into())
            }
        }
    }
}

/// The route while the webhook is off: answered at once, the body never read.
async fn not_configured() -> Response {
    let mut response = error(
        StatusCode::NOT_FOUND,
        "the email webhook is not configured: set email.webhook.secret to receive mail at /email/inbound",
    );
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

async fn inbound(State(adapter): State<Arc<EmailAdapter>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = adapter.config.webhook.secret.as_ref().filter(|s| !s.expose_secret().is_empty()) else {
        return not_configured().await;
    };
    let now_secs = crate::now_ms() / 1000;
    let signed = match authenticate(adapter.config.webhook.mode, secret.expose_secret(), &headers, &body, now_secs) {
        Ok(signed) => signed,
        Err(why) => {
            tracing::warn!(reason = %why, "email webhook call refused");
            return error(StatusCode::UNAUTHORIZED, why);
        }
    };
    let mut claim = None;
    if let Some((signature, timestamp)) = signed {
        let fresh = adapter.replays.lock().map(|mut r| r.claim(signature, timestamp, now_secs)).unwrap_or(true);
        if !fresh {
            let why = "this signed request was already received (a replay): sign each delivery attempt anew, with \
                       the current time in X-Frontdesk-Timestamp";
            tracing::warn!(timestamp, "email webhook call refused: {why}");
            return error(StatusCode::UNAUTHORIZED, why);
        }
        claim = Some(Claim { replays: &adapter.replays, signature, keep: false });
    }
    let response = handle(&adapter, &body).await;
    if let Some(claim) = claim.as_mut() {
        claim.keep = response.status() != StatusCode::SERVICE_UNAVAILABLE;
    }
    response
}

/// Takes an authenticated request's mail in.
async fn handle(adapter: &EmailAdapter, body: &[u8]) -> Response {
    let inbox = adapter.inbox.lock().ok().and_then(|slot| slot.clone());
    let Some(inbox) = inbox else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the email channel is not running yet; retry later");
    };
    match adapter.ingest(body, inbox.as_ref()).await {
        Ok(outcome) => {
            let (status, reason) = match outcome {
                Ingested::Accepted => ("accepted", None),
                Ingested::Duplicate => ("duplicate", None),
                Ingested::Ignored(why) => ("ignored", Some(why)),
                Ingested::Own => ("own", Some("our own email is never answered".to_string())),
                Ingested::Held(why) => ("held", Some(why)),
            };
            answer(StatusCode::OK, serde_json::json!({ "status": status, "reason": reason }))
        }
        Err(IngestError::Malformed(m)) => {
            tracing::warn!(error = %m, "email webhook: unreadable email refused");
            error(StatusCode::BAD_REQUEST, m.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "email webhook: the email could not be taken in");
            error(StatusCode::SERVICE_UNAVAILABLE, format!("{e}; retry later"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SECRET: &str = "0123456789abcdef";
    const NOW: i64 = 1_750_000_000;

    fn signed(secret: &str, timestamp: &str, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        let mut headers = HeaderMap::new();
        headers.insert(crate::TIMESTAMP_HEADER, timestamp.parse().unwrap());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        headers.insert(crate::SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    fn check(headers: &HeaderMap, body: &[u8]) -> Result<Signed, String> {
        authenticate(WebhookMode::Hmac, SECRET, headers, body, NOW)
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let body = b"From: a@example.com\r\n\r\nhi";
        let now = NOW.to_string();
        assert!(check(&HeaderMap::new(), body).unwrap_err().contains("missing x-frontdesk-signature"));
        let good = signed(SECRET, &now, body);
        assert!(matches!(check(&good, body), Ok(Some((_, NOW)))));
        assert!(check(&good, b"tampered").unwrap_err().contains("does not match"));
        assert!(check(&signed("another secret!!", &now, body), body).is_err());

        // The timestamp is signed: changing it breaks the signature.
        let mut moved = good.clone();
        moved.insert(crate::TIMESTAMP_HEADER, (NOW - 1).to_string().parse().unwrap());
        assert!(check(&moved, body).unwrap_err().contains("does not match"));

        // A signature of the body alone (no timestamp) is refused, saying what to send.
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body);
        let mut body_only = HeaderMap::new();
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        body_only.insert(crate::SIGNATURE_HEADER, signature.parse().unwrap());
        let why = check(&body_only, body).unwrap_err();
        assert!(why.contains("missing x-frontdesk-timestamp") && why.contains("<timestamp>.<body>"), "{why}");
        body_only.insert(crate::TIMESTAMP_HEADER, now.parse().unwrap());
        assert!(check(&body_only, body).unwrap_err().contains("does not match"));

        for bad in ["", "soon", "-5", "1.5", "17500000000000000000"] {
            let why = check(&signed(SECRET, bad, body), body).unwrap_err();
            assert!(why.contains("Unix seconds"), "{bad:?}: {why}");
        }
    }

    #[test]
    fn a_timestamp_more_than_300_seconds_away_is_refused() {
        let body = b"From: a@example.com\r\n\r\nhi";
        let at = |t: i64| check(&signed(SECRET, &t.to_string(), body), body);
        assert!(at(NOW - 300).is_ok());
        assert!(at(NOW + 300).is_ok());
        let why = at(NOW - 301).unwrap_err();
        assert!(why.contains("signed 301 s ago") && why.contains("more than 300 s"), "{why}");
        let why = at(NOW + 301).unwrap_err();
        assert!(why.contains("301 s ahead of this server's clock"), "{why}");
        assert!(at(0).unwrap_err().contains("s ago"));
    }

    #[test]
    fn the_shared_secret_mode_needs_the_bearer_token_only() {
        let body = b"From: a@example.com\r\n\r\nhi";
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer 0123456789abcdef".parse().unwrap());
        assert_eq!(authenticate(WebhookMode::Shared, SECRET, &headers, body, NOW), Ok(None));
        assert!(authenticate(WebhookMode::Shared, "0123456789abcdeX", &headers, body, NOW).is_err());
    }

    #[test]
    fn a_signature_is_taken_once_within_its_window() {
        let mut replays = Replays::default();
        assert!(replays.claim([1; 32], NOW, NOW));
        assert!(!replays.claim([1; 32], NOW, NOW + 10), "the same signature again");
        assert!(replays.claim([2; 32], NOW, NOW + 10));
        replays.release(&[2; 32]);
        assert!(replays.claim([2; 32], NOW, NOW + 10), "released: a retry of a request that was not taken");

        // Signatures past the window are forgotten (their timestamp refuses them anyway).
        let later = NOW + MAX_SIGNATURE_AGE_SECS + 1;
        for n in 0..2000u32 {
            let mut signature = [0; 32];
            signature[..4].copy_from_slice(&n.to_be_bytes());
            signature[31] = 9;
            assert!(replays.claim(signature, later, later));
        }
        assert!(!replays.seen.contains_key(&[1; 32]));
    }
}
