//! Traces: what happened in each turn, kept so an admin can see why the bot answered or
//! handed off (`frontdesk trace CONVERSATION`), and so evals and feedback can be tied to it.
//!
//! A trace holds the stages with their timings, the retrieval hits and their scores, the
//! prompt `id@version`, the model, tokens in and out, the estimated cost, the verification
//! result, the decision, its reason code and the confidence. It holds the customer's question
//! and the answer (the conversation record holds them too); it never holds keys or tokens.

use crate::store::{expiry, key2, prefix1, Store, StoreError};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

/// The name of a turn's tracing span ([`turn_span`]).
const TURN_SPAN: &str = "turn";

/// The tracing span of one inbound message's turn: every log line of the turn carries the
/// message's workspace, channel, conversation and id, and the turn's trace id once the engine
/// gives it one (the id `frontdesk trace` shows a turn by). The inbox worker enters it where
/// it hands the message to the engine; a turn started elsewhere (`ask`, evals) gets its own.
pub fn turn_span(inbound: &crate::channel::Inbound) -> tracing::Span {
    tracing::info_span!(
        "turn",
        workspace = %inbound.workspace,
        channel = %inbound.channel,
        conversation = %inbound.conversation,
        message_id = %inbound.id,
        trace_id = tracing::field::Empty,
    )
}

/// The span the turn of `inbound` runs in: the current span when it is a turn's (the inbox
/// worker entered it for this message before handing it over), a new [`turn_span`] otherwise.
pub fn current_turn_span(inbound: &crate::channel::Inbound) -> tracing::Span {
    let current = tracing::Span::current();
    let is_turn = current.metadata().is_some_and(|m| m.name() == TURN_SPAN && m.target() == module_path!());
    if is_turn {
        current
    } else {
        turn_span(inbound)
    }
}

/// What the engine decided for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The customer got an answer.
    Answer,
    /// A person takes over.
    Escalate,
    /// Nothing to say: not addressed to the bot, or a person owns the thread.
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceHit {
    pub doc_id: String,
    pub chunk_id: String,
    pub title: String,
    pub keyword_score: f32,
    pub semantic_score: f32,
    pub fused_score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceVerification {
    pub valid_citations: Vec<usize>,
    pub invalid_citations: Vec<usize>,
    pub mean_support: f32,
    pub min_support: f32,
}

/// The signals of one turn that its confidence is computed from, kept in its trace and in eval
/// records (what `frontdesk calibrate` fits on). The engine's confidence module reads them off
/// the turn (`Features::of_retrieval`, `Features::with_answer`) and its model weighs them.
/// Answer features are 0 until an answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Features {
    /// Cosine similarity of the best chunk to the question.
    pub sem_top: f32,
    /// `sem_top` minus the best cosine of any other document (0 with one document).
    pub sem_margin: f32,
    /// Fused score of the best hit minus that of the best hit of another document.
    pub fused_margin: f32,
    /// The best keyword hit and the best semantic hit are from the same document.
    pub agreement: f32,
    /// Keyword score of the top hit relative to the best keyword hit (1 = it is the best).
    pub top_keyword: f32,
    /// Share of the question's content terms found in the best chunk (title and headings too).
    pub coverage_top1: f32,
    /// Share found in the best three chunks.
    pub coverage_top3: f32,
    /// IDF-weighted share of the question's terms in the best three chunks, when the backend
    /// can tell (rare words count most); else `coverage_top3`.
    pub weighted_coverage: f32,
    /// Names, codes or acronyms of the question that occur nowhere in the knowledge (0, 0.5 for
    /// one, 1 for two or more).
    pub unknown_distinctive: f32,
    /// Content terms in the question, scaled: min(n, 20) / 20.
    pub question_length: f32,
    /// Earlier turns of the conversation, scaled: min(n, 6) / 6.
    pub history: f32,
    /// Cosine similarity between the question and the answer written.
    pub answer_similarity: f32,
    /// Share of the question's content terms that the answer contains.
    pub answer_overlap: f32,
    /// Support of the answer's weakest sentence in the chunks it cites.
    pub answer_min_support: f32,
}

/// Feature names, in the order `Features::get` knows them: the retrieval features first, then
/// the three that read the answer.
pub const FEATURE_NAMES: &[&str] = &[
    "sem_top",
    "sem_margin",
    "fused_margin",
    "agreement",
    "top_keyword",
    "coverage_top1",
    "coverage_top3",
    "weighted_coverage",
    "unknown_distinctive",
    "question_length",
    "history",
    "answer_similarity",
    "answer_overlap",
    "answer_min_support",
];

/// The features available before an answer is written: all but the last three of
/// `FEATURE_NAMES`, which read the answer.
pub const RETRIEVAL_FEATURES: &[&str] = FEATURE_NAMES.split_at(FEATURE_NAMES.len() - 3).0;

