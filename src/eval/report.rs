//! What an eval run leaves in its out dir, and the comparison of two runs.
//!
//! - `report.json`: the run's settings, every metric (at the top level: `retrieval`,
//!   `decisions`, `confidence`, `selective`, `rules`, `bootstrap`, `answers`, `latency_ms`,
//!   `cost`, `by_category`, `cases`), the risk–coverage curve and the recommended threshold.
//!   A figure with a 95% interval has it beside it as `<figure>_ci: [lo, hi]` (for example
//!   `decisions.risk` and `decisions.risk_ci`). Gates and dashboards read it.
//! - `report.md`: the same for people — risk and coverage first, with their intervals printed
//!   as `0.043 [0.021, 0.071]`, then the other headline figures, the rule decisions, the
//!   threshold to set for the wrong-answer target, tables, and the worst cases to look at first.
//! - `cases.jsonl`: one record per case, so any metric can be recomputed and runs compared.
//! - `risk_coverage.svg` / `risk_coverage.png`: the curve.
//!
//! `diff` lists the cases whose decision, grounding or reason changed between two runs — what
//! a prompt or retrieval change actually did to the answers customers would get.

use super::curve::{answered_at, risk_coverage, settable_threshold, threshold_for_target, CurvePoint};
use super::metrics::{ratio, CategoryCounts, DecisionRow, Metrics};
use super::plot::{self, percent};
use super::record::CaseResult;
use super::rules::RuleScores;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// How many cases the "worst cases" section lists.
const WORST_CASES: usize = 10;

/// One run's results. `metrics` is flattened, so its fields are top-level keys of `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub dataset: String,
    pub generator: String,
    pub retrieval_mode: String,
    pub prompt_tags: Vec<String>,
    /// Answer confidence threshold the metrics were computed at.
    pub threshold: f32,
    /// Retrieval gate the metrics were computed at.
    pub gate: f32,
    /// Wrong-answer rate the recommended threshold must stay within.
    pub target_wrong_rate: f64,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub curve: Vec<CurvePoint>,
    pub recommended_threshold: Option<CurvePoint>,
    pub started_at: String,
    pub duration_s: f64,
}

impl Report {
    /// Scores `cases` and sweeps the curve; the settings fields describe the run.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        dataset: &str,
        generator: &str,
        retrieval_mode: &str,
        prompt_tags: Vec<String>,
        threshold: f32,
        gate: f32,
        target_wrong_rate: f64,
        cases: &[CaseResult],
        started_at: &str,
        duration_s: f64,
    ) -> Report {
        let curve = risk_coverage(cases, gate);
        let recommended_threshold = threshold_for_target(&curve, target_wrong_rate);
        Report {
            dataset: dataset.to_string(),
            generator: generator.to_string(),
            retrieval_mode: retrieval_mode.to_string(),
            prompt_tags,
            threshold,
            gate,
            target_wrong_rate,
            metrics: super::metrics::compute(cases, threshold, gate),
            curve,
            recommended_threshold,
            started_at: started_at.to_string(),
            duration_s,
        }
    }

    /// The report as it is written to `report.json` (what gates are checked against).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Writes `report.json`, `report.md`, `cases.jsonl`, `risk_coverage.svg` and
/// `risk_coverage.png` into `out_dir` (created if missing).
pub fn write_all(out_dir: &Path, report: &Report, cases: &[CaseResult]) -> io::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    let json = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    std::fs::write(out_dir.join("report.json"), json + "\n")?;

    let mut lines = String::new();
    for case in cases {
        lines.push_str(&serde_json::to_string(case).map_err(io::Error::other)?);
        lines.push('\n');
    }
    std::fs::write(out_dir.join("cases.jsonl"), lines)?;
    std::fs::write(out_dir.join("report.md"), markdown(report, cases))?;

    plot::draw(
        &report.curve,
        report.threshold,
        report.recommended_threshold.as_ref(),
        report.target_wrong_rate,
        &format!("{}: wrong answers vs coverage", report.dataset),
        &out_dir.join("risk_coverage.svg"),
        &out_dir.join("risk_coverage.png"),
    )
    .map_err(io::Error::other)
}

fn opt_percent(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn opt_num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.decimals$}"))
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// Table cell text: one line, pipes escaped, at most `max` characters.
fn cell(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = if one_line.chars().count() > max {
        one_line.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    } else {
        one_line
    };
    short.replace('|', "\\|")
}

