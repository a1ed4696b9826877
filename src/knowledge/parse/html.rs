//! HTML help pages: the article's main content, with navigation, scripts and other page
//! furniture dropped.

use scraper::{ElementRef, Html, Node, Selector};

use super::*;

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

pub(super) fn parse_html(doc_id: &str, text: &str) -> SourceDocument {
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
