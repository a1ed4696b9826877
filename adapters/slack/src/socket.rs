//! Socket Mode: for deployments without a public URL, frontdesk opens a WebSocket to Slack with
//! the app-level token and receives the same events and clicks as over HTTP. slack-morphism's
//! client keeps the connections up; each envelope is acknowledged only after our callback
//! returns Ok, i.e. once the inbox holds the message — otherwise Slack redelivers it.
//!
//! The typed events slack-morphism decodes are turned back into Slack's JSON and go through the
//! same normalisation as HTTP events, so both paths produce identical messages.

use crate::adapter::SlackAdapter;
use crate::api;
use crate::normalise::{self, Envelope};
use axum::http::StatusCode;
use frontdesk_channel::AdapterError;
use serde_json::{json, Value};
use slack_morphism::events::{SlackInteractionEvent, SlackPushEventCallback};
use slack_morphism::listener::{SlackClientEventsListenerEnvironment, SlackClientEventsUserState};
use slack_morphism::prelude::SlackHyperClient;
use slack_morphism::{
    SlackClientSocketModeConfig, SlackClientSocketModeListener, SlackSocketModeListenerCallbacks, UserCallbackResult,
};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The adapter, as slack-morphism's callbacks find it.
struct Intake(Arc<SlackAdapter>);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct IntakeError(String);

fn failure(text: impl Into<String>) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(IntakeError(text.into()))
}

async fn adapter_of(
    states: &SlackClientEventsUserState,
) -> Result<Arc<SlackAdapter>, Box<dyn std::error::Error + Send + Sync>> {
    states
        .read()
        .await
        .get_user_state::<Intake>()
        .map(|i| Arc::clone(&i.0))
        .ok_or_else(|| failure("adapter state missing"))
}

/// Turns a Socket Mode push event back into an Events API envelope.
pub(crate) fn push_envelope(event: &SlackPushEventCallback) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(event)?;
    v["type"] = json!("event_callback");
    Ok(v)
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let adapter = adapter_of(&states).await?;
    let body = serde_json::to_vec(&push_envelope(&event)?)?;
    let Envelope::Event(cb) = normalise::parse_envelope(&body).map_err(|e| failure(e.0))? else {
        return Ok(());
    };
    match adapter.intake_event(&cb).await {
        Ok(Some(message)) => {
            let reply = adapter.hand_over(message).await;
            if reply.0 == StatusCode::OK {
                Ok(())
            } else {
                Err(failure(reply.1))
            }
        }
        Ok(None) => Ok(()),
        // Redelivering a payload we cannot read would not help: acknowledge and log it.
        Err(e) => {
            tracing::warn!(error = %e, "slack socket mode: malformed event dropped");
            Ok(())
        }
    }
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let adapter = adapter_of(&states).await?;
    let payload = serde_json::to_value(&event)?;
    let reply = adapter.intake_interaction(&payload).await;
    if reply.0 == StatusCode::OK || reply.0 == StatusCode::BAD_REQUEST {
        Ok(())
    } else {
        Err(failure(reply.1))
    }
}

fn on_error(
    error: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHyperClient>,
    _states: SlackClientEventsUserState,
) -> StatusCode {
    tracing::warn!(error = %error, "slack socket mode: envelope not acknowledged; Slack will redeliver it");
    StatusCode::SERVICE_UNAVAILABLE
}

