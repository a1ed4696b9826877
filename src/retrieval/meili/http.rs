//! Talking to Meilisearch over HTTP with limits: a connect timeout and a request timeout on
//! every call, and a bounded number of retries with jittered backoff.
//!
//! One `Transport` (one connection pool) serves both the Meilisearch SDK, through the
//! `HttpClient` implementation below, and frontdesk's own search calls. An error response is
//! kept with Meilisearch's own `code` and `message` (`invalid_vector_dimensions`, ...), which
//! the SDK would otherwise fold into "unknown" for codes it does not list.

use super::MeiliError;
use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncReadExt};
use meilisearch_sdk::errors::Error as SdkError;
use meilisearch_sdk::request::{HttpClient, Method};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// An error answer from Meilisearch (`{"message", "code", "type", "link"}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ApiError {
    pub message: String,
    pub code: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub link: String,
}

/// When a failed request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads and searches: after connection errors, timeouts, 429 and 5xx.
    Safe,
    /// Writes: only when the request never reached the server (connection refused, DNS).
    ConnectOnly,
}

/// The HTTP connection to one Meilisearch server.
pub struct Transport {
    client: reqwest::Client,
    base: String,
    max_retries: u32,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("base", &self.base).field("max_retries", &self.max_retries).finish()
    }
}

fn backoff(attempt: u32) -> Duration {
    // 100 ms, 200 ms, 400 ms, ... plus up to 50% jitter so that many workers do not retry in step.
    let base = 100u64.saturating_mul(1 << attempt.min(6));
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    Duration::from_millis(base + u64::from(nanos) % (base / 2 + 1))
}

