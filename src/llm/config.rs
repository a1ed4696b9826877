//! `[llm]`: which generator answers, and the model providers behind it.

use secrecy::SecretString;
use serde::Deserialize;

/// What writes the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorKind {
    /// No model: the best-supported sentences of the top chunks, quoted with citations.
    Extractive,
    /// The providers in `[[llm.providers]]`, in order, as a fallback chain.
    Openai,
    /// SmolLM2-135M-Instruct in-process (`frontdesk models fetch --llm`).
    Local,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LlmConfig {
    pub generator: GeneratorKind,
    /// Tried in order: when one fails with a retryable error after its retries, the next one
    /// is asked.
    pub providers: Vec<ProviderConfig>,
    /// Name of a provider to use for easy questions when a policy's model tier is `auto`.
    pub cheap_provider: Option<String>,
    /// Sampling temperature; low so answers stay with the context.
    pub temperature: f32,
    /// Longest answer in tokens.
    pub max_tokens: u32,
    /// Condense follow-ups into standalone questions with the model (otherwise a deterministic
    /// method is used).
    pub condense_with_llm: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            generator: GeneratorKind::Extractive,
            providers: Vec::new(),
            cheap_provider: None,
            temperature: 0.1,
            max_tokens: 400,
            condense_with_llm: true,
        }
    }
}

/// One OpenAI-compatible chat-completions endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderConfig {
    /// A short name for logs, traces and `cheap_provider`.
    pub name: String,
    /// e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    /// The key itself. Prefer `api_key_env`, which keeps it out of the file.
    pub api_key: Option<SecretString>,
    /// Name of an environment variable holding the key, read at start-up.
    pub api_key_env: Option<String>,
    #[serde(default = "d_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Limit for a whole request, streaming included.
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries after the first attempt, on retryable errors only.
    #[serde(default = "d_max_retries")]
    pub max_retries: u32,
    #[serde(default = "d_backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "d_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Ask the provider to stream its tokens. Customers still see the answer only once it is
    /// checked.
    #[serde(default = "d_true")]
    pub stream: bool,
    /// US dollars per million input tokens, for cost estimates.
    #[serde(default)]
    pub price_in_per_mtok: f64,
    /// US dollars per million output tokens.
    #[serde(default)]
    pub price_out_per_mtok: f64,
}

fn d_connect_timeout_ms() -> u64 {
    3_000
}
fn d_timeout_ms() -> u64 {
    60_000
}
fn d_max_retries() -> u32 {
    2
}
fn d_backoff_base_ms() -> u64 {
    250
}
fn d_backoff_max_ms() -> u64 {
    8_000
}
fn d_true() -> bool {
    true
}
