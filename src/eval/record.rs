//! What an eval run records per case (`cases.jsonl` in the out dir), the input of every metric.
//!
//! The harness runs each case through the engine with the policy's thresholds switched off, so
//! every case that *can* be answered yields a candidate answer with its confidence. The
//! decision at the configured thresholds is then `answer` exactly when a candidate exists and
//! its confidence clears both the retrieval gate and the answer threshold — the same rule the
//! engine applies — and the risk–coverage curve is the same rule swept over all thresholds.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One case's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CaseResult {
    pub id: String,
    pub category: Option<String>,
    pub answerable: bool,
    pub expected_behavior: Option<String>,
    pub gold_doc_ids: Vec<String>,
    pub question: String,
    pub condensed_question: String,
    /// Documents in retrieval rank order (chunks collapsed to their document).
    pub retrieved_doc_ids: Vec<String>,
    /// 1-based rank of the first gold document, when retrieved.
    pub gold_rank: Option<usize>,
    /// The engine's own reason when it escalated regardless of thresholds (`asked_for_human`,
    /// `suspected_injection`, `model_unsure`, `unsupported_answer`, `llm_unavailable`, ...),
    /// or `answered` when a candidate answer exists.
    pub engine_reason: String,
    /// The candidate answer (with `[n]` citations), when one exists.
    pub candidate_answer: Option<String>,
    /// Documents the candidate cites.
    pub cited_doc_ids: Vec<String>,
    /// The candidate cites at least one gold document.
    pub grounded: bool,
    /// The engine's confidence: the answer's when a candidate exists; for a case escalated on
    /// the evidence (weak retrieval, an unsupported answer) the score it was refused at; 0 for
    /// a case decided by rule (a request for a person, an attempt to steer the bot).
    pub confidence: f32,
    pub retrieval_confidence: f32,
    /// At the configured thresholds: `answer` or `escalate`.
    pub decision: String,
    /// Reason code at the configured thresholds.
    pub reason: String,
    pub reference_answer: String,
    /// Token-level F1 and ROUGE-L F of the candidate against the reference (answered only).
    pub token_f1: Option<f32>,
    pub rouge_l: Option<f32>,
    /// Support of the candidate's sentences in the chunks they cite, in [0, 1].
    pub faithfulness: Option<f32>,
    /// With `--judge`: the judge model's scores.
    pub judge_faithfulness: Option<f32>,
    pub judge_correctness: Option<f32>,
    /// Milliseconds per stage (`understand`, `retrieve`, `generate`, `verify`) and `total`.
    pub latency_ms: BTreeMap<String, f64>,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub cost_usd: f64,
    pub trace_id: Option<String>,
    /// The features the confidence was computed from: what `frontdesk calibrate` fits on.
    #[serde(default)]
    pub features: Option<crate::trace::Features>,
    /// The first retrieved chunks (before reranking) with their ranking features and whether
    /// each belongs to a gold document: what the feature ranker is fitted on. Empty for cases
    /// without gold documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rank_samples: Vec<RankSample>,
}

/// One retrieved chunk as the feature ranker sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankSample {
    pub gold: bool,
    /// In the order of `rerank::features::HIT_FEATURES`.
    pub x: Vec<f32>,
}

impl CaseResult {
    /// True when the case's answer at threshold `t` would be a wrong answer: an answer to an
    /// unanswerable question, or an answer that cites no gold document.
    pub fn wrong_if_answered(&self) -> bool {
        !self.answerable || !self.grounded
    }

    /// True when the case would be answered at these thresholds.
    pub fn answered_at(&self, threshold: f32, gate: f32) -> bool {
        self.candidate_answer.is_some() && self.retrieval_confidence >= gate && self.confidence >= threshold
    }
}
