//! One turn: from an inbound message to a decision, the messages to deliver, and a trace.

use super::condense::{condense_deterministic, condense_with_llm, PriorTurn};
use super::intent::{asks_for_human, looks_like_injection, steers_in_retrieved_text};
use super::replies;
use super::verify::Verification;
use super::verify::{citations_in, verify};
use super::Engine;
use crate::channel::{Citation, HandoffSummary, Inbound, Outbound, UserAction};
use crate::conversation::{ConvState, Conversation, Speaker};
use crate::generate::{GenerateError, Generated, GenerationInput};
use crate::policy::{Policy, PolicyMode};
use crate::ratelimit::Admission;
use crate::retrieval::{Filters, Hit};
use crate::trace::Features;
use crate::trace::{Decision, Trace, TraceHit, TraceVerification};
use serde::Serialize;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

/// Why a turn ended the way it did. Stable snake_case codes: traces, eval reports and the
/// `ask --json` output use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnReason {
    /// A grounded, verified answer above the threshold.
    Answered,
    WeakRetrieval,
    ModelUnsure,
    UnsupportedAnswer,
    LowConfidence,
    AskedForHuman,
    /// Over the workspace's quota, or the first message this minute over the sender's own:
    /// a person takes the conversation.
    RateLimited,
    /// The sender's further messages this minute over their own quota: recorded, not answered
    /// and not handed off (they were told with the first one), so one sender cannot flood the
    /// agents' channel with handoff cards.
    SenderOverQuota,
    PolicyOff,
    SuggestMode,
    LlmUnavailable,
    RetrievalUnavailable,
    SuspectedInjection,
    InternalError,
    /// A person owns the thread; the bot stays silent.
    AgentOwned,
    /// Not addressed to the bot (no mention, not a DM, top-level answering is off).
    NotAddressed,
    /// Written by a bot (including ourselves).
    BotAuthor,
    /// An agent wrote in the thread and took it over.
    AgentReplied,
    Claimed,
    Resolved,
    FeedbackRecorded,
    /// A button pressed or a command given by someone who may not: rating or handing off
    /// another person's conversation, or any action from a sender the platform could not vouch
    /// for. Nothing changes.
    NotAllowed,
    /// The message is longer than the bot reads ([`TurnTuning::max_question_chars`]): a person takes it.
    MessageTooLong,
    /// The answer carried a link or address that is neither in the help docs it used nor on a
    /// domain the policy allows (`link_domains`).
    UnsupportedLink,
}

impl TurnReason {
    pub fn code(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }
}

/// The outcome of one inbound message.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    pub decision: Decision,
    pub reason: TurnReason,
    pub confidence: f32,
    pub answer: Option<String>,
    pub citations: Vec<Citation>,
    pub outbound: Vec<Outbound>,
    pub trace: Option<Trace>,
}

/// The numbers a turn works with, each with what it is and why. One set for every turn
/// ([`Engine::tuning`]); the policy's numbers (threshold, answer length) are per channel and
/// live in [`Policy`], and the gate's in the confidence model.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnTuning {
    /// The longest message the bot answers, in characters; a longer one goes to a person (it
    /// is rarely a question the help docs answer, and it would swamp retrieval and the prompt).
    pub max_question_chars: usize,
    /// Support below which a sentence of the answer is taken as unsupported by what it cites,
    /// and the answer is never sent, whatever its confidence: every sentence must stand on its
    /// sources.
    pub min_sentence_support: f32,
    /// How many of the best hits the gate's term statistics look at: a question's distinctive
    /// terms should show in the few chunks an answer is written from, not just somewhere among
    /// the candidates.
    pub term_stats_hits: usize,
    /// How many of the hits the agents' handoff summary lists as sources: enough to start
    /// from, few enough to read at a glance.
    pub handoff_sources: usize,
    /// The confidence of a handoff decided before any evidence is weighed (a request for a
    /// person, a rate limit, a failed search), and the retrieval confidence when nothing was
    /// retrieved: the bottom of the scale, nothing supports an answer.
    pub no_evidence_confidence: f32,
}

impl TurnTuning {
    /// The numbers every turn uses.
    pub const DEFAULT: TurnTuning = TurnTuning {
        max_question_chars: 4000,
        min_sentence_support: 0.35,
        term_stats_hits: 3,
        handoff_sources: 3,
        no_evidence_confidence: 0.0,
    };
}

impl Default for TurnTuning {
    fn default() -> Self {
        TurnTuning::DEFAULT
    }
}

/// The longest message the bot answers by default, in characters
/// ([`TurnTuning::max_question_chars`]).
pub const MAX_QUESTION_CHARS: usize = TurnTuning::DEFAULT.max_question_chars;

/// The tracing span of one stage of a turn, a child of the turn's span ([`turn_span`]).
fn stage(name: &'static str) -> tracing::Span {
    tracing::info_span!("stage", stage = name)
}

/// The question a turn answers: the message made standalone, and how many earlier messages
/// of the conversation it was read with.
struct Question {
    text: String,
    history_turns: usize,
}

/// What retrieval found: the question's vector and the candidate hits, best first.
struct Retrieved {
    vector: Vec<f32>,
    candidates: Vec<Hit>,
}

/// What the gate weighed: the retrieval features and the retrieval confidence.
struct Gate {
    features: Features,
    retrieval: f32,
}

/// The oldest update time a search keeps, in seconds since the epoch: `days` before `now_ms`.
fn updated_after(now_ms: i64, days: u32) -> i64 {
    time::Duration::milliseconds(now_ms).whole_seconds() - time::Duration::days(i64::from(days)).whole_seconds()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn new_trace_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{:x}{:04x}{:04x}", now_ms(), std::process::id() & 0xffff, n & 0xffff)
}

fn citation_of(h: &Hit) -> Citation {
    Citation { doc_id: h.doc_id.clone(), chunk_id: h.chunk_id.clone(), title: h.title.clone(), url: h.url.clone() }
}

