//! The eval harness: runs every case of a dataset through the production engine.
//!
//! The dataset's docs (and `tickets.jsonl`, when present) are ingested into their own
//! workspace, `eval-<dataset name>`, reusing whatever is already indexed and unchanged. Each
//! case becomes a fresh conversation seeded with its `history`, and its question goes through
//! `Engine::handle` like any customer message. The engine runs with its thresholds at zero so
//! every case that can produce an answer does; the configured thresholds are applied
//! afterwards (see `record`), which lets one run draw the whole risk–coverage curve.

use super::dataset::{Case, Dataset};
use super::record::{CaseResult, RankSample};
use super::retrieval::{doc_ranking, first_gold_rank};
use crate::channel::{ChannelId, ConversationKey, WorkspaceId};
use crate::conversation::cli_inbound;
use crate::engine::Engine;
use crate::llm::{ChatMessage, ChatRequest, Llm, ModelTier};
use crate::policy::{PolicyStore, Scope};
use crate::prompts::Prompts;
use crate::retrieval::Filters;
use crate::trace::Decision;
use std::collections::BTreeMap;

/// Retrieved chunks recorded per case for fitting the feature ranker (as many as it reranks by
/// default).
pub const RANK_SAMPLES: usize = 20;

/// The channel eval conversations are held in.
pub const EVAL_CHANNEL: &str = "eval";

/// How the decisions are taken from the candidates.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub answer: f32,
    pub gate: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Setup(String),
}

/// Lets the engine answer everything it can in the eval workspace: thresholds at zero.
pub fn open_thresholds(policies: &PolicyStore, ws: &WorkspaceId) -> Result<(), RunError> {
    let pairs = vec![
        ("confidence_threshold".to_string(), "0".to_string()),
        ("enabled".to_string(), "true".to_string()),
        ("mode".to_string(), "answer".to_string()),
    ];
    let channel = ChannelId::new(EVAL_CHANNEL).map_err(|e| RunError::Setup(e.to_string()))?;
    match policies.set(ws, &Scope::Channel(channel), &pairs) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(errors)) => Err(RunError::Setup(format!("{errors:?}"))),
        Err(e) => Err(RunError::Setup(e.to_string())),
    }
}

fn decide(r: &mut CaseResult, t: Thresholds) {
    if r.answered_at(t.answer, t.gate) {
        r.decision = "answer".into();
        r.reason = "answered".into();
    } else {
        r.decision = "escalate".into();
        r.reason = if r.candidate_answer.is_none() {
            r.engine_reason.clone()
        } else if r.retrieval_confidence < t.gate {
            "weak_retrieval".into()
        } else {
            "low_confidence".into()
        };
    }
}

/// Runs one case.
pub async fn run_case(
    engine: &Engine,
    ws: &WorkspaceId,
    case: &Case,
    t: Thresholds,
    run_id: &str,
) -> Result<CaseResult, RunError> {
    let channel = ChannelId::new(EVAL_CHANNEL).map_err(|e| RunError::Setup(e.to_string()))?;
    let key = ConversationKey::new(format!("{run_id}:{}", case.id)).map_err(|e| RunError::Setup(e.to_string()))?;
    let author = format!("customer-{}", case.id);
    let inbound =
        cli_inbound(ws, &channel, &key, &author, &case.question).map_err(|e| RunError::Setup(e.to_string()))?;
    engine
        .conversations
        .seed_history(&inbound, case.history.iter().map(|t| (t.speaker(), t.text.as_str())))
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let outcome = engine.handle(&inbound).await;
    let trace = outcome.trace.clone().unwrap_or_default();

    // Doc-level ranking of the question as the engine understood it, deep enough for @10.
    let condensed =
        if trace.condensed_question.is_empty() { case.question.clone() } else { trace.condensed_question.clone() };
    let kb = &engine.kb;
    let request = kb.request(ws.clone(), &condensed, engine.search_mode, 60, Filters::default());
    let (ranking, rank_samples) = match kb.search(request).await {
        Ok(hits) => {
            let first = &hits[..hits.len().min(RANK_SAMPLES)];
            let samples = if case.source_doc_ids.is_empty() {
                Vec::new()
            } else {
                crate::rerank::features::hit_features(&condensed, first)
                    .into_iter()
                    .zip(first)
                    .map(|(x, h)| RankSample { gold: case.source_doc_ids.contains(&h.doc_id), x })
                    .collect()
            };
            (doc_ranking(hits.iter().map(|h| h.doc_id.as_str())), samples)
        }
        Err(e) => {
            tracing::warn!(case = %case.id, error = %e, "ranking search failed");
            (Vec::new(), Vec::new())
        }
    };
    let gold_rank = first_gold_rank(&ranking, &case.source_doc_ids);

    let candidate = (outcome.decision == Decision::Answer).then(|| outcome.answer.clone()).flatten();
    let cited: Vec<String> = outcome.citations.iter().map(|c| c.doc_id.clone()).collect();
    let grounded = candidate.is_some() && cited.iter().any(|d| case.source_doc_ids.contains(d));
    let mut latency: BTreeMap<String, f64> = trace.stages.iter().map(|s| (s.name.clone(), s.ms)).collect();
    latency.insert("total".into(), trace.total_ms());
    let mut r = CaseResult {
        id: case.id.clone(),
        category: case.category.clone(),
        answerable: case.answerable,
        expected_behavior: case.expected_behavior.clone(),
        gold_doc_ids: case.source_doc_ids.clone(),
        question: case.question.clone(),
        condensed_question: condensed,
        retrieved_doc_ids: ranking.into_iter().take(10).collect(),
        gold_rank,
        engine_reason: outcome.reason.code(),
        candidate_answer: candidate.clone(),
        cited_doc_ids: cited,
        grounded,
        confidence: outcome.confidence,
        retrieval_confidence: trace.retrieval_confidence.unwrap_or(0.0),
        decision: String::new(),
        reason: String::new(),
        reference_answer: case.reference_answer.clone(),
        token_f1: None,
        rouge_l: None,
        faithfulness: candidate.as_ref().and(trace.verification.as_ref().map(|v| v.mean_support)),
        judge_faithfulness: None,
        judge_correctness: None,
        latency_ms: latency,
        tokens_in: trace.tokens_in,
        tokens_out: trace.tokens_out,
        cost_usd: trace.cost_usd,
        trace_id: Some(trace.trace_id.clone()).filter(|s| !s.is_empty()),
        features: trace.features,
        rank_samples,
    };
    if let Some(answer) = &candidate {
        r.token_f1 = Some(super::metrics::token_f1(answer, &case.reference_answer));
        r.rouge_l = Some(super::metrics::rouge_l(answer, &case.reference_answer));
    }
    decide(&mut r, t);
    Ok(r)
}