/// What happened to a case at the report's thresholds, in words.
fn outcome(case: &CaseResult, threshold: f32, gate: f32) -> &'static str {
    match (answered_at(case, threshold, gate), case.answerable, case.grounded) {
        (true, false, _) => "answered an unanswerable question",
        (true, true, false) => "answered without citing a gold doc",
        (true, true, true) => "answered, grounded",
        (false, _, _) if super::rules::rule_decided(case) => "handed off by rule",
        (false, false, _) => "escalated (correct)",
        (false, true, _) if case.candidate_answer.is_none() => "escalated, no answer drafted",
        (false, true, _) if case.retrieval_confidence < gate => "escalated by the retrieval gate",
        (false, true, _) => "escalated below the threshold",
    }
}

/// The cases most worth a look: wrong answers (most confident first), then answerable
/// questions that were handed off (those whose gold doc was not retrieved first, then the most
/// confident), then ungrounded candidates that were escalated.
fn worst_cases(cases: &[CaseResult], threshold: f32, gate: f32) -> Vec<&CaseResult> {
    let tier = |c: &CaseResult| {
        let answered = answered_at(c, threshold, gate);
        if answered && c.wrong_if_answered() {
            Some(0)
        } else if !answered && c.answerable && c.gold_rank.is_none_or(|r| r > 10) {
            Some(1)
        } else if !answered && c.answerable {
            Some(2)
        } else {
            None
        }
    };
    let mut ranked: Vec<(u8, &CaseResult)> = cases.iter().filter_map(|c| tier(c).map(|t| (t, c))).collect();
    ranked.sort_by(|(ta, a), (tb, b)| ta.cmp(tb).then(b.confidence.total_cmp(&a.confidence)).then(a.id.cmp(&b.id)));
    ranked.into_iter().take(WORST_CASES).map(|(_, c)| c).collect()
}

fn decision_row(out: &mut String, name: &str, row: &DecisionRow) {
    let _ = writeln!(
        out,
        "| {name} | {} | {} | {} | {} |",
        row.answered_grounded,
        row.answered_ungrounded,
        row.escalated,
        row.total()
    );
}

fn recommendation(report: &Report, cases: &[CaseResult]) -> String {
    let target = percent(report.target_wrong_rate);
    let Some(point) = report.recommended_threshold else {
        return format!("No threshold keeps wrong answers under {target} of all questions.");
    };
    let shown = settable_threshold(point.threshold);
    let answered = cases.iter().filter(|c| answered_at(c, shown, report.gate)).count();
    let wrong = cases.iter().filter(|c| answered_at(c, shown, report.gate) && c.wrong_if_answered()).count();
    if answered == 0 {
        return format!(
            "No threshold keeps wrong answers under {target} of all questions while still answering questions: at \
             every setting that answers something, too many answers are wrong. Improve retrieval or prompts before \
             going live."
        );
    }
    let n = cases.len();
    format!(
        "To keep wrong answers under {target} of all questions, set confidence_threshold to {shown:.2}: the bot \
         then answers {} of questions ({answered} of {n}), with {} wrong answers ({wrong}). At the configured {:.2} \
         it answers {} with {} wrong. (To bound the share of answers that are wrong instead, use the coverage at \
         risk figures above.)",
        opt_percent(ratio(answered, n)),
        opt_percent(ratio(wrong, n)),
        report.threshold,
        pct(ratio(report.metrics.decisions.answered, n).unwrap_or(0.0)),
        pct(report.metrics.decisions.wrong_answer_rate),
    )
}

/// A figure with its interval: `0.043 [0.021, 0.071]`, `0.043` without one, `n/a` without a
/// value.
pub fn with_ci(value: Option<f64>, ci: Option<[f64; 2]>) -> String {
    match (value, ci) {
        (None, _) => "n/a".to_string(),
        (Some(v), None) => format!("{v:.3}"),
        (Some(v), Some([lo, hi])) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
    }
}

