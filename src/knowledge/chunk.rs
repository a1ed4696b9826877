//! Heading-aware chunking: cutting a parsed document into the passages that get indexed.
//!
//! A customer's question is answered from a handful of retrieved chunks, so each chunk should be
//! a self-contained passage about one thing. Chunks therefore follow the document's headings:
//! a chunk never mixes text from two sections, with one exception — runs of very short
//! sections (an FAQ with one-line answers, say) are merged so they do not become a crowd of
//! tiny, context-free chunks. When that happens the later sections' headings are written into
//! the chunk text on their own line, so no heading is lost.
//!
//! Inside a section, whole paragraphs are packed up to `max_words`. A paragraph that is too long
//! on its own is split at line breaks (lists, tables, code), then at sentence ends, and a single
//! over-long sentence at word boundaries. Text is only ever cut at whitespace, so every word of
//! the document appears in exactly one chunk. The output is deterministic.

use crate::document::{Chunk, Section, SourceDocument};

/// Size limits for chunks, in words (whitespace-separated tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// No chunk has more words than this (at least 1 is used).
    pub max_words: usize,
    /// Sections shorter than this are merged with their short neighbours.
    pub min_words: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions { max_words: 180, min_words: 40 }
    }
}

/// Splits `doc` into chunks with ids `{doc_id}#{ordinal}` (0-based, in document order). Every
/// chunk carries the document's metadata and the heading path of the section it comes from.
pub fn chunk_document(doc: &SourceDocument, opts: &ChunkOptions) -> Vec<Chunk> {
    let max = opts.max_words.max(1);
    let min = opts.min_words;
    let sections: Vec<(&Section, usize)> =
        doc.sections.iter().map(|s| (s, word_count(&s.text))).filter(|(_, words)| *words > 0).collect();

    let mut pieces: Vec<(&[String], String)> = Vec::new();
    let mut i = 0;
    while i < sections.len() {
        let (first, words) = sections[i];
        i += 1;
        if words >= min || words > max {
            for text in split_section(&first.text, max) {
                pieces.push((&first.heading_path, text));
            }
            continue;
        }
        // A short section: merge the short sections that follow while the total fits.
        let mut text = first.text.trim().to_string();
        let mut total = words;
        while let Some(&(next, next_words)) = sections.get(i) {
            if next_words >= min {
                break;
            }
            let heading = inline_heading(&first.heading_path, &next.heading_path);
            let heading_words = word_count(&heading);
            if total + heading_words + next_words > max {
                break;
            }
            text.push_str("\n\n");
            if !heading.is_empty() {
                text.push_str(&heading);
                text.push('\n');
            }
            text.push_str(next.text.trim());
            total += heading_words + next_words;
            i += 1;
        }
        pieces.push((&first.heading_path, text));
    }

    pieces
        .into_iter()
        .enumerate()
        .map(|(ordinal, (heading_path, text))| Chunk {
            chunk_id: format!("{}#{}", doc.doc_id, ordinal),
            doc_id: doc.doc_id.clone(),
            source_kind: doc.source_kind,
            title: doc.title.clone(),
            url: doc.url.clone(),
            product: doc.product.clone(),
            updated_at: doc.updated_at,
            heading_path: heading_path.to_vec(),
            text,
        })
        .collect()
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The heading line written into a merged chunk for a later section: the part of its heading
/// path that the chunk's own path does not already say.
fn inline_heading(chunk_path: &[String], section_path: &[String]) -> String {
    if chunk_path == section_path {
        return String::new();
    }
    let common = chunk_path.iter().zip(section_path).take_while(|(a, b)| a == b).count();
    let own = &section_path[common..];
    if own.is_empty() {
        // The section sits higher up than the chunk's path: name its own heading.
        return section_path.last().cloned().unwrap_or_default();
    }
    own.join(" > ")
}

/// A run of text to pack, with the separator that joins it to the previous run.
#[derive(Debug)]
struct Piece {
    sep: &'static str,
    text: String,
    words: usize,
}

/// Cuts one section's text into chunks of at most `max` words.
fn split_section(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    for (n, paragraph) in paragraphs(text).into_iter().enumerate() {
        let sep = if n == 0 { "" } else { "\n\n" };
        split_long(&paragraph, max, sep, &mut pieces);
    }

    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut words = 0;
    for piece in pieces {
        if words > 0 && words + piece.words > max {
            chunks.push(std::mem::take(&mut current).trim().to_string());
            words = 0;
        }
        if !current.is_empty() {
            current.push_str(piece.sep);
        }
        current.push_str(&piece.text);
        words += piece.words;
    }
    if words > 0 {
        chunks.push(current.trim().to_string());
    }
    chunks
}

/// Paragraphs: runs of non-blank lines, trailing spaces removed, indentation kept.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line.trim_end());
        }
    }
    if !current.is_empty() {
        out.push(current.join("\n"));
    }
    out
}

