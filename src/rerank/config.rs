//! `[rerank]`: which reranker reorders the retrieved chunks before an answer is written, and how
//! many chunks it reads.
//!
//! The table is optional; without it the fitted `features` ranker reranks the top 20 chunks.
//! Keys that belong to another kind are accepted and ignored, so switching `kind` back and forth
//! needs no other edit. An API key is never written here: `api_key_env` names the environment
//! variable that holds it.
//!
//! ```toml
//! [rerank]
//! kind = "http"               # "features" (default) | "http" | "cross_encoder" | "none"
//! candidates = 20             # retrieved chunks the reranker reads
//! api = "tei"                 # "tei" | "cohere" | "jina"
//! url = "http://127.0.0.1:8080"   # a URL without a path gets the API's own: /rerank, /v2/rerank, /v1/rerank
//! # model = "BAAI/bge-reranker-base"   # required for cohere and jina
//! # api_key_env = "TEI_API_KEY"        # required for cohere and jina
//! timeout_ms = 2000
//! max_retries = 1
//! ```

use serde::Deserialize;
use std::path::PathBuf;

/// Which reranker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RerankKind {
    /// A ranker fitted on retrieval evidence; local, no model files, no service.
    #[default]
    Features,
    /// A cross-encoder behind a rerank API (`api`, `url`).
    Http,
    /// A BERT cross-encoder run in-process from `model_dir`.
    CrossEncoder,
    /// No reranking: the retrieval order is kept.
    None,
}

/// The rerank API a service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RerankApi {
    /// Hugging Face text-embeddings-inference: `POST /rerank`.
    Tei,
    /// Cohere: `POST https://api.cohere.com/v2/rerank`.
    Cohere,
    /// Jina AI: `POST https://api.jina.ai/v1/rerank`.
    Jina,
}

impl RerankApi {
    pub fn as_str(self) -> &'static str {
        match self {
            RerankApi::Tei => "tei",
            RerankApi::Cohere => "cohere",
            RerankApi::Jina => "jina",
        }
    }

    /// The endpoint used when `url` is not set; TEI has none, it is always self-hosted.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            RerankApi::Tei => None,
            RerankApi::Cohere => Some("https://api.cohere.com/v2/rerank"),
            RerankApi::Jina => Some("https://api.jina.ai/v1/rerank"),
        }
    }

    /// The path appended to a `url` that has none.
    pub fn default_path(self) -> &'static str {
        match self {
            RerankApi::Tei => "/rerank",
            RerankApi::Cohere => "/v2/rerank",
            RerankApi::Jina => "/v1/rerank",
        }
    }

    /// Whether the service needs `model` and an API key in every request.
    pub fn hosted(self) -> bool {
        matches!(self, RerankApi::Cohere | RerankApi::Jina)
    }
}

/// `[rerank]`. Unknown keys are rejected by `config::section`, which collects them together with
/// the table's type errors (`deny_unknown_fields` would stop at the first).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RerankConfig {
    pub kind: RerankKind,
    /// How many retrieved chunks are reranked (the best `answering.context_chunks` of them are
    /// kept). More finds answers ranked lower by retrieval, at the cost of time. TEI takes at most
    /// 32 texts a request unless started with a larger `--max-client-batch-size`.
    pub candidates: usize,

    // kind = "http"
    pub api: Option<RerankApi>,
    /// The endpoint requests are POSTed to. A URL without a path gets the API's usual one.
    /// Optional for cohere and jina (their public endpoints), required for tei.
    pub url: Option<String>,
    /// The model name, sent with each request; required for cohere and jina. For tei (which
    /// serves one model) it only names the reranker in traces.
    pub model: Option<String>,
    /// Name of the environment variable holding the API key, sent as a Bearer token. Required for
    /// cohere and jina; for tei only when the server was started with `--api-key`.
    pub api_key_env: Option<String>,
    /// Limit for each attempt, in milliseconds.
    pub timeout_ms: u64,
    /// Retries after the first attempt, only for connection errors, HTTP 429 and 5xx.
    pub max_retries: u32,

    // kind = "cross_encoder"
    /// Directory with `config.json`, `model.safetensors` and `tokenizer.json` of a BERT-family
    /// sequence-classification cross-encoder (e.g. cross-encoder/ms-marco-MiniLM-L6-v2). Relative
    /// to `models_dir` unless absolute.
    pub model_dir: Option<PathBuf>,
    /// Longest question + chunk pair in tokens; longer pairs are cut (the longer side first).
    /// Limited to what the model supports.
    pub max_length: usize,
    /// Pairs per forward pass.
    pub batch_size: usize,
}

impl Default for RerankConfig {
    fn default() -> Self {
        RerankConfig {
            kind: RerankKind::Features,
            candidates: 20,
            api: None,
            url: None,
            model: None,
            api_key_env: None,
            timeout_ms: 2_000,
            max_retries: 1,
            model_dir: None,
            max_length: 512,
            batch_size: 16,
        }
    }
}

