//! `frontdesk.toml`: the configuration, read in two stages.
//!
//! 1. **Parse**: the file is read as TOML, `FRONTDESK_*` environment variables are laid over it,
//!    and each section is deserialised on its own so that every unknown key and every type error
//!    is reported together, each with its path (`retrieval.semantic_ratio: ...`).
//! 2. **Validate**: `Config::validate` checks values that parse but make no sense (a ratio of 3,
//!    a URL without a scheme) and again reports all of them at once.
//!
//! Unknown keys are rejected like `deny_unknown_fields` would, but collected (through
//! `serde_ignored`) instead of stopping at the first one.
//!
//! Precedence is file < environment < command line (the CLI applies its flags after loading).
//! Secrets are held as `SecretString` and never printed.
//!
//! Environment overrides: `FRONTDESK_<SECTION>__<KEY>` for a key in a section (double
//! underscore between levels), `FRONTDESK_<KEY>` for a top-level key, e.g.
//! `FRONTDESK_DATA_DIR=/srv/frontdesk`, `FRONTDESK_RETRIEVAL__SEMANTIC_RATIO=0.6`. A value is
//! read as a TOML literal when it is one (numbers, booleans) and as a string otherwise.

pub mod answering;
pub mod channels;
pub mod server;

pub use crate::rerank::config::RerankConfig;
pub use crate::store::config::StoreConfig;
pub use answering::AnsweringConfig;
pub use channels::ChannelSections;
pub use server::ServerConfig;

pub use crate::llm::config::{GeneratorKind, LlmConfig, ProviderConfig};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The commented configuration that `frontdesk init` writes; also `deploy/frontdesk.example.toml`.
pub const EXAMPLE_CONFIG: &str = include_str!("../../deploy/frontdesk.example.toml");

/// Every top-level key and section of the engine's configuration, in the order the example file
/// documents them; the channels' sections follow (`serve::registry` knows them).
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "data_dir",
    "models_dir",
    "embedder",
    "retrieval",
    "ingest",
    "llm",
    "rate_limits",
    "answering",
    "rerank",
    "server",
    "store",
];

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "FRONTDESK_";

/// Variables with the prefix that are not config keys (they select the file or are read elsewhere).
const ENV_NOT_KEYS: &[&str] = &["FRONTDESK_CONFIG", "FRONTDESK_LOG"];

/// Everything frontdesk can be configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where frontdesk keeps its state: the keyword index, vectors, the catalogue of what has
    /// been ingested. Default: the platform's data directory + `frontdesk`.
    pub data_dir: PathBuf,
    /// Where model files live. Default: the platform's cache directory + `frontdesk/models`.
    pub models_dir: PathBuf,
    pub embedder: EmbedderConfig,
    pub retrieval: RetrievalConfig,
    pub ingest: IngestConfig,
    pub llm: LlmConfig,
    pub rate_limits: crate::ratelimit::RateLimitConfig,
    pub answering: AnsweringConfig,
    /// `[rerank]`: optional; the fitted ranker by default.
    pub rerank: RerankConfig,
    pub server: ServerConfig,
    /// `[store]`: the state database's cache and how long records are kept.
    pub store: StoreConfig,
    /// The channels' sections, as written: the wiring layer that builds the adapters parses them
    /// (`serve::registry`).
    pub channels: ChannelSections,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            models_dir: crate::models::default_models_dir(),
            embedder: EmbedderConfig::default(),
            retrieval: RetrievalConfig::default(),
            ingest: IngestConfig::default(),
            llm: LlmConfig::default(),
            rate_limits: crate::ratelimit::RateLimitConfig::default(),
            answering: AnsweringConfig::default(),
            rerank: RerankConfig::default(),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            channels: ChannelSections::default(),
        }
    }
}

/// The platform's data directory + `frontdesk` (`~/.local/share/frontdesk` on Linux).
pub fn default_data_dir() -> PathBuf {
    dirs::data_local_dir().map(|d| d.join("frontdesk")).unwrap_or_else(|| PathBuf::from(".frontdesk/data"))
}

