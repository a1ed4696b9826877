//! The engine with a model-written answer: a scripted OpenAI-compatible server plays the
//! model, and each of its behaviours must end in the right decision and reason code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use frontdesk::config::ProviderConfig;
use frontdesk::engine::TurnReason;
use frontdesk::generate::{Generator, LlmGenerator};
use frontdesk::llm::chain::LlmChain;
use frontdesk::llm::openai::{build_client, OpenAiProvider};
use frontdesk::llm::Llm;
use frontdesk::prompts::{Prompts, UNSURE_MARKER};
use frontdesk::ratelimit::RateLimitConfig;
use frontdesk::trace::Decision;
use std::sync::Arc;
use std::time::Duration;
use support::engine_harness::{harness_with, message, Harness};
use support::scripted_llm::{sse_delta, sse_finish, Reply, ScriptedServer, StreamEnd};

const QUESTION: &str = "Can annual plans be refunded within 30 days of the renewal?";
const GOOD: &str = "Annual plans can be refunded in full within 30 days of the renewal date [1].";

fn provider(name: &str, base_url: &str, stream: bool, timeout_ms: u64) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        base_url: base_url.into(),
        model: format!("model-{name}"),
        api_key: None,
        api_key_env: None,
        connect_timeout_ms: 2_000,
        timeout_ms,
        max_retries: 1,
        backoff_base_ms: 10,
        backoff_max_ms: 40,
        stream,
        price_in_per_mtok: 1.0,
        price_out_per_mtok: 2.0,
    }
}

async fn engine_with(providers: Vec<ProviderConfig>) -> Harness {
    let llms: Vec<Arc<dyn Llm>> =
        providers.iter().map(|p| Arc::new(OpenAiProvider::new(p, build_client()).unwrap()) as Arc<dyn Llm>).collect();
    let chain: Arc<dyn Llm> = Arc::new(LlmChain::new(llms, None));
    let prompts = Arc::new(Prompts::built_in().unwrap());
    let generator: Arc<dyn Generator> = Arc::new(LlmGenerator::new(chain, prompts, 0.1, 300, providers[0].stream));
    harness_with(RateLimitConfig::default(), Some(generator)).await
}

async fn ask(h: &Harness, conv: &str) -> frontdesk::engine::TurnOutcome {
    h.engine.handle(&message(&h.ws, conv, "U1", QUESTION)).await
}

#[tokio::test]
async fn a_cited_answer_is_sent_with_its_sources_tokens_and_cost() {
    let server = ScriptedServer::start(vec![Reply::answer(GOOD, 900, 40)]).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let o = ask(&h, "a1").await;
    assert_eq!((o.decision, o.reason), (Decision::Answer, TurnReason::Answered), "{:?}", o.trace);
    assert_eq!(o.citations[0].doc_id, "refunds");
    let t = o.trace.unwrap();
    assert_eq!((t.tokens_in, t.tokens_out), (900, 40));
    assert!(t.cost_usd > 0.0);
    assert_eq!(t.prompt.as_deref(), Some("answer@1"));
    // The grounding prompt carried the numbered context and the question.
    let body = server.requests()[0].json();
    let prompt = body["messages"][0]["content"].as_str().unwrap().to_string();
    assert!(prompt.contains("[1] ") && prompt.contains(QUESTION) && prompt.contains(UNSURE_MARKER));
}

#[tokio::test]
async fn a_stream_cut_halfway_is_retried_and_then_handed_off_if_it_keeps_failing() {
    let cut = || Reply::stream(vec![sse_delta("Annual plans can be "), sse_delta("refunded")], StreamEnd::CutClose);
    let whole = Reply::stream(vec![sse_delta(GOOD), sse_finish("stop")], StreamEnd::Complete);
    let server = ScriptedServer::start(vec![cut(), whole]).await;
    let h = engine_with(vec![provider("main", &server.base_url(), true, 5_000)]).await;
    let o = ask(&h, "s1").await;
    assert_eq!(o.decision, Decision::Answer, "retried after the cut: {:?}", o.reason);
    assert_eq!(o.answer.as_deref().map(|a| a.starts_with("Annual plans can be refunded in full")), Some(true));

    let server = ScriptedServer::start_with_fallback(vec![], cut()).await;
    let h = engine_with(vec![provider("main", &server.base_url(), true, 5_000)]).await;
    let o = ask(&h, "s2").await;
    assert_eq!((o.decision, o.reason), (Decision::Escalate, TurnReason::LlmUnavailable));
    assert!(o.outbound[0].text.contains("person"), "the customer is told a person will follow up");
    assert!(o.answer.is_none(), "partial text is never sent");
}

