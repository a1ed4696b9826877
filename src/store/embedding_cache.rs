//! Vectors by model and text hash: re-ingesting unchanged text costs a lookup, not a forward
//! pass of the model (which runs at a few chunks per second per core).

use super::{key2, StoreError};
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct EmbeddingCache {
    tree: sled::Tree,
}

impl EmbeddingCache {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        EmbeddingCache { tree }
    }

    fn key(model_id: &str, text: &str) -> Vec<u8> {
        key2(model_id, &hex::encode(Sha256::digest(text.as_bytes())))
    }

    pub fn get(&self, model_id: &str, text: &str) -> Result<Option<Vec<f32>>, StoreError> {
        Ok(self.tree.get(Self::key(model_id, text))?.map(|b| bytes_to_vector(&b)))
    }

    pub fn put(&self, model_id: &str, text: &str, vector: &[f32]) -> Result<(), StoreError> {
        self.tree.insert(Self::key(model_id, text), vector_to_bytes(vector))?;
        Ok(())
    }
}

/// Little-endian f32s.
pub fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bytes_to_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn vectors_round_trip_by_model_and_text() {
        let store = Store::temporary().unwrap();
        let cache = store.embedding_cache().unwrap();
        cache.put("m1", "hello", &[0.5, -1.25]).unwrap();
        assert_eq!(cache.get("m1", "hello").unwrap(), Some(vec![0.5, -1.25]));
        assert_eq!(cache.get("m2", "hello").unwrap(), None);
        assert_eq!(cache.get("m1", "hello!").unwrap(), None);
    }
}