/// Renumbers `[n]` markers to 1, 2, ... in order of first use and returns the cited hits in
/// that order, so the customer sees sources numbered as they are listed.
pub fn renumber(answer: &str, hits: &[Hit]) -> (String, Vec<Citation>) {
    let mut order: Vec<usize> = Vec::new();
    for n in citations_in(answer) {
        if n >= 1 && n <= hits.len() && !order.contains(&n) {
            order.push(n);
        }
    }
    let Some(re) = super::verify::citation_regex() else {
        return (answer.to_string(), order.iter().map(|n| citation_of(&hits[n - 1])).collect());
    };
    let text = re
        .replace_all(answer, |caps: &regex::Captures| {
            let nums: Vec<String> = caps[1]
                .split(',')
                .filter_map(|n| n.trim().parse::<usize>().ok())
                .filter_map(|n| order.iter().position(|m| *m == n).map(|p| format!("[{}]", p + 1)))
                .collect();
            nums.join("")
        })
        .into_owned();
    (text, order.iter().map(|n| citation_of(&hits[n - 1])).collect())
}

fn history_of(conv: &Conversation) -> Vec<PriorTurn> {
    conv.history()
        .into_iter()
        .map(|(speaker, text)| PriorTurn { from_customer: speaker == Speaker::Customer, text })
        .collect()
}

struct Turn<'a> {
    engine: &'a Engine,
    inbound: &'a Inbound,
    admission: Admission,
    policy: Policy,
    conv: Conversation,
    trace: Trace,
    now: i64,
    tuning: &'a TurnTuning,
}

impl Engine {
    /// Handles one inbound message, taking its rate limits now if it comes to that.
    pub async fn handle(&self, inbound: &Inbound) -> TurnOutcome {
        self.handle_admitted(inbound, Admission::Unchecked).await
    }

    /// Takes `inbound`'s share of the rate limits as it arrives, if the bot is going to work
    /// on it ([`works_on`](Engine::works_on)); others take nothing.
    pub fn admit(&self, inbound: &Inbound) -> Admission {
        if !self.works_on(inbound) {
            return Admission::Unchecked;
        }
        Admission::of(self.limits.check(&inbound.workspace, &inbound.author.id))
    }

    /// Handles one inbound message whose rate limits were taken on arrival (`admission`).
    /// The turn runs in the message's tracing span ([`crate::trace::turn_span`]), each stage in
    /// a child span: every log line of the turn says which message and trace it belongs to.
    pub async fn handle_admitted(&self, inbound: &Inbound, admission: Admission) -> TurnOutcome {
        let span = crate::trace::current_turn_span(inbound);
        // The turn's embeddings take their turn at the CPU with other workspaces' (embed::fair).
        let workspace = format!("{:?}/{}", inbound.source, inbound.workspace);
        crate::embed::fair::for_workspace(workspace.as_bytes(), self.turn(inbound, admission)).instrument(span).await
    }

    async fn turn(&self, inbound: &Inbound, admission: Admission) -> TurnOutcome {
        if inbound.author.is_bot {
            return outcome(Decision::Ignore, TurnReason::BotAuthor, None);
        }
        // A message handled before (a restart after a crash) gets the same replies again.
        match self.conversations.turn_result(inbound.source, &inbound.workspace, inbound.id.as_str()) {
            Ok(Some(bytes)) => match serde_json::from_slice::<RecordedTurn>(&bytes) {
                Ok(r) => return r.into_outcome(self),
                Err(e) => tracing::error!(error = %e, "a stored turn result is unreadable; handling the message again"),
            },
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot read stored turn results"),
        }
        let now = now_ms();
        let policy = self.policy_for(inbound);
        let conv = self.conversation_for(inbound);
        let trace_id = new_trace_id();
        tracing::Span::current().record("trace_id", trace_id.as_str());
        let trace = Trace {
            trace_id,
            workspace: inbound.workspace.to_string(),
            channel: inbound.channel.to_string(),
            conversation: inbound.conversation.to_string(),
            message_id: inbound.id.to_string(),
            started_at_ms: now,
            waited_ms: now.saturating_sub(inbound.received_at_ms).max(0),
            question: crate::conversation::clipped(&inbound.text, crate::conversation::MAX_RECORDED_CHARS),
            policy_mode: format!("{:?}", policy.mode).to_lowercase(),
            threshold: policy.confidence_threshold,
            ..Trace::default()
        };
        let mut turn = Turn { engine: self, inbound, admission, policy, conv, trace, now, tuning: &self.tuning };
        let result = turn.run().await;
        turn.finish(result)
    }
}

impl Engine {
    /// Whether handling `inbound` will work on an answer for it (search, perhaps a model): the
    /// inbox worker shows the customer that the bot is on it (the adapter's working sign) only
    /// then. Decided from the message, the channel's policy and the conversation's state alone,
    /// with the same rules the turn applies, and without taking anything from the rate limits:
    /// no for a button press, a bot's or an agent's message, a message not addressed to the
    /// bot, a channel where the bot is off, a thread a person owns, and a message handled
    /// before (its recorded replies are sent again without any work).
    pub fn works_on(&self, inbound: &Inbound) -> bool {
        if inbound.action.is_some() || inbound.author.is_bot || is_agent(inbound) {
            return false;
        }
        if matches!(
            self.conversations.turn_result(inbound.source, &inbound.workspace, inbound.id.as_str()),
            Ok(Some(_))
        ) {
            return false;
        }
        stays_out(inbound, &self.policy_for(inbound), &self.conversation_for(inbound)).is_none()
    }

    /// The channel's effective policy; the defaults when it cannot be read.
    fn policy_for(&self, inbound: &Inbound) -> Policy {
        match self.policies.effective(&inbound.workspace, &inbound.channel) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the channel policy; using the defaults");
                Policy::default()
            }
        }
    }

    /// The message's conversation as stored; a fresh one when there is none or it cannot be read.
    fn conversation_for(&self, inbound: &Inbound) -> Conversation {
        let fresh = || {
            Conversation::new(
                inbound.source,
                inbound.workspace.clone(),
                inbound.channel.clone(),
                inbound.conversation.clone(),
            )
        };
        match self.conversations.get(inbound.source, &inbound.workspace, &inbound.conversation) {
            Ok(Some(c)) => c,
            Ok(None) => fresh(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the conversation record; starting a fresh one");
                fresh()
            }
        }
    }
}

