//! The knowledge base: one store, one retrieval backend and one embedder, used together.
//!
//! Callers (the CLI, the engine, the eval harness) go through here so a query is always
//! embedded by the same model that embedded the chunks, and a search is always scoped to a
//! workspace.

use super::chunk::ChunkOptions;
use super::ingest::{IngestError, IngestOptions, IngestSource, IngestSummary, Ingestor, Progress};
use crate::channel::WorkspaceId;
use crate::embed::{EmbedError, Embedder};
use crate::retrieval::{Filters, Hit, RetrievalError, Retriever, SearchMode, SearchRequest};
use crate::store::Store;
use std::sync::Arc;

/// Search settings taken from `[retrieval]`.
#[derive(Debug, Clone, Copy)]
pub struct SearchSettings {
    pub semantic_ratio: f32,
    pub candidates: usize,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Retrieval(#[from] RetrievalError),
}

impl SearchError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            SearchError::Embed(e) => e.code(),
            SearchError::Retrieval(e) => e.code(),
        }
    }
}

pub struct KnowledgeBase {
    pub store: Store,
    pub retriever: Arc<dyn Retriever>,
    pub embedder: Arc<dyn Embedder>,
    pub search: SearchSettings,
    pub chunking: ChunkOptions,
    pub batch_size: usize,
}

impl KnowledgeBase {
    /// Ingests docs or tickets into a workspace.
    pub async fn ingest(
        &self,
        source: &IngestSource,
        workspace: WorkspaceId,
        product: Option<String>,
        prune: bool,
        progress: &dyn Progress,
    ) -> Result<IngestSummary, IngestError> {
        let options = IngestOptions { workspace, product, prune, chunking: self.chunking, batch_size: self.batch_size };
        let ingestor =
            Ingestor { store: &self.store, retriever: self.retriever.as_ref(), embedder: self.embedder.as_ref() };
        ingestor.run(source, &options, progress).await
    }

    /// A request with the configured ratio and candidate count.
    pub fn request(
        &self,
        workspace: WorkspaceId,
        query: &str,
        mode: SearchMode,
        limit: usize,
        filters: Filters,
    ) -> SearchRequest {
        let mut r = SearchRequest::new(workspace, query);
        r.mode = mode;
        r.limit = limit;
        r.semantic_ratio = self.search.semantic_ratio;
        r.candidates = self.search.candidates;
        r.filters = filters;
        r
    }

    /// Embeds the query (unless keyword-only) and searches.
    pub async fn search(&self, mut request: SearchRequest) -> Result<Vec<Hit>, SearchError> {
        if request.vector.is_none() && request.effective_ratio() > 0.0 {
            request.vector = Some(self.embed_query(&request.query).await?);
        }
        Ok(self.retriever.search(&request).await?)
    }

    /// The query's vector.
    pub async fn embed_query(&self, query: &str) -> Result<Vec<f32>, EmbedError> {
        let mut v = self.embedder.embed(&[query.to_string()]).await?;
        v.pop().ok_or(EmbedError::Count { texts: 1, vectors: 0 })
    }
}
