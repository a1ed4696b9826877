//! `POST /email/inbound`: a mail service posts each received email as raw MIME.
//!
//! Authentication (`email.webhook.mode`):
//! - `hmac`: `X-Frontdesk-Signature: sha256=<hex of HMAC-SHA256(secret, body)>`;
//! - `shared`: `Authorization: Bearer <secret>`.
//!
//! Answers: 200 with `{"status": "accepted" | "duplicate" | "ignored" | "own" | "held", ...}`
//! once the mail is durable (or deliberately not answered, with the reason); 400 with a precise
//! message for mail that cannot be read; 401 for a missing or wrong signature; 404 when the
//! webhook is not configured; 503 while the adapter is not running or the inbox is unavailable
//! (the sender should retry).

use crate::adapter::{EmailAdapter, IngestError, Ingested};
use crate::config::WebhookMode;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use std::sync::Arc;

/// The path of the webhook.
pub const INBOUND_PATH: &str = "/email/inbound";

impl EmailAdapter {
    /// The webhook's routes, to be merged into the service's HTTP server.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(INBOUND_PATH, post(inbound))
            .layer(DefaultBodyLimit::max(self.inbound_body_limit()))
            .with_state(Arc::clone(self))
    }

    /// The largest body `POST /email/inbound` takes, in bytes; the server reads no more.
    pub fn inbound_body_limit(&self) -> usize {
        // Room for the largest attachment allowed, base64-encoded, and the rest of the mail.
        let limit = usize::try_from(self.config.max_attachment_bytes.saturating_mul(2)).unwrap_or(usize::MAX);
        limit.saturating_add(1024 * 1024)
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    answer(status, serde_json::json!({ "error": message.into() }))
}

fn authenticate(mode: WebhookMode, secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    match mode {
        WebhookMode::Hmac => {
            let Some(value) = headers.get(crate::SIGNATURE_HEADER) else {
                return Err(format!("missing {} header", crate::SIGNATURE_HEADER));
            };
            let value = value.to_str().map_err(|_| "the signature header is not text".to_string())?;
            let hex_sig = value.trim().strip_prefix("sha256=").unwrap_or(value.trim());
            let signature = hex::decode(hex_sig).map_err(|_| "the signature is not hex".to_string())?;
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
                .map_err(|_| "the webhook secret is unusable".to_string())?;
            mac.update(body);
            mac.verify_slice(&signature).map_err(|_| "the signature does not match the body".to_string())
        }
        WebhookMode::Shared => {
            let given = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().strip_prefix("Bearer "))
                .ok_or_else(|| "missing Authorization: Bearer header".to_string())?;
            if crate::same_bytes(given.trim().as_bytes(), secret.as_bytes()) {
                Ok(())
            } else {
                Err("the shared secret does not match".into())
            }
        }
    }
}

async fn inbound(State(adapter): State<Arc<EmailAdapter>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = adapter.config.webhook.secret.as_ref().filter(|s| !s.expose_secret().is_empty()) else {
        return error(StatusCode::NOT_FOUND, "the email webhook is not configured (email.webhook.secret)");
    };
    if let Err(why) = authenticate(adapter.config.webhook.mode, secret.expose_secret(), &headers, &body) {
        tracing::warn!(reason = %why, "email webhook call refused");
        return error(StatusCode::UNAUTHORIZED, why);
    }
    let inbox = adapter.inbox.lock().ok().and_then(|slot| slot.clone());
    let Some(inbox) = inbox else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the email channel is not running yet; retry later");
    };
    match adapter.ingest(&body, inbox.as_ref()).await {
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

    #[test]
    fn signatures_are_checked() {
        let mut headers = HeaderMap::new();
        let body = b"From: a@example.com\r\n\r\nhi";
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"0123456789abcdef").unwrap();
        mac.update(body);
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(authenticate(WebhookMode::Hmac, "0123456789abcdef", &headers, body).is_err());
        headers.insert(crate::SIGNATURE_HEADER, format!("sha256={good}").parse().unwrap());
        assert_eq!(authenticate(WebhookMode::Hmac, "0123456789abcdef", &headers, body), Ok(()));
        assert!(authenticate(WebhookMode::Hmac, "0123456789abcdef", &headers, b"tampered").is_err());
        assert!(authenticate(WebhookMode::Hmac, "another secret!!", &headers, body).is_err());

        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer 0123456789abcdef".parse().unwrap());
        assert_eq!(authenticate(WebhookMode::Shared, "0123456789abcdef", &headers, body), Ok(()));
        assert!(authenticate(WebhookMode::Shared, "0123456789abcdeX", &headers, body).is_err());
    }
}
