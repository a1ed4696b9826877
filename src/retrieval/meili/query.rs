//! Shaping what frontdesk asks Meilisearch.
//!
//! Meilisearch reads only the first ten words of a query, and with its default matching
//! strategy a question that opens with "Hi" can find nothing. Customer questions are long and
//! chatty, so the keyword query keeps the words that carry meaning: stop words and repeats are
//! dropped, and when more than ten remain, names, codes and acronyms go first, then longer
//! (usually rarer) words. The kept words stay in the customer's order, which Meilisearch's
//! proximity rule rewards.
//!
//! Term statistics use the same English analysis as the embedded backend (lower-casing, stop
//! words, stemming) so that confidence reads the same signals from both backends.

use super::super::is_distinctive;
pub use crate::retrieval::keyword::Analyzer;

/// Words Meilisearch considers per query.
pub const MAX_QUERY_WORDS: usize = 10;

/// Everyday English words that say nothing about what a question is about.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "either",
    "else",
    "ever",
    "few",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "hello",
    "her",
    "here",
    "hers",
    "herself",
    "hey",
    "hi",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "let",
    "me",
    "might",
    "mine",
    "more",
    "most",
    "much",
    "must",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "ought",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "please",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "yes",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// The words of a query as Meilisearch would split them (letters and digits; everything else
/// separates), each with whether it starts a sentence.
fn words(query: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut starts_sentence = true;
    for raw in query.split_whitespace() {
        let mut first_piece = true;
        for piece in raw.split(|c: char| !c.is_alphanumeric()).filter(|p| !p.is_empty()) {
            out.push((piece.to_string(), starts_sentence && first_piece));
            first_piece = false;
        }
        starts_sentence = raw.ends_with(['.', '?', '!', ':']);
    }
    out
}

/// The keyword query sent to Meilisearch: at most `MAX_QUERY_WORDS` meaningful words.
pub fn keyword_query(query: &str) -> String {
    let mut kept: Vec<(usize, String, bool)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let all = words(query);
    for (i, (word, starts)) in all.iter().enumerate() {
        let lower = word.to_lowercase();
        if is_stop_word(&lower) || !seen.insert(lower) {
            continue;
        }
        // A code like TH-4012 was split in two; both halves count as distinctive.
        let in_code = query.contains(&format!("{word}-")) || query.contains(&format!("-{word}"));
        kept.push((i, word.clone(), in_code || is_distinctive(word, *starts)));
    }
    if kept.is_empty() {
        // Only stop words: let Meilisearch try them rather than search for nothing.
        return all.into_iter().take(MAX_QUERY_WORDS).map(|(w, _)| w).collect::<Vec<_>>().join(" ");
    }
    if kept.len() > MAX_QUERY_WORDS {
        let mut by_weight = kept.clone();
        by_weight.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.chars().count().cmp(&a.1.chars().count())).then(a.0.cmp(&b.0)));
        let chosen: std::collections::HashSet<usize> = by_weight.iter().take(MAX_QUERY_WORDS).map(|k| k.0).collect();
        kept.retain(|k| chosen.contains(&k.0));
    }
    kept.into_iter().map(|(_, w, _)| w).collect::<Vec<_>>().join(" ")
}

/// Most term queries sent for one question.
pub const MAX_TERM_QUERIES: usize = 16;

/// The terms searched one by one for the keyword side: the analysed (stemmed) terms of the
/// question, which Meilisearch matches as prefixes ("refund" finds "refunds", "refunded").
/// Past `MAX_TERM_QUERIES`, names and codes and then longer terms are kept.
pub fn search_terms(analyzer: &Analyzer, query: &str) -> Vec<String> {
    let mut distinctive = std::collections::HashSet::new();
    for (word, starts) in words(query) {
        if is_distinctive(&word, starts) {
            distinctive.extend(analyzer.terms(&word));
        }
    }
    let mut terms: Vec<(usize, String)> = analyzer.terms(query).into_iter().enumerate().collect();
    if terms.len() > MAX_TERM_QUERIES {
        let mut by_weight = terms.clone();
        by_weight.sort_by(|a, b| {
            distinctive
                .contains(&b.1)
                .cmp(&distinctive.contains(&a.1))
                .then(b.1.chars().count().cmp(&a.1.chars().count()))
                .then(a.0.cmp(&b.0))
        });
        let keep: std::collections::HashSet<usize> = by_weight.iter().take(MAX_TERM_QUERIES).map(|t| t.0).collect();
        terms.retain(|t| keep.contains(&t.0));
    }
    terms.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_word_list_is_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn greetings_and_stop_words_are_dropped() {
        assert_eq!(keyword_query("Hi, how do I get a refund for my invoice?"), "refund invoice");
        assert_eq!(keyword_query("the and of"), "the and of");
        assert_eq!(keyword_query(""), "");
    }

    #[test]
    fn long_questions_keep_codes_and_names_within_ten_words() {
        let q = "Hello there, yesterday evening our accounting department tried exporting quarterly \
                 statements from FreshBooks but every single attempt failed showing error TH-4012 again";
        let shaped = keyword_query(q);
        let kept: Vec<&str> = shaped.split(' ').collect();
        assert_eq!(kept.len(), MAX_QUERY_WORDS, "{shaped}");
        for w in ["FreshBooks", "TH", "4012", "accounting", "statements"] {
            assert!(kept.contains(&w), "{w} missing from {shaped}");
        }
        // Order follows the question.
        let pos = |w: &str| kept.iter().position(|k| *k == w);
        assert!(pos("FreshBooks") < pos("TH"));
    }

    #[test]
    fn analyser_matches_the_embedded_keyword_terms() {
        let a = Analyzer::new().unwrap();
        assert_eq!(a.terms("Refunding the refunds of PayPal"), vec!["refund", "paypal"]);
    }
}