#[tokio::test]
async fn rate_limited_then_answered_after_retry_after() {
    let server = ScriptedServer::start(vec![
        Reply::json(429, r#"{"error":{"message":"slow down"}}"#).with_header("Retry-After", "1"),
        Reply::answer(GOOD, 10, 10),
    ])
    .await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let started = std::time::Instant::now();
    let o = ask(&h, "r1").await;
    assert_eq!(o.decision, Decision::Answer);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    assert_eq!(o.trace.unwrap().llm_attempts, 2);
}

#[tokio::test]
async fn a_server_error_then_success_answers() {
    let server = ScriptedServer::start(vec![Reply::json(500, "{}"), Reply::answer(GOOD, 10, 10)]).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let o = ask(&h, "e1").await;
    assert_eq!(o.decision, Decision::Answer);
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn timeouts_and_malformed_responses_end_in_a_handoff_never_an_error() {
    let server = ScriptedServer::start_with_fallback(vec![], Reply::Silent(Duration::from_secs(5))).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 200)]).await;
    let o = ask(&h, "t1").await;
    assert_eq!((o.decision, o.reason), (Decision::Escalate, TurnReason::LlmUnavailable));

    let server = ScriptedServer::start_with_fallback(vec![], Reply::json(200, "{not json")).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let o = ask(&h, "m1").await;
    assert_eq!((o.decision, o.reason), (Decision::Escalate, TurnReason::LlmUnavailable));
    assert!(!o.outbound[0].text.contains("json"), "no raw error reaches the customer");
}

#[tokio::test]
async fn every_provider_down_then_the_fallback_answers() {
    let down = ScriptedServer::start_with_fallback(vec![], Reply::json(503, "{}")).await;
    let up = ScriptedServer::start(vec![Reply::answer(GOOD, 10, 10)]).await;
    let h =
        engine_with(vec![provider("a", &down.base_url(), false, 5_000), provider("b", &up.base_url(), false, 5_000)])
            .await;
    let o = ask(&h, "f1").await;
    assert_eq!(o.decision, Decision::Answer);
    assert_eq!(o.trace.unwrap().model.as_deref(), Some("b/model-b"));
}

#[tokio::test]
async fn a_citation_of_a_chunk_that_was_not_retrieved_is_never_sent() {
    let server =
        ScriptedServer::start(vec![Reply::answer("Annual plans can be refunded within 30 days [9].", 10, 10)]).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let o = ask(&h, "c1").await;
    assert_eq!((o.decision, o.reason), (Decision::Escalate, TurnReason::UnsupportedAnswer));

    let server =
        ScriptedServer::start(vec![Reply::answer("Annual plans can be refunded within 30 days.", 10, 10)]).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let o = ask(&h, "c2").await;
    assert_eq!(o.reason, TurnReason::UnsupportedAnswer, "no citation at all");

    let server =
        ScriptedServer::start(vec![Reply::answer("Refunds are paid in gold bars delivered by drone [1].", 10, 10)])
            .await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let o = ask(&h, "c3").await;
    assert_eq!(o.decision, Decision::Escalate, "a sentence its source does not support");
}

#[tokio::test]
async fn the_not_sure_marker_escalates() {
    let server = ScriptedServer::start(vec![Reply::answer(UNSURE_MARKER, 10, 3)]).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let o = ask(&h, "u1").await;
    assert_eq!((o.decision, o.reason), (Decision::Escalate, TurnReason::ModelUnsure));
}

#[tokio::test]
async fn an_answer_with_an_address_from_no_source_is_handed_to_a_person() {
    // The answer is the good one with a link appended that no help doc contains.
    let with_link = "Annual plans can be refunded in full within 30 days of the renewal date \
                     (https://refunds-portal.example.net/claim) [1]."
        .to_string();
    let server = ScriptedServer::start(vec![Reply::answer(&with_link, 10, 10)]).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let o = ask(&h, "l1").await;
    assert_eq!((o.decision, o.reason), (Decision::Escalate, TurnReason::UnsupportedLink), "{:?}", o.trace);
    assert!(o.outbound.iter().all(|m| !m.text.contains("refunds-portal")), "{:?}", o.outbound);

    // The same answer where the channel's policy allows that domain is checked as usual.
    let server = ScriptedServer::start(vec![Reply::answer(&with_link, 10, 10)]).await;
    let h = engine_with(vec![provider("main", &server.base_url(), false, 5_000)]).await;
    let channel = frontdesk::channel::ChannelId::new("C1").unwrap();
    h.engine
        .policies
        .set(
            &h.ws,
            &frontdesk::policy::Scope::Channel(channel),
            &[("link_domains".to_string(), "example.net".to_string())],
        )
        .unwrap()
        .unwrap();
    let o = ask(&h, "l2").await;
    assert_eq!(o.reason, TurnReason::Answered, "{:?}", o.trace);
    assert!(o.answer.unwrap().contains("refunds-portal.example.net"));
}