/// Why the bot will not work on a customer's written message, known before any work from the
/// message, the channel's policy and the conversation alone. `None`: the turn looks for an
/// answer (after the rate limits). `AskedForHuman` stands for a resolved conversation that the
/// policy does not hand back to the bot: it goes to a person again, without any work.
/// An agent's message: only when the platform vouched for its sender.
fn is_agent(inbound: &Inbound) -> bool {
    inbound.author.is_agent && !inbound.unverified_sender
}

fn stays_out(inbound: &Inbound, policy: &Policy, conv: &Conversation) -> Option<TurnReason> {
    if !policy.enabled || policy.mode == PolicyMode::Off {
        return Some(TurnReason::PolicyOff);
    }
    let addressed = inbound.addressed_to_bot || (inbound.top_level && policy.answer_top_level) || conv.bot_in_thread();
    if !addressed {
        return Some(TurnReason::NotAddressed);
    }
    match conv.state {
        ConvState::Escalated | ConvState::Agent => Some(TurnReason::AgentOwned),
        ConvState::Resolved if !policy.bot_resumes_after_resolve => Some(TurnReason::AskedForHuman),
        ConvState::Resolved | ConvState::Bot => None,
    }
}

fn outcome(decision: Decision, reason: TurnReason, trace: Option<Trace>) -> TurnOutcome {
    TurnOutcome { decision, reason, confidence: 0.0, answer: None, citations: Vec::new(), outbound: Vec::new(), trace }
}

/// What `run` decided, before it is recorded.
struct Decided {
    decision: Decision,
    reason: TurnReason,
    confidence: f32,
    answer: Option<String>,
    citations: Vec<Citation>,
    outbound: Vec<Outbound>,
    /// Whether a trace is worth keeping (a customer turn, not a button press).
    traced: bool,
}

impl Decided {
    fn quiet(decision: Decision, reason: TurnReason) -> Decided {
        Decided {
            decision,
            reason,
            confidence: 0.0,
            answer: None,
            citations: Vec::new(),
            outbound: Vec::new(),
            traced: false,
        }
    }
}

