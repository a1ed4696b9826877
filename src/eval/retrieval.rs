//! Retrieval scoring: for each case with gold documents, where do they rank?
//!
//! Scores are doc-level: the ranked chunks are collapsed to their documents (first occurrence
//! wins), and a case counts as found at k when any gold document is among the first k.

use serde::Serialize;

/// Doc ids in rank order, duplicates removed.
pub fn doc_ranking<'a>(doc_ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    doc_ids.into_iter().filter(|d| seen.insert(*d)).map(str::to_string).collect()
}

/// 1-based rank of the first gold document, if any is ranked.
pub fn first_gold_rank(ranking: &[String], gold: &[String]) -> Option<usize> {
    ranking.iter().position(|d| gold.contains(d)).map(|p| p + 1)
}

/// Recall@1/5/10 and MRR over a set of cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetrievalScores {
    pub cases: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    /// Mean reciprocal rank of the first gold document (0 when not in the ranking).
    pub mrr: f64,
}

impl RetrievalScores {
    /// Scores from each case's first-gold rank.
    pub fn from_ranks(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len();
        let at = |k: usize| {
            if n == 0 {
                0.0
            } else {
                ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n as f64
            }
        };
        let mrr =
            if n == 0 { 0.0 } else { ranks.iter().map(|r| r.map_or(0.0, |r| 1.0 / r as f64)).sum::<f64>() / n as f64 };
        RetrievalScores { cases: n, recall_at_1: at(1), recall_at_5: at(5), recall_at_10: at(10), mrr }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_collapse_chunks_to_documents() {
        let r = doc_ranking(["a", "a", "b", "a", "c"]);
        assert_eq!(r, vec!["a", "b", "c"]);
        assert_eq!(first_gold_rank(&r, &["c".to_string()]), Some(3));
        assert_eq!(first_gold_rank(&r, &["z".to_string()]), None);
    }

    #[test]
    fn scores_from_ranks() {
        let s = RetrievalScores::from_ranks(&[Some(1), Some(3), None, Some(7)]);
        assert_eq!(s.recall_at_1, 0.25);
        assert_eq!(s.recall_at_5, 0.5);
        assert_eq!(s.recall_at_10, 0.75);
        assert!((s.mrr - (1.0 + 1.0 / 3.0 + 1.0 / 7.0) / 4.0).abs() < 1e-12);
        assert_eq!(RetrievalScores::from_ranks(&[]).cases, 0);
    }
}
