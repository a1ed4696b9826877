//! Embedders turn text into vectors for semantic search.
//!
//! The default is a local all-MiniLM-L6-v2 run in-process on the CPU (`bert`); an
//! OpenAI-compatible `/embeddings` endpoint is an option (`remote`). Vectors are L2-normalised
//! so a dot product is a cosine similarity.

pub mod bert;
pub mod fair;
pub mod remote;

use async_trait::async_trait;

/// Dimensions of all-MiniLM-L6-v2 vectors.
pub const MINILM_DIMENSIONS: usize = 384;

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model files are not in the models directory.
    #[error("the embedding model is not installed in {dir}: run `frontdesk models fetch`")]
    ModelMissing { dir: String },
    #[error("the embedding model in {dir} could not be loaded: {message}")]
    ModelLoad { dir: String, message: String },
    #[error("embedding failed: {0}")]
    Compute(String),
    #[error("the embedding service failed: {0}")]
    Remote(String),
}

impl EmbedError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            EmbedError::ModelMissing { .. } => "embedder_model_missing",
            EmbedError::ModelLoad { .. } => "embedder_model_invalid",
            EmbedError::Compute(..) => "embedding_failed",
            EmbedError::Remote(..) => "embedding_service_failed",
        }
    }
}

/// Turns texts into L2-normalised vectors of a fixed dimension.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Identifies the model; part of the embedding cache key, so a model change re-embeds.
    fn model_id(&self) -> &str;
    /// Length of every vector this embedder returns.
    fn dimensions(&self) -> usize;
    /// Embeds a batch; returns one vector per input, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}
