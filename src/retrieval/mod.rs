//! Retrieval: finding the chunks that answer a question.
//!
//! Every backend implements `Retriever` and is held to the same contract tests. A
//! `SearchRequest` can only be built with a `WorkspaceId`, so a search that forgets the
//! workspace does not compile: one tenant never sees another's knowledge.
//!
//! Modes mirror Meilisearch's hybrid search so switching backends keeps behaviour:
//! `semantic_ratio` 0.0 is keyword only, 1.0 semantic only, values between weigh the two.

pub mod embedded;
pub mod fusion;
pub mod keyword;
pub mod meili;
pub mod vectors;

use crate::channel::WorkspaceId;
use crate::document::{Chunk, SourceKind};
use async_trait::async_trait;
use serde::Serialize;

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Keyword and semantic evidence fused by `semantic_ratio`.
    Hybrid,
    /// BM25 over title, headings and text only.
    Keyword,
    /// Vector similarity only.
    Vector,
}

/// Which chunks may be returned, beyond the mandatory workspace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Any of these products (empty: any product, including chunks with none).
    pub products: Vec<String>,
    pub source_kind: Option<SourceKind>,
    /// Unix seconds, inclusive. Chunks without a date pass only when no bound is set.
    pub updated_after: Option<i64>,
    pub updated_before: Option<i64>,
}

impl Filters {
    /// True when a chunk with this metadata passes the filters.
    pub fn admits(&self, product: Option<&str>, kind: SourceKind, updated_at: Option<i64>) -> bool {
        if !self.products.is_empty() && !product.is_some_and(|p| self.products.iter().any(|q| q == p)) {
            return false;
        }
        if self.source_kind.is_some_and(|k| k != kind) {
            return false;
        }
        if self.updated_after.is_some() || self.updated_before.is_some() {
            let Some(t) = updated_at else { return false };
            if self.updated_after.is_some_and(|a| t < a) || self.updated_before.is_some_and(|b| t > b) {
                return false;
            }
        }
        true
    }
}

/// A search, always scoped to one workspace.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    workspace: WorkspaceId,
    pub query: String,
    /// The query's embedding; required for `Hybrid` and `Vector`.
    pub vector: Option<Vec<f32>>,
    pub mode: SearchMode,
    pub semantic_ratio: f32,
    pub limit: usize,
    /// Candidates each list contributes before fusion.
    pub candidates: usize,
    pub filters: Filters,
}

impl SearchRequest {
    pub fn new(workspace: WorkspaceId, query: impl Into<String>) -> Self {
        SearchRequest {
            workspace,
            query: query.into(),
            vector: None,
            mode: SearchMode::Hybrid,
            semantic_ratio: 0.5,
            limit: 10,
            candidates: 50,
            filters: Filters::default(),
        }
    }

    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// The weight of semantic evidence actually used, given the mode.
    pub fn effective_ratio(&self) -> f32 {
        match self.mode {
            SearchMode::Hybrid => self.semantic_ratio.clamp(0.0, 1.0),
            SearchMode::Keyword => 0.0,
            SearchMode::Vector => 1.0,
        }
    }
}

/// One retrieved chunk with the evidence that ranked it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub doc_id: String,
    pub chunk_id: String,
    pub title: String,
    pub url: Option<String>,
    pub heading_path: Vec<String>,
    pub text: String,
    pub source_kind: SourceKind,
    pub product: Option<String>,
    pub updated_at: Option<i64>,
    /// Raw BM25 score (0 when the keyword search did not find it).
    pub keyword_score: f32,
    /// Keyword score scaled to [0, 1] against the best keyword hit of this query.
    pub keyword_norm: f32,
    /// Cosine similarity between query and chunk vectors (0 in keyword-only mode without a vector).
    pub semantic_score: f32,
    /// The ranking score in [0, 1].
    pub fused_score: f32,
}

/// A chunk with its vector, ready to index.
#[derive(Debug, Clone)]
pub struct IndexedChunk {
    pub chunk: Chunk,
    pub vector: Vec<f32>,
}

/// Why a retrieval operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    #[error("this search needs the query's vector (mode {0:?})")]
    MissingVector(SearchMode),
    #[error("vector has {got} dimensions, the index holds {expected}")]
    Dimensions { expected: usize, got: usize },
    /// The keyword index (tantivy) failed; the source is its own error.
    #[error("keyword index error: {0}")]
    Keyword(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the retrieval backend is unavailable: {0}")]
    Unavailable(String),
    /// The backend refused an operation and said why (e.g. Meilisearch's `invalid_vector_dimensions`).
    #[error("{message}")]
    Backend { code: String, message: String },
}

impl RetrievalError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            RetrievalError::MissingVector(..) => "retrieval_vector_missing",
            RetrievalError::Dimensions { .. } => "retrieval_dimensions_mismatch",
            RetrievalError::Keyword(..) => "keyword_index_failed",
            RetrievalError::Store(e) => e.code(),
            RetrievalError::Unavailable(..) => "retrieval_unavailable",
            RetrievalError::Backend { .. } => "retrieval_backend_error",
        }
    }
}

