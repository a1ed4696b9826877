//! The numbers an eval run is judged by, computed from the per-case records alone.
//!
//! Decisions are recomputed from each case's candidate answer and confidences at the thresholds
//! asked for (not read from the stored `decision`), so one run can be scored at any setting.
//!
//! The headline is **risk beside coverage**: the share of the answers given that are wrong
//! (answers to unanswerable questions plus answers that cite no gold document), next to the
//! share of questions answered at all. Either alone flatters: a bot that answers nothing has no
//! wrong answers, and one that answers everything has full coverage. The wrong-answer rate over
//! all cases is kept as a secondary figure, labelled as such. Alongside: how often the assistant
//! resolves what it could resolve, how reliably it hands off what it cannot, how well its
//! confidence ranks right answers above wrong ones (over score-decided cases only; rule
//! hand-offs are scored apart, see [`super::rules`]), the whole risk–coverage trade-off (see
//! [`super::selective`]), retrieval quality, answer overlap with the reference, latency and
//! cost. Headline figures carry 95% bootstrap intervals (see [`super::bootstrap`]), each as a
//! sibling field named `<figure>_ci` holding `[lo, hi]`.

use super::bootstrap::{self, Intervals, Settings};
use super::curve::{answered_at, Ranked};
use super::record::CaseResult;
use super::retrieval::RetrievalScores;
use super::rules::{self, rule_decided, RuleScores};
use super::selective::Selective;
use crate::text::words;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Category name used for cases that have none.
pub const UNCATEGORISED: &str = "uncategorised";

/// Every score of one run at one pair of thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Number of cases scored.
    pub cases: usize,
    /// Doc-level recall@k and MRR over the cases that have gold documents.
    pub retrieval: RetrievalScores,
    pub decisions: Decisions,
    pub confidence: ConfidenceScores,
    /// The risk–coverage trade-off over every threshold.
    pub selective: Selective,
    /// The hand-offs made by rule rather than by score.
    pub rules: RuleScores,
    /// How the `_ci` intervals were drawn.
    pub bootstrap: Settings,
    pub answers: AnswerScores,
    pub latency_ms: Latency,
    pub cost: Cost,
    /// Per dataset category (cases without one are under `uncategorised`).
    pub by_category: BTreeMap<String, CategoryCounts>,
}

/// How the cases of one kind (answerable or not) were decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DecisionRow {
    /// Answered, citing at least one gold document.
    pub answered_grounded: usize,
    /// Answered without citing any gold document.
    pub answered_ungrounded: usize,
    /// Handed off to a person.
    pub escalated: usize,
}

impl DecisionRow {
    pub fn total(&self) -> usize {
        self.answered_grounded + self.answered_ungrounded + self.escalated
    }

    pub fn answered(&self) -> usize {
        self.answered_grounded + self.answered_ungrounded
    }
}

/// Answerable / unanswerable × outcome counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DecisionTable {
    pub answerable: DecisionRow,
    pub unanswerable: DecisionRow,
}

/// Decision quality at the scored thresholds. Each `_ci` field is the 95% bootstrap interval
/// `[lo, hi]` of the field before it (null when that is null).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decisions {
    /// `wrong_answers` / answered cases: the chance that a given answer is wrong. Null when
    /// nothing was answered — answering nothing is not a perfect score.
    pub risk: Option<f64>,
    pub risk_ci: Option<[f64; 2]>,
    /// Answered cases / all cases (0 when there are no cases). Rule hand-offs count here.
    pub coverage: f64,
    pub coverage_ci: Option<[f64; 2]>,
    /// Grounded answers / answerable cases (null when there are no answerable cases).
    pub resolution_rate: Option<f64>,
    pub resolution_rate_ci: Option<[f64; 2]>,
    /// `wrong_answers` / all cases (0 when there are no cases). Secondary: it falls as coverage
    /// falls, so read it with `coverage`, never alone.
    pub wrong_answer_rate: f64,
    pub wrong_answer_rate_ci: Option<[f64; 2]>,
    pub table: DecisionTable,
    pub answered: usize,
    pub escalated: usize,
    /// Answers to unanswerable questions plus ungrounded answers to answerable ones.
    pub wrong_answers: usize,
    /// Escalated unanswerable cases / unanswerable cases (null when there are none).
    pub escalation_recall: Option<f64>,
    /// Escalated cases / all cases (0 when there are no cases).
    pub escalation_rate: f64,
}