/// Reads the leading score of a judge's reply ("0.8 because ...").
pub fn judge_score(reply: &str) -> Option<f32> {
    let first = reply.split_whitespace().next()?;
    first.trim_end_matches([',', ':', '.']).parse::<f32>().ok().filter(|v| (0.0..=1.0).contains(v))
}

/// Asks a judge model to score faithfulness and correctness of answered cases.
pub async fn judge(judge: &dyn Llm, prompts: &Prompts, engine: &Engine, result: &mut CaseResult) {
    let Some(answer) = result.candidate_answer.clone() else { return };
    let Some(trace_id) = &result.trace_id else { return };
    let Ok(Some(trace)) = engine.traces.get(trace_id) else { return };
    // The judge reads the chunks the answer was written from; the trace keeps their ids, so
    // the same search is run again for their text.
    let Ok(ws) = WorkspaceId::new(trace.workspace.clone()) else { return };
    let request = engine.kb.request(
        ws,
        &result.condensed_question,
        engine.search_mode,
        engine.answering.context_chunks,
        Filters::default(),
    );
    let hits = engine.kb.search(request).await.unwrap_or_default();
    let sources_text = crate::generate::numbered_sources(&hits);
    let ask = |text: String| ChatRequest {
        messages: vec![ChatMessage::user(text)],
        temperature: 0.0,
        max_tokens: 60,
        tier: ModelTier::Standard,
    };
    if let Ok(p) = prompts.get("judge_faithfulness") {
        if let Ok(text) = p.render(&[("sources", &sources_text), ("answer", &answer)]) {
            if let Ok(r) = judge.complete(&ask(text), None).await {
                result.judge_faithfulness = judge_score(&r.text);
            }
        }
    }
    if let Ok(p) = prompts.get("judge_correctness") {
        if let Ok(text) =
            p.render(&[("question", &result.question), ("reference", &result.reference_answer), ("answer", &answer)])
        {
            if let Ok(r) = judge.complete(&ask(text), None).await {
                result.judge_correctness = judge_score(&r.text);
            }
        }
    }
}

/// The workspace a dataset is evaluated in.
pub fn workspace_for(dataset: &Dataset) -> Result<WorkspaceId, RunError> {
    WorkspaceId::new(format!("eval-{}", dataset.folder)).map_err(|e| RunError::Setup(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_scores_are_read_from_the_first_word() {
        assert_eq!(judge_score("0.8 The refund window is right."), Some(0.8));
        assert_eq!(judge_score("1, fully supported"), Some(1.0));
        assert_eq!(judge_score("great answer"), None);
        assert_eq!(judge_score("7 out of 10"), None);
    }

    #[test]
    fn decisions_follow_the_thresholds() {
        let mut r = CaseResult {
            candidate_answer: Some("x [1]".into()),
            confidence: 0.6,
            retrieval_confidence: 0.5,
            engine_reason: "answered".into(),
            ..Default::default()
        };
        decide(&mut r, Thresholds { answer: 0.5, gate: 0.35 });
        assert_eq!((r.decision.as_str(), r.reason.as_str()), ("answer", "answered"));
        decide(&mut r, Thresholds { answer: 0.7, gate: 0.35 });
        assert_eq!((r.decision.as_str(), r.reason.as_str()), ("escalate", "low_confidence"));
        decide(&mut r, Thresholds { answer: 0.5, gate: 0.55 });
        assert_eq!(r.reason, "weak_retrieval");
        let mut none = CaseResult { engine_reason: "asked_for_human".into(), ..Default::default() };
        decide(&mut none, Thresholds { answer: 0.0, gate: 0.0 });
        assert_eq!((none.decision.as_str(), none.reason.as_str()), ("escalate", "asked_for_human"));
    }
}
