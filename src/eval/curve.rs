//! The risk–coverage trade-off of the answer threshold.
//!
//! Raising the confidence threshold makes the assistant answer fewer questions (coverage) and
//! get fewer of them wrong. Sweeping the threshold over every confidence a candidate answer
//! had shows the whole trade-off for one run, so a support team can pick the threshold that
//! keeps wrong answers under a target while answering as many customers as possible — and see
//! what the threshold they configured actually costs.
//!
//! Every sweep walks one [`Ranked`] list: the cases some threshold answers, highest confidence
//! first, with cases of equal confidence taken together (a threshold cannot split them). Rule-
//! decided cases (see [`super::rules`]) are never in it — no threshold makes the engine answer
//! them — but they count in every coverage denominator. The curve, the selective-prediction
//! summary and its bootstrap intervals all come from the same walk.

use super::record::CaseResult;
use super::rules::rule_decided;
use serde::{Deserialize, Serialize};

/// Threshold above every possible confidence: nothing is answered.
pub const ABOVE_ALL: f32 = 1.0001;

/// The outcome of one threshold over a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Answer confidence threshold (answers need confidence ≥ threshold).
    pub threshold: f32,
    /// Cases answered at this threshold.
    pub answered: usize,
    /// Wrong answers among them.
    pub wrong: usize,
    /// Answered cases / all cases.
    pub coverage: f64,
    /// Wrong answers / all cases.
    pub wrong_answer_rate: f64,
    /// Wrong answers / answered cases (null when nothing is answered: answering nothing is not a
    /// perfect score).
    pub risk: Option<f64>,
}

/// True when the case is answered at answer threshold `threshold` and retrieval gate `gate`:
/// it is not rule-decided, has a candidate answer and clears both (the engine's own rule).
pub fn answered_at(case: &CaseResult, threshold: f32, gate: f32) -> bool {
    !rule_decided(case) && case.answered_at(threshold, gate)
}

/// One case in a [`Ranked`] list.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    confidence: f32,
    wrong: bool,
    /// Index of the case in the run.
    case: usize,
}

/// The cases some threshold answers — a candidate answer, not rule-decided, through the
/// retrieval gate, a confidence that is a number — by confidence, highest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ranked {
    entries: Vec<Entry>,
    /// All cases of the run, answerable by a threshold or not: the coverage denominator.
    cases: usize,
}

/// One step of a sweep from the highest threshold down: the threshold at one distinct
/// confidence and what it answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The confidence of this step's cases, used as the threshold.
    pub threshold: f32,
    /// Cases answered at this threshold (this step's and every earlier one's).
    pub answered: usize,
    /// Wrong answers among them.
    pub wrong: usize,
    /// Cases this step adds (all of one confidence).
    pub added: usize,
    /// Wrong answers among the added cases.
    pub added_wrong: usize,
}

impl Ranked {
    /// Ranks the cases of a run with the retrieval gate fixed at `gate`.
    pub fn new(cases: &[CaseResult], gate: f32) -> Ranked {
        let mut entries: Vec<Entry> = cases
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                !rule_decided(c)
                    && c.candidate_answer.is_some()
                    && c.retrieval_confidence >= gate
                    && !c.confidence.is_nan()
            })
            .map(|(case, c)| Entry { confidence: c.confidence, wrong: c.wrong_if_answered(), case })
            .collect();
        entries.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.case.cmp(&b.case)));
        Ranked { entries, cases: cases.len() }
    }

    /// Number of cases in the run.
    pub fn cases(&self) -> usize {
        self.cases
    }

    /// Number of cases some threshold answers.
    pub fn eligible(&self) -> usize {
        self.entries.len()
    }

    /// Sweeps the threshold from the highest confidence down, one [`Step`] per distinct
    /// confidence, counting case `i` `weight(i)` times (1 for the run itself, its multiplicity
    /// in a bootstrap resample). Steps whose cases all weigh 0 are left out.
    pub fn sweep(&self, weight: impl Fn(usize) -> usize) -> Vec<Step> {
        let mut steps = Vec::new();
        let (mut answered, mut wrong) = (0, 0);
        let mut start = 0;
        while start < self.entries.len() {
            let confidence = self.entries[start].confidence;
            let mut end = start;
            let (mut added, mut added_wrong) = (0, 0);
            while end < self.entries.len() && self.entries[end].confidence.total_cmp(&confidence).is_eq() {
                let w = weight(self.entries[end].case);
                added += w;
                added_wrong += if self.entries[end].wrong { w } else { 0 };
                end += 1;
            }
            if added > 0 {
                answered += added;
                wrong += added_wrong;
                steps.push(Step { threshold: confidence, answered, wrong, added, added_wrong });
            }
            start = end;
        }
        steps
    }

    /// The risk–coverage curve: one point per distinct confidence plus thresholds 0 and
    /// [`ABOVE_ALL`], sorted by threshold; coverage and the wrong-answer rate never increase
    /// along it.
    pub fn curve(&self) -> Vec<CurvePoint> {
        let steps = self.sweep(|_| 1);
        let n = self.cases;
        let point = |threshold: f32| {
            // Steps run from the highest threshold down: the last one at or above `threshold`
            // holds everything it answers.
            let (answered, wrong) =
                steps.iter().rev().find(|s| s.threshold >= threshold).map_or((0, 0), |s| (s.answered, s.wrong));
            let share = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
            CurvePoint {
                threshold,
                answered,
                wrong,
                coverage: share(answered),
                wrong_answer_rate: share(wrong),
                risk: super::metrics::ratio(wrong, answered),
            }
        };
        let mut thresholds: Vec<f32> = steps.iter().map(|s| s.threshold).collect();
        thresholds.push(0.0);
        thresholds.push(ABOVE_ALL);
        thresholds.sort_by(f32::total_cmp);
        thresholds.dedup();
        thresholds.into_iter().map(point).collect()
    }
}

