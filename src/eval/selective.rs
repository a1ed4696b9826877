//! Selective prediction: how good the confidence score is at deciding *which* questions to
//! answer, summarised over every threshold at once.
//!
//! One threshold gives one (coverage, risk) pair; the summary here reads the whole
//! risk–coverage curve (see [`super::curve`]) so two runs can be compared without first agreeing
//! on a threshold:
//!
//! - **AURC**, the area under the risk–coverage curve: lower is better;
//! - **coverage at risk ≤ 2%, 5%, 10%**: the largest share of questions some threshold answers
//!   while at most that share of its answers are wrong, and the threshold that does it.
//!
//! A case is answered at threshold `t` when it has a candidate answer, clears the retrieval
//! gate and has confidence ≥ `t`; rule-decided cases are never answered but count in the
//! coverage denominator. Cases of equal confidence are answered together.

use super::curve::{Ranked, Step};
use serde::Serialize;

/// The risk targets coverage is reported at, with the suffix of their report fields.
pub const RISK_TARGETS: [(f64, &str); 3] = [(0.02, "2"), (0.05, "5"), (0.10, "10")];

/// Slack when comparing a risk to its target, so 1 wrong in 50 counts as within 2%.
const TOLERANCE: f64 = 1e-12;

/// The selective-prediction summary of one run (`selective` in `report.json`). Each `_ci` field
/// is the 95% bootstrap interval `[lo, hi]` of the field it follows (see [`super::bootstrap`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Selective {
    /// Cases some threshold answers: a candidate answer, not rule-decided, through the gate.
    pub eligible: usize,
    /// Rule-decided cases: never answered, in the coverage denominator only.
    pub rule_decided: usize,
    /// `eligible` / all cases: the coverage of the lowest threshold, the most any threshold
    /// reaches.
    pub max_coverage: f64,
    /// Area under the risk–coverage curve (see [`aurc`]); null when no threshold answers
    /// anything.
    pub aurc: Option<f64>,
    pub aurc_ci: Option<[f64; 2]>,
    /// Largest coverage of a threshold whose risk is ≤ 2% (0 when none is).
    pub coverage_at_risk_2: f64,
    pub coverage_at_risk_2_ci: Option<[f64; 2]>,
    /// The threshold that achieves it (null when none does).
    pub threshold_at_risk_2: Option<f32>,
    /// Largest coverage of a threshold whose risk is ≤ 5% (0 when none is).
    pub coverage_at_risk_5: f64,
    pub coverage_at_risk_5_ci: Option<[f64; 2]>,
    pub threshold_at_risk_5: Option<f32>,
    /// Largest coverage of a threshold whose risk is ≤ 10% (0 when none is).
    pub coverage_at_risk_10: f64,
    pub coverage_at_risk_10_ci: Option<[f64; 2]>,
    pub threshold_at_risk_10: Option<f32>,
}

impl Selective {
    /// The summary of a ranked run (intervals left empty).
    pub fn of(ranked: &Ranked, rule_decided: usize) -> Selective {
        let steps = ranked.sweep(|_| 1);
        let n = ranked.cases();
        let [r2, r5, r10] = RISK_TARGETS.map(|(target, _)| coverage_at_risk(&steps, n, target));
        Selective {
            eligible: ranked.eligible(),
            rule_decided,
            max_coverage: super::metrics::ratio(ranked.eligible(), n).unwrap_or(0.0),
            aurc: aurc(&steps),
            coverage_at_risk_2: r2.coverage,
            threshold_at_risk_2: r2.threshold,
            coverage_at_risk_5: r5.coverage,
            threshold_at_risk_5: r5.threshold,
            coverage_at_risk_10: r10.coverage,
            threshold_at_risk_10: r10.threshold,
            ..Selective::default()
        }
    }
}

