//! A chat model behind any OpenAI-compatible `POST {base_url}/chat/completions` endpoint.
//!
//! This is how frontdesk talks to hosted models (OpenAI, gateways) and self-hosted servers
//! (vLLM, Ollama, llama.cpp). A customer is waiting while it runs, so every exchange is bounded:
//! connecting has its own short limit, each attempt (streaming included) is cut off after
//! `timeout_ms`, and a `Retry-After` is only waited for when it fits in the time the provider's
//! retry schedule allows anyway. Failures that may pass (connection trouble, timeouts, 429, 5xx,
//! a stream cut short) are retried with jittered exponential backoff; failures that
//! will not pass (a 4xx, an unreadable body) are returned at once so the fallback chain can move
//! on, and the engine can hand the customer to a person instead of showing a raw error.
//!
//! An answer is only returned when it arrived whole: a stream that stops before its end marker
//! is an error, and its partial text is thrown away rather than shown as if it were complete.
//!
//! The API key is held as a `SecretString`: it is sent only as a Bearer header, redacted from
//! `Debug`, scrubbed from any body excerpt quoted in an error, and never logged.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::chain::{error_kind, note_attempt, DeltaRelay};
use super::config::ProviderConfig;
use super::{ChatMessage, ChatRequest, ChatResponse, FinishReason, Llm, LlmError};

/// Longest piece of a provider's body quoted in an error.
const EXCERPT_CHARS: usize = 200;
/// Largest non-streaming response body read; anything bigger is not a chat completion.
const MAX_BODY_BYTES: usize = 8 << 20;
/// Largest error body read for an excerpt.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;
/// How long to wait for an error body before giving up on quoting it.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);
/// Longest single line accepted in an event stream.
const MAX_SSE_LINE_BYTES: usize = 1 << 20;
/// Longest `Retry-After` honoured; a provider asking for more is given up on, so the chain can
/// try another one while the customer is still waiting.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Connect timeout of the client from [`build_client`]; equal to the configuration's default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3_000);

/// One shared HTTP client for every provider: rustls, a connect timeout of
/// [`DEFAULT_CONNECT_TIMEOUT`], no overall timeout (each provider bounds its own requests from
/// its configuration) and no redirects (a chat endpoint that redirects is misconfigured, and
/// following it could carry the key somewhere unexpected).
pub fn build_client() -> reqwest::Client {
    client_with_connect_timeout(DEFAULT_CONNECT_TIMEOUT).unwrap_or_else(|_| reqwest::Client::new())
}

