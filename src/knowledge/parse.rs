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

use std::path::Path;

use pulldown_cmark::{BlockQuoteKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use scraper::{ElementRef, Html, Node, Selector};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::types::{Section, SourceDocument, SourceKind};

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

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

/// Front matter fields frontdesk understands.
#[derive(Debug, Default, PartialEq)]
struct FrontMatter {
    title: Option<String>,
    url: Option<String>,
    product: Option<String>,
    updated_at: Option<i64>,
}

/// Splits `---`-delimited front matter off the top of a Markdown file. Returns the parsed
/// fields and the body. Without a closing `---` (or `...`) line there is no front matter.
fn split_front_matter(text: &str) -> Result<(FrontMatter, &str), SkipReason> {
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return Ok((FrontMatter::default(), text));
    };
    if first.trim_end() != "---" {
        return Ok((FrontMatter::default(), text));
    }
    let mut offset = first.len();
    let mut body_lines = Vec::new();
    let mut closed = false;
    for line in lines {
        offset += line.len();
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            closed = true;
            break;
        }
        body_lines.push(trimmed);
    }
    if !closed {
        return Ok((FrontMatter::default(), text));
    }
    let mut fm = FrontMatter::default();
    for line in body_lines {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        // Indented lines belong to nested values of keys we do not read.
        if key.starts_with([' ', '\t']) {
            continue;
        }
        let key = key.trim().to_ascii_lowercase();
        let value = unquote(value.trim());
        let value = if value.is_empty() { None } else { Some(value.to_string()) };
        match key.as_str() {
            "title" => fm.title = value,
            "url" => fm.url = value,
            "product" => fm.product = value,
            "updated_at" => {
                fm.updated_at = match value {
                    None => None,
                    Some(v) => Some(parse_timestamp(&v).ok_or_else(|| {
                        SkipReason::BadFrontMatter(format!(
                            "updated_at '{v}' is not a date (use YYYY-MM-DD or RFC 3339)"
                        ))
                    })?),
                }
            }
            _ => {}
        }
    }
    Ok((fm, &text[offset.min(text.len())..]))
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

fn heading_level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

fn parse_markdown(doc_id: &str, text: &str) -> Result<SourceDocument, SkipReason> {
    let (fm, body) = split_front_matter(text)?;
    let mut md = MarkdownText::new(fm.title.clone());
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_GFM;
    for event in Parser::new_ext(body, options) {
        md.event(event);
    }
    let title_from_h1 = md.title_from_h1.take();
    let sections = md.finish();
    Ok(SourceDocument {
        doc_id: doc_id.to_string(),
        source_kind: SourceKind::Doc,
        title: fm.title.or(title_from_h1).unwrap_or_else(|| title_from_doc_id(doc_id)),
        url: fm.url,
        product: fm.product,
        updated_at: fm.updated_at,
        sections,
    })
}

/// One open list: its lines so far.
#[derive(Debug, Default)]
struct OpenList {
    lines: Vec<String>,
}

/// Walks pulldown-cmark events and builds sections.
#[derive(Debug)]
struct MarkdownText {
    out: SectionBuilder,
    front_matter_title: Option<String>,
    title_from_h1: Option<String>,
    /// Inline text of the paragraph, list item, heading or cell being read.
    inline: String,
    heading: Option<u8>,
    code: Option<String>,
    /// Nested lists, innermost last.
    lists: Vec<OpenList>,
    table_rows: Vec<String>,
    table_cells: Vec<String>,
    in_table: bool,
    /// Inside a raw HTML block: its content is dropped.
    in_html_block: bool,
    /// Text to put in front of the next block (GitHub-style "> [!NOTE]" callouts).
    pending_prefix: Option<&'static str>,
}

impl MarkdownText {
    fn new(front_matter_title: Option<String>) -> Self {
        MarkdownText {
            out: SectionBuilder::default(),
            front_matter_title,
            title_from_h1: None,
            inline: String::new(),
            heading: None,
            code: None,
            lists: Vec::new(),
            table_rows: Vec::new(),
            table_cells: Vec::new(),
            in_table: false,
            in_html_block: false,
            pending_prefix: None,
        }
    }