/// Which embedder turns text into vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedderKind {
    /// all-MiniLM-L6-v2 in-process on the CPU (`frontdesk models fetch`).
    Local,
    /// An OpenAI-compatible `/embeddings` endpoint (`[embedder.remote]`).
    Remote,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EmbedderConfig {
    pub kind: EmbedderKind,
    /// Texts per forward pass of the local model.
    pub batch_size: usize,
    pub remote: Option<RemoteEmbedderSection>,
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        EmbedderConfig { kind: EmbedderKind::Local, batch_size: 32, remote: None }
    }
}

#[derive(Debug, Clone, Deserialize)]

pub struct RemoteEmbedderSection {
    /// e.g. `https://api.openai.com/v1`; `/embeddings` is appended.
    pub base_url: String,
    pub model: String,
    /// Sent as a Bearer token. Prefer the environment: `FRONTDESK_EMBEDDER__REMOTE__API_KEY`.
    pub api_key: Option<SecretString>,
    /// Length of the vectors the model returns; checked on every response.
    pub dimensions: usize,
    #[serde(default = "default_remote_batch")]
    pub batch_size: usize,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_remote_batch() -> usize {
    64
}
fn default_timeout_secs() -> u64 {
    30
}

/// Which retrieval backend holds the knowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// In-process keyword + vector index under `data_dir`; needs no server.
    Embedded,
    /// A Meilisearch server, configured in `[retrieval.meilisearch]`.
    Meilisearch,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetrievalConfig {
    pub backend: BackendKind,
    /// Weight of semantic against keyword evidence, as Meilisearch's `semanticRatio`: 0.0 is
    /// keyword only, 1.0 semantic only.
    pub semantic_ratio: f32,
    /// How many candidates each of the keyword and the semantic search contribute before fusion.
    pub candidates: usize,
    /// The server, keys and limits of the `meilisearch` backend.
    pub meilisearch: Option<crate::retrieval::meili::config::MeiliConfig>,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig { backend: BackendKind::Embedded, semantic_ratio: 0.5, candidates: 50, meilisearch: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// Longest chunk in words (all-MiniLM-L6-v2 reads 256 word pieces, about 190 words).
    pub max_words: usize,
    /// Sections shorter than this are merged with the next one.
    pub min_words: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { max_words: 180, min_words: 40 }
    }
}

/// One thing wrong with the configuration, with the path of the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The configuration could not be used; lists every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid { origin: String, problems: Vec<ConfigProblem> },
}

impl ConfigError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_unreadable",
            ConfigError::Invalid { .. } => "config_invalid",
        }
    }
}

