//! The HTTP interactions endpoint, `POST /discord/interactions`: Discord signs every request
//! with the application's Ed25519 key over `timestamp || body`.

use crate::adapter::DiscordAdapter;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serenity::all::Interaction;
use std::sync::Arc;

/// The path Discord posts interactions to (the "Interactions Endpoint URL" is the public base
/// URL of `frontdesk serve` followed by this).
pub const INTERACTIONS_PATH: &str = "/discord/interactions";

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Signature-Ed25519 or X-Signature-Timestamp header is missing")]
    Missing,
    #[error("the request signature does not match the application's public key")]
    Invalid,
    #[error("X-Signature-Timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the request was signed {age_secs} s away from now; at most {max_secs} s is accepted")]
    Stale { age_secs: i64, max_secs: u64 },
}

/// Checks the Ed25519 signature of a request (`signature` in hex) over `timestamp || body`.
/// The age of the timestamp is checked separately by [`check_timestamp`].
pub fn verify_signature(
    verifier: &serenity::interactions_endpoint::Verifier,
    signature: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<(), SignatureError> {
    verifier.verify(signature.trim(), timestamp, body).map_err(|()| SignatureError::Invalid)
}

/// Checks that a request was signed within `max_age_secs` of `now_secs` (either way), so a
/// captured request cannot be replayed later.
pub fn check_timestamp(timestamp: &str, now_secs: i64, max_age_secs: u64) -> Result<(), SignatureError> {
    let signed: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let age = now_secs.saturating_sub(signed);
    if age.unsigned_abs() > max_age_secs {
        return Err(SignatureError::Stale { age_secs: age, max_secs: max_age_secs });
    }
    Ok(())
}

fn now_secs() -> i64 {
    crate::adapter::now_ms() / 1000
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

impl DiscordAdapter {
    /// The HTTP routes of the adapter: `POST /discord/interactions`. Mount it in the server of
    /// `frontdesk serve`; it answers 503 until `run` has started.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route(INTERACTIONS_PATH, post(interactions)).with_state(self.clone())
    }
}

async fn interactions(State(adapter): State<Arc<DiscordAdapter>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(verifier) = adapter.verifier.as_ref() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the interactions endpoint is not configured: set [discord] public_key",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (Some(signature), Some(timestamp)) = (header("x-signature-ed25519"), header("x-signature-timestamp")) else {
        return refuse(StatusCode::UNAUTHORIZED, SignatureError::Missing.to_string());
    };
    if let Err(e) = verify_signature(verifier, &signature, &timestamp, &body) {
        tracing::warn!(error = %e, "an interaction request with a bad signature was refused");
        return refuse(StatusCode::UNAUTHORIZED, e.to_string());
    }
    if let Err(e) = check_timestamp(&timestamp, now_secs(), adapter.config.max_signature_age_secs) {
        tracing::warn!(error = %e, "a stale interaction request was refused");
        return refuse(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
    };
    // A PING needs no inbox: Discord sends it to check the endpoint when it is saved.
    match value.get("type").and_then(serde_json::Value::as_u64) {
        Some(1) => return Json(serde_json::json!({ "type": 1 })).into_response(),
        Some(_) => {}
        None => return refuse(StatusCode::BAD_REQUEST, "the interaction has no numeric \"type\""),
    }
    let interaction: Interaction = match serde_json::from_value(value) {
        Ok(i) => i,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the interaction is malformed: {e}")),
    };
    let Some(inbox) = adapter.current_inbox() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "frontdesk's Discord adapter is not running yet");
    };
    let response = adapter.handle_interaction(inbox.as_ref(), interaction).await;
    match serde_json::to_value(&response) {
        Ok(v) => Json(v).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("the response could not be written: {e}")),
    }
}