/// How well the confidence score ranks the cases it decides. Every figure is over the
/// score-decided cases only (see [`super::rules`]): a rule hand-off has no score to rank, and
/// counting it at confidence 0 would credit the score with the rule's work. Each `_ci` field is
/// the 95% bootstrap interval of the field before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfidenceScores {
    /// Score-decided cases: the ones every figure here is over.
    pub cases: usize,
    /// AUROC of the final confidence separating answerable from unanswerable questions (null
    /// when either class is empty).
    pub auroc: Option<f64>,
    pub auroc_ci: Option<[f64; 2]>,
    /// AUROC of the retrieval confidence, likewise.
    pub auroc_retrieval: Option<f64>,
    /// AUROC of the final confidence separating cases where answering would be right
    /// (answerable and the candidate cites a gold document) from those where it would be wrong
    /// (everything else, including cases with no candidate). The one that matters for choosing
    /// a threshold; defined on datasets without unanswerable questions too (null when either
    /// class is empty).
    pub auroc_correct: Option<f64>,
    pub auroc_correct_ci: Option<[f64; 2]>,
    pub mean_answerable: Option<f64>,
    pub mean_unanswerable: Option<f64>,
}

/// Answer quality over the answered cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerScores {
    /// Answered answerable cases: the ones `token_f1` and `rouge_l` average over. (An answer to
    /// an unanswerable question is already counted as wrong, and its reference describes the
    /// hand-off rather than an answer, so overlap with it means nothing.)
    pub scored: usize,
    /// Mean token F1 of the answer against the reference.
    pub token_f1: Option<f64>,
    /// Mean ROUGE-L F-measure of the answer against the reference.
    pub rouge_l: Option<f64>,
    /// Mean support of the answer's sentences in the passages they cite, over answered cases
    /// that have it.
    pub faithfulness: Option<f64>,
    /// Means of the judge model's scores over answered cases that have them.
    pub judge_faithfulness: Option<f64>,
    pub judge_correctness: Option<f64>,
    /// Answered cases that carry judge scores.
    pub judged: usize,
}

/// Median and 95th percentile, in milliseconds (null without data).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// End-to-end latency (the `total` entry) and per-stage latency.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub stages: BTreeMap<String, Percentiles>,
}

/// Model usage per case.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Cost {
    pub tokens_in_per_case: f64,
    pub tokens_out_per_case: f64,
    pub usd_per_case: f64,
    pub usd_total: f64,
}

/// Outcome counts within one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CategoryCounts {
    pub cases: usize,
    pub answered: usize,
    pub wrong: usize,
    pub escalated: usize,
}

/// Scores `cases` as if the answer threshold were `threshold` and the retrieval gate `gate`,
/// with intervals from the default bootstrap (1000 resamples, fixed seed).
pub fn compute(cases: &[CaseResult], threshold: f32, gate: f32) -> Metrics {
    compute_with(cases, threshold, gate, Settings::default())
}

