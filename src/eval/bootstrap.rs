//! Bootstrap intervals: how much an eval figure could move by the luck of which cases the
//! dataset happens to hold.
//!
//! A dataset of a hundred-odd cases measures a wrong-answer risk of 4% with an uncertainty of
//! several points, so a change of one point between two runs may be noise. Each headline figure
//! gets a 95% interval: the cases are resampled with replacement (as many as the run has),
//! the figure is recomputed on each resample, and the interval runs from the 2.5th to the
//! 97.5th percentile of those values (the percentile bootstrap). Resamples on which a figure is
//! undefined (no answers, so no risk; one class empty, so no AUROC) are left out of its
//! interval; the interval is null when the figure itself is.
//!
//! The generator is a SplitMix64 with a fixed seed, so the same cases give the same intervals
//! on every machine and every run. Every figure of a resample is computed from one multiplicity
//! per case, without copying cases; 1000 resamples of a few hundred cases take milliseconds.

use super::curve::{answered_at, Ranked};
use super::metrics::{percentile, ratio};
use super::record::CaseResult;
use super::rules::rule_decided;
use super::selective::{aurc, coverage_at_risk, RISK_TARGETS};
use serde::Serialize;

/// Resamples drawn by default.
pub const DEFAULT_RESAMPLES: usize = 1000;
/// Seed used by default (any fixed value would do; this one fits a JSON number exactly).
pub const DEFAULT_SEED: u64 = 0x00F0_5EED_2026;

/// How the intervals are drawn (`bootstrap` in `report.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Settings {
    /// Resamples drawn; 0 turns intervals off (every `_ci` is null).
    pub resamples: usize,
    /// Seed of the generator: the same cases and seed give the same intervals.
    pub seed: u64,
    /// Share of the resampled values inside the interval: 0.95 puts its bounds at the 2.5th and
    /// 97.5th percentiles.
    pub level: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { resamples: DEFAULT_RESAMPLES, seed: DEFAULT_SEED, level: 0.95 }
    }
}

/// The SplitMix64 generator (Steele, Lea and Flood, 2014): small, fast and good enough to draw
/// resamples; not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0), by multiplying and keeping the high half (its bias, below
    /// n / 2⁶⁴, is far under anything a resample can show).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The figures that get intervals, in the order of [`Estimates::values`].
pub const FIGURES: [&str; 10] = [
    "risk",
    "coverage",
    "resolution_rate",
    "wrong_answer_rate",
    "auroc",
    "auroc_correct",
    "aurc",
    "coverage_at_risk_2",
    "coverage_at_risk_5",
    "coverage_at_risk_10",
];

/// The interval-bearing figures of one (re)sample; `None` where a figure is undefined.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimates {
    pub risk: Option<f64>,
    pub coverage: Option<f64>,
    pub resolution_rate: Option<f64>,
    pub wrong_answer_rate: Option<f64>,
    pub auroc: Option<f64>,
    pub auroc_correct: Option<f64>,
    pub aurc: Option<f64>,
    pub coverage_at_risk: [Option<f64>; 3],
}

impl Estimates {
    /// The figures in the order of [`FIGURES`].
    pub fn values(&self) -> [Option<f64>; 10] {
        let [r2, r5, r10] = self.coverage_at_risk;
        [
            self.risk,
            self.coverage,
            self.resolution_rate,
            self.wrong_answer_rate,
            self.auroc,
            self.auroc_correct,
            self.aurc,
            r2,
            r5,
            r10,
        ]
    }
}

/// 95% intervals `[lo, hi]` of the figures in [`FIGURES`] (null when undefined).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Intervals {
    pub risk: Option<[f64; 2]>,
    pub coverage: Option<[f64; 2]>,
    pub resolution_rate: Option<[f64; 2]>,
    pub wrong_answer_rate: Option<[f64; 2]>,
    pub auroc: Option<[f64; 2]>,
    pub auroc_correct: Option<[f64; 2]>,
    pub aurc: Option<[f64; 2]>,
    pub coverage_at_risk: [Option<[f64; 2]>; 3],
}