fn list(problems: &[ConfigProblem]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

impl Config {
    /// Loads `path` (or the defaults when `None`), then the environment, then validates.
    /// `channels` checks the channels' sections (`serve::registry::check` knows them), so that
    /// every problem of the file is reported at once.
    pub fn load(path: Option<&Path>, channels: ChannelCheck<'_>) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.to_path_buf(), source })?;
                (text, p.display().to_string())
            }
            None => (String::new(), "the default configuration".to_string()),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::parse(&text, &env, &origin, channels)
    }

    /// Parses TOML text with environment overrides given as pairs, as a configuration without
    /// channels: any section the engine does not read is an unknown key. Tests and tools that
    /// need no channel use it; `serve::registry::parse_config` reads the channels too.
    pub fn from_toml_with_env(text: &str, env: &[(String, String)], origin: &str) -> Result<Config, ConfigError> {
        Config::parse(text, env, origin, &no_channels)
    }

    /// Parses TOML text with environment overrides given as pairs; the sections the engine
    /// does not read are kept as written and checked by `channels`.
    pub fn parse(
        text: &str,
        env: &[(String, String)],
        origin: &str,
        channels: ChannelCheck<'_>,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let message = e.message().to_string();
                let at = e.span().map(|s| format!(" (line {})", line_of(text, s.start))).unwrap_or_default();
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    problems: vec![ConfigProblem {
                        path: String::new(),
                        message: format!("not valid TOML{at}: {message}"),
                    }],
                });
            }
        };
        apply_env(&mut table, env, &mut problems);

        let mut config = Config::default();
        for (key, value) in table {
            match key.as_str() {
                "data_dir" => section(&key, value, &mut problems, |v| config.data_dir = v),
                "models_dir" => section(&key, value, &mut problems, |v| config.models_dir = v),
                "embedder" => section(&key, value, &mut problems, |v| config.embedder = v),
                "retrieval" => section(&key, value, &mut problems, |v| config.retrieval = v),
                "ingest" => section(&key, value, &mut problems, |v| config.ingest = v),
                "llm" => section(&key, value, &mut problems, |v| config.llm = v),
                "rate_limits" => section(&key, value, &mut problems, |v| config.rate_limits = v),
                "answering" => section(&key, value, &mut problems, |v| config.answering = v),
                "rerank" => section(&key, value, &mut problems, |v| config.rerank = v),
                "server" => section(&key, value, &mut problems, |v| config.server = v),
                "store" => section(&key, value, &mut problems, |v| config.store = v),
                _ => config.channels.insert(key, value),
            }
        }
        problems.extend(channels(&config.channels));
        problems.extend(config.validate());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { origin: origin.to_string(), problems })
        }
    }

    /// Checks values that parse but cannot work. Returns every problem found.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let mut bad = |path: &str, message: String| out.push(ConfigProblem { path: path.into(), message });
        if !(0.0..=1.0).contains(&self.retrieval.semantic_ratio) || self.retrieval.semantic_ratio.is_nan() {
            bad(
                "retrieval.semantic_ratio",
                format!("must be between 0.0 and 1.0, not {}", self.retrieval.semantic_ratio),
            );
        }
        if self.retrieval.candidates == 0 || self.retrieval.candidates > 1000 {
            bad("retrieval.candidates", format!("must be between 1 and 1000, not {}", self.retrieval.candidates));
        }
        if self.embedder.batch_size == 0 || self.embedder.batch_size > 512 {
            bad("embedder.batch_size", format!("must be between 1 and 512, not {}", self.embedder.batch_size));
        }
        if self.ingest.max_words < 20 {
            bad("ingest.max_words", format!("must be at least 20, not {}", self.ingest.max_words));
        }
        if self.ingest.min_words > self.ingest.max_words {
            bad("ingest.min_words", format!("must not exceed ingest.max_words ({})", self.ingest.max_words));
        }
        match (&self.embedder.kind, &self.embedder.remote) {
            (EmbedderKind::Remote, None) => {
                bad("embedder.remote", "is required when embedder.kind = \"remote\"".into())
            }
            (_, Some(r)) => {
                if !(r.base_url.starts_with("http://") || r.base_url.starts_with("https://")) {
                    bad(
                        "embedder.remote.base_url",
                        format!("must start with http:// or https://, not {:?}", r.base_url),
                    );
                }
                if r.model.trim().is_empty() {
                    bad("embedder.remote.model", "must not be empty".into());
                }
                if r.dimensions == 0 {
                    bad("embedder.remote.dimensions", "must be greater than 0".into());
                }
                if r.batch_size == 0 {
                    bad("embedder.remote.batch_size", "must be greater than 0".into());
                }
                if r.timeout_secs == 0 {
                    bad("embedder.remote.timeout_secs", "must be greater than 0".into());
                }
            }
            _ => {}
        }
        self.validate_retrieval_backend(&mut out);
        self.validate_llm(&mut out);
        for (path, message) in self
            .rate_limits
            .problems()
            .into_iter()
            .chain(self.answering.problems())
            .chain(self.rerank.problems())
            .chain(self.server.problems())
            .chain(self.store.problems())
        {
            out.push(ConfigProblem { path, message });
        }
        out
    }

    /// Length of the vectors frontdesk's own embedder produces.
    pub fn embedder_dimensions(&self) -> usize {
        match (&self.embedder.kind, &self.embedder.remote) {
            (EmbedderKind::Remote, Some(r)) => r.dimensions,
            _ => crate::embed::MINILM_DIMENSIONS,
        }
    }

    fn validate_retrieval_backend(&self, out: &mut Vec<ConfigProblem>) {
        match (&self.retrieval.backend, &self.retrieval.meilisearch) {
            (BackendKind::Meilisearch, None) => out.push(ConfigProblem {
                path: "retrieval.meilisearch".into(),
                message: "is required when retrieval.backend = \"meilisearch\" (at least the master key, through \
                          FRONTDESK_RETRIEVAL__MEILISEARCH__MASTER_KEY)"
                    .into(),
            }),
            (_, Some(m)) => {
                for (path, message) in m.problems(self.embedder_dimensions()) {
                    out.push(ConfigProblem { path, message });
                }
            }
            (BackendKind::Embedded, None) => {}
        }
    }

    fn validate_llm(&self, out: &mut Vec<ConfigProblem>) {
        let llm = &self.llm;
        let mut bad = |path: String, message: String| out.push(ConfigProblem { path, message });
        if llm.generator == GeneratorKind::Openai && llm.providers.is_empty() {
            bad("llm.providers".into(), "needs at least one provider when llm.generator = \"openai\"".into());
        }
        if !(0.0..=2.0).contains(&llm.temperature) {
            bad("llm.temperature".into(), format!("must be between 0.0 and 2.0, not {}", llm.temperature));
        }
        if llm.max_tokens == 0 || llm.max_tokens > 32_768 {
            bad("llm.max_tokens".into(), format!("must be between 1 and 32768, not {}", llm.max_tokens));
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in llm.providers.iter().enumerate() {
            let at = |k: &str| format!("llm.providers[{i}].{k}");
            if p.name.trim().is_empty() {
                bad(at("name"), "must not be empty".into());
            } else if !names.insert(p.name.as_str()) {
                bad(at("name"), format!("{:?} is used by an earlier provider", p.name));
            }
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                bad(at("base_url"), format!("must start with http:// or https://, not {:?}", p.base_url));
            }
            if p.model.trim().is_empty() {
                bad(at("model"), "must not be empty".into());
            }
            if p.timeout_ms == 0 || p.connect_timeout_ms == 0 {
                bad(at("timeout_ms"), "timeouts must be greater than 0".into());
            }
            if p.backoff_base_ms > p.backoff_max_ms {
                bad(at("backoff_base_ms"), "must not exceed backoff_max_ms".into());
            }
            if p.price_in_per_mtok < 0.0 || p.price_out_per_mtok < 0.0 {
                bad(at("price_in_per_mtok"), "prices must not be negative".into());
            }
            if let Some(var) = &p.api_key_env {
                if p.api_key.is_some() {
                    bad(at("api_key_env"), "set api_key or api_key_env, not both".into());
                } else if std::env::var(var).map(|v| v.is_empty()).unwrap_or(true) {
                    bad(at("api_key_env"), format!("environment variable {var} is not set"));
                }
            }
        }
        if let Some(cheap) = &llm.cheap_provider {
            if !llm.providers.iter().any(|p| &p.name == cheap) {
                bad("llm.cheap_provider".into(), format!("names no provider in llm.providers: {cheap:?}"));
            }
        }
    }
}

