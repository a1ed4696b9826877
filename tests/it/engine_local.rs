//! The local SmolLM2 path end to end: the engine with the in-process model as its generator
//! answers (with a valid citation) or hands off — never an error, never an uncited answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use frontdesk::engine::TurnReason;
use frontdesk::generate::{Generator, LlmGenerator};
use frontdesk::llm::local::{LocalLlm, LocalLlmOptions};
use frontdesk::llm::Llm;
use frontdesk::prompts::Prompts;
use frontdesk::ratelimit::RateLimitConfig;
use frontdesk::trace::Decision;
use std::sync::Arc;
use support::engine_harness::{harness_with, message};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_model_answers_with_citations_or_hands_off() {
    let dir = frontdesk::testing::ensure_model(&frontdesk::models::SMOLLM2).expect("the local model");
    let llm: Arc<dyn Llm> = Arc::new(LocalLlm::load(&dir, LocalLlmOptions::default()).unwrap());
    let generator: Arc<dyn Generator> =
        Arc::new(LlmGenerator::new(llm, Arc::new(Prompts::built_in().unwrap()), 0.0, 120, true));
    let h = harness_with(RateLimitConfig::default(), Some(generator)).await;

    let o = h
        .engine
        .handle(&message(&h.ws, "l1", "U1", "Can annual plans be refunded within 30 days of the renewal?"))
        .await;
    let t = o.trace.clone().unwrap();
    assert_eq!(t.model.as_deref(), Some("local/SmolLM2-135M-Instruct"), "the model was called");
    assert!(t.tokens_out > 0);
    match o.decision {
        Decision::Answer => {
            assert!(!o.citations.is_empty());
            assert!(o.citations.iter().all(|c| c.doc_id == "refunds" || c.doc_id == "trial" || c.doc_id == "errors"));
        }
        Decision::Escalate => assert!(
            matches!(o.reason, TurnReason::ModelUnsure | TurnReason::UnsupportedAnswer | TurnReason::LowConfidence),
            "{:?}",
            o.reason
        ),
        Decision::Ignore => panic!("a customer's question was ignored"),
    }

    let o = h.engine.handle(&message(&h.ws, "l2", "U1", "Do you sponsor marathon runners in Lisbon?")).await;
    assert_eq!(o.decision, Decision::Escalate);
}
