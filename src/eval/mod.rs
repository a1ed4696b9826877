//! Evaluation: run a dataset (docs + cases) through the same code production uses and score it.
//!
//! - `dataset`: the case format (`cases.jsonl` beside a `docs/` folder).
//! - `retrieval`: doc-level recall@k and MRR for each retrieval mode.

pub mod dataset;
pub mod retrieval;

pub use dataset::{Case, Dataset, DatasetError, Turn};
