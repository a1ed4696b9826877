//! A cross-encoder reached over HTTP: the rerank APIs of Hugging Face text-embeddings-inference
//! (TEI), Cohere and Jina.
//!
//! Teams that already run TEI next to their other models, or that prefer a hosted reranker, can
//! use it instead of a model on the support server. The three APIs do the same thing in different
//! shapes:
//!
//! | api | request (`POST`) | response |
//! |---|---|---|
//! | tei | `/rerank` `{"query", "texts", "raw_scores": false, "truncate": true}` | `[{"index", "score"}]` |
//! | cohere | `/v2/rerank` `{"model", "query", "documents", "top_n"}` | `{"results": [{"index", "relevance_score"}]}` |
//! | jina | `/v1/rerank` `{"model", "query", "documents", "top_n", "return_documents": false}` | `{"results": [{"index", "relevance_score", ...}]}` |
//!
//! All hits go in one request, and each result's `index` says which text it scores, since the
//! services return them best first. A response is used only when it scores every text exactly
//! once with a finite number; anything else is `rerank_bad_response` naming what was wrong, so a
//! half-understood ranking never reorders a customer's context. TEI is asked to truncate texts
//! longer than its model takes rather than refuse them.
//!
//! A customer is waiting, so each attempt is cut off after `timeout_ms` and a timeout is not
//! retried: a reranker that was slow once is likely slow again, and the engine answers in
//! retrieval order instead. Connection failures, HTTP 429 and 5xx are retried up to
//! `max_retries` times with full-jitter exponential backoff; other 4xx (a wrong key, an unknown
//! model, too many texts) are returned at once.
//!
//! The API key is a `SecretString` sent only as a Bearer header: it is redacted from `Debug` and
//! scrubbed from any body excerpt quoted in an error.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::config::{RerankApi, RerankConfig};
use super::{passage_text, RerankError, Reranker};
use crate::retrieval::Hit;

/// Longest piece of a service's body quoted in an error.
const EXCERPT_CHARS: usize = 200;
/// Largest response read; a ranking of a few hundred texts is a few kilobytes.
const MAX_BODY_BYTES: usize = 1 << 20;
/// First backoff ceiling; doubled on each retry up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_millis(1_000);

/// Everything an [`HttpReranker`] needs, resolved from `[rerank]` (the key read from its variable).
#[derive(Clone)]
pub struct HttpSettings {
    pub api: RerankApi,
    /// The endpoint requests are POSTed to.
    pub url: String,
    /// Sent in the request for cohere and jina; names the reranker for tei.
    pub model: Option<String>,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<SecretString>,
    /// Limit for each attempt.
    pub timeout: Duration,
    /// Retries after the first attempt (connection errors, 429, 5xx only).
    pub max_retries: u32,
    /// Backoff ceiling before the first retry; doubles per retry up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("api", &self.api)
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .finish()
    }
}

impl HttpSettings {
    /// Resolves `[rerank]` for `kind = "http"`: the endpoint, and the key from the variable named
    /// by `api_key_env` (an unset or empty variable is an error naming it).
    pub fn from_config(config: &RerankConfig) -> Result<Self, RerankError> {
        let setup = |message: String| RerankError::Config { reranker: "http reranker".into(), message };
        let api = config.api.ok_or_else(|| setup("rerank.api is not set".into()))?;
        let url = endpoint(api, config.url.as_deref()).map_err(setup)?;
        let api_key = match &config.api_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(value) if !value.trim().is_empty() => Some(SecretString::from(value.trim().to_owned())),
                _ => {
                    return Err(setup(format!(
                        "the environment variable {var} that should hold its API key is not set"
                    )))
                }
            },
        };
        Ok(HttpSettings {
            api,
            url,
            model: config.model.clone().filter(|m| !m.trim().is_empty()),
            api_key,
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            max_retries: config.max_retries,
            backoff_base: BACKOFF_BASE,
            backoff_max: BACKOFF_MAX,
        })
    }
}

