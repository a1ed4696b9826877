//! `[retrieval.meilisearch]`: where the Meilisearch server is, which keys to use, and how
//! patient to be with it.
//!
//! The master key is needed to create the index, apply its settings, send documents and find
//! (or create) the search key. Searches never use it: each one carries a short-lived tenant
//! token signed with the search key, whose search rules pin the workspace.

use secrecy::SecretString;
use serde::Deserialize;

/// The environment variable that holds the master key (the usual `FRONTDESK_` override).
pub const MASTER_KEY_ENV: &str = "FRONTDESK_RETRIEVAL__MEILISEARCH__MASTER_KEY";

/// Who combines keyword and semantic evidence in hybrid mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionMode {
    /// Keyword and semantic searches run separately (one multi-search request) and frontdesk
    /// fuses the two lists as the embedded backend does.
    Frontdesk,
    /// Meilisearch's own `hybrid` search picks from the two lists.
    Meilisearch,
}

/// Where document vectors come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedderSource {
    /// frontdesk's own embedder computes every vector and sends it with the document and the
    /// query, so both backends rank with the same vectors.
    UserProvided,
    /// Meilisearch calls a REST embedding service itself (`url`, `request`, `response`).
    Rest,
    /// Meilisearch calls OpenAI itself (`model`, `api_key`).
    OpenAi,
    /// Meilisearch calls an Ollama server itself (`url`, `model`).
    Ollama,
}

impl EmbedderSource {
    /// The name Meilisearch gives this source in its settings.
    pub fn meili_name(self) -> &'static str {
        match self {
            EmbedderSource::UserProvided => "userProvided",
            EmbedderSource::Rest => "rest",
            EmbedderSource::OpenAi => "openAi",
            EmbedderSource::Ollama => "ollama",
        }
    }
}

/// `[retrieval.meilisearch.embedder]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MeiliEmbedderConfig {
    pub source: EmbedderSource,
    /// The embedder's name in the index settings.
    pub name: String,
    /// Vector length. For `user_provided` it must match frontdesk's embedder (384 for the local
    /// MiniLM model) and is filled in from it when left out.
    pub dimensions: Option<usize>,
    pub model: Option<String>,
    pub url: Option<String>,
    /// Key Meilisearch sends to the embedding service. Prefer the environment:
    /// `FRONTDESK_RETRIEVAL__MEILISEARCH__EMBEDDER__API_KEY`.
    pub api_key: Option<SecretString>,
    /// What Meilisearch embeds for each chunk (Liquid template over the document's fields).
    pub document_template: String,
    /// `rest` only: the request body Meilisearch sends, with `{{text}}` where the text goes.
    pub request: Option<toml::Value>,
    /// `rest` only: where the vector is in the service's response, with `{{embedding}}`.
    pub response: Option<toml::Value>,
}

/// The template used when Meilisearch embeds chunks itself: the same text frontdesk embeds.
pub const DEFAULT_DOCUMENT_TEMPLATE: &str = "{{doc.title}} > {{doc.headings}}\n{{doc.text}}";

impl Default for MeiliEmbedderConfig {
    fn default() -> Self {
        MeiliEmbedderConfig {
            source: EmbedderSource::UserProvided,
            name: "default".into(),
            dimensions: None,
            model: None,
            url: None,
            api_key: None,
            document_template: DEFAULT_DOCUMENT_TEMPLATE.into(),
            request: None,
            response: None,
        }
    }
}

/// `[retrieval.meilisearch]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MeiliConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:7700`.
    pub url: String,
    /// Set it through `FRONTDESK_RETRIEVAL__MEILISEARCH__MASTER_KEY`, not in the file.
    pub master_key: Option<SecretString>,
    /// An existing key allowed to `search` the index, with its uid. When left out, frontdesk
    /// looks up (or creates) the key named `frontdesk-search-<index>` with the master key.
    pub search_key: Option<SecretString>,
    pub search_key_uid: Option<String>,
    /// Index uid shared by all workspaces (every document carries its `workspace_id`).
    pub index: String,
    pub fusion: FusionMode,
    pub connect_timeout_ms: u64,
    /// Limit for one HTTP request (a search, a document batch upload, a settings call).
    pub request_timeout_ms: u64,
    /// Extra attempts after a connection error, a timeout, a 429 or a 5xx (searches and
    /// reads; writes are retried only when the request never reached the server).
    pub max_retries: u32,
    /// Chunks sent per document-addition request.
    pub batch_size: usize,
    /// How long ingest waits for Meilisearch to finish indexing what was sent.
    pub task_timeout_secs: u64,
    /// Lifetime of each tenant token.
    pub token_ttl_secs: u64,
    pub embedder: MeiliEmbedderConfig,
}

impl Default for MeiliConfig {
    fn default() -> Self {
        MeiliConfig {
            url: "http://127.0.0.1:7700".into(),
            master_key: None,
            search_key: None,
            search_key_uid: None,
            index: "frontdesk_chunks".into(),
            fusion: FusionMode::Frontdesk,
            connect_timeout_ms: 1_000,
            request_timeout_ms: 5_000,
            max_retries: 2,
            batch_size: 500,
            task_timeout_secs: 300,
            token_ttl_secs: 900,
            embedder: MeiliEmbedderConfig::default(),
        }
    }
}

