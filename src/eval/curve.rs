//! The risk–coverage trade-off of the answer threshold.
//!
//! Raising the confidence threshold makes the assistant answer fewer questions (coverage) and
//! get fewer of them wrong. Sweeping the threshold over every confidence a candidate answer
//! had shows the whole trade-off for one run, so a support team can pick the threshold that
//! keeps wrong answers under a target while answering as many customers as possible — and see
//! what the threshold they configured actually costs.

use super::record::CaseResult;
use serde::{Deserialize, Serialize};

/// Threshold above every possible confidence: nothing is answered.
pub const ABOVE_ALL: f32 = 1.0001;

/// The outcome of one threshold over a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Answer confidence threshold (answers need confidence ≥ threshold).
    pub threshold: f32,
    /// Answered cases / all cases.
    pub coverage: f64,
    /// Wrong answers / all cases.
    pub wrong_answer_rate: f64,
    /// Wrong answers / answered cases (0 when nothing is answered).
    pub risk: f64,
}

/// Sweeps the answer threshold over 0, every distinct candidate confidence and [`ABOVE_ALL`],
/// with the retrieval gate fixed at `gate`. Points are sorted by threshold; coverage and the
/// wrong-answer rate never increase along them.
pub fn risk_coverage(cases: &[CaseResult], gate: f32) -> Vec<CurvePoint> {
    let n = cases.len();
    // The cases the gate lets through, by confidence: at threshold t exactly those with
    // confidence ≥ t are answered (a NaN confidence never clears a threshold).
    let mut eligible: Vec<(f32, bool)> = cases
        .iter()
        .filter(|c| c.candidate_answer.is_some() && c.retrieval_confidence >= gate && !c.confidence.is_nan())
        .map(|c| (c.confidence, c.wrong_if_answered()))
        .collect();
    eligible.sort_by(|a, b| a.0.total_cmp(&b.0));
    // wrong_from[i]: wrong answers among eligible[i..].
    let mut wrong_from = vec![0usize; eligible.len() + 1];
    for i in (0..eligible.len()).rev() {
        wrong_from[i] = wrong_from[i + 1] + usize::from(eligible[i].1);
    }

    let mut thresholds: Vec<f32> = eligible.iter().map(|(c, _)| *c).collect();
    thresholds.push(0.0);
    thresholds.push(ABOVE_ALL);
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();

    thresholds
        .into_iter()
        .map(|threshold| {
            let first = eligible.partition_point(|(c, _)| *c < threshold);
            let answered = eligible.len() - first;
            let wrong = wrong_from[first];
            let share = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
            CurvePoint {
                threshold,
                coverage: share(answered),
                wrong_answer_rate: share(wrong),
                risk: if answered == 0 { 0.0 } else { wrong as f64 / answered as f64 },
            }
        })
        .collect()
}

/// The point with the lowest threshold whose wrong-answer rate is at most `target_wrong_rate`:
/// the most questions answered while staying within the target. `None` when no point qualifies.
pub fn threshold_for_target(points: &[CurvePoint], target_wrong_rate: f64) -> Option<CurvePoint> {
    points
        .iter()
        .filter(|p| p.wrong_answer_rate <= target_wrong_rate)
        .min_by(|a, b| a.threshold.total_cmp(&b.threshold))
        .copied()
}

/// A threshold rounded up to two decimals, for people to type into their settings: it answers
/// a subset of what the exact threshold answers, so it never exceeds the wrong-answer rate that
/// was promised for it.
pub fn settable_threshold(t: f32) -> f32 {
    (((f64::from(t) * 100.0) - 1e-4).ceil() / 100.0) as f32
}

