//! Turning help-centre files (Markdown, HTML, plain text) into [`SourceDocument`]s.
//!
//! A company points frontdesk at a folder of help docs; every file goes through here before it
//! is chunked and indexed. The goal is clean plain text that keeps the structure customers and
//! agents rely on: the title, the heading each passage sits under, paragraphs, list items,
//! table rows and code samples. Page furniture (navigation, scripts, raw HTML, link targets)
//! is dropped so it never ends up quoted in an answer.
//!
//! Files that cannot be used are not errors: they come back as a [`SkipReason`] whose text is
//! shown in the ingest summary, so the person running the ingest knows which file to fix.
//! Parsing never panics, whatever the bytes.

mod html;
mod markdown;
#[cfg(test)]
mod tests;
mod text;

use std::path::Path;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::document::{Section, SourceDocument, SourceKind};
use html::parse_html;
use markdown::parse_markdown;
use text::parse_text;

/// Documents larger than this are skipped: a help page this big is almost certainly an export
/// or a log file, not an article.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;

/// How much of the start of a file is checked for NUL bytes to recognise binaries.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// The markup a help doc is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Markdown,
    Html,
    Text,
}

/// The format for a file, from its extension (case-insensitive): `.md`, `.markdown`, `.mdx` are
/// Markdown; `.html`, `.htm` are HTML; `.txt`, `.text` are plain text. Anything else is `None`.
pub fn format_for_path(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "md" | "markdown" | "mdx" => Some(Format::Markdown),
        "html" | "htm" => Some(Format::Html),
        "txt" | "text" => Some(Format::Text),
        _ => None,
    }
}

/// Why a file was not turned into a document. The `Display` text is a short reason shown to the
/// person running the ingest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("empty file")]
    Empty,
    #[error("binary file")]
    Binary,
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The file's extension (without the dot; empty when there is none).
    #[error("{}", unsupported_message(.0))]
    UnsupportedType(String),
    #[error("{}", too_large_message(*.bytes, *.limit))]
    TooLarge { bytes: usize, limit: usize },
    #[error("front matter: {0}")]
    BadFrontMatter(String),
    #[error("no text found")]
    NoText,
}

fn unsupported_message(ext: &str) -> String {
    if ext.is_empty() {
        "unsupported file type (no extension); use .md, .html or .txt".to_string()
    } else {
        format!("unsupported file type (.{ext}); use .md, .html or .txt")
    }
}

fn too_large_message(bytes: usize, limit: usize) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    format!("file too large ({:.1} MiB; the limit is {:.0} MiB)", bytes as f64 / MIB, limit as f64 / MIB)
}

/// Parses one help doc. `doc_id` is its stable id (used for the fallback title); `bytes` the
/// file's raw content.
pub fn parse_document(doc_id: &str, format: Format, bytes: &[u8]) -> Result<SourceDocument, SkipReason> {
    let text = decode(bytes)?;
    let mut doc = match format {
        Format::Markdown => parse_markdown(doc_id, text)?,
        Format::Html => parse_html(doc_id, text),
        Format::Text => parse_text(doc_id, text),
    };
    doc.sections.retain(|s| !s.text.trim().is_empty());
    if doc.sections.is_empty() {
        return Err(SkipReason::NoText);
    }
    if doc.title.trim().is_empty() {
        doc.title = title_from_doc_id(doc_id);
    }
    Ok(doc)
}

/// Checks size, binary content and encoding; returns the text without a byte-order mark.
fn decode(bytes: &[u8]) -> Result<&str, SkipReason> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(SkipReason::TooLarge { bytes: bytes.len(), limit: MAX_DOCUMENT_BYTES });
    }
    if bytes.is_empty() {
        return Err(SkipReason::Empty);
    }
    let head = &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)];
    if head.contains(&0) {
        return Err(SkipReason::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SkipReason::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(SkipReason::Empty);
    }
    Ok(text)
}

/// The title used when a document names none: the last segment of its id, with `_` and `-`
/// read as spaces (`billing/refund-policy` → `refund policy`).
pub fn title_from_doc_id(doc_id: &str) -> String {
    let last = doc_id.rsplit(['/', '\\']).find(|s| !s.trim().is_empty()).unwrap_or("");
    let spaced: String = last.chars().map(|c| if c == '_' || c == '-' { ' ' } else { c }).collect();
    let title = collapse_whitespace(&spaced);
    if title.is_empty() {
        let whole = collapse_whitespace(doc_id);
        if whole.is_empty() {
            "Untitled".to_string()
        } else {
            whole
        }
    } else {
        title
    }
}

/// Parses a date as `YYYY-MM-DD` (midnight UTC) or RFC 3339; returns unix seconds.
pub(crate) fn parse_timestamp(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(dt) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(dt.unix_timestamp());
    }
    let date = Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// Collapses every run of whitespace (including newlines) into one space and trims the ends.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Collapses whitespace within each line, keeping line breaks; drops empty lines.
fn collapse_lines(s: &str) -> String {
    s.lines().map(collapse_whitespace).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

/// Case- and spacing-insensitive comparison, for spotting a heading that repeats the title.
fn same_text(a: &str, b: &str) -> bool {
    collapse_whitespace(a).to_lowercase() == collapse_whitespace(b).to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Sections under construction (shared by the Markdown and HTML parsers)
// ---------------------------------------------------------------------------------------------

/// Collects blocks of text under the current heading path and cuts sections at headings.
#[derive(Debug, Default)]
struct SectionBuilder {
    sections: Vec<Section>,
    /// `(level, text)` of the headings above the current position.
    path: Vec<(u8, String)>,
    blocks: Vec<String>,
    /// Whether any body text has been seen yet (decides whether a leading H1 is the title).
    seen_text: bool,
}

impl SectionBuilder {
    fn push_block(&mut self, block: String) {
        if !block.trim().is_empty() {
            self.seen_text = true;
            self.blocks.push(block);
        }
    }

    fn finish_section(&mut self) {
        if self.blocks.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.blocks).join("\n\n");
        let heading_path: Vec<String> = self.path.iter().map(|(_, h)| h.clone()).collect();
        // Two runs of text under the same headings (e.g. split by a dropped HTML block) belong
        // to one section.
        if let Some(last) = self.sections.last_mut() {
            if last.heading_path == heading_path {
                last.text.push_str("\n\n");
                last.text.push_str(&text);
                return;
            }
        }
        self.sections.push(Section { heading_path, text });
    }

    fn heading(&mut self, level: u8, text: String) {
        self.finish_section();
        if text.is_empty() {
            return;
        }
        while self.path.last().is_some_and(|(l, _)| *l >= level) {
            self.path.pop();
        }
        self.path.push((level, text));
    }

    fn finish(mut self) -> Vec<Section> {
        self.finish_section();
        self.sections
    }
}
