//! Reranking: a second, closer look at the chunks retrieval found, before the answer is written.
//!
//! Hybrid search is fast because it scores the question and each chunk separately; it is also
//! why a chunk that merely shares words with the question can outrank the one that answers it.
//! A reranker reads the question together with each retrieved chunk and scores how well the chunk
//! answers it. The engine retrieves `[rerank] candidates` chunks, reranks them, and writes the
//! answer from the best few — so a better order means better answers and fewer handoffs.
//!
//! Every reranker implements [`Reranker`]; the kinds are a closed set chosen by `[rerank] kind`:
//! - `features` ([`features`]): a fitted ranker over retrieval evidence, local and instant (the
//!   default; the engine builds it from the confidence model file, [`build`] does not).
//! - `http` ([`http`]): a cross-encoder served over the rerank API that Hugging Face
//!   text-embeddings-inference, Cohere and Jina each offer in their own shape.
//! - `cross_encoder` ([`cross_encoder`]): a BERT cross-encoder run in-process on the CPU.
//! - `none`: retrieval order as it is.
//!
//! **When reranking fails** (a service down or slow, a broken model), [`rerank`] returns the
//! error and leaves the hits it was given untouched: the caller keeps the retrieval order, notes
//! [`RerankError::code`] in the trace and answers anyway. A reranker is an improvement, never a
//! reason for a customer to wait for a person. [`RerankError::fault`] says whether an operator has
//! to fix something (configuration, model files, a refused key) or the service is having trouble.
//!
//! Scores are comparable only within one reranker: a cross-encoder's logit and a hosted API's
//! relevance in [0, 1] are different scales. They order hits; they are not a confidence.

pub mod config;
pub mod cross_encoder;
pub mod features;
pub mod http;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::retrieval::Hit;
use config::{RerankConfig, RerankKind};

/// Scores retrieved chunks against a question.
#[async_trait]
pub trait Reranker: Send + Sync {
    /// Identifies the reranker and its model in traces and eval reports, e.g. `features@v1`,
    /// `http:tei/BAAI/bge-reranker-base`, `cross-encoder:/models/ms-marco-MiniLM-L6-v2`.
    fn name(&self) -> String;

    /// Scores each hit for the question: one score per hit, in the order of `hits`, higher for
    /// more relevant. Implementations return only finite scores.
    async fn score(&self, question: &str, hits: &[Hit]) -> Result<Vec<f32>, RerankError>;
}

/// A hit in its reranked place.
#[derive(Debug, Clone, PartialEq)]
pub struct Reranked {
    pub hit: Hit,
    /// The reranker's score for this hit.
    pub score: f32,
    /// Where retrieval had put it (0 = retrieval's best), for traces: "moved from 7 to 1".
    pub retrieval_rank: usize,
}

/// Reorders `hits` (given in retrieval order) by the reranker's scores, best first, and keeps at
/// most `keep`. Equal scores keep their retrieval order. No hits means no call to the reranker.
///
/// On error nothing is reordered: `hits` is borrowed, so the caller still holds them in retrieval
/// order and falls back to `hits[..keep]`.
pub async fn rerank(
    reranker: &dyn Reranker,
    question: &str,
    hits: &[Hit],
    keep: usize,
) -> Result<Vec<Reranked>, RerankError> {
    if hits.is_empty() || keep == 0 {
        return Ok(Vec::new());
    }
    let scores = reranker.score(question, hits).await?;
    if scores.len() != hits.len() {
        return Err(RerankError::Internal {
            reranker: reranker.name(),
            message: format!("returned {} scores for {} hits", scores.len(), hits.len()),
        });
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(RerankError::Internal {
            reranker: reranker.name(),
            message: format!("returned a score that is not a finite number for hit {i}"),
        });
    }
    let mut order: Vec<usize> = (0..hits.len()).collect();
    // A stable sort: ties stay in retrieval order. Scores are finite, so the comparison is total.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    Ok(order
        .into_iter()
        .take(keep)
        .map(|i| Reranked { hit: hits[i].clone(), score: scores[i], retrieval_rank: i })
        .collect())
}