/// The point describing what threshold `threshold` does: the sweep's lowest threshold at or
/// above it (the answered set only changes at swept thresholds). `None` when it is above them all.
pub fn point_at(points: &[CurvePoint], threshold: f32) -> Option<CurvePoint> {
    points.iter().filter(|p| p.threshold >= threshold).min_by(|a, b| a.threshold.total_cmp(&b.threshold)).copied()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::eval::metrics::tests::case;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Ten cases: confidences 0.9 (right), 0.8 (wrong), 0.8 (right), 0.6 (right), 0.4 (wrong,
    /// unanswerable), 0.3 (right), one blocked by the gate, one with no candidate, and two more
    /// right answers at 0.95 and 0.2.
    fn sample() -> Vec<CaseResult> {
        vec![
            case("a", true, true, 0.9),
            case("b", true, false, 0.8),
            case("c", true, true, 0.8),
            case("d", true, true, 0.6),
            case("e", false, false, 0.4),
            case("f", true, true, 0.3),
            CaseResult { retrieval_confidence: 0.05, ..case("g", false, false, 0.99) },
            CaseResult { candidate_answer: None, ..case("h", false, false, 0.0) },
            case("i", true, true, 0.95),
            case("j", true, true, 0.2),
        ]
    }

    #[test]
    fn sweep_counts_answers_and_wrong_answers_per_threshold() {
        let points = risk_coverage(&sample(), 0.3);
        let thresholds: Vec<f32> = points.iter().map(|p| p.threshold).collect();
        // Gate-blocked and candidate-less cases contribute no thresholds.
        assert_eq!(thresholds, vec![0.0, 0.2, 0.3, 0.4, 0.6, 0.8, 0.9, 0.95, ABOVE_ALL]);

        let at = |t: f32| point_at(&points, t).unwrap();
        // t = 0: the eight eligible cases are answered, b and e wrong.
        assert!(close(at(0.0).coverage, 0.8));
        assert!(close(at(0.0).wrong_answer_rate, 0.2));
        assert!(close(at(0.0).risk, 0.25));
        // t = 0.5: a, b, c, d, i answered; b wrong.
        let p = at(0.5);
        assert_eq!(p.threshold, 0.6);
        assert!(close(p.coverage, 0.5));
        assert!(close(p.wrong_answer_rate, 0.1));
        assert!(close(p.risk, 0.2));
        // t = 0.85: a, i answered, none wrong.
        assert!(close(at(0.85).coverage, 0.2));
        assert_eq!(at(0.85).wrong_answer_rate, 0.0);
        let last = points.last().copied().unwrap();
        assert_eq!((last.coverage, last.wrong_answer_rate, last.risk), (0.0, 0.0, 0.0));

        // Agrees with the engine's rule case by case.
        let cases = sample();
        for p in &points {
            let answered = cases.iter().filter(|c| c.answered_at(p.threshold, 0.3)).count();
            assert!(close(p.coverage, answered as f64 / 10.0));
        }
        for w in points.windows(2) {
            assert!(w[1].coverage <= w[0].coverage && w[1].wrong_answer_rate <= w[0].wrong_answer_rate);
        }
    }

    #[test]
    fn target_picks_the_lowest_threshold_within_it() {
        let points = risk_coverage(&sample(), 0.3);
        // ≤ 10% wrong: t = 0.6 (b is still answered, e is not).
        assert_eq!(threshold_for_target(&points, 0.10).unwrap().threshold, 0.6);
        // No wrong answers at all: t = 0.9 (b at 0.8 must go).
        assert_eq!(threshold_for_target(&points, 0.0).unwrap().threshold, 0.9);
        // Anything goes: t = 0.
        assert_eq!(threshold_for_target(&points, 1.0).unwrap().threshold, 0.0);
        assert_eq!(threshold_for_target(&[], 0.1), None);
        assert_eq!(point_at(&points, 2.0), None);
    }

    #[test]
    fn settable_threshold_rounds_up() {
        assert_eq!(settable_threshold(0.63), 0.63);
        assert_eq!(settable_threshold(0.631), 0.64);
        assert_eq!(settable_threshold(0.5), 0.5);
        assert_eq!(settable_threshold(0.0), 0.0);
    }

    #[test]
    fn empty_run_yields_the_end_points() {
        let points = risk_coverage(&[], 0.3);
        assert_eq!(points.len(), 2);
        assert!(points.iter().all(|p| p.coverage == 0.0 && p.wrong_answer_rate == 0.0));
    }
}
