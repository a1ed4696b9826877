//! One confidence score in [0, 1] per turn: the fitted probability that answering is right.
//!
//! The score is not a hand-weighted sum. `Features` reads a fixed set of signals off the turn —
//! how close the best chunk is in meaning, by how much it beats the next document, whether the
//! keyword and the semantic search agree, how many of the question's words the best chunks
//! hold, names or codes the knowledge never mentions, how long the conversation is, and, once
//! an answer is written, how well it addresses the question and how well its sentences are
//! supported. A logistic model (`logistic`) turns them into the probability that the answer
//! would be right (answerable, and citing a document that holds the answer).
//!
//! Two models live in one file: `retrieval` sees only the retrieval features and gates the turn
//! before any model is called (weak evidence costs nothing), `answer` sees all of them and makes
//! the final decision. `frontdesk calibrate` fits both with cross-validation across datasets
//! (each dataset scored by a model fitted without it) and writes the file; the one the engine
//! ships with is `confidence-model.json` beside this file, and `answering.confidence_model`
//! points at another.
//!
//! No feature depends on how large the knowledge base is: counts are shares of the question's
//! own words, scores are cosines and ratios within one result list. A help centre of three
//! articles and one of three hundred are scored alike (an everyday word no article uses is not
//! evidence of anything; a product name or error code that none mentions is).

use crate::logistic::Logistic;
use crate::retrieval::{Hit, TermStats};
use crate::text::term_set;
use crate::trace::{Features, FEATURE_NAMES, RETRIEVAL_FEATURES};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// The shipped model, fitted by `frontdesk calibrate` (see the README's "Confidence" section
/// for the command and its cross-validation report).
pub const SHIPPED_MODEL: &str = include_str!("confidence-model.json");

impl Features {
    /// Reads the retrieval features off the hits of a query (best first) and the backend's
    /// term statistics, if any. `history_turns` counts the earlier messages of the thread.
    pub fn of_retrieval(question: &str, history_turns: usize, hits: &[Hit], terms: Option<&TermStats>) -> Features {
        let q = term_set(question);
        let mut f = Features {
            question_length: q.len().min(20) as f32 / 20.0,
            history: history_turns.min(6) as f32 / 6.0,
            unknown_distinctive: terms.map(|t| t.unknown_distinctive().len().min(2) as f32 / 2.0).unwrap_or(0.0),
            ..Features::default()
        };
        let Some(top) = hits.first() else { return f };
        let best_sem = hits.iter().max_by(|a, b| a.semantic_score.total_cmp(&b.semantic_score)).unwrap_or(top);
        f.sem_top = best_sem.semantic_score.max(0.0);
        let other_sem =
            hits.iter().filter(|h| h.doc_id != best_sem.doc_id).map(|h| h.semantic_score).fold(f32::MIN, f32::max);
        f.sem_margin = if other_sem == f32::MIN { f.sem_top } else { (f.sem_top - other_sem.max(0.0)).max(0.0) };
        let other_fused =
            hits.iter().filter(|h| h.doc_id != top.doc_id).map(|h| h.fused_score).fold(f32::MIN, f32::max);
        f.fused_margin =
            if other_fused == f32::MIN { top.fused_score } else { (top.fused_score - other_fused).max(0.0) };
        let best_kw = hits.iter().max_by(|a, b| a.keyword_score.total_cmp(&b.keyword_score)).unwrap_or(top);
        f.agreement = if best_kw.keyword_score > 0.0 && best_kw.doc_id == best_sem.doc_id { 1.0 } else { 0.0 };
        f.top_keyword = top.keyword_norm.clamp(0.0, 1.0);
        let share = |found: &HashSet<String>| {
            if q.is_empty() {
                0.0
            } else {
                q.iter().filter(|t| found.contains(*t)).count() as f32 / q.len() as f32
            }
        };
        let mut found = HashSet::new();
        for (i, h) in hits.iter().take(3).enumerate() {
            found.extend(term_set(&h.text));
            found.extend(term_set(&h.title));
            for p in &h.heading_path {
                found.extend(term_set(p));
            }
            if i == 0 {
                f.coverage_top1 = share(&found);
            }
        }
        f.coverage_top3 = share(&found);
        f.weighted_coverage = terms.map(TermStats::weighted_coverage).unwrap_or(f.coverage_top3);
        f
    }

    /// Adds what the written answer shows: how close it is to the question in meaning
    /// (`similarity`, a cosine, when vectors are at hand), how many of the question's terms it
    /// uses, and how well its weakest sentence is supported by what it cites.
    pub fn with_answer(mut self, question: &str, answer: &str, similarity: Option<f32>, min_support: f32) -> Features {
        let q = term_set(question);
        let a = term_set(&super::verify::strip_citations(answer));
        self.answer_overlap =
            if q.is_empty() { 0.0 } else { q.iter().filter(|t| a.contains(*t)).count() as f32 / q.len() as f32 };
        self.answer_similarity = similarity.unwrap_or(0.0).max(0.0);
        self.answer_min_support = min_support.clamp(0.0, 1.0);
        self
    }
}

