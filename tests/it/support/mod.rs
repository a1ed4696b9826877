//! Helpers shared by integration tests: a scripted OpenAI-compatible server (retries, timeouts
//! and streaming checked without a real model), a small engine over sample help articles, and
//! the model answers no customer may see (`unchecked`).

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Not every helper is used by the tests of every build.
#![allow(dead_code)]

pub mod engine_harness;
pub mod scripted_llm;
pub mod serving;
pub mod unchecked;
pub mod wait;

/// The name the test harness knows the test `test` of `module` by (`module_path!()` of the
/// caller), for re-running that one test in a child process with `--exact`: this binary's
/// tests are named by their path below the crate root, e.g. `inbox_crash::sigkill_...`.
pub fn test_name(module: &str, test: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{test}"),
        None => test.to_string(),
    }
}