    fn event(&mut self, event: Event<'_>) {
        if self.in_html_block {
            if let Event::End(TagEnd::HtmlBlock) = event {
                self.in_html_block = false;
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(end) => self.end(end),
            Event::Text(t) => match self.code.as_mut() {
                Some(code) => code.push_str(&t),
                None => self.inline.push_str(&t),
            },
            Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => self.inline.push_str(&t),
            Event::SoftBreak => self.inline.push(' '),
            Event::HardBreak => self.inline.push('\n'),
            Event::Rule => self.flush_paragraph(),
            Event::Html(_) | Event::InlineHtml(_) | Event::FootnoteReference(_) | Event::TaskListMarker(_) => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { .. } if self.in_table || !self.lists.is_empty() => self.inline.push(' '),
            Tag::Heading { level, .. } => {
                self.flush_paragraph();
                self.heading = Some(heading_level_number(level));
            }
            Tag::Paragraph => {
                if self.lists.is_empty() {
                    self.flush_paragraph();
                } else if !self.inline.trim().is_empty() {
                    // A second paragraph inside a list item continues the item's line.
                    self.inline.push(' ');
                }
            }
            Tag::BlockQuote(kind) => {
                self.flush_paragraph();
                self.pending_prefix = kind.map(|k| match k {
                    BlockQuoteKind::Note => "Note: ",
                    BlockQuoteKind::Tip => "Tip: ",
                    BlockQuoteKind::Important => "Important: ",
                    BlockQuoteKind::Warning => "Warning: ",
                    BlockQuoteKind::Caution => "Caution: ",
                });
            }
            Tag::CodeBlock(_) => {
                self.flush_inline_line();
                if self.lists.is_empty() {
                    self.flush_paragraph();
                }
                self.code = Some(String::new());
            }
            Tag::HtmlBlock => {
                self.flush_paragraph();
                self.in_html_block = true;
            }
            Tag::List(_) => {
                self.flush_inline_line();
                if self.lists.is_empty() {
                    self.flush_paragraph();
                }
                self.lists.push(OpenList::default());
            }
            Tag::Item => self.flush_inline_line(),
            Tag::Table(_) => {
                self.flush_inline_line();
                self.flush_paragraph();
                self.in_table = true;
                self.table_rows.clear();
            }
            Tag::TableHead | Tag::TableRow => self.table_cells.clear(),
            Tag::TableCell => self.inline.clear(),
            Tag::FootnoteDefinition(_) | Tag::DefinitionList => self.flush_paragraph(),
            Tag::DefinitionListTitle | Tag::DefinitionListDefinition => self.flush_paragraph(),
            Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. }
            | Tag::MetadataBlock(_) => {}
        }
    }

    fn end(&mut self, end: TagEnd) {
        match end {
            TagEnd::Heading(_) if self.heading.is_none() => {}
            TagEnd::Heading(_) => {
                let level = self.heading.take().unwrap_or(1);
                let text = collapse_whitespace(&std::mem::take(&mut self.inline));
                self.heading_done(level, text);
            }
            TagEnd::Paragraph => {
                if self.lists.is_empty() {
                    self.flush_paragraph();
                }
            }
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                let code = code.trim_end_matches(['\n', '\r']).to_string();
                if code.trim().is_empty() {
                    return;
                }
                self.emit_block(code);
            }
            TagEnd::Item => self.flush_inline_line(),
            TagEnd::List(_) => {
                self.flush_inline_line();
                let Some(list) = self.lists.pop() else {
                    return;
                };
                match self.lists.last_mut() {
                    // Each nesting level indents its lines once more than its parent's.
                    Some(parent) => parent.lines.extend(list.lines.iter().map(|l| indent_lines(l, "  "))),
                    None => {
                        let block = list.lines.join("\n");
                        self.push_block(block);
                    }
                }
            }
            TagEnd::TableCell => {
                let cell = collapse_whitespace(&std::mem::take(&mut self.inline));
                self.table_cells.push(cell);
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                let cells = std::mem::take(&mut self.table_cells);
                if cells.iter().any(|c| !c.is_empty()) {
                    self.table_rows.push(cells.join(" | "));
                }
            }
            TagEnd::Table => {
                self.in_table = false;
                let block = std::mem::take(&mut self.table_rows).join("\n");
                self.emit_block(block);
            }
            TagEnd::BlockQuote(_) => {
                self.flush_paragraph();
                self.pending_prefix = None;
            }
            TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition => self.flush_paragraph(),
            TagEnd::HtmlBlock
            | TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::MetadataBlock(_) => {}
        }
    }

    fn heading_done(&mut self, level: u8, text: String) {
        let first_h1 = level == 1 && !self.out.seen_text && self.out.path.is_empty() && self.title_from_h1.is_none();
        if first_h1 {
            match &self.front_matter_title {
                None => {
                    if !text.is_empty() {
                        self.title_from_h1 = Some(text);
                    }
                    return;
                }
                // The H1 only repeats the front-matter title.
                Some(t) if same_text(t, &text) => return,
                Some(_) => {}
            }
        }
        self.out.heading(level, text);
    }

    /// Ends the current list item's line (inside a list) and adds it to the innermost list.
    fn flush_inline_line(&mut self) {
        let Some(list) = self.lists.last_mut() else {
            return;
        };
        let text = collapse_lines(&std::mem::take(&mut self.inline));
        if !text.is_empty() {
            list.lines.push(format!("- {}", text.replace('\n', " ")));
        }
    }

    /// Ends the current paragraph (outside lists) and adds it as a block.
    fn flush_paragraph(&mut self) {
        if !self.lists.is_empty() || self.in_table || self.heading.is_some() {
            return;
        }
        let text = collapse_lines(&std::mem::take(&mut self.inline));
        self.push_block(text);
    }

    /// Adds a finished code block or table: inside the open list, or as a block of its own.
    fn emit_block(&mut self, text: String) {
        match self.lists.last_mut() {
            Some(list) if !text.trim().is_empty() => list.lines.push(text),
            Some(_) => {}
            None => self.push_block(text),
        }
    }

    fn push_block(&mut self, text: String) {
        if text.trim().is_empty() {
            return;
        }
        let text = match self.pending_prefix.take() {
            Some(prefix) => format!("{prefix}{text}"),
            None => text,
        };
        self.out.push_block(text);
    }

    fn finish(mut self) -> Vec<Section> {
        // Close anything truncated markup left open.
        self.heading = None;
        if let Some(code) = self.code.take() {
            self.inline.push_str(&code);
        }
        while !self.lists.is_empty() {
            self.end(TagEnd::List(false));
        }
        self.in_table = false;
        if !self.table_rows.is_empty() {
            let block = std::mem::take(&mut self.table_rows).join("\n");
            self.push_block(block);
        }
        self.flush_paragraph();
        self.out.finish()
    }
}