/// How one held-out dataset scored in the cross-validation that produced a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldReport {
    /// The dataset left out of the fit and scored.
    pub held_out: String,
    pub cases: usize,
    /// AUROC of the score separating right answers from wrong ones (null when one class is
    /// empty).
    pub auroc_correct: Option<f64>,
    /// AUROC separating answerable from unanswerable questions (null without both).
    pub auroc_answerable: Option<f64>,
    /// Largest share of all cases answered with risk ≤ 5%.
    pub coverage_at_risk_5: f64,
}

/// The fitted confidence model: what the engine loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfidenceModel {
    /// e.g. `confidence-v1`; recorded in every trace and eval report.
    pub version: String,
    /// Datasets the model was fitted on.
    pub fitted_on: Vec<String>,
    /// Scores the turn before generation (gate).
    pub retrieval: Logistic,
    /// Scores the written answer (decision).
    pub answer: Logistic,
    /// The threshold at which the cross-validated predictions kept risk at or under the target
    /// on the pooled held-out folds; the built-in policy threshold.
    pub recommended_threshold: f32,
    /// The risk target behind `recommended_threshold`.
    pub target_risk: f64,
    /// The retrieval gate: the retrieval confidence under which no more than 2% of the right
    /// answers of the data the model was fitted on fall (the built-in `answering.retrieval_gate`).
    #[serde(default)]
    pub recommended_gate: f32,
    /// Per-fold results of the cross-validation.
    pub folds: Vec<FoldReport>,
    /// The feature ranker (`rerank::features`), when one was fitted.
    #[serde(default)]
    pub ranker: Option<Logistic>,
    /// Datasets the ranker was fitted on.
    #[serde(default)]
    pub ranker_fitted_on: Vec<String>,
}

/// The model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read the confidence model {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the confidence model {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

impl ModelError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Read { .. } => "confidence_model_unreadable",
            ModelError::Invalid { .. } => "confidence_model_invalid",
        }
    }
}

/// A logit so low that its probability is 0 in f32 (and finite, so it can be written as JSON).
const NEVER: f32 = -1000.0;

