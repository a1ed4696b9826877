//! The HTTP endpoints Slack calls: events, interactions (button clicks), and the OAuth install
//! flow. Each request is verified, normalised and handed to the inbox; the acknowledgement goes
//! out only once the inbox holds the message durably. Status codes:
//!
//! - 200: handled (accepted, a duplicate, or nothing for the engine);
//! - 400: the payload cannot be read (the body says what is wrong); nothing was enqueued;
//! - 401: bad or missing signature, or a timestamp outside the window; nothing was enqueued;
//! - 503: the adapter is not running yet, or the inbox could not store the message; Slack
//!   retries.

use crate::adapter::SlackAdapter;
use crate::agents::Membership;
use crate::blocks;
use crate::normalise::{self, ClickOutcome, Envelope, Malformed};
use crate::signature::{self, SignatureError};
use crate::store::{Installation, StateCheck, MAX_PENDING_INSTALLS};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use frontdesk_channel::{Inbound, UserAction};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// How long an install link stays valid.
const OAUTH_STATE_TTL_MS: i64 = 10 * 60 * 1000;

/// An answer to Slack: a status and a short text that never contains a secret.
#[derive(Debug)]
pub(crate) struct Reply(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn bad_request(e: Malformed) -> Reply {
    tracing::warn!(error = %e, "slack: malformed payload refused");
    Reply(StatusCode::BAD_REQUEST, e.0)
}

impl SlackAdapter {
    /// The routes Slack calls; merge them into the server that also serves `/healthz`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/slack/events", post(events))
            .route("/slack/interactions", post(interactions))
            .route("/slack/install", get(install))
            .route("/slack/oauth/callback", get(oauth_callback))
            .with_state(Arc::clone(self))
    }

    fn check_signature(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Reply> {
        let Some(secret) = self.config.signing_secret.as_ref().filter(|s| !s.expose_secret().is_empty()) else {
            tracing::error!("slack: a request arrived but no signing_secret is configured; refusing it");
            return Err(Reply(StatusCode::UNAUTHORIZED, "this server has no Slack signing secret configured".into()));
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        signature::verify_request(
            secret.expose_secret().as_bytes(),
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            body,
            signature::now_secs(),
            self.config.max_signature_age_secs,
        )
        .map_err(|e: SignatureError| {
            tracing::warn!(error = %e, "slack: request refused");
            Reply(StatusCode::UNAUTHORIZED, e.to_string())
        })
    }

    /// Hands one message to the inbox and answers Slack once it is stored.
    pub(crate) async fn hand_over(&self, message: Inbound) -> Reply {
        let Some(inbox) = self.current_inbox() else {
            return Reply(StatusCode::SERVICE_UNAVAILABLE, "frontdesk is starting; try again".into());
        };
        let (id, conversation) = (message.id.clone(), message.conversation.clone());
        match inbox.accept(message).await {
            Ok(true) => {
                tracing::info!(event = %id, conversation = %conversation, "slack: message accepted");
                Reply(StatusCode::OK, String::new())
            }
            Ok(false) => {
                tracing::debug!(event = %id, "slack: duplicate dropped");
                Reply(StatusCode::OK, String::new())
            }
            Err(e) => {
                tracing::error!(event = %id, error = %e, "slack: the inbox could not store a message; Slack will retry");
                Reply(StatusCode::SERVICE_UNAVAILABLE, "the message could not be stored; try again".into())
            }
        }
    }
}

async fn events(State(adapter): State<Arc<SlackAdapter>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = adapter.check_signature(&headers, &body) {
        return reply.into_response();
    }
    let retry = headers.get("x-slack-retry-num").and_then(|v| v.to_str().ok()).map(str::to_string);
    let envelope = match normalise::parse_envelope(&body) {
        Ok(e) => e,
        Err(e) => return bad_request(e).into_response(),
    };
    match envelope {
        Envelope::UrlVerification { challenge } => Json(json!({ "challenge": challenge })).into_response(),
        Envelope::AppRateLimited { team_id } => {
            tracing::warn!(team = ?team_id, "slack: Slack is holding back our events (app_rate_limited)");
            Reply(StatusCode::OK, String::new()).into_response()
        }
        Envelope::Other { kind } => {
            tracing::warn!(kind = %kind, "slack: unexpected envelope type acknowledged without action");
            Reply(StatusCode::OK, String::new()).into_response()
        }
        Envelope::Event(cb) => {
            if adapter.current_inbox().is_none() {
                return Reply(StatusCode::SERVICE_UNAVAILABLE, "frontdesk is starting; try again".into())
                    .into_response();
            }
            if let Some(n) = &retry {
                tracing::debug!(event_id = ?cb.event_id, retry = %n, "slack: redelivered event");
            }
            match adapter.intake_event(&cb).await {
                Ok(Some(message)) => adapter.hand_over(message).await.into_response(),
                Ok(None) => Reply(StatusCode::OK, String::new()).into_response(),
                Err(e) => bad_request(e).into_response(),
            }
        }
    }
}

/// Reads the `payload` field of an interaction's form body.
pub(crate) fn interaction_payload(body: &[u8]) -> Result<Value, Malformed> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Malformed("the form has no payload field".into()))?;
    serde_json::from_str(&payload).map_err(|e| Malformed(format!("payload is not JSON: {e}")))
}