/// The endpoint for `api`: `url` as given when it has a path, `url` + the API's usual path when it
/// has none (`http://tei:8080` → `http://tei:8080/rerank`), the public endpoint when it is unset.
pub fn endpoint(api: RerankApi, url: Option<&str>) -> Result<String, String> {
    let Some(url) = url else {
        return api
            .default_url()
            .map(str::to_owned)
            .ok_or_else(|| format!("rerank.url is required for rerank.api = \"{}\"", api.as_str()));
    };
    let mut parsed = match reqwest::Url::parse(url) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => p,
        _ => return Err(format!("rerank.url must be an http:// or https:// URL, not {url:?}")),
    };
    if parsed.path().is_empty() || parsed.path() == "/" {
        parsed.set_path(api.default_path());
    }
    Ok(parsed.to_string())
}

/// A reranker behind a TEI, Cohere or Jina rerank endpoint.
pub struct HttpReranker {
    settings: HttpSettings,
    name: String,
    client: reqwest::Client,
    jitter: Jitter,
}

impl fmt::Debug for HttpReranker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpReranker").field("name", &self.name).field("settings", &self.settings).finish()
    }
}

impl HttpReranker {
    /// Checks the settings and shares `client` (the process's one HTTP client).
    pub fn new(settings: HttpSettings, client: reqwest::Client) -> Result<Self, RerankError> {
        let parsed = reqwest::Url::parse(&settings.url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
        let Some(parsed) = parsed else {
            return Err(RerankError::Config {
                reranker: format!("http:{}", settings.api.as_str()),
                message: format!("{:?} is not an http(s) URL", settings.url),
            });
        };
        let name = match &settings.model {
            Some(model) => format!("http:{}/{model}", settings.api.as_str()),
            None => {
                let host = parsed.host_str().unwrap_or_default();
                let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!("http:{}@{host}{port}", settings.api.as_str())
            }
        };
        if settings.api.hosted() && settings.model.is_none() {
            return Err(RerankError::Config { reranker: name, message: "rerank.model is required".into() });
        }
        let jitter = Jitter::seeded(&name);
        Ok(HttpReranker { settings, name, client, jitter })
    }

    /// One exchange: send, check the status, read and check the ranking.
    async fn attempt(&self, question: &str, texts: &[String]) -> Result<Vec<f32>, Failure> {
        let mut request = self.client.post(&self.settings.url);
        request = match self.settings.api {
            RerankApi::Tei => request.json(&TeiRequest { query: question, texts, raw_scores: false, truncate: true }),
            RerankApi::Cohere | RerankApi::Jina => request.json(&HostedRequest {
                model: self.settings.model.as_deref().unwrap_or_default(),
                query: question,
                documents: texts,
                top_n: texts.len(),
                return_documents: (self.settings.api == RerankApi::Jina).then_some(false),
            }),
        };
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|err| self.transport_failure(&err))?;
        let status = response.status();
        let body = self.read_body(response).await?;
        if !status.is_success() {
            return Err(self.status_failure(status.as_u16(), &body));
        }
        let pairs = self.parse(&body).map_err(|message| Failure::fatal(self.bad_response(message)))?;
        collect_scores(texts.len(), pairs).map_err(|message| Failure::fatal(self.bad_response(message)))
    }

    /// Index and score pairs from a response body in the API's shape.
    fn parse(&self, body: &[u8]) -> Result<Vec<(usize, f64)>, String> {
        let shape = |err: serde_json::Error| {
            format!(
                "not a {} rerank response ({err}): {}",
                self.settings.api.as_str(),
                self.excerpt(&String::from_utf8_lossy(body))
            )
        };
        match self.settings.api {
            RerankApi::Tei => {
                let ranks: Vec<TeiRank> = serde_json::from_slice(body).map_err(shape)?;
                Ok(ranks.into_iter().map(|r| (r.index, r.score)).collect())
            }
            RerankApi::Cohere | RerankApi::Jina => {
                let parsed: HostedResponse = serde_json::from_slice(body).map_err(shape)?;
                Ok(parsed.results.into_iter().map(|r| (r.index, r.relevance_score)).collect())
            }
        }
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(Failure::fatal(
                            self.bad_response(format!("the response is larger than {} KiB", MAX_BODY_BYTES >> 10)),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(err) => {
                    return Err(Failure::fatal(
                        self.bad_response(format!("the response could not be read: {}", causes(&err))),
                    ))
                }
            }
        }
    }

