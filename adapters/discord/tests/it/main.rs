//! The Discord adapter's integration tests, in one binary so the test build links serenity and
//! the fake Discord once instead of once per test file. Run one area with
//! `cargo test --release -p frontdesk-discord --test it gateway::`.

mod common;

mod conformance;
mod endpoint;
mod fixtures;
mod gateway;
mod tenants;
