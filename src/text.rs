//! Small text utilities shared by condensing, generation and verification: words, content
//! words (stop words removed), a light normaliser for matching ("refunds" ~ "refund"), and a
//! sentence splitter that keeps abbreviations, decimals and list items intact.

use std::collections::HashSet;
use std::sync::OnceLock;

pub const STOP: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from", "get", "got", "had",
    "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "i'm", "if", "in", "into", "is",
    "it", "it's", "its", "just", "know", "like", "me", "might", "more", "most", "my", "need", "no", "not", "now", "of",
    "ok", "okay", "on", "one", "or", "our", "out", "please", "same", "should", "so", "some", "such", "tell", "than",
    "thank", "thanks", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "too",
    "up", "us", "very", "want", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will",
    "with", "would", "yes", "you", "your", "hi", "hello", "hey", "there's", "what's", "don't", "doesn't", "can't",
    "isn't", "im", "ive", "i've", "let", "make", "way", "really", "still", "much", "many", "any", "every", "each",
];

fn stop_words() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOP.iter().copied().collect())
}

/// Lower-cased words; apostrophes and hyphens inside a word are kept (`don't`, `th-4012`).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
        .map(|w| w.trim_matches(|c: char| c == '\'' || c == '-').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Content words: not stop words, at least two characters (codes like `th-4012` stay whole).
pub fn content_words(text: &str) -> Vec<String> {
    let stop = stop_words();
    words(text).into_iter().filter(|w| w.len() > 1 && !stop.contains(w.as_str())).collect()
}

/// A crude English normaliser for matching: strips common plural and verb endings.
pub fn normalize(word: &str) -> String {
    let w = word.to_lowercase();
    let stem = |suffix: &str| w.strip_suffix(suffix).filter(|s| s.len() >= 3);
    if let Some(s) = stem("ies") {
        return format!("{s}y");
    }
    if let Some(s) = stem("ing").or_else(|| stem("ed")) {
        return s.to_string();
    }
    if let Some(s) = stem("es") {
        if s.ends_with(['s', 'x', 'z']) || s.ends_with("ch") || s.ends_with("sh") {
            return s.to_string();
        }
    }
    if let Some(s) = stem("s") {
        if !s.ends_with('s') {
            return s.to_string();
        }
    }
    w
}

/// Normalised content words as a set.
pub fn term_set(text: &str) -> HashSet<String> {
    content_words(text).iter().map(|w| normalize(w)).collect()
}

const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "no", "approx", "incl", "u.s", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

/// Splits text into sentences. Lines (list items, table rows, steps) are sentences of their
/// own; within a line a sentence ends at `.`, `?` or `!` followed by a space and a capital
/// letter, digit or quote, unless the word before is a known abbreviation.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut start = 0;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if matches!(c, '.' | '?' | '!') && i + 2 < chars.len() && chars[i + 1] == ' ' {
                let next = chars[i + 2];
                let boundary =
                    next.is_uppercase() || next.is_ascii_digit() || next == '"' || next == '\'' || next == '[';
                let word_before: String =
                    chars[start..i].iter().collect::<String>().split_whitespace().last().unwrap_or("").to_lowercase();
                let abbreviation = c == '.' && ABBREVIATIONS.contains(&word_before.trim_end_matches('.'));
                // A citation like "[2]" right after the stop belongs to this sentence.
                if boundary && !abbreviation && next != '[' {
                    out.push(chars[start..=i].iter().collect::<String>().trim().to_string());
                    start = i + 2;
                }
            }
            i += 1;
        }
        let rest: String = chars[start..].iter().collect::<String>().trim().to_string();
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_stops_and_lines_but_not_abbreviations() {
        let s = split_sentences(
            "Refunds take 5 days. See Settings, e.g. Billing. Version 2.5 is out!\n- Step one\n- Step two",
        );
        assert_eq!(
            s,
            vec![
                "Refunds take 5 days.",
                "See Settings, e.g. Billing.",
                "Version 2.5 is out!",
                "- Step one",
                "- Step two"
            ]
        );
        let s = split_sentences("Annual plans are refunded [1]. Monthly ones are not [2].");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn content_words_and_normalising() {
        assert_eq!(content_words("What is the TH-4012 error?"), vec!["th-4012", "error"]);
        assert_eq!(normalize("refunds"), "refund");
        assert_eq!(normalize("policies"), "policy");
        assert!(term_set("Refunding invoices").contains("invoice"));
    }
}
