//! The OpenAI-compatible provider and the fallback chain against a scripted server: answers,
//! streaming, cut streams, rate limits, server and client errors, timeouts, refused
//! connections, fallbacks, cheap-tier routing, and keeping the API key secret. Each case checks
//! both the outcome a customer-facing caller sees and how many attempts were made.
//!
//! Only the timeout case relies on a short limit, and it is against a server that never answers;
//! every other case gives requests ample time, so a slow machine cannot change the outcome.

#![allow(clippy::unwrap_used)]

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk::config::{LlmConfig, ProviderConfig};
use frontdesk::llm::chain::{count_attempts, LlmChain};
use frontdesk::llm::openai::{build_client, OpenAiProvider};
use frontdesk::llm::{ChatMessage, ChatRequest, ChatResponse, FinishReason, Llm, LlmError, ModelTier};
use secrecy::SecretString;
use support::scripted_llm::{
    refused_base_url, sse_delta, sse_finish, sse_usage, Reply, ScriptedServer, StreamEnd, SSE_DONE,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const KEY: &str = "sk-test-7f3c9a1e5b2d4c6f8a0e";
const ANSWER: &str = "Open Settings > Security and choose Reset password [1].";

fn provider_config(name: &str, base_url: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        base_url: base_url.into(),
        model: format!("model-{name}"),
        api_key: Some(SecretString::from(KEY.to_owned())),
        api_key_env: None,
        connect_timeout_ms: 2_000,
        timeout_ms: 10_000,
        max_retries: 2,
        backoff_base_ms: 10,
        backoff_max_ms: 40,
        stream: false,
        price_in_per_mtok: 0.0,
        price_out_per_mtok: 0.0,
    }
}

fn provider(config: &ProviderConfig) -> OpenAiProvider {
    OpenAiProvider::new(config, build_client()).unwrap()
}

fn question(tier: ModelTier) -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::system("Answer only from the sources and cite them as [n]."),
            ChatMessage::user("How do I reset my password?"),
        ],
        temperature: 0.1,
        max_tokens: 300,
        tier,
    }
}

/// Runs a call and returns its outcome with the number of attempts made, failures included.
async fn run(llm: &dyn Llm, tier: ModelTier, deltas: bool) -> (Result<ChatResponse, LlmError>, u32, Vec<String>) {
    let (sender, mut receiver) = unbounded_channel();
    let request = question(tier);
    let (outcome, attempts) = count_attempts(llm.complete(&request, deltas.then_some(sender))).await;
    (outcome, attempts, drain(&mut receiver))
}

fn drain(receiver: &mut UnboundedReceiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(delta) = receiver.try_recv() {
        out.push(delta);
    }
    out
}

fn full_stream() -> Vec<String> {
    vec![
        sse_delta("Open Settings > Security"),
        sse_delta(" and choose Reset password"),
        sse_delta(" [1]."),
        sse_finish("stop"),
        sse_usage(42, 14),
        SSE_DONE.into(),
    ]
}

