//! The local language model: SmolLM2-135M-Instruct run in-process on the CPU.
//!
//! This is what lets frontdesk draft answers with no server, no API key and no customer text
//! leaving the machine. The model ships as one GGUF file (installed by
//! `frontdesk models fetch --llm`); everything needed is read from it: the weights, and the
//! tokenizer, which is rebuilt from the file's metadata (a GPT-2 style byte-level BPE whose
//! pre-tokenizer also splits every digit on its own, as SmolLM2 was trained).
//!
//! The file stores 4-bit weights. Multiplying by 4-bit blocks of this kind is slow on a CPU
//! (about 2 tokens a second on a 2-core machine), so the weights are expanded to f32 once, while
//! loading, and every matrix product afterwards runs in f32: about ten times faster, for roughly
//! 0.5 GB more memory. The expansion is done through the GGUF reader itself (see
//! `ExpandedWeights`), so it needs no environment variable and never holds a second full copy of
//! the weights. Prompts are read in pieces of 256 tokens, which makes long prompts (retrieved
//! help-doc excerpts) about 1.7 times faster to read than in one pass.
//!
//! Conversations are written in the ChatML format the model was tuned on
//! (`<|im_start|>role\n...<|im_end|>\n`, then `<|im_start|>assistant\n`), and generation stops at
//! `<|im_end|>` or the end-of-text token. The markers are inserted as token ids: text that merely
//! looks like a marker (a customer typing `<|im_end|>`) is tokenised as plain text, so a message
//! cannot close its own turn or impersonate the system prompt.
//!
//! When a conversation does not fit the context window (the prompt plus room for the answer),
//! it is shortened in this order:
//! 1. the oldest messages that are neither system messages nor the final user question are
//!    dropped, one at a time;
//! 2. if that is not enough, the longest remaining message loses tokens from its middle
//!    (replaced by a `[...]` marker), repeatedly. Each message keeps its beginning and its end,
//!    so a system prompt's instructions (at its start) and the question at the end of the
//!    final user message survive; retrieved help-doc excerpts, which sit in between, are what
//!    gets cut. No message is cut below a small floor; if the prompt still does not fit, the
//!    request fails with `LlmError::Local`.
//!
//! One generation runs at a time (the model and its attention cache sit behind a mutex, and the
//! cache is reset for every request); the work runs on tokio's blocking pool so the async
//! runtime is never stalled. A request whose caller stops waiting is abandoned at the next token.

mod context;
mod tokenizer;
mod weights;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::{self, ModelWeights};
use tokenizers::{AddedToken, Tokenizer};
use tokio::sync::mpsc::UnboundedSender;

use super::{ChatMessage, ChatRequest, ChatResponse, FinishReason, Llm, LlmError, Role};
use crate::models::{self, SMOLLM2};
use context::{fit_turns, Turn};
use tokenizer::tokenizer_from_gguf;
use weights::dequantize;

/// `provider/model` reported for every answer of the local model.
pub const MODEL_NAME: &str = "local/SmolLM2-135M-Instruct";

/// The model file inside the model's directory.
const GGUF_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Temperatures at or below this decode greedily (always the most likely token).
const GREEDY_BELOW: f32 = 0.05;

/// Smallest context window accepted; anything smaller could not hold a question and an answer.
const MIN_CONTEXT_TOKENS: usize = 128;

/// Used when a conversation has no system message; the model was tuned to always see one.
const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";

/// Prompt tokens run through the model at once.
const PREFILL_CHUNK: usize = 256;

/// Replaces the tokens cut from the middle of a message that did not fit.
const CUT_MARKER: &str = "\n[...]\n";

/// How the local model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalLlmOptions {
    /// Context window in tokens: the prompt plus the answer. Clamped to what the model supports
    /// (at most 4096 here) and to at least 128.
    pub max_context_tokens: usize,
    /// Seed for sampling when a request's temperature is above 0.05. Every request starts from
    /// this seed, so the same request gives the same answer.
    pub seed: u64,
}

impl Default for LocalLlmOptions {
    fn default() -> Self {
        LocalLlmOptions { max_context_tokens: 2048, seed: 20_240_917 }
    }
}

