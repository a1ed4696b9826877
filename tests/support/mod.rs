//! Helpers shared by integration tests: a scripted OpenAI-compatible server, so the model
//! provider's retries, timeouts and streaming can be checked without a real model.

pub mod scripted_llm;