/// Area under the risk–coverage curve, computed as the **mean of the risk over the
/// answered-prefix sizes**: rank the answerable cases by confidence, highest first; for every
/// k = 1 … m (m = cases the lowest threshold answers) take the risk of answering the top k;
/// average. It is the risk one expects from a threshold picked uniformly along the ranking, and
/// it does not shrink just because fewer cases are answerable (a run that can answer little is
/// not rewarded for it; coverage says how much it answers).
///
/// Inside a group of tied confidences the top-k prefix is not something a threshold can pick,
/// so its wrong count is the expected one under a random order of the tied cases: a group of
/// `g` cases with `w` wrong adds `j·w/g` wrong answers at its `j`-th case. At the group's end
/// this is exact. `None` when nothing is answered at any threshold.
pub fn aurc(steps: &[Step]) -> Option<f64> {
    let mut sum = 0.0;
    let mut before = (0usize, 0usize);
    for step in steps {
        let (answered_before, wrong_before) = before;
        let per_case = step.added_wrong as f64 / step.added as f64;
        for j in 1..=step.added {
            sum += (wrong_before as f64 + j as f64 * per_case) / (answered_before + j) as f64;
        }
        before = (step.answered, step.wrong);
    }
    let answered = steps.last().map_or(0, |s| s.answered);
    (answered > 0).then(|| sum / answered as f64)
}

/// Coverage at a risk target and the threshold that reaches it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtRisk {
    /// The largest coverage of any threshold whose risk is within the target (0 when none).
    pub coverage: f64,
    /// That threshold (`None` when none is within the target).
    pub threshold: Option<f32>,
}

