//! Markdown help docs: optional front matter (title, updated date), then CommonMark with
//! tables, callouts and code blocks turned into sections.

use pulldown_cmark::{BlockQuoteKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::*;

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

pub(super) fn parse_markdown(doc_id: &str, text: &str) -> Result<SourceDocument, SkipReason> {
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