/// [`compute`] with the bootstrap drawn as `settings` says.
pub fn compute_with(cases: &[CaseResult], threshold: f32, gate: f32, settings: Settings) -> Metrics {
    let n = cases.len();
    let ranks: Vec<Option<usize>> = cases.iter().filter(|c| !c.gold_doc_ids.is_empty()).map(|c| c.gold_rank).collect();
    let retrieval = RetrievalScores::from_ranks(&ranks);

    let mut table = DecisionTable::default();
    let mut by_category: BTreeMap<String, CategoryCounts> = BTreeMap::new();
    let mut f1s = Vec::new();
    let mut rouges = Vec::new();
    let mut faithfulness = Vec::new();
    let mut judge_faithfulness = Vec::new();
    let mut judge_correctness = Vec::new();
    let mut judged = 0;
    for case in cases {
        let answered = answered_at(case, threshold, gate);
        let wrong = answered && case.wrong_if_answered();
        let row = if case.answerable { &mut table.answerable } else { &mut table.unanswerable };
        match (answered, case.grounded) {
            (true, true) => row.answered_grounded += 1,
            (true, false) => row.answered_ungrounded += 1,
            (false, _) => row.escalated += 1,
        }
        let category = case.category.clone().unwrap_or_else(|| UNCATEGORISED.to_string());
        let counts = by_category.entry(category).or_default();
        counts.cases += 1;
        counts.answered += usize::from(answered);
        counts.wrong += usize::from(wrong);
        counts.escalated += usize::from(!answered);

        if !answered {
            continue;
        }
        if let (true, Some(answer)) = (case.answerable, case.candidate_answer.as_deref()) {
            f1s.push(f64::from(token_f1(answer, &case.reference_answer)));
            rouges.push(f64::from(rouge_l(answer, &case.reference_answer)));
        }
        faithfulness.extend(case.faithfulness.map(f64::from));
        judge_faithfulness.extend(case.judge_faithfulness.map(f64::from));
        judge_correctness.extend(case.judge_correctness.map(f64::from));
        judged += usize::from(case.judge_faithfulness.is_some() || case.judge_correctness.is_some());
    }

    let answered = table.answerable.answered() + table.unanswerable.answered();
    let escalated = table.answerable.escalated + table.unanswerable.escalated;
    let wrong_answers = table.answerable.answered_ungrounded + table.unanswerable.answered();
    let ci: Intervals = bootstrap::intervals(cases, threshold, gate, settings);
    let risk = ratio(wrong_answers, answered);
    let resolution_rate = ratio(table.answerable.answered_grounded, table.answerable.total());
    let decisions = Decisions {
        risk,
        risk_ci: ci.risk.filter(|_| risk.is_some()),
        coverage: ratio(answered, n).unwrap_or(0.0),
        coverage_ci: ci.coverage,
        resolution_rate,
        resolution_rate_ci: ci.resolution_rate.filter(|_| resolution_rate.is_some()),
        wrong_answer_rate: ratio(wrong_answers, n).unwrap_or(0.0),
        wrong_answer_rate_ci: ci.wrong_answer_rate,
        table,
        answered,
        escalated,
        wrong_answers,
        escalation_recall: ratio(table.unanswerable.escalated, table.unanswerable.total()),
        escalation_rate: ratio(escalated, n).unwrap_or(0.0),
    };

    let mut confidence = confidence_scores(cases);
    confidence.auroc_ci = ci.auroc.filter(|_| confidence.auroc.is_some());
    confidence.auroc_correct_ci = ci.auroc_correct.filter(|_| confidence.auroc_correct.is_some());
    let rules = rules::score(cases);
    let mut selective = Selective::of(&Ranked::new(cases, gate), rules.count);
    selective.aurc_ci = ci.aurc.filter(|_| selective.aurc.is_some());
    [selective.coverage_at_risk_2_ci, selective.coverage_at_risk_5_ci, selective.coverage_at_risk_10_ci] =
        ci.coverage_at_risk;

    let answers = AnswerScores {
        scored: f1s.len(),
        token_f1: mean(&f1s),
        rouge_l: mean(&rouges),
        faithfulness: mean(&faithfulness),
        judge_faithfulness: mean(&judge_faithfulness),
        judge_correctness: mean(&judge_correctness),
        judged,
    };

    Metrics {
        cases: n,
        retrieval,
        decisions,
        confidence,
        selective,
        rules,
        bootstrap: settings,
        answers,
        latency_ms: latency(cases),
        cost: cost(cases),
        by_category,
    }
}

/// Confidence figures over the score-decided cases (intervals left empty).
fn confidence_scores(cases: &[CaseResult]) -> ConfidenceScores {
    let scored: Vec<&CaseResult> = cases.iter().filter(|c| !rule_decided(c)).collect();
    let split = |positive: fn(&CaseResult) -> bool, score: fn(&CaseResult) -> f32| {
        let (pos, neg): (Vec<&CaseResult>, Vec<&CaseResult>) = scored.iter().copied().partition(|c| positive(c));
        (pos.into_iter().map(score).collect::<Vec<f32>>(), neg.into_iter().map(score).collect::<Vec<f32>>())
    };
    let (pos, neg) = split(|c| c.answerable, |c| c.confidence);
    let (pos_r, neg_r) = split(|c| c.answerable, |c| c.retrieval_confidence);
    let (right, wrong) = split(|c| c.answerable && c.grounded, |c| c.confidence);
    let widen = |v: &[f32]| v.iter().copied().map(f64::from).collect::<Vec<f64>>();
    ConfidenceScores {
        cases: scored.len(),
        auroc: auroc(&pos, &neg),
        auroc_ci: None,
        auroc_retrieval: auroc(&pos_r, &neg_r),
        auroc_correct: auroc(&right, &wrong),
        auroc_correct_ci: None,
        mean_answerable: mean(&widen(&pos)),
        mean_unanswerable: mean(&widen(&neg)),
    }
}