impl Intervals {
    fn from_values(v: [Option<[f64; 2]>; 10]) -> Intervals {
        Intervals {
            risk: v[0],
            coverage: v[1],
            resolution_rate: v[2],
            wrong_answer_rate: v[3],
            auroc: v[4],
            auroc_correct: v[5],
            aurc: v[6],
            coverage_at_risk: [v[7], v[8], v[9]],
        }
    }
}

/// What the figures need to know of one case at the scored thresholds.
#[derive(Debug, Clone, Copy)]
struct Row {
    answered: bool,
    /// Answered and wrong.
    wrong: bool,
    answerable: bool,
    /// Answered, answerable and grounded.
    resolved: bool,
}

/// A score-decided case in confidence order.
#[derive(Debug, Clone, Copy)]
struct Scored {
    case: usize,
    answerable: bool,
    /// Answering it would be right: answerable and grounded.
    right: bool,
}

/// A run prepared for weighted scoring: everything that does not depend on the weights is done
/// once.
#[derive(Debug, Clone)]
pub struct Sample {
    rows: Vec<Row>,
    /// Score-decided cases by confidence, lowest first.
    scored: Vec<Scored>,
    /// Runs of equal confidence in `scored`, as `start..end`.
    ties: Vec<(usize, usize)>,
    ranked: Ranked,
}

impl Sample {
    /// Prepares `cases` scored at answer threshold `threshold` and retrieval gate `gate`.
    pub fn new(cases: &[CaseResult], threshold: f32, gate: f32) -> Sample {
        let rows = cases
            .iter()
            .map(|c| {
                let answered = answered_at(c, threshold, gate);
                Row {
                    answered,
                    wrong: answered && c.wrong_if_answered(),
                    answerable: c.answerable,
                    resolved: answered && c.answerable && c.grounded,
                }
            })
            .collect();
        let mut order: Vec<(f32, Scored)> = cases
            .iter()
            .enumerate()
            .filter(|(_, c)| !rule_decided(c))
            .map(|(case, c)| {
                (c.confidence, Scored { case, answerable: c.answerable, right: c.answerable && c.grounded })
            })
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut ties = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let end = start + order[start..].iter().take_while(|(c, _)| c.total_cmp(&order[start].0).is_eq()).count();
            ties.push((start, end));
            start = end;
        }
        Sample { rows, scored: order.into_iter().map(|(_, s)| s).collect(), ties, ranked: Ranked::new(cases, gate) }
    }

    /// The figures with case `i` counted `weights[i]` times (`weights` has one entry per case).
    pub fn estimates(&self, weights: &[u32]) -> Estimates {
        let w = |i: usize| weights.get(i).copied().map_or(0, |w| w as usize);
        let (mut n, mut answered, mut wrong, mut answerable, mut resolved) = (0, 0, 0, 0, 0);
        for (i, row) in self.rows.iter().enumerate() {
            let k = w(i);
            n += k;
            answered += if row.answered { k } else { 0 };
            wrong += if row.wrong { k } else { 0 };
            answerable += if row.answerable { k } else { 0 };
            resolved += if row.resolved { k } else { 0 };
        }
        let steps = self.ranked.sweep(w);
        Estimates {
            risk: ratio(wrong, answered),
            coverage: ratio(answered, n),
            resolution_rate: ratio(resolved, answerable),
            wrong_answer_rate: ratio(wrong, n),
            auroc: self.auroc(weights, |s| s.answerable),
            auroc_correct: self.auroc(weights, |s| s.right),
            aurc: aurc(&steps),
            coverage_at_risk: RISK_TARGETS
                .map(|(target, _)| (n > 0).then(|| coverage_at_risk(&steps, n, target).coverage)),
        }
    }

    /// Weighted AUROC of the confidence over score-decided cases, `positive` telling the
    /// classes apart: the weighted share of (positive, negative) pairs the positive wins, ties
    /// counting half. With unit weights it equals [`super::metrics::auroc`].
    fn auroc(&self, weights: &[u32], positive: impl Fn(&Scored) -> bool) -> Option<f64> {
        let (mut negatives_below, mut positives, mut wins) = (0.0, 0.0, 0.0);
        for &(start, end) in &self.ties {
            let (mut p, mut q) = (0.0, 0.0);
            for s in &self.scored[start..end] {
                let k = f64::from(weights.get(s.case).copied().unwrap_or(0));
                if positive(s) {
                    p += k;
                } else {
                    q += k;
                }
            }
            wins += p * negatives_below + 0.5 * p * q;
            negatives_below += q;
            positives += p;
        }
        (positives > 0.0 && negatives_below > 0.0).then(|| wins / (positives * negatives_below))
    }
}