    fn transport_failure(&self, err: &reqwest::Error) -> Failure {
        let reranker = self.name.clone();
        if err.is_timeout() {
            return Failure::fatal(RerankError::Timeout { reranker, after: self.settings.timeout });
        }
        let error = RerankError::Unreachable { reranker, message: self.excerpt(&causes(err)) };
        // Only a connection that was never made is certainly safe and worth trying again.
        Failure { error, retryable: err.is_connect() }
    }

    fn status_failure(&self, status: u16, body: &[u8]) -> Failure {
        let reranker = self.name.clone();
        let excerpt = self.excerpt(&String::from_utf8_lossy(body));
        match status {
            429 => Failure { error: RerankError::RateLimited { reranker, excerpt }, retryable: true },
            500..=599 => Failure { error: RerankError::ServerError { reranker, status, excerpt }, retryable: true },
            _ => Failure::fatal(RerankError::Rejected { reranker, status, excerpt }),
        }
    }

    fn bad_response(&self, message: String) -> RerankError {
        RerankError::BadResponse { reranker: self.name.clone(), message }
    }

    /// At most `EXCERPT_CHARS` characters on one line, with the key scrubbed out (a server may
    /// echo request headers in an error).
    fn excerpt(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let Some(key) = &self.settings.api_key {
            let key = key.expose_secret();
            if !key.is_empty() {
                text = text.replace(key, "[REDACTED]");
            }
        }
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if flat.is_empty() {
            return "(empty body)".into();
        }
        if flat.chars().count() > EXCERPT_CHARS {
            let mut cut: String = flat.chars().take(EXCERPT_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            flat
        }
    }

    /// Full-jitter exponential backoff before retry number `retry` (1 for the first):
    /// uniformly random in `0..=min(backoff_max, backoff_base * 2^(retry-1))`.
    fn backoff(&self, retry: u32) -> Duration {
        let base = u64::try_from(self.settings.backoff_base.as_millis()).unwrap_or(u64::MAX);
        let max = u64::try_from(self.settings.backoff_max.as_millis()).unwrap_or(u64::MAX);
        let ceiling = base.saturating_mul(1u64 << retry.saturating_sub(1).min(30)).min(max);
        if ceiling == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(self.jitter.next() % (ceiling + 1))
    }
}

#[async_trait]
impl Reranker for HttpReranker {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn score(&self, question: &str, hits: &[Hit]) -> Result<Vec<f32>, RerankError> {
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = hits.iter().map(passage_text).collect();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = match tokio::time::timeout(self.settings.timeout, self.attempt(question, &texts)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Failure::fatal(RerankError::Timeout {
                    reranker: self.name.clone(),
                    after: self.settings.timeout,
                })),
            };
            let failure = match outcome {
                Ok(scores) => {
                    tracing::debug!(reranker = %self.name, attempts = attempt, texts = texts.len(), "reranked");
                    return Ok(scores);
                }
                Err(failure) => failure,
            };
            tracing::warn!(
                reranker = %self.name,
                attempt,
                code = failure.error.code(),
                retryable = failure.retryable,
                "rerank attempt failed"
            );
            if !failure.retryable || attempt > self.settings.max_retries {
                return Err(failure.error);
            }
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }
}

