//! An exact in-memory vector index for one workspace.
//!
//! Vectors are unit length, so the dot product is the cosine similarity. The scan is exact
//! (no approximate index to tune or to miss): at 384 dimensions a workspace of 100k chunks is
//! 150 MB of floats and a few milliseconds per query on one core, which is what the benchmarks
//! measure. Each row keeps the small metadata that filters need, so a filtered search never
//! touches the disk.

use crate::document::SourceKind;
use crate::retrieval::Filters;
use std::collections::HashMap;

/// The metadata a filter looks at, per row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowMeta {
    pub chunk_id: String,
    pub product: Option<String>,
    pub source_kind: SourceKind,
    pub updated_at: Option<i64>,
}

/// Rows of one workspace: metadata plus a flat block of vectors.
#[derive(Debug, Default)]
pub struct VectorShard {
    dims: usize,
    rows: Vec<RowMeta>,
    data: Vec<f32>,
    by_id: HashMap<String, usize>,
}

impl VectorShard {
    pub fn new(dims: usize) -> Self {
        VectorShard { dims, ..Default::default() }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds or replaces a row. The vector must have `dims` entries (checked by the caller).
    pub fn upsert(&mut self, meta: RowMeta, vector: &[f32]) {
        if let Some(&i) = self.by_id.get(&meta.chunk_id) {
            self.data[i * self.dims..(i + 1) * self.dims].copy_from_slice(vector);
            self.rows[i] = meta;
            return;
        }
        self.by_id.insert(meta.chunk_id.clone(), self.rows.len());
        self.rows.push(meta);
        self.data.extend_from_slice(vector);
    }

    /// Removes a row if present; the last row takes its place.
    pub fn remove(&mut self, chunk_id: &str) {
        let Some(i) = self.by_id.remove(chunk_id) else { return };
        let last = self.rows.len() - 1;
        if i != last {
            self.rows.swap(i, last);
            let (head, tail) = self.data.split_at_mut(last * self.dims);
            head[i * self.dims..(i + 1) * self.dims].copy_from_slice(&tail[..self.dims]);
            self.by_id.insert(self.rows[i].chunk_id.clone(), i);
        }
        self.rows.pop();
        self.data.truncate(last * self.dims);
    }

    pub fn meta(&self, chunk_id: &str) -> Option<&RowMeta> {
        self.by_id.get(chunk_id).map(|&i| &self.rows[i])
    }

    /// Cosine similarity of the query with one row, if the row exists.
    pub fn similarity(&self, query: &[f32], chunk_id: &str) -> Option<f32> {
        self.by_id.get(chunk_id).map(|&i| dot(query, &self.data[i * self.dims..(i + 1) * self.dims]))
    }

    /// The `k` rows most similar to `query` that pass `filters`, best first.
    pub fn top_k(&self, query: &[f32], k: usize, filters: &Filters) -> Vec<(usize, f32)> {
        if k == 0 || self.rows.is_empty() {
            return Vec::new();
        }
        let unfiltered = *filters == Filters::default();
        let mut scored: Vec<(usize, f32)> = Vec::with_capacity(self.rows.len());
        for (i, row) in self.data.chunks_exact(self.dims).enumerate() {
            if !unfiltered {
                let m = &self.rows[i];
                if !filters.admits(m.product.as_deref(), m.source_kind, m.updated_at) {
                    continue;
                }
            }
            scored.push((i, dot(query, row)));
        }
        let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_score);
            scored.truncate(k);
        }
        scored.sort_by(by_score);
        scored
    }

    pub fn row(&self, index: usize) -> &RowMeta {
        &self.rows[index]
    }
}

/// Dot product written so the compiler vectorises it (eight independent accumulators).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let rest: f32 = chunks_a.remainder().iter().zip(chunks_b.remainder()).map(|(x, y)| x * y).sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for j in 0..8 {
            acc[j] += ca[j] * cb[j];
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, product: Option<&str>) -> RowMeta {
        RowMeta {
            chunk_id: id.into(),
            product: product.map(Into::into),
            source_kind: SourceKind::Doc,
            updated_at: None,
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        crate::embed::l2_normalize(&mut v);
        v
    }

    #[test]
    fn top_k_ranks_by_cosine_and_respects_filters() {
        let mut s = VectorShard::new(3);
        s.upsert(meta("a", Some("billing")), &unit(&[1.0, 0.0, 0.0]));
        s.upsert(meta("b", Some("api")), &unit(&[0.9, 0.1, 0.0]));
        s.upsert(meta("c", None), &unit(&[0.0, 1.0, 0.0]));
        let q = unit(&[1.0, 0.05, 0.0]);
        let top = s.top_k(&q, 2, &Filters::default());
        assert_eq!(top.iter().map(|(i, _)| s.row(*i).chunk_id.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
        let f = Filters { products: vec!["api".into()], ..Default::default() };
        let top = s.top_k(&q, 5, &f);
        assert_eq!(top.len(), 1);
        assert_eq!(s.row(top[0].0).chunk_id, "b");
    }

    #[test]
    fn remove_keeps_the_index_consistent() {
        let mut s = VectorShard::new(2);
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            s.upsert(meta(id, None), &unit(&[1.0, i as f32]));
        }
        s.remove("b");
        s.remove("zzz");
        assert_eq!(s.len(), 3);
        for id in ["a", "c", "d"] {
            assert_eq!(s.meta(id).map(|m| m.chunk_id.as_str()), Some(id));
            assert!(s.similarity(&unit(&[1.0, 0.0]), id).is_some());
        }
        assert!(s.meta("b").is_none());
        // d moved into b's slot: its vector must have moved with it.
        let d = s.similarity(&unit(&[1.0, 3.0]), "d").unwrap();
        assert!((d - 1.0).abs() < 1e-5, "{d}");
        s.upsert(meta("a", Some("x")), &unit(&[0.0, 1.0]));
        assert_eq!(s.len(), 3);
        assert_eq!(s.meta("a").unwrap().product.as_deref(), Some("x"));
    }

    #[test]
    fn dot_handles_lengths_that_are_not_multiples_of_eight() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let b = vec![1.0; 13];
        assert_eq!(dot(&a, &b), 78.0);
    }
}