fn indent_lines(text: &str, indent: &str) -> String {
    text.lines().map(|l| format!("{indent}{l}")).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

/// Elements whose content is never help text.
fn is_dropped_element(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "nav"
            | "header"
            | "footer"
            | "svg"
            | "form"
            | "head"
            | "iframe"
            | "object"
            | "canvas"
            | "math"
    )
}

/// Elements that start and end a block of text.
fn is_block_element(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "section"
            | "article"
            | "main"
            | "aside"
            | "blockquote"
            | "address"
            | "figure"
            | "figcaption"
            | "details"
            | "summary"
            | "dl"
            | "dt"
            | "dd"
            | "hr"
            | "body"
            | "html"
            | "center"
            | "fieldset"
            | "caption"
    )
}

fn html_heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn select_first<'a>(html: &'a Html, selector: &str) -> Option<ElementRef<'a>> {
    let selector = Selector::parse(selector).ok()?;
    html.select(&selector).next()
}

fn element_text(el: ElementRef<'_>) -> String {
    collapse_whitespace(&el.text().collect::<String>())
}

fn parse_html(doc_id: &str, text: &str) -> SourceDocument {
    let html = Html::parse_document(text);

    let non_empty = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let url = non_empty(select_first(&html, "link[rel~=\"canonical\"]").and_then(|e| e.attr("href")))
        .or_else(|| non_empty(select_first(&html, "meta[property=\"og:url\"]").and_then(|e| e.attr("content"))));
    let updated_at = select_first(&html, "meta[property=\"article:modified_time\"]")
        .and_then(|e| e.attr("content"))
        .and_then(parse_timestamp);

    let mut walker = HtmlText::default();
    let root = html.tree.root();
    let mut next = root.first_child();
    while let Some(node) = next {
        let descend = match node.value() {
            Node::Text(t) => {
                walker.text(t);
                false
            }
            Node::Element(el) => {
                let name = el.name();
                if is_dropped_element(name) {
                    false
                } else if let Some(level) = html_heading_level(name) {
                    if let Some(el_ref) = ElementRef::wrap(node) {
                        walker.heading(level, element_text(el_ref));
                    }
                    false
                } else {
                    if name == "img" {
                        if let Some(alt) = el.attr("alt") {
                            walker.text(&format!(" {alt} "));
                        }
                    }
                    walker.open(name);
                    true
                }
            }
            _ => false,
        };
        if descend {
            if let Some(child) = node.first_child() {
                next = Some(child);
                continue;
            }
            if let Some(el) = node.value().as_element() {
                walker.close(el.name());
            }
        }
        // Move to the next sibling, closing every element we climb out of.
        let mut current = node;
        next = None;
        loop {
            if let Some(sibling) = current.next_sibling() {
                next = Some(sibling);
                break;
            }
            match current.parent() {
                Some(parent) if parent != root => {
                    if let Some(el) = parent.value().as_element() {
                        walker.close(el.name());
                    }
                    current = parent;
                }
                _ => break,
            }
        }
    }

    // The first non-empty <h1> outside dropped page furniture is the title; else <title>.
    let title = match walker.title.take() {
        Some(h1) => h1,
        None => select_first(&html, "title").map(element_text).unwrap_or_default(),
    };
    SourceDocument {
        doc_id: doc_id.to_string(),
        source_kind: SourceKind::Doc,
        title: if title.is_empty() { title_from_doc_id(doc_id) } else { title },
        url,
        product: None,
        updated_at,
        sections: walker.finish(),
    }
}