/// The largest coverage of any threshold whose risk (wrong / answered) is at most `target`,
/// among thresholds that answer something; `cases` is the coverage denominator. Risk does not
/// fall steadily as the threshold rises, so every step is checked, not just the first one
/// within the target.
pub fn coverage_at_risk(steps: &[Step], cases: usize, target: f64) -> AtRisk {
    let best = steps
        .iter()
        .filter(|s| s.answered > 0 && (s.wrong as f64) <= (target + TOLERANCE) * s.answered as f64)
        .max_by_key(|s| s.answered);
    match best {
        Some(s) if cases > 0 => AtRisk { coverage: s.answered as f64 / cases as f64, threshold: Some(s.threshold) },
        _ => AtRisk { coverage: 0.0, threshold: None },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::eval::metrics::tests::case;
    use crate::eval::record::CaseResult;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn aurc_is_the_mean_risk_over_prefixes() {
        // By confidence: right, wrong, right, wrong. Prefix risks 0, 1/2, 1/3, 2/4.
        let cases = vec![
            case("a", true, true, 0.9),
            case("b", true, false, 0.8),
            case("c", true, true, 0.7),
            case("d", false, false, 0.6),
        ];
        let steps = Ranked::new(&cases, 0.0).sweep(|_| 1);
        let expected = (0.0 + 0.5 + 1.0 / 3.0 + 0.5) / 4.0;
        assert!(close(aurc(&steps).unwrap(), expected));
        // A perfect ranking (right answers first) scores lower than the reverse.
        let good = vec![case("a", true, true, 0.9), case("b", true, true, 0.8), case("c", false, false, 0.1)];
        let bad = vec![case("a", true, true, 0.1), case("b", true, true, 0.2), case("c", false, false, 0.9)];
        let of = |cases: &[CaseResult]| aurc(&Ranked::new(cases, 0.0).sweep(|_| 1)).unwrap();
        // good: 0, 0, 1/3; bad: 1, 1/2, 1/3.
        assert!(close(of(&good), 1.0 / 9.0));
        assert!(close(of(&bad), (1.0 + 0.5 + 1.0 / 3.0) / 3.0));
    }

    #[test]
    fn aurc_spreads_the_wrong_answers_of_a_tie_evenly() {
        // A right answer at 0.9, then a tie at 0.8 of one right and one wrong.
        // k = 1: 0; k = 2: (0 + ½) / 2 = ¼; k = 3: 1/3.
        let cases = vec![case("a", true, true, 0.9), case("b", true, true, 0.8), case("c", true, false, 0.8)];
        let steps = Ranked::new(&cases, 0.0).sweep(|_| 1);
        assert!(close(aurc(&steps).unwrap(), (0.0 + 0.25 + 1.0 / 3.0) / 3.0));
        // The order the tied cases are listed in does not matter.
        let swapped = vec![cases[0].clone(), cases[2].clone(), cases[1].clone()];
        assert_eq!(aurc(&Ranked::new(&swapped, 0.0).sweep(|_| 1)), aurc(&steps));
    }

    #[test]
    fn aurc_is_undefined_when_nothing_can_be_answered() {
        let none = vec![CaseResult { candidate_answer: None, ..case("a", true, true, 0.0) }];
        assert_eq!(aurc(&Ranked::new(&none, 0.0).sweep(|_| 1)), None);
        assert_eq!(aurc(&[]), None);
    }

    /// Twenty cases by confidence 1.00, 0.99, …: right except the 5th, 12th and 20th.
    /// Risks along the prefixes: 0 up to 4, 1/5 … 1/11, 2/12 … 2/19, 3/20.
    fn twenty() -> Vec<CaseResult> {
        (0..20)
            .map(|i| {
                let wrong = matches!(i, 4 | 11 | 19);
                case(&format!("c{i}"), true, !wrong, 1.0 - i as f32 / 100.0)
            })
            .collect()
    }

    #[test]
    fn coverage_at_risk_takes_the_largest_qualifying_coverage() {
        let mut cases = twenty();
        // Five rule hand-offs: in the denominator only.
        for i in 0..5 {
            cases.push(CaseResult {
                candidate_answer: None,
                engine_reason: "asked_for_human".into(),
                ..case(&format!("h{i}"), false, false, 0.0)
            });
        }
        let ranked = Ranked::new(&cases, 0.0);
        let steps = ranked.sweep(|_| 1);
        // ≤ 2%: only the first four (risk 0) → 4 of 25.
        let r2 = coverage_at_risk(&steps, 25, 0.02);
        assert!(close(r2.coverage, 4.0 / 25.0));
        assert_eq!(r2.threshold, Some(cases[3].confidence));
        // ≤ 10%: 1/10 and 1/11 are within; 2/12 … 2/19 and 3/20 are not. k = 11.
        let r10 = coverage_at_risk(&steps, 25, 0.10);
        assert!(close(r10.coverage, 11.0 / 25.0), "{r10:?}");
        assert_eq!(r10.threshold, Some(cases[10].confidence));
        // ≤ 15%: k = 20 has exactly 3/20 = 15% — within the target.
        assert!(close(coverage_at_risk(&steps, 25, 0.15).coverage, 20.0 / 25.0));
        // Nothing qualifies: 0 and no threshold.
        let all_wrong = vec![case("x", false, false, 0.9)];
        let steps = Ranked::new(&all_wrong, 0.0).sweep(|_| 1);
        assert_eq!(coverage_at_risk(&steps, 1, 0.05), AtRisk { coverage: 0.0, threshold: None });

        let s = Selective::of(&ranked, 5);
        assert_eq!((s.eligible, s.rule_decided), (20, 5));
        assert!(close(s.max_coverage, 0.8));
        assert!(close(s.coverage_at_risk_2, 4.0 / 25.0));
        assert!(close(s.coverage_at_risk_10, 11.0 / 25.0));
        // ≤ 5%: no prefix past the first wrong answer gets back under 5%; k = 4 is the best.
        assert!(close(s.coverage_at_risk_5, 4.0 / 25.0));
    }

    #[test]
    fn a_risk_that_falls_again_further_down_is_found() {
        // Wrong first, then nineteen right: risk 1, 1/2, …, 1/20 = 5% at k = 20.
        let mut cases = vec![case("w", true, false, 0.99)];
        cases.extend((0..19).map(|i| case(&format!("r{i}"), true, true, 0.9 - i as f32 / 100.0)));
        let steps = Ranked::new(&cases, 0.0).sweep(|_| 1);
        let r5 = coverage_at_risk(&steps, 20, 0.05);
        assert!(close(r5.coverage, 1.0));
        assert_eq!(r5.threshold, Some(cases[19].confidence));
        assert_eq!(coverage_at_risk(&steps, 20, 0.02).threshold, None);
    }

    #[test]
    fn a_bot_that_answers_nothing_has_no_coverage_at_any_risk() {
        let cases: Vec<CaseResult> =
            (0..4).map(|i| CaseResult { candidate_answer: None, ..case(&format!("n{i}"), true, true, 0.0) }).collect();
        let s = Selective::of(&Ranked::new(&cases, 0.0), 0);
        assert_eq!((s.eligible, s.max_coverage, s.aurc), (0, 0.0, None));
        assert_eq!((s.coverage_at_risk_2, s.threshold_at_risk_2), (0.0, None));
    }
}