async fn interactions(State(adapter): State<Arc<SlackAdapter>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = adapter.check_signature(&headers, &body) {
        return reply.into_response();
    }
    let payload = match interaction_payload(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(e).into_response(),
    };
    adapter.intake_interaction(&payload).await.into_response()
}

impl SlackAdapter {
    /// One interaction payload (HTTP or Socket Mode) → the inbox.
    pub(crate) async fn intake_interaction(&self, payload: &Value) -> Reply {
        let click = match normalise::read_interaction(payload) {
            Ok(ClickOutcome::Click(c)) => *c,
            Ok(ClickOutcome::Ignore(why)) => {
                tracing::debug!(reason = %why, "slack: interaction ignored");
                return Reply(StatusCode::OK, String::new());
            }
            Err(e) => return bad_request(e),
        };
        if self.current_inbox().is_none() {
            return Reply(StatusCode::SERVICE_UNAVAILABLE, "frontdesk is starting; try again".into());
        }
        let shown = match (&click.action, &click.clicked) {
            // Only an answer as frontdesk posted it (its blocks came with the click) is rewritten.
            (UserAction::Feedback { helpful, .. }, Some((channel, ts, blocks)))
                if blocks.iter().any(|b| b["block_id"] == "frontdesk_feedback") =>
            {
                Some((channel.clone(), ts.clone(), blocks::answer_after_feedback(blocks, *helpful, &click.user)))
            }
            _ => None,
        };
        let team = click.team.clone();
        let status = self.agent_status(&team, &click.user).await;
        let is_agent = status == Membership::Member;
        if click.is_agent_action() && !is_agent {
            // Refused here: the engine never sees it. The clicker is told why, after the ack.
            tracing::info!(team = %team, user = %click.user, action = %click.action_id, "slack: claim or resolve by someone who is not an agent refused");
            let place = click.clicked.as_ref().map(|(channel, _, _)| channel.clone());
            match (place, self.me.upgrade()) {
                (Some(channel), Some(me)) => {
                    let text = self.not_an_agent_text(&team, status);
                    let user = click.user.clone();
                    tokio::spawn(async move { me.tell_privately(&team, &channel, &user, &text).await });
                }
                _ => tracing::warn!("slack: the refused click names no channel to explain it in"),
            }
            return Reply(StatusCode::OK, String::new());
        }
        match self.click_inbound(click, is_agent) {
            Ok(message) => {
                let reply = self.hand_over(message).await;
                // The rating is stored: show it on the answer, without holding up Slack's request.
                if let (StatusCode::OK, Some((channel, ts, blocks)), Some(me)) = (reply.0, shown, self.me.upgrade()) {
                    tokio::spawn(async move { me.show_rating(&team, &channel, &ts, blocks).await });
                }
                reply
            }
            Err(e) => bad_request(e),
        }
    }
}

