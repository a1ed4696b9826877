//! Rule decisions: the hand-offs the engine makes whatever the confidence score says.
//!
//! Some escalations do not come from a score at all — a customer asking for a person, a message
//! that looks like a prompt injection, a channel where the bot is off. Those cases are
//! *rule-decided*. They are kept out of every score-quality figure (an AUROC that counted them
//! at confidence 0 would rank them below every answer for free) and judged here instead, by
//! whether the rule fired on the cases the dataset says should be handed off. Every other case
//! is *score-decided*: it has a candidate answer, or it was escalated on a score
//! (`weak_retrieval`, `model_unsure`, `unsupported_answer`, `low_confidence`) or an outage.

use super::record::CaseResult;
use serde::Serialize;
use std::collections::BTreeMap;

/// The engine reasons that end a turn by rule, regardless of any score:
///
/// - `asked_for_human`: the customer asked for a person;
/// - `suspected_injection`: the message tries to change the assistant's instructions;
/// - `policy_off`: answering is switched off where the message arrived;
/// - `rate_limited`: the workspace or the customer is over the rate limit;
/// - `sender_over_quota`: the customer wrote again this minute after their own quota's handoff;
/// - `agent_owned`: a person owns the conversation;
/// - `not_addressed`: the message was not addressed to the assistant.
///
/// Reasons that are not listed (`weak_retrieval`, `model_unsure`, `unsupported_answer`,
/// `low_confidence`, `llm_unavailable`, `answered`, ...) make a case score-decided.
pub const RULE_REASONS: [&str; 7] = [
    "asked_for_human",
    "suspected_injection",
    "policy_off",
    "rate_limited",
    "sender_over_quota",
    "agent_owned",
    "not_addressed",
];

/// True when `engine_reason` is one of [`RULE_REASONS`]: the engine escalated by a rule, and no
/// threshold could have made it answer.
pub fn is_rule_reason(engine_reason: &str) -> bool {
    RULE_REASONS.contains(&engine_reason)
}

/// True when the case was escalated by a rule (see [`RULE_REASONS`]).
pub fn rule_decided(case: &CaseResult) -> bool {
    is_rule_reason(&case.engine_reason)
}

/// `expected_behavior` values that mean "do not answer this": hand it off, decline it, or ask
/// the customer to clarify first.
pub const HANDOFF_BEHAVIORS: [&str; 3] = ["escalate", "decline_or_escalate", "ask_clarification"];

/// True when the dataset says the case should not be answered: its `expected_behavior` is one
/// of [`HANDOFF_BEHAVIORS`], or, for a case without an `expected_behavior`, it is unanswerable.
pub fn expects_handoff(case: &CaseResult) -> bool {
    match case.expected_behavior.as_deref() {
        Some(behavior) => HANDOFF_BEHAVIORS.contains(&behavior),
        None => !case.answerable,
    }
}

/// The dataset categories that one rule exists for, with that rule's reason.
pub const RULE_CATEGORIES: [(&str, &str); 2] =
    [("human_request", "asked_for_human"), ("injection", "suspected_injection")];

/// How well the rules hand off what should be handed off.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RuleScores {
    /// Rule-decided cases.
    pub count: usize,
    /// Cases the dataset expects to be handed off (see [`expects_handoff`]).
    pub expected_handoff: usize,
    /// Rule-decided cases that were expected to be handed off.
    pub correct: usize,
    /// `correct` / `count`: how often a rule hand-off was right (null when no rule fired).
    pub precision: Option<f64>,
    /// `correct` / `expected_handoff`: the share of expected hand-offs a rule made (null when
    /// none is expected). Low on datasets whose hand-offs are mostly out-of-scope questions,
    /// which are the score's job, not a rule's.
    pub recall: Option<f64>,
    /// Rule-decided cases per engine reason.
    pub by_reason: BTreeMap<String, usize>,
    /// For each category in [`RULE_CATEGORIES`] that the dataset has: its own rule against its
    /// own cases.
    pub by_category: BTreeMap<String, RuleCategory>,
}

/// One rule judged against the dataset category it exists for (`human_request` against
/// `asked_for_human`, `injection` against `suspected_injection`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RuleCategory {
    /// The engine reason of the category's rule.
    pub rule: String,
    /// Cases in the category.
    pub cases: usize,
    /// Cases, in any category, the rule fired on.
    pub fired: usize,
    /// Cases in the category the rule fired on.
    pub caught: usize,
    /// `caught` / `fired` (null when the rule never fired).
    pub precision: Option<f64>,
    /// `caught` / `cases` (null when the category is empty).
    pub recall: Option<f64>,
}

