//! Discord channel adapter.