/// The text a reranker reads for a hit: its title, its heading path and its text, one per line.
/// A first heading that repeats the title is left out.
pub fn passage_text(hit: &Hit) -> String {
    let title = hit.title.trim();
    let mut headings: Vec<&str> = hit.heading_path.iter().map(|h| h.trim()).filter(|h| !h.is_empty()).collect();
    if headings.first().is_some_and(|h| h.eq_ignore_ascii_case(title)) {
        headings.remove(0);
    }
    let headings = headings.join(" > ");
    [title, headings.as_str(), hit.text.trim()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Who has to act on a [`RerankError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The configuration or the model files are wrong, or the service refused them (a bad key, an
    /// unknown model): an operator has to change something.
    Config,
    /// The service is down, slow, overloaded or answered nonsense: it may pass by itself.
    Service,
    /// A fault in frontdesk or the local model run.
    Internal,
}

/// Why reranking failed. The `Display` text is safe to log: it never holds an API key, a question
/// or a passage, and quotes at most a short excerpt of a service's error body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RerankError {
    /// The configuration cannot produce this reranker (an unset key variable, an unusable URL).
    #[error("{reranker} cannot be set up: {message}")]
    Config { reranker: String, message: String },
    /// The model directory is missing a file, or a file does not hold what a BERT cross-encoder
    /// needs; the message names the file or tensor.
    #[error("the reranker model in {dir} cannot be used: {message}")]
    ModelInvalid { dir: String, message: String },
    /// No connection could be made (refused, DNS, TLS).
    #[error("cannot reach {reranker}: {message}")]
    Unreachable { reranker: String, message: String },
    #[error("{reranker} did not answer within {after:?}")]
    Timeout { reranker: String, after: Duration },
    /// HTTP 429 after the retries.
    #[error("{reranker} is rate limiting: {excerpt}")]
    RateLimited { reranker: String, excerpt: String },
    /// HTTP 5xx after the retries.
    #[error("{reranker} failed with HTTP {status}: {excerpt}")]
    ServerError { reranker: String, status: u16, excerpt: String },
    /// HTTP 4xx other than 429: a wrong key, model, URL, or more documents than the service takes.
    #[error("{reranker} refused the request with HTTP {status}: {excerpt}")]
    Rejected { reranker: String, status: u16, excerpt: String },
    /// The service answered 2xx with something that is not a usable ranking.
    #[error("{reranker} sent a response that cannot be used: {message}")]
    BadResponse { reranker: String, message: String },
    #[error("{reranker} failed: {message}")]
    Internal { reranker: String, message: String },
}

impl RerankError {
    /// A stable snake_case code for traces, eval reports and logs.
    pub fn code(&self) -> &'static str {
        match self {
            RerankError::Config { .. } => "rerank_config_invalid",
            RerankError::ModelInvalid { .. } => "rerank_model_invalid",
            RerankError::Unreachable { .. } => "rerank_unreachable",
            RerankError::Timeout { .. } => "rerank_timeout",
            RerankError::RateLimited { .. } => "rerank_rate_limited",
            RerankError::ServerError { .. } => "rerank_server_error",
            RerankError::Rejected { .. } => "rerank_rejected",
            RerankError::BadResponse { .. } => "rerank_bad_response",
            RerankError::Internal { .. } => "rerank_internal",
        }
    }

    /// Who has to act on it.
    pub fn fault(&self) -> Fault {
        match self {
            RerankError::Config { .. } | RerankError::ModelInvalid { .. } | RerankError::Rejected { .. } => {
                Fault::Config
            }
            RerankError::Unreachable { .. }
            | RerankError::Timeout { .. }
            | RerankError::RateLimited { .. }
            | RerankError::ServerError { .. }
            | RerankError::BadResponse { .. } => Fault::Service,
            RerankError::Internal { .. } => Fault::Internal,
        }
    }
}

/// Builds the reranker `[rerank]` asks for, for the kinds this module provides: `http` and
/// `cross_encoder`. Returns `None` for `features` (built by the engine from its fitted ranker) and
/// for `none`. A relative `model_dir` is taken inside `models_dir`. `client` is the process's
/// shared HTTP client (`llm::openai::build_client`); each request gets its own timeout.
///
/// A cross-encoder is loaded here, on the calling thread, so a broken model stops start-up with
/// `rerank_model_invalid` instead of failing every question later.
pub fn build(
    config: &RerankConfig,
    models_dir: &Path,
    client: &reqwest::Client,
) -> Result<Option<Arc<dyn Reranker>>, RerankError> {
    match config.kind {
        RerankKind::Features | RerankKind::None => Ok(None),
        RerankKind::Http => {
            let settings = http::HttpSettings::from_config(config)?;
            Ok(Some(Arc::new(http::HttpReranker::new(settings, client.clone())?)))
        }
        RerankKind::CrossEncoder => {
            let Some(dir) = &config.model_dir else {
                return Err(RerankError::Config {
                    reranker: "cross-encoder".into(),
                    message: "rerank.model_dir is not set".into(),
                });
            };
            let dir = if dir.is_absolute() { dir.clone() } else { models_dir.join(dir) };
            let options =
                cross_encoder::CrossEncoderOptions { max_length: config.max_length, batch_size: config.batch_size };
            Ok(Some(Arc::new(cross_encoder::CrossEncoderReranker::load(&dir, options)?)))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::document::SourceKind;

    pub(crate) fn hit(id: &str, title: &str, headings: &[&str], text: &str) -> Hit {
        Hit {
            doc_id: format!("doc-{id}"),
            chunk_id: id.to_string(),
            title: title.to_string(),
            url: None,
            heading_path: headings.iter().map(|h| h.to_string()).collect(),
            text: text.to_string(),
            source_kind: SourceKind::Doc,
            product: None,
            updated_at: None,
            keyword_score: 0.0,
            keyword_norm: 0.0,
            semantic_score: 0.0,
            fused_score: 0.5,
        }
    }

    /// Scores hits from a fixed table keyed by chunk id; counts calls.
    struct Fixed {
        scores: Vec<(&'static str, f32)>,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl Reranker for Fixed {
        fn name(&self) -> String {
            "fixed".into()
        }
        async fn score(&self, _question: &str, hits: &[Hit]) -> Result<Vec<f32>, RerankError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(hits
                .iter()
                .map(|h| self.scores.iter().find(|(id, _)| *id == h.chunk_id).map_or(f32::NAN, |(_, s)| *s))
                .collect())
        }
    }

    fn fixed(scores: Vec<(&'static str, f32)>) -> Fixed {
        Fixed { scores, calls: Default::default() }
    }

    fn ids(ranked: &[Reranked]) -> Vec<&str> {
        ranked.iter().map(|r| r.hit.chunk_id.as_str()).collect()
    }

    #[tokio::test]
    async fn hits_are_ordered_by_score_and_cut_to_keep() {
        let hits =
            vec![hit("a", "A", &[], "a"), hit("b", "B", &[], "b"), hit("c", "C", &[], "c"), hit("d", "D", &[], "d")];
        let r = fixed(vec![("a", 0.1), ("b", 2.0), ("c", -1.0), ("d", 0.7)]);
        let ranked = rerank(&r, "q", &hits, 3).await.unwrap();
        assert_eq!(ids(&ranked), ["b", "d", "a"]);
        assert_eq!(ranked.iter().map(|r| r.score).collect::<Vec<_>>(), [2.0, 0.7, 0.1]);
        assert_eq!(ranked.iter().map(|r| r.retrieval_rank).collect::<Vec<_>>(), [1, 3, 0]);
    }

    #[tokio::test]
    async fn equal_scores_keep_the_retrieval_order() {
        let hits = vec![hit("a", "A", &[], "a"), hit("b", "B", &[], "b"), hit("c", "C", &[], "c")];
        let r = fixed(vec![("a", 1.0), ("b", 3.0), ("c", 1.0)]);
        assert_eq!(ids(&rerank(&r, "q", &hits, 10).await.unwrap()), ["b", "a", "c"]);
    }

    #[tokio::test]
    async fn no_hits_or_nothing_to_keep_calls_nothing() {
        let r = fixed(vec![("a", 1.0)]);
        assert!(rerank(&r, "q", &[], 5).await.unwrap().is_empty());
        assert!(rerank(&r, "q", &[hit("a", "A", &[], "a")], 0).await.unwrap().is_empty());
        assert_eq!(r.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_non_finite_score_is_an_error_and_the_hits_stay_with_the_caller() {
        let hits = vec![hit("a", "A", &[], "a"), hit("unknown", "U", &[], "u")];
        let r = fixed(vec![("a", 1.0)]);
        let err = rerank(&r, "q", &hits, 2).await.unwrap_err();
        assert_eq!(err.code(), "rerank_internal");
        assert_eq!(err.fault(), Fault::Internal);
        assert!(err.to_string().contains("hit 1"), "{err}");
        // The fallback the engine takes: retrieval order, cut to `keep`.
        assert_eq!(hits[..2].iter().map(|h| h.chunk_id.as_str()).collect::<Vec<_>>(), ["a", "unknown"]);
    }

    #[tokio::test]
    async fn a_wrong_number_of_scores_is_an_error() {
        struct Short;
        #[async_trait]
        impl Reranker for Short {
            fn name(&self) -> String {
                "short".into()
            }
            async fn score(&self, _q: &str, _hits: &[Hit]) -> Result<Vec<f32>, RerankError> {
                Ok(vec![1.0])
            }
        }
        let hits = vec![hit("a", "A", &[], "a"), hit("b", "B", &[], "b")];
        let err = rerank(&Short, "q", &hits, 2).await.unwrap_err();
        assert!(err.to_string().contains("1 scores for 2 hits"), "{err}");
    }

    #[test]
    fn passage_text_is_title_headings_and_text() {
        let h = hit("a", "Billing", &["Billing", "Refunds", "Annual plans"], " Refunds take 5 days. ");
        assert_eq!(passage_text(&h), "Billing\nRefunds > Annual plans\nRefunds take 5 days.");
        let h = hit("b", "Reset your password", &[], "Click Forgot password.");
        assert_eq!(passage_text(&h), "Reset your password\nClick Forgot password.");
        let h = hit("c", "", &["", "Setup"], "Text");
        assert_eq!(passage_text(&h), "Setup\nText");
    }

    #[test]
    fn every_error_has_a_distinct_stable_code() {
        let r = || "r".to_string();
        let errors = [
            RerankError::Config { reranker: r(), message: r() },
            RerankError::ModelInvalid { dir: r(), message: r() },
            RerankError::Unreachable { reranker: r(), message: r() },
            RerankError::Timeout { reranker: r(), after: Duration::from_secs(1) },
            RerankError::RateLimited { reranker: r(), excerpt: r() },
            RerankError::ServerError { reranker: r(), status: 503, excerpt: r() },
            RerankError::Rejected { reranker: r(), status: 401, excerpt: r() },
            RerankError::BadResponse { reranker: r(), message: r() },
            RerankError::Internal { reranker: r(), message: r() },
        ];
        let codes: std::collections::HashSet<&str> = errors.iter().map(RerankError::code).collect();
        assert_eq!(codes.len(), errors.len());
        assert!(codes
            .iter()
            .all(|c| c.starts_with("rerank_") && c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
        let config: Vec<&str> = errors.iter().filter(|e| e.fault() == Fault::Config).map(RerankError::code).collect();
        assert_eq!(config, ["rerank_config_invalid", "rerank_model_invalid", "rerank_rejected"]);
    }

    #[test]
    fn features_and_none_build_nothing_here() {
        let client = reqwest::Client::new();
        for kind in [RerankKind::Features, RerankKind::None] {
            let config = RerankConfig { kind, ..RerankConfig::default() };
            assert!(build(&config, Path::new("/nonexistent"), &client).unwrap().is_none());
        }
    }

    #[test]
    fn a_relative_model_dir_is_looked_up_in_the_models_dir() {
        let models = tempfile::tempdir().unwrap();
        let config = RerankConfig {
            kind: RerankKind::CrossEncoder,
            model_dir: Some("ms-marco-MiniLM-L6-v2".into()),
            ..RerankConfig::default()
        };
        let err = build(&config, models.path(), &reqwest::Client::new()).err().unwrap();
        assert_eq!(err.code(), "rerank_model_invalid");
        let expected = models.path().join("ms-marco-MiniLM-L6-v2").display().to_string();
        assert!(err.to_string().contains(&expected), "{err}");
    }
}