/// Adds `text` as pieces of at most `max` words: whole if it fits, else by lines, then by
/// sentences, then by words.
fn split_long(text: &str, max: usize, sep: &'static str, out: &mut Vec<Piece>) {
    let words = word_count(text);
    if words == 0 {
        return;
    }
    if words <= max {
        out.push(Piece { sep, text: text.to_string(), words });
        return;
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > 1 {
        for (n, line) in lines.into_iter().enumerate() {
            split_long(line, max, if n == 0 { sep } else { "\n" }, out);
        }
        return;
    }
    let sentences = split_sentences(text);
    if sentences.len() > 1 {
        for (n, sentence) in sentences.into_iter().enumerate() {
            split_long(sentence, max, if n == 0 { sep } else { " " }, out);
        }
        return;
    }
    // One sentence longer than a chunk: cut into near-equal runs of words.
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let parts = tokens.len().div_ceil(max);
    let per_part = tokens.len().div_ceil(parts);
    for (n, run) in tokens.chunks(per_part.max(1)).enumerate() {
        out.push(Piece { sep: if n == 0 { sep } else { " " }, text: run.join(" "), words: run.len() });
    }
}

/// Splits a paragraph into sentences at `.`, `?` or `!` (plus closing quotes or brackets)
/// followed by whitespace and an uppercase letter, digit or opening quote. Abbreviations such
/// as "e.g.", "i.e.", "U.S." and "Dr." do not end a sentence; decimals never do, as no
/// whitespace follows their dot.
fn split_sentences(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if !matches!(c, '.' | '?' | '!') {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && matches!(chars[j].1, '.' | '?' | '!') {
            j += 1;
        }
        let single_dot = c == '.' && j == i + 1;
        while j < chars.len() && matches!(chars[j].1, '"' | '\'' | ')' | ']' | '”' | '’' | '»') {
            j += 1;
        }
        if j >= chars.len() || !chars[j].1.is_whitespace() {
            i = j;
            continue;
        }
        let end = chars[j].0;
        let mut k = j;
        while k < chars.len() && chars[k].1.is_whitespace() {
            k += 1;
        }
        let Some(&(next_pos, next)) = chars.get(k) else {
            break;
        };
        let starts_sentence =
            next.is_uppercase() || next.is_ascii_digit() || matches!(next, '"' | '\'' | '“' | '‘' | '«');
        if starts_sentence && !(single_dot && is_abbreviation(&text[start..pos + 1])) {
            let sentence = text[start..end].trim();
            if !sentence.is_empty() {
                out.push(sentence);
            }
            start = next_pos;
        }
        i = k;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Whether the word ending `text` (which ends with a dot) is an abbreviation rather than the end
/// of a sentence: dotted letters ("e.g.", "U.S.", "a.m.", initials like "J.") or a common title
/// or short form ("Dr.", "Mr.", "vs.", "approx.").
fn is_abbreviation(text: &str) -> bool {
    let token = text.rsplit(char::is_whitespace).next().unwrap_or("");
    let token = token.trim_start_matches(['(', '[', '"', '\'', '“', '‘']);
    let lower = token.to_lowercase();
    let Some(stem) = lower.strip_suffix('.') else {
        return false;
    };
    if stem.is_empty() {
        return false;
    }
    // Dotted letters: "e.g", "i.e", "u.s", "j".
    let dotted = stem.split('.').all(|part| {
        let mut chars = part.chars();
        matches!((chars.next(), chars.next()), (Some(c), None) if c.is_alphabetic())
    });
    dotted
        || matches!(
            stem,
            "dr" | "mr"
                | "mrs"
                | "ms"
                | "prof"
                | "sr"
                | "jr"
                | "st"
                | "vs"
                | "approx"
                | "no"
                | "fig"
                | "cf"
                | "mt"
                | "ft"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::SourceKind;

    fn doc(sections: Vec<(Vec<&str>, String)>) -> SourceDocument {
        SourceDocument {
            doc_id: "help/billing".into(),
            source_kind: SourceKind::Doc,
            title: "Billing".into(),
            url: Some("https://help.example.com/billing".into()),
            product: Some("Pay".into()),
            updated_at: Some(1_700_000_000),
            sections: sections
                .into_iter()
                .map(|(path, text)| Section { heading_path: path.into_iter().map(String::from).collect(), text })
                .collect(),
        }
    }

    fn words(prefix: &str, n: usize) -> String {
        (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>().join(" ")
    }

    fn opts(max_words: usize, min_words: usize) -> ChunkOptions {
        ChunkOptions { max_words, min_words }
    }

    #[test]
    fn default_options() {
        assert_eq!(ChunkOptions::default(), opts(180, 40));
    }

    #[test]
    fn ids_and_metadata() {
        let d = doc(vec![(vec![], words("a", 50)), (vec!["Refunds"], words("b", 50))]);
        let chunks = chunk_document(&d, &ChunkOptions::default());
        assert_eq!(chunks.len(), 2);
        for (n, c) in chunks.iter().enumerate() {
            assert_eq!(c.chunk_id, format!("help/billing#{n}"));
            assert_eq!(c.doc_id, "help/billing");
            assert_eq!(c.title, "Billing");
            assert_eq!(c.url.as_deref(), Some("https://help.example.com/billing"));
            assert_eq!(c.product.as_deref(), Some("Pay"));
            assert_eq!(c.updated_at, Some(1_700_000_000));
            assert_eq!(c.source_kind, SourceKind::Doc);
        }
        assert!(chunks[0].heading_path.is_empty());
        assert_eq!(chunks[1].heading_path, vec!["Refunds".to_string()]);
    }

    #[test]
    fn headings_preserved_and_sections_not_mixed() {
        let d = doc(vec![
            (vec!["Billing"], words("a", 60)),
            (vec!["Billing", "Refunds"], words("b", 70)),
            (vec!["Account"], words("c", 45)),
        ]);
        let chunks = chunk_document(&d, &ChunkOptions::default());
        let paths: Vec<Vec<String>> = chunks.iter().map(|c| c.heading_path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                vec!["Billing".to_string()],
                vec!["Billing".to_string(), "Refunds".to_string()],
                vec!["Account".to_string()]
            ]
        );
        assert_eq!(chunks[1].text, words("b", 70));
    }

    #[test]
    fn paragraphs_are_packed_whole() {
        let text = [words("a", 30), words("b", 30), words("c", 30), words("d", 30)].join("\n\n");
        let d = doc(vec![(vec!["S"], text)]);
        let chunks = chunk_document(&d, &opts(70, 10));
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                format!("{}\n\n{}", words("a", 30), words("b", 30)),
                format!("{}\n\n{}", words("c", 30), words("d", 30))
            ]
        );
    }

    #[test]
    fn long_paragraph_split_at_sentences() {
        let sentences: Vec<String> = (0..10).map(|s| format!("Start{s} {}.", words(&format!("s{s}w"), 14))).collect();
        let d = doc(vec![(vec!["Long"], sentences.join(" "))]);
        let chunks = chunk_document(&d, &opts(40, 5));
        // 15 words per sentence: two sentences per chunk.
        assert_eq!(chunks.len(), 5);
        for (n, c) in chunks.iter().enumerate() {
            assert_eq!(c.text, format!("{} {}", sentences[2 * n], sentences[2 * n + 1]));
            assert_eq!(c.heading_path, vec!["Long".to_string()]);
        }
    }

    #[test]
    fn long_sentence_split_at_words() {
        let d = doc(vec![(vec![], words("x", 250))]);
        let chunks = chunk_document(&d, &opts(100, 10));
        let counts: Vec<usize> = chunks.iter().map(|c| word_count(&c.text)).collect();
        assert_eq!(counts, vec![84, 84, 82]);
        let joined = chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(" ");
        assert_eq!(joined, words("x", 250));
    }

    #[test]
    fn long_list_split_at_lines() {
        let items: Vec<String> = (0..20).map(|i| format!("- {}", words(&format!("i{i}w"), 9))).collect();
        let d = doc(vec![(vec!["Steps"], items.join("\n"))]);
        let chunks = chunk_document(&d, &opts(50, 5));
        assert_eq!(chunks.len(), 4);
        assert_eq!(chunks[0].text, items[..5].join("\n"));
        for c in &chunks {
            assert!(c.text.lines().all(|l| l.starts_with("- ")));
        }
    }

    #[test]
    fn merges_tiny_sections() {
        let d = doc(vec![
            (vec!["FAQ", "Can I pay by invoice?"], "Yes, on annual plans.".into()),
            (vec!["FAQ", "Do you offer refunds?"], "Within 30 days.".into()),
            (vec!["Contact"], "Use the chat.".into()),
            (vec!["Big"], words("b", 60)),
            (vec!["Tail"], "Short tail.".into()),
        ]);
        let chunks = chunk_document(&d, &ChunkOptions::default());
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].heading_path, vec!["FAQ".to_string(), "Can I pay by invoice?".to_string()]);
        assert_eq!(
            chunks[0].text,
            "Yes, on annual plans.\n\nDo you offer refunds?\nWithin 30 days.\n\nContact\nUse the chat."
        );
        assert_eq!(chunks[1].heading_path, vec!["Big".to_string()]);
        assert_eq!(chunks[2].text, "Short tail.");
    }

    #[test]
    fn merge_respects_max_words() {
        let d = doc(vec![(vec!["A"], words("a", 30)), (vec!["B"], words("b", 30)), (vec!["C"], words("c", 30))]);
        let chunks = chunk_document(&d, &opts(70, 40));
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].text, format!("{}\n\nB\n{}", words("a", 30), words("b", 30)));
        assert_eq!(chunks[1].heading_path, vec!["C".to_string()]);
        assert!(chunks.iter().all(|c| word_count(&c.text) <= 70));
    }

    #[test]
    fn inline_heading_lines() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(inline_heading(&s(&["A"]), &s(&["A", "B"])), "B");
        assert_eq!(inline_heading(&s(&["A", "B"]), &s(&["C", "D"])), "C > D");
        assert_eq!(inline_heading(&s(&["A", "B"]), &s(&["A"])), "A");
        assert_eq!(inline_heading(&s(&["A"]), &s(&["A"])), "");
        assert_eq!(inline_heading(&s(&["A"]), &s(&[])), "");
        assert_eq!(inline_heading(&s(&[]), &s(&["X"])), "X");
    }

    #[test]
    fn sentence_boundaries() {
        assert_eq!(
            split_sentences("One two. Three four? Five! 6 is a digit."),
            vec!["One two.", "Three four?", "Five!", "6 is a digit."]
        );
        assert_eq!(
            split_sentences("Use a card, e.g. Visa. See the U.S. Office. Ask Dr. Who. Pay 3.50 now. Done."),
            vec!["Use a card, e.g. Visa.", "See the U.S. Office.", "Ask Dr. Who.", "Pay 3.50 now.", "Done."]
        );
        assert_eq!(
            split_sentences("That is, i.e. This. lower case. Next"),
            vec!["That is, i.e. This. lower case.", "Next"]
        );
        assert_eq!(split_sentences("He said \"stop.\" Then left."), vec!["He said \"stop.\"", "Then left."]);
        assert_eq!(split_sentences("Wait... What?! \"Quoted\" start."), vec!["Wait...", "What?!", "\"Quoted\" start."]);
        assert_eq!(split_sentences("v2.3.1 is out. Upgrade."), vec!["v2.3.1 is out.", "Upgrade."]);
        assert_eq!(split_sentences("No terminator"), vec!["No terminator"]);
        assert_eq!(split_sentences("Ends. "), vec!["Ends."]);
    }

    #[test]
    fn no_empty_chunks() {
        let d = doc(vec![
            (vec!["Empty"], "   \n\n  ".into()),
            (vec!["Blank lines"], "\n\n\nword\n\n\n".into()),
            (vec![], String::new()),
        ]);
        let chunks = chunk_document(&d, &ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "word");
        assert_eq!(chunk_document(&doc(vec![]), &ChunkOptions::default()), vec![]);
    }

    #[test]
    fn odd_options() {
        let d = doc(vec![(vec!["A"], words("a", 10)), (vec!["B"], words("b", 10))]);
        // max_words 0 is treated as 1.
        let chunks = chunk_document(&d, &opts(0, 0));
        assert_eq!(chunks.len(), 20);
        // min above max: short sections still never exceed max.
        let chunks = chunk_document(&d, &opts(5, 50));
        assert!(chunks.iter().all(|c| word_count(&c.text) <= 5));
    }

    /// Deterministic pseudo-random numbers for generated documents.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, below: usize) -> usize {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % below.max(1)
        }
    }

    fn generated_doc(rng: &mut Lcg, counter: &mut usize) -> SourceDocument {
        let mut sections = Vec::new();
        let mut heading = 0;
        for _ in 0..1 + rng.next(8) {
            let depth = rng.next(4);
            let path: Vec<String> = (0..depth)
                .map(|_| {
                    heading += 1;
                    format!("H{heading}")
                })
                .collect();
            let mut paragraphs = Vec::new();
            for _ in 0..rng.next(6) {
                let kind = rng.next(4);
                let mut para = String::new();
                let sentences = 1 + rng.next(12);
                for s in 0..sentences {
                    let len = 1 + rng.next(if kind == 3 { 400 } else { 30 });
                    for w in 0..len {
                        *counter += 1;
                        let word = if w == 0 { format!("W{counter}") } else { format!("w{counter}") };
                        if !para.is_empty() {
                            para.push(match (kind, w) {
                                (1, 0) if s > 0 => '\n',
                                (2, _) if rng.next(5) == 0 => '\n',
                                _ => ' ',
                            });
                        }
                        para.push_str(&word);
                    }
                    if kind != 3 {
                        para.push_str([".", "?", "!", ""][rng.next(4)]);
                    }
                }
                paragraphs.push(para);
            }
            sections.push(Section { heading_path: path, text: paragraphs.join("\n\n") });
        }
        SourceDocument {
            doc_id: format!("gen/{counter}"),
            source_kind: SourceKind::Doc,
            title: "Generated".into(),
            url: None,
            product: None,
            updated_at: None,
            sections,
        }
    }

    fn content_words(text: &str) -> Vec<String> {
        text.split_whitespace().filter(|w| w.starts_with(['w', 'W'])).map(str::to_string).collect()
    }

    #[test]
    fn every_word_in_exactly_one_chunk() {
        let mut rng = Lcg(7);
        let mut counter = 0;
        for round in 0..200 {
            let d = generated_doc(&mut rng, &mut counter);
            let o = [opts(180, 40), opts(50, 10), opts(20, 20), opts(7, 3)][round % 4];
            let chunks = chunk_document(&d, &o);
            let expected: Vec<String> = d.sections.iter().flat_map(|s| content_words(&s.text)).collect();
            let got: Vec<String> = chunks.iter().flat_map(|c| content_words(&c.text)).collect();
            assert_eq!(got, expected, "round {round}");

            for (n, c) in chunks.iter().enumerate() {
                assert_eq!(c.chunk_id, format!("{}#{n}", d.doc_id));
                assert!(!c.text.trim().is_empty());
                assert!(word_count(&c.text) <= o.max_words, "round {round}: chunk over max");
            }
            // Every heading is either in a chunk's path or written into its text.
            for s in d.sections.iter().filter(|s| !s.text.trim().is_empty()) {
                for h in &s.heading_path {
                    let found =
                        chunks.iter().any(|c| c.heading_path.contains(h) || c.text.split_whitespace().any(|w| w == h));
                    assert!(found, "round {round}: heading {h} lost");
                }
            }
            assert_eq!(chunk_document(&d, &o), chunks, "not deterministic");
        }
    }
}
