//! Fusing keyword and semantic evidence into one ranking.
//!
//! Each candidate (found by either search) gets both scores: its exact cosine similarity (every
//! vector is in memory) and its BM25 score when the keyword search found it. Each score is
//! scaled to [0, 1] within the query's candidates, and the fused score is the weighted sum
//! `(1 - ratio) * keyword + ratio * semantic`. Unlike picking from two lists, a chunk that both
//! searches find gets credit from both, which is what lifts hybrid above either alone.
//!
//! `ratio` means what Meilisearch's `semanticRatio` means: 0 keyword only, 1 semantic only.

/// One candidate's raw evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// BM25 score, `None` when the keyword search did not return it.
    pub keyword: Option<f32>,
    /// Cosine similarity with the query.
    pub semantic: Option<f32>,
}

/// Scaled evidence and the fused score of a candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    pub keyword_norm: f32,
    pub semantic_norm: f32,
    pub score: f32,
}

/// Min-max scaling bounds over a list of scores; a list of one scales to 1.
fn bounds(values: impl Iterator<Item = f32>) -> Option<(f32, f32)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn scale(v: f32, (lo, hi): (f32, f32), floor: f32) -> f32 {
    // Scores sit between `floor` (worst candidate of the list, or zero) and the best one.
    let lo = lo.min(floor);
    if hi - lo <= f32::EPSILON {
        return if v > 0.0 { 1.0 } else { 0.0 };
    }
    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// Fuses the evidence of all candidates of one query. Output is in input order.
pub fn fuse(candidates: &[Evidence], ratio: f32) -> Vec<Fused> {
    let ratio = ratio.clamp(0.0, 1.0);
    let kw = bounds(candidates.iter().filter_map(|c| c.keyword));
    let sem = bounds(candidates.iter().filter_map(|c| c.semantic));
    candidates
        .iter()
        .map(|c| {
            // A chunk the keyword search did not return scores 0 on that side: BM25 found
            // better matches for the query's words.
            let keyword_norm = match (c.keyword, kw) {
                (Some(v), Some(b)) => scale(v, b, 0.0),
                _ => 0.0,
            };
            let semantic_norm = match (c.semantic, sem) {
                (Some(v), Some(b)) => scale(v, b, b.0),
                _ => 0.0,
            };
            Fused { keyword_norm, semantic_norm, score: (1.0 - ratio) * keyword_norm + ratio * semantic_norm }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(k: Option<f32>, s: Option<f32>) -> Evidence {
        Evidence { keyword: k, semantic: s }
    }

    #[test]
    fn ratio_zero_and_one_are_pure_keyword_and_pure_semantic() {
        let c = [ev(Some(10.0), Some(0.2)), ev(Some(2.0), Some(0.9)), ev(None, Some(0.5))];
        let k = fuse(&c, 0.0);
        assert!(k[0].score > k[1].score && k[1].score > k[2].score);
        let s = fuse(&c, 1.0);
        assert!(s[1].score > s[2].score && s[2].score > s[0].score);
    }

    #[test]
    fn agreement_of_both_searches_wins_at_half() {
        // b is second in both lists; a and c are each first in one list only.
        let c = [ev(Some(10.0), Some(0.30)), ev(Some(9.0), Some(0.78)), ev(Some(1.0), Some(0.80))];
        let f = fuse(&c, 0.5);
        assert!(f[1].score > f[0].score && f[1].score > f[2].score, "{f:?}");
    }

    #[test]
    fn scores_stay_in_unit_range() {
        let c = [ev(Some(3.0), Some(-0.2)), ev(None, Some(0.95)), ev(Some(0.0), None)];
        for ratio in [0.0, 0.3, 0.5, 1.0] {
            for f in fuse(&c, ratio) {
                assert!((0.0..=1.0).contains(&f.score), "{f:?}");
            }
        }
        assert!(fuse(&[], 0.5).is_empty());
    }
}