/// The headline: every figure beside what it counts.
fn headline(out: &mut String, m: &Metrics) {
    let d = &m.decisions;
    let c = &m.confidence;
    let s = &m.selective;
    let _ = writeln!(out, "## Headline\n");
    let _ = writeln!(out, "| figure | value [95% interval] | what it counts |\n| --- | --- | --- |");
    let mut row = |name: &str, value: String, counts: String| {
        let _ = writeln!(out, "| {name} | {value} | {counts} |");
    };
    row(
        "**risk**",
        format!("**{}**", with_ci(d.risk, d.risk_ci)),
        format!("wrong answers / answers given ({} of {})", d.wrong_answers, d.answered),
    );
    row(
        "**coverage**",
        format!("**{}**", with_ci(Some(d.coverage), d.coverage_ci)),
        format!("answers given / all questions ({} of {})", d.answered, m.cases),
    );
    row(
        "resolution rate",
        with_ci(d.resolution_rate, d.resolution_rate_ci),
        format!(
            "grounded answers / answerable questions ({} of {})",
            d.table.answerable.answered_grounded,
            d.table.answerable.total()
        ),
    );
    row(
        "confidence AUROC, answerable vs not",
        with_ci(c.auroc, c.auroc_ci),
        format!("over the {} score-decided cases", c.cases),
    );
    row(
        "confidence AUROC, right vs wrong answer",
        with_ci(c.auroc_correct, c.auroc_correct_ci),
        format!("over the {} score-decided cases", c.cases),
    );
    row(
        "AURC",
        with_ci(s.aurc, s.aurc_ci),
        format!(
            "mean risk along the confidence ranking of the {} answerable-by-threshold cases; lower is better",
            s.eligible
        ),
    );
    for (target, value, ci, threshold) in [
        ("2%", s.coverage_at_risk_2, s.coverage_at_risk_2_ci, s.threshold_at_risk_2),
        ("5%", s.coverage_at_risk_5, s.coverage_at_risk_5_ci, s.threshold_at_risk_5),
        ("10%", s.coverage_at_risk_10, s.coverage_at_risk_10_ci, s.threshold_at_risk_10),
    ] {
        let at = threshold.map_or_else(|| "no threshold reaches it".to_string(), |t| format!("at threshold {t:.3}"));
        row(
            &format!("coverage at risk ≤ {target}"),
            with_ci(Some(value), ci),
            format!("largest coverage whose risk is within {target}, {at}"),
        );
    }
    row(
        "wrong-answer rate",
        with_ci(Some(d.wrong_answer_rate), d.wrong_answer_rate_ci),
        format!(
            "wrong answers / **all** questions ({} of {}); falls with coverage, read it with coverage",
            d.wrong_answers, m.cases
        ),
    );
    row("escalation recall", opt_num(d.escalation_recall, 3), "escalated unanswerable / unanswerable".to_string());
    row("escalation rate", format!("{:.3}", d.escalation_rate), "escalated / all questions".to_string());
    row(
        "retrieval recall@5",
        format!("{:.3}", m.retrieval.recall_at_5),
        format!("over the {} cases with gold documents", m.retrieval.cases),
    );
    let b = &m.bootstrap;
    let _ = writeln!(
        out,
        "\nIntervals: {:.0}% percentile bootstrap over {} resamples of the cases (seed {}); a difference between two \
         runs that stays inside both intervals may be noise.\n",
        b.level * 100.0,
        b.resamples,
        b.seed
    );
}