/// Puts the scores in input order and checks that every input got exactly one finite score.
fn collect_scores(expected: usize, pairs: Vec<(usize, f64)>) -> Result<Vec<f32>, String> {
    let mut slots: Vec<Option<f32>> = vec![None; expected];
    for (index, score) in pairs {
        let Some(slot) = slots.get_mut(index) else {
            return Err(format!("index {index} is out of range for {expected} documents"));
        };
        if slot.is_some() {
            return Err(format!("index {index} appears more than once"));
        }
        // A score beyond f32's range becomes infinite here and is refused below.
        let score = score as f32;
        if !score.is_finite() {
            return Err(format!("the score for index {index} is not a finite number"));
        }
        *slot = Some(score);
    }
    let missing: Vec<String> =
        slots.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(format!("no score for index {} of {expected} documents", missing.join(", ")));
    }
    Ok(slots.into_iter().flatten().collect())
}

/// reqwest's own text names only the URL; the causes beneath it say what went wrong.
fn causes(err: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

/// A failed attempt, and whether trying again may help.
struct Failure {
    error: RerankError,
    retryable: bool,
}

impl Failure {
    fn fatal(error: RerankError) -> Self {
        Failure { error, retryable: false }
    }
}

#[derive(Serialize)]
struct TeiRequest<'a> {
    query: &'a str,
    texts: &'a [String],
    /// Scores through a sigmoid, in [0, 1] like the hosted APIs'.
    raw_scores: bool,
    /// Cut texts longer than the model takes instead of refusing the request.
    truncate: bool,
}

#[derive(Serialize)]
struct HostedRequest<'a> {
    model: &'a str,
    query: &'a str,
    documents: &'a [String],
    /// Every document, so every one is scored.
    top_n: usize,
    /// Jina echoes the documents back unless told not to.
    #[serde(skip_serializing_if = "Option::is_none")]
    return_documents: Option<bool>,
}

#[derive(Deserialize)]
struct TeiRank {
    index: usize,
    score: f64,
}

#[derive(Deserialize)]
struct HostedResponse {
    results: Vec<HostedResult>,
}

#[derive(Deserialize)]
struct HostedResult {
    index: usize,
    relevance_score: f64,
}

/// Randomness for backoff jitter: xorshift64 seeded from the clock and the reranker's name, so
/// servers restarted together do not retry in step.
struct Jitter(AtomicU64);

impl Jitter {
    fn seeded(salt: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let salt = salt.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Jitter(AtomicU64::new((salt ^ u64::from(nanos)) | 1))
    }

