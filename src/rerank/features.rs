//! The fitted feature ranker: the default reranker, local and instant.
//!
//! It reads what retrieval already measured about each chunk — its cosine to the question and
//! how far that is below the best, its keyword score, its fused score and rank, how many of the
//! question's words the chunk and its title hold — and scores them with a logistic model fitted
//! by `frontdesk calibrate` to put chunks of the document that holds the answer first. The model
//! ships inside the confidence model file (`ranker`); without one, nothing is reordered.
//!
//! Like the confidence features, none of these depends on the size of the knowledge base: each
//! is a score within one result list or a share of the question's own words.

use super::{RerankError, Reranker};
use crate::logistic::Logistic;
use crate::retrieval::Hit;
use crate::text::term_set;
use async_trait::async_trait;
use std::collections::HashSet;

/// Names of the per-chunk features, in the order of [`hit_features`].
pub const HIT_FEATURES: &[&str] =
    &["semantic", "semantic_gap", "keyword", "fused", "rank", "coverage", "title_coverage"];

/// The features of every hit for the question, in hit order.
pub fn hit_features(question: &str, hits: &[Hit]) -> Vec<Vec<f32>> {
    let q = term_set(question);
    let best = hits.iter().map(|h| h.semantic_score).fold(0.0f32, f32::max);
    let share = |found: &HashSet<String>| {
        if q.is_empty() {
            0.0
        } else {
            q.iter().filter(|t| found.contains(*t)).count() as f32 / q.len() as f32
        }
    };
    hits.iter()
        .enumerate()
        .map(|(i, h)| {
            let mut title = term_set(&h.title);
            for p in &h.heading_path {
                title.extend(term_set(p));
            }
            let mut all = term_set(&h.text);
            all.extend(title.iter().cloned());
            vec![
                h.semantic_score.max(0.0),
                (best - h.semantic_score).max(0.0),
                h.keyword_norm.clamp(0.0, 1.0),
                h.fused_score.clamp(0.0, 1.0),
                1.0 / (1.0 + i as f32),
                share(&all),
                share(&title),
            ]
        })
        .collect()
}

/// The fitted ranker.
pub struct FeatureRanker {
    model: Logistic,
    version: String,
}

impl FeatureRanker {
    /// A ranker over a fitted model; `version` names the model file it came from.
    pub fn new(model: Logistic, version: &str) -> FeatureRanker {
        FeatureRanker { model, version: version.to_string() }
    }
}

#[async_trait]
impl Reranker for FeatureRanker {
    fn name(&self) -> String {
        format!("features@{}", self.version)
    }

    async fn score(&self, question: &str, hits: &[Hit]) -> Result<Vec<f32>, RerankError> {
        let rows = hit_features(question, hits);
        Ok(rows
            .iter()
            .map(|row| {
                let z = self.model.logit(|name| {
                    HIT_FEATURES.iter().position(|n| *n == name).and_then(|i| row.get(i).copied()).unwrap_or(0.0)
                });
                if z.is_finite() {
                    z as f32
                } else {
                    0.0
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(doc: &str, title: &str, text: &str, sem: f32, kw: f32) -> Hit {
        let mut h = crate::testing::hit(doc, title, text);
        h.semantic_score = sem;
        h.keyword_norm = kw;
        h.fused_score = 0.5 * sem + 0.5 * kw;
        h
    }

    #[test]
    fn features_are_shares_and_scores_within_the_list() {
        let hits = vec![
            hit("a", "Invoices", "export invoices as csv", 0.6, 1.0),
            hit("b", "Refund window", "refunds within thirty days", 0.8, 0.2),
        ];
        let f = hit_features("refund window for invoices", &hits);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].len(), HIT_FEATURES.len());
        assert!((f[0][1] - 0.2).abs() < 1e-6, "gap below the best cosine");
        assert_eq!(f[1][1], 0.0);
        assert_eq!(f[0][4], 1.0);
        assert_eq!(f[1][4], 0.5);
        assert!(f[1][6] > f[0][6], "the title holds the question's words");
    }

    #[tokio::test]
    async fn a_model_that_weighs_title_coverage_moves_that_chunk_first() {
        let names: Vec<String> = HIT_FEATURES.iter().map(|s| s.to_string()).collect();
        let mut weights = vec![0.0; names.len()];
        weights[6] = 5.0;
        let model = Logistic {
            mean: vec![0.0; names.len()],
            scale: vec![1.0; names.len()],
            features: names,
            weights,
            bias: 0.0,
        };
        let ranker = FeatureRanker::new(model, "test");
        let hits = vec![
            hit("a", "Invoices", "export invoices as csv", 0.6, 1.0),
            hit("b", "Refund window", "refunds within thirty days", 0.5, 0.2),
        ];
        let out = super::super::rerank(&ranker, "refund window", &hits, 2).await.expect("reranks");
        assert_eq!(out[0].hit.doc_id, "b");
        assert_eq!(out[0].retrieval_rank, 1);
        assert_eq!(ranker.name(), "features@test");
    }
}