impl Transport {
    pub fn new(base: &str, connect: Duration, request: Duration, max_retries: u32) -> Result<Self, MeiliError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(request)
            .user_agent(concat!("frontdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MeiliError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport { client, base: base.trim_end_matches('/').to_string(), max_retries })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request and returns the status and body. `target` is a path (`/health`) or
    /// a full URL built by the SDK.
    pub async fn send(
        &self,
        method: reqwest::Method,
        target: &str,
        bearer: &str,
        body: Option<(&'static str, Vec<u8>)>,
        retry: Retry,
    ) -> Result<(u16, String), MeiliError> {
        let url = if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else {
            format!("{}{target}", self.base)
        };
        let mut attempt = 0;
        loop {
            let mut req = self.client.request(method.clone(), &url).bearer_auth(bearer);
            if let Some((content_type, bytes)) = &body {
                req = req.header(reqwest::header::CONTENT_TYPE, *content_type).body(bytes.clone());
            }
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.text().await {
                        Ok(text) => Ok((status, text)),
                        Err(e) => Err((e.is_timeout(), false, e)),
                    }
                }
                Err(e) => Err((e.is_timeout(), e.is_connect(), e)),
            };
            let retryable = match &outcome {
                Ok((status, _)) => retry == Retry::Safe && (*status == 429 || *status >= 500),
                Err((timeout, connect, _)) => *connect || (retry == Retry::Safe && *timeout),
            };
            if !retryable || attempt >= self.max_retries {
                return match outcome {
                    Ok(pair) => Ok(pair),
                    Err((timeout, _, e)) => Err(MeiliError::Unreachable {
                        url: self.base.clone(),
                        attempts: attempt + 1,
                        reason: if timeout { "timed out".to_string() } else { describe(&e) },
                    }),
                };
            }
            if let Ok((status, _)) = &outcome {
                tracing::warn!(status, attempt, "Meilisearch answered with a retryable status");
            } else {
                tracing::warn!(attempt, "Meilisearch request failed; retrying");
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Sends JSON and decodes the JSON answer, expecting one of `ok` statuses.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<&serde_json::Value>,
        retry: Retry,
    ) -> Result<T, MeiliError> {
        let body = match body {
            Some(v) => {
                Some(("application/json", serde_json::to_vec(v).map_err(|e| MeiliError::Decode(e.to_string()))?))
            }
            None => None,
        };
        let (status, text) = self.send(method, path, bearer, body, retry).await?;
        decode(status, &text)
    }
}

/// The innermost cause of a reqwest error, without the URL (which the caller names itself).
fn describe(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_connect() {
        format!("cannot connect: {source}")
    } else {
        source.to_string()
    }
}

/// Turns a status and body into the expected value or Meilisearch's error.
pub fn decode<T: DeserializeOwned>(status: u16, text: &str) -> Result<T, MeiliError> {
    if (200..300).contains(&status) {
        let text = if text.is_empty() { "null" } else { text };
        return serde_json::from_str(text).map_err(|e| MeiliError::Decode(format!("unexpected answer: {e}")));
    }
    Err(error_of(status, text))
}

/// The error a non-2xx answer stands for.
pub fn error_of(status: u16, text: &str) -> MeiliError {
    match serde_json::from_str::<ApiError>(text) {
        Ok(api) => MeiliError::Api { status, error: Box::new(api) },
        Err(_) => {
            let snippet: String = text.chars().take(200).collect();
            MeiliError::Status { status, body: snippet }
        }
    }
}

/// The SDK's HTTP client: the shared transport, authenticated with the master key.
#[derive(Clone)]
pub struct SdkHttp {
    transport: Arc<Transport>,
    key: SecretString,
}

impl SdkHttp {
    pub fn new(transport: Arc<Transport>, key: SecretString) -> Self {
        SdkHttp { transport, key }
    }
}

/// Wraps frontdesk's error so that it survives the trip through the SDK's error type.
pub fn to_sdk(e: MeiliError) -> SdkError {
    SdkError::Other(Box::new(e))
}

/// Recovers frontdesk's error from an SDK error.
pub fn from_sdk(e: SdkError) -> MeiliError {
    match e {
        SdkError::Other(inner) => match inner.downcast::<MeiliError>() {
            Ok(m) => *m,
            Err(other) => MeiliError::Sdk(other.to_string()),
        },
        SdkError::Meilisearch(m) => MeiliError::Api {
            status: 0,
            error: Box::new(ApiError {
                message: m.error_message,
                code: format!("{:?}", m.error_code),
                kind: format!("{:?}", m.error_type),
                link: m.error_link,
            }),
        },
        SdkError::Timeout => MeiliError::Sdk("a task did not finish in time".into()),
        other => MeiliError::Sdk(other.to_string()),
    }
}

#[async_trait]
impl HttpClient for SdkHttp {
    async fn stream_request<
        Query: Serialize + Send + Sync,
        Body: AsyncRead + Send + Sync + 'static,
        Output: DeserializeOwned + 'static,
    >(
        &self,
        url: &str,
        method: Method<Query, Body>,
        content_type: &str,
        expected_status_code: u16,
    ) -> Result<Output, SdkError> {
        let (verb, retry) = match &method {
            Method::Get { .. } => (reqwest::Method::GET, Retry::Safe),
            Method::Post { .. } => (reqwest::Method::POST, Retry::ConnectOnly),
            Method::Patch { .. } => (reqwest::Method::PATCH, Retry::ConnectOnly),
            Method::Put { .. } => (reqwest::Method::PUT, Retry::ConnectOnly),
            Method::Delete { .. } => (reqwest::Method::DELETE, Retry::ConnectOnly),
        };
        let query = serde_urlencoded_query(method.query()).map_err(to_sdk)?;
        let full = if query.is_empty() { url.to_string() } else { format!("{url}?{query}") };
        let content_type: &'static str =
            if content_type == "application/json" { "application/json" } else { "application/x-ndjson" };
        let body = match method {
            Method::Post { body, .. } | Method::Patch { body, .. } | Method::Put { body, .. } => {
                let mut bytes = Vec::new();
                let mut body = Box::pin(body);
                body.read_to_end(&mut bytes)
                    .await
                    .map_err(|e| to_sdk(MeiliError::Decode(format!("cannot read the request body: {e}"))))?;
                Some((content_type, bytes))
            }
            Method::Get { .. } | Method::Delete { .. } => None,
        };
        let (status, text) =
            self.transport.send(verb, &full, self.key.expose_secret(), body, retry).await.map_err(to_sdk)?;
        if status == expected_status_code {
            let text = if text.is_empty() { "null" } else { text.as_str() };
            return serde_json::from_str(text).map_err(SdkError::ParseError);
        }
        Err(to_sdk(error_of(status, &text)))
    }

    fn is_tokio(&self) -> bool {
        true
    }
}

/// Query parameters as `a=1&b=x` (the SDK's queries are flat structs of scalars).
fn serde_urlencoded_query<Q: Serialize>(query: &Q) -> Result<String, MeiliError> {
    let value = serde_json::to_value(query).map_err(|e| MeiliError::Decode(e.to_string()))?;
    let mut url = reqwest::Url::parse("http://query.invalid/").map_err(|e| MeiliError::Decode(e.to_string()))?;
    {
        let mut pairs = url.query_pairs_mut();
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                pairs.append_pair(&k, &v);
            }
        }
    }
    Ok(url.query().unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Q<'a> {
        primary_key: Option<&'a str>,
        limit: Option<u32>,
        fields: Vec<&'a str>,
    }

    #[test]
    fn queries_are_flat_and_skip_missing_values() {
        let q = Q { primary_key: Some("id"), limit: None, fields: vec!["a", "b c"] };
        assert_eq!(serde_urlencoded_query(&q).unwrap(), "fields=a%2Cb+c&primaryKey=id");
        assert_eq!(serde_urlencoded_query(&()).unwrap(), "");
    }

    #[test]
    fn error_answers_keep_meilisearch_codes() {
        let body = r#"{"message":"Invalid vector dimensions","code":"invalid_vector_dimensions","type":"invalid_request","link":"https://docs.meilisearch.com/errors#invalid_vector_dimensions"}"#;
        match error_of(400, body) {
            MeiliError::Api { status, error } => {
                assert_eq!(status, 400);
                assert_eq!(error.code, "invalid_vector_dimensions");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(error_of(502, "<html>bad gateway</html>"), MeiliError::Status { status: 502, .. }));
        let back = from_sdk(to_sdk(MeiliError::Decode("x".into())));
        assert!(matches!(back, MeiliError::Decode(_)));
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(0) >= Duration::from_millis(100) && backoff(0) <= Duration::from_millis(151));
        assert!(backoff(3) >= Duration::from_millis(800));
        assert!(backoff(40) <= Duration::from_millis(9_700));
    }
}
