//! The conversation engine: one pipeline for every channel.
//!
//! Each inbound message goes through: policy → rate limit → conversation state → understand
//! (explicit request for a person, attempts to steer the bot, condensing a follow-up) →
//! retrieve → retrieval-confidence gate → generate → verify → decide → outbound messages.
//! The outcome is a decision (`answer`, `escalate`, `ignore`), a reason code, a confidence in
//! [0, 1], the messages to deliver, and a trace.
//!
//! - `intent`: explicit requests for a person and injection attempts.
//! - `condense`: follow-ups made standalone.
//! - `confidence`: the score and its signals.
//! - `verify`: citations and sentence support.
//! - `turn`: the pipeline itself.
//! - `replies`: what the customer and the agents are told.

pub mod condense;
pub mod confidence;
pub mod intent;
pub mod replies;
pub mod turn;
pub mod verify;

use crate::config::{AnsweringConfig, Config, GeneratorKind};
use crate::conversation::ConversationStore;
use crate::generate::{Extractive, Generator, LlmGenerator};
use crate::knowledge::KnowledgeBase;
use crate::llm::chain::LlmChain;
use crate::llm::local::{LocalLlm, LocalLlmOptions};
use crate::llm::{Llm, LlmError};
use crate::policy::PolicyStore;
use crate::prompts::{PromptError, Prompts};
use crate::ratelimit::RateLimits;
use crate::store::StoreError;
use crate::trace::TraceStore;
use confidence::ConfidenceModel;
use std::sync::Arc;

pub use turn::{TurnOutcome, TurnReason};

/// The engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Llm(#[from] LlmError),
}

/// Everything a turn needs. Cheap to share behind an `Arc`.
pub struct Engine {
    pub kb: Arc<KnowledgeBase>,
    pub policies: PolicyStore,
    pub conversations: ConversationStore,
    pub traces: TraceStore,
    pub limits: RateLimits,
    pub generator: Arc<dyn Generator>,
    /// Used to condense follow-ups when configured; `None` means the deterministic method.
    pub condenser: Option<Arc<dyn Llm>>,
    pub prompts: Arc<Prompts>,
    pub confidence: ConfidenceModel,
    pub answering: AnsweringConfig,
    /// How the engine searches (hybrid in production; the eval harness compares modes).
    pub search_mode: crate::retrieval::SearchMode,
}

impl Engine {
    /// Builds an engine from the configuration around an opened knowledge base.
    pub fn build(
        config: &Config,
        kb: Arc<KnowledgeBase>,
        generator_override: Option<GeneratorKind>,
    ) -> Result<Engine, EngineError> {
        let prompts = Arc::new(Prompts::load(config.answering.prompts_dir.as_deref())?);
        let kind = generator_override.unwrap_or(config.llm.generator);
        let (generator, llm): (Arc<dyn Generator>, Option<Arc<dyn Llm>>) = match kind {
            GeneratorKind::Extractive => (Arc::new(Extractive::new(kb.embedder.clone())), None),
            GeneratorKind::Openai => {
                let chain: Arc<dyn Llm> =
                    Arc::new(LlmChain::from_config(&config.llm, crate::llm::openai::build_client())?);
                let streams = config.llm.providers.first().is_some_and(|p| p.stream);
                let g = LlmGenerator::new(
                    chain.clone(),
                    prompts.clone(),
                    config.llm.temperature,
                    config.llm.max_tokens,
                    streams,
                );
                (Arc::new(g), Some(chain))
            }
            GeneratorKind::Local => {
                let local: Arc<dyn Llm> =
                    Arc::new(LocalLlm::load_from_models_dir(&config.models_dir, LocalLlmOptions::default())?);
                let g = LlmGenerator::new(
                    local.clone(),
                    prompts.clone(),
                    config.llm.temperature,
                    config.llm.max_tokens,
                    true,
                );
                (Arc::new(g), Some(local))
            }
        };
        let condenser = if config.llm.condense_with_llm { llm } else { None };
        Self::with_parts(config, kb, generator, condenser, prompts)
    }

    /// Builds an engine with a given generator (tests, the eval harness).
    pub fn with_parts(
        config: &Config,
        kb: Arc<KnowledgeBase>,
        generator: Arc<dyn Generator>,
        condenser: Option<Arc<dyn Llm>>,
        prompts: Arc<Prompts>,
    ) -> Result<Engine, EngineError> {
        let store = kb.store.clone();
        Ok(Engine {
            policies: PolicyStore::open(&store)?,
            conversations: ConversationStore::open(&store)?,
            traces: TraceStore::open(&store)?,
            limits: RateLimits::new(&config.rate_limits),
            generator,
            condenser,
            prompts,
            confidence: ConfidenceModel::default(),
            answering: config.answering.clone(),
            search_mode: crate::retrieval::SearchMode::Hybrid,
            kb,
        })
    }
}

