//! Checking an answer before anyone sees it.
//!
//! - Every `[n]` must point at a chunk that was retrieved for this turn; an answer with no
//!   valid citation is never sent.
//! - Each sentence is held against the chunks it cites: how many of its content words those
//!   chunks contain (lexical support) and, when vectors are at hand, how close its meaning is
//!   to the closest sentence of those chunks (semantic support). A sentence without a
//!   citation is measured against all the context, at a discount.
//!
//! The result feeds the confidence score; `unsupported_answer` is the reason code when it is
//! too weak.

use crate::embed::Embedder;
use crate::retrieval::vectors::dot;
use crate::retrieval::Hit;
use crate::text::{content_words, normalize, split_sentences, term_set};
use regex::Regex;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// Support measured for one sentence of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceSupport {
    pub sentence: String,
    pub cited: Vec<usize>,
    pub lexical: f32,
    pub semantic: Option<f32>,
    pub support: f32,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Cited chunk numbers (1-based) that exist, in first-cited order.
    pub valid_citations: Vec<usize>,
    /// Cited numbers that point at nothing retrieved.
    pub invalid_citations: Vec<usize>,
    pub sentences: Vec<SentenceSupport>,
    /// Mean support over sentences, in [0, 1].
    pub mean_support: f32,
    /// The weakest sentence's support.
    pub min_support: f32,
}

impl Verification {
    pub fn has_valid_citation(&self) -> bool {
        !self.valid_citations.is_empty()
    }
}

/// The `[n]` / `[n, m]` citation marker pattern, compiled once.
pub(crate) fn citation_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]").ok()).as_ref()
}

/// The `[n]` numbers in a text, in order of appearance (repeats kept).
pub fn citations_in(text: &str) -> Vec<usize> {
    let Some(re) = citation_regex() else { return Vec::new() };
    re.captures_iter(text)
        .flat_map(|c| {
            c.get(1)
                .map(|m| m.as_str().split(',').filter_map(|n| n.trim().parse().ok()).collect::<Vec<usize>>())
                .unwrap_or_default()
        })
        .collect()
}

/// The text without citation markers.
pub fn strip_citations(text: &str) -> String {
    let Some(re) = citation_regex() else { return text.to_string() };
    re.replace_all(text, "").replace("  ", " ").replace(" .", ".").trim().to_string()
}

fn lexical_support(sentence: &str, sources: &[&Hit]) -> f32 {
    let words: Vec<String> = content_words(&strip_citations(sentence)).iter().map(|w| normalize(w)).collect();
    if words.is_empty() {
        return 1.0;
    }
    let mut source_terms = BTreeSet::new();
    for h in sources {
        source_terms.extend(term_set(&h.text));
        source_terms.extend(term_set(&h.title));
    }
    words.iter().filter(|w| source_terms.contains(*w)).count() as f32 / words.len() as f32
}

/// Verifies an answer against the hits it was written from.
pub async fn verify(answer: &str, hits: &[Hit], embedder: Option<&dyn Embedder>) -> Verification {
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for n in citations_in(answer) {
        let list = if n >= 1 && n <= hits.len() { &mut valid } else { &mut invalid };
        if !list.contains(&n) {
            list.push(n);
        }
    }
    let mut sentences: Vec<SentenceSupport> = Vec::new();
    for s in split_sentences(answer) {
        if content_words(&strip_citations(&s)).is_empty() {
            continue;
        }
        let cited: Vec<usize> = citations_in(&s).into_iter().filter(|n| *n >= 1 && *n <= hits.len()).collect();
        let sources: Vec<&Hit> =
            if cited.is_empty() { hits.iter().collect() } else { cited.iter().map(|n| &hits[n - 1]).collect() };
        let lexical = lexical_support(&s, &sources);
        sentences.push(SentenceSupport { sentence: s, cited, lexical, semantic: None, support: lexical });
    }
    if let Some(embedder) = embedder {
        semantic_support(&mut sentences, hits, embedder).await;
    }
    for s in sentences.iter_mut() {
        let combined = match s.semantic {
            Some(sem) => 0.5 * s.lexical + 0.5 * sem.clamp(0.0, 1.0),
            None => s.lexical,
        };
        // Uncited sentences count for less: the answer did not say where they came from.
        s.support = if s.cited.is_empty() { combined * 0.5 } else { combined };
    }
    let (mean, min) = if sentences.is_empty() {
        (0.0, 0.0)
    } else {
        let sum: f32 = sentences.iter().map(|s| s.support).sum();
        (sum / sentences.len() as f32, sentences.iter().map(|s| s.support).fold(1.0, f32::min))
    };
    Verification { valid_citations: valid, invalid_citations: invalid, sentences, mean_support: mean, min_support: min }
}

/// Semantic support: each answer sentence against the closest sentence of its cited chunks.
async fn semantic_support(sentences: &mut [SentenceSupport], hits: &[Hit], embedder: &dyn Embedder) {
    let mut texts: Vec<String> = sentences.iter().map(|s| strip_citations(&s.sentence)).collect();
    let mut owners: Vec<usize> = Vec::new();
    let n_answer = texts.len();
    for (i, h) in hits.iter().enumerate() {
        for s in split_sentences(&h.text) {
            texts.push(s);
            owners.push(i + 1);
        }
    }
    let Ok(vectors) = embedder.embed(&texts).await else { return };
    if vectors.len() != texts.len() {
        return;
    }
    for (i, s) in sentences.iter_mut().enumerate() {
        let best = owners
            .iter()
            .enumerate()
            .filter(|(_, owner)| s.cited.is_empty() || s.cited.contains(owner))
            .map(|(j, _)| dot(&vectors[i], &vectors[n_answer + j]))
            .fold(0.0f32, f32::max);
        s.semantic = Some(best);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str) -> Hit {
        crate::testing::hit("d", "Refunds", text)
    }

    #[test]
    fn citations_are_parsed_in_all_common_forms() {
        assert_eq!(citations_in("A [1]. B [2][3]. C [1, 4]."), vec![1, 2, 3, 1, 4]);
        assert_eq!(strip_citations("Refunds take 5 days [1]."), "Refunds take 5 days.");
    }

    #[tokio::test]
    async fn citations_outside_the_context_are_invalid() {
        let hits = vec![hit("Annual plans are refunded within 30 days.")];
        let v = verify("Annual plans are refunded within 30 days [1]. Also [7].", &hits, None).await;
        assert_eq!(v.valid_citations, vec![1]);
        assert_eq!(v.invalid_citations, vec![7]);
    }

    #[tokio::test]
    async fn supported_sentences_score_high_and_invented_ones_low() {
        let hits = vec![hit("Annual plans are refunded within 30 days of renewal.")];
        let good = verify("Annual plans are refunded within 30 days of renewal [1].", &hits, None).await;
        assert!(good.mean_support > 0.9, "{good:?}");
        let bad =
            verify("Monthly subscriptions get a free hardware token and lifetime discount [1].", &hits, None).await;
        assert!(bad.mean_support < 0.3, "{bad:?}");
        let uncited = verify("Annual plans are refunded within 30 days of renewal.", &hits, None).await;
        assert!(!uncited.has_valid_citation());
        assert!(uncited.mean_support <= 0.5);
    }
}