/// How long one generation took, for logs and the speed report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationStats {
    /// Tokens in the prompt after fitting it into the context window.
    pub prompt_tokens: usize,
    /// Time to read the prompt (up to the first generated token's logits).
    pub prompt_time: Duration,
    /// Tokens generated, not counting the stop marker.
    pub generated_tokens: usize,
    /// Time spent generating after the prompt was read.
    pub generation_time: Duration,
}

impl GenerationStats {
    /// Prompt tokens read per second.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        per_second(self.prompt_tokens, self.prompt_time)
    }

    /// Tokens generated per second (each needs one pass through the model).
    pub fn generation_tokens_per_second(&self) -> f64 {
        per_second(self.generated_tokens, self.generation_time)
    }
}

fn per_second(count: usize, time: Duration) -> f64 {
    let seconds = time.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// A finished local generation and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalCompletion {
    pub response: ChatResponse,
    pub stats: GenerationStats,
}

/// SmolLM2-135M-Instruct on the CPU. Cheap to clone; clones share one model.
#[derive(Clone)]
pub struct LocalLlm {
    inner: Arc<Inner>,
}

struct Inner {
    model: Mutex<ModelWeights>,
    tokenizer: Tokenizer,
    markers: Markers,
    device: Device,
    context_tokens: usize,
    seed: u64,
}

/// Token ids of the chat markers and the pieces every prompt is built from.
#[derive(Debug, Clone)]
struct Markers {
    im_start: u32,
    im_end: u32,
    /// Tokens that end an answer: `<|im_end|>`, end-of-text, and the start of another turn.
    stops: HashSet<u32>,
    newline: Vec<u32>,
    cut: Vec<u32>,
    assistant_header: Vec<u32>,
}

impl std::fmt::Debug for LocalLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLlm")
            .field("model", &MODEL_NAME)
            .field("context_tokens", &self.inner.context_tokens)
            .field("seed", &self.inner.seed)
            .finish_non_exhaustive()
    }
}

fn local_error(context: &str) -> impl Fn(candle_core::Error) -> LlmError + '_ {
    move |e| LlmError::Local(format!("{context}: {e}"))
}

impl LocalLlm {
    /// Loads the model installed in `models_dir` (checking its checksum through
    /// `models::verify`). A missing or damaged install gives `LlmError::Local` naming
    /// `frontdesk models fetch --llm`. Blocks for a second or two: async code should call it
    /// through `tokio::task::spawn_blocking`.
    pub fn load_from_models_dir(models_dir: &Path, options: LocalLlmOptions) -> Result<Self, LlmError> {
        let dir = models::verify(models_dir, &SMOLLM2).map_err(|e| {
            let command = SMOLLM2.fetch_command();
            let message = e.to_string();
            if message.contains(command) {
                LlmError::Local(message)
            } else {
                LlmError::Local(format!("{message} (the local model is installed with `{command}`)"))
            }
        })?;
        Self::load(&dir, options)
    }

    /// Loads the model from `model_dir`, the model's own directory (e.g.
    /// `models::model_path(models_dir, &models::SMOLLM2)`). Does not check the file's checksum;
    /// [`LocalLlm::load_from_models_dir`] does. Blocks like it.
    pub fn load(model_dir: &Path, options: LocalLlmOptions) -> Result<Self, LlmError> {
        let path = model_dir.join(GGUF_FILE);
        let file = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                LlmError::Local(format!(
                    "the local model is not installed ({} is missing): run `{}`",
                    path.display(),
                    SMOLLM2.fetch_command()
                ))
            } else {
                LlmError::Local(format!("cannot open {}: {e}", path.display()))
            }
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let file_text = path.display().to_string();
        let fail = |what: &str| {
            let context = format!("cannot {what} {file_text}");
            move |e: String| LlmError::Local(format!("{context}: {e}"))
        };
        let content = Content::read(&mut reader).map_err(|e| fail("read")(e.to_string()))?;
        let tokenizer = tokenizer_from_gguf(&content.metadata).map_err(fail("build the tokenizer from"))?;
        let markers = Markers::new(&tokenizer, &content.metadata)?;

        let model_limit = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(quantized_llama::MAX_SEQ_LEN, |n| n as usize)
            .clamp(MIN_CONTEXT_TOKENS, quantized_llama::MAX_SEQ_LEN);
        let context_tokens = options.max_context_tokens.clamp(MIN_CONTEXT_TOKENS, model_limit);

