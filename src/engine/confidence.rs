//! One confidence score in [0, 1] per turn, from retrieval and verification signals.
//!
//! **Before generation** (`retrieval_confidence`): how close the best chunk is in meaning to the
//! question (cosine), how many of the question's distinctive words the best chunks contain, and
//! whether the keyword and the semantic search agree on the best document. Weak evidence
//! escalates here, before any model is called: it costs nothing and risks nothing.
//!
//! **After generation** (`answer_confidence`): the retrieval score combined with how well the
//! answer's sentences are supported by the chunks they cite (or, for extractive answers, how
//! well the quoted sentences match the question).
//!
//! The weights are plain numbers in `ConfidenceModel`; `frontdesk eval` reports the AUROC of
//! the score and the risk–coverage curve, which is how a change to them is judged.

use crate::retrieval::{Hit, TermStats};
use crate::text::term_set;
use serde::{Deserialize, Serialize};

/// Signals read off the retrieved chunks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetrievalSignals {
    /// Cosine similarity of the best chunk.
    pub top_semantic: f32,
    /// Fraction of the question's content terms found in the best three chunks.
    pub coverage: f32,
    /// The best keyword hit and the best semantic hit are from the same document.
    pub agreement: bool,
    pub hits: usize,
    /// IDF-weighted share of the question's terms found in the best three chunks (rare words
    /// like product names and error codes count most), when the backend can tell.
    pub weighted_coverage: Option<f32>,
    /// Question terms found nowhere in the workspace's knowledge.
    pub unknown_terms: usize,
    /// Of those, the ones written like names, codes or acronyms ("PayPal" when no document
    /// mentions it): a near-certain sign the answer is not there.
    #[serde(default)]
    pub unknown_distinctive: usize,
}

/// Weights of the confidence score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConfidenceModel {
    /// Cosine at which semantic evidence counts as half-way convincing.
    pub semantic_mid: f32,
    pub semantic_weight: f32,
    pub coverage_mid: f32,
    pub coverage_weight: f32,
    pub agreement_weight: f32,
    /// Subtracted per everyday question word that the knowledge never mentions.
    pub unknown_term_penalty: f32,
    /// Subtracted per name, code or acronym that the knowledge never mentions.
    pub unknown_distinctive_penalty: f32,
    /// Share of the final score that comes from the answer's support (the rest: retrieval).
    pub answer_weight: f32,
}

impl Default for ConfidenceModel {
    fn default() -> Self {
        ConfidenceModel {
            semantic_mid: 0.45,
            semantic_weight: 8.0,
            coverage_mid: 0.5,
            coverage_weight: 3.0,
            agreement_weight: 0.6,
            unknown_term_penalty: 0.5,
            unknown_distinctive_penalty: 3.0,
            answer_weight: 0.4,
        }
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Reads the signals off the hits of a query (and the backend's term statistics, if any).
pub fn signals(question: &str, hits: &[Hit], terms: Option<&TermStats>) -> RetrievalSignals {
    let weighted_coverage = terms.map(TermStats::weighted_coverage);
    let unknown_terms = terms.map(|t| t.unknown().len()).unwrap_or(0);
    let unknown_distinctive = terms.map(|t| t.unknown_distinctive().len()).unwrap_or(0);
    if hits.is_empty() {
        return RetrievalSignals {
            top_semantic: 0.0,
            coverage: 0.0,
            agreement: false,
            hits: 0,
            weighted_coverage,
            unknown_terms,
            unknown_distinctive,
        };
    }
    let top_semantic = hits.iter().map(|h| h.semantic_score).fold(f32::MIN, f32::max).max(0.0);
    let q = term_set(question);
    let mut found = std::collections::HashSet::new();
    for h in hits.iter().take(3) {
        found.extend(term_set(&h.text));
        found.extend(term_set(&h.title));
        for p in &h.heading_path {
            found.extend(term_set(p));
        }
    }
    let coverage =
        if q.is_empty() { 0.0 } else { q.iter().filter(|t| found.contains(*t)).count() as f32 / q.len() as f32 };
    let best_kw = hits.iter().max_by(|a, b| a.keyword_score.total_cmp(&b.keyword_score)).map(|h| &h.doc_id);
    let best_sem = hits.iter().max_by(|a, b| a.semantic_score.total_cmp(&b.semantic_score)).map(|h| &h.doc_id);
    let agreement = best_kw.is_some() && best_kw == best_sem && hits.iter().any(|h| h.keyword_score > 0.0);
    RetrievalSignals {
        top_semantic,
        coverage,
        agreement,
        hits: hits.len(),
        weighted_coverage,
        unknown_terms,
        unknown_distinctive,
    }
}

impl ConfidenceModel {
    /// Confidence that the retrieved chunks hold the answer.
    pub fn retrieval_confidence(&self, s: &RetrievalSignals) -> f32 {
        if s.hits == 0 {
            return 0.0;
        }
        let coverage = s.weighted_coverage.unwrap_or(s.coverage);
        let z = self.semantic_weight * (s.top_semantic - self.semantic_mid)
            + self.coverage_weight * (coverage - self.coverage_mid)
            + if s.agreement { self.agreement_weight } else { 0.0 }
            - self.unknown_term_penalty * s.unknown_terms.saturating_sub(s.unknown_distinctive) as f32
            - self.unknown_distinctive_penalty * s.unknown_distinctive as f32;
        sigmoid(z)
    }

    /// Confidence in a generated answer: retrieval combined with the answer's support.
    pub fn answer_confidence(&self, retrieval: f32, support: f32) -> f32 {
        let w = self.answer_weight.clamp(0.0, 1.0);
        ((1.0 - w) * retrieval + w * support.clamp(0.0, 1.0)).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(sem: f32, cov: f32, agree: bool) -> RetrievalSignals {
        RetrievalSignals {
            top_semantic: sem,
            coverage: cov,
            agreement: agree,
            hits: 5,
            weighted_coverage: None,
            unknown_terms: 0,
            unknown_distinctive: 0,
        }
    }

    #[test]
    fn words_the_knowledge_never_mentions_lower_confidence() {
        let m = ConfidenceModel::default();
        let known = m.retrieval_confidence(&s(0.7, 0.8, true));
        let everyday = m.retrieval_confidence(&RetrievalSignals { unknown_terms: 1, ..s(0.7, 0.8, true) });
        let name =
            m.retrieval_confidence(&RetrievalSignals { unknown_terms: 1, unknown_distinctive: 1, ..s(0.7, 0.8, true) });
        assert!(name < everyday && everyday < known && name < known - 0.3, "{known} {everyday} {name}");
    }

    #[test]
    fn stronger_evidence_means_higher_confidence() {
        let m = ConfidenceModel::default();
        let weak = m.retrieval_confidence(&s(0.2, 0.2, false));
        let mid = m.retrieval_confidence(&s(0.45, 0.5, false));
        let strong = m.retrieval_confidence(&s(0.75, 0.9, true));
        assert!(weak < 0.1 && (0.4..0.6).contains(&mid) && strong > 0.9, "{weak} {mid} {strong}");
        assert_eq!(m.retrieval_confidence(&RetrievalSignals { hits: 0, ..s(0.9, 1.0, true) }), 0.0);
    }

    #[test]
    fn answer_confidence_blends_and_stays_in_range() {
        let m = ConfidenceModel::default();
        assert!((m.answer_confidence(1.0, 0.0) - 0.6).abs() < 1e-6);
        assert!(m.answer_confidence(0.9, 0.9) > m.answer_confidence(0.9, 0.3));
        assert_eq!(m.answer_confidence(2.0, 2.0), 1.0);
    }
}