/// The engine is what the durable inbox's worker runs for each message: every outcome, errors
/// included, becomes the messages to deliver (a failure is a handoff, never silence).
#[async_trait::async_trait]
impl crate::inbox::TurnHandler for Engine {
    async fn handle(&self, message: &crate::channel::Inbound) -> Vec<crate::channel::Outbound> {
        Engine::handle(self, message).await.outbound
    }

    /// Streams the answer to `progress` as it is written: the whole text so far, at most once per
    /// [`DRAFT_EVERY`], so a channel that edits a message to show it stays within its platform's
    /// rate limits however fast the model writes.
    async fn handle_with_progress(
        &self,
        message: &crate::channel::Inbound,
        progress: &dyn crate::inbox::TurnProgress,
    ) -> Vec<crate::channel::Outbound> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let turn = Engine::handle_streaming(self, message, Some(tx));
        let forward = forward_drafts(rx, progress, message, DRAFT_EVERY);
        let (outcome, ()) = tokio::join!(turn, forward);
        outcome.outbound
    }
}

/// The shortest interval between two drafts of a streaming answer shown to a channel.
pub const DRAFT_EVERY: std::time::Duration = std::time::Duration::from_millis(1000);

/// Passes the text streamed so far to `progress`: the first piece at once, then at most once per
/// `every`, until the stream ends. Whatever arrives after the last draft is left to the final
/// reply, which replaces the draft anyway.
async fn forward_drafts(
    mut deltas: tokio::sync::mpsc::UnboundedReceiver<String>,
    progress: &dyn crate::inbox::TurnProgress,
    message: &crate::channel::Inbound,
    every: std::time::Duration,
) {
    let mut text = String::new();
    let mut shown_len = 0;
    let mut last_shown: Option<tokio::time::Instant> = None;
    loop {
        let pending = text.trim().len() > shown_len;
        let next = match last_shown {
            Some(at) if pending => tokio::select! {
                delta = deltas.recv() => Some(delta),
                _ = tokio::time::sleep_until(at + every) => None,
            },
            _ => Some(deltas.recv().await),
        };
        match next {
            Some(Some(delta)) => text.push_str(&delta),
            Some(None) => return,
            None => {}
        }
        let due = last_shown.is_none_or(|at| at.elapsed() >= every);
        let shown = text.trim();
        if due && shown.len() > shown_len {
            progress.draft(message, shown).await;
            shown_len = shown.len();
            last_shown = Some(tokio::time::Instant::now());
        }
    }
}

#[cfg(test)]
mod draft_tests {
    use super::*;
    use crate::channel::{Author, AuthorId, ChannelId, ConversationKey, EventId, Inbound, Source};
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(tokio::time::Instant, String)>>);

    #[async_trait::async_trait]
    impl crate::inbox::TurnProgress for Recorder {
        async fn draft(&self, _message: &Inbound, text: &str) {
            self.0.lock().unwrap().push((tokio::time::Instant::now(), text.to_string()));
        }
    }

    fn inbound() -> Inbound {
        Inbound {
            id: EventId::new("e1").unwrap(),
            source: Source::Slack,
            workspace: "T1".parse().unwrap(),
            channel: ChannelId::new("C1").unwrap(),
            conversation: ConversationKey::new("c1").unwrap(),
            author: Author { id: AuthorId::new("U1").unwrap(), display_name: None, is_bot: false, is_agent: false },
            text: "q".into(),
            attachments: vec![],
            received_at_ms: 1,
            addressed_to_bot: true,
            top_level: true,
            reply_context: serde_json::Value::Null,
            action: None,
            unverified_sender: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn drafts_show_the_text_so_far_at_most_once_per_interval() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let recorder = Recorder::default();
        let message = inbound();
        let every = Duration::from_millis(1000);
        let writer = async move {
            // Twenty pieces, 100 ms apart: two seconds of writing.
            for i in 0..20 {
                tx.send(format!("w{i} ")).ok();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let start = tokio::time::Instant::now();
        tokio::join!(forward_drafts(rx, &recorder, &message, every), writer);
        let drafts = recorder.0.lock().unwrap().clone();
        assert_eq!(drafts[0].1, "w0", "the first piece is shown at once");
        assert!(drafts.len() >= 2 && drafts.len() <= 3, "{drafts:?}");
        for pair in drafts.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= every, "two drafts closer than the interval: {drafts:?}");
            assert!(pair[1].1.starts_with(&pair[0].1), "each draft extends the previous one");
        }
        assert!(drafts.iter().all(|(at, _)| *at - start <= Duration::from_millis(2000)));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_shown_for_a_stream_without_text() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let recorder = Recorder::default();
        tx.send("   ".into()).ok();
        drop(tx);
        forward_drafts(rx, &recorder, &inbound(), Duration::from_millis(1000)).await;
        assert!(recorder.0.lock().unwrap().is_empty());
    }
}