/// Checks the channels' sections of a configuration: every problem, with its path.
pub type ChannelCheck<'a> = &'a dyn Fn(&ChannelSections) -> Vec<ConfigProblem>;

/// The check of a configuration without channels: every section left over is unknown.
fn no_channels(sections: &ChannelSections) -> Vec<ConfigProblem> {
    sections.names().into_iter().map(|name| unknown_top_level_key(name, &[])).collect()
}

/// `name` is neither one of the engine's keys nor one of `channels`.
pub fn unknown_top_level_key(name: &str, channels: &[&str]) -> ConfigProblem {
    let known: Vec<&str> = TOP_LEVEL_KEYS.iter().chain(channels).copied().collect();
    ConfigProblem { path: name.to_string(), message: format!("unknown key (known: {})", known.join(", ")) }
}

fn line_of(text: &str, byte: usize) -> usize {
    text.get(..byte).map(|t| t.matches('\n').count() + 1).unwrap_or(1)
}

/// Deserialises one top-level entry, recording unknown keys and type errors with their paths.
pub fn section<T: DeserializeOwned>(
    key: &str,
    value: toml::Value,
    problems: &mut Vec<ConfigProblem>,
    store: impl FnOnce(T),
) {
    let mut unknown = Vec::new();
    // An optional section shows up as a `?` step in the path; users never write it.
    let mut record = |p: serde_ignored::Path<'_>| unknown.push(p.to_string().replace("?.", ""));
    let result: Result<T, _> = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut record));
    for p in unknown {
        problems.push(ConfigProblem { path: format!("{key}.{p}"), message: "unknown key".into() });
    }
    match result {
        Ok(v) => store(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." || inner.is_empty() { key.to_string() } else { format!("{key}.{inner}") };
            let message = e.into_inner().to_string();
            problems.push(ConfigProblem { path, message: tidy_serde_message(&message) });
        }
    }
}