// 1.
#[tokio::test]
async fn answers_with_text_usage_and_cost() {
    let server = ScriptedServer::start(vec![Reply::answer(ANSWER, 1200, 30)]).await;
    let mut config = provider_config("acme", &server.base_url());
    config.price_in_per_mtok = 2.5;
    config.price_out_per_mtok = 10.0;
    let llm = provider(&config);

    let (outcome, attempts, deltas) = run(&llm, ModelTier::Standard, true).await;
    let response = outcome.unwrap();
    assert_eq!(response.text, ANSWER);
    assert_eq!(response.model, "acme/model-acme");
    assert_eq!((response.tokens_in, response.tokens_out), (1200, 30));
    assert_eq!(response.finish, FinishReason::Stop);
    assert!((response.cost_usd - (1200.0 * 2.5 / 1e6 + 30.0 * 10.0 / 1e6)).abs() < 1e-12);
    assert_eq!((response.attempts, attempts, server.count()), (1, 1, 1));
    // Without streaming, the whole text still reaches the listener, once.
    assert_eq!(deltas, [ANSWER]);

    let sent = &server.requests()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let body = sent.json();
    assert_eq!(body["model"], "model-acme");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "How do I reset my password?");
    assert!((body["temperature"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert_eq!(body["max_tokens"], 300);
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
}

#[tokio::test]
async fn sends_no_authorization_without_a_key() {
    let server = ScriptedServer::start(vec![Reply::answer(ANSWER, 10, 10)]).await;
    let mut config = provider_config("local", &server.base_url());
    config.api_key = None;
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    assert_eq!(outcome.unwrap().text, ANSWER);
    assert_eq!(attempts, 1);
    assert_eq!(server.requests()[0].header("authorization"), None);
}

/// The variable `reads_the_key_from_the_named_environment_variable` names as the key's source.
const KEY_VAR: &str = "FRONTDESK_TEST_LLM_OPENAI_KEY";

#[test]
fn reads_the_key_from_the_named_environment_variable() {
    if std::env::var_os(KEY_VAR).is_none() {
        // The key must be in the environment, and this process is shared with the other tests:
        // a FRONTDESK_ variable set here would be a configuration override for each of them that
        // loads the configuration or starts frontdesk. So this test runs again, alone, in a child
        // process of this binary that has the variable from its start.
        let name = support::test_name(module_path!(), "reads_the_key_from_the_named_environment_variable");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--test-threads=1"])
            .env(KEY_VAR, KEY)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let log = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the child run failed: {}\n{log}", out.status);
        assert!(stdout.contains("1 passed"), "the child run did not run {name}:\n{log}");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let server = ScriptedServer::start(vec![Reply::answer(ANSWER, 10, 10)]).await;
        let mut config = provider_config("env", &server.base_url());
        config.api_key = None;
        config.api_key_env = Some(KEY_VAR.into());
        let (outcome, _, _) = run(&provider(&config), ModelTier::Standard, false).await;
        assert!(outcome.is_ok());
        assert_eq!(server.requests()[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));

        config.api_key_env = Some("FRONTDESK_TEST_LLM_OPENAI_KEY_UNSET".into());
        let err = OpenAiProvider::new(&config, build_client()).unwrap_err();
        assert!(err.to_string().contains("FRONTDESK_TEST_LLM_OPENAI_KEY_UNSET"), "{err}");
    });
}

// 2.
#[tokio::test]
async fn streams_deltas_in_order() {
    let content = |text: &str| serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]}).to_string();
    let split = format!("data: {}\r\n\r\n", content(" and choose Reset password"));
    let (split_a, split_b) = split.split_at(25);
    let pieces = vec![
        ": connected\n\n".to_string(),
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        ),
        format!("data: {}\r\n\r\n", content("Open Settings > Security")),
        split_a.to_string(),
        split_b.to_string(),
        "data:\n\n: keep-alive\r\n\r\n".to_string(),
        sse_delta(" [1]."),
        sse_finish("stop"),
        sse_usage(42, 14),
        SSE_DONE.to_string(),
    ];
    let server = ScriptedServer::start(vec![Reply::stream(pieces, StreamEnd::Complete)]).await;
    let mut config = provider_config("acme", &server.base_url());
    config.stream = true;

    let (outcome, attempts, deltas) = run(&provider(&config), ModelTier::Standard, true).await;
    let response = outcome.unwrap();
    assert_eq!(deltas, ["Open Settings > Security", " and choose Reset password", " [1]."]);
    assert_eq!(deltas.concat(), response.text);
    assert_eq!(response.text, ANSWER);
    assert_eq!((response.tokens_in, response.tokens_out), (42, 14));
    assert_eq!(response.finish, FinishReason::Stop);
    assert_eq!((response.attempts, attempts, server.count()), (1, 1, 1));
    let body = server.requests()[0].json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn stream_without_usage_or_done_but_with_a_finish_reason_is_complete() {
    let pieces = vec![sse_delta("abcdefgh"), sse_finish("length")];
    let server = ScriptedServer::start(vec![Reply::stream(pieces, StreamEnd::CutClose)]).await;
    let mut config = provider_config("acme", &server.base_url());
    config.stream = true;
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    let response = outcome.unwrap();
    assert_eq!(response.text, "abcdefgh");
    assert_eq!(response.finish, FinishReason::Length);
    // No usage reported: estimated at four characters a token.
    assert_eq!(response.tokens_out, 2);
    assert!(response.tokens_in > 0);
    assert_eq!((attempts, server.count()), (1, 1));
}

