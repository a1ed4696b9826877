//! frontdesk: a customer-support assistant that answers from a company's help docs and past
//! tickets, cites its sources, and hands the thread to a person when it is not sure.
//!
//! # Layout
//! - `config`: `frontdesk.toml`, parsed strictly, validated in one pass, env overrides.
//! - `models`: fetching and verifying model files into the models directory.
//! - `embed`: the `Embedder` trait; the local MiniLM embedder and the remote one.
//! - `document`: source kinds, parsed documents and chunks, shared by knowledge, retrieval and store.
//! - `knowledge`: parsing help docs and tickets, masking personal data, chunking, incremental ingest.
//! - `llm`: the `Llm` trait; OpenAI-compatible providers with retries and fallback, local SmolLM2.
//! - `retrieval`: the `Retriever` trait, workspace-scoped search requests, the embedded BM25 + vector backend.
//! - `rerank`: the `Reranker` trait; a cross-encoder over the TEI, Cohere or Jina APIs, or candle.
//! - `runtime`: builds the store, embedder and backend from the configuration.
//! - `store`: sled-backed catalogue of what has been indexed, and the embedding cache.
//! - `inbox`: durable inbox (dedup, per-conversation lanes), turn worker, outbox with retried, ordered delivery.
//! - `engine`: the turn pipeline (policy, state, understand, retrieve, gate, generate, verify, decide), its replies.
//! - `logistic`: the logistic model behind the confidence score and the feature ranker, and its fit.
//! - `generate`: the `Generator` trait; extractive answers and model-written answers.
//! - `conversation`: who owns a thread and what was said in it; messages started outside a channel.
//! - `policy`: channel policies, resolved per message from defaults, workspace and channel.
//! - `ratelimit`: per-workspace and per-user rate limits.
//! - `trace`: what each turn did and why, with the confidence features it was scored on.
//! - `prompts`: versioned prompt templates.
//! - `eval`: datasets, scoring (risk, coverage, AUROC, recall), bootstrap intervals, the gates, `calibrate`'s fit.
//! - `serve`: `frontdesk serve`: builds the adapters, mounts their routes beside health and admin, runs the worker.
//! - `text`: words, content words, a light normaliser and a sentence splitter.
//! - `cli`: the command line (`cli::bench` is `frontdesk bench`); all user-facing printing goes through `cli::out`.
//! - `testing` (tests and the `test-util` feature): test doubles such as a model-free embedder.
//!
//! The message path with file names, the rules no change may break and where to add a channel,
//! a backend or a model provider are in `ARCHITECTURE.md`.

pub mod cli;
pub mod config;
pub mod conversation;
pub mod document;
pub mod embed;
pub mod engine;
pub mod eval;
pub mod fair;
pub mod generate;
pub mod inbox;
pub mod knowledge;
pub mod llm;
pub mod logistic;
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