/// The rule hand-offs against the cases the dataset expects handed off.
fn rule_table(out: &mut String, r: &RuleScores) {
    let _ = writeln!(out, "## Rule decisions\n");
    let _ = writeln!(
        out,
        "Hand-offs made by a rule whatever the score (a request for a person, a suspected injection, a channel \
         where answering is off, ...). They are kept out of the confidence AUROCs and never answered at any \
         threshold.\n"
    );
    let _ = writeln!(out, "| rule | should be handed off | rule fired | right | precision | recall |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
    let _ = writeln!(
        out,
        "| any rule, against every expected hand-off | {} | {} | {} | {} | {} |",
        r.expected_handoff,
        r.count,
        r.correct,
        opt_num(r.precision, 3),
        opt_num(r.recall, 3)
    );
    for (category, row) in &r.by_category {
        let _ = writeln!(
            out,
            "| `{}`, against category `{}` | {} | {} | {} | {} | {} |",
            row.rule,
            cell(category, 40),
            row.cases,
            row.fired,
            row.caught,
            opt_num(row.precision, 3),
            opt_num(row.recall, 3)
        );
    }
    if !r.by_reason.is_empty() {
        let reasons: Vec<String> = r.by_reason.iter().map(|(reason, n)| format!("`{reason}` {n}")).collect();
        let _ = writeln!(out, "\nBy reason: {}.", reasons.join(", "));
    }
    let _ = writeln!(out);
}

/// The human-readable report.
pub fn markdown(report: &Report, cases: &[CaseResult]) -> String {
    let m = &report.metrics;
    let d = &m.decisions;
    let mut out = String::new();
    let _ = writeln!(out, "# Eval report: {}\n", report.dataset);
    let _ = writeln!(
        out,
        "**Risk {}** ({} of {} answers wrong) · **coverage {}** ({} of {} questions answered) · resolution {}\n",
        with_ci(d.risk, d.risk_ci),
        d.wrong_answers,
        d.answered,
        with_ci(Some(d.coverage), d.coverage_ci),
        d.answered,
        m.cases,
        with_ci(d.resolution_rate, d.resolution_rate_ci)
    );
    let tags = if report.prompt_tags.is_empty() { "none".to_string() } else { report.prompt_tags.join(", ") };
    let _ = writeln!(
        out,
        "Started {} and took {:.1} s. Generator `{}`, retrieval `{}`, prompts: {}. Scored at confidence \
         threshold {:.2} and retrieval gate {:.2}; {} cases.\n",
        report.started_at,
        report.duration_s,
        report.generator,
        report.retrieval_mode,
        tags,
        report.threshold,
        report.gate,
        m.cases
    );

    headline(&mut out, m);
    rule_table(&mut out, &m.rules);

    let _ = writeln!(out, "## Recommended threshold\n");
    let _ = writeln!(out, "{}\n", recommendation(report, cases));
    let _ = writeln!(out, "![Wrong answers against coverage](risk_coverage.svg)\n");

    let _ = writeln!(out, "## Decisions\n");
    let _ = writeln!(out, "| | answered, grounded | answered, ungrounded | escalated | total |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    decision_row(&mut out, "answerable", &d.table.answerable);
    decision_row(&mut out, "unanswerable", &d.table.unanswerable);
    let _ = writeln!(out);

    let r = &m.retrieval;
    let _ = writeln!(out, "## Retrieval\n");
    let _ = writeln!(out, "| cases with gold docs | recall@1 | recall@5 | recall@10 | MRR |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {:.3} |\n",
        r.cases,
        pct(r.recall_at_1),
        pct(r.recall_at_5),
        pct(r.recall_at_10),
        r.mrr
    );
    let _ = writeln!(
        out,
        "Confidence AUROC, answerable vs not, over the {} score-decided cases: answer confidence {}, retrieval \
         confidence {}.\n",
        m.confidence.cases,
        opt_num(m.confidence.auroc, 3),
        opt_num(m.confidence.auroc_retrieval, 3)
    );

    let a = &m.answers;
    let _ = writeln!(out, "## Answers\n");
    let _ = writeln!(
        out,
        "Over the {} answered answerable questions (token F1 and ROUGE-L against the reference answer):\n",
        a.scored
    );
    let _ = writeln!(out, "| token F1 | ROUGE-L | faithfulness | judge faithfulness | judge correctness |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |\n",
        opt_num(a.token_f1, 3),
        opt_num(a.rouge_l, 3),
        opt_num(a.faithfulness, 3),
        opt_num(a.judge_faithfulness, 3),
        opt_num(a.judge_correctness, 3)
    );

    let _ = writeln!(out, "## By category\n");
    let _ = writeln!(out, "| category | cases | answered | wrong | escalated |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for (name, CategoryCounts { cases, answered, wrong, escalated }) in &m.by_category {
        let _ = writeln!(out, "| {} | {cases} | {answered} | {wrong} | {escalated} |", cell(name, 40));
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## Latency and cost\n");
    let _ = writeln!(out, "| stage | p50 ms | p95 ms |\n| --- | --- | --- |");
    let _ = writeln!(out, "| total | {} | {} |", opt_num(m.latency_ms.p50, 0), opt_num(m.latency_ms.p95, 0));
    for (stage, p) in &m.latency_ms.stages {
        let _ = writeln!(out, "| {} | {} | {} |", cell(stage, 40), opt_num(p.p50, 0), opt_num(p.p95, 0));
    }
    let _ = writeln!(
        out,
        "\nPer case: {:.0} tokens in, {:.0} tokens out, ${:.5} (${:.4} for the run).\n",
        m.cost.tokens_in_per_case, m.cost.tokens_out_per_case, m.cost.usd_per_case, m.cost.usd_total
    );

    let worst = worst_cases(cases, report.threshold, report.gate);
    let _ = writeln!(out, "## Worst cases\n");
    if worst.is_empty() {
        let _ = writeln!(out, "No wrong answers and no answerable question handed off.");
    } else {
        let _ = writeln!(out, "Wrong answers first, then answerable questions that were handed off.\n");
        let _ = writeln!(out, "| id | question | outcome | reason | confidence |");
        let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
        for c in worst {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} |",
                cell(&c.id, 40),
                cell(&c.question, 90),
                outcome(c, report.threshold, report.gate),
                cell(&c.reason, 40),
                c.confidence
            );
        }
    }
    out
}

/// A case's decision as one run recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseState {
    pub decision: String,
    pub reason: String,
    pub grounded: bool,
    pub confidence: f32,
}