#[tokio::test]
async fn a_server_that_ignores_stream_still_answers() {
    let server = ScriptedServer::start(vec![Reply::answer(ANSWER, 5, 5)]).await;
    let mut config = provider_config("acme", &server.base_url());
    config.stream = true;
    let (outcome, attempts, deltas) = run(&provider(&config), ModelTier::Standard, true).await;
    assert_eq!(outcome.unwrap().text, ANSWER);
    assert_eq!(deltas, [ANSWER]);
    assert_eq!(attempts, 1);
}

// 3.
#[tokio::test]
async fn a_cut_stream_is_retried_and_its_partial_text_dropped() {
    let partial = vec![sse_delta("Open Settings > Security"), sse_delta(" and ch")];
    let server = ScriptedServer::start(vec![
        Reply::stream(partial, StreamEnd::CutChunked),
        Reply::stream(full_stream(), StreamEnd::Complete),
    ])
    .await;
    let mut config = provider_config("acme", &server.base_url());
    config.stream = true;

    let (outcome, attempts, deltas) = run(&provider(&config), ModelTier::Standard, true).await;
    let response = outcome.unwrap();
    assert_eq!(response.text, ANSWER);
    assert_eq!((response.attempts, attempts, server.count()), (2, 2, 2));
    // The listener saw the start once, then only what the retry added.
    assert_eq!(deltas.concat(), ANSWER);
}

#[tokio::test]
async fn a_cut_stream_without_retries_is_stream_cut() {
    for end in [StreamEnd::CutChunked, StreamEnd::CutClose] {
        let partial = vec![sse_delta("Open Settings"), sse_delta(" > Secu")];
        let server =
            ScriptedServer::start_with_fallback(vec![Reply::stream(partial, end)], Reply::answer(ANSWER, 1, 1)).await;
        let mut config = provider_config("acme", &server.base_url());
        config.stream = true;
        config.max_retries = 0;
        let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, true).await;
        assert_eq!(outcome, Err(LlmError::StreamCut { provider: "acme/model-acme".into() }), "{end:?}");
        assert_eq!((attempts, server.count()), (1, 1));
    }
}

