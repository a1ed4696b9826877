//! Test doubles shared by unit tests, integration tests and benchmarks.
//!
//! `HashingEmbedder` gives deterministic vectors without a model: each word (lower-cased,
//! with a crude plural strip) is hashed into a few of the dimensions, so texts sharing words
//! are similar. It is not a language model: it exists so retrieval and ingest logic can be tested
//! in milliseconds, while `tests/embedder.rs` holds the real model to reference vectors.

use crate::embed::{l2_normalize, EmbedError, Embedder};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Deterministic bag-of-words vectors; counts how many texts it embedded.
pub struct HashingEmbedder {
    dims: usize,
    embedded: AtomicUsize,
}

impl HashingEmbedder {
    pub fn new(dims: usize) -> Self {
        HashingEmbedder { dims, embedded: AtomicUsize::new(0) }
    }

    /// Texts embedded so far.
    pub fn embedded(&self) -> usize {
        self.embedded.load(Ordering::SeqCst)
    }

    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dims];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let w = word.to_lowercase();
            let w = w.strip_suffix('s').filter(|s| s.len() > 2).unwrap_or(&w);
            let h = Sha256::digest(w.as_bytes());
            for k in 0..3 {
                let idx = u16::from_le_bytes([h[2 * k], h[2 * k + 1]]) as usize % self.dims;
                let sign = if h[8 + k] & 1 == 0 { 1.0 } else { -1.0 };
                v[idx] += sign;
            }
        }
        l2_normalize(&mut v);
        v
    }
}

#[async_trait]
impl Embedder for HashingEmbedder {
    fn model_id(&self) -> &str {
        "test-hashing"
    }

    fn dimensions(&self) -> usize {
        self.dims
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embedded.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}