impl ConfidenceModel {
    /// Parses and checks a model file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<ConfidenceModel, ModelError> {
        let m: ConfidenceModel = serde_json::from_str(text)
            .map_err(|e| ModelError::Invalid { path: path.into(), message: e.to_string() })?;
        for (part, model) in [("retrieval", &m.retrieval), ("answer", &m.answer)] {
            model.check().map_err(|e| ModelError::Invalid { path: path.into(), message: format!("{part}: {e}") })?;
            if let Some(name) = model.features.iter().find(|n| Features::default().get(n).is_none()) {
                return Err(ModelError::Invalid {
                    path: path.into(),
                    message: format!("{part}: unknown feature {name:?} (known: {})", FEATURE_NAMES.join(", ")),
                });
            }
        }
        if let Some(name) = m.retrieval.features.iter().find(|n| !RETRIEVAL_FEATURES.contains(&n.as_str())) {
            return Err(ModelError::Invalid {
                path: path.into(),
                message: format!("retrieval: {name:?} is only known after an answer is written"),
            });
        }
        if let Some(r) = &m.ranker {
            r.check().map_err(|e| ModelError::Invalid { path: path.into(), message: format!("ranker: {e}") })?;
            if let Some(name) = r.features.iter().find(|n| !crate::rerank::features::HIT_FEATURES.contains(&n.as_str()))
            {
                return Err(ModelError::Invalid {
                    path: path.into(),
                    message: format!("ranker: unknown feature {name:?}"),
                });
            }
        }
        if !(0.0..=1.0).contains(&m.recommended_threshold) {
            return Err(ModelError::Invalid {
                path: path.into(),
                message: format!("recommended_threshold must be in [0, 1], not {}", m.recommended_threshold),
            });
        }
        Ok(m)
    }

    /// Loads a model file.
    pub fn load(path: &Path) -> Result<ConfidenceModel, ModelError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// The model shipped with frontdesk.
    pub fn shipped() -> Result<ConfidenceModel, ModelError> {
        Self::parse(SHIPPED_MODEL, "(built-in confidence-model.json)")
    }

    /// A model that is never confident: what the engine falls back to if no model can be
    /// loaded, so a broken model file means hand-offs, never unchecked answers.
    pub fn never_confident() -> ConfidenceModel {
        ConfidenceModel {
            version: "never-confident".into(),
            fitted_on: Vec::new(),
            retrieval: Logistic::constant(NEVER),
            answer: Logistic::constant(NEVER),
            recommended_threshold: 1.0,
            recommended_gate: 1.0,
            target_risk: 0.0,
            folds: Vec::new(),
            ranker: None,
            ranker_fitted_on: Vec::new(),
        }
    }

    /// Confidence that the retrieved chunks hold the answer (before generation).
    pub fn retrieval_confidence(&self, f: &Features) -> f32 {
        self.retrieval.predict(|name| f.get(name).unwrap_or(0.0))
    }

    /// Confidence that the written answer is right.
    pub fn answer_confidence(&self, f: &Features) -> f32 {
        self.answer.predict(|name| f.get(name).unwrap_or(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::TermInfo;

    fn hit(doc: &str, text: &str, sem: f32, kw: f32, fused: f32) -> Hit {
        let mut h = crate::testing::hit(doc, doc, text);
        h.semantic_score = sem;
        h.keyword_score = kw;
        h.keyword_norm = if kw > 0.0 { 1.0 } else { 0.0 };
        h.fused_score = fused;
        h
    }

    #[test]
    fn the_shipped_model_loads_and_names_known_features() {
        let m = ConfidenceModel::shipped().expect("the shipped model parses");
        assert!(!m.answer.features.is_empty() && !m.retrieval.features.is_empty());
        assert!(m.folds.len() >= 2, "the shipped model carries its cross-validation report");
    }

    #[test]
    fn a_model_naming_an_unknown_feature_is_refused_with_its_name() {
        let mut m = ConfidenceModel::never_confident();
        m.answer.features = vec!["sem_top".into(), "vibes".into()];
        m.answer.weights = vec![1.0, 1.0];
        m.answer.mean = vec![0.0, 0.0];
        m.answer.scale = vec![1.0, 1.0];
        m.answer.bias = 0.0;
        let text = serde_json::to_string(&m).expect("serialises");
        let err = ConfidenceModel::parse(&text, "m.json").expect_err("unknown feature");
        assert!(err.to_string().contains("vibes"), "{err}");
    }

    #[test]
    fn the_fallback_model_never_lets_an_answer_through() {
        let m = ConfidenceModel::never_confident();
        let f = Features { sem_top: 1.0, coverage_top1: 1.0, agreement: 1.0, ..Features::default() };
        assert_eq!(m.answer_confidence(&f), 0.0);
        assert_eq!(m.retrieval_confidence(&f), 0.0);
    }

    #[test]
    fn margins_compare_against_other_documents_only() {
        let hits = vec![
            hit("a", "refund window thirty days", 0.8, 5.0, 0.9),
            hit("a", "refund policy details", 0.7, 3.0, 0.8),
            hit("b", "invoice export", 0.5, 0.0, 0.4),
        ];
        let f = Features::of_retrieval("refund window", 0, &hits, None);
        assert!((f.sem_top - 0.8).abs() < 1e-6);
        assert!((f.sem_margin - 0.3).abs() < 1e-6, "{}", f.sem_margin);
        assert!((f.fused_margin - 0.5).abs() < 1e-6, "{}", f.fused_margin);
        assert_eq!(f.agreement, 1.0);
        assert_eq!(f.coverage_top1, 1.0);
    }

    #[test]
    fn everyday_words_missing_from_a_small_knowledge_base_are_not_evidence() {
        // The same hits and question, once against a 3-chunk and once against a 3000-chunk
        // knowledge base, where the small one never uses "mean" and "fix".
        let hits = vec![hit("a", "error 4012 means the card was declined; update the card", 0.7, 4.0, 0.9)];
        let stats = |chunks: u64, freq: u64| TermStats {
            chunks,
            terms: vec![
                TermInfo { term: "error".into(), chunk_freq: 1, in_top: true, distinctive: false },
                TermInfo { term: "4012".into(), chunk_freq: 1, in_top: true, distinctive: true },
                TermInfo { term: "mean".into(), chunk_freq: freq, in_top: false, distinctive: false },
                TermInfo { term: "fix".into(), chunk_freq: freq, in_top: false, distinctive: false },
            ],
        };
        let small =
            Features::of_retrieval("what does error 4012 mean and how do I fix it", 0, &hits, Some(&stats(3, 0)));
        let large =
            Features::of_retrieval("what does error 4012 mean and how do I fix it", 0, &hits, Some(&stats(3000, 40)));
        assert_eq!(small.unknown_distinctive, 0.0);
        assert_eq!(small.unknown_distinctive, large.unknown_distinctive);
        assert_eq!(small.coverage_top1, large.coverage_top1);
    }

    #[test]
    fn a_name_the_knowledge_never_mentions_is_marked() {
        let hits = vec![hit("a", "pay by card or bank transfer", 0.6, 1.0, 0.7)];
        let stats = TermStats {
            chunks: 3,
            terms: vec![TermInfo { term: "paypal".into(), chunk_freq: 0, in_top: false, distinctive: true }],
        };
        let f = Features::of_retrieval("can I pay with PayPal", 0, &hits, Some(&stats));
        assert_eq!(f.unknown_distinctive, 0.5);
    }

    #[test]
    fn answer_features_read_the_answer_without_its_citation_markers() {
        let f = Features::default().with_answer("refund window", "The refund window is 30 days [1].", Some(0.9), 0.8);
        assert_eq!(f.answer_overlap, 1.0);
        assert!((f.answer_similarity - 0.9).abs() < 1e-6);
        assert!((f.answer_min_support - 0.8).abs() < 1e-6);
    }
}
