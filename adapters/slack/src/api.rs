//! Calls to Slack's Web API (through slack-morphism's hyper client) and how their failures map
//! onto the engine's retry rules: 429 → `RateLimited` (honouring `Retry-After`), network
//! errors and 5xx → `Unavailable`, errors only an admin can fix → `Rejected` with what to do.

use frontdesk_channel::AdapterError;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use slack_morphism::api::{
    SlackApiAppsConnectionOpenRequest, SlackApiAuthTestResponse, SlackApiChatPostEphemeralResponse,
    SlackApiChatPostMessageResponse, SlackApiChatUpdateResponse, SlackApiReactionsAddRequest,
    SlackApiReactionsRemoveRequest, SlackApiUserGroupsUsersListRequest, SlackOAuthCode, SlackOAuthV2AccessTokenRequest,
    SlackOAuthV2AccessTokenResponse,
};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::{SlackClientHyperConnector, SlackHyperHttpsConnector};
use slack_morphism::{
    SlackApiToken, SlackApiTokenValue, SlackChannelId, SlackClient, SlackClientId, SlackClientSecret,
    SlackReactionName, SlackTs, SlackUserGroupId,
};
use std::time::Duration;

const PLATFORM: &str = "slack";

/// The client type: hyper with rustls, plain HTTP allowed only so tests can use a loopback fake.
pub type Client = SlackClient<SlackClientHyperConnector<SlackHyperHttpsConnector>>;

/// Builds the Web API client for `api_url`.
pub fn client(api_url: &str) -> Result<Client, String> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("cannot load the system's TLS root certificates: {e}"))?;
    let connector = builder.https_or_http().enable_http1().build();
    let base = api_url.trim_end_matches('/');
    Ok(SlackClient::new(SlackClientHyperConnector::with_connector(connector).with_slack_api_url(base)))
}

/// A bearer token for slack-morphism.
pub fn token(secret: &SecretString) -> SlackApiToken {
    SlackApiToken::new(SlackApiTokenValue(secret.expose_secret().to_string()))
}

/// What an admin must do about an error code only they can fix.
pub fn explain(code: &str) -> Option<&'static str> {
    Some(match code {
        "not_in_channel" => "the bot is not a member of this channel: invite it with `/invite @frontdesk`",
        "channel_not_found" => {
            "the channel does not exist or the bot cannot see it: invite the bot to the (private) channel, and check \
             the channel id in the agents_channel policy"
        }
        "invalid_auth" | "not_authed" => {
            "the bot token is not valid: copy the Bot User OAuth Token from the app settings again, or reinstall the app"
        }
        "account_inactive" => "the token belongs to a deactivated bot or a deleted app: reinstall the app",
        "token_revoked" | "token_expired" => {
            "the app was uninstalled or its token revoked: install it again (the app settings, or /slack/install)"
        }
        "missing_scope" => {
            "the token lacks a scope the adapter needs: add the scopes of deploy/slack-app-manifest.yml and reinstall the app"
        }
        "no_installation" => "the app is not installed in this workspace: an admin must install it through /slack/install",
        "is_archived" => "the channel is archived: unarchive it or point the policy at another channel",
        "no_such_subteam" => "the agent_usergroup does not exist in this workspace: check its id (S…)",
        _ => return None,
    })
}

fn needed_scope(body: Option<&str>) -> Option<String> {
    let v: Value = serde_json::from_str(body?).ok()?;
    v.get("needed").and_then(Value::as_str).map(str::to_string)
}

/// Maps a client error of `method` onto the engine's error, logging what an admin must fix.
pub fn map_error(method: &str, e: SlackClientError) -> AdapterError {
    match e {
        SlackClientError::RateLimitError(r) => AdapterError::RateLimited {
            platform: PLATFORM,
            retry_after_ms: r.retry_after.map(|d| d.as_millis() as u64).unwrap_or(1_000),
        },
        SlackClientError::ApiError(api) => {
            let code = api.code.clone();
            match code.as_str() {
                "ratelimited" => AdapterError::RateLimited { platform: PLATFORM, retry_after_ms: 1_000 },
                "fatal_error" | "internal_error" | "service_unavailable" | "request_timeout" => {
                    AdapterError::Unavailable { platform: PLATFORM, message: format!("{method}: {code}") }
                }
                _ => {
                    let mut message = match explain(&code) {
                        Some(what) => format!("{method}: {what}"),
                        None => format!("{method}: Slack refused the request"),
                    };
                    if let Some(scope) = needed_scope(api.http_response_body.as_deref()) {
                        message.push_str(&format!(" (needed: {scope})"));
                    }
                    tracing::error!(method, code = %code, "{message}");
                    AdapterError::Rejected { platform: PLATFORM, code, message }
                }
            }
        }
        SlackClientError::HttpError(h) if h.status_code.is_server_error() => {
            AdapterError::Unavailable { platform: PLATFORM, message: format!("{method}: HTTP {}", h.status_code) }
        }
        SlackClientError::HttpError(h) => {
            let message = format!("{method}: Slack answered HTTP {}", h.status_code);
            tracing::error!(method, status = h.status_code.as_u16(), "{message}");
            AdapterError::Rejected { platform: PLATFORM, code: format!("http_{}", h.status_code.as_u16()), message }
        }
        SlackClientError::ProtocolError(p) => {
            // The request may have taken effect; trying again could post twice.
            let message = format!("{method}: Slack's answer could not be read: {}", p.json_error);
            tracing::error!(method, "{message}");
            AdapterError::Rejected { platform: PLATFORM, code: "unreadable_response".into(), message }
        }
        other => AdapterError::Unavailable { platform: PLATFORM, message: format!("{method}: {other}") },
    }
}