impl From<&CaseResult> for CaseState {
    fn from(c: &CaseResult) -> Self {
        CaseState {
            decision: c.decision.clone(),
            reason: c.reason.clone(),
            grounded: c.grounded,
            confidence: c.confidence,
        }
    }
}

/// One case that differs between two runs. `before` is `None` for a case only the second run
/// has (added), `after` is `None` for one only the first run has (removed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseChange {
    pub id: String,
    pub question: String,
    pub before: Option<CaseState>,
    pub after: Option<CaseState>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} line {line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
}

fn read_cases(dir: &Path) -> Result<Vec<CaseResult>, DiffError> {
    let path = dir.join("cases.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|source| DiffError::Io { path: path.clone(), source })?;
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case = serde_json::from_str(line).map_err(|e| DiffError::Parse {
            path: path.clone(),
            line: i + 1,
            message: e.to_string(),
        })?;
        cases.push(case);
    }
    Ok(cases)
}

/// Cases whose decision, grounding or reason differs between the runs in `a_dir` and `b_dir`
/// (each holding a `cases.jsonl`), in the second run's order, then cases only the first run has.
pub fn diff(a_dir: &Path, b_dir: &Path) -> Result<Vec<CaseChange>, DiffError> {
    let before = read_cases(a_dir)?;
    let after = read_cases(b_dir)?;
    let before_by_id: HashMap<&str, &CaseResult> = before.iter().map(|c| (c.id.as_str(), c)).collect();
    let after_ids: std::collections::HashSet<&str> = after.iter().map(|c| c.id.as_str()).collect();
    let mut changes = Vec::new();
    for b in &after {
        match before_by_id.get(b.id.as_str()) {
            Some(a) if a.decision == b.decision && a.grounded == b.grounded && a.reason == b.reason => {}
            Some(a) => changes.push(CaseChange {
                id: b.id.clone(),
                question: b.question.clone(),
                before: Some(CaseState::from(*a)),
                after: Some(CaseState::from(b)),
            }),
            None => changes.push(CaseChange {
                id: b.id.clone(),
                question: b.question.clone(),
                before: None,
                after: Some(CaseState::from(b)),
            }),
        }
    }
    for a in before.iter().filter(|a| !after_ids.contains(a.id.as_str())) {
        changes.push(CaseChange {
            id: a.id.clone(),
            question: a.question.clone(),
            before: Some(a.into()),
            after: None,
        });
    }
    Ok(changes)
}

fn describe(state: &Option<CaseState>) -> String {
    match state {
        None => "—".to_string(),
        Some(s) => {
            format!("{} ({}{}, {:.2})", s.decision, s.reason, if s.grounded { ", grounded" } else { "" }, s.confidence)
        }
    }
}