        let device = Device::Cpu;
        let (content, mut weights) = dequantize(content, reader, &device);
        let model = ModelWeights::from_gguf(content, &mut weights, &device)
            .map_err(|e| fail("load the model in")(e.to_string()))?;
        drop(weights);

        Ok(LocalLlm {
            inner: Arc::new(Inner {
                model: Mutex::new(model),
                tokenizer,
                markers,
                device,
                context_tokens,
                seed: options.seed,
            }),
        })
    }

    /// The context window in effect (after clamping), in tokens.
    pub fn context_tokens(&self) -> usize {
        self.inner.context_tokens
    }

    /// The model's tokenizer. Chat markers in text are tokenised as plain text; the prompt
    /// builder inserts the real markers itself.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.inner.tokenizer
    }

    /// Generates on the calling thread; for benchmarks and command-line tools. Async code
    /// should use [`Llm::complete`], which moves this work off the runtime.
    pub fn complete_blocking(
        &self,
        request: &ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<LocalCompletion, LlmError> {
        self.inner.generate(request, deltas.as_ref(), &AtomicBool::new(false))
    }
}

#[async_trait]
impl Llm for LocalLlm {
    fn name(&self) -> String {
        MODEL_NAME.to_string()
    }

    async fn complete(
        &self,
        request: &ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<ChatResponse, LlmError> {
        let inner = Arc::clone(&self.inner);
        let request = request.clone();
        let cancel = CancelOnDrop::default();
        let cancelled = Arc::clone(&cancel.flag);
        let task = tokio::task::spawn_blocking(move || inner.generate(&request, deltas.as_ref(), &cancelled));
        let result = task.await.map_err(|e| LlmError::Local(format!("the generation task failed: {e}")))?;
        drop(cancel);
        result.map(|done| done.response)
    }
}

/// Tells a running generation to stop when the caller stops waiting for it (a timeout, a
/// customer who left): the future holding this is dropped, and the next token is not computed.
#[derive(Default)]
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::Relaxed);
    }
}

impl Inner {
    fn generate(
        &self,
        request: &ChatRequest,
        deltas: Option<&UnboundedSender<String>>,
        cancelled: &AtomicBool,
    ) -> Result<LocalCompletion, LlmError> {
        let requested = request.max_tokens as usize;
        // Room kept for the answer; a huge max_tokens may not squeeze the prompt to nothing.
        let answer_room = requested.min(self.context_tokens / 2);
        let budget = self.context_tokens - answer_room;
        let prompt = self.build_prompt(&request.messages, budget)?;
        let max_new = requested.min(self.context_tokens.saturating_sub(prompt.len()));

        let mut stats = GenerationStats {
            prompt_tokens: prompt.len(),
            prompt_time: Duration::ZERO,
            generated_tokens: 0,
            generation_time: Duration::ZERO,
        };
        let mut stream = TextStream::new(&self.tokenizer);
        let mut finish = FinishReason::Length;

        if max_new > 0 {
            let mut processor = if request.temperature <= GREEDY_BELOW {
                LogitsProcessor::from_sampling(self.seed, Sampling::ArgMax)
            } else {
                LogitsProcessor::from_sampling(self.seed, Sampling::All { temperature: f64::from(request.temperature) })
            };
            let mut model = self.model.lock().unwrap_or_else(PoisonError::into_inner);
            model.clear_kv_cache();

            let started = Instant::now();
            let mut logits = self.read_prompt(&mut model, &prompt)?;
            stats.prompt_time = started.elapsed();

            let generating = Instant::now();
            loop {
                if cancelled.load(Ordering::Relaxed) {
                    finish = FinishReason::Other;
                    break;
                }
                let next = processor.sample(&logits).map_err(local_error("choosing the next token failed"))?;
                if self.markers.stops.contains(&next) {
                    finish = FinishReason::Stop;
                    break;
                }
                if let Some(delta) = stream.push(next)? {
                    send(deltas, delta);
                }
                if stream.len() >= max_new {
                    break;
                }
                let position = prompt.len() + stream.len() - 1;
                logits = Tensor::new(&[next], &self.device)
                    .and_then(|t| t.unsqueeze(0))
                    .and_then(|input| model.forward(&input, position))
                    .and_then(|l| l.squeeze(0))
                    .map_err(local_error("generating failed"))?;
            }
            stats.generation_time = generating.elapsed();
            // Free the attention cache now rather than keep it until the next request.
            model.clear_kv_cache();
        }

        stats.generated_tokens = stream.len();
        let (text, rest) = stream.finish()?;
        if let Some(delta) = rest {
            send(deltas, delta);
        }
        tracing::debug!(
            model = MODEL_NAME,
            prompt_tokens = stats.prompt_tokens,
            prompt_tokens_per_second = stats.prompt_tokens_per_second(),
            generated_tokens = stats.generated_tokens,
            generated_tokens_per_second = stats.generation_tokens_per_second(),
            "local generation finished"
        );
        Ok(LocalCompletion {
            response: ChatResponse {
                text,
                model: MODEL_NAME.to_string(),
                tokens_in: saturating_u32(stats.prompt_tokens),
                tokens_out: saturating_u32(stats.generated_tokens),
                finish,
                attempts: 1,
                cost_usd: 0.0,
            },
            stats,
        })
    }

