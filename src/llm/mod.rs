//! Language models behind one trait.
//!
//! - `openai`: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama,
//!   llama.cpp server, most gateways), over reqwest, streaming, with timeouts and retries on
//!   retryable errors only.
//! - `chain`: a fallback chain of providers, and routing easy questions to a cheaper one.
//! - `local`: SmolLM2-135M-Instruct in-process on the CPU (candle), no server, no key.
//! - `config`: `[llm]`, the generator and the providers behind it.
//!
//! Callers never see a provider's raw error text: `LlmError` says what kind of failure it was,
//! and the engine turns "every provider failed" into an escalation (`llm_unavailable`).

pub mod chain;
pub mod config;
pub mod local;
pub mod openai;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Who said a message in a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::System, content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::User, content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::Assistant, content: content.into() }
    }
}

/// One chat completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Low by default: answers should follow the context, not improvise.
    pub temperature: f32,
    pub max_tokens: u32,
    /// Which tier the caller wants: `Standard`, or `Cheap` for easy questions (routing).
    pub tier: ModelTier,
}

/// Model tier requested by policy or routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelTier {
    #[default]
    Standard,
    Cheap,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    Other,
}

/// A completed generation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    pub text: String,
    /// `provider/model` that produced it.
    pub model: String,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub finish: FinishReason,
    /// Attempts made across retries and fallbacks (1 when the first try worked).
    pub attempts: u32,
    /// Estimated cost in US dollars from the configured prices (0 when none are set).
    pub cost_usd: f64,
}

/// Why a model call failed. The `Display` text is safe to log: it never holds a key, and
/// holds at most a short excerpt of a provider's body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("could not connect to {provider}: {message}")]
    Connect { provider: String, message: String },
    #[error("{provider} did not answer within {after:?}")]
    Timeout { provider: String, after: Duration },
    #[error("{provider} is rate limiting (retry after {retry_after:?})")]
    RateLimited { provider: String, retry_after: Option<Duration> },
    #[error("{provider} failed with HTTP {status}: {excerpt}")]
    Server { provider: String, status: u16, excerpt: String },
    #[error("{provider} refused the request with HTTP {status}: {excerpt}")]
    Client { provider: String, status: u16, excerpt: String },
    #[error("{provider} sent a response that could not be read: {message}")]
    Malformed { provider: String, message: String },
    #[error("{provider} stopped streaming before the answer was complete")]
    StreamCut { provider: String },
    #[error("the local model failed: {0}")]
    Local(String),
    #[error("no language model is configured")]
    NotConfigured,
    #[error("every model failed; last error: {last}")]
    AllFailed { last: Box<LlmError> },
}

impl LlmError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::Connect { .. } => "llm_unreachable",
            LlmError::Timeout { .. } => "llm_timeout",
            LlmError::RateLimited { .. } => "llm_rate_limited",
            LlmError::Server { .. } => "llm_server_error",
            LlmError::Client { .. } => "llm_rejected",
            LlmError::Malformed { .. } => "llm_bad_response",
            LlmError::StreamCut { .. } => "llm_stream_cut",
            LlmError::Local(..) => "local_model_failed",
            LlmError::NotConfigured => "llm_not_configured",
            LlmError::AllFailed { .. } => "llm_unavailable",
        }
    }
}

impl LlmError {
    /// True when the same request may succeed if tried again: connection errors, timeouts,
    /// 429, 5xx, and streams cut short. A 4xx other than 429, or a malformed body, is not.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            LlmError::Connect { .. }
                | LlmError::Timeout { .. }
                | LlmError::RateLimited { .. }
                | LlmError::Server { .. }
                | LlmError::StreamCut { .. }
        )
    }
}

/// A chat model. `deltas`, when given, receives the text as it is generated; the returned
/// response always holds the whole text. Customers never see these deltas: a turn shows an
/// answer only once it has been checked.
#[async_trait]
pub trait Llm: Send + Sync {
    /// `provider/model`, recorded in traces.
    fn name(&self) -> String;
    async fn complete(
        &self,
        request: &ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<ChatResponse, LlmError>;
}
