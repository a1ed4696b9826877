//! Email channel adapter.
