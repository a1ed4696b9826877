//! Checking an answer before anyone sees it.
//!
//! - Every `[n]` must point at a chunk that was retrieved for this turn; an answer with no
//!   valid citation is never sent.
//! - Each sentence is held against the chunks it cites: how many of its content words those
//!   chunks contain (lexical support) and, when vectors are at hand, how close its meaning is
//!   to the closest sentence of those chunks (semantic support). A sentence without a
//!   citation is measured against all the context, at a discount.
//!
//! - Every link, web address or email address in the answer must appear in a retrieved chunk
//!   (its text or its page address) or be on one of the domains the policy allows
//!   (`link_domains`): a model that invents or is steered into writing an address must not get
//!   it in front of a customer, where it reads as the company's own advice.
//!
//! The result feeds the confidence score; `unsupported_answer` is the reason code when it is
//! too weak, `unsupported_link` when it carries an address from nowhere.

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

/// Web addresses (`https://…`, `http://…`, `www.…`), `mailto:` links and email addresses,
/// compiled once.
fn address_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:(?:https?|ftp)://[^\s<>()\[\]{}]+|www\.[^\s<>()\[\]{}]+|mailto:[^\s<>()\[\]{}]+|[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+)",
        )
        .ok()
    })
    .as_ref()
}

/// An address as compared: no trailing punctuation, no scheme, `www.` or trailing slash, lowercase.
fn comparable(address: &str) -> String {
    let trimmed = address.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"', '*', '_']);
    let lower = trimmed.to_lowercase();
    let mut rest = lower.as_str();
    for prefix in ["https://", "http://", "ftp://", "mailto:"] {
        if let Some(r) = rest.strip_prefix(prefix) {
            rest = r;
            break;
        }
    }
    rest.strip_prefix("www.").unwrap_or(rest).trim_end_matches('/').to_string()
}

/// The host an address points at (the domain of an email address).
fn host_of(comparable: &str) -> &str {
    let host = comparable.split(['/', '?', '#']).next().unwrap_or(comparable);
    let host = host.rsplit('@').next().unwrap_or(host);
    host.split(':').next().unwrap_or(host)
}

