//! The email adapter's integration tests, in one binary so the test build links the mail
//! libraries once instead of once per test file. Run one area with
//! `cargo test --release -p frontdesk-email --test it mail_stack::`.

mod fixtures;
mod ingest;
mod mail_stack;
mod scripted_servers;
mod support;
mod webhook;
