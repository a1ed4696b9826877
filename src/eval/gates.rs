//! Quality gates: the bounds an eval run must stay within before a change ships.
//!
//! `evals/gates.toml` has one table per dataset; each entry names a metric by its dotted path
//! in `report.json` and gives a `min`, a `max` or both:
//!
//! ```toml
//! [tallyhawk]
//! "decisions.risk" = { max = 0.08 }
//! "decisions.coverage" = { min = 0.40 }
//! "selective.coverage_at_risk_5" = { min = 0.20 }
//! "confidence.auroc_correct" = { min = 0.75 }
//! "retrieval.recall_at_5" = { min = 0.85 }
//! ```
//!
//! A figure's 95% interval is the two-element array beside it (`decisions.risk_ci`); a gate
//! names one end with `.lo` or `.hi` (or the index `.0` / `.1`): `"decisions.risk_ci.hi" =
//! { max = 0.10 }` passes only when the run is confidently below 10% risk, not just lucky.
//!
//! `frontdesk eval --gate` checks the run's report against its dataset's table and fails when
//! any bound is broken, so a change that makes the assistant answer wrongly more often, or
//! resolve fewer questions, is caught before customers see it. Paths are checked against the
//! report itself, so a misspelt metric fails the gate instead of silently passing.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Bounds on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// All gates, by dataset name, then by metric path.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gates {
    pub datasets: BTreeMap<String, BTreeMap<String, Bound>>,
}

impl Gates {
    /// The gates of one dataset, if it has a section.
    pub fn for_dataset(&self, dataset: &str) -> Option<&BTreeMap<String, Bound>> {
        self.datasets.get(dataset)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: [{dataset}] \"{metric}\": {message}")]
    Invalid { path: PathBuf, dataset: String, metric: String, message: String },
}

/// Reads and validates a gates file: every entry needs a finite `min` or `max` (or both, with
/// `min` ≤ `max`). Metric paths are checked against the report in [`check`].
pub fn load(path: &Path) -> Result<Gates, GateError> {
    let text = std::fs::read_to_string(path).map_err(|source| GateError::Io { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

/// Parses gates from TOML text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Gates, GateError> {
    let datasets: BTreeMap<String, BTreeMap<String, Bound>> =
        toml::from_str(text).map_err(|e| GateError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
    for (dataset, metrics) in &datasets {
        for (metric, bound) in metrics {
            let invalid = |message: &str| GateError::Invalid {
                path: path.to_path_buf(),
                dataset: dataset.clone(),
                metric: metric.clone(),
                message: message.to_string(),
            };
            if metric.is_empty() || metric.split('.').any(str::is_empty) {
                return Err(invalid("is not a dotted metric path such as decisions.wrong_answer_rate"));
            }
            match (bound.min, bound.max) {
                (None, None) => return Err(invalid("needs min or max")),
                (min, max) if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) => {
                    return Err(invalid("bounds must be finite numbers"))
                }
                (Some(min), Some(max)) if min > max => return Err(invalid("min is above max")),
                _ => {}
            }
        }
    }
    Ok(Gates { datasets })
}

/// Why a run did not pass its gates.
#[derive(Debug, Clone, PartialEq)]
pub enum GateFailure {
    /// The metric is above its maximum.
    Above { metric: String, value: f64, max: f64 },
    /// The metric is below its minimum.
    Below { metric: String, value: f64, min: f64 },
    /// The metric is in the report but has no value in this run (for example escalation
    /// recall on a dataset without unanswerable questions), so the gate cannot be verified.
    NoValue { metric: String },
    /// The path names something in the report that is not a number.
    NotANumber { metric: String },
    /// The path names nothing in the report: a misspelt or removed metric.
    UnknownMetric { metric: String },
    /// The gates file has no section for the dataset, so nothing was checked.
    NoGates { dataset: String },
}

impl fmt::Display for GateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateFailure::Above { metric, value, max } => {
                write!(f, "{metric} = {value:.3} is above the maximum {max:.3}")
            }
            GateFailure::Below { metric, value, min } => {
                write!(f, "{metric} = {value:.3} is below the minimum {min:.3}")
            }
            GateFailure::NoValue { metric } => {
                write!(f, "{metric} has no value in this run (nothing to measure it on), so its gate cannot pass")
            }
            GateFailure::NotANumber { metric } => write!(f, "{metric} is not a number in report.json"),
            GateFailure::UnknownMetric { metric } => write!(f, "unknown metric {metric}: report.json has no such key"),
            GateFailure::NoGates { dataset } => write!(f, "no gates are defined for dataset {dataset}"),
        }
    }
}