async fn install(State(adapter): State<Arc<SlackAdapter>>) -> Response {
    let config = &adapter.config;
    let Some(client_id) = config.client_id.as_deref().filter(|_| config.oauth_enabled()) else {
        return Reply(StatusCode::NOT_FOUND, "installs through OAuth are not configured on this server".into())
            .into_response();
    };
    let mut raw = [0u8; 24];
    OsRng.fill_bytes(&mut raw);
    let state = hex::encode(raw);
    let now = now_ms();
    match adapter.store.put_oauth_state(&state, now, now + OAUTH_STATE_TTL_MS, MAX_PENDING_INSTALLS) {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                max = MAX_PENDING_INSTALLS,
                "slack: install refused: too many install links are outstanding (each lasts 10 minutes)"
            );
            return Reply(
                StatusCode::TOO_MANY_REQUESTS,
                "too many installs are in progress right now; try again in a few minutes".into(),
            )
            .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "slack: cannot record an install attempt");
            return Reply(StatusCode::SERVICE_UNAVAILABLE, "the install could not start; try again".into())
                .into_response();
        }
    }
    let mut url = match url::Url::parse(&config.authorize_url) {
        Ok(u) => u,
        Err(e) => {
            return Reply(StatusCode::INTERNAL_SERVER_ERROR, format!("authorize_url is not a URL: {e}")).into_response()
        }
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id);
        q.append_pair("scope", &crate::config::BOT_SCOPES.join(","));
        q.append_pair("state", &state);
        if let Some(r) = &config.redirect_url {
            q.append_pair("redirect_uri", r);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn now_ms() -> i64 {
    signature::now_secs().saturating_mul(1000)
}

async fn oauth_callback(State(adapter): State<Arc<SlackAdapter>>, Query(q): Query<Callback>) -> Response {
    let config = &adapter.config;
    let (Some(client_id), Some(secret)) = (config.client_id.as_deref(), config.client_secret.as_ref()) else {
        return Reply(StatusCode::NOT_FOUND, "installs through OAuth are not configured on this server".into())
            .into_response();
    };
    if let Some(e) = q.error {
        return Reply(StatusCode::BAD_REQUEST, format!("the install was not completed: Slack said {e}"))
            .into_response();
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Reply(StatusCode::BAD_REQUEST, "the callback needs code and state parameters".into()).into_response();
    };
    match adapter.store.take_oauth_state(&state, now_ms()) {
        Ok(StateCheck::Valid) => {}
        Ok(refused) => {
            let why = match refused {
                StateCheck::Used => "this install link was used already",
                StateCheck::Expired => "this install link has expired (it lasts 10 minutes)",
                _ => "this install link was not issued by this server, or expired long ago",
            };
            tracing::warn!(state = ?refused, "slack: install callback refused");
            return Reply(StatusCode::BAD_REQUEST, format!("{why}; start again at /slack/install")).into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "slack: cannot check an install attempt");
            return Reply(StatusCode::SERVICE_UNAVAILABLE, "the install could not be checked; try again".into())
                .into_response();
        }
    }
    let granted =
        match crate::api::oauth_access(&adapter.client, client_id, secret, &code, config.redirect_url.as_deref()).await
        {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "slack: oauth.v2.access failed");
                return Reply(StatusCode::BAD_GATEWAY, format!("Slack did not complete the install: {e}"))
                    .into_response();
            }
        };
    let install = Installation {
        team_id: granted.team.id.0.clone(),
        team_name: granted.team.name.clone(),
        bot_user_id: granted.bot_user_id.map(|u| u.0),
        bot_token: SecretString::from(granted.access_token.0),
        scope: granted.scope.0,
        installed_at_ms: now_ms(),
    };
    if let Err(e) = adapter.store.put_installation(&install) {
        tracing::error!(error = %e, "slack: cannot store an installation");
        return Reply(StatusCode::INTERNAL_SERVER_ERROR, "the install could not be saved; try again".into())
            .into_response();
    }
    tracing::info!(team = %install.team_id, "slack: app installed");
    let name = install.team_name.clone().unwrap_or_else(|| install.team_id.clone());
    Reply(StatusCode::OK, format!("frontdesk is installed in {name}. Invite it to your support channels with /invite."))
        .into_response()
}
