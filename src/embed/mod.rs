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
    /// The tokenizer refused a text.
    #[error("embedding failed: the text could not be split into the model's tokens: {0}")]
    Tokenize(#[source] tokenizers::Error),
    /// Padding a batch to one length failed.
    #[error("embedding failed: the batch could not be padded to one length: {0}")]
    Padding(#[source] tokenizers::Error),
    /// The model's tensor computation failed.
    #[error("embedding failed: the model's computation failed: {0}")]
    Model(#[source] candle_core::Error),
    /// The blocking task that runs the model stopped (a panic or the runtime shutting down).
    #[error("embedding failed: the task running the model stopped: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The embedder broke its contract: one vector per text, rows of one length.
    #[error("embedding failed: {texts} texts in, {vectors} vectors out")]
    Count { texts: usize, vectors: usize },
    #[error("embedding failed: the batch's rows differ in length after padding")]
    Ragged,
    #[error("the embedding service failed: {0}")]
    Remote(String),
}

impl EmbedError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            EmbedError::ModelMissing { .. } => "embedder_model_missing",
            EmbedError::ModelLoad { .. } => "embedder_model_invalid",
            EmbedError::Tokenize(_)
            | EmbedError::Padding(_)
            | EmbedError::Model(_)
            | EmbedError::Task(_)
            | EmbedError::Count { .. }
            | EmbedError::Ragged => "embedding_failed",
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_embedding_failure_keeps_its_cause_as_a_typed_source() {
        let task = tokio::spawn(std::future::pending::<()>());
        task.abort();
        let stopped = task.await.unwrap_err();
        let err = EmbedError::Task(stopped);
        assert_eq!(err.code(), "embedding_failed");
        let cause = std::error::Error::source(&err).expect("the task's error is kept as the source");
        assert!(cause.downcast_ref::<tokio::task::JoinError>().is_some_and(|j| j.is_cancelled()));
        // The message names the cause too, for log lines that print only the top error.
        assert!(err.to_string().ends_with(&cause.to_string()), "{err}");

        let tokenizer: tokenizers::Error = "no such token".into();
        let err = EmbedError::Tokenize(tokenizer);
        assert_eq!(std::error::Error::source(&err).map(ToString::to_string).as_deref(), Some("no such token"));
    }
}
