//! Fitting the confidence model from eval runs, with cross-validation across datasets.
//!
//! Every case an eval run answers (with thresholds open) is one example: its features, and
//! whether the answer was right — the question answerable and a gold document cited. Cases the
//! engine decided by rule (a request for a person, an attempt to steer it) and cases with no
//! candidate answer are not examples: no score decides them.
//!
//! **Cross-validation is by dataset**: each dataset is scored by a model fitted on the others
//! only, so a figure reported for a dataset is one the model was never tuned on. Each dataset
//! counts the same in a fit, however many cases it has. The recommended threshold is chosen on
//! the data a model was fitted on (never on the dataset it is scored on): the lowest threshold
//! at which the fitted model's own predictions keep risk at or under the target.

use super::metrics::auroc;
use super::record::CaseResult;
use crate::engine::confidence::{ConfidenceModel, FoldReport};
use crate::logistic::{fit, Example, Logistic};
use crate::trace::{Features, FEATURE_NAMES, RETRIEVAL_FEATURES};
use serde::Serialize;

/// The share of right answers (in percent, of the fitted data) the recommended retrieval gate may
/// stop before an answer is written: a gate is for hopeless questions, not close calls.
pub const GATE_LOSS_PERCENT: usize = 2;

/// One eval case, as the fit sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub dataset: String,
    pub id: String,
    pub features: Features,
    /// The engine produced a candidate answer (the score decides whether it is sent).
    pub candidate: bool,
    /// That answer would be right.
    pub correct: bool,
    pub answerable: bool,
}

/// Reads the samples of one dataset's eval run; cases recorded without features are skipped
/// and counted.
pub fn samples_of(dataset: &str, results: &[CaseResult]) -> (Vec<Sample>, usize) {
    let mut out = Vec::new();
    let mut missing = 0;
    for r in results {
        let Some(features) = r.features else {
            missing += usize::from(r.candidate_answer.is_some());
            continue;
        };
        out.push(Sample {
            dataset: dataset.to_string(),
            id: r.id.clone(),
            features,
            candidate: r.candidate_answer.is_some(),
            correct: r.candidate_answer.is_some() && r.answerable && r.grounded,
            answerable: r.answerable,
        });
    }
    (out, missing)
}

/// Fit settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// L2 penalty on the standardised weights.
    pub l2: f64,
    /// Risk the recommended threshold must keep.
    pub target_risk: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { l2: 1.0, target_risk: 0.05 }
    }
}

fn examples(samples: &[&Sample], names: &[&str]) -> Vec<Example> {
    let mut per_dataset: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in samples {
        *per_dataset.entry(s.dataset.as_str()).or_default() += 1;
    }
    samples
        .iter()
        .map(|s| Example {
            x: names.iter().map(|n| s.features.get(n).unwrap_or(0.0)).collect(),
            y: s.correct,
            weight: 1.0 / per_dataset.get(s.dataset.as_str()).copied().unwrap_or(1) as f64,
        })
        .collect()
}

/// Risk and coverage along a ranking: for each candidate sorted by score (best first), ties
/// taken together. `total` is the number of all cases (the coverage denominator).
fn curve(scored: &[(f32, bool)], total: usize) -> Vec<(f32, f64, f64)> {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = Vec::new();
    let (mut answered, mut wrong) = (0usize, 0usize);
    let mut i = 0;
    while i < sorted.len() {
        let t = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == t {
            answered += 1;
            wrong += usize::from(!sorted[i].1);
            i += 1;
        }
        points.push((t, answered as f64 / total.max(1) as f64, wrong as f64 / answered as f64));
    }
    points
}

/// The largest coverage whose risk stays at or under `target` (0 when none does).
pub fn coverage_at_risk(scored: &[(f32, bool)], total: usize, target: f64) -> f64 {
    curve(scored, total).iter().filter(|p| p.2 <= target).map(|p| p.1).fold(0.0, f64::max)
}

/// The lowest threshold whose risk stays at or under `target` (1.0 when none does).
pub fn threshold_for(scored: &[(f32, bool)], target: f64) -> f32 {
    curve(scored, scored.len()).iter().filter(|p| p.2 <= target).map(|p| p.0).fold(1.0, f32::min)
}

