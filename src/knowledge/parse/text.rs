//! Plain-text help docs.

use super::*;

pub(super) fn parse_text(doc_id: &str, text: &str) -> SourceDocument {
    // Keep lines as written, but normalise line endings, trailing spaces and runs of blank
    // lines so paragraphs are separated by exactly one blank line.
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }
    let body = paragraphs.join("\n\n");
    SourceDocument {
        doc_id: doc_id.to_string(),
        source_kind: SourceKind::Doc,
        title: title_from_doc_id(doc_id),
        url: None,
        product: None,
        updated_at: None,
        sections: vec![Section { heading_path: Vec::new(), text: body }],
    }
}