fn client_with_connect_timeout(connect: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(connect)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// A chat model reached over an OpenAI-compatible HTTP API.
pub struct OpenAiProvider {
    /// `provider/model`.
    name: String,
    model: String,
    url: String,
    api_key: Option<SecretString>,
    client: reqwest::Client,
    connect_timeout: Duration,
    timeout: Duration,
    max_retries: u32,
    backoff_base_ms: u64,
    backoff_max_ms: u64,
    stream: bool,
    price_in_per_mtok: f64,
    price_out_per_mtok: f64,
    jitter: Jitter,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff_base_ms", &self.backoff_base_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl OpenAiProvider {
    /// The shared client; the same as the free function [`build_client`].
    pub fn build_client() -> reqwest::Client {
        build_client()
    }

    /// Builds a provider from its configuration, sharing `client` (see [`build_client`]).
    ///
    /// The key is `api_key`, or else read now from the variable named by `api_key_env`; a
    /// variable that is unset or empty is an error naming the variable. reqwest sets connect
    /// timeouts per client, so a provider whose `connect_timeout_ms` differs from
    /// [`DEFAULT_CONNECT_TIMEOUT`] gets a client of its own with that timeout.
    pub fn new(config: &ProviderConfig, client: reqwest::Client) -> Result<Self, LlmError> {
        let name = format!("{}/{}", config.name, config.model);
        let api_key = match (&config.api_key, &config.api_key_env) {
            (Some(key), _) => Some(key.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(value) if !value.trim().is_empty() => Some(SecretString::from(value.trim().to_owned())),
                _ => {
                    return Err(setup_error(
                        &name,
                        format!("the environment variable {var} that should hold its API key is not set"),
                    ))
                }
            },
            (None, None) => None,
        };
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        match reqwest::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            _ => return Err(setup_error(&name, format!("base_url {:?} is not an http(s) URL", config.base_url))),
        }
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let client = if connect_timeout == DEFAULT_CONNECT_TIMEOUT {
            client
        } else {
            client_with_connect_timeout(connect_timeout)
                .map_err(|err| setup_error(&name, format!("the HTTP client could not be set up: {err}")))?
        };
        let jitter = Jitter::seeded(&name);
        Ok(OpenAiProvider {
            name,
            model: config.model.clone(),
            url,
            api_key,
            client,
            connect_timeout,
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            max_retries: config.max_retries,
            backoff_base_ms: config.backoff_base_ms,
            backoff_max_ms: config.backoff_max_ms.max(config.backoff_base_ms),
            stream: config.stream,
            price_in_per_mtok: config.price_in_per_mtok,
            price_out_per_mtok: config.price_out_per_mtok,
            jitter,
        })
    }

    /// The time one request may take when every attempt times out, with the longest backoff
    /// between them. A `Retry-After` longer than what is left of it is not waited for.
    fn budget(&self) -> Duration {
        let attempts = self.max_retries.saturating_add(1);
        self.timeout
            .saturating_mul(attempts)
            .saturating_add(Duration::from_millis(self.backoff_max_ms).saturating_mul(self.max_retries))
    }

    /// Full-jitter exponential backoff before retry number `retry` (1 for the first retry):
    /// uniformly random in `0..=min(backoff_max, base * 2^(retry-1))`.
    fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(40);
        let ceiling = self.backoff_base_ms.saturating_mul(1u64 << exponent).min(self.backoff_max_ms);
        if ceiling == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(self.jitter.next() % (ceiling + 1))
    }

    /// One exchange with the endpoint; the caller bounds it in time and counts it.
    async fn attempt(&self, request: &ChatRequest, relay: &mut DeltaRelay) -> Result<ChatResponse, LlmError> {
        let payload = Payload {
            model: &self.model,
            messages: &request.messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            stream: self.stream,
            stream_options: self.stream.then_some(StreamOptions { include_usage: true }),
        };
        let mut builder = self.client.post(&self.url).json(&payload);
        if self.stream {
            builder = builder.header(ACCEPT, "text/event-stream");
        }
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key.expose_secret());
        }
        let response = builder.send().await.map_err(|err| self.transport_error(&err))?;
        if !response.status().is_success() {
            return Err(self.status_error(response).await);
        }
        let is_json =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
        let generated = if self.stream && !is_json {
            self.read_stream(response, relay).await?
        } else {
            // Not streaming (or a server that ignored `stream`): the whole text at once.
            let generated = self.read_json(response).await?;
            relay.push(&generated.text);
            generated
        };
        Ok(self.finish(request, generated))
    }

    fn finish(&self, request: &ChatRequest, generated: Generated) -> ChatResponse {
        let (tokens_in, tokens_out) = match generated.usage {
            Some(usage) => usage,
            None => (
                estimate_tokens(request.messages.iter().map(|m| m.content.chars().count()).sum()),
                estimate_tokens(generated.text.chars().count()),
            ),
        };
        let cost_usd =
            f64::from(tokens_in) * self.price_in_per_mtok / 1e6 + f64::from(tokens_out) * self.price_out_per_mtok / 1e6;
        ChatResponse {
            text: generated.text,
            model: self.name.clone(),
            tokens_in,
            tokens_out,
            finish: generated.finish.unwrap_or(FinishReason::Stop),
            attempts: 1,
            cost_usd,
        }
    }

    /// Reads a whole `chat.completion` object.
    async fn read_json(&self, mut response: reqwest::Response) -> Result<Generated, LlmError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(self.malformed(format!("the response is larger than {} MiB", MAX_BODY_BYTES >> 20)));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => return Err(LlmError::StreamCut { provider: self.name.clone() }),
            }
        }
        let parsed: Completion =
            serde_json::from_slice(&body).map_err(|err| self.malformed(format!("not a chat completion ({err})")))?;
        let choice =
            parsed.choices.into_iter().next().ok_or_else(|| self.malformed("the response has no choices".into()))?;
        let text = choice
            .message
            .and_then(|m| m.content)
            .ok_or_else(|| self.malformed("choices[0].message.content is missing".into()))?;
        Ok(Generated {
            text,
            finish: choice.finish_reason.as_deref().map(finish_reason),
            usage: parsed.usage.and_then(|u| u.pair()),
        })
    }

    /// Reads a Server-Sent Events stream of `chat.completion.chunk` objects, forwarding text as
    /// it arrives. Complete only with `data: [DONE]`, or a finish reason followed by the end of
    /// the body; anything short of that is a cut stream.
    async fn read_stream(&self, response: reqwest::Response, relay: &mut DeltaRelay) -> Result<Generated, LlmError> {
        let mut body = response.bytes_stream();
        let mut lines = SseLines::default();
        let mut state = StreamState::default();
        loop {
            match body.next().await {
                Some(Ok(bytes)) => {
                    lines.push(&bytes);
                    while let Some(line) = lines.next_line() {
                        let line =
                            line.map_err(|LineTooLong| self.malformed("an event-stream line is too long".into()))?;
                        if self.on_sse_line(&line, &mut state, relay)? {
                            return Ok(state.into_generated());
                        }
                    }
                }
                Some(Err(_)) => break,
                None => {
                    if let Some(line) = lines.rest() {
                        if self.on_sse_line(&line, &mut state, relay)? {
                            return Ok(state.into_generated());
                        }
                    }
                    break;
                }
            }
        }
        if state.finish.is_some() {
            Ok(state.into_generated())
        } else {
            Err(LlmError::StreamCut { provider: self.name.clone() })
        }
    }

    /// Handles one event-stream line; true once `[DONE]` arrives.
    fn on_sse_line(&self, line: &[u8], state: &mut StreamState, relay: &mut DeltaRelay) -> Result<bool, LlmError> {
        let line = std::str::from_utf8(line).map_err(|_| self.malformed("the event stream is not UTF-8".into()))?;
        // Blank lines end events, `:` starts a comment, and other fields (event, id, retry)
        // carry nothing a chat completion needs.
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(false);
        };
        let data = data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        if data == "[DONE]" {
            return Ok(true);
        }
        let chunk: StreamChunk =
            serde_json::from_str(data).map_err(|err| self.malformed(format!("an unreadable stream event ({err})")))?;
        if chunk.error.is_some() {
            // The provider gave up part-way (overloaded, usually): the answer is incomplete.
            // Logged once, with the attempt, where the call is retried.
            return Err(LlmError::StreamCut { provider: self.name.clone() });
        }
        if let Some(choice) = chunk.choices.into_iter().next() {
            if let Some(text) = choice.delta.and_then(|d| d.content) {
                if !text.is_empty() {
                    relay.push(&text);
                    state.text.push_str(&text);
                }
            }
            if let Some(reason) = choice.finish_reason.as_deref() {
                state.finish = Some(finish_reason(reason));
            }
        }
        if let Some(usage) = chunk.usage.and_then(|u| u.pair()) {
            state.usage = Some(usage);
        }
        Ok(false)
    }

    fn transport_error(&self, err: &reqwest::Error) -> LlmError {
        if err.is_timeout() && !err.is_connect() {
            return LlmError::Timeout { provider: self.name.clone(), after: self.timeout };
        }
        // reqwest's own text names only the URL; the causes beneath it say what went wrong.
        let mut message = String::new();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        if message.is_empty() {
            message = err.to_string();
        }
        LlmError::Connect { provider: self.name.clone(), message: self.excerpt(&message) }
    }

    async fn status_error(&self, mut response: reqwest::Response) -> LlmError {
        let status = response.status().as_u16();
        if status == 429 {
            let retry_after = retry_after(response.headers(), OffsetDateTime::now_utc());
            return LlmError::RateLimited { provider: self.name.clone(), retry_after };
        }
        let mut body = Vec::new();
        let read = async {
            while let Ok(Some(chunk)) = response.chunk().await {
                body.extend_from_slice(&chunk);
                if body.len() >= MAX_ERROR_BODY_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(ERROR_BODY_WAIT, read).await;
        let excerpt = self.excerpt(&String::from_utf8_lossy(&body));
        let provider = self.name.clone();
        if (500..=599).contains(&status) {
            LlmError::Server { provider, status, excerpt }
        } else {
            LlmError::Client { provider, status, excerpt }
        }
    }

    fn malformed(&self, message: String) -> LlmError {
        LlmError::Malformed { provider: self.name.clone(), message: self.excerpt(&message) }
    }

    /// At most `EXCERPT_CHARS` characters of `text` on one line, with the key scrubbed out
    /// (in case a server echoes the request headers).
    fn excerpt(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let Some(key) = &self.api_key {
            let key = key.expose_secret();
            if !key.is_empty() {
                text = text.replace(key, "[REDACTED]");
            }
        }
        let mut out: String =
            text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).take(EXCERPT_CHARS + 1).collect();
        if out.chars().count() > EXCERPT_CHARS {
            out = out.chars().take(EXCERPT_CHARS - 1).collect();
            out.push('…');
        }
        out
    }
}