/// Sweeps the answer threshold over 0, every distinct candidate confidence and [`ABOVE_ALL`],
/// with the retrieval gate fixed at `gate` (see [`Ranked::curve`]).
pub fn risk_coverage(cases: &[CaseResult], gate: f32) -> Vec<CurvePoint> {
    Ranked::new(cases, gate).curve()
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
        assert!(close(at(0.0).risk.unwrap(), 0.25));
        assert_eq!((at(0.0).answered, at(0.0).wrong), (8, 2));
        // t = 0.5: a, b, c, d, i answered; b wrong.
        let p = at(0.5);
        assert_eq!(p.threshold, 0.6);
        assert!(close(p.coverage, 0.5));
        assert!(close(p.wrong_answer_rate, 0.1));
        assert!(close(p.risk.unwrap(), 0.2));
        // t = 0.85: a, i answered, none wrong.
        assert!(close(at(0.85).coverage, 0.2));
        assert_eq!(at(0.85).wrong_answer_rate, 0.0);
        let last = points.last().copied().unwrap();
        // Answering nothing has no risk at all, rather than a perfect one.
        assert_eq!((last.coverage, last.wrong_answer_rate, last.risk), (0.0, 0.0, None));

        // Agrees with the engine's rule case by case.
        let cases = sample();
        for p in &points {
            let answered = cases.iter().filter(|c| answered_at(c, p.threshold, 0.3)).count();
            assert_eq!(p.answered, answered);
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
    fn rule_decided_cases_are_never_answered_but_count_in_coverage() {
        let mut cases = sample();
        // A rule hand-off that somehow carries a candidate and a high confidence.
        cases.push(CaseResult { engine_reason: "asked_for_human".into(), ..case("k", false, false, 0.99) });
        let points = risk_coverage(&cases, 0.3);
        assert!(!points.iter().any(|p| p.threshold == 0.99));
        let at_zero = point_at(&points, 0.0).unwrap();
        assert_eq!(at_zero.answered, 8);
        assert!(close(at_zero.coverage, 8.0 / 11.0));
        assert!(!answered_at(&cases[10], 0.0, 0.0));
        assert_eq!(Ranked::new(&cases, 0.3).eligible(), 8);
    }

    #[test]
    fn tied_confidences_enter_together() {
        // Three cases at 0.7 (one wrong) after a right one at 0.9.
        let cases = vec![
            case("a", true, true, 0.9),
            case("b", true, true, 0.7),
            case("c", false, false, 0.7),
            case("d", true, true, 0.7),
        ];
        let ranked = Ranked::new(&cases, 0.0);
        let steps = ranked.sweep(|_| 1);
        assert_eq!(
            steps,
            vec![
                Step { threshold: 0.9, answered: 1, wrong: 0, added: 1, added_wrong: 0 },
                Step { threshold: 0.7, answered: 4, wrong: 1, added: 3, added_wrong: 1 },
            ]
        );
        let thresholds: Vec<f32> = ranked.curve().iter().map(|p| p.threshold).collect();
        assert_eq!(thresholds, vec![0.0, 0.7, 0.9, ABOVE_ALL]);
        // Weights count a case several times, and a weight of 0 drops its step.
        let weighted = ranked.sweep(|i| if i == 0 { 0 } else { 2 });
        assert_eq!(weighted, vec![Step { threshold: 0.7, answered: 6, wrong: 2, added: 6, added_wrong: 2 }]);
    }

    #[test]
    fn empty_run_yields_the_end_points() {
        let points = risk_coverage(&[], 0.3);
        assert_eq!(points.len(), 2);
        assert!(points.iter().all(|p| p.coverage == 0.0 && p.wrong_answer_rate == 0.0));
    }
}