/// Builds sections from a depth-first walk over the HTML tree.
#[derive(Debug, Default)]
struct HtmlText {
    out: SectionBuilder,
    /// Text of the first `<h1>` met in the walk.
    title: Option<String>,
    inline: String,
    /// Depth of `<pre>` nesting, and the verbatim text inside.
    pre_depth: usize,
    pre: String,
    /// Open `<ul>`/`<ol>` elements; lines of the outermost list block.
    list_depth: usize,
    list_lines: Vec<String>,
    /// Whether the inline text being collected belongs to an `<li>`.
    in_item: bool,
    table_depth: usize,
    table_rows: Vec<String>,
    row_cells: Vec<String>,
    in_cell: bool,
}

impl HtmlText {
    fn text(&mut self, t: &str) {
        if self.pre_depth > 0 {
            self.pre.push_str(t);
        } else {
            self.inline.push_str(t);
        }
    }

    fn heading(&mut self, level: u8, text: String) {
        if level == 1 && self.title.is_none() && !text.is_empty() {
            // The page title: not part of any heading path.
            self.title = Some(text);
            self.flush_inline();
            return;
        }
        if self.pre_depth > 0 || self.in_cell {
            self.text(&format!(" {text} "));
            return;
        }
        self.flush_all();
        self.out.heading(level, text);
    }