#[async_trait]
impl Llm for OpenAiProvider {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn complete(
        &self,
        request: &ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<ChatResponse, LlmError> {
        let deadline = Instant::now() + self.budget();
        let mut relay = DeltaRelay::new(deltas);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            note_attempt();
            relay.begin_attempt();
            let exchange = self.attempt(request, &mut relay);
            let outcome = match tokio::time::timeout(self.timeout, exchange).await {
                Ok(outcome) => outcome,
                Err(_) => Err(LlmError::Timeout { provider: self.name.clone(), after: self.timeout }),
            };
            let err = match outcome {
                Ok(mut response) => {
                    response.attempts = attempt;
                    tracing::debug!(
                        provider = %self.name,
                        attempts = attempt,
                        tokens_in = response.tokens_in,
                        tokens_out = response.tokens_out,
                        "model answered"
                    );
                    return Ok(response);
                }
                Err(err) => err,
            };
            tracing::warn!(
                provider = %self.name,
                attempt,
                kind = error_kind(&err),
                status = ?status_of(&err),
                retryable = err.retryable(),
                "model call attempt failed"
            );
            if !err.retryable() || attempt > self.max_retries {
                return Err(err);
            }
            let delay = match &err {
                LlmError::RateLimited { retry_after: Some(wait), .. } => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if *wait > MAX_RETRY_AFTER || *wait > remaining {
                        // Too long for a waiting customer: let the chain try another provider.
                        return Err(err);
                    }
                    *wait
                }
                _ => self.backoff(attempt),
            };
            tokio::time::sleep(delay).await;
        }
    }
}

