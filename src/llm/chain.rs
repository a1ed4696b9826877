//! A fallback chain of model providers, and the rule that routes easy questions to a cheaper one.
//!
//! When the model a team relies on is down, rate limited or refusing, customers should still
//! get an answer from the next configured provider; and only when every provider has failed does
//! the engine hand the conversation to a person (`LlmError::AllFailed`), with a graceful message
//! rather than a raw error. Each provider makes its own retries first, so the chain moves on
//! after any error.
//!
//! Easy questions (short, single, and clearly covered by the help docs) can go to a cheaper
//! model: [`is_easy_question`] is that rule, and `ModelTier::Cheap` asks the chain to try the
//! cheap provider first and fall back to the standard chain.
//!
//! Streaming across retries and fallbacks: the customer may already have seen part of an answer
//! when a stream is cut and another attempt starts over. `DeltaRelay` forwards only text the
//! customer has not yet seen, as long as the new attempt repeats what was shown; the returned
//! response is always the complete, authoritative text.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::config::LlmConfig;
use super::openai::OpenAiProvider;
use super::{ChatRequest, ChatResponse, Llm, LlmError, ModelTier};

/// Providers in fallback order, and optionally a cheap one for easy questions.
pub struct LlmChain {
    standard: Vec<Arc<dyn Llm>>,
    cheap: Option<Arc<dyn Llm>>,
}

impl std::fmt::Debug for LlmChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmChain")
            .field("standard", &self.standard.iter().map(|p| p.name()).collect::<Vec<_>>())
            .field("cheap", &self.cheap.as_ref().map(|p| p.name()))
            .finish()
    }
}

impl LlmChain {
    /// A chain over `standard` (tried in order) with an optional `cheap` provider.
    pub fn new(standard: Vec<Arc<dyn Llm>>, cheap: Option<Arc<dyn Llm>>) -> Self {
        LlmChain { standard, cheap }
    }

    /// Builds one [`OpenAiProvider`] per configured provider, all sharing `client`. The provider
    /// named by `cheap_provider` becomes the cheap one and leaves the standard list, unless it
    /// is the only provider.
    pub fn from_config(config: &LlmConfig, client: reqwest::Client) -> Result<LlmChain, LlmError> {
        if config.providers.is_empty() {
            return Err(LlmError::NotConfigured);
        }
        let mut standard: Vec<Arc<dyn Llm>> = Vec::new();
        let mut cheap: Option<Arc<dyn Llm>> = None;
        for provider in &config.providers {
            let built: Arc<dyn Llm> = Arc::new(OpenAiProvider::new(provider, client.clone())?);
            if config.cheap_provider.as_deref() == Some(provider.name.as_str()) {
                cheap = Some(built);
            } else {
                standard.push(built);
            }
        }
        if let Some(name) = &config.cheap_provider {
            if cheap.is_none() {
                return Err(LlmError::Connect {
                    provider: name.clone(),
                    message: "llm.cheap_provider names no provider in llm.providers".into(),
                });
            }
        }
        if standard.is_empty() {
            standard.extend(cheap.clone());
        }
        Ok(LlmChain { standard, cheap })
    }

    /// Providers to try for `tier`, in order, each once.
    fn order(&self, tier: ModelTier) -> Vec<&Arc<dyn Llm>> {
        match tier {
            ModelTier::Standard => self.standard.iter().collect(),
            ModelTier::Cheap => {
                let is_cheap = |p: &Arc<dyn Llm>| self.cheap.as_ref().is_some_and(|c| Arc::ptr_eq(c, p));
                self.cheap.iter().chain(self.standard.iter().filter(|p| !is_cheap(p))).collect()
            }
        }
    }
}

#[async_trait]
impl Llm for LlmChain {
    fn name(&self) -> String {
        let mut names: Vec<String> = self.standard.iter().map(|p| p.name()).collect();
        if let Some(cheap) = &self.cheap {
            names.push(format!("cheap: {}", cheap.name()));
        }
        format!("chain({})", names.join(", "))
    }