    fn open(&mut self, name: &str) {
        if self.pre_depth > 0 {
            if name == "br" {
                self.pre.push('\n');
            }
            if name == "pre" {
                self.pre_depth += 1;
            }
            return;
        }
        match name {
            "pre" => {
                self.flush_inline();
                self.pre_depth = 1;
                self.pre.clear();
            }
            "ul" | "ol" | "menu" => {
                self.flush_inline();
                self.list_depth += 1;
            }
            "li" => {
                self.flush_inline();
                self.in_item = true;
            }
            "table" => {
                if self.in_cell {
                    self.inline.push(' ');
                    self.table_depth += 1;
                    return;
                }
                self.flush_inline();
                self.table_depth += 1;
                if self.table_depth == 1 {
                    self.table_rows.clear();
                }
            }
            "tr" if self.table_depth == 1 && !self.in_cell => self.row_cells.clear(),
            "td" | "th" if self.table_depth == 1 && !self.in_cell => {
                self.flush_inline();
                self.in_cell = true;
            }
            "br" => self.inline.push(' '),
            _ if self.in_cell => self.inline.push(' '),
            _ if is_block_element(name) => self.flush_inline(),
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        if self.pre_depth > 0 {
            if name == "pre" {
                self.pre_depth -= 1;
                if self.pre_depth == 0 {
                    let code = std::mem::take(&mut self.pre);
                    let code = code.strip_prefix('\n').unwrap_or(&code);
                    let code = code.trim_end().to_string();
                    self.emit_block(code);
                }
            }
            return;
        }
        match name {
            "ul" | "ol" | "menu" => {
                self.flush_inline();
                self.list_depth = self.list_depth.saturating_sub(1);
                if self.list_depth == 0 {
                    let block = std::mem::take(&mut self.list_lines).join("\n");
                    self.out.push_block(block);
                }
            }
            "li" => {
                self.flush_inline();
                self.in_item = false;
            }
            "td" | "th" if self.table_depth == 1 && self.in_cell => {
                self.in_cell = false;
                let cell = collapse_whitespace(&std::mem::take(&mut self.inline));
                self.row_cells.push(cell);
            }
            "tr" if self.table_depth == 1 && !self.in_cell => self.finish_row(),
            "table" => {
                if self.in_cell {
                    self.inline.push(' ');
                    self.table_depth = self.table_depth.saturating_sub(1);
                    return;
                }
                self.finish_row();
                self.table_depth = self.table_depth.saturating_sub(1);
                if self.table_depth == 0 {
                    let block = std::mem::take(&mut self.table_rows).join("\n");
                    self.emit_block(block);
                }
            }
            _ if self.in_cell => self.inline.push(' '),
            _ if is_block_element(name) => self.flush_inline(),
            _ => {}
        }
    }

    fn finish_row(&mut self) {
        if self.in_cell {
            self.in_cell = false;
            let cell = collapse_whitespace(&std::mem::take(&mut self.inline));
            self.row_cells.push(cell);
        }
        let cells = std::mem::take(&mut self.row_cells);
        if cells.iter().any(|c| !c.is_empty()) {
            self.table_rows.push(cells.join(" | "));
        }
    }

    /// Ends the current run of inline text as a block, a list line or part of a table row.
    fn flush_inline(&mut self) {
        if self.in_cell {
            return;
        }
        let text = collapse_whitespace(&std::mem::take(&mut self.inline));
        if text.is_empty() {
            return;
        }
        if self.table_depth > 0 {
            // Text inside a table but outside any cell: keep it as its own row.
            self.table_rows.push(text);
            return;
        }
        if self.list_depth > 0 {
            let indent = "  ".repeat(self.list_depth.saturating_sub(1));
            let line = if self.in_item { format!("{indent}- {text}") } else { format!("{indent}{text}") };
            self.list_lines.push(line);
            return;
        }
        self.out.push_block(text);
    }

    /// Adds a finished block (table, code) where it belongs: inside the open list, or on its own.
    fn emit_block(&mut self, block: String) {
        if block.trim().is_empty() {
            return;
        }
        if self.table_depth > 0 {
            self.table_rows.push(block);
        } else if self.list_depth > 0 {
            self.list_lines.push(block);
        } else {
            self.out.push_block(block);
        }
    }

    /// Closes everything open before a heading starts a new section.
    fn flush_all(&mut self) {
        self.flush_inline();
        if !self.list_lines.is_empty() {
            let block = std::mem::take(&mut self.list_lines).join("\n");
            self.out.push_block(block);
        }
        if self.table_depth > 0 {
            self.finish_row();
            if !self.table_rows.is_empty() {
                let block = std::mem::take(&mut self.table_rows).join("\n");
                self.out.push_block(block);
            }
        }
    }

    fn finish(mut self) -> Vec<Section> {
        if self.pre_depth > 0 {
            self.pre_depth = 0;
            let code = std::mem::take(&mut self.pre);
            self.emit_block(code.trim_end().to_string());
        }
        self.in_cell = false;
        self.flush_all();
        self.out.finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Plain text
// ---------------------------------------------------------------------------------------------

fn parse_text(doc_id: &str, text: &str) -> SourceDocument {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn md(text: &str) -> SourceDocument {
        match parse_document("help/getting-started_guide", Format::Markdown, text.as_bytes()) {
            Ok(doc) => doc,
            Err(e) => panic!("markdown did not parse: {e}"),
        }
    }

    fn html(text: &str) -> SourceDocument {
        match parse_document("help/billing_faq", Format::Html, text.as_bytes()) {
            Ok(doc) => doc,
            Err(e) => panic!("html did not parse: {e}"),
        }
    }

    fn paths(doc: &SourceDocument) -> Vec<Vec<&str>> {
        doc.sections.iter().map(|s| s.heading_path.iter().map(String::as_str).collect()).collect()
    }

    // ---- formats and decoding ----

    #[test]
    fn formats_from_extensions() {
        let f = |p: &str| format_for_path(Path::new(p));
        assert_eq!(f("a/b.md"), Some(Format::Markdown));
        assert_eq!(f("A.MARKDOWN"), Some(Format::Markdown));
        assert_eq!(f("x.Mdx"), Some(Format::Markdown));
        assert_eq!(f("x.html"), Some(Format::Html));
        assert_eq!(f("x.HTM"), Some(Format::Html));
        assert_eq!(f("x.txt"), Some(Format::Text));
        assert_eq!(f("x.text"), Some(Format::Text));
        assert_eq!(f("x.pdf"), None);
        assert_eq!(f("README"), None);
        assert_eq!(f(".md"), None);
    }

    #[test]
    fn decoding_failures() {
        assert_eq!(parse_document("a", Format::Text, b""), Err(SkipReason::Empty));
        assert_eq!(parse_document("a", Format::Text, b" \n\t\r\n "), Err(SkipReason::Empty));
        assert_eq!(parse_document("a", Format::Text, b"\xef\xbb\xbf  \n"), Err(SkipReason::Empty));
        assert_eq!(parse_document("a", Format::Text, b"hello\0world"), Err(SkipReason::Binary));
        assert_eq!(parse_document("a", Format::Markdown, b"caf\xe9 menu"), Err(SkipReason::NotUtf8));
        let big = vec![b'a'; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(
            parse_document("a", Format::Text, &big),
            Err(SkipReason::TooLarge { bytes: MAX_DOCUMENT_BYTES + 1, limit: MAX_DOCUMENT_BYTES })
        );
        let ok = vec![b'a'; MAX_DOCUMENT_BYTES];
        assert!(parse_document("a", Format::Text, &ok).is_ok());
    }

    #[test]
    fn nul_after_sniff_window_is_not_binary() {
        let mut bytes = vec![b'a'; BINARY_SNIFF_BYTES];
        bytes.extend_from_slice(b" \0 tail");
        assert!(parse_document("a", Format::Text, &bytes).is_ok());
    }

    #[test]
    fn bom_is_stripped() {
        let doc = md("\u{feff}---\ntitle: Hello\n---\nBody text.");
        assert_eq!(doc.title, "Hello");
        assert_eq!(doc.sections[0].text, "Body text.");
    }

    #[test]
    fn no_text() {
        assert_eq!(
            parse_document("a", Format::Markdown, b"---\ntitle: x\n---\n<!-- nothing -->\n"),
            Err(SkipReason::NoText)
        );
        assert_eq!(
            parse_document("a", Format::Html, b"<html><script>var x = 1;</script></html>"),
            Err(SkipReason::NoText)
        );
        assert_eq!(parse_document("a", Format::Markdown, b"# Only a title\n"), Err(SkipReason::NoText));
    }

    #[test]
    fn skip_reason_messages() {
        assert_eq!(SkipReason::Binary.to_string(), "binary file");
        assert_eq!(SkipReason::NotUtf8.to_string(), "not valid UTF-8");
        assert_eq!(SkipReason::Empty.to_string(), "empty file");
        assert_eq!(SkipReason::NoText.to_string(), "no text found");
        assert_eq!(
            SkipReason::UnsupportedType("pdf".into()).to_string(),
            "unsupported file type (.pdf); use .md, .html or .txt"
        );
        assert_eq!(
            SkipReason::TooLarge { bytes: 6 * 1024 * 1024, limit: MAX_DOCUMENT_BYTES }.to_string(),
            "file too large (6.0 MiB; the limit is 5 MiB)"
        );
        let bad = parse_document("a", Format::Markdown, b"---\nupdated_at: yesterday\n---\nText");
        match bad {
            Err(e) => assert_eq!(
                e.to_string(),
                "front matter: updated_at 'yesterday' is not a date (use YYYY-MM-DD or RFC 3339)"
            ),
            Ok(_) => panic!("bad date accepted"),
        }
    }

    #[test]
    fn fallback_titles() {
        assert_eq!(title_from_doc_id("help/getting-started_guide"), "getting started guide");
        assert_eq!(title_from_doc_id("refunds"), "refunds");
        assert_eq!(title_from_doc_id("a\\b\\c-d"), "c d");
        assert_eq!(title_from_doc_id("dir/"), "dir");
        assert_eq!(title_from_doc_id(""), "Untitled");
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("2024-03-15"), Some(1_710_460_800));
        assert_eq!(parse_timestamp("2024-03-15T10:00:00Z"), Some(1_710_496_800));
        assert_eq!(parse_timestamp("2024-03-15T12:00:00+02:00"), Some(1_710_496_800));
        assert_eq!(parse_timestamp("2024-02-30"), None);
        assert_eq!(parse_timestamp("15/03/2024"), None);
        assert_eq!(parse_timestamp(""), None);
    }

    // ---- markdown ----

    #[test]
    fn markdown_front_matter() {
        let doc = md("---\ntitle: \"Refund policy\"\nurl: 'https://help.example.com/refunds'\nproduct: Billing\nupdated_at: 2024-03-15\nauthor: someone\ntags:\n  - a\n---\n\nWe refund within 30 days.\n");
        assert_eq!(doc.title, "Refund policy");
        assert_eq!(doc.url.as_deref(), Some("https://help.example.com/refunds"));
        assert_eq!(doc.product.as_deref(), Some("Billing"));
        assert_eq!(doc.updated_at, Some(1_710_460_800));
        assert_eq!(doc.source_kind, SourceKind::Doc);
        assert_eq!(doc.doc_id, "help/getting-started_guide");
        assert_eq!(doc.sections, vec![Section { heading_path: vec![], text: "We refund within 30 days.".into() }]);
    }

    #[test]
    fn markdown_front_matter_rfc3339_and_crlf() {
        let doc = md("---\r\nupdated_at: \"2024-03-15T10:00:00Z\"\r\n---\r\nText here.\r\n");
        assert_eq!(doc.updated_at, Some(1_710_496_800));
        assert_eq!(doc.sections[0].text, "Text here.");
    }

    #[test]
    fn unclosed_front_matter_is_just_markdown() {
        let doc = md("---\ntitle: x\nSome text");
        assert!(doc.title != "x");
        assert!(doc.sections.iter().any(|s| s.text.contains("Some text")));
    }

    #[test]
    fn markdown_title_and_headings() {
        let doc = md("# Getting started\n<!-- source: https://internal/wiki/123 -->\n\nIntro paragraph.\n\n## Install\n\nRun the installer.\n\n### On macOS\n\nDrag the app.\n\n## Sign in\n\nUse your work email.\n\n# Appendix\n\nMore.\n");
        assert_eq!(doc.title, "Getting started");
        assert_eq!(
            paths(&doc),
            vec![vec![], vec!["Install"], vec!["Install", "On macOS"], vec!["Sign in"], vec!["Appendix"]]
        );
        assert_eq!(doc.sections[0].text, "Intro paragraph.");
        assert_eq!(doc.sections[2].text, "Drag the app.");
        assert!(!doc.sections.iter().any(|s| s.text.contains("source:")));
    }

    #[test]
    fn h1_after_text_is_a_heading() {
        let doc = md("Some intro.\n\n# Not the title\n\nBody.");
        assert_eq!(doc.title, "getting started guide");
        assert_eq!(paths(&doc), vec![vec![], vec!["Not the title"]]);
    }

    #[test]
    fn h1_with_front_matter_title() {
        let doc = md("---\ntitle: Refunds\n---\n# Refunds\n\nText.");
        assert_eq!(doc.title, "Refunds");
        assert_eq!(paths(&doc), vec![Vec::<&str>::new()]);
        let doc = md("---\ntitle: Refunds\n---\n# Overview\n\nText.");
        assert_eq!(doc.title, "Refunds");
        assert_eq!(paths(&doc), vec![vec!["Overview"]]);
    }

    #[test]
    fn markdown_blocks() {
        let doc = md("# T\n\nFirst *para* with [a link](https://example.com/x) and `code`.\nSame para.\n\n- one\n- two\n  - nested\n- three\n\n1. first\n2. second\n\n```bash\n  indented   code\nline two\n```\n\n    indented block\n\n| Plan | Price |\n|------|-------|\n| Pro  | $10   |\n\n![Screenshot of settings](img.png)\n\n> Quoted text.\n\n<div>\nraw html\n</div>\n\nLast.");
        let text = &doc.sections[0].text;
        let blocks: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(
            blocks,
            vec![
                "First para with a link and code. Same para.",
                "- one\n- two\n  - nested\n- three",
                "- first\n- second",
                "  indented   code\nline two",
                "indented block",
                "Plan | Price\nPro | $10",
                "Screenshot of settings",
                "Quoted text.",
                "Last.",
            ]
        );
        assert!(!text.contains("https://"));
        assert!(!text.contains("raw html"));
    }

    #[test]
    fn markdown_list_items_with_paragraphs_and_code() {
        let doc = md("- Step one.\n\n  More about step one.\n\n- Step two:\n\n  ```\n  run it\n  ```\n");
        assert_eq!(doc.sections[0].text, "- Step one. More about step one.\n- Step two:\nrun it");
    }

    #[test]
    fn markdown_callout() {
        let doc = md("> [!WARNING]\n> Deleting is permanent.\n");
        assert_eq!(doc.sections[0].text, "Warning: Deleting is permanent.");
    }

    #[test]
    fn markdown_heading_levels_skip_and_return() {
        let doc = md("Intro.\n\n### Deep\n\nA.\n\n## Mid\n\nB.\n\n#### Deeper\n\nC.\n\n## Mid two\n\nD.");
        assert_eq!(paths(&doc), vec![vec![], vec!["Deep"], vec!["Mid"], vec!["Mid", "Deeper"], vec!["Mid two"]]);
    }

    #[test]
    fn empty_sections_are_dropped() {
        let doc = md("# Title\n\n## Empty\n\n## Full\n\nText.");
        assert_eq!(paths(&doc), vec![vec!["Full"]]);
    }

    #[test]
    fn markdown_inline_html_dropped_text_kept() {
        let doc = md("Press <kbd>Ctrl</kbd>+<kbd>S</kbd> to save.<!-- note -->");
        assert_eq!(doc.sections[0].text, "Press Ctrl+S to save.");
    }

    // ---- html ----

    #[test]
    fn html_structure() {
        let doc = html(
            r#"<!doctype html><html><head><title>Billing FAQ | Acme Help</title>
            <link rel="canonical" href="https://help.acme.com/billing">
            <style>.x{color:red}</style><script>alert(1)</script></head>
            <body><header><h1>Acme</h1><nav><a href="/">Home</a></nav></header>
            <main><h1>Billing   FAQ</h1>
            <p>Intro   text
            over lines.</p>
            <h2>Refunds</h2><p>We refund <b>within</b> 30 days.</p>
            <ul><li>Item one</li><li>Item <em>two</em><ul><li>Nested</li></ul></li></ul>
            <h3>Partial refunds</h3>
            <table><tr><th>Plan</th><th>Refund</th></tr><tr><td>Pro</td><td>Full</td></tr></table>
            <pre>  line 1
    line 2</pre>
            <blockquote>Quoted.</blockquote>
            <div>Loose div text <span>continues</span></div>
            <noscript>Enable JS</noscript><form><label>Email</label><input></form>
            <svg><text>svg text</text></svg><template><p>tpl</p></template>
            </main><footer>© Acme</footer></body></html>"#,
        );
        assert_eq!(doc.title, "Billing FAQ");
        assert_eq!(doc.url.as_deref(), Some("https://help.acme.com/billing"));
        assert_eq!(paths(&doc), vec![vec![], vec!["Refunds"], vec!["Refunds", "Partial refunds"]]);
        assert_eq!(doc.sections[0].text, "Intro text over lines.");
        assert_eq!(doc.sections[1].text, "We refund within 30 days.\n\n- Item one\n- Item two\n  - Nested");
        assert_eq!(
            doc.sections[2].text,
            "Plan | Refund\nPro | Full\n\n  line 1\n    line 2\n\nQuoted.\n\nLoose div text continues"
        );
        let all: String = doc.sections.iter().map(|s| s.text.as_str()).collect();
        for dropped in ["alert", "color", "Home", "Enable JS", "Email", "svg text", "tpl", "© Acme", "Acme Help"] {
            assert!(!all.contains(dropped), "{dropped} leaked");
        }
    }

    #[test]
    fn html_title_fallbacks() {
        let doc = html("<html><head><title> Page   title </title><meta property=\"og:url\" content=\"https://x.example/p\"></head><body><p>Text</p></body></html>");
        assert_eq!(doc.title, "Page title");
        assert_eq!(doc.url.as_deref(), Some("https://x.example/p"));
        let doc = html("<p>Just text</p>");
        assert_eq!(doc.title, "billing faq");
        assert_eq!(doc.url, None);
    }

    #[test]
    fn html_later_h1_is_a_heading() {
        let doc = html("<p>Before the title.</p><h1>Title</h1><p>a</p><h1>Second</h1><p>b</p><h1></h1>");
        assert_eq!(doc.title, "Title");
        assert_eq!(paths(&doc), vec![vec![], vec!["Second"]]);
        assert_eq!(doc.sections[0].text, "Before the title.\n\na");
    }

    #[test]
    fn html_modified_time() {
        let doc =
            html("<head><meta property=\"article:modified_time\" content=\"2024-03-15T10:00:00Z\"></head><p>x</p>");
        assert_eq!(doc.updated_at, Some(1_710_496_800));
    }

    #[test]
    fn html_fragment_and_comments() {
        let doc = html("<!-- hidden --><h2>Setup</h2>Some <i>loose</i> text<br>after break<h2>Next</h2><p>More</p>");
        assert_eq!(paths(&doc), vec![vec!["Setup"], vec!["Next"]]);
        assert_eq!(doc.sections[0].text, "Some loose text after break");
    }

    // ---- text ----

    #[test]
    fn plain_text() {
        let doc = match parse_document(
            "notes/reset_password",
            Format::Text,
            b"Line one\r\nLine two   \r\n\r\n\r\n\r\nPara two\n",
        ) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(doc.title, "reset password");
        assert_eq!(doc.sections, vec![Section { heading_path: vec![], text: "Line one\nLine two\n\nPara two".into() }]);
        assert_eq!(doc.source_kind, SourceKind::Doc);
    }

    // ---- robustness ----

    /// Small deterministic generator so the garbage test needs no extra crates.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut rng = Lcg(42);
        let pieces: &[&str] = &[
            "#",
            "## ",
            "\n",
            "\n\n",
            "---\n",
            "- ",
            "* ",
            "1. ",
            "```",
            "    ",
            "|",
            "|---|",
            "<",
            ">",
            "</",
            "<div>",
            "<pre>",
            "</pre>",
            "<table>",
            "<td>",
            "<tr>",
            "<li>",
            "<ul>",
            "</ul>",
            "<h1>",
            "<h2>",
            "</h1>",
            "<!--",
            "-->",
            "[",
            "](",
            ")",
            "![",
            "*",
            "_",
            "`",
            "\\",
            "&amp;",
            "&#",
            "é",
            "日本",
            "\u{feff}",
            "title: x\n",
            "updated_at: 2024-01-01\n",
            "text ",
            "word. ",
            "> ",
            "[^1]",
            "[^1]: note\n",
            "<script>",
            "</script>",
            "\t",
            "\r\n",
        ];
        for _ in 0..400 {
            let mut s = String::new();
            let n = (rng.next() % 60) as usize;
            for _ in 0..n {
                s.push_str(pieces[(rng.next() as usize) % pieces.len()]);
            }
            for format in [Format::Markdown, Format::Html, Format::Text] {
                let _ = parse_document("x", format, s.as_bytes());
                // Truncated at every few bytes (on char boundaries).
                let mut cut = 0;
                while cut < s.len() {
                    if s.is_char_boundary(cut) {
                        let _ = parse_document("x", format, &s.as_bytes()[..cut]);
                    }
                    cut += 7;
                }
            }
        }
        for _ in 0..200 {
            let n = (rng.next() % 300) as usize;
            let bytes: Vec<u8> = (0..n).map(|_| (rng.next() & 0xff) as u8).collect();
            for format in [Format::Markdown, Format::Html, Format::Text] {
                let _ = parse_document("x", format, &bytes);
            }
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep_html = "<div>".repeat(3_000) + "deep text" + &"</div>".repeat(3_000);
        let doc = html(&deep_html);
        assert!(doc.sections[0].text.contains("deep text"));
        let deep_md = ">".repeat(5_000) + " quoted\n\n" + &"- ".repeat(2_000) + "item\n";
        let _ = parse_document("x", Format::Markdown, deep_md.as_bytes());
    }

    #[test]
    fn truncated_markup() {
        let doc = md("# Title\n\nIntro.\n\n```\nunterminated code\n");
        assert!(doc.sections.iter().any(|s| s.text.contains("unterminated code")));
        let doc = html("<h1>T</h1><p>open para<ul><li>open item<table><tr><td>cell");
        let all: Vec<&str> = doc.sections.iter().map(|s| s.text.as_str()).collect();
        let joined = all.join("\n");
        assert!(joined.contains("open para"));
        assert!(joined.contains("open item"));
        assert!(joined.contains("cell"));
    }
}