/// The changes as a Markdown table with a one-line summary above it.
pub fn render_diff(changes: &[CaseChange]) -> String {
    if changes.is_empty() {
        return "no decision or grounding changed\n".to_string();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in changes {
        let kind = match (&c.before, &c.after) {
            (None, _) => "added",
            (_, None) => "removed",
            (Some(a), Some(b)) if a.decision != b.decision && b.decision == "answer" => "now answered",
            (Some(a), Some(b)) if a.decision != b.decision => "now escalated",
            (Some(a), Some(b)) if a.grounded != b.grounded => "grounding changed",
            _ => "reason changed",
        };
        *counts.entry(kind).or_default() += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut out = format!("{} cases changed: {}.\n\n", changes.len(), summary.join(", "));
    out.push_str("| id | question | before | after |\n| --- | --- | --- | --- |\n");
    for c in changes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&c.id, 40),
            cell(&c.question, 70),
            cell(&describe(&c.before), 60),
            cell(&describe(&c.after), 60)
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::eval::metrics::tests::case;

    fn cases() -> Vec<CaseResult> {
        let mut cases = vec![
            case("a1", true, true, 0.9),
            case("a2", true, false, 0.8),
            case("a3", true, true, 0.3),
            case("u1", false, false, 0.7),
            case("u2", false, false, 0.2),
        ];
        for c in &mut cases {
            c.latency_ms.insert("total".into(), 120.0);
            c.latency_ms.insert("generate".into(), 80.0);
            if c.confidence < 0.5 {
                c.decision = "escalate".into();
                c.reason = "low_confidence".into();
            }
        }
        cases[0].gold_rank = Some(1);
        cases[1].gold_rank = Some(3);
        cases[2].gold_rank = None;
        cases
    }

    fn report(cases: &[CaseResult]) -> Report {
        Report::build(
            "tallyhawk",
            "extractive",
            "hybrid",
            vec!["answer@v3".into()],
            0.5,
            0.3,
            0.02,
            cases,
            "2026-01-01T00:00:00Z",
            1.5,
        )
    }

    #[test]
    fn report_json_has_metrics_at_the_top_level() {
        let json = report(&cases()).to_json();
        for key in [
            "dataset",
            "generator",
            "retrieval_mode",
            "prompt_tags",
            "threshold",
            "gate",
            "target_wrong_rate",
            "cases",
            "retrieval",
            "decisions",
            "confidence",
            "answers",
            "latency_ms",
            "cost",
            "by_category",
            "selective",
            "rules",
            "bootstrap",
            "curve",
            "recommended_threshold",
            "started_at",
            "duration_s",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["cases"], 5);
        assert_eq!(json["decisions"]["wrong_answers"], 2);
        // ≤ 2% wrong needs t = 0.9 (a2 at 0.8 and u1 at 0.7 must go).
        assert_eq!(json["recommended_threshold"]["threshold"].as_f64().map(|t| t as f32), Some(0.9));
        assert_eq!(json["threshold"].as_f64(), Some(0.5));
    }

    #[test]
    fn writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let cases = cases();
        write_all(dir.path(), &report(&cases), &cases).unwrap();
        for name in ["report.json", "report.md", "cases.jsonl", "risk_coverage.svg", "risk_coverage.png"] {
            assert!(std::fs::metadata(dir.path().join(name)).unwrap().len() > 0, "{name}");
        }
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(md.contains(
            "To keep wrong answers under 2% of all questions, set confidence_threshold to 0.90: the bot then answers \
             20.0% of questions"
        ));
        assert!(md.contains("| answerable | 1 | 1 | 1 | 3 |"), "{md}");
        // Worst cases: the wrong answers, most confident first, then the handed-off a3.
        let worst = md.split("## Worst cases").nth(1).unwrap();
        let a2 = worst.find("| a2 |").unwrap();
        let u1 = worst.find("| u1 |").unwrap();
        let a3 = worst.find("| a3 |").unwrap();
        assert!(a2 < u1 && u1 < a3);
        assert!(!worst.contains("| a1 |"));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
        assert!(json.pointer("/decisions/wrong_answer_rate").is_some());
        let back = read_cases(dir.path()).unwrap();
        assert_eq!(back, cases);
    }

    #[test]
    fn report_md_leads_with_risk_and_coverage_and_their_intervals() {
        let cases = cases();
        let r = report(&cases);
        let md = markdown(&r, &cases);
        let mut lines = md.lines().filter(|l| !l.trim().is_empty());
        assert_eq!(lines.next(), Some("# Eval report: tallyhawk"));
        let first = lines.next().unwrap();
        // At 0.5: a1, a2, u1 answered; a2 and u1 wrong. Risk 2/3, coverage 3/5.
        let d = &r.metrics.decisions;
        let [lo, hi] = d.risk_ci.unwrap();
        assert!(first.starts_with(&format!("**Risk 0.667 [{lo:.3}, {hi:.3}]** (2 of 3 answers wrong)")), "{first}");
        assert!(first.contains("**coverage 0.600 ["), "{first}");
        // The headline table: risk and coverage first, the all-questions rate labelled as such.
        let table = md.split("## Headline").nth(1).unwrap();
        let risk = table.find("| **risk** |").unwrap();
        let coverage = table.find("| **coverage** |").unwrap();
        let auroc = table.find("| confidence AUROC, answerable vs not |").unwrap();
        let right_wrong = table.find("| confidence AUROC, right vs wrong answer |").unwrap();
        let aurc = table.find("| AURC |").unwrap();
        let at_risk = table.find("| coverage at risk ≤ 5% |").unwrap();
        let rules = md.find("## Rule decisions").unwrap();
        let all = table.find("| wrong-answer rate |").unwrap();
        assert!(risk < coverage && coverage < auroc && auroc < right_wrong && right_wrong < aurc && aurc < at_risk);
        assert!(at_risk < all && md.find("## Headline").unwrap() + all < rules);
        assert!(table.contains("wrong answers / **all** questions (2 of 5)"));
        assert!(md.contains("Intervals: 95% percentile bootstrap over 1000 resamples"));
        assert!(rules < md.find("## Recommended threshold").unwrap());
    }

    #[test]
    fn figures_print_with_their_interval() {
        assert_eq!(with_ci(Some(0.0431), Some([0.0214, 0.071])), "0.043 [0.021, 0.071]");
        assert_eq!(with_ci(Some(0.5), None), "0.500");
        assert_eq!(with_ci(None, Some([0.0, 1.0])), "n/a");
    }

    #[test]
    fn the_rule_table_lists_each_rule_category() {
        let mut cases = cases();
        cases.push(CaseResult {
            category: Some("human_request".into()),
            expected_behavior: Some("escalate".into()),
            candidate_answer: None,
            engine_reason: "asked_for_human".into(),
            ..case("h1", false, false, 0.0)
        });
        let md = markdown(&report(&cases), &cases);
        assert!(
            md.contains("| `asked_for_human`, against category `human_request` | 1 | 1 | 1 | 1.000 | 1.000 |"),
            "{md}"
        );
        assert!(md.contains("By reason: `asked_for_human` 1."));
        // The rule hand-off is not among the cases to look at first.
        assert!(!md.split("## Worst cases").nth(1).unwrap().contains("| h1 |"));
    }

    #[test]
    fn recommendation_handles_an_unreachable_target() {
        // Every answer is wrong: only answering nothing meets the target.
        let cases = vec![case("u1", false, false, 0.9), case("u2", false, false, 0.8)];
        let r = report(&cases);
        assert!(recommendation(&r, &cases)
            .starts_with("No threshold keeps wrong answers under 2% of all questions while still"));
    }

    #[test]
    fn diff_lists_changed_added_and_removed_cases() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let before = cases();
        let mut after = cases();
        after[0].confidence = 0.95; // confidence alone: not a change
        after[1].decision = "escalate".into();
        after[1].reason = "unsupported_answer".into();
        after[2].grounded = false;
        after.remove(4); // u2 removed
        after.push(case("n1", true, true, 0.7)); // added
        let r = report(&before);
        write_all(a.path(), &r, &before).unwrap();
        write_all(b.path(), &r, &after).unwrap();

        let changes = diff(a.path(), b.path()).unwrap();
        let ids: Vec<&str> = changes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["a2", "a3", "n1", "u2"]);
        assert_eq!(changes[0].after.as_ref().unwrap().reason, "unsupported_answer");
        assert!(changes[2].before.is_none());
        assert!(changes[3].after.is_none());
        let text = render_diff(&changes);
        assert!(text.starts_with("4 cases changed: 1 added, 1 grounding changed, 1 now escalated, 1 removed."));
        assert!(text.contains("| a2 | question a2? | answer (answered, 0.80) | escalate (unsupported_answer, 0.80) |"));

        assert!(diff(a.path(), a.path()).unwrap().is_empty());
        assert_eq!(render_diff(&[]), "no decision or grounding changed\n");
        assert!(matches!(diff(a.path(), &a.path().join("missing")), Err(DiffError::Io { .. })));
    }
}