/// The problem with a provider's own settings, found while building it.
fn setup_error(provider: &str, message: String) -> LlmError {
    LlmError::Connect { provider: provider.to_owned(), message }
}

fn status_of(err: &LlmError) -> Option<u16> {
    match err {
        LlmError::Server { status, .. } | LlmError::Client { status, .. } => Some(*status),
        LlmError::RateLimited { .. } => Some(429),
        _ => None,
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" | "eos" | "end_turn" => FinishReason::Stop,
        "length" | "max_tokens" => FinishReason::Length,
        _ => FinishReason::Other,
    }
}

/// Rough token count for providers that report no usage: about four characters a token.
fn estimate_tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

/// `Retry-After` as a wait from `now`: delay-seconds, or an HTTP-date (IMF-fixdate).
fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?, now)
}

fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds.min(1e9)));
        }
        return None;
    }
    let format =
        format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
    let at = PrimitiveDateTime::parse(value, format).ok()?.assume_utc();
    let wait = at - now;
    if wait.is_negative() {
        Some(Duration::ZERO)
    } else {
        Duration::try_from(wait).ok()
    }
}

/// Splits an event-stream body into lines, whatever the network chunking: a line may arrive in
/// pieces, and ends with `\n` or `\r\n`.
#[derive(Default)]
struct SseLines {
    buffer: Vec<u8>,
    /// Bytes of `buffer` already searched for a newline.
    scanned: usize,
}

impl SseLines {
    fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete line without its ending, or an error for an overlong line.
    fn next_line(&mut self) -> Option<Result<Vec<u8>, LineTooLong>> {
        match self.buffer[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(offset) => {
                let end = self.scanned + offset;
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.scanned = 0;
                Some(Ok(line))
            }
            None => {
                self.scanned = self.buffer.len();
                (self.buffer.len() > MAX_SSE_LINE_BYTES).then_some(Err(LineTooLong))
            }
        }
    }

    /// What is left after the body ended, as a last line.
    fn rest(&mut self) -> Option<Vec<u8>> {
        let mut line = std::mem::take(&mut self.buffer);
        self.scanned = 0;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        (!line.is_empty()).then_some(line)
    }
}

/// An event-stream line longer than `MAX_SSE_LINE_BYTES`.
#[derive(Debug)]
struct LineTooLong;

#[derive(Default)]
struct StreamState {
    text: String,
    finish: Option<FinishReason>,
    usage: Option<(u32, u32)>,
}

impl StreamState {
    fn into_generated(self) -> Generated {
        Generated { text: self.text, finish: self.finish, usage: self.usage }
    }
}

/// What one successful exchange produced.
struct Generated {
    text: String,
    finish: Option<FinishReason>,
    /// `(prompt, completion)` tokens as reported by the provider.
    usage: Option<(u32, u32)>,
}

#[derive(Serialize)]
struct Payload<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    temperature: f32,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<Content>,
    delta: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl Usage {
    fn pair(&self) -> Option<(u32, u32)> {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Some((clamp(self.prompt_tokens?), clamp(self.completion_tokens?)))
    }
}

/// Randomness for backoff jitter: xorshift64, seeded from the clock and the provider's name so
/// that many servers restarted together do not retry in step.
struct Jitter(AtomicU64);

