//! frontdesk: a customer-support assistant that answers from a company's help docs and past
//! tickets, cites its sources, and hands the thread to a person when it is not sure.
//!
//! # Layout
//! - `config`: `frontdesk.toml`, parsed strictly, validated in one pass, env overrides.
//! - `models`: fetching and verifying model files into the models directory.
//! - `embed`: the `Embedder` trait; the local MiniLM embedder and the remote one.
//! - `knowledge`: parsing help docs and ticket exports, masking personal data, heading-aware
//!   chunking, and incremental ingest into a retrieval backend.
//! - `llm`: the `Llm` trait; OpenAI-compatible providers with retries and fallback, the local
//!   SmolLM2 model.
//! - `retrieval`: the `Retriever` trait, search requests (always scoped to a workspace), and the
//!   embedded backend (BM25 keyword index + vector index, fused).
//! - `rerank`: the `Reranker` trait between retrieval and generation; a cross-encoder over the
//!   TEI, Cohere or Jina rerank APIs, or run in-process with candle.
//! - `runtime`: builds the store, embedder and backend from the configuration.
//! - `store`: sled-backed catalogue of what has been indexed, and the embedding cache.
//! - `inbox`: the durable inbox (dedup, per-conversation lanes), the turn worker and the outbox
//!   with retried, ordered delivery: every accepted message gets exactly one reply across crashes.
//! - `engine`: the turn pipeline — policy, rate limit, state, understand, retrieve, gate,
//!   generate, verify, decide — and the replies it produces.
//! - `generate`: the `Generator` trait; extractive answers and model-written answers.
//! - `conversation`, `policy`, `ratelimit`, `trace`, `prompts`: the engine's state and data.
//! - `eval`: datasets, scoring (risk, coverage, confidence AUROC, retrieval recall), bootstrap
//!   intervals, the quality gates and `calibrate`'s fitting.
//! - `serve`: `frontdesk serve` — builds the channel adapters, mounts their routes beside the
//!   health and admin endpoints, and runs the inbox worker until shutdown.
//! - `text`: words, content words, a light normaliser and a sentence splitter.
//! - `bench`: `frontdesk bench`, speed and memory measurements.
//! - `cli`: the command line; all user-facing printing goes through `cli::out`.
//! - `testing` (tests and the `test-util` feature): test doubles such as a model-free embedder.
//!
//! The message path with file names, the rules no change may break and where to add a channel,
//! a backend or a model provider are in `ARCHITECTURE.md`.

pub mod bench;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod embed;
pub mod engine;
pub mod eval;
pub mod generate;
pub mod inbox;
pub mod knowledge;
pub mod llm;
pub mod models;
pub mod policy;
pub mod prompts;
pub mod ratelimit;
pub mod rerank;
pub mod retrieval;
pub mod runtime;
pub mod serve;
pub mod store;
pub mod text;
pub mod trace;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use frontdesk_channel as channel;
