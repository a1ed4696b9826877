//! Ingest: from files and ticket exports to indexed chunks, incrementally.
//!
//! 1. **Collect** documents: folders are walked recursively in name order; each file is parsed
//!    by its extension (Markdown, HTML, text) or skipped with a reason (binary, empty, not
//!    UTF-8, unsupported type). Ticket exports load row by row; bad rows are skipped with the
//!    line they were on. Hidden files and folders (`.git`, `.DS_Store`) are not walked.
//! 2. **Diff** each document's chunks against the catalogue by content hash: unchanged
//!    documents cost nothing; changed ones count chunks added, updated and removed.
//! 3. **Embed** what changed, in batches, through the embedding cache: text that was ever
//!    embedded by the same model is not embedded again.
//! 4. **Index** and commit, then record the new state in the catalogue (so a crash before
//!    that point only means the next run redoes the work).
//! 5. **Prune** (with `--prune`): documents of the same kind (and product, when one was given)
//!    that the catalogue has but this run did not see are removed.

use super::chunk::{chunk_document, ChunkOptions};
use super::parse::{format_for_path, parse_document};
use super::tickets::{load_tickets, ticket_to_document};
use crate::channel::WorkspaceId;
use crate::document::{SourceDocument, SourceKind};
use crate::embed::{EmbedError, Embedder};
use crate::retrieval::{IndexedChunk, RetrievalError, Retriever};
use crate::store::{DocEntry, EmbeddingCache, Store, StoreError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What to ingest.
#[derive(Debug, Clone)]
pub enum IngestSource {
    /// Files and folders of help docs.
    Paths(Vec<PathBuf>),
    /// A resolved-ticket export (JSONL or CSV).
    Tickets(PathBuf),
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub workspace: WorkspaceId,
    /// Given to documents whose front matter (or ticket row) names no product.
    pub product: Option<String>,
    /// Remove documents that this run did not see.
    pub prune: bool,
    pub chunking: ChunkOptions,
    /// Chunks embedded per call to the embedder.
    pub batch_size: usize,
}

/// One input that was not ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub location: String,
    pub reason: String,
}

/// What an ingest run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    pub documents_seen: usize,
    pub documents_new: usize,
    pub documents_changed: usize,
    pub documents_unchanged: usize,
    pub documents_removed: usize,
    pub chunks_added: usize,
    pub chunks_updated: usize,
    pub chunks_removed: usize,
    pub chunks_unchanged: usize,
    /// Texts that went through the embedding model in this run.
    pub embedded: usize,
    /// Texts whose vector came from the embedding cache.
    pub embedding_cache_hits: usize,
    pub skipped: Vec<Skipped>,
}

/// Ingest could not run (bad input is skipped, not an error; these stop the run).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path} does not exist")]
    NotFound { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot load tickets: {0}")]
    Tickets(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Retrieval(#[from] RetrievalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IngestError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::NotFound { .. } => "ingest_source_not_found",
            IngestError::Io { .. } => "ingest_source_unreadable",
            IngestError::Tickets(..) => "tickets_invalid",
            IngestError::Embed(e) => e.code(),
            IngestError::Retrieval(e) => e.code(),
            IngestError::Store(e) => e.code(),
        }
    }
}

/// Progress reporting; the CLI shows a bar on a terminal, tests pass `()`.
pub trait Progress: Send + Sync {
    fn start(&self, _total_chunks: usize) {}
    fn advance(&self, _chunks: usize) {}
    fn finish(&self) {}
}

impl Progress for () {}

struct Collected {
    origin: String,
    doc: SourceDocument,
}

/// Runs ingest runs against one store, backend and embedder.
pub struct Ingestor<'a> {
    pub store: &'a Store,
    pub retriever: &'a dyn Retriever,
    pub embedder: &'a dyn Embedder,
}

