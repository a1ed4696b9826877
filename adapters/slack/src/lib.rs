//! Slack channel adapter.