/// Connects and receives until `shutdown`.
pub(crate) async fn run(adapter: Arc<SlackAdapter>, shutdown: CancellationToken) -> Result<(), AdapterError> {
    let Some(app_token) = adapter.config.app_token.clone() else {
        return Err(AdapterError::Rejected {
            platform: "slack",
            code: "app_token_missing".into(),
            message: "socket mode needs app_token (xapp-…)".into(),
        });
    };
    // slack-morphism retries a refused token forever without telling us; check it once first
    // so a wrong or revoked token stops `frontdesk serve` with Slack's reason.
    api::open_connection(&adapter.client, &api::token(&app_token)).await?;
    let callbacks =
        SlackSocketModeListenerCallbacks::new().with_push_events(on_push).with_interaction_events(on_interaction);
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(Arc::new(adapter.client.clone()))
            .with_error_handler(on_error)
            .with_user_state(Intake(Arc::clone(&adapter))),
    );
    let listener = SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), environment, callbacks);
    listener.listen_for(&api::token(&app_token)).await.map_err(|e| api::map_error("apps.connections.open", e))?;
    listener.start().await;
    tracing::info!("slack: socket mode connected");
    shutdown.cancelled().await;
    listener.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Socket Mode delivers the payloads HTTP delivers, decoded by slack-morphism; turned back
    //! into JSON they must normalise exactly as the HTTP ones do.

    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::normalise::{read_event, read_interaction, ClickOutcome, EventOutcome};

    fn http_event() -> Value {
        json!({
            "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": "Ev1",
            "event_time": 1_700_000_000,
            "authorizations": [{"enterprise_id": null, "team_id": "T1", "user_id": "UBOT", "is_bot": true,
                "is_enterprise_install": false}],
            "event": {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1",
                "text": "<@UBOT> how do refunds work?", "ts": "10.5", "thread_ts": "10.1", "event_ts": "10.5",
                "files": [{"id": "F1", "name": "invoice.pdf", "mimetype": "application/pdf", "size": 1234}]}
        })
    }

    fn facts_of(envelope: &Value) -> EventOutcome {
        let Envelope::Event(cb) = normalise::parse_envelope(&serde_json::to_vec(envelope).unwrap()).unwrap() else {
            panic!("not an event");
        };
        read_event(&cb, cb.bot_user_id.as_deref()).unwrap()
    }

    #[test]
    fn a_socket_mode_message_normalises_like_its_http_twin() {
        let http = http_event();
        let typed: SlackPushEventCallback = serde_json::from_value(http.clone()).unwrap();
        let socket = push_envelope(&typed).unwrap();
        let (a, mut b) = (facts_of(&http), facts_of(&socket));
        // slack-morphism's file model has no `size`: over Socket Mode an attachment's size
        // reads as 0 (it is only listed, never used for a decision). Everything else matches.
        if let (EventOutcome::Message(http_facts), EventOutcome::Message(socket_facts)) = (&a, &mut b) {
            assert_eq!(socket_facts.attachments[0].size_bytes, 0);
            socket_facts.attachments[0].size_bytes = http_facts.attachments[0].size_bytes;
        }
        assert_eq!(a, b);
        let EventOutcome::Message(m) = a else { panic!("{a:?}") };
        assert_eq!((m.text.as_str(), m.thread_root.as_str(), m.attachments.len()), ("how do refunds work?", "10.1", 1));
    }

    #[test]
    fn a_socket_mode_click_normalises_like_its_http_twin() {
        let value = json!({"t": "turn-1", "c": "T1:C1:10.1", "ch": "C1", "th": "10.1"}).to_string();
        let http = json!({
            "type": "block_actions",
            "user": {"id": "U1", "username": "u1", "name": "u1", "team_id": "T1"},
            "api_app_id": "A1", "token": "x", "trigger_id": "1.2.3",
            "container": {"type": "message", "message_ts": "10.6", "channel_id": "C1", "is_ephemeral": false},
            "team": {"id": "T1", "domain": "acme"},
            "channel": {"id": "C1", "name": "support"},
            "response_url": "https://hooks.slack.com/actions/T1/1/x",
            "actions": [{"action_id": crate::blocks::ACTION_NOT_HELPFUL, "block_id": "b", "type": "button",
                "text": {"type": "plain_text", "text": "Not helpful"}, "value": value, "action_ts": "11.0"}]
        });
        let typed: SlackInteractionEvent = serde_json::from_value(http.clone()).unwrap();
        let socket = serde_json::to_value(&typed).unwrap();
        let (a, b) = (read_interaction(&http).unwrap(), read_interaction(&socket).unwrap());
        assert_eq!(a, b);
        assert!(
            matches!(a, ClickOutcome::Click(ref c) if c.action == frontdesk_channel::UserAction::Feedback {
            turn_id: "turn-1".into(), helpful: false }),
            "{a:?}"
        );
    }
}
