//! Building the running parts from the configuration: the store, the embedder, the retrieval
//! backend, put together as a `KnowledgeBase`.
//!
//! The local embedder loads its model on first use, so commands that embed nothing (an ingest of
//! an unchanged folder, a keyword-only search) start instantly and work without the model.

use crate::config::{BackendKind, Config, EmbedderKind};
use crate::embed::bert::{BertOptions, LocalBertEmbedder};
use crate::embed::remote::{RemoteEmbedder, RemoteEmbedderConfig};
use crate::embed::{EmbedError, Embedder};
use crate::knowledge::chunk::ChunkOptions;
use crate::knowledge::{KnowledgeBase, SearchSettings};
use crate::models;
use crate::retrieval::embedded::EmbeddedRetriever;
use crate::retrieval::meili::MeiliRetriever;
use crate::retrieval::{RetrievalError, Retriever};
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Model id of the local embedder (part of embedding cache keys).
pub const MINILM_ID: &str = "all-MiniLM-L6-v2";

/// Something needed at start-up is missing or broken.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Retrieval(#[from] RetrievalError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

impl SetupError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            SetupError::Store(e) => e.code(),
            SetupError::Retrieval(e) => e.code(),
            SetupError::Embed(e) => e.code(),
        }
    }
}

/// The local MiniLM embedder, loaded (and its files verified) on the first call to `embed`.
pub struct LazyLocalEmbedder {
    models_dir: PathBuf,
    options: BertOptions,
    loaded: OnceCell<Arc<LocalBertEmbedder>>,
}

impl LazyLocalEmbedder {
    pub fn new(models_dir: PathBuf, options: BertOptions) -> Self {
        LazyLocalEmbedder { models_dir, options, loaded: OnceCell::new() }
    }

    async fn get(&self) -> Result<&Arc<LocalBertEmbedder>, EmbedError> {
        self.loaded
            .get_or_try_init(|| async {
                let dir = self.models_dir.clone();
                let options = self.options;
                tokio::task::spawn_blocking(move || {
                    let path = models::verify(&dir, &models::MINILM).map_err(|e| match e {
                        models::ModelError::Missing { .. } => {
                            EmbedError::ModelMissing { dir: dir.display().to_string() }
                        }
                        other => EmbedError::ModelLoad { dir: dir.display().to_string(), message: other.to_string() },
                    })?;
                    LocalBertEmbedder::load(&path, options).map(Arc::new)
                })
                .await
                .map_err(EmbedError::Task)?
            })
            .await
    }
}

#[async_trait]
impl Embedder for LazyLocalEmbedder {
    fn model_id(&self) -> &str {
        MINILM_ID
    }

    fn dimensions(&self) -> usize {
        crate::embed::MINILM_DIMENSIONS
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.get().await?.embed(texts).await
    }
}

/// The embedder the configuration asks for.
pub fn build_embedder(config: &Config) -> Result<Arc<dyn Embedder>, SetupError> {
    match config.embedder.kind {
        EmbedderKind::Local => {
            let options = BertOptions { batch_size: config.embedder.batch_size, ..BertOptions::default() };
            let local: Arc<dyn Embedder> = Arc::new(LazyLocalEmbedder::new(config.models_dir.clone(), options));
            // The CPU is taken in turn by workspace, a small batch per core (embed::fair).
            Ok(Arc::new(crate::embed::fair::FairEmbedder::per_core(local)))
        }
        EmbedderKind::Remote => {
            let r = config
                .embedder
                .remote
                .clone()
                .ok_or_else(|| EmbedError::Remote("embedder.remote is not configured".into()))?;
            let remote = RemoteEmbedder::new(RemoteEmbedderConfig {
                base_url: r.base_url,
                model: r.model,
                api_key: r.api_key,
                dimensions: r.dimensions,
                batch_size: r.batch_size,
                timeout: Duration::from_secs(r.timeout_secs),
            })?;
            Ok(Arc::new(remote))
        }
    }
}

/// Opens the store and the backend, and builds the embedder.
pub fn open_knowledge(config: &Config) -> Result<KnowledgeBase, SetupError> {
    let store = Store::open_with(&config.data_dir, &config.store)?;
    let embedder = build_embedder(config)?;
    let retriever: Arc<dyn Retriever> = match config.retrieval.backend {
        BackendKind::Embedded => Arc::new(EmbeddedRetriever::open(&config.data_dir, &store, embedder.dimensions())?),
        BackendKind::Meilisearch => {
            let meili = config.retrieval.meilisearch.as_ref().ok_or_else(|| {
                RetrievalError::Unavailable(
                    "retrieval.backend is \"meilisearch\" but [retrieval.meilisearch] is missing".into(),
                )
            })?;
            Arc::new(MeiliRetriever::open(meili, &store, embedder.dimensions())?)
        }
    };
    Ok(KnowledgeBase {
        store,
        retriever,
        embedder,
        search: SearchSettings {
            semantic_ratio: config.retrieval.semantic_ratio,
            candidates: config.retrieval.candidates,
        },
        chunking: ChunkOptions { max_words: config.ingest.max_words, min_words: config.ingest.min_words },
        batch_size: config.embedder.batch_size,
    })
}