/// Fits the two logistic models on `samples` (candidates only).
fn fit_pair(samples: &[&Sample], opts: Options) -> Option<(Logistic, Logistic)> {
    let candidates: Vec<&Sample> = samples.iter().copied().filter(|s| s.candidate).collect();
    let retrieval = fit(RETRIEVAL_FEATURES, &examples(&candidates, RETRIEVAL_FEATURES), opts.l2)?;
    let answer = fit(FEATURE_NAMES, &examples(&candidates, FEATURE_NAMES), opts.l2)?;
    Some((retrieval, answer))
}

fn model_of(
    version: &str,
    samples: &[&Sample],
    opts: Options,
    folds: Vec<FoldReport>,
) -> Result<ConfidenceModel, String> {
    let (retrieval, answer) =
        fit_pair(samples, opts).ok_or("the data holds no right answers, or no wrong ones: nothing to fit")?;
    let mut fitted_on: Vec<String> = samples.iter().map(|s| s.dataset.clone()).collect();
    fitted_on.sort();
    fitted_on.dedup();
    let mut model = ConfidenceModel {
        version: version.to_string(),
        fitted_on,
        retrieval,
        answer,
        recommended_threshold: 1.0,
        recommended_gate: 0.0,
        target_risk: opts.target_risk,
        folds,
        ranker: None,
        ranker_fitted_on: Vec::new(),
    };
    let own: Vec<(f32, bool)> =
        samples.iter().filter(|s| s.candidate).map(|s| (model.answer_confidence(&s.features), s.correct)).collect();
    model.recommended_threshold = threshold_for(&own, opts.target_risk);
    let mut right: Vec<f32> =
        samples.iter().filter(|s| s.candidate && s.correct).map(|s| model.retrieval_confidence(&s.features)).collect();
    right.sort_by(f32::total_cmp);
    model.recommended_gate = right.get(right.len() * GATE_LOSS_PERCENT / 100).copied().unwrap_or(0.0);
    Ok(model)
}

/// One held-out dataset's scores under the model fitted without it.
#[derive(Debug, Clone, Serialize)]
pub struct Fold {
    pub report: FoldReport,
    /// The fold's model (fitted without `report.held_out`).
    #[serde(skip)]
    pub model: ConfidenceModel,
    /// Risk and coverage on the held-out dataset at the fold model's own recommended threshold.
    pub risk_at_threshold: Option<f64>,
    pub coverage_at_threshold: f64,
    /// Coverage at risk 2% and 10% beside the 5% of the report.
    pub coverage_at_risk_2: f64,
    pub coverage_at_risk_10: f64,
    /// Same with the retrieval model alone (before any answer is written).
    pub auroc_correct_retrieval: Option<f64>,
}

/// Scores `held_out` with `model`.
pub fn score(model: &ConfidenceModel, held_out: &str, samples: &[&Sample]) -> Fold {
    let total = samples.len();
    let scored: Vec<(f32, bool, bool)> = samples
        .iter()
        .filter(|s| s.candidate)
        .map(|s| (model.answer_confidence(&s.features), s.correct, s.answerable))
        .collect();
    let pairs: Vec<(f32, bool)> = scored.iter().map(|(p, c, _)| (*p, *c)).collect();
    let split = |pick: fn(&(f32, bool, bool)) -> bool| {
        let pos: Vec<f32> = scored.iter().filter(|s| pick(s)).map(|s| s.0).collect();
        let neg: Vec<f32> = scored.iter().filter(|s| !pick(s)).map(|s| s.0).collect();
        auroc(&pos, &neg)
    };
    let retrieval: Vec<(f32, bool)> =
        samples.iter().filter(|s| s.candidate).map(|s| (model.retrieval_confidence(&s.features), s.correct)).collect();
    let answered: Vec<&(f32, bool)> = pairs.iter().filter(|p| p.0 >= model.recommended_threshold).collect();
    Fold {
        report: FoldReport {
            held_out: held_out.to_string(),
            cases: total,
            auroc_correct: split(|s| s.1),
            auroc_answerable: split(|s| s.2),
            coverage_at_risk_5: coverage_at_risk(&pairs, total, 0.05),
        },
        model: model.clone(),
        risk_at_threshold: (!answered.is_empty())
            .then(|| answered.iter().filter(|p| !p.1).count() as f64 / answered.len() as f64),
        coverage_at_threshold: answered.len() as f64 / total.max(1) as f64,
        coverage_at_risk_2: coverage_at_risk(&pairs, total, 0.02),
        coverage_at_risk_10: coverage_at_risk(&pairs, total, 0.10),
        auroc_correct_retrieval: {
            let pos: Vec<f32> = retrieval.iter().filter(|p| p.1).map(|p| p.0).collect();
            let neg: Vec<f32> = retrieval.iter().filter(|p| !p.1).map(|p| p.0).collect();
            auroc(&pos, &neg)
        },
    }
}

