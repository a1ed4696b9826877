//! Documents and their chunks: source documents as parsed, and the chunks that get indexed.
//!
//! The vocabulary that knowledge (which makes chunks), retrieval (which indexes and finds them)
//! and the store (which catalogues them) share; it depends on none of them.

use serde::{Deserialize, Serialize};

/// Where a piece of knowledge came from. Policies and searches can filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A help-centre page (Markdown, HTML or plain text).
    Doc,
    /// A resolved support ticket: the agent's answer in the context of the customer's question.
    Ticket,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Doc => "doc",
            SourceKind::Ticket => "ticket",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "doc" => Some(SourceKind::Doc),
            "ticket" => Some(SourceKind::Ticket),
            _ => None,
        }
    }
}

/// A run of text under one heading path, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The headings above this text, outermost first (e.g. `["Billing", "Refunds"]`). The
    /// document title is not repeated here.
    pub heading_path: Vec<String>,
    /// Plain text: paragraphs separated by blank lines, list items on their own lines.
    pub text: String,
}

/// A document after parsing, before chunking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDocument {
    /// Stable id: the path relative to the ingested folder without its extension (a single file:
    /// its stem), or the ticket id.
    pub doc_id: String,
    pub source_kind: SourceKind,
    pub title: String,
    pub url: Option<String>,
    pub product: Option<String>,
    /// Unix seconds.
    pub updated_at: Option<i64>,
    pub sections: Vec<Section>,
}

/// One indexed unit of knowledge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// `{doc_id}#{ordinal}`, ordinal counted from 0 in document order.
    pub chunk_id: String,
    pub doc_id: String,
    pub source_kind: SourceKind,
    pub title: String,
    pub url: Option<String>,
    pub product: Option<String>,
    pub updated_at: Option<i64>,
    pub heading_path: Vec<String>,
    pub text: String,
}

impl Chunk {
    /// The text given to the embedder and to the keyword index: title and headings give the
    /// chunk its context ("Refunds" under "Billing" means something on its own).
    pub fn indexed_text(&self) -> String {
        let mut out = String::with_capacity(self.title.len() + self.text.len() + 32);
        out.push_str(&self.title);
        for h in &self.heading_path {
            out.push_str(" > ");
            out.push_str(h);
        }
        out.push('\n');
        out.push_str(&self.text);
        out
    }

    /// Hex SHA-256 of everything that affects how the chunk is indexed and shown.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.indexed_text().as_str(),
            self.url.as_deref().unwrap_or(""),
            self.product.as_deref().unwrap_or(""),
            self.source_kind.as_str(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.update(self.updated_at.unwrap_or(i64::MIN).to_le_bytes());
        hex::encode(h.finalize())
    }
}