/// Whether `host` is `domain` or one of its subdomains.
fn within(host: &str, domain: &str) -> bool {
    let domain = domain.trim().trim_start_matches("*.").trim_matches('.').to_lowercase();
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

/// The addresses in `answer` that neither appear in a retrieved chunk (text or page address)
/// nor point into one of `allowed_domains`, as written in the answer.
pub fn unsupported_addresses(answer: &str, hits: &[Hit], allowed_domains: &[String]) -> Vec<String> {
    let Some(re) = address_regex() else { return Vec::new() };
    let mut known: BTreeSet<String> = BTreeSet::new();
    for h in hits {
        for m in re.find_iter(&h.text).chain(h.url.iter().flat_map(|u| re.find_iter(u))) {
            known.insert(comparable(m.as_str()));
        }
        if let Some(url) = &h.url {
            known.insert(comparable(url));
        }
    }
    let mut out = Vec::new();
    for m in re.find_iter(answer) {
        let address = comparable(m.as_str());
        if address.is_empty() || known.contains(&address) {
            continue;
        }
        if allowed_domains.iter().any(|d| within(host_of(&address), d)) {
            continue;
        }
        let written = m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?']).to_string();
        if !out.contains(&written) {
            out.push(written);
        }
    }
    out
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
/// Only the chunks some sentence is compared with are embedded: the cited ones, or all when a
/// sentence cites none. (Embedding every chunk's sentences was most of a turn's CPU.)
async fn semantic_support(sentences: &mut [SentenceSupport], hits: &[Hit], embedder: &dyn Embedder) {
    let mut texts: Vec<String> = sentences.iter().map(|s| strip_citations(&s.sentence)).collect();
    let mut owners: Vec<usize> = Vec::new();
    let n_answer = texts.len();
    let compared = |owner: usize| sentences.iter().any(|s| s.cited.is_empty() || s.cited.contains(&owner));
    for (i, h) in hits.iter().enumerate() {
        if !compared(i + 1) {
            continue;
        }
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
    fn addresses_must_come_from_the_sources_or_an_allowed_domain() {
        let mut source = hit("Reset it from the account page at https://app.acmebooks.test/settings/security. Write to billing@acmebooks.test for invoices.");
        source.url = Some("https://help.acmebooks.test/articles/reset".into());
        let hits = vec![source];
        let none: Vec<String> = Vec::new();
        // Written as the sources write them, or with small differences of form.
        for answer in [
            "Open https://app.acmebooks.test/settings/security [1].",
            "Open HTTPS://APP.acmebooks.test/settings/security/ [1].",
            "Write to billing@acmebooks.test [1].",
            "See the article (https://help.acmebooks.test/articles/reset) [1].",
            "Plain answer with no address [1].",
        ] {
            assert_eq!(unsupported_addresses(answer, &hits, &none), none, "{answer}");
        }
        // Addresses from nowhere, however they are written.
        let cases = [
            ("Go to https://acmebooks-support.example/login [1].", "https://acmebooks-support.example/login"),
            ("Go to www.evil.example/reset [1].", "www.evil.example/reset"),
            ("Mail refunds@evil.example and we will help [1].", "refunds@evil.example"),
            (
                "Click [here](http://app.acmebooks.test.evil.example/settings) [1].",
                "http://app.acmebooks.test.evil.example/settings",
            ),
            (
                "A deeper page https://app.acmebooks.test/settings/security/delete-all [1].",
                "https://app.acmebooks.test/settings/security/delete-all",
            ),
            ("Write to mailto:ceo@acmebooks.test [1].", "mailto:ceo@acmebooks.test"),
        ];
        for (answer, expected) in cases {
            assert_eq!(unsupported_addresses(answer, &hits, &none), vec![expected.to_string()], "{answer}");
        }
        // An allowed domain covers its subdomains, and nothing that merely ends with its name.
        let allowed = vec!["acmebooks.test".to_string()];
        assert!(unsupported_addresses(cases[4].0, &hits, &allowed).is_empty());
        assert!(unsupported_addresses(cases[5].0, &hits, &allowed).is_empty());
        assert_eq!(unsupported_addresses(cases[3].0, &hits, &allowed).len(), 1);
        let lookalike = "See https://notacmebooks.test/x [1].";
        assert_eq!(unsupported_addresses(lookalike, &hits, &allowed).len(), 1);
    }

    #[test]
    fn citations_are_parsed_in_all_common_forms() {
        assert_eq!(citations_in("A [1]. B [2][3]. C [1, 4]."), vec![1, 2, 3, 1, 4]);
        assert_eq!(strip_citations("Refunds take 5 days [1]."), "Refunds take 5 days.");
    }

    /// Counts the texts it is asked to embed; every text gets the same vector.
    struct Counting(std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl Embedder for Counting {
        fn model_id(&self) -> &str {
            "counting"
        }
        fn dimensions(&self) -> usize {
            1
        }
        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, crate::embed::EmbedError> {
            self.0.fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
            Ok(vec![vec![1.0]; texts.len()])
        }
    }

    #[tokio::test]
    async fn only_the_chunks_an_answer_cites_are_embedded() {
        let hits = vec![
            hit("Annual plans are refunded within 30 days. Monthly plans are not."),
            hit("Invoices are sent by email. They can be downloaded too."),
            hit("Exports run nightly. They keep 90 days."),
        ];
        let counting = Counting(Default::default());
        let v = verify("Annual plans are refunded within 30 days [1].", &hits, Some(&counting)).await;
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 1 + 2, "the answer and source 1's sentences");
        assert_eq!(v.sentences[0].semantic, Some(1.0));
        // A sentence without a citation is compared with every chunk, so all are embedded.
        let counting = Counting(Default::default());
        verify("Annual plans are refunded within 30 days.", &hits, Some(&counting)).await;
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 1 + 6);
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