fn is_uid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 400 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_http(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

impl MeiliConfig {
    /// Problems with these values as `(path, message)`; `frontdesk_dims` is the length of the
    /// vectors frontdesk's embedder produces.
    pub fn problems(&self, frontdesk_dims: usize) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |key: &str, message: String| out.push((format!("retrieval.meilisearch.{key}"), message));
        if !is_http(&self.url) {
            bad("url", format!("must start with http:// or https://, not {:?}", self.url));
        }
        if self.master_key.is_none() {
            bad("master_key", format!("is required; set it with the environment variable {MASTER_KEY_ENV}"));
        }
        match (&self.search_key, &self.search_key_uid) {
            (Some(_), None) => bad("search_key_uid", "is required when search_key is set".into()),
            (None, Some(_)) => bad("search_key", "is required when search_key_uid is set".into()),
            _ => {}
        }
        if !is_uid(&self.index) {
            bad("index", format!("must be 1–400 letters, digits, '-' or '_', not {:?}", self.index));
        }
        if self.connect_timeout_ms == 0 {
            bad("connect_timeout_ms", "must be greater than 0".into());
        }
        if self.request_timeout_ms == 0 {
            bad("request_timeout_ms", "must be greater than 0".into());
        }
        if self.max_retries > 10 {
            bad("max_retries", format!("must be at most 10, not {}", self.max_retries));
        }
        if self.batch_size == 0 || self.batch_size > 10_000 {
            bad("batch_size", format!("must be between 1 and 10000, not {}", self.batch_size));
        }
        if self.task_timeout_secs == 0 {
            bad("task_timeout_secs", "must be greater than 0".into());
        }
        if self.token_ttl_secs < 60 {
            bad("token_ttl_secs", format!("must be at least 60, not {}", self.token_ttl_secs));
        }
        let e = &self.embedder;
        if !is_uid(&e.name) {
            bad("embedder.name", format!("must be letters, digits, '-' or '_', not {:?}", e.name));
        }
        if e.dimensions == Some(0) {
            bad("embedder.dimensions", "must be greater than 0".into());
        }
        if let Some(url) = &e.url {
            if !is_http(url) {
                bad("embedder.url", format!("must start with http:// or https://, not {url:?}"));
            }
        }
        match e.source {
            EmbedderSource::UserProvided => {
                if let Some(d) = e.dimensions.filter(|d| *d != frontdesk_dims) {
                    bad(
                        "embedder.dimensions",
                        format!("is {d}, but frontdesk's embedder produces vectors of {frontdesk_dims}"),
                    );
                }
                for (key, set) in [
                    ("embedder.url", e.url.is_some()),
                    ("embedder.model", e.model.is_some()),
                    ("embedder.api_key", e.api_key.is_some()),
                    ("embedder.request", e.request.is_some()),
                    ("embedder.response", e.response.is_some()),
                ] {
                    if set {
                        bad(key, "only applies when Meilisearch embeds itself (source rest, open_ai or ollama)".into());
                    }
                }
            }
            EmbedderSource::Rest => {
                if e.url.is_none() {
                    bad("embedder.url", "is required for source = \"rest\"".into());
                }
                if e.request.is_none() {
                    bad("embedder.request", "is required for source = \"rest\"".into());
                }
                if e.response.is_none() {
                    bad("embedder.response", "is required for source = \"rest\"".into());
                }
            }
            EmbedderSource::Ollama => {
                if e.model.is_none() {
                    bad("embedder.model", "is required for source = \"ollama\"".into());
                }
            }
            EmbedderSource::OpenAi => {}
        }
        if e.source != EmbedderSource::UserProvided && e.document_template.trim().is_empty() {
            bad("embedder.document_template", "must not be empty".into());
        }
        out
    }

    /// The vector length the index is configured with (`None`: Meilisearch infers it).
    pub fn dimensions(&self, frontdesk_dims: usize) -> Option<usize> {
        match self.embedder.source {
            EmbedderSource::UserProvided => Some(self.embedder.dimensions.unwrap_or(frontdesk_dims)),
            _ => self.embedder.dimensions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key() -> MeiliConfig {
        MeiliConfig { master_key: Some(SecretString::from("k")), ..MeiliConfig::default() }
    }

    #[test]
    fn defaults_with_a_master_key_are_valid() {
        assert!(with_key().problems(384).is_empty(), "{:?}", with_key().problems(384));
        assert_eq!(with_key().dimensions(384), Some(384));
    }

    #[test]
    fn every_problem_is_named() {
        let mut c = MeiliConfig {
            url: "localhost:7700".into(),
            index: "chunks/v1".into(),
            batch_size: 0,
            request_timeout_ms: 0,
            search_key: Some(SecretString::from("s")),
            ..MeiliConfig::default()
        };
        c.embedder.dimensions = Some(768);
        let p: Vec<String> = c.problems(384).into_iter().map(|(k, _)| k).collect();
        for key in ["url", "master_key", "search_key_uid", "index", "batch_size", "request_timeout_ms"] {
            assert!(p.contains(&format!("retrieval.meilisearch.{key}")), "{key} missing in {p:?}");
        }
        assert!(p.contains(&"retrieval.meilisearch.embedder.dimensions".to_string()), "{p:?}");
        assert_eq!(p.len(), 7, "{p:?}");
    }

    #[test]
    fn remote_sources_need_their_settings() {
        let mut c = with_key();
        c.embedder.source = EmbedderSource::Rest;
        let p: Vec<String> = c.problems(384).into_iter().map(|(k, _)| k).collect();
        assert_eq!(p.len(), 3, "{p:?}");
        c.embedder.source = EmbedderSource::Ollama;
        assert_eq!(c.problems(384).len(), 1);
        assert_eq!(c.dimensions(384), None);
    }
}