    async fn complete(
        &self,
        request: &ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<ChatResponse, LlmError> {
        let order = self.order(request.tier);
        let mut relay = DeltaRelay::new(deltas);
        let mut spent: u32 = 0;
        let mut last = None;
        for (index, provider) in order.iter().enumerate() {
            relay.begin_attempt();
            let (outcome, counted) = call_relayed(provider.as_ref(), request, &mut relay).await;
            match outcome {
                Ok(mut response) => {
                    let own = response.attempts.max(counted).max(1);
                    add_attempts(own - counted);
                    response.attempts = spent.saturating_add(own);
                    return Ok(response);
                }
                Err(err) => {
                    let own = counted.max(1);
                    add_attempts(own - counted);
                    spent = spent.saturating_add(own);
                    tracing::warn!(
                        provider = %provider.name(),
                        kind = error_kind(&err),
                        providers_left = order.len() - index - 1,
                        "model provider failed"
                    );
                    last = Some(err);
                }
            }
        }
        match last {
            Some(last) => Err(LlmError::AllFailed { last: Box::new(last) }),
            None => Err(LlmError::NotConfigured),
        }
    }
}

/// Calls `provider`, passing its text on through `relay` as it arrives.
async fn call_relayed(
    provider: &dyn Llm,
    request: &ChatRequest,
    relay: &mut DeltaRelay,
) -> (Result<ChatResponse, LlmError>, u32) {
    if !relay.is_listening() {
        return count_attempts(provider.complete(request, None)).await;
    }
    let (sender, mut receiver) = unbounded_channel::<String>();
    let call = count_attempts(provider.complete(request, Some(sender)));
    tokio::pin!(call);
    loop {
        tokio::select! {
            outcome = &mut call => {
                while let Ok(delta) = receiver.try_recv() {
                    relay.push(&delta);
                }
                return outcome;
            }
            Some(delta) = receiver.recv() => relay.push(&delta),
        }
    }
}

/// An easy question, for routing to the cheap model: one short question that the help docs
/// clearly cover. All of these must hold:
/// - at most 20 words (and at least one);
/// - a single part: at most one question mark, none of the phrases people use to add a second
///   request ("and also", "additionally", "another question", "one more thing", "as well as",
///   "also how", "also what"), and not a list of two or more items;
/// - strong retrieval: the top hit's semantic similarity is at least 0.6.
///
/// Anything else goes to the standard model: a wrong cheap answer costs more than the savings.
pub fn is_easy_question(question: &str, top_hit_semantic: f32) -> bool {
    const MAX_WORDS: usize = 20;
    const MIN_SEMANTIC: f32 = 0.6;
    const JOINERS: [&str; 7] =
        ["and also", "additionally", "another question", "one more thing", "as well as", "also how", "also what"];
    if top_hit_semantic.is_nan() || top_hit_semantic < MIN_SEMANTIC {
        return false;
    }
    let words = question.split_whitespace().count();
    if words == 0 || words > MAX_WORDS {
        return false;
    }
    if question.chars().filter(|c| matches!(c, '?' | '？')).count() > 1 {
        return false;
    }
    let normalised = format!(
        " {} ",
        question
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    );
    if JOINERS.iter().any(|joiner| normalised.contains(&format!(" {joiner} "))) {
        return false;
    }
    let list_items = question.lines().map(str::trim_start).filter(|line| is_list_item(line)).count();
    list_items < 2
}

/// `- x`, `* x`, `• x`, `1. x`, `2) x`.
fn is_list_item(line: &str) -> bool {
    if line.starts_with("- ") || line.starts_with("* ") || line.starts_with('•') {
        return true;
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && matches!(line[digits..].chars().next(), Some('.' | ')'))
}

/// A short, stable name for an error's kind, for logs and traces (never its text).
pub fn error_kind(err: &LlmError) -> &'static str {
    match err {
        LlmError::Connect { .. } => "connect",
        LlmError::Timeout { .. } => "timeout",
        LlmError::RateLimited { .. } => "rate_limited",
        LlmError::Server { .. } => "server",
        LlmError::Client { .. } => "client",
        LlmError::Malformed { .. } => "malformed",
        LlmError::StreamCut { .. } => "stream_cut",
        LlmError::Local(_) => "local",
        LlmError::NotConfigured => "not_configured",
        LlmError::AllFailed { .. } => "all_failed",
    }
}

tokio::task_local! {
    static ATTEMPTS: Arc<AtomicU32>;
}

/// Runs a model call and counts the attempts its providers made, failed ones included (an
/// error carries no count of its own). Counts also reach any enclosing `count_attempts`.
pub async fn count_attempts<F: Future>(call: F) -> (F::Output, u32) {
    let counter = Arc::new(AtomicU32::new(0));
    let output = ATTEMPTS.scope(counter.clone(), call).await;
    let counted = counter.load(Ordering::Relaxed);
    add_attempts(counted);
    (output, counted)
}

/// Called by a provider as it starts each attempt.
pub(crate) fn note_attempt() {
    add_attempts(1);
}

fn add_attempts(n: u32) {
    if n > 0 {
        let _ = ATTEMPTS.try_with(|counter| counter.fetch_add(n, Ordering::Relaxed));
    }
}

/// Forwards generated text to a listener across attempts that may each start over.
///
/// The listener keeps what it was sent. A new attempt's text is held back while it repeats what
/// the listener already has, and only what goes beyond is forwarded. If a new attempt says
/// something different, nothing more is forwarded (the listener cannot be told to take text
/// back); the caller's final response still holds the complete text.
pub(crate) struct DeltaRelay {
    sender: Option<UnboundedSender<String>>,
    /// Everything the listener has been sent.
    forwarded: String,
    /// Bytes of text the current attempt has produced.
    produced: usize,
    /// The current attempt agrees with `forwarded` so far.
    in_step: bool,
}

impl DeltaRelay {
    pub(crate) fn new(sender: Option<UnboundedSender<String>>) -> Self {
        DeltaRelay { sender, forwarded: String::new(), produced: 0, in_step: true }
    }