// 4. Real time, not tokio's paused clock: a paused clock jumps to the next timer whenever the
// runtime waits on a socket, which would fire the attempt's timeout while the server answers.
#[tokio::test]
async fn rate_limited_waits_for_retry_after() {
    let server = ScriptedServer::start(vec![
        Reply::json(429, r#"{"error":"slow down"}"#).with_header("Retry-After", "1"),
        Reply::answer(ANSWER, 10, 10),
    ])
    .await;
    let config = provider_config("acme", &server.base_url());
    let started = Instant::now();
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    assert_eq!(outcome.unwrap().text, ANSWER);
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!((attempts, server.count()), (2, 2));
}

#[tokio::test]
async fn rate_limited_past_the_time_budget_gives_up_at_once() {
    let server = ScriptedServer::start_with_fallback(
        vec![Reply::json(429, "{}").with_header("Retry-After", "30")],
        Reply::answer(ANSWER, 1, 1),
    )
    .await;
    // Budget: 2 attempts of 5 s and one backoff, well under 30 s.
    let mut config = provider_config("acme", &server.base_url());
    config.timeout_ms = 5_000;
    config.max_retries = 1;
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    assert_eq!(
        outcome,
        Err(LlmError::RateLimited { provider: "acme/model-acme".into(), retry_after: Some(Duration::from_secs(30)) })
    );
    assert_eq!((attempts, server.count()), (1, 1));
}

#[tokio::test]
async fn rate_limited_with_an_http_date_and_over_a_minute_gives_up() {
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(90);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = later.format(format).unwrap();
    let server = ScriptedServer::start_with_fallback(
        vec![Reply::json(429, "{}").with_header("Retry-After", &date)],
        Reply::answer(ANSWER, 1, 1),
    )
    .await;
    let mut config = provider_config("acme", &server.base_url());
    config.timeout_ms = 120_000;
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    match outcome {
        Err(LlmError::RateLimited { retry_after: Some(wait), .. }) => {
            assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90), "{wait:?}")
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert_eq!((attempts, server.count()), (1, 1));
}

// 5.
#[tokio::test]
async fn a_server_error_is_retried() {
    let server =
        ScriptedServer::start(vec![Reply::json(500, r#"{"error":"internal"}"#), Reply::answer(ANSWER, 10, 10)]).await;
    let config = provider_config("acme", &server.base_url());
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    let response = outcome.unwrap();
    assert_eq!(response.text, ANSWER);
    assert_eq!((response.attempts, attempts, server.count()), (2, 2, 2));
}

#[tokio::test]
async fn server_errors_on_every_attempt_end_in_server() {
    let server = ScriptedServer::start_with_fallback(Vec::new(), Reply::json(503, "overloaded")).await;
    let config = provider_config("acme", &server.base_url());
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    assert_eq!(
        outcome,
        Err(LlmError::Server { provider: "acme/model-acme".into(), status: 503, excerpt: "overloaded".into() })
    );
    assert_eq!((attempts, server.count()), (3, 3));
}

// 6.
#[tokio::test]
async fn a_silent_server_times_out_after_every_attempt() {
    let server = ScriptedServer::start_with_fallback(Vec::new(), Reply::Silent(Duration::from_secs(5))).await;
    let mut config = provider_config("acme", &server.base_url());
    config.timeout_ms = 200;
    config.stream = true;
    let started = Instant::now();
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, true).await;
    assert!(matches!(outcome, Err(LlmError::Timeout { .. })), "{outcome:?}");
    assert!(started.elapsed() >= Duration::from_millis(600), "{:?}", started.elapsed());
    assert_eq!((attempts, server.count()), (3, 3));
}

#[tokio::test]
async fn a_stream_that_stalls_times_out() {
    let stalled = Reply::Stream {
        pieces: vec![sse_delta("Open"), sse_delta(" Settings")],
        gap: Duration::from_secs(5),
        end: StreamEnd::Complete,
    };
    let server = ScriptedServer::start_with_fallback(Vec::new(), stalled).await;
    let mut config = provider_config("acme", &server.base_url());
    config.timeout_ms = 200;
    config.max_retries = 1;
    config.stream = true;
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    assert!(matches!(outcome, Err(LlmError::Timeout { .. })), "{outcome:?}");
    assert_eq!((attempts, server.count()), (2, 2));
}

// 7.
#[tokio::test]
async fn malformed_bodies_are_not_retried() {
    let streamed_garbage = Reply::stream(vec!["data: {not json\n\n".to_string()], StreamEnd::Complete);
    let cases = [
        (Reply::json(200, r#"{"choices": ["#), false),
        (Reply::json(200, r#"{"choices": []}"#), false),
        (Reply::json(200, r#"{"choices": [{"message": {"role": "assistant"}}]}"#), false),
        (streamed_garbage, true),
    ];
    for (reply, stream) in cases {
        let server = ScriptedServer::start_with_fallback(vec![reply], Reply::answer(ANSWER, 1, 1)).await;
        let mut config = provider_config("acme", &server.base_url());
        config.stream = stream;
        let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
        assert!(matches!(outcome, Err(LlmError::Malformed { .. })), "{outcome:?}");
        assert_eq!((attempts, server.count()), (1, 1));
    }
}

// 8.
#[tokio::test]
async fn a_client_error_is_not_retried() {
    let server = ScriptedServer::start_with_fallback(
        vec![Reply::json(400, r#"{"error":{"message":"max_tokens is too large"}}"#)],
        Reply::answer(ANSWER, 1, 1),
    )
    .await;
    let config = provider_config("acme", &server.base_url());
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    match &outcome {
        Err(err @ LlmError::Client { status: 400, excerpt, .. }) => {
            assert!(excerpt.contains("max_tokens is too large"));
            assert!(!err.retryable());
        }
        other => panic!("expected a client error, got {other:?}"),
    }
    assert_eq!((attempts, server.count()), (1, 1));
}

#[tokio::test]
async fn long_error_bodies_are_cut_to_an_excerpt() {
    let server = ScriptedServer::start(vec![Reply::json(404, "n".repeat(5_000))]).await;
    let config = provider_config("acme", &server.base_url());
    let (outcome, _, _) = run(&provider(&config), ModelTier::Standard, false).await;
    match outcome {
        Err(LlmError::Client { status: 404, excerpt, .. }) => {
            assert!(excerpt.chars().count() <= 200, "{}", excerpt.len())
        }
        other => panic!("expected a client error, got {other:?}"),
    }
}

// 9.
#[tokio::test]
async fn a_refused_connection_is_retried_then_connect() {
    let config = provider_config("acme", &refused_base_url().await);
    let (outcome, attempts, _) = run(&provider(&config), ModelTier::Standard, false).await;
    assert!(matches!(outcome, Err(LlmError::Connect { .. })), "{outcome:?}");
    assert_eq!(attempts, 3);
}

// 10.
#[tokio::test]
async fn the_chain_falls_back_to_the_next_provider() {
    let first = ScriptedServer::start_with_fallback(Vec::new(), Reply::json(500, "down")).await;
    let second = ScriptedServer::start(vec![Reply::answer(ANSWER, 10, 10)]).await;
    let chain = LlmChain::new(
        vec![
            Arc::new(provider(&provider_config("first", &first.base_url()))),
            Arc::new(provider(&provider_config("second", &second.base_url()))),
        ],
        None,
    );
    let (outcome, attempts, _) = run(&chain, ModelTier::Standard, false).await;
    let response = outcome.unwrap();
    assert_eq!(response.text, ANSWER);
    assert_eq!(response.model, "second/model-second");
    assert_eq!((first.count(), second.count()), (3, 1));
    assert_eq!((response.attempts, attempts), (4, 4));
}

#[tokio::test]
async fn the_chain_reports_all_failed_when_every_provider_is_down() {
    let first = ScriptedServer::start_with_fallback(Vec::new(), Reply::json(500, "down")).await;
    let second = ScriptedServer::start_with_fallback(Vec::new(), Reply::json(401, "bad key")).await;
    let chain = LlmChain::new(
        vec![
            Arc::new(provider(&provider_config("first", &first.base_url()))),
            Arc::new(provider(&provider_config("second", &second.base_url()))),
        ],
        None,
    );
    let (outcome, attempts, _) = run(&chain, ModelTier::Standard, false).await;
    match outcome {
        Err(LlmError::AllFailed { last }) => {
            assert!(matches!(*last, LlmError::Client { status: 401, .. }), "{last:?}")
        }
        other => panic!("expected AllFailed, got {other:?}"),
    }
    assert_eq!((first.count(), second.count(), attempts), (3, 1, 4));
}

#[tokio::test]
async fn the_chain_keeps_a_stream_coherent_across_a_fallback() {
    let first = ScriptedServer::start(vec![Reply::stream(
        vec![sse_delta("Open Settings > Security"), sse_delta(" and")],
        StreamEnd::CutChunked,
    )])
    .await;
    let second = ScriptedServer::start(vec![Reply::stream(full_stream(), StreamEnd::Complete)]).await;
    let mut first_config = provider_config("first", &first.base_url());
    first_config.stream = true;
    first_config.max_retries = 0;
    let mut second_config = provider_config("second", &second.base_url());
    second_config.stream = true;
    let chain = LlmChain::new(vec![Arc::new(provider(&first_config)), Arc::new(provider(&second_config))], None);
    let (outcome, attempts, deltas) = run(&chain, ModelTier::Standard, true).await;
    let response = outcome.unwrap();
    assert_eq!(response.text, ANSWER);
    assert_eq!(deltas.concat(), ANSWER);
    assert_eq!((response.attempts, attempts), (2, 2));
}

fn chain_config(providers: Vec<ProviderConfig>, cheap: Option<&str>) -> LlmConfig {
    LlmConfig { providers, cheap_provider: cheap.map(str::to_owned), ..LlmConfig::default() }
}

#[tokio::test]
async fn the_cheap_tier_goes_to_the_cheap_provider_first() {
    let main = ScriptedServer::start_with_fallback(Vec::new(), Reply::answer("main", 1, 1)).await;
    let backup = ScriptedServer::start_with_fallback(Vec::new(), Reply::json(500, "down")).await;
    let fast = ScriptedServer::start(vec![Reply::answer("fast", 1, 1), Reply::json(503, "busy")]).await;
    let mut fast_config = provider_config("fast", &fast.base_url());
    fast_config.max_retries = 0;
    let config = chain_config(
        vec![provider_config("main", &main.base_url()), provider_config("backup", &backup.base_url()), fast_config],
        Some("fast"),
    );
    let chain = LlmChain::from_config(&config, build_client()).unwrap();

    // Easy question: the cheap provider answers.
    let (outcome, attempts, _) = run(&chain, ModelTier::Cheap, false).await;
    let response = outcome.unwrap();
    assert_eq!((response.model.as_str(), response.text.as_str()), ("fast/model-fast", "fast"));
    assert_eq!((attempts, main.count(), fast.count()), (1, 0, 1));

    // Cheap provider down: the standard chain answers.
    let (outcome, attempts, _) = run(&chain, ModelTier::Cheap, false).await;
    assert_eq!(outcome.unwrap().model, "main/model-main");
    assert_eq!((attempts, main.count(), fast.count()), (2, 1, 2));

    // Standard questions never reach the cheap provider.
    let (outcome, _, _) = run(&chain, ModelTier::Standard, false).await;
    assert_eq!(outcome.unwrap().model, "main/model-main");
    assert_eq!(fast.count(), 2);
}

#[tokio::test]
async fn the_cheap_provider_leaves_the_standard_chain_unless_it_is_alone() {
    let main = ScriptedServer::start_with_fallback(Vec::new(), Reply::json(500, "down")).await;
    let fast = ScriptedServer::start_with_fallback(Vec::new(), Reply::json(500, "down")).await;
    let mut main_config = provider_config("main", &main.base_url());
    main_config.max_retries = 0;
    let mut fast_config = provider_config("fast", &fast.base_url());
    fast_config.max_retries = 0;

    let both = chain_config(vec![main_config.clone(), fast_config.clone()], Some("fast"));
    let chain = LlmChain::from_config(&both, build_client()).unwrap();
    let (outcome, attempts, _) = run(&chain, ModelTier::Standard, false).await;
    assert!(matches!(outcome, Err(LlmError::AllFailed { .. })), "{outcome:?}");
    assert_eq!((attempts, main.count(), fast.count()), (1, 1, 0));

    let alone = chain_config(vec![fast_config], Some("fast"));
    let chain = LlmChain::from_config(&alone, build_client()).unwrap();
    let (outcome, attempts, _) = run(&chain, ModelTier::Standard, false).await;
    assert!(matches!(outcome, Err(LlmError::AllFailed { .. })));
    assert_eq!((attempts, fast.count()), (1, 1));
    // Cheap tier: the same provider is not asked twice.
    let (_, attempts, _) = run(&chain, ModelTier::Cheap, false).await;
    assert_eq!((attempts, fast.count()), (1, 2));

    let unknown = chain_config(vec![main_config], Some("nope"));
    assert!(LlmChain::from_config(&unknown, build_client()).is_err());
    assert_eq!(
        LlmChain::from_config(&chain_config(Vec::new(), None), build_client()).unwrap_err(),
        LlmError::NotConfigured
    );
}

// 11.
#[tokio::test]
async fn the_key_never_shows_in_debug_or_errors() {
    let config = provider_config("acme", "http://127.0.0.1:9/v1");
    let llm = provider(&config);
    let debug = format!("{llm:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("[REDACTED]"), "{debug}");
    let chain = LlmChain::new(vec![Arc::new(provider(&config))], None);
    assert!(!format!("{chain:?}").contains(KEY));

    // Servers that echo the key back in their error bodies.
    let echo = format!(r#"{{"error":"invalid key {KEY}"}}"#);
    let replies = [
        Reply::json(400, echo.clone()),
        Reply::json(500, echo.clone()),
        Reply::json(200, format!(r#"{{"choices": "{KEY}"}}"#)),
        Reply::json(429, echo),
    ];
    let mut errors = Vec::new();
    for reply in replies {
        let server = ScriptedServer::start_with_fallback(Vec::new(), reply).await;
        let mut config = provider_config("acme", &server.base_url());
        config.max_retries = 0;
        let chain = LlmChain::new(vec![Arc::new(provider(&config))], None);
        let (outcome, _, _) = run(&chain, ModelTier::Standard, false).await;
        errors.push(outcome.unwrap_err());
    }
    let mut refused = provider_config("acme", &refused_base_url().await);
    refused.max_retries = 0;
    errors.push(run(&provider(&refused), ModelTier::Standard, false).await.0.unwrap_err());
    let silent = ScriptedServer::start_with_fallback(Vec::new(), Reply::Silent(Duration::from_secs(5))).await;
    let mut slow = provider_config("acme", &silent.base_url());
    slow.max_retries = 0;
    slow.timeout_ms = 100;
    errors.push(run(&provider(&slow), ModelTier::Standard, false).await.0.unwrap_err());

    assert_eq!(errors.len(), 6);
    for err in &errors {
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(KEY), "{shown}");
    }
}