fn latency(cases: &[CaseResult]) -> Latency {
    let mut series: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for case in cases {
        for (stage, ms) in &case.latency_ms {
            if ms.is_finite() {
                series.entry(stage.as_str()).or_default().push(*ms);
            }
        }
    }
    let total = series.remove("total").unwrap_or_default();
    let stages = series
        .into_iter()
        .map(|(stage, values)| {
            (stage.to_string(), Percentiles { p50: percentile(&values, 0.50), p95: percentile(&values, 0.95) })
        })
        .collect();
    Latency { p50: percentile(&total, 0.50), p95: percentile(&total, 0.95), stages }
}

fn cost(cases: &[CaseResult]) -> Cost {
    let n = cases.len();
    if n == 0 {
        return Cost::default();
    }
    let per_case = |sum: f64| sum / n as f64;
    let usd_total: f64 = cases.iter().map(|c| c.cost_usd).sum();
    Cost {
        tokens_in_per_case: per_case(cases.iter().map(|c| f64::from(c.tokens_in)).sum()),
        tokens_out_per_case: per_case(cases.iter().map(|c| f64::from(c.tokens_out)).sum()),
        usd_per_case: per_case(usd_total),
        usd_total,
    }
}

/// `num / den`, or `None` when `den` is zero.
pub(crate) fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Nearest-rank percentile (`p` in (0, 1]): the smallest value with at least `p` of the values
/// at or below it. `None` for no values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Area under the ROC curve of a score that should be higher for `positives` than for
/// `negatives`: the probability that a random positive outscores a random negative, ties
/// counting half. Computed with the rank-sum (Mann–Whitney) formula using mid-ranks for ties.
/// `None` when either group is empty.
pub fn auroc(positives: &[f32], negatives: &[f32]) -> Option<f64> {
    let (n_pos, n_neg) = (positives.len(), negatives.len());
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut all: Vec<(f32, bool)> =
        positives.iter().map(|&s| (s, true)).chain(negatives.iter().map(|&s| (s, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < all.len() {
        let mut end = start;
        while end + 1 < all.len() && all[end + 1].0.total_cmp(&all[start].0).is_eq() {
            end += 1;
        }
        // Ranks are 1-based; tied scores share the mean of the ranks they span.
        let mid_rank = (start + end) as f64 / 2.0 + 1.0;
        positive_rank_sum += mid_rank * all[start..=end].iter().filter(|(_, pos)| *pos).count() as f64;
        start = end + 1;
    }
    let (p, q) = (n_pos as f64, n_neg as f64);
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * q))
}

/// Removes citation markers such as `[1]`, `[2, 3]` or `[1][4]` from an answer.
pub fn strip_citations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let is_citation = after.find(']').is_some_and(|close| {
            let inner = &after[..close];
            inner.chars().any(|c| c.is_ascii_digit())
                && inner.chars().all(|c| c.is_ascii_digit() || matches!(c, ',' | ';' | ' ' | '-'))
        });
        match after.find(']') {
            Some(close) if is_citation => {
                out.push(' ');
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn answer_tokens(text: &str) -> Vec<String> {
    words(&strip_citations(text))
}

/// Token-level F1 between an answer and a reference: lower-cased words, citations removed,
/// overlap counted with multiplicity. 1 when both are empty, 0 when only one is.
pub fn token_f1(candidate: &str, reference: &str) -> f32 {
    let cand = answer_tokens(candidate);
    let refr = answer_tokens(reference);
    if cand.is_empty() || refr.is_empty() {
        return if cand.is_empty() && refr.is_empty() { 1.0 } else { 0.0 };
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in &refr {
        *counts.entry(w.as_str()).or_default() += 1;
    }
    let mut common = 0usize;
    for w in &cand {
        if let Some(left) = counts.get_mut(w.as_str()) {
            if *left > 0 {
                *left -= 1;
                common += 1;
            }
        }
    }
    f_measure(common, cand.len(), refr.len())
}

/// ROUGE-L F-measure between an answer and a reference: the longest common subsequence of
/// their words (lower-cased, citations removed) over each one's length, combined as F1.
/// 1 when both are empty, 0 when only one is.
pub fn rouge_l(candidate: &str, reference: &str) -> f32 {
    let cand = answer_tokens(candidate);
    let refr = answer_tokens(reference);
    if cand.is_empty() || refr.is_empty() {
        return if cand.is_empty() && refr.is_empty() { 1.0 } else { 0.0 };
    }
    // One row of the LCS table at a time.
    let mut prev = vec![0usize; refr.len() + 1];
    let mut row = vec![0usize; refr.len() + 1];
    for c in &cand {
        for (j, r) in refr.iter().enumerate() {
            row[j + 1] = if c == r { prev[j] + 1 } else { row[j].max(prev[j + 1]) };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    f_measure(prev[refr.len()], cand.len(), refr.len())
}

fn f_measure(common: usize, candidate_len: usize, reference_len: usize) -> f32 {
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / candidate_len as f64;
    let recall = common as f64 / reference_len as f64;
    (2.0 * precision * recall / (precision + recall)) as f32
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A case with a candidate answer at the given confidences.
    pub(crate) fn case(id: &str, answerable: bool, grounded: bool, confidence: f32) -> CaseResult {
        CaseResult {
            id: id.into(),
            category: Some(if answerable { "plain" } else { "unanswerable" }.into()),
            answerable,
            gold_doc_ids: if answerable { vec!["doc".into()] } else { vec![] },
            question: format!("question {id}?"),
            engine_reason: "answered".into(),
            candidate_answer: Some("Refunds take five days [1].".into()),
            grounded,
            confidence,
            retrieval_confidence: 0.9,
            decision: "answer".into(),
            reason: "answered".into(),
            reference_answer: "Refunds take five business days.".into(),
            ..CaseResult::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn token_f1_matches_hand_computed_values() {
        // cand: refunds take five days (4); ref: refunds take five business days (5); common 4.
        // P = 1, R = 0.8, F1 = 2*0.8/1.8 = 0.888...
        let f = token_f1("Refunds take five days [1].", "Refunds take five business days.");
        assert!(close(f64::from(f), 16.0 / 18.0), "{f}");
        // Multiplicity: cand "a a a b" vs ref "a b b": common = min(3,1)+min(1,2) = 2;
        // P = 2/4, R = 2/3, F1 = 2*(1/2)(2/3)/(1/2+2/3) = (2/3)/(7/6) = 4/7.
        assert!(close(f64::from(token_f1("a a a b", "a b b")), 4.0 / 7.0));
        assert_eq!(token_f1("", ""), 1.0);
        assert_eq!(token_f1("something", ""), 0.0);
        assert_eq!(token_f1("alpha", "beta"), 0.0);
        assert_eq!(token_f1("Same [2] words", "same WORDS"), 1.0);
    }

    #[test]
    fn rouge_l_matches_hand_computed_values() {
        // cand: the cat sat on the mat (6); ref: the cat lay on the mat (6); LCS = the cat on
        // the mat = 5; P = R = 5/6, F = 5/6.
        let r = rouge_l("The cat sat on the mat.", "the cat lay on the mat");
        assert!(close(f64::from(r), 5.0 / 6.0), "{r}");
        // Order matters, unlike token F1: cand "b a" vs ref "a b": LCS 1, P = R = 1/2.
        assert!(close(f64::from(rouge_l("b a", "a b")), 0.5));
        assert_eq!(token_f1("b a", "a b"), 1.0);
        // cand: a b c d (4), ref: a c (2): LCS 2, P = 1/2, R = 1, F = 2/3.
        assert!(close(f64::from(rouge_l("a b c d [3]", "a c")), 2.0 / 3.0));
        assert_eq!(rouge_l("", ""), 1.0);
        assert_eq!(rouge_l("x", ""), 0.0);
    }

    #[test]
    fn citations_are_stripped_but_other_brackets_kept() {
        assert_eq!(
            words(&strip_citations("Yes [1]. See [2, 3][4] and [Billing] [x]")),
            vec!["yes", "see", "and", "billing", "x"]
        );
        assert_eq!(strip_citations("open [ bracket"), "open [ bracket");
    }

    #[test]
    fn auroc_matches_a_hand_computed_example() {
        // Positives 0.9, 0.6, 0.4; negatives 0.6, 0.2.
        // Pairs (pos > neg): 0.9>0.6 1, 0.9>0.2 1, 0.6=0.6 ½, 0.6>0.2 1, 0.4<0.6 0, 0.4>0.2 1
        // = 4.5 of 6 = 0.75.
        let a = auroc(&[0.9, 0.6, 0.4], &[0.6, 0.2]);
        assert!(a.is_some_and(|a| close(a, 0.75)), "{a:?}");
        assert_eq!(auroc(&[1.0, 0.9], &[0.1]), Some(1.0));
        assert_eq!(auroc(&[0.1], &[0.5, 0.9]), Some(0.0));
        assert_eq!(auroc(&[0.5, 0.5], &[0.5]), Some(0.5));
        assert_eq!(auroc(&[0.5], &[]), None);
        assert_eq!(auroc(&[], &[0.5]), None);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(10.0));
        assert_eq!(percentile(&v, 0.95), Some(19.0));
        assert_eq!(percentile(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    fn sample() -> Vec<CaseResult> {
        let mut cases = vec![
            case("a1", true, true, 0.9),   // answered, grounded
            case("a2", true, false, 0.8),  // answered, ungrounded -> wrong
            case("a3", true, true, 0.3),   // escalated below threshold
            case("u1", false, false, 0.7), // answered unanswerable -> wrong
            case("u2", false, false, 0.2), // escalated
        ];
        // No candidate at all: escalated whatever the thresholds.
        cases.push(CaseResult { candidate_answer: None, confidence: 0.0, ..case("u3", false, false, 0.0) });
        // Retrieval gate blocks it.
        cases.push(CaseResult { retrieval_confidence: 0.1, ..case("a4", true, true, 0.95) });
        cases[0].gold_rank = Some(1);
        cases[1].gold_rank = Some(4);
        cases[2].gold_rank = None;
        cases[6].gold_rank = Some(12);
        for (i, c) in cases.iter_mut().enumerate() {
            c.latency_ms.insert("total".into(), (i as f64 + 1.0) * 100.0);
            c.latency_ms.insert("retrieve".into(), 10.0);
            c.tokens_in = 100;
            c.tokens_out = 10;
            c.cost_usd = 0.001;
        }
        cases[0].faithfulness = Some(1.0);
        cases[1].faithfulness = Some(0.5);
        cases[0].judge_correctness = Some(0.8);
        cases
    }

    #[test]
    fn decisions_are_recomputed_from_thresholds() {
        let m = compute(&sample(), 0.5, 0.3);
        assert_eq!(m.cases, 7);
        let t = m.decisions.table;
        assert_eq!(t.answerable, DecisionRow { answered_grounded: 1, answered_ungrounded: 1, escalated: 2 });
        assert_eq!(t.unanswerable, DecisionRow { answered_grounded: 0, answered_ungrounded: 1, escalated: 2 });
        assert_eq!(m.decisions.wrong_answers, 2);
        assert!(close(m.decisions.wrong_answer_rate, 2.0 / 7.0));
        assert_eq!(m.decisions.risk, Some(2.0 / 3.0));
        assert_eq!(m.decisions.resolution_rate, Some(0.25));
        assert_eq!(m.decisions.escalation_recall, Some(2.0 / 3.0));
        assert!(close(m.decisions.escalation_rate, 4.0 / 7.0));

        // A higher threshold answers only a1.
        let strict = compute(&sample(), 0.85, 0.3);
        assert_eq!(strict.decisions.wrong_answers, 0);
        assert_eq!(strict.decisions.escalation_recall, Some(1.0));
        // Without the gate a4 is answered too.
        assert_eq!(compute(&sample(), 0.85, 0.0).decisions.table.answerable.answered_grounded, 2);

        let plain = &m.by_category["plain"];
        assert_eq!((plain.cases, plain.answered, plain.wrong, plain.escalated), (4, 2, 1, 2));
        let un = &m.by_category["unanswerable"];
        assert_eq!((un.cases, un.answered, un.wrong, un.escalated), (3, 1, 1, 2));
    }

    #[test]
    fn retrieval_answers_latency_and_cost() {
        let m = compute(&sample(), 0.5, 0.3);
        // Cases with gold docs: a1 (1), a2 (4), a3 (none), a4 (12).
        assert_eq!(m.retrieval.cases, 4);
        assert_eq!(m.retrieval.recall_at_1, 0.25);
        assert_eq!(m.retrieval.recall_at_5, 0.5);
        assert_eq!(m.retrieval.recall_at_10, 0.5);
        assert!(close(m.retrieval.mrr, (1.0 + 0.25 + 1.0 / 12.0) / 4.0));

        // Answered answerable: a1, a2, both with the same answer and reference.
        assert_eq!(m.answers.scored, 2);
        assert!(close(m.answers.token_f1.unwrap(), 16.0 / 18.0));
        assert_eq!(m.answers.faithfulness, Some(0.75));
        assert!(close(m.answers.judge_correctness.unwrap(), 0.8));
        assert_eq!(m.answers.judge_faithfulness, None);
        assert_eq!(m.answers.judged, 1);

        assert_eq!(m.latency_ms.p50, Some(400.0));
        assert_eq!(m.latency_ms.p95, Some(700.0));
        assert_eq!(m.latency_ms.stages["retrieve"], Percentiles { p50: Some(10.0), p95: Some(10.0) });
        assert!(!m.latency_ms.stages.contains_key("total"));
        assert!(close(m.cost.tokens_in_per_case, 100.0));
        assert!(close(m.cost.usd_total, 0.007));

        // Answerable confidences 0.9 0.8 0.3 0.95 vs unanswerable 0.7 0.2 0.0: pairs won
        // 3+3+2+3 = 11 of 12.
        assert!(close(m.confidence.auroc.unwrap(), 11.0 / 12.0));
        // Retrieval confidence: answerable 0.9 0.9 0.9 0.1 vs 0.9 0.9 0.9: nine ties count
        // half each, 0.1 wins none: 4.5 of 12.
        assert!(close(m.confidence.auroc_retrieval.unwrap(), 0.375));
    }

    #[test]
    fn serialises_with_the_documented_paths() {
        let v = serde_json::to_value(compute(&sample(), 0.5, 0.3)).unwrap();
        for path in [
            "/retrieval/recall_at_1",
            "/retrieval/recall_at_5",
            "/retrieval/recall_at_10",
            "/retrieval/mrr",
            "/decisions/table/answerable/answered_grounded",
            "/decisions/table/unanswerable/escalated",
            "/decisions/risk",
            "/decisions/risk_ci",
            "/decisions/coverage",
            "/decisions/coverage_ci",
            "/decisions/resolution_rate_ci",
            "/decisions/wrong_answer_rate",
            "/decisions/wrong_answer_rate_ci",
            "/decisions/resolution_rate",
            "/decisions/escalation_recall",
            "/decisions/escalation_rate",
            "/confidence/auroc",
            "/confidence/auroc_retrieval",
            "/confidence/auroc_ci",
            "/confidence/auroc_correct",
            "/confidence/auroc_correct_ci",
            "/confidence/cases",
            "/selective/eligible",
            "/selective/rule_decided",
            "/selective/max_coverage",
            "/selective/aurc",
            "/selective/aurc_ci",
            "/selective/coverage_at_risk_2",
            "/selective/coverage_at_risk_5",
            "/selective/coverage_at_risk_10",
            "/selective/coverage_at_risk_5_ci",
            "/selective/threshold_at_risk_5",
            "/rules/count",
            "/rules/precision",
            "/rules/recall",
            "/rules/by_reason",
            "/bootstrap/resamples",
            "/bootstrap/seed",
            "/answers/token_f1",
            "/answers/rouge_l",
            "/answers/faithfulness",
            "/answers/judge_faithfulness",
            "/answers/judge_correctness",
            "/latency_ms/p50",
            "/latency_ms/p95",
            "/latency_ms/stages/retrieve/p95",
            "/cost/tokens_in_per_case",
            "/cost/tokens_out_per_case",
            "/cost/usd_per_case",
            "/cases",
            "/by_category/plain/wrong",
        ] {
            assert!(v.pointer(path).is_some(), "missing {path}");
        }
        // No unanswerable cases: escalation recall is null, not 0 or 1.
        let answerable: Vec<CaseResult> = sample().into_iter().filter(|c| c.answerable).collect();
        let v = serde_json::to_value(compute(&answerable, 0.5, 0.3)).unwrap();
        assert_eq!(v.pointer("/decisions/escalation_recall"), Some(&serde_json::Value::Null));
        assert_eq!(v.pointer("/confidence/auroc"), Some(&serde_json::Value::Null));
        let empty = compute(&[], 0.5, 0.3);
        assert_eq!(empty.decisions.wrong_answer_rate, 0.0);
        assert_eq!(empty.decisions.risk, None);
        assert_eq!(empty.decisions.coverage, 0.0);
        assert_eq!(empty.latency_ms.p50, None);
        // Intervals are [lo, hi] pairs.
        let v = serde_json::to_value(compute(&sample(), 0.5, 0.3)).unwrap();
        let ci = v.pointer("/decisions/coverage_ci").and_then(|c| c.as_array()).unwrap();
        assert_eq!(ci.len(), 2);
        assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap());
    }

    /// A case the engine handed off by rule: no candidate, confidence 0.
    fn rule_handoff(id: &str, reason: &str) -> CaseResult {
        CaseResult {
            category: Some("rule".into()),
            expected_behavior: Some("escalate".into()),
            candidate_answer: None,
            confidence: 0.0,
            retrieval_confidence: 0.0,
            engine_reason: reason.into(),
            decision: "escalate".into(),
            reason: reason.into(),
            ..case(id, false, false, 0.0)
        }
    }

    #[test]
    fn a_bot_that_answers_nothing_is_never_a_perfect_score() {
        let mut cases: Vec<CaseResult> = sample()
            .into_iter()
            .map(|c| CaseResult { candidate_answer: None, engine_reason: "model_unsure".into(), ..c })
            .collect();
        cases.push(rule_handoff("h1", "asked_for_human"));
        let m = compute(&cases, 0.5, 0.3);
        assert_eq!(m.decisions.answered, 0);
        assert_eq!(m.decisions.risk, None);
        assert_eq!(m.decisions.risk_ci, None);
        assert_eq!(m.decisions.coverage, 0.0);
        assert_eq!(m.decisions.resolution_rate, Some(0.0));
        assert_eq!(m.selective.aurc, None);
        assert_eq!((m.selective.coverage_at_risk_2, m.selective.threshold_at_risk_2), (0.0, None));
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v.pointer("/decisions/risk"), Some(&serde_json::Value::Null));
    }

    #[test]
    fn rule_decided_cases_do_not_enter_the_auroc() {
        let base = compute(&sample(), 0.5, 0.3);
        let mut cases = sample();
        // Rule hand-offs of unanswerable questions at confidence 0: counted, they would sort
        // below every answerable case and lift the AUROC for free.
        for (i, reason) in ["asked_for_human", "suspected_injection", "policy_off", "rate_limited"].iter().enumerate() {
            cases.push(rule_handoff(&format!("r{i}"), reason));
        }
        let m = compute(&cases, 0.5, 0.3);
        assert_eq!(m.confidence.cases, 7);
        assert_eq!(m.confidence.auroc, base.confidence.auroc);
        assert_eq!(m.confidence.auroc_retrieval, base.confidence.auroc_retrieval);
        assert_eq!(m.confidence.auroc_correct, base.confidence.auroc_correct);
        assert_eq!(m.confidence.mean_unanswerable, base.confidence.mean_unanswerable);
        // They are scored as rules instead, and count against coverage.
        assert_eq!((m.rules.count, m.rules.correct, m.rules.precision), (4, 4, Some(1.0)));
        assert!(close(m.decisions.coverage, 3.0 / 11.0));
        assert_eq!(m.selective.rule_decided, 4);
        // The same cases with a score-decided reason do enter it.
        for c in cases.iter_mut().skip(7) {
            c.engine_reason = "weak_retrieval".into();
        }
        assert_ne!(compute(&cases, 0.5, 0.3).confidence.auroc, base.confidence.auroc);
    }

    #[test]
    fn auroc_correct_ranks_right_answers_above_wrong_ones() {
        // Answerable only: the answerable-vs-not AUROC is undefined, correct-vs-wrong is not.
        let cases = vec![
            case("r1", true, true, 0.9),
            case("w1", true, false, 0.8),
            case("r2", true, true, 0.7),
            CaseResult {
                candidate_answer: None,
                engine_reason: "weak_retrieval".into(),
                ..case("n1", true, false, 0.1)
            },
        ];
        let m = compute(&cases, 0.5, 0.0);
        assert_eq!(m.confidence.auroc, None);
        assert_eq!(m.confidence.auroc_ci, None);
        // Right 0.9, 0.7 vs wrong 0.8, 0.1: pairs won 2 + 1 = 3 of 4.
        assert_eq!(m.confidence.auroc_correct, Some(0.75));
        assert!(m.confidence.auroc_correct_ci.is_some());
    }
}