impl Features {
    /// A feature by name (`None` for an unknown name).
    pub fn get(&self, name: &str) -> Option<f32> {
        Some(match name {
            "sem_top" => self.sem_top,
            "sem_margin" => self.sem_margin,
            "fused_margin" => self.fused_margin,
            "agreement" => self.agreement,
            "top_keyword" => self.top_keyword,
            "coverage_top1" => self.coverage_top1,
            "coverage_top3" => self.coverage_top3,
            "weighted_coverage" => self.weighted_coverage,
            "unknown_distinctive" => self.unknown_distinctive,
            "question_length" => self.question_length,
            "history" => self.history,
            "answer_similarity" => self.answer_similarity,
            "answer_overlap" => self.answer_overlap,
            "answer_min_support" => self.answer_min_support,
            _ => return None,
        })
    }
}

/// One turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Trace {
    pub trace_id: String,
    pub workspace: String,
    pub channel: String,
    pub conversation: String,
    pub message_id: String,
    pub started_at_ms: i64,
    /// Milliseconds between the message's arrival and the start of its turn: time spent
    /// waiting in the inbox for a turn slot.
    #[serde(default)]
    pub waited_ms: i64,
    pub stages: Vec<Stage>,
    pub question: String,
    pub condensed_question: String,
    /// `none`, `deterministic` or the condense prompt's `id@version`.
    pub condense: String,
    pub hits: Vec<TraceHit>,
    pub retrieval_confidence: Option<f32>,
    /// The signals the confidence was computed from (answer features once an answer was
    /// written).
    #[serde(default)]
    pub features: Option<Features>,
    /// The confidence model's version.
    #[serde(default)]
    pub confidence_model: String,
    /// The reranker that ordered the hits, when one ran.
    #[serde(default)]
    pub reranker: Option<String>,
    /// Why reranking failed (its error code), when it did: the hits kept the retrieval order.
    #[serde(default)]
    pub rerank_error: Option<String>,
    /// Retrieved chunks left out because they carry instructions aimed at an assistant.
    #[serde(default)]
    pub dropped_chunks: usize,
    pub generator: Option<String>,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub cost_usd: f64,
    pub llm_attempts: u32,
    pub verification: Option<TraceVerification>,
    pub decision: Option<Decision>,
    pub reason: String,
    pub confidence: f32,
    pub answer: Option<String>,
    pub policy_mode: String,
    pub threshold: f32,
    /// Set when the customer pressed "Helpful" (true) or "Not helpful" (false).
    pub feedback: Option<bool>,
}

impl Trace {
    /// Records how long a stage took.
    pub fn stage(&mut self, name: &str, started: std::time::Instant) {
        self.stages.push(Stage { name: name.to_string(), ms: started.elapsed().as_secs_f64() * 1000.0 });
    }

    /// Total time of all stages.
    pub fn total_ms(&self) -> f64 {
        self.stages.iter().map(|s| s.ms).sum()
    }
}

/// Traces in sled: `traces` by id, `trace_index` by conversation, `traces_expiry` by the time
/// the turn started (`store::expiry`), so that traces older than the retention are purged
/// ([`TraceStore::purge_expired`]).
#[derive(Clone)]
pub struct TraceStore {
    traces: sled::Tree,
    index: sled::Tree,
    expiry: sled::Tree,
}

/// The trace's entry in `trace_index`: its conversation, then its start and id.
fn index_key(trace: &Trace) -> Vec<u8> {
    let sortable = format!("{:020}:{}", trace.started_at_ms.max(0), trace.trace_id);
    key2(&trace.conversation, &sortable)
}

fn transaction_error(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Sled(e),
        TransactionError::Abort(()) => StoreError::Corrupt { what: "trace".into(), message: "aborted".into() },
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what: "trace".into(), message: e.to_string() }
}