/// Leave-one-dataset-out cross-validation, then the final model fitted on every dataset.
pub fn calibrate(version: &str, samples: &[Sample], opts: Options) -> Result<(ConfidenceModel, Vec<Fold>), String> {
    let mut datasets: Vec<&str> = samples.iter().map(|s| s.dataset.as_str()).collect();
    datasets.sort();
    datasets.dedup();
    if datasets.len() < 2 {
        return Err("cross-validation across datasets needs at least two datasets".into());
    }
    let mut folds = Vec::new();
    for held_out in &datasets {
        let train: Vec<&Sample> = samples.iter().filter(|s| s.dataset != *held_out).collect();
        let test: Vec<&Sample> = samples.iter().filter(|s| s.dataset == *held_out).collect();
        let model = model_of(&format!("{version}-without-{held_out}"), &train, opts, Vec::new())
            .map_err(|e| format!("fold without {held_out}: {e}"))?;
        folds.push(score(&model, held_out, &test));
    }
    let all: Vec<&Sample> = samples.iter().collect();
    let model = model_of(version, &all, opts, folds.iter().map(|f| f.report.clone()).collect())?;
    Ok((model, folds))
}

/// Fits the feature ranker on the recorded rank samples of `results` (one list per dataset):
/// each case counts the same within its dataset, and each dataset the same overall.
pub fn fit_ranker(per_dataset: &[&[CaseResult]], l2: f64) -> Option<Logistic> {
    let mut examples = Vec::new();
    let datasets = per_dataset.iter().filter(|r| r.iter().any(|c| !c.rank_samples.is_empty())).count().max(1);
    for results in per_dataset {
        let cases = results.iter().filter(|c| !c.rank_samples.is_empty()).count();
        for c in results.iter().filter(|c| !c.rank_samples.is_empty()) {
            for s in &c.rank_samples {
                examples.push(Example {
                    x: s.x.clone(),
                    y: s.gold,
                    weight: 1.0 / (cases as f64 * c.rank_samples.len() as f64 * datasets as f64),
                });
            }
        }
    }
    fit(crate::rerank::features::HIT_FEATURES, &examples, l2)
}

/// Chunk-level recall@1 and @5 over the recorded rank samples (a chunk of a gold document
/// among the first k), in retrieval order and in the order `ranker` gives; `None` when no case
/// has samples.
pub fn ranker_recall(results: &[CaseResult], ranker: &Logistic) -> Option<RankerRecall> {
    let names = crate::rerank::features::HIT_FEATURES;
    let cases: Vec<&CaseResult> = results.iter().filter(|c| !c.rank_samples.is_empty()).collect();
    if cases.is_empty() {
        return None;
    }
    let mut r = RankerRecall { cases: cases.len(), ..RankerRecall::default() };
    for c in &cases {
        let hit_at = |order: &[usize], k: usize| order.iter().take(k).any(|&i| c.rank_samples[i].gold);
        let before: Vec<usize> = (0..c.rank_samples.len()).collect();
        let scores: Vec<f64> = c
            .rank_samples
            .iter()
            .map(|s| {
                ranker.logit(|n| names.iter().position(|m| *m == n).and_then(|i| s.x.get(i).copied()).unwrap_or(0.0))
            })
            .collect();
        let mut after = before.clone();
        after.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        r.before_at_1 += f64::from(u8::from(hit_at(&before, 1)));
        r.before_at_5 += f64::from(u8::from(hit_at(&before, 5)));
        r.after_at_1 += f64::from(u8::from(hit_at(&after, 1)));
        r.after_at_5 += f64::from(u8::from(hit_at(&after, 5)));
    }
    let n = cases.len() as f64;
    r.before_at_1 /= n;
    r.before_at_5 /= n;
    r.after_at_1 /= n;
    r.after_at_5 /= n;
    Some(r)
}

