//! Helpers shared by integration tests: a scripted OpenAI-compatible server (retries, timeouts
//! and streaming checked without a real model), a small engine over sample help articles, and
//! the model answers no customer may see (`unchecked`).

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Each test binary uses only some of these helpers.
#![allow(dead_code)]

pub mod engine_harness;
pub mod scripted_llm;
pub mod serving;
pub mod unchecked;