impl TraceStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let db = store.db();
        Ok(TraceStore {
            traces: db.open_tree("traces")?,
            index: db.open_tree("trace_index")?,
            expiry: db.open_tree("traces_expiry")?,
        })
    }

    pub fn put(&self, trace: &Trace) -> Result<(), StoreError> {
        let value = serde_json::to_vec(trace).map_err(corrupt)?;
        let index_key = index_key(trace);
        let expiry_key = expiry::entry(trace.started_at_ms, trace.trace_id.as_bytes());
        (&self.traces, &self.index, &self.expiry)
            .transaction(|(traces, index, expiry)| {
                traces.insert(trace.trace_id.as_bytes(), value.as_slice())?;
                index.insert(index_key.as_slice(), trace.trace_id.as_bytes())?;
                expiry.insert(expiry_key.as_slice(), &[] as &[u8])?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(transaction_error)
    }

    /// Removes the traces of turns that started more than `retention` before `now_ms`.
    /// Returns how many. Traces written before the index existed are not in it and stay.
    pub fn purge_expired(&self, now_ms: i64, retention: std::time::Duration) -> Result<usize, StoreError> {
        let cut_off = expiry::cut_off(now_ms, retention);
        let mut purged = 0;
        loop {
            let batch = expiry::due(&self.expiry, cut_off)?;
            if batch.is_empty() {
                break;
            }
            // Read outside the transaction: a trace's conversation and start never change.
            let mut index_keys = Vec::with_capacity(batch.len());
            for key in &batch {
                let id = expiry::parse(key).map(|(_, id)| id).unwrap_or_default();
                if let Some(bytes) = self.traces.get(id)? {
                    if let Ok(trace) = serde_json::from_slice::<Trace>(&bytes) {
                        index_keys.push(index_key(&trace));
                    }
                }
            }
            (&self.traces, &self.index, &self.expiry)
                .transaction(|(traces, index, expiry)| {
                    for key in &batch {
                        expiry.remove(key)?;
                        if let Some((_, id)) = expiry::parse(key) {
                            traces.remove(id)?;
                        }
                    }
                    for key in &index_keys {
                        index.remove(key.as_slice())?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(transaction_error)?;
            purged += batch.len();
        }
        Ok(purged)
    }

    pub fn get(&self, trace_id: &str) -> Result<Option<Trace>, StoreError> {
        match self.traces.get(trace_id.as_bytes())? {
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    /// The traces of a conversation, oldest first.
    pub fn for_conversation(&self, conversation: &str) -> Result<Vec<Trace>, StoreError> {
        let mut out = Vec::new();
        for item in self.index.scan_prefix(prefix1(conversation)) {
            let (_, id) = item?;
            if let Some(t) = self.get(&String::from_utf8_lossy(&id))? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Records the customer's rating on a trace of the conversation `conversation` of
    /// `workspace`. Returns false, storing nothing, when no such trace is there (unknown, or a
    /// turn of another conversation).
    pub fn set_feedback(
        &self,
        trace_id: &str,
        workspace: &str,
        conversation: &str,
        helpful: bool,
    ) -> Result<bool, StoreError> {
        let Some(mut t) = self.get(trace_id)? else { return Ok(false) };
        if t.workspace != workspace || t.conversation != conversation {
            return Ok(false);
        }
        t.feedback = Some(helpful);
        self.traces.insert(trace_id.as_bytes(), serde_json::to_vec(&t).map_err(corrupt)?)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_found_by_conversation_in_order_and_take_feedback() {
        let store = Store::temporary().unwrap();
        let traces = TraceStore::open(&store).unwrap();
        for (id, at) in [("b", 20), ("a", 10), ("c", 30)] {
            traces
                .put(&Trace {
                    trace_id: id.into(),
                    conversation: "conv1".into(),
                    started_at_ms: at,
                    ..Default::default()
                })
                .unwrap();
        }
        traces.put(&Trace { trace_id: "x".into(), conversation: "conv2".into(), ..Default::default() }).unwrap();
        assert!(!traces.set_feedback("x", "", "conv1", true).unwrap(), "a turn of another conversation");
        assert_eq!(traces.get("x").unwrap().unwrap().feedback, None);
        let ids: Vec<String> = traces.for_conversation("conv1").unwrap().into_iter().map(|t| t.trace_id).collect();
        assert_eq!(ids, vec!["a", "b", "c"]);
        assert!(traces.set_feedback("b", "", "conv1", false).unwrap());
        assert_eq!(traces.get("b").unwrap().unwrap().feedback, Some(false));
        assert!(!traces.set_feedback("nope", "", "conv1", true).unwrap());
    }

    #[test]
    fn traces_older_than_the_retention_are_purged_with_their_index() {
        let store = Store::temporary().unwrap();
        let traces = TraceStore::open(&store).unwrap();
        for (id, at) in [("old", 1_000), ("new", 90_000)] {
            traces
                .put(&Trace {
                    trace_id: id.into(),
                    conversation: "conv1".into(),
                    started_at_ms: at,
                    ..Default::default()
                })
                .unwrap();
        }
        let retention = std::time::Duration::from_secs(60);
        assert_eq!(traces.purge_expired(60_000, retention).unwrap(), 0, "both within the retention");
        assert_eq!(traces.purge_expired(100_000, retention).unwrap(), 1);
        assert!(traces.get("old").unwrap().is_none());
        let ids: Vec<String> = traces.for_conversation("conv1").unwrap().into_iter().map(|t| t.trace_id).collect();
        assert_eq!(ids, vec!["new"]);
        assert_eq!((traces.index.len(), traces.expiry.len()), (1, 1));
    }
}