/// Recall of the first chunks before and after the feature ranker.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct RankerRecall {
    pub cases: usize,
    pub before_at_1: f64,
    pub before_at_5: f64,
    pub after_at_1: f64,
    pub after_at_5: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dataset: &str, sem: f32, correct: bool) -> Sample {
        Sample {
            dataset: dataset.into(),
            id: format!("{dataset}-{sem}"),
            features: Features { sem_top: sem, answer_similarity: sem, ..Features::default() },
            candidate: true,
            correct,
            answerable: correct,
        }
    }

    #[test]
    fn coverage_at_risk_takes_the_largest_prefix_within_the_target() {
        // Scores 0.9..0.1; the 4th best is the first wrong one.
        let scored: Vec<(f32, bool)> = (1..=9).rev().map(|i| (i as f32 / 10.0, !matches!(i, 6 | 3 | 2))).collect();
        // 3 right of 3 → 0 risk at coverage 3/10; 4th wrong → 1/4.
        assert!((coverage_at_risk(&scored, 10, 0.05) - 0.3).abs() < 1e-9);
        assert!((coverage_at_risk(&scored, 10, 0.25) - 0.6).abs() < 1e-9, "5 right of 6 = 16.7%");
        assert!((threshold_for(&scored, 0.0) - 0.7).abs() < 1e-6);
        assert_eq!(threshold_for(&[(0.5, false)], 0.05), 1.0, "no threshold: answer nothing");
    }

    #[test]
    fn tied_scores_are_answered_together() {
        let scored = vec![(0.9, true), (0.9, false), (0.5, true)];
        // At 0.9 both tied cases are answered: risk 1/2, never 0 at coverage 1/3.
        assert_eq!(coverage_at_risk(&scored, 3, 0.05), 0.0);
    }

    #[test]
    fn each_dataset_is_scored_by_a_model_fitted_without_it() {
        let mut samples = Vec::new();
        for d in ["a", "b", "c"] {
            for i in 0..40 {
                let sem = i as f32 / 40.0;
                samples.push(sample(d, sem, sem > 0.5));
            }
        }
        let (model, folds) = calibrate("test", &samples, Options::default()).expect("fits");
        assert_eq!(folds.len(), 3);
        for f in &folds {
            assert!(!f.model.fitted_on.contains(&f.report.held_out), "{:?}", f.model.fitted_on);
            assert!(f.report.auroc_correct.unwrap_or(0.0) > 0.99);
        }
        assert_eq!(model.fitted_on, vec!["a", "b", "c"]);
        assert_eq!(model.folds.len(), 3);
        assert!(model.recommended_threshold > 0.0 && model.recommended_threshold < 1.0);
    }

    #[test]
    fn ranker_recall_compares_retrieval_order_with_the_rankers() {
        use crate::eval::record::RankSample;
        // The gold chunk is retrieved third; a ranker on the first feature puts it first.
        let sample = |gold: bool, v: f32| RankSample { gold, x: vec![v, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0] };
        let case = CaseResult {
            rank_samples: vec![sample(false, 0.1), sample(false, 0.2), sample(true, 0.9)],
            ..Default::default()
        };
        let names = crate::rerank::features::HIT_FEATURES;
        let mut weights = vec![0.0; names.len()];
        weights[0] = 1.0;
        let ranker = Logistic {
            features: names.iter().map(|s| s.to_string()).collect(),
            mean: vec![0.0; names.len()],
            scale: vec![1.0; names.len()],
            weights,
            bias: 0.0,
        };
        let r = ranker_recall(&[case, CaseResult::default()], &ranker).expect("one case has samples");
        assert_eq!(r.cases, 1);
        assert_eq!((r.before_at_1, r.after_at_1), (0.0, 1.0));
        assert_eq!((r.before_at_5, r.after_at_5), (1.0, 1.0));
    }

    #[test]
    fn one_dataset_is_refused() {
        let samples: Vec<Sample> = (0..10).map(|i| sample("only", i as f32 / 10.0, i > 4)).collect();
        assert!(calibrate("test", &samples, Options::default()).is_err());
    }
}
