//! frontdesk's own state, kept in sled under `data_dir/state.sled`.
//!
//! Keys are prefixed with a schema version (`v1/`) so the layout can evolve without guessing.
//! Trees:
//! - `catalogue`: what has been ingested per workspace and document, with chunk hashes, so a
//!   re-ingest knows what changed whatever the retrieval backend.
//! - `embedding_cache`: vectors by model and text hash, so unchanged text is never re-embedded.

pub mod catalogue;
pub mod config;
pub mod embedding_cache;
pub mod expiry;

pub use catalogue::{Catalogue, DocEntry};
pub use embedding_cache::EmbeddingCache;

pub use config::StoreConfig;
use std::path::{Path, PathBuf};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("state database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored record is corrupt ({what}): {message}")]
    Corrupt { what: String, message: String },
}

impl StoreError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Open { .. } => "store_unavailable",
            StoreError::Sled(..) => "store_failed",
            StoreError::Corrupt { .. } => "store_corrupt",
        }
    }
}

/// The sled database holding frontdesk's state. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

impl Store {
    /// Opens (creating if needed) `data_dir/state.sled` with the default `[store]` settings.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, &StoreConfig::default())
    }

    /// Opens (creating if needed) `data_dir/state.sled` with a page cache of
    /// `config.cache_mib` (sled's own default, 1 GiB, let a busy server's memory grow past 2 GiB).
    pub fn open_with(data_dir: &Path, config: &StoreConfig) -> Result<Store, StoreError> {
        let path = data_dir.join("state.sled");
        let db =
            sled_config(config).path(&path).open().map_err(|source| StoreError::Open { path: path.clone(), source })?;
        Ok(Store { db })
    }

    /// A database that lives in memory only; for tests and one-off runs.
    pub fn temporary() -> Result<Store, StoreError> {
        Ok(Store { db: sled::Config::new().temporary(true).open()? })
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    pub fn catalogue(&self) -> Result<Catalogue, StoreError> {
        Ok(Catalogue::new(self.db.open_tree("catalogue")?))
    }

    pub fn embedding_cache(&self) -> Result<EmbeddingCache, StoreError> {
        Ok(EmbeddingCache::new(self.db.open_tree("embedding_cache")?))
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// sled's settings for `config`.
fn sled_config(config: &StoreConfig) -> sled::Config {
    sled::Config::new().cache_capacity(config.cache_bytes())
}

/// `v1/{a}\0{b}`: ids never contain control characters, so `\0` separates them safely.
pub(crate) fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + a.len() + 1 + b.len());
    k.extend_from_slice(b"v1/");
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

/// The prefix of every `key2(a, _)`.
pub(crate) fn prefix1(a: &str) -> Vec<u8> {
    key2(a, "")
}
