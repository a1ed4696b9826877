//! Evaluation: run a dataset (docs + cases) through the same code production uses and score it.
//!
//! - `dataset`: the case format (`cases.jsonl` beside a `docs/` folder).
//! - `retrieval`: doc-level recall@k and MRR for each retrieval mode.

pub mod dataset;
pub mod record;
pub mod retrieval;
pub mod runner;

pub mod bootstrap;
pub mod calibrate;
pub mod curve;
pub mod gates;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod rules;
pub mod selective;

pub use dataset::{Case, Dataset, DatasetError, Turn};