impl Ingestor<'_> {
    pub async fn run(
        &self,
        source: &IngestSource,
        options: &IngestOptions,
        progress: &dyn Progress,
    ) -> Result<IngestSummary, IngestError> {
        let mut summary = IngestSummary::default();
        let (kind, docs) = match source {
            IngestSource::Paths(paths) => (SourceKind::Doc, collect_files(paths, &mut summary.skipped)?),
            IngestSource::Tickets(path) => (SourceKind::Ticket, collect_tickets(path, &mut summary.skipped)?),
        };
        let catalogue = self.store.catalogue()?;
        let cache = self.store.embedding_cache()?;
        let ws = &options.workspace;

        // Diff every document against the catalogue.
        let mut seen: HashSet<String> = HashSet::new();
        let mut pending: Vec<(String, DocEntry)> = Vec::new();
        let mut to_index = Vec::new();
        let mut to_delete: Vec<String> = Vec::new();
        for Collected { origin, mut doc } in docs {
            if doc.product.is_none() {
                doc.product = options.product.clone();
            }
            let chunks = chunk_document(&doc, &options.chunking);
            if chunks.is_empty() {
                summary.skipped.push(Skipped { location: origin, reason: "no text to index".into() });
                continue;
            }
            seen.insert(doc.doc_id.clone());
            summary.documents_seen += 1;
            let hashed: Vec<(String, String)> = chunks.iter().map(|c| (c.chunk_id.clone(), c.content_hash())).collect();
            let old = catalogue.get(ws, &doc.doc_id)?;
            let old_hashes: HashMap<&str, &str> = old
                .as_ref()
                .map(|e| e.chunks.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect())
                .unwrap_or_default();
            if old.as_ref().is_some_and(|e| e.chunks == hashed) {
                summary.documents_unchanged += 1;
                summary.chunks_unchanged += hashed.len();
                continue;
            }
            if old.is_some() {
                summary.documents_changed += 1;
            } else {
                summary.documents_new += 1;
            }
            let new_ids: HashSet<&str> = hashed.iter().map(|(id, _)| id.as_str()).collect();
            for (chunk, (_, hash)) in chunks.into_iter().zip(&hashed) {
                match old_hashes.get(chunk.chunk_id.as_str()) {
                    Some(h) if h == hash => summary.chunks_unchanged += 1,
                    Some(_) => {
                        summary.chunks_updated += 1;
                        to_index.push(chunk);
                    }
                    None => {
                        summary.chunks_added += 1;
                        to_index.push(chunk);
                    }
                }
            }
            for id in old_hashes.keys().filter(|id| !new_ids.contains(*id)) {
                summary.chunks_removed += 1;
                to_delete.push((*id).to_string());
            }
            let entry = DocEntry {
                source_kind: kind,
                title: doc.title.clone(),
                product: doc.product.clone(),
                origin,
                chunks: hashed,
                ingested_at: now_secs(),
            };
            pending.push((doc.doc_id, entry));
        }

        // Embed (through the cache) and index what changed.
        progress.start(to_index.len());
        let batch = options.batch_size.max(1);
        for group in to_index.chunks(batch) {
            let texts: Vec<String> = group.iter().map(|c| c.indexed_text()).collect();
            let vectors = self.embed_cached(&cache, &texts, &mut summary).await?;
            let items =
                group.iter().cloned().zip(vectors).map(|(chunk, vector)| IndexedChunk { chunk, vector }).collect();
            self.retriever.upsert(ws, items).await?;
            progress.advance(group.len());
        }
        if !to_delete.is_empty() {
            self.retriever.delete(ws, &to_delete).await?;
        }
        self.retriever.commit().await?;
        for (doc_id, entry) in &pending {
            catalogue.put(ws, doc_id, entry)?;
        }

        if options.prune {
            let mut gone = Vec::new();
            for (doc_id, entry) in catalogue.list(ws)? {
                let same_scope =
                    entry.source_kind == kind && (options.product.is_none() || entry.product == options.product);
                if same_scope && !seen.contains(&doc_id) {
                    gone.push((doc_id, entry));
                }
            }
            if !gone.is_empty() {
                let ids: Vec<String> =
                    gone.iter().flat_map(|(_, e)| e.chunks.iter().map(|(id, _)| id.clone())).collect();
                self.retriever.delete(ws, &ids).await?;
                self.retriever.commit().await?;
                for (doc_id, entry) in &gone {
                    catalogue.remove(ws, doc_id)?;
                    summary.documents_removed += 1;
                    summary.chunks_removed += entry.chunks.len();
                }
            }
        }
        self.store.flush()?;
        progress.finish();
        Ok(summary)
    }

    async fn embed_cached(
        &self,
        cache: &EmbeddingCache,
        texts: &[String],
        summary: &mut IngestSummary,
    ) -> Result<Vec<Vec<f32>>, IngestError> {
        let model = self.embedder.model_id().to_string();
        let mut out: Vec<Option<Vec<f32>>> = Vec::with_capacity(texts.len());
        let mut missing = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let hit = cache.get(&model, t)?;
            if hit.is_none() {
                missing.push(i);
            }
            out.push(hit);
        }
        summary.embedding_cache_hits += texts.len() - missing.len();
        if !missing.is_empty() {
            let batch: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
            let vectors = self.embedder.embed(&batch).await?;
            if vectors.len() != batch.len() {
                return Err(EmbedError::Count { texts: batch.len(), vectors: vectors.len() }.into());
            }
            summary.embedded += batch.len();
            for (&i, v) in missing.iter().zip(vectors) {
                cache.put(&model, &texts[i], &v)?;
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') && n != "." && n != "..")
}

/// `docs/billing/refunds.md` under `docs` → `billing/refunds`.
fn doc_id_for(root: &Path, file: &Path) -> String {
    let rel = if root == file {
        Path::new(file.file_name().unwrap_or_default())
    } else {
        file.strip_prefix(root).unwrap_or(file)
    };
    let rel = rel.with_extension("");
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

fn collect_files(paths: &[PathBuf], skipped: &mut Vec<Skipped>) -> Result<Vec<Collected>, IngestError> {
    let mut out = Vec::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for root in paths {
        if !root.exists() {
            return Err(IngestError::NotFound { path: root.clone() });
        }
        let walker = walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !is_hidden(e.path()));
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let location =
                        e.path().map(|p| p.display().to_string()).unwrap_or_else(|| root.display().to_string());
                    skipped.push(Skipped { location, reason: format!("cannot read: {e}") });
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            let location = path.display().to_string();
            let Some(format) = format_for_path(path) else {
                let ext = path
                    .extension()
                    .map(|e| format!(".{}", e.to_string_lossy()))
                    .unwrap_or_else(|| "no extension".into());
                skipped.push(Skipped {
                    location,
                    reason: format!("unsupported file type ({ext}); use .md, .html or .txt"),
                });
                continue;
            };
            let bytes = std::fs::read(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
            let doc_id = doc_id_for(root, path);
            if let Some(first) = ids.get(&doc_id) {
                skipped.push(Skipped { location, reason: format!("same document id `{doc_id}` as {first}") });
                continue;
            }
            match parse_document(&doc_id, format, &bytes) {
                Ok(doc) => {
                    ids.insert(doc_id, location.clone());
                    out.push(Collected { origin: location, doc });
                }
                Err(reason) => skipped.push(Skipped { location, reason: reason.to_string() }),
            }
        }
    }
    Ok(out)
}

fn collect_tickets(path: &Path, skipped: &mut Vec<Skipped>) -> Result<Vec<Collected>, IngestError> {
    if !path.exists() {
        return Err(IngestError::NotFound { path: path.to_path_buf() });
    }
    let load = load_tickets(path).map_err(|e| IngestError::Tickets(e.to_string()))?;
    let file = path.display().to_string();
    for row in load.skipped {
        skipped.push(Skipped { location: format!("{file} {}", row.location), reason: row.reason });
    }
    Ok(load
        .tickets
        .iter()
        .map(|t| Collected { origin: format!("{file} ticket {}", t.id), doc: ticket_to_document(t) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_ids_are_relative_paths_without_extension() {
        let root = Path::new("/x/docs");
        assert_eq!(doc_id_for(root, Path::new("/x/docs/billing/refunds.md")), "billing/refunds");
        assert_eq!(doc_id_for(Path::new("/x/docs/a.md"), Path::new("/x/docs/a.md")), "a");
    }
}
