//! The conversation engine: one pipeline for every channel.
//!
//! Each inbound message goes through these stages (`turn`): sender (buttons, agents' messages)
//! → policy (addressing, the conversation's owner) → rate limits → conversation state → intent
//! (explicit request for a person, attempts to steer the bot) → condense (a follow-up made
//! standalone) → retrieve → rerank → screen (chunks that address the assistant left out) →
//! retrieval-confidence gate → generate → verify → confidence → decide → outbound messages.
//! Each stage runs in its own tracing span inside the turn's (`crate::trace::turn_span`).
//! The outcome is a decision (`answer`, `escalate`, `ignore`), a reason code, a confidence in
//! [0, 1], the messages to deliver, and a trace.
//!
//! - `intent`: explicit requests for a person and injection attempts.
//! - `condense`: follow-ups made standalone.
//! - `confidence`: the features of a turn and the fitted model that scores them.
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

pub use turn::{TurnOutcome, TurnReason, TurnTuning, MAX_QUESTION_CHARS};

/// The engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Model(#[from] confidence::ModelError),
    #[error(transparent)]
    Rerank(#[from] crate::rerank::RerankError),
}

impl EngineError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Store(e) => e.code(),
            EngineError::Prompt(e) => e.code(),
            EngineError::Llm(e) => e.code(),
            EngineError::Model(e) => e.code(),
            EngineError::Rerank(e) => e.code(),
        }
    }
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
    /// Reorders the retrieved candidates before an answer is written (`[rerank]`).
    pub reranker: Option<Arc<dyn crate::rerank::Reranker>>,
    /// How many retrieved chunks the reranker reads.
    pub rerank_candidates: usize,
    pub answering: AnsweringConfig,
    /// How the engine searches (hybrid in production; the eval harness compares modes).
    pub search_mode: crate::retrieval::SearchMode,
    /// The numbers every turn works with.
    pub tuning: TurnTuning,
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
        intent::prepare();
        let confidence = match &config.answering.confidence_model {
            Some(path) => ConfidenceModel::load(path)?,
            None => ConfidenceModel::shipped()?,
        };
        let reranker: Option<Arc<dyn crate::rerank::Reranker>> = match config.rerank.kind {
            crate::rerank::config::RerankKind::Features => confidence.ranker.clone().map(|m| {
                Arc::new(crate::rerank::features::FeatureRanker::new(m, &confidence.version))
                    as Arc<dyn crate::rerank::Reranker>
            }),
            _ => crate::rerank::build(&config.rerank, &config.models_dir, &crate::llm::openai::build_client())?,
        };
        Ok(Engine {
            policies: PolicyStore::open(&store)?,
            conversations: ConversationStore::open(&store)?,
            traces: TraceStore::open(&store)?,
            limits: RateLimits::new(&config.rate_limits),
            generator,
            condenser,
            prompts,
            confidence,
            reranker,
            rerank_candidates: config.rerank.candidates,
            answering: config.answering.clone(),
            search_mode: crate::retrieval::SearchMode::Hybrid,
            tuning: TurnTuning::default(),
            kb,
        })
    }
}

impl Engine {
    /// The retrieval confidence below which a question goes to a person before any answer is
    /// written: `answering.retrieval_gate`, or the confidence model's recommended gate.
    pub fn retrieval_gate(&self) -> f32 {
        self.answering.retrieval_gate.unwrap_or(self.confidence.recommended_gate)
    }
}

/// The engine is what the durable inbox's worker runs for each message: every outcome, errors
/// included, becomes the messages to deliver (a failure is a handoff, never silence).
#[async_trait::async_trait]
impl crate::inbox::TurnHandler for Engine {
    async fn handle(
        &self,
        message: &crate::channel::Inbound,
        admission: crate::ratelimit::Admission,
    ) -> Vec<crate::channel::Outbound> {
        Engine::handle_admitted(self, message, admission).await.outbound
    }

    async fn admit(&self, message: &crate::channel::Inbound) -> crate::ratelimit::Admission {
        Engine::admit(self, message)
    }

    async fn works_on(&self, message: &crate::channel::Inbound) -> bool {
        Engine::works_on(self, message)
    }
}