/// Scores the rule decisions of a run.
pub fn score(cases: &[CaseResult]) -> RuleScores {
    let mut scores = RuleScores::default();
    for case in cases {
        let expected = expects_handoff(case);
        scores.expected_handoff += usize::from(expected);
        if rule_decided(case) {
            scores.count += 1;
            scores.correct += usize::from(expected);
            *scores.by_reason.entry(case.engine_reason.clone()).or_default() += 1;
        }
    }
    scores.precision = super::metrics::ratio(scores.correct, scores.count);
    scores.recall = super::metrics::ratio(scores.correct, scores.expected_handoff);
    for (category, rule) in RULE_CATEGORIES {
        let in_category = |c: &&CaseResult| c.category.as_deref() == Some(category);
        let cases_in = cases.iter().filter(in_category).count();
        if cases_in == 0 {
            continue;
        }
        let fired = cases.iter().filter(|c| c.engine_reason == rule).count();
        let caught = cases.iter().filter(in_category).filter(|c| c.engine_reason == rule).count();
        scores.by_category.insert(
            category.to_string(),
            RuleCategory {
                rule: rule.to_string(),
                cases: cases_in,
                fired,
                caught,
                precision: super::metrics::ratio(caught, fired),
                recall: super::metrics::ratio(caught, cases_in),
            },
        );
    }
    scores
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn escalated(
        id: &str,
        category: Option<&str>,
        behavior: Option<&str>,
        answerable: bool,
        reason: &str,
    ) -> CaseResult {
        CaseResult {
            id: id.into(),
            category: category.map(str::to_string),
            expected_behavior: behavior.map(str::to_string),
            answerable,
            engine_reason: reason.into(),
            decision: "escalate".into(),
            reason: reason.into(),
            ..CaseResult::default()
        }
    }

    #[test]
    fn the_rule_list_decides_rule_versus_score() {
        for reason in RULE_REASONS {
            assert!(is_rule_reason(reason), "{reason}");
        }
        for reason in ["answered", "weak_retrieval", "model_unsure", "unsupported_answer", "low_confidence"] {
            assert!(!is_rule_reason(reason), "{reason}");
        }
        assert!(!is_rule_reason("llm_unavailable"), "an outage is not a rule");
    }

    #[test]
    fn expected_handoffs_follow_the_behavior_then_answerability() {
        assert!(expects_handoff(&escalated("a", None, Some("escalate"), false, "x")));
        assert!(expects_handoff(&escalated("b", None, Some("decline_or_escalate"), false, "x")));
        assert!(expects_handoff(&escalated("c", None, Some("ask_clarification"), false, "x")));
        assert!(!expects_handoff(&escalated("d", None, Some("answer"), true, "x")));
        assert!(!expects_handoff(&escalated("e", None, Some("partial_answer_and_flag_missing"), true, "x")));
        assert!(expects_handoff(&escalated("f", None, None, false, "x")));
        assert!(!expects_handoff(&escalated("g", None, None, true, "x")));
    }

    #[test]
    fn rules_are_scored_overall_and_per_category() {
        let cases = vec![
            // Two requests for a person: one caught, one missed (the score handled it).
            escalated("h1", Some("human_request"), Some("escalate"), false, "asked_for_human"),
            escalated("h2", Some("human_request"), Some("escalate"), false, "low_confidence"),
            // An injection caught by the human rule, one by its own rule.
            escalated("i1", Some("injection"), Some("escalate"), false, "asked_for_human"),
            escalated("i2", Some("injection"), Some("escalate"), false, "suspected_injection"),
            // An answerable question wrongly caught by the injection rule.
            escalated("p1", Some("plain"), Some("answer"), true, "suspected_injection"),
            // An out-of-scope question left to the score.
            escalated("u1", Some("unanswerable"), Some("escalate"), false, "weak_retrieval"),
        ];
        let s = score(&cases);
        assert_eq!((s.count, s.expected_handoff, s.correct), (4, 5, 3));
        assert_eq!(s.precision, Some(0.75));
        assert_eq!(s.recall, Some(0.6));
        assert_eq!(s.by_reason["asked_for_human"], 2);
        assert_eq!(s.by_reason["suspected_injection"], 2);
        let human = &s.by_category["human_request"];
        assert_eq!((human.cases, human.fired, human.caught), (2, 2, 1));
        assert_eq!((human.precision, human.recall), (Some(0.5), Some(0.5)));
        let injection = &s.by_category["injection"];
        assert_eq!((injection.cases, injection.fired, injection.caught), (2, 2, 1));
        assert_eq!((injection.precision, injection.recall), (Some(0.5), Some(0.5)));
    }

    #[test]
    fn a_dataset_without_rule_categories_has_no_category_rows() {
        let cases = vec![escalated("x", None, Some("answer"), true, "asked_for_human")];
        let s = score(&cases);
        assert!(s.by_category.is_empty());
        assert_eq!((s.count, s.precision, s.recall), (1, Some(0.0), None));
        assert_eq!(score(&[]), RuleScores::default());
    }
}