    fn next(&self) -> u64 {
        let step = |mut x: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let previous =
            self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x))).unwrap_or_else(|x| x);
        step(previous)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rerank::{rerank, Fault};
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    const KEY: &str = "rk-test-very-secret-key";

    /// What the scripted server does with the next request.
    enum Step {
        Reply(u16, String),
        /// Never answers.
        Hang,
    }

    /// A request as the server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        path: String,
        authorization: Option<String>,
        body: serde_json::Value,
    }

    #[derive(Default)]
    struct Script {
        steps: Mutex<VecDeque<Step>>,
        seen: Mutex<Vec<Seen>>,
    }

    impl Script {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn handle(State(script): State<Arc<Script>>, uri: Uri, headers: HeaderMap, body: String) -> Response {
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
        script.seen.lock().unwrap().push(Seen { path: uri.path().to_owned(), authorization, body });
        let step = script.steps.lock().unwrap().pop_front();
        match step {
            Some(Step::Reply(status, body)) => {
                (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body).into_response()
            }
            Some(Step::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::GATEWAY_TIMEOUT.into_response()
            }
            None => (StatusCode::INTERNAL_SERVER_ERROR, "the script has no more replies").into_response(),
        }
    }

    /// Serves the steps in order on 127.0.0.1; returns `http://127.0.0.1:port` and the script.
    async fn serve(steps: Vec<Step>) -> (String, Arc<Script>) {
        let script = Arc::new(Script { steps: Mutex::new(steps.into()), seen: Mutex::default() });
        let app = axum::Router::new().fallback(handle).with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), script)
    }

    fn settings(api: RerankApi, url: &str, model: Option<&str>, key: Option<&str>) -> HttpSettings {
        HttpSettings {
            api,
            url: endpoint(api, Some(url)).unwrap(),
            model: model.map(str::to_owned),
            api_key: key.map(|k| SecretString::from(k.to_owned())),
            timeout: Duration::from_secs(5),
            max_retries: 2,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
        }
    }

    fn reranker(settings: HttpSettings) -> HttpReranker {
        HttpReranker::new(settings, crate::llm::openai::build_client()).unwrap()
    }

    fn hits() -> Vec<Hit> {
        use crate::rerank::tests::hit;
        vec![
            hit("a", "Plans", &["Plans", "Upgrades"], "Upgrade from the Billing page."),
            hit("b", "Security", &[], "We encrypt data at rest."),
            hit("c", "Refunds", &["Refunds"], "Annual plans are refunded within 30 days."),
        ]
    }

    fn texts() -> Vec<String> {
        hits().iter().map(passage_text).collect()
    }

    const QUESTION: &str = "Can I get a refund on my annual plan?";

    fn ids(ranked: &[crate::rerank::Reranked]) -> Vec<&str> {
        ranked.iter().map(|r| r.hit.chunk_id.as_str()).collect()
    }

    #[tokio::test]
    async fn tei_scores_are_put_back_in_input_order_and_the_request_has_the_tei_shape() {
        // TEI answers best first; `index` says which text each score belongs to.
        let body = r#"[{"index":2,"score":0.98},{"index":0,"score":0.31},{"index":1,"score":0.02}]"#;
        let (url, script) = serve(vec![Step::Reply(200, body.into())]).await;
        let r = reranker(settings(RerankApi::Tei, &url, None, None));
        let ranked = rerank(&r, QUESTION, &hits(), 3).await.unwrap();
        assert_eq!(ids(&ranked), ["c", "a", "b"]);
        assert_eq!(ranked.iter().map(|r| r.score).collect::<Vec<_>>(), [0.98, 0.31, 0.02]);

        let seen = script.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/rerank");
        assert_eq!(seen[0].authorization, None);
        assert_eq!(
            seen[0].body,
            serde_json::json!({"query": QUESTION, "texts": texts(), "raw_scores": false, "truncate": true})
        );
    }

    #[tokio::test]
    async fn tei_with_a_key_sends_it_as_a_bearer_token() {
        let body = r#"[{"index":0,"score":0.5}]"#;
        let (url, script) = serve(vec![Step::Reply(200, body.into())]).await;
        let r = reranker(settings(
            RerankApi::Tei,
            &format!("{url}/custom/rerank"),
            Some("BAAI/bge-reranker-base"),
            Some(KEY),
        ));
        assert_eq!(r.name(), "http:tei/BAAI/bge-reranker-base");
        r.score(QUESTION, &hits()[..1]).await.unwrap();
        let seen = script.seen();
        assert_eq!(seen[0].path, "/custom/rerank");
        assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
        // TEI serves one model: the name is not sent.
        assert!(seen[0].body.get("model").is_none(), "{:?}", seen[0].body);
    }

    #[tokio::test]
    async fn cohere_gets_its_v2_shape_and_the_key() {
        // As in Cohere's v2 reference: best first, with an id and metadata around the results.
        let body = r#"{"results":[{"index":2,"relevance_score":0.999071},{"index":1,"relevance_score":0.7867867},
            {"index":0,"relevance_score":0.32713068}],"id":"07734bd2-2473-4f07-94e1-0d9f0e6843cf",
            "meta":{"api_version":{"version":"2","is_experimental":false},"billed_units":{"search_units":1}}}"#;
        let (url, script) = serve(vec![Step::Reply(200, body.into())]).await;
        let r = reranker(settings(RerankApi::Cohere, &url, Some("rerank-v3.5"), Some(KEY)));
        assert_eq!(r.name(), "http:cohere/rerank-v3.5");
        let ranked = rerank(&r, QUESTION, &hits(), 2).await.unwrap();
        assert_eq!(ids(&ranked), ["c", "b"]);

        let seen = script.seen();
        assert_eq!(seen[0].path, "/v2/rerank");
        assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
        assert_eq!(
            seen[0].body,
            serde_json::json!({"model": "rerank-v3.5", "query": QUESTION, "documents": texts(), "top_n": 3})
        );
    }

    #[tokio::test]
    async fn jina_gets_its_shape_and_its_documents_are_not_echoed() {
        // As Jina answers: the document text, usage and model around each score.
        let body = r#"{"model":"jina-reranker-v2-base-multilingual","usage":{"total_tokens":815},
            "results":[{"index":0,"document":{"text":"Plans"},"relevance_score":0.8783142566680908},
            {"index":2,"document":{"text":"Refunds"},"relevance_score":0.7624675869941711},
            {"index":1,"document":{"text":"Security"},"relevance_score":0.1}]}"#;
        let (url, script) = serve(vec![Step::Reply(200, body.into())]).await;
        let r = reranker(settings(RerankApi::Jina, &url, Some("jina-reranker-v2-base-multilingual"), Some(KEY)));
        let scores = r.score(QUESTION, &hits()).await.unwrap();
        for (got, want) in scores.iter().zip([0.878_314_26, 0.1, 0.762_467_56]) {
            assert!((got - want).abs() < 1e-6, "{scores:?}");
        }

        let seen = script.seen();
        assert_eq!(seen[0].path, "/v1/rerank");
        assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
        assert_eq!(
            seen[0].body,
            serde_json::json!({"model": "jina-reranker-v2-base-multilingual", "query": QUESTION,
                "documents": texts(), "top_n": 3, "return_documents": false})
        );
    }

    async fn bad_response(api: RerankApi, body: &str) -> RerankError {
        let (url, script) = serve(vec![Step::Reply(200, body.into())]).await;
        let r = reranker(settings(api, &url, Some("m"), Some(KEY)));
        let err = r.score(QUESTION, &hits()).await.unwrap_err();
        assert_eq!(script.seen().len(), 1, "a bad response is not retried");
        assert_eq!(err.code(), "rerank_bad_response");
        assert_eq!(err.fault(), Fault::Service);
        err
    }

    #[tokio::test]
    async fn a_missing_index_is_a_bad_response_naming_it() {
        let err = bad_response(RerankApi::Tei, r#"[{"index":2,"score":0.9},{"index":0,"score":0.1}]"#).await;
        assert!(err.to_string().contains("no score for index 1 of 3 documents"), "{err}");
    }

    #[tokio::test]
    async fn a_repeated_or_out_of_range_index_is_a_bad_response() {
        let body = r#"{"results":[{"index":0,"relevance_score":0.9},{"index":0,"relevance_score":0.8},{"index":1,"relevance_score":0.1}]}"#;
        let err = bad_response(RerankApi::Cohere, body).await;
        assert!(err.to_string().contains("index 0 appears more than once"), "{err}");
        let body = r#"{"results":[{"index":0,"relevance_score":0.9},{"index":1,"relevance_score":0.8},{"index":3,"relevance_score":0.1}]}"#;
        let err = bad_response(RerankApi::Jina, body).await;
        assert!(err.to_string().contains("index 3 is out of range for 3 documents"), "{err}");
    }

    #[tokio::test]
    async fn a_score_that_is_not_a_finite_number_is_a_bad_response() {
        let err =
            bad_response(RerankApi::Tei, r#"[{"index":0,"score":1e39},{"index":1,"score":0},{"index":2,"score":0}]"#)
                .await;
        assert!(err.to_string().contains("score for index 0 is not a finite number"), "{err}");
        let err = bad_response(RerankApi::Tei, r#"[{"index":0,"score":null}]"#).await;
        assert!(err.to_string().contains("not a tei rerank response"), "{err}");
    }

    #[tokio::test]
    async fn a_response_in_another_api_shape_is_a_bad_response() {
        let err = bad_response(RerankApi::Cohere, r#"[{"index":0,"score":0.5}]"#).await;
        assert!(err.to_string().contains("not a cohere rerank response"), "{err}");
    }

    const GOOD_TEI: &str = r#"[{"index":1,"score":0.9},{"index":0,"score":0.5},{"index":2,"score":0.1}]"#;

    #[tokio::test]
    async fn a_server_error_then_success_is_retried() {
        let (url, script) =
            serve(vec![Step::Reply(503, r#"{"error":"overloaded"}"#.into()), Step::Reply(200, GOOD_TEI.into())]).await;
        let r = reranker(settings(RerankApi::Tei, &url, None, None));
        assert_eq!(r.score(QUESTION, &hits()).await.unwrap(), [0.5, 0.9, 0.1]);
        let seen = script.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].body, seen[1].body, "the retry sends the same request");
    }

    #[tokio::test]
    async fn rate_limiting_then_success_is_retried() {
        let (url, script) = serve(vec![Step::Reply(429, "{}".into()), Step::Reply(200, GOOD_TEI.into())]).await;
        let r = reranker(settings(RerankApi::Tei, &url, None, None));
        assert!(r.score(QUESTION, &hits()).await.is_ok());
        assert_eq!(script.seen().len(), 2);
    }

    #[tokio::test]
    async fn server_errors_stop_after_max_retries() {
        let steps = (0..5).map(|_| Step::Reply(500, r#"{"error":"model crashed"}"#.into())).collect();
        let (url, script) = serve(steps).await;
        let r = reranker(settings(RerankApi::Tei, &url, None, None));
        let err = r.score(QUESTION, &hits()).await.unwrap_err();
        assert_eq!(script.seen().len(), 3, "one attempt and max_retries = 2 retries");
        assert_eq!(err.code(), "rerank_server_error");
        assert!(err.to_string().contains("HTTP 500") && err.to_string().contains("model crashed"), "{err}");
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried_and_is_the_operators_to_fix() {
        let (url, script) = serve(vec![
            Step::Reply(400, r#"{"message":"invalid model: rerank-v9"}"#.into()),
            Step::Reply(200, GOOD_TEI.into()),
        ])
        .await;
        let r = reranker(settings(RerankApi::Cohere, &url, Some("rerank-v9"), Some(KEY)));
        let err = r.score(QUESTION, &hits()).await.unwrap_err();
        assert_eq!(script.seen().len(), 1);
        assert_eq!(
            err,
            RerankError::Rejected {
                reranker: "http:cohere/rerank-v9".into(),
                status: 400,
                excerpt: r#"{"message":"invalid model: rerank-v9"}"#.into()
            }
        );
        assert_eq!((err.code(), err.fault()), ("rerank_rejected", Fault::Config));
    }

    #[tokio::test]
    async fn a_slow_service_times_out_without_a_retry() {
        let (url, script) = serve(vec![Step::Hang, Step::Reply(200, GOOD_TEI.into())]).await;
        let mut s = settings(RerankApi::Tei, &url, None, None);
        s.timeout = Duration::from_millis(300);
        let r = reranker(s);
        let started = std::time::Instant::now();
        let err = r.score(QUESTION, &hits()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(err.code(), "rerank_timeout");
        assert_eq!(err.fault(), Fault::Service);
        assert_eq!(script.seen().len(), 1);
    }

    #[tokio::test]
    async fn a_service_that_is_not_listening_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let r = reranker(settings(RerankApi::Tei, &format!("http://{addr}"), None, None));
        assert_eq!(r.name(), format!("http:tei@{addr}"));
        let err = r.score(QUESTION, &hits()).await.unwrap_err();
        assert_eq!(err.code(), "rerank_unreachable");
        assert!(err.to_string().contains(&format!("http:tei@{addr}")), "{err}");
    }

    #[tokio::test]
    async fn the_key_never_shows_in_errors_or_debug_output() {
        let echo = format!(r#"{{"message":"invalid api token","received":"Bearer {KEY}"}}"#);
        let (url, _) = serve(vec![Step::Reply(401, echo)]).await;
        let r = reranker(settings(RerankApi::Jina, &url, Some("m"), Some(KEY)));
        let err = r.score(QUESTION, &hits()).await.unwrap_err();
        assert_eq!(err.code(), "rerank_rejected");
        assert!(err.to_string().contains("invalid api token") && err.to_string().contains("[REDACTED]"), "{err}");
        assert!(!err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY));
        assert!(!format!("{r:?}").contains(KEY), "{r:?}");
    }

    #[tokio::test]
    async fn no_hits_sends_nothing() {
        let r = reranker(settings(RerankApi::Tei, "http://127.0.0.1:9", None, None));
        assert!(r.score(QUESTION, &[]).await.unwrap().is_empty());
    }

    #[test]
    fn a_url_without_a_path_gets_the_apis_own() {
        assert_eq!(endpoint(RerankApi::Tei, Some("http://tei:8080")).unwrap(), "http://tei:8080/rerank");
        assert_eq!(endpoint(RerankApi::Tei, Some("http://tei:8080/")).unwrap(), "http://tei:8080/rerank");
        assert_eq!(endpoint(RerankApi::Cohere, Some("https://gw.example")).unwrap(), "https://gw.example/v2/rerank");
        assert_eq!(
            endpoint(RerankApi::Jina, Some("https://gw.example/jina/v1/rerank")).unwrap(),
            "https://gw.example/jina/v1/rerank"
        );
        assert_eq!(endpoint(RerankApi::Cohere, None).unwrap(), "https://api.cohere.com/v2/rerank");
        assert_eq!(endpoint(RerankApi::Jina, None).unwrap(), "https://api.jina.ai/v1/rerank");
        assert!(endpoint(RerankApi::Tei, None).is_err());
        assert!(endpoint(RerankApi::Tei, Some("tei:8080")).is_err());
    }

    #[test]
    fn settings_read_the_key_from_the_named_variable() {
        let var = "FRONTDESK_UNIT_RERANK_HTTP_KEY";
        std::env::set_var(var, format!("  {KEY}\n"));
        let config = RerankConfig {
            kind: crate::rerank::config::RerankKind::Http,
            api: Some(RerankApi::Cohere),
            model: Some("rerank-v3.5".into()),
            api_key_env: Some(var.into()),
            timeout_ms: 1500,
            ..RerankConfig::default()
        };
        let s = HttpSettings::from_config(&config).unwrap();
        assert_eq!(s.api_key.as_ref().unwrap().expose_secret(), KEY);
        assert_eq!((s.url.as_str(), s.timeout), ("https://api.cohere.com/v2/rerank", Duration::from_millis(1500)));
        assert!(!format!("{s:?}").contains(KEY));

        let unset = RerankConfig { api_key_env: Some("FRONTDESK_UNIT_RERANK_SURELY_UNSET".into()), ..config };
        let err = HttpSettings::from_config(&unset).unwrap_err();
        assert_eq!(err.code(), "rerank_config_invalid");
        assert!(err.to_string().contains("FRONTDESK_UNIT_RERANK_SURELY_UNSET"), "{err}");
    }

    #[test]
    fn a_hosted_api_without_a_model_is_refused() {
        let mut s = settings(RerankApi::Cohere, "https://api.cohere.com", None, Some(KEY));
        s.model = None;
        let err = HttpReranker::new(s, reqwest::Client::new()).unwrap_err();
        assert_eq!(err.code(), "rerank_config_invalid");
    }

    #[test]
    fn backoff_stays_within_its_ceiling() {
        let mut s = settings(RerankApi::Tei, "http://127.0.0.1:9", None, None);
        s.backoff_base = Duration::from_millis(100);
        s.backoff_max = Duration::from_millis(250);
        let r = reranker(s);
        for _ in 0..50 {
            assert!(r.backoff(1) <= Duration::from_millis(100));
            assert!(r.backoff(5) <= Duration::from_millis(250));
        }
    }
}
