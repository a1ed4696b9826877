//! frontdesk's integration tests, in one binary so the test build links candle, tantivy and the
//! channel libraries once instead of once per test file. Each module is one area (run one with
//! `cargo test --release --test it serve::`); `support` holds the helpers they share.
//!
//! The tests share this process: a test must not change the process's environment (a
//! `FRONTDESK_` variable is a configuration override for every test that loads the
//! configuration or starts frontdesk), and a test that needs its own process re-runs this
//! binary for itself (`support::test_name`).

mod support;

mod cli_ask;
mod discord_conversation;
mod email_conversation;
mod embedder;
mod engine;
mod engine_llm;
mod engine_local;
mod error_codes;
mod inbox_crash;
mod knowledge;
mod layers;
mod llm_local;
mod llm_openai;
mod regression;
mod retriever_contract;
mod serve;
mod slack_conversation;
