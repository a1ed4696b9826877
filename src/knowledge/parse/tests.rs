//! Tests of the help-doc parsers.

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
    assert_eq!(parse_document("a", Format::Html, b"<html><script>var x = 1;</script></html>"), Err(SkipReason::NoText));
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
        Err(e) => {
            assert_eq!(e.to_string(), "front matter: updated_at 'yesterday' is not a date (use YYYY-MM-DD or RFC 3339)")
        }
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
    let doc = html("<head><meta property=\"article:modified_time\" content=\"2024-03-15T10:00:00Z\"></head><p>x</p>");
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