/// Largest `candidates`: every candidate is read by a model while a customer waits.
pub const MAX_CANDIDATES: usize = 200;
/// Shortest `max_length`: room for the three special tokens and a few words of each text.
pub const MIN_MAX_LENGTH: usize = 16;

impl RerankConfig {
    /// Values that parse but cannot work, as (key, problem); all of them.
    ///
    /// Like `[llm]`'s `api_key_env`, a named key variable is checked to be set, so a missing key
    /// is reported at start-up rather than on the first question.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |key: &str, message: String| out.push((format!("rerank.{key}"), message));
        if self.candidates == 0 || self.candidates > MAX_CANDIDATES {
            bad("candidates", format!("must be between 1 and {MAX_CANDIDATES}, not {}", self.candidates));
        }
        if self.timeout_ms == 0 || self.timeout_ms > 120_000 {
            bad("timeout_ms", format!("must be between 1 and 120000, not {}", self.timeout_ms));
        }
        if self.max_retries > 5 {
            bad("max_retries", format!("must be at most 5, not {}", self.max_retries));
        }
        if self.max_length < MIN_MAX_LENGTH || self.max_length > 8192 {
            bad("max_length", format!("must be between {MIN_MAX_LENGTH} and 8192, not {}", self.max_length));
        }
        if self.batch_size == 0 || self.batch_size > 256 {
            bad("batch_size", format!("must be between 1 and 256, not {}", self.batch_size));
        }
        if let Some(var) = &self.api_key_env {
            if var.trim().is_empty() {
                bad("api_key_env", "must name an environment variable".into());
            } else if self.kind == RerankKind::Http && std::env::var(var).map(|v| v.trim().is_empty()).unwrap_or(true) {
                bad("api_key_env", format!("environment variable {var} is not set"));
            }
        }
        match self.kind {
            RerankKind::Http => match self.api {
                None => bad("api", "is required when rerank.kind = \"http\": \"tei\", \"cohere\" or \"jina\"".into()),
                Some(api) => {
                    match &self.url {
                        None if api.default_url().is_none() => {
                            bad("url", format!("is required when rerank.api = \"{}\"", api.as_str()))
                        }
                        None => {}
                        Some(url) => {
                            if let Err(message) = check_url(url) {
                                bad("url", message);
                            }
                        }
                    }
                    if api.hosted() {
                        if self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
                            bad("model", format!("is required when rerank.api = \"{}\"", api.as_str()));
                        }
                        if self.api_key_env.is_none() {
                            bad(
                                "api_key_env",
                                format!(
                                    "is required when rerank.api = \"{}\": the name of the environment variable \
                                     holding the API key",
                                    api.as_str()
                                ),
                            );
                        }
                    } else if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                        bad("model", "must not be empty when set".into());
                    }
                }
            },
            RerankKind::CrossEncoder => {
                if self.model_dir.as_ref().is_none_or(|d| d.as_os_str().is_empty()) {
                    bad(
                        "model_dir",
                        "is required when rerank.kind = \"cross_encoder\": a directory with config.json, \
                         model.safetensors and tokenizer.json"
                            .into(),
                    );
                }
            }
            RerankKind::Features | RerankKind::None => {}
        }
        out
    }
}