impl Jitter {
    fn seeded(salt: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let salt = salt.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Jitter(AtomicU64::new((nanos ^ salt) | 1))
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
    use crate::llm::ModelTier;

    fn config() -> ProviderConfig {
        ProviderConfig {
            name: "acme".into(),
            base_url: "http://127.0.0.1:9/v1/".into(),
            model: "m1".into(),
            api_key: Some(SecretString::from("sk-unit-secret".to_owned())),
            api_key_env: None,
            connect_timeout_ms: 3_000,
            timeout_ms: 1_000,
            max_retries: 2,
            backoff_base_ms: 100,
            backoff_max_ms: 300,
            stream: true,
            price_in_per_mtok: 0.0,
            price_out_per_mtok: 0.0,
        }
    }

    fn lines_of(chunks: &[&str]) -> Vec<String> {
        let mut lines = SseLines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            lines.push(chunk.as_bytes());
            while let Some(line) = lines.next_line() {
                out.push(String::from_utf8(line.unwrap()).unwrap());
            }
        }
        if let Some(rest) = lines.rest() {
            out.push(String::from_utf8(rest).unwrap());
        }
        out
    }

    #[test]
    fn sse_lines_survive_any_chunking() {
        let body = "data: {\"a\":1}\r\n\r\n: comment\ndata:\n\ndata: [DONE]";
        let expected = vec!["data: {\"a\":1}", "", ": comment", "data:", "", "data: [DONE]"];
        assert_eq!(lines_of(&[body]), expected);
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(lines_of(&[a, b]), expected, "split at {split}");
        }
        let bytes: Vec<String> = body.chars().map(String::from).collect();
        let pieces: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(lines_of(&pieces), expected);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = OffsetDateTime::from_unix_timestamp(784_111_777).unwrap(); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_is_full_jitter_capped() {
        let provider = OpenAiProvider::new(&config(), build_client()).unwrap();
        for _ in 0..200 {
            assert!(provider.backoff(1) <= Duration::from_millis(100));
            assert!(provider.backoff(2) <= Duration::from_millis(200));
            assert!(provider.backoff(9) <= Duration::from_millis(300));
            assert!(provider.backoff(u32::MAX) <= Duration::from_millis(300));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| provider.backoff(3)).collect();
        assert!(spread.len() > 5, "jitter should vary: {spread:?}");
    }

    #[test]
    fn url_name_and_budget() {
        let provider = OpenAiProvider::new(&config(), build_client()).unwrap();
        assert_eq!(provider.url, "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(provider.name(), "acme/m1");
        assert_eq!(provider.budget(), Duration::from_millis(3 * 1_000 + 2 * 300));
    }

    #[test]
    fn excerpts_are_short_single_line_and_scrubbed() {
        let provider = OpenAiProvider::new(&config(), build_client()).unwrap();
        let long = format!("bad key sk-unit-secret\n{}", "x".repeat(500));
        let excerpt = provider.excerpt(&long);
        assert!(!excerpt.contains("sk-unit-secret"));
        assert!(!excerpt.contains('\n'));
        assert_eq!(excerpt.chars().count(), EXCERPT_CHARS);
        assert_eq!(provider.excerpt("short"), "short");
    }

    #[test]
    fn missing_key_variable_is_named() {
        let mut config = config();
        config.api_key = None;
        config.api_key_env = Some("FRONTDESK_UNIT_SURELY_UNSET_KEY".into());
        let err = OpenAiProvider::new(&config, build_client()).unwrap_err();
        assert!(err.to_string().contains("FRONTDESK_UNIT_SURELY_UNSET_KEY"), "{err}");
    }

    #[test]
    fn cost_and_estimates() {
        let mut config = config();
        config.price_in_per_mtok = 2.0;
        config.price_out_per_mtok = 8.0;
        let provider = OpenAiProvider::new(&config, build_client()).unwrap();
        let request = ChatRequest {
            messages: vec![ChatMessage::user("12345678")],
            temperature: 0.1,
            max_tokens: 10,
            tier: ModelTier::Standard,
        };
        let reported =
            provider.finish(&request, Generated { text: "ok".into(), finish: None, usage: Some((1_000, 500)) });
        assert!((reported.cost_usd - (0.002 + 0.004)).abs() < 1e-12);
        assert_eq!(reported.finish, FinishReason::Stop);
        let estimated = provider
            .finish(&request, Generated { text: "abcde".into(), finish: Some(FinishReason::Length), usage: None });
        assert_eq!((estimated.tokens_in, estimated.tokens_out), (2, 2));
        assert_eq!(estimated.finish, FinishReason::Length);
    }
}
