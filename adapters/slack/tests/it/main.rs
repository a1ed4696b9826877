//! The Slack adapter's integration tests, in one binary so the test build links slack-morphism
//! and the fake Slack once instead of once per test file. Run one area with
//! `cargo test --release -p frontdesk-slack --test it socket_mode::`.

mod adapter;
mod fixtures;
mod python_peers;
mod socket_mode;