/// An http(s) URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => Ok(()),
        _ => Err(format!("must be an http:// or https:// URL, not {url:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    fn parse(text: &str) -> Result<Config, Vec<String>> {
        Config::from_toml_with_env(text, &[], "test.toml").map_err(|e| match e {
            ConfigError::Invalid { problems, .. } => problems.iter().map(|p| p.to_string()).collect(),
            other => vec![other.to_string()],
        })
    }

    /// An environment variable that is set in every test process.
    fn set_var() -> String {
        let name = "FRONTDESK_UNIT_RERANK_KEY_SET";
        std::env::set_var(name, "rk-unit-secret");
        name.to_string()
    }

    #[test]
    fn without_the_table_the_features_ranker_reads_twenty_candidates() {
        let config = parse("").unwrap();
        assert_eq!(config.rerank, RerankConfig::default());
        assert_eq!(config.rerank.kind, RerankKind::Features);
        assert_eq!(config.rerank.candidates, 20);
    }

    #[test]
    fn a_tei_example_parses() {
        let text = "[rerank]\nkind = \"http\"\ncandidates = 30\napi = \"tei\"\nurl = \"http://127.0.0.1:8080\"\n\
                    model = \"BAAI/bge-reranker-base\"\ntimeout_ms = 1500\nmax_retries = 0\n";
        let r = parse(text).unwrap().rerank;
        assert_eq!((r.kind, r.api, r.candidates), (RerankKind::Http, Some(RerankApi::Tei), 30));
        assert_eq!((r.timeout_ms, r.max_retries), (1500, 0));
        assert_eq!(r.url.as_deref(), Some("http://127.0.0.1:8080"));
    }

    #[test]
    fn cohere_and_jina_examples_parse_with_their_public_endpoints() {
        let var = set_var();
        for (api, model) in [("cohere", "rerank-v3.5"), ("jina", "jina-reranker-v2-base-multilingual")] {
            let text =
                format!("[rerank]\nkind = \"http\"\napi = \"{api}\"\nmodel = \"{model}\"\napi_key_env = \"{var}\"\n");
            let r = parse(&text).unwrap().rerank;
            assert!(r.api.unwrap().default_url().unwrap().starts_with("https://api."), "{api}");
            assert_eq!(r.model.as_deref(), Some(model));
        }
    }

    #[test]
    fn a_cross_encoder_example_parses() {
        let text = "[rerank]\nkind = \"cross_encoder\"\nmodel_dir = \"ms-marco-MiniLM-L6-v2\"\nmax_length = 256\nbatch_size = 8\n";
        let r = parse(text).unwrap().rerank;
        assert_eq!(r.kind, RerankKind::CrossEncoder);
        assert_eq!(r.model_dir, Some(PathBuf::from("ms-marco-MiniLM-L6-v2")));
        assert_eq!((r.max_length, r.batch_size), (256, 8));
    }

    #[test]
    fn none_turns_reranking_off() {
        assert_eq!(parse("[rerank]\nkind = \"none\"\n").unwrap().rerank.kind, RerankKind::None);
    }

    #[test]
    fn an_unknown_key_or_kind_is_reported_with_its_path() {
        let p = parse("[rerank]\nkind = \"http\"\napi_key = \"sk-in-the-file\"\n").unwrap_err();
        assert!(p.iter().any(|s| s.starts_with("rerank") && s.contains("api_key")), "{p:?}");
        assert!(p.iter().all(|s| !s.contains("sk-in-the-file")), "{p:?}");
        let p = parse("[rerank]\nkind = \"colbert\"\n").unwrap_err();
        assert!(p.iter().any(|s| s.starts_with("rerank.kind") && s.contains("colbert")), "{p:?}");
        let p = parse("[rerank]\napi = \"openai\"\n").unwrap_err();
        assert!(p.iter().any(|s| s.starts_with("rerank.api")), "{p:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key() {
        let text = "[rerank]\nkind = \"http\"\napi = \"cohere\"\ncandidates = 0\ntimeout_ms = 0\nmax_retries = 9\n\
                    url = \"api.cohere.com/v2/rerank\"\napi_key_env = \"FRONTDESK_UNIT_RERANK_SURELY_UNSET\"\n\
                    max_length = 4\nbatch_size = 0\n";
        let p = parse(text).unwrap_err();
        let joined = p.join("\n");
        for needle in [
            "rerank.candidates: must be between 1 and 200, not 0",
            "rerank.timeout_ms: must be between",
            "rerank.max_retries: must be at most 5",
            "rerank.url: must be an http:// or https:// URL",
            "rerank.model: is required when rerank.api = \"cohere\"",
            "rerank.api_key_env: environment variable FRONTDESK_UNIT_RERANK_SURELY_UNSET is not set",
            "rerank.max_length: must be between 16",
            "rerank.batch_size: must be between 1 and 256",
        ] {
            assert!(joined.contains(needle), "{needle} not in\n{joined}");
        }
        assert_eq!(p.len(), 8, "{joined}");
    }

    #[test]
    fn http_needs_an_api_and_tei_needs_a_url() {
        let p = parse("[rerank]\nkind = \"http\"\n").unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("rerank.api: is required"), "{p:?}");
        let p = parse("[rerank]\nkind = \"http\"\napi = \"tei\"\n").unwrap_err();
        assert_eq!(p, ["rerank.url: is required when rerank.api = \"tei\""]);
    }

    #[test]
    fn hosted_apis_need_a_model_and_a_key_variable() {
        let p = parse("[rerank]\nkind = \"http\"\napi = \"jina\"\n").unwrap_err();
        let joined = p.join("\n");
        assert!(joined.contains("rerank.model: is required"), "{joined}");
        assert!(joined.contains("rerank.api_key_env: is required"), "{joined}");
        assert_eq!(p.len(), 2, "{joined}");
    }

    #[test]
    fn a_cross_encoder_needs_its_model_dir() {
        let p = parse("[rerank]\nkind = \"cross_encoder\"\n").unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("rerank.model_dir: is required"), "{p:?}");
    }

    #[test]
    fn keys_of_another_kind_are_ignored() {
        let text = "[rerank]\nkind = \"features\"\napi = \"tei\"\nmodel_dir = \"x\"\napi_key_env = \"FRONTDESK_UNIT_RERANK_SURELY_UNSET\"\n";
        assert_eq!(parse(text).unwrap().rerank.kind, RerankKind::Features);
    }

    #[test]
    fn env_overrides_reach_the_table() {
        let env = vec![("FRONTDESK_RERANK__CANDIDATES".to_string(), "40".to_string())];
        let config = Config::from_toml_with_env("[rerank]\ncandidates = 10\n", &env, "test.toml").unwrap();
        assert_eq!(config.rerank.candidates, 40);
    }
}