impl Turn<'_> {
    fn author(&self) -> String {
        self.inbound.author.id.to_string()
    }

    /// The conversation's customer or a (vouched-for) agent: who may rate its answers or hand
    /// it to a person. Nobody, while the conversation has no customer yet.
    fn customer_or_agent(&self) -> bool {
        is_agent(self.inbound) || self.conv.customer.as_deref() == Some(self.inbound.author.id.as_str())
    }

    /// The turn, stage by stage: each stage either decides the turn (`Break`) or hands what it
    /// found to the next. Every stage runs in its own tracing span (`stage`), inside the turn's.
    /// The trace times `understand` (intent and condense together), `retrieve`, `rerank`,
    /// `generate` and `verify`.
    async fn run(&mut self) -> Decided {
        match self.stages().await {
            ControlFlow::Break(decided) | ControlFlow::Continue(decided) => decided,
        }
    }

    async fn stages(&mut self) -> ControlFlow<Decided, Decided> {
        stage("sender").in_scope(|| self.sender())?;
        stage("policy").in_scope(|| self.policy())?;
        stage("limits").in_scope(|| self.limits())?;
        stage("state").in_scope(|| self.state());
        let understanding = Instant::now();
        let question = stage("intent").in_scope(|| self.intent(understanding))?;
        let question = self.condense(question, understanding).instrument(stage("condense")).await?;
        let retrieved = self.retrieve(&question).instrument(stage("retrieve")).await?;
        let hits = self.rerank(&question, retrieved.candidates).instrument(stage("rerank")).await;
        let hits = stage("screen").in_scope(|| self.screen(hits));
        let gate = self.gate(&question, &hits).instrument(stage("gate")).await?;
        let generated = self.generate(&question, &retrieved.vector, &hits, &gate).instrument(stage("generate")).await?;
        let verification = self.verify(&generated, &hits).instrument(stage("verify")).await;
        let confidence = self
            .confidence(&question, &retrieved.vector, &gate, &generated, &verification)
            .instrument(stage("confidence"))
            .await;
        ControlFlow::Continue(stage("decide").in_scope(|| self.decide(&hits, generated, &verification, confidence)))
    }

    /// Who wrote: a button press or a command is dealt with here, and so is an agent's message
    /// (the bot stays out of a thread a person answers); a customer's message is recorded in
    /// the conversation and goes on.
    fn sender(&mut self) -> ControlFlow<Decided> {
        if let Some(action) = self.inbound.action.clone() {
            if self.inbound.unverified_sender {
                tracing::warn!(author = %self.author(), "an action from a sender the platform could not vouch for; ignored");
                return ControlFlow::Break(Decided::quiet(Decision::Ignore, TurnReason::NotAllowed));
            }
            return ControlFlow::Break(self.action(action));
        }
        let author = self.author();
        if is_agent(self.inbound) {
            self.conv.record(Speaker::Agent, &author, &self.inbound.text, self.now, self.inbound.id.as_str());
            if matches!(self.conv.state, ConvState::Bot | ConvState::Escalated | ConvState::Resolved)
                && self.conv.customer.is_some()
            {
                let _ = self.conv.transition(ConvState::Agent, &author, "agent_replied", self.now);
                return ControlFlow::Break(Decided::quiet(Decision::Ignore, TurnReason::AgentReplied));
            }
            return ControlFlow::Break(Decided::quiet(Decision::Ignore, TurnReason::AgentOwned));
        }
        self.conv.record(Speaker::Customer, &author, &self.inbound.text, self.now, self.inbound.id.as_str());
        if self.conv.customer.is_none() {
            self.conv.customer = Some(author);
        }
        ControlFlow::Continue(())
    }

    /// Policy, addressing and state: all known before any work.
    fn policy(&mut self) -> ControlFlow<Decided> {
        let Some(reason) = stays_out(self.inbound, &self.policy, &self.conv) else {
            return ControlFlow::Continue(());
        };
        ControlFlow::Break(match reason {
            TurnReason::PolicyOff => Decided { traced: true, ..Decided::quiet(Decision::Escalate, reason) },
            TurnReason::AskedForHuman => self.hand_off(reason),
            _ => Decided::quiet(Decision::Ignore, reason),
        })
    }

    /// Rate limits: taken when the message arrived, or now.
    fn limits(&mut self) -> ControlFlow<Decided> {
        let admission = match self.admission {
            Admission::Unchecked => {
                Admission::of(self.engine.limits.check(&self.inbound.workspace, &self.inbound.author.id))
            }
            taken => taken,
        };
        if let Admission::Limited { retry_after_ms, sender } = admission {
            if sender && !self.engine.limits.first_over_quota(&self.inbound.workspace, &self.inbound.author.id) {
                tracing::info!(retry_after_ms, "over the sender's quota again this minute; recorded, not answered");
                return ControlFlow::Break(Decided {
                    traced: true,
                    ..Decided::quiet(Decision::Ignore, TurnReason::SenderOverQuota)
                });
            }
            tracing::info!(retry_after_ms, sender, "rate limited");
            return ControlFlow::Break(self.hand_off(TurnReason::RateLimited));
        }
        ControlFlow::Continue(())
    }

    /// A resolved conversation that the customer writes in again is the bot's again.
    fn state(&mut self) {
        if self.conv.state == ConvState::Resolved {
            let author = self.author();
            let _ = self.conv.transition(ConvState::Bot, &author, "new_message_after_resolve", self.now);
        }
    }

    /// What the message asks for: a person, or an answer. A message too long to read, an
    /// explicit request for a person and an attempt to steer the bot go to a person. The
    /// question (trimmed) goes on.
    fn intent(&mut self, understanding: Instant) -> ControlFlow<Decided, String> {
        let question = self.inbound.text.trim().to_string();
        let turned = if question.chars().nth(self.tuning.max_question_chars).is_some() {
            Some(TurnReason::MessageTooLong)
        } else if asks_for_human(&question) {
            Some(TurnReason::AskedForHuman)
        } else if looks_like_injection(&question) {
            Some(TurnReason::SuspectedInjection)
        } else {
            None
        };
        match turned {
            Some(reason) => {
                self.trace.stage("understand", understanding);
                ControlFlow::Break(self.hand_off(reason))
            }
            None => ControlFlow::Continue(question),
        }
    }

    /// A follow-up made standalone from the conversation so far. An attempt to steer the bot
    /// spread over several messages shows in the question made standalone: a person takes it.
    async fn condense(&mut self, question: String, understanding: Instant) -> ControlFlow<Decided, Question> {
        let history = history_of(&self.conv);
        let condensed = match &self.engine.condenser {
            Some(llm) if !history.is_empty() => {
                let (c, tag) = condense_with_llm(llm.as_ref(), &self.engine.prompts, &question, &history).await;
                self.trace.condense = tag.unwrap_or_else(|| "deterministic".into());
                c
            }
            _ => {
                self.trace.condense = if history.is_empty() { "none".into() } else { "deterministic".into() };
                condense_deterministic(&question, &history)
            }
        };
        self.trace.condensed_question = condensed.clone();
        self.trace.stage("understand", understanding);
        if condensed != question && looks_like_injection(&condensed) {
            return ControlFlow::Break(self.hand_off(TurnReason::SuspectedInjection));
        }
        ControlFlow::Continue(Question { text: condensed, history_turns: history.len() })
    }

    /// The candidates for the answer: the question embedded, and searched for within the
    /// channel's products and the age its policy allows. Enough candidates for the reranker
    /// when there is one. A failure goes to a person.
    async fn retrieve(&mut self, question: &Question) -> ControlFlow<Decided, Retrieved> {
        let started = Instant::now();
        let filters = Filters {
            products: self.policy.products.clone(),
            updated_after: self.policy.max_age_days.map(|days| updated_after(self.now, days)),
            ..Filters::default()
        };
        let kb = &self.engine.kb;
        let vector = match kb.embed_query(&question.text).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot embed the question");
                self.trace.stage("retrieve", started);
                return ControlFlow::Break(self.hand_off(TurnReason::RetrievalUnavailable));
            }
        };
        let keep = self.engine.answering.context_chunks;
        let limit = match &self.engine.reranker {
            Some(_) => self.engine.rerank_candidates.max(keep),
            None => keep,
        };
        let mut request =
            kb.request(self.inbound.workspace.clone(), &question.text, self.engine.search_mode, limit, filters);
        request.vector = Some(vector.clone());
        let candidates = match kb.search(request).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "retrieval failed");
                self.trace.stage("retrieve", started);
                return ControlFlow::Break(self.hand_off(TurnReason::RetrievalUnavailable));
            }
        };
        self.trace.stage("retrieve", started);
        ControlFlow::Continue(Retrieved { vector, candidates })
    }

    /// A closer look at the candidates, keeping the best `answering.context_chunks`; on
    /// failure the retrieval order stands. Without a reranker the candidates stand as they are.
    async fn rerank(&mut self, question: &Question, candidates: Vec<Hit>) -> Vec<Hit> {
        let Some(reranker) = &self.engine.reranker else {
            return candidates;
        };
        let started = Instant::now();
        let keep = self.engine.answering.context_chunks;
        self.trace.reranker = Some(reranker.name());
        let reranked = match crate::rerank::rerank(reranker.as_ref(), &question.text, &candidates, keep).await {
            Ok(r) => r.into_iter().map(|r| r.hit).collect(),
            Err(e) => {
                tracing::warn!(code = e.code(), error = %e, "reranking failed; keeping the retrieval order");
                self.trace.rerank_error = Some(e.code().to_string());
                candidates.into_iter().take(keep).collect()
            }
        };
        self.trace.stage("rerank", started);
        reranked
    }

    /// A chunk that carries instructions for an assistant (planted in a ticket or a page) is
    /// never given to the generator. The hits left are the trace's.
    fn screen(&mut self, hits: Vec<Hit>) -> Vec<Hit> {
        let before = hits.len();
        let hits: Vec<Hit> = hits.into_iter().filter(|h| !steers_in_retrieved_text(&h.text)).collect();
        self.trace.dropped_chunks = before - hits.len();
        if self.trace.dropped_chunks > 0 {
            tracing::warn!(
                dropped = self.trace.dropped_chunks,
                "retrieved chunks that address the assistant were left out"
            );
        }
        self.trace.hits = hits
            .iter()
            .map(|h| TraceHit {
                doc_id: h.doc_id.clone(),
                chunk_id: h.chunk_id.clone(),
                title: h.title.clone(),
                keyword_score: h.keyword_score,
                semantic_score: h.semantic_score,
                fused_score: h.fused_score,
            })
            .collect();
        hits
    }

    /// The retrieval evidence weighed before any model is called: no hits, or a retrieval
    /// confidence under the gate, goes to a person.
    async fn gate(&mut self, question: &Question, hits: &[Hit]) -> ControlFlow<Decided, Gate> {
        let top = &hits[..hits.len().min(self.tuning.term_stats_hits)];
        let terms = match self.engine.kb.retriever.term_stats(&self.inbound.workspace, &question.text, top).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "term statistics unavailable");
                None
            }
        };
        let features = Features::of_retrieval(&question.text, question.history_turns, hits, terms.as_ref());
        self.trace.features = Some(features);
        self.trace.confidence_model = self.engine.confidence.version.clone();
        let retrieval = if hits.is_empty() {
            self.tuning.no_evidence_confidence
        } else {
            self.engine.confidence.retrieval_confidence(&features)
        };
        self.trace.retrieval_confidence = Some(retrieval);
        if hits.is_empty() || retrieval < self.engine.retrieval_gate() {
            return ControlFlow::Break(self.escalate(TurnReason::WeakRetrieval, retrieval, hits, None));
        }
        ControlFlow::Continue(Gate { features, retrieval })
    }

    /// The answer written from the hits, by the model tier the policy gives an easy or a hard
    /// question. A model that fails or is unsure hands the question to a person.
    async fn generate(
        &mut self,
        question: &Question,
        vector: &[f32],
        hits: &[Hit],
        gate: &Gate,
    ) -> ControlFlow<Decided, Generated> {
        let started = Instant::now();
        let easy = crate::llm::chain::is_easy_question(&question.text, gate.features.sem_top);
        let input = GenerationInput {
            question: &question.text,
            question_vector: Some(vector),
            hits,
            max_chars: self.policy.max_answer_chars,
            tier: self.policy.tier(easy),
            company: &self.engine.answering.company,
        };
        self.trace.generator = Some(self.engine.generator.name());
        let generated = match self.engine.generator.generate(&input, None).await {
            Ok(g) => g,
            Err(e) => {
                self.trace.stage("generate", started);
                let reason = match e {
                    GenerateError::Llm(ref err) => {
                        tracing::warn!(error = %err, "every model failed");
                        TurnReason::LlmUnavailable
                    }
                    GenerateError::Prompt(ref err) => {
                        tracing::error!(error = %err, "the answer prompt could not be filled");
                        TurnReason::InternalError
                    }
                    GenerateError::Embed(ref err) => {
                        tracing::error!(error = %err, "embedding failed while answering");
                        TurnReason::InternalError
                    }
                };
                return ControlFlow::Break(self.escalate(reason, gate.retrieval, hits, None));
            }
        };
        self.trace.stage("generate", started);
        self.trace.prompt = generated.prompt.clone();
        self.trace.model = Some(generated.model.clone());
        self.trace.tokens_in = generated.tokens_in;
        self.trace.tokens_out = generated.tokens_out;
        self.trace.cost_usd = generated.cost_usd;
        self.trace.llm_attempts = generated.attempts;
        if generated.unsure {
            return ControlFlow::Break(self.escalate(TurnReason::ModelUnsure, gate.retrieval, hits, None));
        }
        ControlFlow::Continue(generated)
    }

    /// The answer's citations and how well each sentence stands on what it cites.
    async fn verify(&mut self, generated: &Generated, hits: &[Hit]) -> Verification {
        let started = Instant::now();
        // Extractive answers quote the sources word for word; only written answers need their
        // meaning checked against them.
        let embedder = if generated.match_score.is_none() { Some(self.engine.kb.embedder.as_ref()) } else { None };
        let verification = verify(&generated.text, hits, embedder).await;
        self.trace.stage("verify", started);
        self.trace.verification = Some(TraceVerification {
            valid_citations: verification.valid_citations.clone(),
            invalid_citations: verification.invalid_citations.clone(),
            mean_support: verification.mean_support,
            min_support: verification.min_support,
        });
        verification
    }

    /// The answer's confidence, from the retrieval features, the answer, its support, and how
    /// close it is in meaning to the question (one short text to embed).
    async fn confidence(
        &mut self,
        question: &Question,
        vector: &[f32],
        gate: &Gate,
        generated: &Generated,
        verification: &Verification,
    ) -> f32 {
        let answer_text = super::verify::strip_citations(&generated.text);
        let similarity = match self.engine.kb.embedder.embed(&[answer_text]).await {
            Ok(v) => v.first().map(|a| crate::retrieval::vectors::dot(vector, a)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot embed the answer; its similarity to the question counts as 0");
                None
            }
        };
        let features = gate.features.with_answer(&question.text, &generated.text, similarity, verification.min_support);
        self.trace.features = Some(features);
        self.engine.confidence.answer_confidence(&features)
    }

    /// Sent, drafted for the agents, or handed to a person: an answer goes out only with valid
    /// citations, no stray link, every sentence supported, and a confidence at the threshold.
    fn decide(&mut self, hits: &[Hit], generated: Generated, verification: &Verification, confidence: f32) -> Decided {
        if !verification.has_valid_citation() || !verification.invalid_citations.is_empty() {
            return self.escalate(TurnReason::UnsupportedAnswer, confidence, hits, Some(generated.text));
        }
        let stray = super::verify::unsupported_addresses(&generated.text, hits, &self.policy.link_domains);
        if !stray.is_empty() {
            tracing::warn!(addresses = ?stray, "the answer carries addresses found in no source; handed to a person");
            return self.escalate(TurnReason::UnsupportedLink, confidence, hits, Some(generated.text));
        }
        if verification.min_support < self.tuning.min_sentence_support {
            return self.escalate(TurnReason::UnsupportedAnswer, confidence, hits, Some(generated.text));
        }
        if confidence < self.policy.confidence_threshold {
            return self.escalate(TurnReason::LowConfidence, confidence, hits, Some(generated.text));
        }
        let (text, citations) = renumber(&generated.text, hits);
        if self.policy.mode == PolicyMode::Suggest {
            let draft = with_sources(&text, &citations);
            return self.escalate(TurnReason::SuggestMode, confidence, hits, Some(draft));
        }
        let trace_id = self.trace.trace_id.clone();
        self.conv.record(Speaker::Bot, "bot", &text, self.now, &trace_id);
        let out = replies::answer(self.inbound, &trace_id, text.clone(), citations.clone(), confidence);
        Decided {
            decision: Decision::Answer,
            reason: TurnReason::Answered,
            confidence,
            answer: Some(text),
            citations,
            outbound: vec![out],
            traced: true,
        }
    }

    /// Hands the conversation to a person before any evidence was weighed: no confidence, no
    /// sources, no draft.
    fn hand_off(&mut self, reason: TurnReason) -> Decided {
        self.escalate(reason, self.tuning.no_evidence_confidence, &[], None)
    }

    /// Hands the conversation to a person.
    fn escalate(&mut self, reason: TurnReason, confidence: f32, hits: &[Hit], draft: Option<String>) -> Decided {
        let author = self.author();
        let by = if reason == TurnReason::AskedForHuman { author.as_str() } else { "bot" };
        if let Err(e) = self.conv.transition(ConvState::Escalated, by, &reason.code(), self.now) {
            tracing::warn!(error = %e, "conversation state did not change on handoff");
        }
        // A button press ("Talk to a person") carries no question of its own: the agents see
        // the customer's last message instead.
        let question = if self.inbound.action.is_some() {
            self.conv
                .messages
                .iter()
                .rev()
                .find(|m| m.speaker == Speaker::Customer && !m.text.trim().is_empty())
                .map(|m| m.text.clone())
                .unwrap_or_else(|| self.inbound.text.clone())
        } else {
            crate::conversation::clipped(&self.inbound.text, crate::conversation::MAX_RECORDED_CHARS)
        };
        let summary = HandoffSummary {
            question: question.clone(),
            condensed_question: if self.trace.condensed_question.is_empty() {
                question
            } else {
                self.trace.condensed_question.clone()
            },
            reason: reason.code(),
            confidence,
            sources: hits.iter().take(self.tuning.handoff_sources).map(citation_of).collect(),
            draft: if reason == TurnReason::SuggestMode { draft } else { None },
            conversation: self.inbound.conversation.clone(),
            customer_channel: self.inbound.channel.clone(),
        };
        let trace_id = self.trace.trace_id.clone();
        let outbound = replies::handoff(self.inbound, &trace_id, reason, &self.policy, summary);
        if let Some(first) = outbound.first() {
            self.conv.record(Speaker::Bot, "bot", &first.text, self.now, &trace_id);
        }
        Decided {
            decision: Decision::Escalate,
            reason,
            confidence,
            answer: None,
            citations: Vec::new(),
            outbound,
            traced: true,
        }
    }

    /// Buttons and commands.
    fn action(&mut self, action: UserAction) -> Decided {
        let author = self.author();
        match action {
            UserAction::Claim => {
                if !is_agent(self.inbound) {
                    return Decided::quiet(Decision::Ignore, TurnReason::AgentOwned);
                }
                if self.conv.state == ConvState::Agent && self.conv.owner.as_deref() == Some(author.as_str()) {
                    return Decided::quiet(Decision::Ignore, TurnReason::Claimed);
                }
                match self.conv.transition(ConvState::Agent, &author, "claimed", self.now) {
                    Ok(()) => {
                        let joined = replies::agent_joined(self.inbound, &self.conv, &author);
                        self.conv.record(Speaker::Bot, "bot", &joined.text, self.now, joined.id.as_str());
                        Decided { outbound: vec![joined], ..Decided::quiet(Decision::Ignore, TurnReason::Claimed) }
                    }
                    Err(e) => {
                        tracing::info!(error = %e, "claim ignored");
                        Decided::quiet(Decision::Ignore, TurnReason::Claimed)
                    }
                }
            }
            UserAction::Resolve => {
                if !is_agent(self.inbound) {
                    return Decided::quiet(Decision::Ignore, TurnReason::AgentOwned);
                }
                if let Err(e) = self.conv.transition(ConvState::Resolved, &author, "resolved", self.now) {
                    tracing::info!(error = %e, "resolve ignored");
                    return Decided::quiet(Decision::Ignore, TurnReason::Resolved);
                }
                let id = format!("{}-resolved-{}", self.conv.key, self.conv.transitions.len());
                let n = replies::notice(
                    self.inbound,
                    id,
                    "This conversation has been marked as resolved. Write here again any time if you need more help."
                        .into(),
                );
                Decided { outbound: vec![n], ..Decided::quiet(Decision::Ignore, TurnReason::Resolved) }
            }
            UserAction::Feedback { turn_id, helpful } => {
                if !self.customer_or_agent() {
                    tracing::info!(%author, "feedback from someone other than the customer or an agent; ignored");
                    return Decided::quiet(Decision::Ignore, TurnReason::NotAllowed);
                }
                // Only an answer given in this conversation can be rated here.
                let (workspace, conversation) = (self.inbound.workspace.as_str(), self.inbound.conversation.as_str());
                match self.engine.traces.set_feedback(&turn_id, workspace, conversation, helpful) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(turn_id = %turn_id, "feedback for a turn of another conversation, or an unknown one; ignored");
                        return Decided::quiet(Decision::Ignore, TurnReason::NotAllowed);
                    }
                    Err(e) => tracing::error!(error = %e, "feedback could not be stored"),
                }
                if helpful {
                    Decided::quiet(Decision::Ignore, TurnReason::FeedbackRecorded)
                } else {
                    let id = format!("{turn_id}-not-helpful");
                    let n = replies::notice(self.inbound, id, "Sorry that didn't help. Press \"Talk to a person\" and someone from our support team will take over.".into());
                    Decided { outbound: vec![n], ..Decided::quiet(Decision::Ignore, TurnReason::FeedbackRecorded) }
                }
            }
            UserAction::RequestHuman => {
                if !self.customer_or_agent() {
                    tracing::info!(%author, "a handoff asked for by someone other than the customer or an agent; ignored");
                    return Decided::quiet(Decision::Ignore, TurnReason::NotAllowed);
                }
                if self.conv.bot_silenced() {
                    return Decided::quiet(Decision::Ignore, TurnReason::AgentOwned);
                }
                self.hand_off(TurnReason::AskedForHuman)
            }
        }
    }

    /// Saves the conversation and the trace and builds the outcome.
    fn finish(mut self, d: Decided) -> TurnOutcome {
        let trace = if d.traced {
            self.trace.decision = Some(d.decision);
            self.trace.reason = d.reason.code();
            self.trace.confidence = d.confidence;
            self.trace.answer = d.answer.clone();
            if let Err(e) = self.engine.traces.put(&self.trace) {
                tracing::error!(error = %e, "the trace could not be saved");
            }
            Some(self.trace)
        } else {
            None
        };
        let outcome = TurnOutcome {
            decision: d.decision,
            reason: d.reason,
            confidence: d.confidence,
            answer: d.answer,
            citations: d.citations,
            outbound: d.outbound,
            trace,
        };
        let recorded = RecordedTurn::of(&outcome);
        let saved = serde_json::to_vec(&recorded).map_err(|e| e.to_string()).and_then(|bytes| {
            self.engine
                .conversations
                .put_with_turn(&self.conv, self.inbound.id.as_str(), &bytes, self.now)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = saved {
            tracing::error!(error = %e, "the conversation record could not be saved");
        }
        outcome
    }
}

/// What a handled message produced, kept so that handling it again returns the same replies.
#[derive(serde::Serialize, serde::Deserialize)]
struct RecordedTurn {
    decision: Decision,
    reason: TurnReason,
    confidence: f32,
    answer: Option<String>,
    citations: Vec<Citation>,
    outbound: Vec<Outbound>,
    trace_id: Option<String>,
}

impl RecordedTurn {
    fn of(o: &TurnOutcome) -> RecordedTurn {
        RecordedTurn {
            decision: o.decision,
            reason: o.reason,
            confidence: o.confidence,
            answer: o.answer.clone(),
            citations: o.citations.clone(),
            outbound: o.outbound.clone(),
            trace_id: o.trace.as_ref().map(|t| t.trace_id.clone()),
        }
    }

    fn into_outcome(self, engine: &Engine) -> TurnOutcome {
        let trace = self.trace_id.and_then(|id| engine.traces.get(&id).ok().flatten());
        TurnOutcome {
            decision: self.decision,
            reason: self.reason,
            confidence: self.confidence,
            answer: self.answer,
            citations: self.citations,
            outbound: self.outbound,
            trace,
        }
    }
}

/// The draft for agents in suggest mode, with its sources listed.
fn with_sources(text: &str, citations: &[Citation]) -> String {
    let mut out = text.to_string();
    for (i, c) in citations.iter().enumerate() {
        out.push_str(&format!(
            "\n[{}] {}{}",
            i + 1,
            c.title,
            c.url.as_deref().map(|u| format!(" — {u}")).unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(doc: &str) -> Hit {
        crate::testing::hit(doc, doc, "")
    }

    #[test]
    fn citations_are_renumbered_in_order_of_use() {
        let hits = vec![hit("a"), hit("b"), hit("c")];
        let (text, cites) = renumber("First [3]. Second [1][3]. Third [2, 1].", &hits);
        assert_eq!(text, "First [1]. Second [2][1]. Third [3][2].");
        assert_eq!(cites.iter().map(|c| c.doc_id.as_str()).collect::<Vec<_>>(), vec!["c", "a", "b"]);
    }

    #[test]
    fn reason_codes_are_snake_case() {
        assert_eq!(TurnReason::WeakRetrieval.code(), "weak_retrieval");
        assert_eq!(TurnReason::AskedForHuman.code(), "asked_for_human");
        assert_eq!(TurnReason::LlmUnavailable.code(), "llm_unavailable");
    }

    /// The tracing spans of a turn, seen through what a log line carries.
    mod spans {
        use super::*;
        use crate::channel::{
            Author, AuthorId, ChannelId, ConversationKey, Delivered, EventId, InboxSink, WorkspaceId,
        };
        use crate::config::Config;
        use crate::generate::Extractive;
        use crate::inbox::{Deliverer, Inbox, InboxOptions, Worker};
        use crate::knowledge::{KnowledgeBase, SearchSettings};
        use crate::prompts::Prompts;
        use crate::ratelimit::RateLimitConfig;
        use crate::retrieval::embedded::EmbeddedRetriever;
        use crate::store::Store;
        use std::sync::{Arc, Mutex};

        /// Log lines as JSON, each with the spans it was logged in (outermost first).
        #[derive(Clone, Default)]
        struct Logs(Arc<Mutex<Vec<u8>>>);

        impl std::io::Write for Logs {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl Logs {
            /// Collects this thread's log lines until the guard is dropped.
            fn capture(&self) -> tracing::subscriber::DefaultGuard {
                // tracing decides once per log statement whether anyone listens, from the thread
                // that reaches it first: another test's thread without a subscriber would silence
                // it for this one. A process-wide subscriber that takes everything (and writes
                // nothing) keeps every statement live.
                static LISTENING: std::sync::Once = std::sync::Once::new();
                LISTENING.call_once(|| {
                    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
                });
                let logs = self.clone();
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_span_list(true)
                    .with_current_span(false)
                    .with_max_level(tracing::Level::INFO)
                    .with_writer(move || logs.clone())
                    .finish();
                tracing::subscriber::set_default(subscriber)
            }

            /// The spans of the one line whose message is `message`.
            fn spans_of(&self, message: &str) -> Vec<serde_json::Value> {
                let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
                let lines: Vec<serde_json::Value> = text
                    .lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .filter(|l| l["fields"]["message"] == message)
                    .collect();
                assert_eq!(lines.len(), 1, "one line {message:?} in:\n{text}");
                lines[0]["spans"].as_array().cloned().unwrap_or_default()
            }
        }

        fn engine(rate_limits: RateLimitConfig) -> Engine {
            let store = Store::temporary().unwrap();
            let embedder = Arc::new(crate::testing::HashingEmbedder::new(64));
            let kb = KnowledgeBase {
                retriever: Arc::new(EmbeddedRetriever::in_memory(&store, 64).unwrap()),
                store,
                embedder: embedder.clone(),
                search: SearchSettings { semantic_ratio: 0.5, candidates: 50 },
                chunking: Default::default(),
                batch_size: 16,
            };
            let config = Config { rate_limits, ..Config::default() };
            let prompts = Arc::new(Prompts::built_in().unwrap());
            Engine::with_parts(&config, Arc::new(kb), Arc::new(Extractive::new(embedder)), None, prompts).unwrap()
        }

        fn message(event: &str, conversation: &str) -> Inbound {
            Inbound {
                id: EventId::new(event).unwrap(),
                source: crate::channel::Source::Slack,
                workspace: WorkspaceId::new("T7").unwrap(),
                channel: ChannelId::new("C7").unwrap(),
                conversation: ConversationKey::new(conversation).unwrap(),
                author: Author { id: AuthorId::new("U7").unwrap(), display_name: None, is_bot: false, is_agent: false },
                text: "How long is the free trial?".into(),
                attachments: Vec::new(),
                received_at_ms: 0,
                addressed_to_bot: true,
                top_level: true,
                reply_context: serde_json::Value::Null,
                action: None,
                unverified_sender: false,
            }
        }

        /// The turn's span and the stage's: `[turn, stage]`, the turn's carrying the message
        /// and the trace id the engine kept the turn under.
        fn assert_turn_context(spans: &[serde_json::Value], engine: &Engine, event: &str, stage: &str) {
            assert_eq!(spans.len(), 2, "the turn's span and one stage's: {spans:?}");
            let (turn, stage_span) = (&spans[0], &spans[1]);
            assert_eq!(turn["name"], "turn");
            assert_eq!(turn["workspace"], "T7");
            assert_eq!(turn["channel"], "C7");
            assert_eq!(turn["conversation"], "conv-7");
            assert_eq!(turn["message_id"], event);
            let trace_id = turn["trace_id"].as_str().expect("the turn's span carries its trace id");
            let trace = engine.traces.get(trace_id).unwrap().expect("the trace the span names");
            assert_eq!(trace.message_id, event);
            assert_eq!(stage_span["name"], "stage");
            assert_eq!(stage_span["stage"], stage);
        }

        #[tokio::test]
        async fn a_stage_logs_with_the_turns_message_and_trace_id() {
            let logs = Logs::default();
            let _capture = logs.capture();
            let engine = engine(RateLimitConfig::default());
            let o = engine
                .handle_admitted(&message("E1", "conv-7"), Admission::Limited { retry_after_ms: 1000, sender: false })
                .await;
            assert_eq!(o.reason, TurnReason::RateLimited);
            assert_turn_context(&logs.spans_of("rate limited"), &engine, "E1", "limits");
        }

        struct Nowhere;

        #[async_trait::async_trait]
        impl Deliverer for Nowhere {
            async fn deliver(&self, _message: &Outbound) -> Result<Delivered, crate::channel::AdapterError> {
                Ok(Delivered { platform_message_id: None })
            }
        }

        #[tokio::test]
        async fn through_the_inbox_the_turn_runs_in_the_span_the_worker_entered() {
            let logs = Logs::default();
            let _capture = logs.capture();
            // One message a minute per person: the second (in another conversation, as the first
            // one is handed to a person) is limited as it arrives.
            let limits = RateLimitConfig { user_per_minute: 1, user_burst: 1, ..RateLimitConfig::default() };
            let engine = Arc::new(engine(limits));
            let inbox = Inbox::open(&Store::temporary().unwrap(), InboxOptions::default()).unwrap();
            let worker = Worker::new(inbox.clone(), engine.clone(), Arc::new(Nowhere));
            assert!(inbox.accept(message("E1", "conv-1")).await.unwrap());
            assert!(inbox.accept(message("E2", "conv-7")).await.unwrap());
            let shutdown = tokio_util::sync::CancellationToken::new();
            let running = tokio::spawn(worker.run(shutdown.clone()));
            crate::testing::until_idle(&inbox, std::time::Duration::from_secs(10)).await;
            shutdown.cancel();
            running.await.unwrap();
            assert_eq!(inbox.stats().pending_inbound, 0, "both messages handled");
            // One turn span, not the worker's and a second one of the engine's.
            assert_turn_context(&logs.spans_of("rate limited"), &engine, "E2", "limits");
        }
    }
}