/// How the words of a query occur in a workspace's knowledge: the evidence that a question is
/// about something the knowledge base covers at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermStats {
    /// Chunks in the workspace.
    pub chunks: u64,
    pub terms: Vec<TermInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermInfo {
    /// The analysed term (lower-cased, stemmed).
    pub term: String,
    /// Chunks of the workspace that contain it.
    pub chunk_freq: u64,
    /// Whether one of the given top hits contains it.
    pub in_top: bool,
    /// Written like a name, a code or an acronym in the query (`PayPal`, `TH-4012`, `SLA`):
    /// such a word missing from the knowledge says far more than a missing everyday word.
    pub distinctive: bool,
}

/// The analysed terms found in the top hits, and those of the query's distinctive words (names,
/// codes, acronyms): the sets `TermStats` marks each query term against. `terms` is the backend's
/// own analyser, so the sets match the terms it counts.
pub fn term_sets(
    query: &str,
    top: &[Hit],
    terms: impl Fn(&str) -> Vec<String>,
) -> (std::collections::HashSet<String>, std::collections::HashSet<String>) {
    let mut in_top = std::collections::HashSet::new();
    for h in top {
        in_top.extend(terms(&h.title));
        in_top.extend(terms(&h.heading_path.join(" ")));
        in_top.extend(terms(&h.text));
    }
    let mut distinctive = std::collections::HashSet::new();
    let mut starts_sentence = true;
    for word in query.split_whitespace() {
        if is_distinctive(word, starts_sentence) {
            distinctive.extend(terms(word));
        }
        starts_sentence = word.ends_with(['.', '?', '!', ':']);
    }
    (in_top, distinctive)
}

/// True for a word written like a name, code or acronym: a capital letter after the first
/// character, a digit, or a capitalised word that does not start a sentence.
pub fn is_distinctive(word: &str, starts_sentence: bool) -> bool {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric());
    if w.len() < 2 {
        return false;
    }
    let mut chars = w.chars();
    let first_upper = chars.next().is_some_and(char::is_uppercase);
    w.chars().any(|c| c.is_ascii_digit())
        || chars.any(char::is_uppercase)
        || (first_upper && !starts_sentence && w != "I")
}

impl TermStats {
    /// Inverse document frequency, smoothed; a term found nowhere gets the highest weight.
    pub fn idf(&self, chunk_freq: u64) -> f32 {
        ((1.0 + self.chunks as f32) / (0.5 + chunk_freq as f32)).ln().max(0.0) + 0.1
    }

    /// IDF-weighted share of the query's terms that the top hits contain.
    pub fn weighted_coverage(&self) -> f32 {
        let total: f32 = self.terms.iter().map(|t| self.idf(t.chunk_freq)).sum();
        if total <= 0.0 {
            return 0.0;
        }
        self.terms.iter().filter(|t| t.in_top).map(|t| self.idf(t.chunk_freq)).sum::<f32>() / total
    }

    /// Query terms that occur nowhere in the workspace's knowledge.
    pub fn unknown(&self) -> Vec<&str> {
        self.terms.iter().filter(|t| t.chunk_freq == 0).map(|t| t.term.as_str()).collect()
    }

    /// Distinctive query terms (names, codes, acronyms) that occur nowhere in the knowledge.
    pub fn unknown_distinctive(&self) -> Vec<&str> {
        self.terms.iter().filter(|t| t.chunk_freq == 0 && t.distinctive).map(|t| t.term.as_str()).collect()
    }
}

/// A retrieval backend.
#[async_trait]
pub trait Retriever: Send + Sync {
    /// A short name ("embedded", "meilisearch").
    fn name(&self) -> &'static str;
    /// Adds or replaces chunks (by `chunk_id`) in a workspace. Visible after `commit`.
    async fn upsert(&self, workspace: &WorkspaceId, chunks: Vec<IndexedChunk>) -> Result<(), RetrievalError>;
    /// Removes chunks by id. Visible after `commit`.
    async fn delete(&self, workspace: &WorkspaceId, chunk_ids: &[String]) -> Result<(), RetrievalError>;
    /// Makes all changes durable and searchable.
    async fn commit(&self) -> Result<(), RetrievalError>;
    /// Ranked hits, best first, at most `request.limit`.
    async fn search(&self, request: &SearchRequest) -> Result<Vec<Hit>, RetrievalError>;
    /// Number of chunks a workspace holds.
    async fn count(&self, workspace: &WorkspaceId) -> Result<usize, RetrievalError>;
    /// How the query's terms occur in the workspace and in `top`; `None` when the backend
    /// cannot tell (confidence then relies on the other signals).
    async fn term_stats(
        &self,
        _workspace: &WorkspaceId,
        _query: &str,
        _top: &[Hit],
    ) -> Result<Option<TermStats>, RetrievalError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::is_distinctive;

    #[test]
    fn names_codes_and_acronyms_are_distinctive() {
        for (w, start) in [
            ("PayPal", false),
            ("TH-4012", true),
            ("SLA", false),
            ("Huawei", false),
            ("v3", false),
            ("FreshBooks?", false),
        ] {
            assert!(is_distinctive(w, start), "{w}");
        }
        for (w, start) in [("How", true), ("refund", false), ("I", false), ("a", false), ("Can", true)] {
            assert!(!is_distinctive(w, start), "{w}");
        }
    }
}