/// How long one Web API call may take before it counts as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

async fn timed<T>(
    method: &str,
    call: impl std::future::Future<Output = Result<T, SlackClientError>>,
) -> Result<T, AdapterError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_error(method, e)),
        Err(_) => {
            Err(AdapterError::Unavailable { platform: PLATFORM, message: format!("{method}: no answer in 15 s") })
        }
    }
}

/// The error code of a `Rejected` error, for callers that treat some codes as normal.
pub fn rejected_code(e: &AdapterError) -> Option<&str> {
    match e {
        AdapterError::Rejected { code, .. } => Some(code),
        _ => None,
    }
}

pub async fn post_message(client: &Client, token: &SlackApiToken, body: &Value) -> Result<String, AdapterError> {
    let session = client.open_session(token);
    let r: SlackApiChatPostMessageResponse =
        timed("chat.postMessage", session.http_session_api.http_post("chat.postMessage", body, None)).await?;
    Ok(r.ts.0)
}

/// Shows `text` to `user` alone in `channel` (`chat.postEphemeral`).
pub async fn post_ephemeral(
    client: &Client,
    token: &SlackApiToken,
    channel: &str,
    user: &str,
    text: &str,
) -> Result<(), AdapterError> {
    let session = client.open_session(token);
    let body = serde_json::json!({"channel": channel, "user": user, "text": text});
    let _: SlackApiChatPostEphemeralResponse =
        timed("chat.postEphemeral", session.http_session_api.http_post("chat.postEphemeral", &body, None)).await?;
    Ok(())
}

pub async fn update_message(client: &Client, token: &SlackApiToken, body: &Value) -> Result<String, AdapterError> {
    let session = client.open_session(token);
    let r: SlackApiChatUpdateResponse =
        timed("chat.update", session.http_session_api.http_post("chat.update", body, None)).await?;
    Ok(r.ts.0)
}

pub async fn add_reaction(
    client: &Client,
    token: &SlackApiToken,
    channel: &str,
    ts: &str,
    name: &str,
) -> Result<(), AdapterError> {
    let session = client.open_session(token);
    let req = SlackApiReactionsAddRequest::new(
        SlackChannelId(channel.to_string()),
        SlackReactionName(name.to_string()),
        SlackTs(ts.to_string()),
    );
    timed("reactions.add", session.reactions_add(&req)).await.map(|_| ())
}

pub async fn remove_reaction(
    client: &Client,
    token: &SlackApiToken,
    channel: &str,
    ts: &str,
    name: &str,
) -> Result<(), AdapterError> {
    let session = client.open_session(token);
    let req = SlackApiReactionsRemoveRequest::new(SlackReactionName(name.to_string()))
        .with_channel(SlackChannelId(channel.to_string()))
        .with_timestamp(SlackTs(ts.to_string()));
    timed("reactions.remove", session.reactions_remove(&req)).await.map(|_| ())
}

pub async fn auth_test(client: &Client, token: &SlackApiToken) -> Result<SlackApiAuthTestResponse, AdapterError> {
    let session = client.open_session(token);
    timed("auth.test", session.auth_test()).await
}

/// Opens a Socket Mode connection URL with the app-level token: checks that the token works
/// (the URL is not used; it expires unused).
pub async fn open_connection(client: &Client, app_token: &SlackApiToken) -> Result<(), AdapterError> {
    let session = client.open_session(app_token);
    match timed("apps.connections.open", session.apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())).await
    {
        Ok(_) => Ok(()),
        Err(AdapterError::Rejected { platform, code, .. })
            if matches!(code.as_str(), "invalid_auth" | "not_authed" | "not_allowed_token_type" | "token_revoked") =>
        {
            let message = "apps.connections.open: the app-level token (app_token) is not accepted: create one under \
                           Basic Information → App-Level Tokens with the connections:write scope (it starts with \
                           xapp-), and turn Socket Mode on"
                .to_string();
            Err(AdapterError::Rejected { platform, code, message })
        }
        Err(e) => Err(e),
    }
}

pub async fn usergroup_members(
    client: &Client,
    token: &SlackApiToken,
    group: &str,
) -> Result<Vec<String>, AdapterError> {
    let session = client.open_session(token);
    let req = SlackApiUserGroupsUsersListRequest::new(SlackUserGroupId(group.to_string()));
    let r = timed("usergroups.users.list", session.usergroups_users_list(&req)).await?;
    Ok(r.users.into_iter().map(|u| u.0).collect())
}

pub async fn oauth_access(
    client: &Client,
    client_id: &str,
    client_secret: &SecretString,
    code: &str,
    redirect_url: Option<&str>,
) -> Result<SlackOAuthV2AccessTokenResponse, AdapterError> {
    let mut req = SlackOAuthV2AccessTokenRequest::new(
        SlackClientId(client_id.to_string()),
        SlackClientSecret(client_secret.expose_secret().to_string()),
        SlackOAuthCode(code.to_string()),
    );
    if let Some(url) = redirect_url.and_then(|u| url::Url::parse(u).ok()) {
        req = req.with_redirect_uri(url);
    }
    timed("oauth.v2.access", client.oauth2_access(&req)).await
}