    /// Runs the prompt through the model, filling its attention cache, and returns the logits
    /// for the first answer token. The prompt goes in pieces of `PREFILL_CHUNK` tokens: each
    /// piece attends only to what precedes it, which skips the masked half of a full
    /// prompt-by-prompt attention matrix and reads long prompts about 1.7 times faster.
    fn read_prompt(&self, model: &mut ModelWeights, prompt: &[u32]) -> Result<Tensor, LlmError> {
        let mut logits = None;
        for (i, piece) in prompt.chunks(PREFILL_CHUNK).enumerate() {
            let step = Tensor::new(piece, &self.device)
                .and_then(|t| t.unsqueeze(0))
                .and_then(|input| model.forward(&input, i * PREFILL_CHUNK))
                .and_then(|l| l.squeeze(0))
                .map_err(local_error("reading the prompt failed"))?;
            logits = Some(step);
        }
        logits.ok_or_else(|| LlmError::Local("the prompt is empty".to_string()))
    }

    /// The ChatML prompt for `messages`, shortened to at most `budget` tokens (see the module
    /// documentation for how).
    fn build_prompt(&self, messages: &[ChatMessage], budget: usize) -> Result<Vec<u32>, LlmError> {
        let mut turns = Vec::with_capacity(messages.len() + 1);
        if !messages.iter().any(|m| m.role == Role::System) {
            turns.push(Turn { protected: true, tokens: self.encode(&format!("system\n{DEFAULT_SYSTEM_PROMPT}"))? });
        }
        // The question being answered: the last user message (or the last message of any kind).
        let question = messages.iter().rposition(|m| m.role == Role::User).or_else(|| messages.len().checked_sub(1));
        for (i, message) in messages.iter().enumerate() {
            let role = match message.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            turns.push(Turn {
                protected: message.role == Role::System || Some(i) == question,
                tokens: self.encode(&format!("{role}\n{}", message.content))?,
            });
        }

        // Each turn is wrapped as <|im_start|> tokens <|im_end|> newline.
        let per_turn = 2 + self.markers.newline.len();
        let fixed = 1 + self.markers.assistant_header.len();
        let available = budget.checked_sub(fixed + per_turn * turns.len());
        let fitted = available.and_then(|room| fit_turns(&mut turns, room, per_turn, &self.markers.cut).then_some(()));
        if fitted.is_none() {
            return Err(LlmError::Local(format!(
                "the conversation does not fit in the local model's context window of {} tokens \
                 even after shortening it",
                self.context_tokens
            )));
        }

        let mut prompt = Vec::with_capacity(budget);
        for turn in &turns {
            prompt.push(self.markers.im_start);
            prompt.extend_from_slice(&turn.tokens);
            prompt.push(self.markers.im_end);
            prompt.extend_from_slice(&self.markers.newline);
        }
        prompt.push(self.markers.im_start);
        prompt.extend_from_slice(&self.markers.assistant_header);
        Ok(prompt)
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        encode(&self.tokenizer, text)
    }
}

fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, LlmError> {
    tokenizer
        .encode(text, false)
        .map(|encoding| encoding.get_ids().to_vec())
        .map_err(|e| LlmError::Local(format!("tokenization failed: {e}")))
}

