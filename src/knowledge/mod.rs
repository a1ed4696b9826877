//! Knowledge: help docs and past tickets turned into searchable chunks.

pub mod base;
pub mod chunk;
pub mod ingest;
pub mod mask;
pub mod parse;
pub mod tickets;

pub use base::{KnowledgeBase, SearchError, SearchSettings};