    pub(crate) fn is_listening(&self) -> bool {
        self.sender.is_some()
    }

    /// A new attempt starts from the beginning of the answer.
    pub(crate) fn begin_attempt(&mut self) {
        self.produced = 0;
        self.in_step = true;
    }

    pub(crate) fn push(&mut self, delta: &str) {
        let Some(sender) = &self.sender else {
            return;
        };
        if delta.is_empty() {
            return;
        }
        let start = self.produced;
        self.produced += delta.len();
        if !self.in_step {
            return;
        }
        let fresh = if start >= self.forwarded.len() {
            delta
        } else {
            // Still repeating: the overlap must match what the listener already has.
            let overlap = self.produced.min(self.forwarded.len()) - start;
            let seen = &self.forwarded.as_bytes()[start..start + overlap];
            if seen != &delta.as_bytes()[..overlap] {
                self.in_step = false;
                tracing::debug!("a retried answer differs from the text already streamed");
                return;
            }
            match delta.get(overlap..) {
                Some(rest) => rest,
                None => {
                    self.in_step = false;
                    return;
                }
            }
        };
        if !fresh.is_empty() {
            self.forwarded.push_str(fresh);
            let _ = sender.send(fresh.to_owned());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn easy_questions_are_short_single_and_well_supported() {
        assert!(is_easy_question("How do I reset my password?", 0.8));
        assert!(is_easy_question("reset password", 0.6));
        // Weak retrieval.
        assert!(!is_easy_question("How do I reset my password?", 0.59));
        assert!(!is_easy_question("How do I reset my password?", f32::NAN));
        // Too long.
        let long = "word ".repeat(21);
        assert!(!is_easy_question(&long, 0.9));
        assert!(is_easy_question(&"word ".repeat(20), 0.9));
        // Empty.
        assert!(!is_easy_question("   ", 0.9));
        // Multi-part.
        assert!(!is_easy_question("How do I reset my password? Can I change my email?", 0.9));
        assert!(!is_easy_question("How do I reset my password and also change my plan", 0.9));
        assert!(!is_easy_question("Reset password. Additionally, where are invoices?", 0.9));
        assert!(!is_easy_question("Where are invoices, as well as receipts?", 0.9));
        assert!(!is_easy_question("Questions:\n1. refunds\n2. invoices", 0.9));
        assert!(!is_easy_question("- refunds\n- invoices", 0.9));
        // One list-like line is not a list.
        assert!(is_easy_question("2) is the refund step clear?", 0.9));
        // "also" alone is fine, and so is a word containing "and".
        assert!(is_easy_question("Can I also pay by card?", 0.9));
        assert!(is_easy_question("Does the brand also ship abroad?", 0.9));
    }

    fn relay() -> (DeltaRelay, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = unbounded_channel();
        (DeltaRelay::new(Some(tx)), rx)
    }

    fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(d) = rx.try_recv() {
            out.push(d);
        }
        out
    }

    #[test]
    fn relay_forwards_only_unseen_text_across_attempts() {
        let (mut relay, mut rx) = relay();
        relay.begin_attempt();
        relay.push("To reset");
        relay.push(" your");
        assert_eq!(drain(&mut rx), ["To reset", " your"]);
        // The retry repeats the start in different pieces, then goes on.
        relay.begin_attempt();
        relay.push("To ");
        relay.push("reset yo");
        relay.push("ur password, ");
        relay.push("open Settings.");
        assert_eq!(drain(&mut rx), [" password, ", "open Settings."]);
        assert_eq!(relay.forwarded, "To reset your password, open Settings.");
    }

    #[test]
    fn relay_stops_when_a_retry_diverges() {
        let (mut relay, mut rx) = relay();
        relay.begin_attempt();
        relay.push("Héllo wor");
        relay.begin_attempt();
        relay.push("Héllo");
        relay.push(" there, friend");
        relay.push(" more");
        assert_eq!(drain(&mut rx), ["Héllo wor"]);
    }

    #[test]
    fn relay_without_listener_is_silent() {
        let mut relay = DeltaRelay::new(None);
        relay.push("anything");
        assert!(!relay.is_listening());
    }

    #[test]
    fn error_kinds_are_stable() {
        let err = LlmError::StreamCut { provider: "p".into() };
        assert_eq!(error_kind(&err), "stream_cut");
        assert_eq!(error_kind(&LlmError::AllFailed { last: Box::new(err) }), "all_failed");
    }

    struct Fixed {
        name: &'static str,
        fail: bool,
    }

    #[async_trait]
    impl Llm for Fixed {
        fn name(&self) -> String {
            self.name.into()
        }
        async fn complete(
            &self,
            _request: &ChatRequest,
            deltas: Option<UnboundedSender<String>>,
        ) -> Result<ChatResponse, LlmError> {
            note_attempt();
            note_attempt();
            if self.fail {
                return Err(LlmError::Server { provider: self.name.into(), status: 503, excerpt: String::new() });
            }
            if let Some(d) = deltas {
                let _ = d.send("hi".into());
            }
            Ok(ChatResponse {
                text: "hi".into(),
                model: self.name.into(),
                tokens_in: 1,
                tokens_out: 1,
                finish: super::super::FinishReason::Stop,
                attempts: 2,
                cost_usd: 0.0,
            })
        }
    }

    fn request(tier: ModelTier) -> ChatRequest {
        ChatRequest { messages: vec![super::super::ChatMessage::user("q")], temperature: 0.1, max_tokens: 10, tier }
    }

    #[tokio::test]
    async fn chain_sums_attempts_and_routes_cheap_first() {
        let down: Arc<dyn Llm> = Arc::new(Fixed { name: "down", fail: true });
        let up: Arc<dyn Llm> = Arc::new(Fixed { name: "up", fail: false });
        let cheap: Arc<dyn Llm> = Arc::new(Fixed { name: "cheap", fail: false });
        let chain = LlmChain::new(vec![down.clone(), up], Some(cheap));
        let (tx, mut rx) = unbounded_channel();
        let (outcome, counted) = count_attempts(chain.complete(&request(ModelTier::Standard), Some(tx))).await;
        let response = outcome.unwrap();
        assert_eq!((response.model.as_str(), response.attempts, counted), ("up", 4, 4));
        assert_eq!(drain(&mut rx), ["hi"]);
        let response = chain.complete(&request(ModelTier::Cheap), None).await.unwrap();
        assert_eq!(response.model, "cheap");

        let all_down = LlmChain::new(vec![down.clone(), down], None);
        let (outcome, counted) = count_attempts(all_down.complete(&request(ModelTier::Cheap), None)).await;
        assert!(matches!(outcome, Err(LlmError::AllFailed { .. })));
        assert_eq!(counted, 4);
        let empty = LlmChain::new(Vec::new(), None);
        assert_eq!(empty.complete(&request(ModelTier::Standard), None).await, Err(LlmError::NotConfigured));
    }
}