fn send(deltas: Option<&UnboundedSender<String>>, delta: String) {
    if let Some(deltas) = deltas {
        // A listener that went away does not stop the answer: the caller still gets it whole.
        let _ = deltas.send(delta);
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

///
/// Text is only released when it ends on a complete character (a byte-level tokenizer may
/// split one character over several tokens). Leading whitespace is never released and trailing
/// whitespace is held back until more text follows, so the answer comes out trimmed and the
/// released pieces always add up to exactly the final text.
struct TextStream<'a> {
    tokenizer: &'a Tokenizer,
    ids: Vec<u32>,
    released: String,
}

impl<'a> TextStream<'a> {
    fn new(tokenizer: &'a Tokenizer) -> Self {
        TextStream { tokenizer, ids: Vec::new(), released: String::new() }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn decode(&self) -> Result<String, LlmError> {
        self.tokenizer.decode(&self.ids, true).map_err(|e| LlmError::Local(format!("decoding failed: {e}")))
    }

    /// Adds a token; returns the text it completes, if any.
    fn push(&mut self, id: u32) -> Result<Option<String>, LlmError> {
        self.ids.push(id);
        let text = self.decode()?;
        if text.ends_with(char::REPLACEMENT_CHARACTER) {
            return Ok(None);
        }
        Ok(self.release(text.trim()))
    }

    fn release(&mut self, settled: &str) -> Option<String> {
        if settled.len() > self.released.len() && settled.starts_with(self.released.as_str()) {
            let delta = settled[self.released.len()..].to_string();
            self.released.push_str(&delta);
            Some(delta)
        } else {
            None
        }
    }

    /// The whole text, and whatever part of it was not released yet.
    fn finish(mut self) -> Result<(String, Option<String>), LlmError> {
        let text = self.decode()?;
        let rest = self.release(text.trim());
        Ok((self.released, rest))
    }
}

impl Markers {
    fn new(tokenizer: &Tokenizer, metadata: &std::collections::HashMap<String, Value>) -> Result<Self, LlmError> {
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| LlmError::Local(format!("the model's vocabulary has no {token} token")))
        };
        let im_start = id("<|im_start|>")?;
        let im_end = id("<|im_end|>")?;
        let mut stops = HashSet::from([im_start, im_end]);
        if let Some(eos) = metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok()) {
            stops.insert(eos);
        }
        if let Some(end_of_text) = tokenizer.token_to_id("<|endoftext|>") {
            stops.insert(end_of_text);
        }
        Ok(Markers {
            im_start,
            im_end,
            stops,
            newline: encode(tokenizer, "\n")?,
            cut: encode(tokenizer, CUT_MARKER)?,
            assistant_header: encode(tokenizer, "assistant\n")?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::context::MIN_MESSAGE_TOKENS;
    use super::*;
    use tokenizers::decoders::byte_level::ByteLevel;
    use tokenizers::models::bpe::{Vocab, BPE};

    fn turn(protected: bool, len: usize, fill: u32) -> Turn {
        Turn { protected, tokens: vec![fill; len] }
    }

    #[test]
    fn fitting_drops_the_oldest_unprotected_turns_first() {
        let mut turns =
            vec![turn(true, 10, 0), turn(false, 50, 1), turn(false, 50, 2), turn(false, 50, 3), turn(true, 20, 4)];
        // 180 tokens, 3 per turn; dropping two old turns frees 2 * (50 + 3).
        assert!(fit_turns(&mut turns, 100, 3, &[9]));
        let kept: Vec<u32> = turns.iter().map(|t| t.tokens[0]).collect();
        assert_eq!(kept, vec![0, 3, 4]);
    }

    #[test]
    fn fitting_cuts_the_middle_of_the_longest_protected_turn() {
        let mut system: Vec<u32> = (0..20).collect();
        system.extend(std::iter::repeat_n(7, 10));
        let mut question: Vec<u32> = std::iter::repeat_n(5, 300).collect();
        question.extend([100, 101, 102]);
        question[0] = 42;
        let mut turns = vec![
            Turn { protected: true, tokens: system.clone() },
            turn(false, 40, 1),
            Turn { protected: true, tokens: question },
        ];
        assert!(fit_turns(&mut turns, 200, 3, &[9, 9]));
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0].tokens, system);
        let cut = &turns[1].tokens;
        let total: usize = turns.iter().map(|t| t.tokens.len()).sum();
        assert!(total <= 200 + 3, "{total}");
        assert_eq!(cut[0], 42);
        assert!(cut.ends_with(&[100, 101, 102]));
        assert!(cut.windows(2).any(|w| w == [9, 9]));
    }

    #[test]
    fn fitting_gives_up_when_nothing_can_be_shortened() {
        let mut turns = vec![turn(true, MIN_MESSAGE_TOKENS, 0), turn(true, 40, 1)];
        assert!(!fit_turns(&mut turns, 50, 3, &[9]));
    }

    /// A byte-level tokenizer with one token per byte: every multi-byte character is split.
    fn bytewise_tokenizer() -> Tokenizer {
        let vocab: Vocab =
            ByteLevel::alphabet().into_iter().enumerate().map(|(i, c)| (c.to_string(), i as u32)).collect();
        let bpe = BPE::builder().vocab_and_merges(vocab, Vec::new()).build().unwrap();
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tokenizer.with_decoder(Some(ByteLevel::new(false, true, true)));
        tokenizer
    }

    #[test]
    fn streamed_text_never_splits_characters_and_adds_up_to_the_answer() {
        let tokenizer = bytewise_tokenizer();
        let text = "  Grüße — your refund (€30) is on its way ✓ 👍 \n ";
        let ids = encode(&tokenizer, text).unwrap();
        assert!(ids.len() > text.chars().count());
        let mut stream = TextStream::new(&tokenizer);
        let mut pieces = Vec::new();
        for id in ids {
            if let Some(piece) = stream.push(id).unwrap() {
                assert!(!piece.contains(char::REPLACEMENT_CHARACTER), "{piece:?}");
                pieces.push(piece);
            }
        }
        let (whole, rest) = stream.finish().unwrap();
        pieces.extend(rest);
        assert_eq!(whole, text.trim());
        assert_eq!(pieces.concat(), whole);
        assert!(pieces.len() > 10);
    }

    #[test]
    fn expanded_weights_match_the_quantized_ones() {
        use candle_core::quantized::{gguf_file, QTensor};
        use std::io::Cursor;

        let device = Device::Cpu;
        let values = Tensor::arange(0f32, 512f32, &device).unwrap().affine(0.01, -2.0).unwrap();
        let quantized = QTensor::quantize(&values.reshape((8, 64)).unwrap(), GgmlDType::Q8_0).unwrap();
        let plain = QTensor::quantize(&Tensor::arange(0f32, 96f32, &device).unwrap(), GgmlDType::F32).unwrap();
        let mut file = Cursor::new(Vec::new());
        gguf_file::write(&mut file, &[], &[("blk.q", &quantized), ("norm", &plain)]).unwrap();
        let bytes = file.into_inner();

        let mut original = Cursor::new(bytes.clone());
        let content = Content::read(&mut original).unwrap();
        let mut reader = Cursor::new(bytes);
        let source = Content::read(&mut reader).unwrap();
        let (expanded, mut weights) = dequantize(source, reader, &device);
        for name in ["blk.q", "norm"] {
            let want = content.tensor(&mut original, name, &device).unwrap();
            let got = expanded.tensor(&mut weights, name, &device).unwrap();
            assert_eq!(got.dtype(), GgmlDType::F32);
            assert_eq!(got.shape(), want.shape());
            let want = want.dequantize(&device).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let got = got.dequantize(&device).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got, want);
        }
        // Read in the other order too: tensors are expanded on demand, wherever they are.
        let got = expanded.tensor(&mut weights, "blk.q", &device).unwrap();
        assert_eq!(got.shape().dims(), &[8, 64]);
    }

    #[test]
    fn missing_model_names_the_fetch_command() {
        let tmp = tempfile::tempdir().unwrap();
        let err = LocalLlm::load(tmp.path(), LocalLlmOptions::default()).unwrap_err();
        assert!(err.to_string().contains("frontdesk models fetch --llm"), "{err}");
        let err = LocalLlm::load_from_models_dir(tmp.path(), LocalLlmOptions::default()).unwrap_err();
        assert!(err.to_string().contains("frontdesk models fetch --llm"), "{err}");
    }
}