fn tidy_serde_message(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}

/// Lays `FRONTDESK_*` variables over the parsed file.
fn apply_env(table: &mut toml::Table, env: &[(String, String)], problems: &mut Vec<ConfigProblem>) {
    let mut vars: Vec<&(String, String)> = env.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
    vars.sort();
    for (name, raw) in vars {
        if ENV_NOT_KEYS.contains(&name.as_str()) {
            continue;
        }
        let rest = &name[ENV_PREFIX.len()..];
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(|p| p.is_empty()) {
            problems.push(ConfigProblem { path: name.clone(), message: "malformed variable name".into() });
            continue;
        }
        let value = parse_env_value(raw);
        let Some((last, parents)) = path.split_last() else { continue };
        if let Err(message) = insert_at(table, parents, last, value) {
            problems.push(ConfigProblem { path: name.clone(), message });
        }
    }
}

/// Inserts `value` at `parents.last`, creating sections on the way.
fn insert_at(table: &mut toml::Table, parents: &[String], last: &str, value: toml::Value) -> Result<(), String> {
    match parents.split_first() {
        None => {
            table.insert(last.to_string(), value);
            Ok(())
        }
        Some((first, rest)) => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => insert_at(t, rest, last, value),
                _ => Err(format!("`{first}` is not a section, so it cannot hold `{last}`")),
            }
        }
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_))) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Config::from_toml_with_env(text, &env, "test.toml")
    }

    fn problems(r: Result<Config, ConfigError>) -> Vec<String> {
        match r {
            Err(ConfigError::Invalid { problems, .. }) => problems.iter().map(|p| p.to_string()).collect(),
            Err(e) => vec![e.to_string()],
            Ok(_) => vec![],
        }
    }

    #[test]
    fn example_config_parses_and_validates() {
        let config = parse(EXAMPLE_CONFIG, &[]).unwrap();
        assert_eq!(config.retrieval.semantic_ratio, 0.5);
        assert_eq!(config.embedder.kind, EmbedderKind::Local);
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("", &[]).unwrap();
        assert_eq!(config.ingest.max_words, 180);
        assert_eq!(config.retrieval.candidates, 50);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let text = r#"
            colour = "blue"
            [retrieval]
            semantic_ratio = 3.0
            sematic = 1
            [ingest]
            max_words = "many"
            [embedder]
            batch_size = 0
        "#;
        let p = problems(parse(text, &[]));
        let joined = p.join("\n");
        assert!(joined.contains("colour: unknown key"), "{joined}");
        assert!(joined.contains("retrieval.sematic"), "{joined}");
        assert!(joined.contains("ingest.max_words"), "{joined}");
        assert!(joined.contains("embedder.batch_size"), "{joined}");
        assert!(joined.contains("retrieval.semantic_ratio: must be between"), "{joined}");
        assert_eq!(p.len(), 5, "{joined}");
    }

    #[test]
    fn semantic_checks_report_all_values() {
        let text = "[retrieval]\nsemantic_ratio = 1.5\ncandidates = 0\n[ingest]\nmax_words = 30\nmin_words = 40\n";
        let p = problems(parse(text, &[]));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("retrieval.semantic_ratio"));
    }

    #[test]
    fn env_overrides_file_values() {
        let text = "[retrieval]\nsemantic_ratio = 0.2\n";
        let config = parse(
            text,
            &[
                ("FRONTDESK_RETRIEVAL__SEMANTIC_RATIO", "0.7"),
                ("FRONTDESK_DATA_DIR", "/srv/fd"),
                ("FRONTDESK_CONFIG", "x"),
            ],
        )
        .unwrap();
        assert_eq!(config.retrieval.semantic_ratio, 0.7);
        assert_eq!(config.data_dir, PathBuf::from("/srv/fd"));
    }

    #[test]
    fn env_typos_are_problems_too() {
        let p = problems(parse("", &[("FRONTDESK_RETRIEVAL__RATIO", "0.7")]));
        assert!(p.iter().any(|s| s.contains("retrieval.ratio")), "{p:?}");
    }

    #[test]
    fn secrets_are_not_printed() {
        let text = "[embedder]\nkind = \"remote\"\n[embedder.remote]\nbase_url = \"https://e.example/v1\"\nmodel = \"m\"\ndimensions = 8\n";
        let config = parse(text, &[("FRONTDESK_EMBEDDER__REMOTE__API_KEY", "sk-very-secret")]).unwrap();
        let remote = config.embedder.remote.clone().unwrap();
        assert_eq!(remote.api_key.as_ref().unwrap().expose_secret(), "sk-very-secret");
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
    }

    #[test]
    fn invalid_toml_names_the_line() {
        let p = problems(parse("a = 1\n[retrieval\n", &[]));
        assert!(p[0].contains("line 2"), "{p:?}");
    }

    #[test]
    fn meilisearch_backend_reads_its_section_and_keeps_the_key_secret() {
        let text = "[retrieval]\nbackend = \"meilisearch\"\n[retrieval.meilisearch]\nurl = \"http://meili:7700\"\nindex = \"kb\"\n";
        let config = parse(text, &[("FRONTDESK_RETRIEVAL__MEILISEARCH__MASTER_KEY", "m-very-secret")]).unwrap();
        assert_eq!(config.retrieval.backend, BackendKind::Meilisearch);
        let m = config.retrieval.meilisearch.clone().unwrap();
        assert_eq!((m.url.as_str(), m.index.as_str()), ("http://meili:7700", "kb"));
        assert_eq!(m.master_key.as_ref().unwrap().expose_secret(), "m-very-secret");
        assert!(!format!("{config:?}").contains("m-very-secret"));
    }

    #[test]
    fn meilisearch_problems_are_reported_with_the_others() {
        let p = problems(parse("[retrieval]\nbackend = \"meilisearch\"\n", &[]));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("retrieval.meilisearch:"), "{p:?}");
        let text = "[retrieval]\nbackend = \"meilisearch\"\n[retrieval.meilisearch]\nurl = \"meili:7700\"\nbatch = 5\n\
                    [retrieval.meilisearch.embedder]\ndimensions = 768\n[ingest]\nmax_words = 5\nmin_words = 2\n";
        let p = problems(parse(text, &[]));
        let joined = p.join("\n");
        for needle in [
            "retrieval.meilisearch.batch: unknown key",
            "retrieval.meilisearch.url: must start with http",
            "retrieval.meilisearch.master_key: is required",
            "retrieval.meilisearch.embedder.dimensions: is 768",
            "ingest.max_words",
        ] {
            assert!(joined.contains(needle), "{needle} not in {joined}");
        }
        assert_eq!(p.len(), 5, "{joined}");
    }

    #[test]
    fn remote_embedder_requires_its_section() {
        let p = problems(parse("[embedder]\nkind = \"remote\"\n", &[]));
        assert!(p.iter().any(|s| s.starts_with("embedder.remote")), "{p:?}");
    }
}
