//! The embedded backend: everything in-process, no server.
//!
//! - chunk records (text, metadata, vector) in the sled tree `embedded_chunks`;
//! - a BM25 keyword index (tantivy) under `data_dir/index/keyword`;
//! - per-workspace in-memory vector shards, loaded from sled on a workspace's first search.
//!
//! Writes go to sled and tantivy together and become visible on `commit`. The catalogue that
//! ingest keeps is updated only after a commit succeeds, so an interrupted ingest is simply
//! repeated by the next run.

use super::fusion::{fuse, Evidence};
use super::keyword::KeywordIndex;
use super::vectors::{RowMeta, VectorShard};
use super::{Hit, IndexedChunk, RetrievalError, Retriever, SearchRequest, TermInfo, TermStats};
use crate::channel::WorkspaceId;
use crate::document::Chunk;
use crate::store::{key2, prefix1, Store, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

#[derive(Serialize, Deserialize)]
struct StoredChunk {
    chunk: Chunk,
    vector: Vec<f32>,
}

type Shard = Arc<RwLock<VectorShard>>;

/// Keyword + vector retrieval inside the frontdesk process.
pub struct EmbeddedRetriever {
    keyword: KeywordIndex,
    records: sled::Tree,
    shards: RwLock<HashMap<String, Shard>>,
    dims: usize,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> RetrievalError {
    RetrievalError::Store(StoreError::Corrupt { what: what.to_string(), message: e.to_string() })
}

fn poisoned() -> RetrievalError {
    RetrievalError::Unavailable("an earlier failure left the vector index unusable; restart frontdesk".into())
}

fn meta_of(chunk: &Chunk) -> RowMeta {
    RowMeta {
        chunk_id: chunk.chunk_id.clone(),
        product: chunk.product.clone(),
        source_kind: chunk.source_kind,
        updated_at: chunk.updated_at,
    }
}

impl EmbeddedRetriever {
    /// Opens the backend under `data_dir` with vectors of `dims` dimensions.
    pub fn open(data_dir: &Path, store: &Store, dims: usize) -> Result<Self, RetrievalError> {
        let keyword = KeywordIndex::open(&data_dir.join("index").join("keyword"))?;
        Self::with_parts(keyword, store, dims)
    }

    /// A backend whose keyword index lives in memory (tests, benchmarks).
    pub fn in_memory(store: &Store, dims: usize) -> Result<Self, RetrievalError> {
        Self::with_parts(KeywordIndex::in_memory()?, store, dims)
    }

    fn with_parts(keyword: KeywordIndex, store: &Store, dims: usize) -> Result<Self, RetrievalError> {
        let records = store.db().open_tree("embedded_chunks").map_err(StoreError::from)?;
        Ok(EmbeddedRetriever { keyword, records, shards: RwLock::new(HashMap::new()), dims })
    }

    /// The workspace's vector shard, loading it from sled the first time.
    fn shard(&self, workspace: &str) -> Result<Shard, RetrievalError> {
        if let Some(s) = self.shards.read().map_err(|_| poisoned())?.get(workspace) {
            return Ok(s.clone());
        }
        let mut shard = VectorShard::new(self.dims);
        for item in self.records.scan_prefix(prefix1(workspace)) {
            let (_, bytes) = item.map_err(StoreError::from)?;
            let stored: StoredChunk = bincode::deserialize(&bytes).map_err(|e| corrupt("chunk record", e))?;
            if stored.vector.len() != self.dims {
                return Err(RetrievalError::Dimensions { expected: self.dims, got: stored.vector.len() });
            }
            shard.upsert(meta_of(&stored.chunk), &stored.vector);
        }
        let mut map = self.shards.write().map_err(|_| poisoned())?;
        Ok(map.entry(workspace.to_string()).or_insert_with(|| Arc::new(RwLock::new(shard))).clone())
    }

    fn load_chunk(&self, workspace: &str, chunk_id: &str) -> Result<Option<Chunk>, RetrievalError> {
        match self.records.get(key2(workspace, chunk_id)).map_err(StoreError::from)? {
            Some(bytes) => {
                let stored: StoredChunk = bincode::deserialize(&bytes).map_err(|e| corrupt("chunk record", e))?;
                Ok(Some(stored.chunk))
            }
            None => Ok(None),
        }
    }

    /// Runs a search synchronously (the async trait method wraps this).
    pub fn search_sync(&self, request: &SearchRequest) -> Result<Vec<Hit>, RetrievalError> {
        let ws = request.workspace().as_str();
        let ratio = request.effective_ratio();
        let vector = request.vector.as_deref();
        if ratio > 0.0 && vector.is_none() {
            return Err(RetrievalError::MissingVector(request.mode));
        }
        if let Some(v) = vector {
            if v.len() != self.dims {
                return Err(RetrievalError::Dimensions { expected: self.dims, got: v.len() });
            }
        }
        let shard = self.shard(ws)?;
        let shard = shard.read().map_err(|_| poisoned())?;
        let filters = &request.filters;
        let candidates = request.candidates.max(request.limit);

        let mut order: Vec<String> = Vec::new();
        let mut evidence: HashMap<String, Evidence> = HashMap::new();
        if ratio < 1.0 {
            // Ask for more than we keep so that BM25 scores exist for most semantic candidates too.
            for (chunk_id, score) in self.keyword.search(ws, &request.query, filters, candidates * 2)? {
                let Some(meta) = shard.meta(&chunk_id) else { continue };
                if !filters.admits(meta.product.as_deref(), meta.source_kind, meta.updated_at) {
                    continue;
                }
                let semantic = vector.and_then(|v| shard.similarity(v, &chunk_id));
                order.push(chunk_id.clone());
                evidence.insert(chunk_id, Evidence { keyword: Some(score), semantic });
            }
        }
        if ratio > 0.0 {
            if let Some(v) = vector {
                for (i, sim) in shard.top_k(v, candidates, filters) {
                    let id = &shard.row(i).chunk_id;
                    if !evidence.contains_key(id) {
                        order.push(id.clone());
                        evidence.insert(id.clone(), Evidence { keyword: None, semantic: Some(sim) });
                    }
                }
            }
        }
        let list: Vec<Evidence> = order.iter().filter_map(|id| evidence.get(id).copied()).collect();
        let fused = fuse(&list, ratio);
        let mut ranked: Vec<(usize, f32)> = fused.iter().enumerate().map(|(i, f)| (i, f.score)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| order[a.0].cmp(&order[b.0])));

        let mut hits = Vec::with_capacity(request.limit);
        for (i, _) in ranked.into_iter().take(request.limit) {
            let Some(chunk) = self.load_chunk(ws, &order[i])? else { continue };
            let (ev, f) = (list[i], fused[i]);
            hits.push(Hit {
                doc_id: chunk.doc_id,
                chunk_id: chunk.chunk_id,
                title: chunk.title,
                url: chunk.url,
                heading_path: chunk.heading_path,
                text: chunk.text,
                source_kind: chunk.source_kind,
                product: chunk.product,
                updated_at: chunk.updated_at,
                keyword_score: ev.keyword.unwrap_or(0.0),
                keyword_norm: f.keyword_norm,
                semantic_score: ev.semantic.unwrap_or(0.0),
                fused_score: f.score,
            });
        }
        Ok(hits)
    }

    /// The analysed keyword terms of a text (used by confidence and diagnostics).
    pub fn keyword_terms(&self, text: &str) -> Vec<String> {
        self.keyword.terms(text)
    }
}

#[async_trait]
impl Retriever for EmbeddedRetriever {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn upsert(&self, workspace: &WorkspaceId, chunks: Vec<IndexedChunk>) -> Result<(), RetrievalError> {
        let ws = workspace.as_str();
        let shard = self.shard(ws)?;
        for IndexedChunk { chunk, vector } in chunks {
            if vector.len() != self.dims {
                return Err(RetrievalError::Dimensions { expected: self.dims, got: vector.len() });
            }
            self.keyword.upsert(ws, &chunk)?;
            shard.write().map_err(|_| poisoned())?.upsert(meta_of(&chunk), &vector);
            let key = key2(ws, &chunk.chunk_id);
            let bytes = bincode::serialize(&StoredChunk { chunk, vector }).map_err(|e| corrupt("chunk record", e))?;
            self.records.insert(key, bytes).map_err(StoreError::from)?;
        }
        Ok(())
    }

    async fn delete(&self, workspace: &WorkspaceId, chunk_ids: &[String]) -> Result<(), RetrievalError> {
        let ws = workspace.as_str();
        let shard = self.shard(ws)?;
        for id in chunk_ids {
            self.keyword.delete(ws, id)?;
            shard.write().map_err(|_| poisoned())?.remove(id);
            self.records.remove(key2(ws, id)).map_err(StoreError::from)?;
        }
        Ok(())
    }

    async fn commit(&self) -> Result<(), RetrievalError> {
        self.keyword.commit()?;
        self.records.flush_async().await.map_err(StoreError::from)?;
        Ok(())
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<Hit>, RetrievalError> {
        self.search_sync(request)
    }

    async fn count(&self, workspace: &WorkspaceId) -> Result<usize, RetrievalError> {
        Ok(self.shard(workspace.as_str())?.read().map_err(|_| poisoned())?.len())
    }

    async fn term_stats(
        &self,
        workspace: &WorkspaceId,
        query: &str,
        top: &[Hit],
    ) -> Result<Option<TermStats>, RetrievalError> {
        let ws = workspace.as_str();
        let (in_top, distinctive) = super::term_sets(query, top, |t| self.keyword.terms(t));
        let mut terms = Vec::new();
        for term in self.keyword.terms(query) {
            let chunk_freq = self.keyword.chunk_freq(ws, &term)?;
            terms.push(TermInfo {
                in_top: in_top.contains(&term),
                distinctive: distinctive.contains(&term),
                term,
                chunk_freq,
            });
        }
        Ok(Some(TermStats { chunks: self.keyword.count(ws)? as u64, terms }))
    }
}