/// Percentile-bootstrap intervals of the figures in [`FIGURES`] for `cases` scored at
/// `threshold` and `gate`. All null when there are no cases or `settings.resamples` is 0.
pub fn intervals(cases: &[CaseResult], threshold: f32, gate: f32, settings: Settings) -> Intervals {
    let n = cases.len();
    if n == 0 || settings.resamples == 0 {
        return Intervals::default();
    }
    let sample = Sample::new(cases, threshold, gate);
    let mut rng = SplitMix64::new(settings.seed);
    let mut weights = vec![0u32; n];
    let mut draws: [Vec<f64>; 10] = Default::default();
    for _ in 0..settings.resamples {
        weights.fill(0);
        for _ in 0..n {
            weights[rng.below(n)] += 1;
        }
        for (values, value) in draws.iter_mut().zip(sample.estimates(&weights).values()) {
            values.extend(value);
        }
    }
    let tail = (1.0 - settings.level.clamp(0.0, 1.0)) / 2.0;
    Intervals::from_values(draws.map(|values| {
        let lo = percentile(&values, tail.max(f64::MIN_POSITIVE))?;
        let hi = percentile(&values, 1.0 - tail)?;
        Some([lo, hi])
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::eval::metrics::tests::case;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first outputs of the reference implementation seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
        let mut rng = SplitMix64::new(7);
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            seen[rng.below(5)] += 1;
        }
        assert!(seen.iter().all(|&k| (800..1200).contains(&k)), "{seen:?}");
    }

    /// `repeat` copies of a mixed run: right and wrong answers at spread confidences, an
    /// escalated answerable case and a rule hand-off.
    fn run(repeat: usize) -> Vec<CaseResult> {
        let mut cases = Vec::new();
        for r in 0..repeat {
            let id = |name: &str| format!("{name}{r}");
            cases.extend([
                case(&id("a"), true, true, 0.95),
                case(&id("b"), true, true, 0.9),
                case(&id("c"), true, false, 0.85),
                case(&id("d"), true, true, 0.8),
                case(&id("e"), false, false, 0.75),
                case(&id("f"), true, true, 0.7),
                case(&id("g"), true, true, 0.65),
                case(&id("h"), false, false, 0.3),
                case(&id("i"), true, true, 0.2),
                CaseResult {
                    candidate_answer: None,
                    engine_reason: "asked_for_human".into(),
                    ..case(&id("j"), false, false, 0.0)
                },
            ]);
        }
        cases
    }

    fn width(ci: Option<[f64; 2]>) -> f64 {
        let [lo, hi] = ci.unwrap();
        hi - lo
    }

    #[test]
    fn unit_weights_give_the_point_estimates() {
        let cases = run(3);
        let sample = Sample::new(&cases, 0.5, 0.0);
        let e = sample.estimates(&vec![1; cases.len()]);
        let m = crate::eval::metrics::compute(&cases, 0.5, 0.0);
        assert_eq!(e.risk, m.decisions.risk);
        assert_eq!(e.coverage, Some(m.decisions.coverage));
        assert_eq!(e.resolution_rate, m.decisions.resolution_rate);
        assert_eq!(e.wrong_answer_rate, Some(m.decisions.wrong_answer_rate));
        let near = |a: Option<f64>, b: Option<f64>| (a.unwrap() - b.unwrap()).abs() < 1e-12;
        assert!(near(e.auroc, m.confidence.auroc));
        assert!(near(e.auroc_correct, m.confidence.auroc_correct));
        assert_eq!(e.aurc, m.selective.aurc);
        assert_eq!(e.coverage_at_risk[1], Some(m.selective.coverage_at_risk_5));
        // Doubling every weight changes no ratio. (AURC does move: each case's copies form a
        // tie, whose wrong answers are spread over the prefixes inside it.)
        let doubled = sample.estimates(&vec![2; cases.len()]);
        assert_eq!(Estimates { aurc: e.aurc, ..doubled }, e);
        assert!((doubled.aurc.unwrap() - e.aurc.unwrap()).abs() < 0.01);
    }

    #[test]
    fn intervals_contain_the_point_estimate() {
        let cases = run(4);
        let e = Sample::new(&cases, 0.5, 0.0).estimates(&vec![1; cases.len()]);
        let ci = intervals(&cases, 0.5, 0.0, Settings::default());
        let ci_values = [
            ci.risk,
            ci.coverage,
            ci.resolution_rate,
            ci.wrong_answer_rate,
            ci.auroc,
            ci.auroc_correct,
            ci.aurc,
            ci.coverage_at_risk[0],
            ci.coverage_at_risk[1],
            ci.coverage_at_risk[2],
        ];
        for ((name, point), ci) in FIGURES.iter().zip(e.values()).zip(ci_values) {
            let (point, [lo, hi]) = (point.unwrap(), ci.unwrap());
            assert!(lo <= point && point <= hi, "{name}: {point} outside [{lo}, {hi}]");
        }
        // Forty cases leave real uncertainty: the intervals are not points.
        for ci in [ci.risk, ci.coverage, ci.auroc, ci.auroc_correct, ci.aurc] {
            assert!(width(ci) > 0.01, "{ci:?}");
        }
    }

    #[test]
    fn intervals_shrink_with_more_cases() {
        let small = intervals(&run(2), 0.5, 0.0, Settings::default());
        let large = intervals(&run(20), 0.5, 0.0, Settings::default());
        for (name, s, l) in [
            ("risk", small.risk, large.risk),
            ("coverage", small.coverage, large.coverage),
            ("wrong_answer_rate", small.wrong_answer_rate, large.wrong_answer_rate),
            ("auroc", small.auroc, large.auroc),
            ("aurc", small.aurc, large.aurc),
        ] {
            assert!(width(l) < width(s) * 0.6, "{name}: {:?} vs {:?}", l, s);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_intervals() {
        let cases = run(3);
        let a = intervals(&cases, 0.5, 0.0, Settings::default());
        let b = intervals(&cases, 0.5, 0.0, Settings::default());
        assert_eq!(a, b);
        let other = intervals(&cases, 0.5, 0.0, Settings { seed: 99, ..Settings::default() });
        assert_ne!(a, other, "a different seed draws different resamples");
    }

    #[test]
    fn undefined_figures_have_no_interval() {
        // Nothing answered: no risk, and no interval for it.
        let none: Vec<CaseResult> = (0..6)
            .map(|i| CaseResult { candidate_answer: None, ..case(&format!("n{i}"), i % 2 == 0, false, 0.0) })
            .collect();
        let ci = intervals(&none, 0.5, 0.0, Settings::default());
        assert_eq!(ci.risk, None);
        assert_eq!(ci.aurc, None);
        assert_eq!(ci.coverage, Some([0.0, 0.0]));
        assert_eq!(intervals(&[], 0.5, 0.0, Settings::default()), Intervals::default());
        assert_eq!(
            intervals(&run(1), 0.5, 0.0, Settings { resamples: 0, ..Settings::default() }),
            Intervals::default()
        );
    }

    #[test]
    fn a_thousand_resamples_of_a_few_hundred_cases_are_quick() {
        let cases = run(50);
        let started = std::time::Instant::now();
        let ci = intervals(&cases, 0.5, 0.0, Settings::default());
        // Well under a second even in a debug build on a busy machine.
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(ci.risk.is_some());
    }
}
