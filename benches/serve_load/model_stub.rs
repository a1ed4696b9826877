//! The scripted model: a loopback OpenAI-compatible chat-completions endpoint that answers
//! deterministically from the sources frontdesk's grounding prompt gives it — the first
//! sentence of source [1], cited as `[1]`. It costs the server one HTTP call per answer, so the
//! measurements are about `frontdesk serve`, not about a model; the answer still goes through
//! frontdesk's checks (citations, support of each sentence, the confidence threshold).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct ModelStub {
    addr: SocketAddr,
    calls: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Drop for ModelStub {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ModelStub {
    pub async fn start() -> anyhow::Result<ModelStub> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let calls = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let app = Router::new().route("/v1/chat/completions", post(complete)).with_state(Arc::clone(&calls));
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await;
        });
        Ok(ModelStub { addr, calls, stop })
    }

    /// The provider's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// The first sentence of source `[1]` in the prompt, cited; the question itself when the prompt
/// has no sources.
pub fn scripted_answer(prompt: &str) -> String {
    let sources = prompt.split_once("\nSources:\n").map_or("", |(_, rest)| rest);
    let mut lines = sources.lines().skip_while(|l| !l.starts_with("[1] "));
    let body = lines.nth(1).unwrap_or("").trim();
    let sentence = match body.find(". ") {
        Some(end) => &body[..=end],
        None => body,
    };
    if sentence.is_empty() {
        let question = prompt.rsplit_once("Customer's question:").map_or(prompt, |(_, q)| q);
        return question.trim().to_string();
    }
    format!("{} [1]", sentence.trim())
}

async fn complete(State(calls): State<Arc<AtomicU64>>, Json(request): Json<Value>) -> Json<Value> {
    calls.fetch_add(1, Ordering::Relaxed);
    let prompt: String = request["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["content"].as_str()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default();
    let text = scripted_answer(&prompt);
    let prompt_tokens = prompt.split_whitespace().count();
    let completion_tokens = text.split_whitespace().count();
    Json(json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request["model"].as_str().unwrap_or("bench-scripted"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens},
    }))
}