/// Looks a dotted path up in the report. Keys may themselves contain dots (a category or stage
/// name), so at each level the longest key matching the path's next segments wins. In an array
/// a segment is an index (`0`, `1`, ...); `lo` and `hi` name the ends of a two-element interval.
pub fn lookup<'a>(report: &'a Value, path: &str) -> Option<&'a Value> {
    let segments: Vec<&str> = path.split('.').collect();
    fn walk<'a>(value: &'a Value, segments: &[&str]) -> Option<&'a Value> {
        if segments.is_empty() {
            return Some(value);
        }
        if let Some(items) = value.as_array() {
            let index = match segments[0] {
                "lo" if items.len() == 2 => 0,
                "hi" if items.len() == 2 => 1,
                other => other.parse::<usize>().ok()?,
            };
            return walk(items.get(index)?, &segments[1..]);
        }
        let object = value.as_object()?;
        (1..=segments.len())
            .rev()
            .find_map(|take| object.get(&segments[..take].join(".")).and_then(|v| walk(v, &segments[take..])))
    }
    walk(report, &segments)
}

/// Checks `report_json` (the run's `report.json`) against the gates of `dataset`. An empty
/// list means the run passed.
pub fn check(gates: &Gates, dataset: &str, report_json: &Value) -> Vec<GateFailure> {
    let Some(metrics) = gates.for_dataset(dataset) else {
        return vec![GateFailure::NoGates { dataset: dataset.to_string() }];
    };
    let mut failures = Vec::new();
    for (metric, bound) in metrics {
        let metric = metric.clone();
        let value = match lookup(report_json, &metric) {
            None => {
                failures.push(GateFailure::UnknownMetric { metric });
                continue;
            }
            Some(Value::Null) => {
                failures.push(GateFailure::NoValue { metric });
                continue;
            }
            Some(v) => match v.as_f64() {
                Some(v) => v,
                None => {
                    failures.push(GateFailure::NotANumber { metric });
                    continue;
                }
            },
        };
        if let Some(max) = bound.max.filter(|max| value > *max) {
            failures.push(GateFailure::Above { metric, value, max });
        } else if let Some(min) = bound.min.filter(|min| value < *min) {
            failures.push(GateFailure::Below { metric, value, min });
        }
    }
    failures
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "dataset": "tallyhawk",
            "cases": 131,
            "retrieval": { "recall_at_5": 0.9, "mrr": 0.7 },
            "decisions": {
                "wrong_answer_rate": 0.071,
                "escalation_recall": null,
                "resolution_rate": 0.4,
                "table": { "answerable": { "escalated": 3 } }
            },
            "by_category": { "v1.2": { "wrong": 2 } }
        })
    }

    /// The report of a small synthetic run, as `report.json` holds it.
    fn real_report() -> Value {
        use crate::eval::metrics::tests::case;
        use crate::eval::record::CaseResult;
        let mut cases = vec![
            case("a", true, true, 0.9),
            case("b", true, false, 0.8),
            case("c", true, true, 0.7),
            case("d", false, false, 0.6),
            case("e", true, true, 0.5),
        ];
        cases.push(CaseResult {
            category: Some("human_request".into()),
            candidate_answer: None,
            engine_reason: "asked_for_human".into(),
            ..case("f", false, false, 0.0)
        });
        crate::eval::report::Report::build("d", "extractive", "hybrid", vec![], 0.55, 0.3, 0.02, &cases, "now", 1.0)
            .to_json()
    }

    #[test]
    fn the_shipped_gates_file_parses_and_every_path_resolves() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("evals/gates.toml");
        let gates = load(&path).unwrap();
        let th = gates.for_dataset("tallyhawk-heldout").unwrap();
        // The gates that matter most: wrong answers are bounded both as a share of the answers
        // (risk) and as a share of all questions, so neither answering less nor answering more
        // can hide them.
        let max = |m: &str| th.get(m).and_then(|b| b.max);
        assert!(max("decisions.risk").is_some_and(|m| m <= 0.25), "no upper bound on risk");
        assert!(
            max("decisions.wrong_answer_rate").is_some_and(|m| m <= 0.05),
            "no bound on wrong answers per question"
        );
        assert!(
            th.get("decisions.coverage").and_then(|b| b.min).is_some_and(|m| m > 0.0),
            "no lower bound on coverage"
        );
        let report = real_report();
        for metric in gates.datasets.values().flat_map(|m| m.keys()) {
            assert!(lookup(&report, metric).is_some(), "{metric} names nothing in report.json");
        }
    }

    #[test]
    fn the_headline_paths_resolve_to_numbers() {
        let report = real_report();
        for metric in [
            "decisions.risk",
            "decisions.risk_ci.lo",
            "decisions.risk_ci.hi",
            "decisions.coverage",
            "decisions.coverage_ci.0",
            "decisions.resolution_rate",
            "decisions.resolution_rate_ci.hi",
            "decisions.wrong_answer_rate",
            "decisions.wrong_answer_rate_ci.hi",
            "confidence.auroc",
            "confidence.auroc_ci.lo",
            "confidence.auroc_correct",
            "confidence.auroc_correct_ci.lo",
            "selective.aurc",
            "selective.aurc_ci.hi",
            "selective.coverage_at_risk_2",
            "selective.coverage_at_risk_5",
            "selective.coverage_at_risk_5_ci.lo",
            "selective.coverage_at_risk_10",
            "selective.max_coverage",
            "rules.count",
            "rules.precision",
            "rules.recall",
            "rules.by_category.human_request.recall",
        ] {
            assert!(
                lookup(&report, metric).and_then(Value::as_f64).is_some(),
                "{metric}: {:?}",
                lookup(&report, metric)
            );
        }
        let gates = parse(
            "[d]\n\"decisions.risk_ci.hi\" = { max = 0.0001 }\n\"decisions.coverage\" = { min = 0.0 }\n",
            Path::new("g"),
        )
        .unwrap();
        let failures = check(&gates, "d", &report);
        assert_eq!(failures.len(), 1);
        assert!(matches!(&failures[0], GateFailure::Above { metric, .. } if metric == "decisions.risk_ci.hi"));
    }

    #[test]
    fn failures_name_the_metric_value_and_bound() {
        let gates = parse(
            r#"
            [tallyhawk]
            "decisions.wrong_answer_rate" = { max = 0.05 }
            "retrieval.recall_at_5" = { min = 0.85 }
            "decisions.escalation_recall" = { min = 0.8 }
            "decisions.resolution_rate" = { min = 0.5 }
            "decisions.table" = { min = 1 }
            "decisions.wrong_answer_rat" = { max = 0.05 }
            "by_category.v1.2.wrong" = { max = 1 }
            "cases" = { min = 100, max = 200 }
            "#,
            Path::new("gates.toml"),
        )
        .unwrap();
        let failures: Vec<String> = check(&gates, "tallyhawk", &report()).iter().map(ToString::to_string).collect();
        assert_eq!(
            failures,
            vec![
                "by_category.v1.2.wrong = 2.000 is above the maximum 1.000",
                "decisions.escalation_recall has no value in this run (nothing to measure it on), so its gate cannot \
                 pass",
                "decisions.resolution_rate = 0.400 is below the minimum 0.500",
                "decisions.table is not a number in report.json",
                "unknown metric decisions.wrong_answer_rat: report.json has no such key",
                "decisions.wrong_answer_rate = 0.071 is above the maximum 0.050",
            ]
        );
        assert_eq!(check(&gates, "other", &report()), vec![GateFailure::NoGates { dataset: "other".into() }]);
    }

    #[test]
    fn passing_run_has_no_failures() {
        let gates = parse("[tallyhawk]\n\"retrieval.recall_at_5\" = { min = 0.85 }\n", Path::new("g")).unwrap();
        assert!(check(&gates, "tallyhawk", &report()).is_empty());
    }

    #[test]
    fn malformed_gates_are_rejected() {
        let bad = |text: &str| parse(text, Path::new("g")).unwrap_err().to_string();
        assert!(bad("[d]\n\"a.b\" = {}\n").contains("needs min or max"));
        assert!(bad("[d]\n\"a.b\" = { min = 0.9, max = 0.1 }\n").contains("min is above max"));
        assert!(bad("[d]\n\"a.b\" = { maximum = 0.1 }\n").contains("maximum"));
        assert!(bad("[d]\n\"a..b\" = { max = 0.1 }\n").contains("dotted metric path"));
        assert!(bad("[d]\n\"a.b\" = { max = nan }\n").contains("finite"));
        assert!(matches!(load(Path::new("/nonexistent/gates.toml")), Err(GateError::Io { .. })));
    }

    #[test]
    fn lookup_walks_dotted_paths() {
        let r = report();
        assert_eq!(lookup(&r, "decisions.table.answerable.escalated"), Some(&json!(3)));
        assert_eq!(lookup(&r, "by_category.v1.2.wrong"), Some(&json!(2)));
        assert_eq!(lookup(&r, "retrieval.recall_at_50"), None);
        assert_eq!(lookup(&r, "cases.x"), None);
        let ci = json!({ "decisions": { "risk_ci": [0.02, 0.07], "list": [1, 2, 3] } });
        assert_eq!(lookup(&ci, "decisions.risk_ci.lo"), Some(&json!(0.02)));
        assert_eq!(lookup(&ci, "decisions.risk_ci.hi"), Some(&json!(0.07)));
        assert_eq!(lookup(&ci, "decisions.risk_ci.1"), Some(&json!(0.07)));
        assert_eq!(lookup(&ci, "decisions.risk_ci.2"), None);
        assert_eq!(lookup(&ci, "decisions.list.hi"), None, "lo/hi only name the ends of an interval");
        assert_eq!(lookup(&ci, "decisions.list.2"), Some(&json!(3)));
    }
}
