//! A BERT cross-encoder run in-process on the CPU: reranking that sends nothing anywhere.
//!
//! A cross-encoder reads the question and a chunk as one input — `[CLS] question [SEP] chunk
//! [SEP]`, the question's tokens of type 0 and the chunk's of type 1 — so every word of one can
//! attend to every word of the other. That is what makes it a better judge of "does this chunk
//! answer this question" than the separate embeddings retrieval compares, and also why it only
//! runs on the few chunks retrieval found.
//!
//! The model directory holds a Hugging Face `BertForSequenceClassification` checkpoint, such as
//! the ms-marco MiniLM cross-encoders: `config.json`, `model.safetensors` and `tokenizer.json`.
//! The encoder's tensors may carry the `bert.` prefix or not. The score is the classification
//! head on the pooled `[CLS]` state (`pooler.dense` + tanh when the checkpoint has a pooler, the
//! bare `[CLS]` state otherwise): the single logit of a one-label model, or `logit[1] − logit[0]`
//! of a two-label (irrelevant, relevant) one. Logits are not squashed: only their order matters.
//!
//! A pair longer than `max_length` tokens is cut, the longer of the two texts first, never
//! refused. Pairs are sorted by length and run in batches padded to their longest member, with
//! an attention mask so padding changes no score. Loading checks the files against each other
//! (tensor shapes, vocabulary size, a tokenizer that marks pairs) and names the file or tensor
//! that is wrong. The work runs on tokio's blocking pool.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{
    pad_encodings, EncodeInput, Encoding, PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer,
    TruncationDirection, TruncationParams, TruncationStrategy,
};

use super::config::MIN_MAX_LENGTH;
use super::{passage_text, RerankError, Reranker};
use crate::retrieval::Hit;

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// How the cross-encoder truncates and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossEncoderOptions {
    /// Longest question + chunk pair in tokens, special tokens included; clamped to the model's
    /// `max_position_embeddings`.
    pub max_length: usize,
    /// Pairs per forward pass.
    pub batch_size: usize,
}

impl Default for CrossEncoderOptions {
    fn default() -> Self {
        CrossEncoderOptions { max_length: 512, batch_size: 16 }
    }
}

/// A BERT sequence-classification cross-encoder on the CPU.
#[derive(Clone)]
pub struct CrossEncoderReranker {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    model: BertModel,
    /// `pooler.dense`, when the checkpoint has one.
    pooler: Option<Linear>,
    classifier: Linear,
    /// 1 (a relevance logit) or 2 (irrelevant, relevant).
    labels: usize,
    tokenizer: Tokenizer,
    padding: PaddingParams,
    device: Device,
    options: CrossEncoderOptions,
}

impl std::fmt::Debug for CrossEncoderReranker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossEncoderReranker")
            .field("name", &self.inner.name)
            .field("labels", &self.inner.labels)
            .field("pooler", &self.inner.pooler.is_some())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl CrossEncoderReranker {
    /// Loads and checks the model in `dir`. Anything missing or inconsistent is
    /// `rerank_model_invalid` naming the file or tensor.
    pub fn load(dir: &Path, options: CrossEncoderOptions) -> Result<Self, RerankError> {
        let dir_text = dir.display().to_string();
        let invalid = |message: String| RerankError::ModelInvalid { dir: dir_text.clone(), message };
        for file in [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE] {
            if !dir.join(file).is_file() {
                return Err(invalid(format!("{file} is missing")));
            }
        }

        let config_text =
            std::fs::read_to_string(dir.join(CONFIG_FILE)).map_err(|e| invalid(format!("{CONFIG_FILE}: {e}")))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| invalid(format!("{CONFIG_FILE}: {e}")))?;
        let hidden = config.hidden_size;
        if config.type_vocab_size < 2 {
            return Err(invalid(format!(
                "{CONFIG_FILE}: type_vocab_size is {}, a cross-encoder needs token types 0 and 1",
                config.type_vocab_size
            )));
        }
        if config.num_attention_heads == 0 || !hidden.is_multiple_of(config.num_attention_heads) {
            return Err(invalid(format!(
                "{CONFIG_FILE}: hidden_size {hidden} is not a multiple of num_attention_heads {}",
                config.num_attention_heads
            )));
        }

        let device = Device::Cpu;
        let tensors: HashMap<String, Tensor> = candle_core::safetensors::load(dir.join(WEIGHTS_FILE), &device)
            .map_err(|e| invalid(format!("{WEIGHTS_FILE}: {}", candle_message(&e))))?;
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else if tensors.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else {
            return Err(invalid(format!(
                "{WEIGHTS_FILE} has no BERT encoder (no bert.embeddings.word_embeddings.weight)"
            )));
        };
        let labels = match tensors.get("classifier.weight").map(|t| t.dims().to_vec()) {
            None => {
                return Err(invalid(format!(
                    "{WEIGHTS_FILE} has no classifier.weight: not a sequence-classification cross-encoder"
                )))
            }
            Some(dims) if dims.len() == 2 && dims[1] == hidden && (dims[0] == 1 || dims[0] == 2) => dims[0],
            Some(dims) => {
                return Err(invalid(format!(
                    "{WEIGHTS_FILE}: classifier.weight has shape {dims:?}, expected [1, {hidden}] or [2, {hidden}]"
                )))
            }
        };
        let has_pooler = tensors.contains_key(&format!("{prefix}pooler.dense.weight"));

        let tensor_error = |e: candle_core::Error| invalid(format!("{WEIGHTS_FILE}: {}", candle_message(&e)));
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let encoder = if prefix.is_empty() { vb.clone() } else { vb.pp("bert") };
        let model = BertModel::load(encoder.clone(), &config).map_err(tensor_error)?;
        let pooler = if has_pooler {
            Some(candle_nn::linear(hidden, hidden, encoder.pp("pooler").pp("dense")).map_err(tensor_error)?)
        } else {
            None
        };
        let classifier = candle_nn::linear(hidden, labels, vb.pp("classifier")).map_err(tensor_error)?;

        let mut tokenizer =
            Tokenizer::from_file(dir.join(TOKENIZER_FILE)).map_err(|e| invalid(format!("{TOKENIZER_FILE}: {e}")))?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(invalid(format!(
                "{TOKENIZER_FILE} has {vocab} tokens but {CONFIG_FILE} has vocab_size {}",
                config.vocab_size
            )));
        }
        // Inputs are tokenised unpadded (to be sorted by length) and each batch is padded to its
        // longest member, on the right: position ids count from the left.
        let padding = match tokenizer.get_padding() {
            Some(p) => PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                direction: PaddingDirection::Right,
                pad_to_multiple_of: None,
                ..p.clone()
            },
            None => {
                PaddingParams { pad_id: u32::try_from(config.pad_token_id).unwrap_or(0), ..PaddingParams::default() }
            }
        };
        tokenizer.with_padding(None);
        let max_length = options.max_length.max(MIN_MAX_LENGTH).min(config.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| invalid(format!("{TOKENIZER_FILE}: {e}")))?;
        let probe = tokenizer.encode(("a", "b"), true).map_err(|e| invalid(format!("{TOKENIZER_FILE}: {e}")))?;
        // The head reads the first position, so it must be the pair's [CLS]; and the passage must
        // be told apart from the question by its token type.
        if probe.get_special_tokens_mask().first() != Some(&1) || !probe.get_type_ids().contains(&1) {
            return Err(invalid(format!(
                "{TOKENIZER_FILE} does not encode a pair as [CLS] question [SEP] passage [SEP] with token types \
                 0 and 1 (it needs a BERT post-processor)"
            )));
        }

        let options = CrossEncoderOptions { max_length, batch_size: options.batch_size.max(1) };
        Ok(CrossEncoderReranker {
            inner: Arc::new(Inner {
                name: format!("cross-encoder:{dir_text}"),
                model,
                pooler,
                classifier,
                labels,
                tokenizer,
                padding,
                device,
                options,
            }),
        })
    }

    /// The options in effect (after clamping `max_length` to what the model supports).
    pub fn options(&self) -> CrossEncoderOptions {
        self.inner.options
    }

    /// Scores passages for a question on the calling thread (for tools and tests; async code
    /// uses [`Reranker::score`], which moves this off the runtime).
    pub fn score_blocking(&self, question: &str, passages: &[String]) -> Result<Vec<f32>, RerankError> {
        self.inner.score(question, passages)
    }
}

impl Inner {
    fn score(&self, question: &str, passages: &[String]) -> Result<Vec<f32>, RerankError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<EncodeInput> = passages.iter().map(|p| (question, p.as_str()).into()).collect();
        let mut encodings: Vec<Option<Encoding>> = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| self.internal(format!("tokenization failed: {e}")))?
            .into_iter()
            .map(Some)
            .collect();

        // Similar lengths side by side, so each batch pads little.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].as_ref().map_or(0, Encoding::len));

        let mut scores = vec![0.0f32; passages.len()];
        for chunk in order.chunks(self.options.batch_size) {
            let mut batch: Vec<Encoding> = chunk.iter().filter_map(|&i| encodings[i].take()).collect();
            for (&i, score) in chunk.iter().zip(self.score_batch(&mut batch)?) {
                scores[i] = score;
            }
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(self.internal(format!("the model gave passage {i} a score that is not a finite number")));
        }
        Ok(scores)
    }

    /// Pads one batch, runs the encoder and the head, and returns one score per pair.
    fn score_batch(&self, batch: &mut [Encoding]) -> Result<Vec<f32>, RerankError> {
        let compute = |e: candle_core::Error| self.internal(candle_message(&e));
        pad_encodings(batch, &self.padding).map_err(|e| self.internal(format!("padding failed: {e}")))?;
        let rows = batch.len();
        let seq_len = batch.first().map_or(0, Encoding::len);
        let mut ids = Vec::with_capacity(rows * seq_len);
        let mut type_ids = Vec::with_capacity(rows * seq_len);
        let mut mask = Vec::with_capacity(rows * seq_len);
        for encoding in batch.iter() {
            if encoding.len() != seq_len {
                return Err(self.internal("batch rows have different lengths after padding".into()));
            }
            ids.extend_from_slice(encoding.get_ids());
            type_ids.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, seq_len), &self.device).map_err(compute)?;
        let type_ids = Tensor::from_vec(type_ids, (rows, seq_len), &self.device).map_err(compute)?;
        let mask = Tensor::from_vec(mask, (rows, seq_len), &self.device).map_err(compute)?;

        // (rows, seq_len, hidden) → the [CLS] state of each row, (rows, hidden).
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask)).map_err(compute)?;
        let cls = hidden.i((.., 0)).map_err(compute)?;
        let pooled = match &self.pooler {
            Some(pooler) => pooler.forward(&cls).and_then(|t| t.tanh()).map_err(compute)?,
            None => cls,
        };
        let logits = self.classifier.forward(&pooled).and_then(|t| t.to_vec2::<f32>()).map_err(compute)?;
        Ok(logits
            .into_iter()
            .map(|row| match (self.labels, row.as_slice()) {
                (2, [irrelevant, relevant]) => relevant - irrelevant,
                (_, [logit, ..]) => *logit,
                (_, []) => f32::NAN,
            })
            .collect())
    }

    fn internal(&self, message: String) -> RerankError {
        RerankError::Internal { reranker: self.name.clone(), message }
    }
}

/// candle's message without the backtrace it may carry (when `RUST_BACKTRACE` is set).
fn candle_message(e: &candle_core::Error) -> String {
    let mut e = e;
    while let candle_core::Error::WithBacktrace { inner, .. } = e {
        e = inner;
    }
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

#[async_trait]
impl Reranker for CrossEncoderReranker {
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    async fn score(&self, question: &str, hits: &[Hit]) -> Result<Vec<f32>, RerankError> {
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        let inner = Arc::clone(&self.inner);
        let question = question.to_owned();
        let passages: Vec<String> = hits.iter().map(passage_text).collect();
        tokio::task::spawn_blocking(move || inner.score(&question, &passages)).await.map_err(|e| {
            RerankError::Internal { reranker: self.name(), message: format!("the scoring task failed: {e}") }
        })?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rerank::tests::hit;
    use std::path::PathBuf;
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::normalizers::Lowercase;
    use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
    use tokenizers::processors::bert::BertProcessing;

    const VOCAB: &[&str] = &[
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "how", "do", "i", "get", "a", "refund", "on", "my", "annual", "plan",
        "refunds", "are", "paid", "within", "days", "upgrade", "from", "the", "billing", "page", "we", "encrypt",
        "data", "at", "rest", "password", "reset", "link", "email", "click", "forgot",
    ];
    const HIDDEN: usize = 32;
    const LAYERS: usize = 2;
    const INTERMEDIATE: usize = 64;
    const MAX_POSITIONS: usize = 64;

    /// The shape of a tiny test checkpoint.
    #[derive(Clone, Copy)]
    struct Tiny {
        labels: usize,
        pooler: bool,
        /// `"bert."` or `""`.
        prefix: &'static str,
    }

    const STANDARD: Tiny = Tiny { labels: 1, pooler: true, prefix: "bert." };

    /// xorshift64*: the same weights on every run.
    struct Rng(u64);

    impl Rng {
        /// Uniform in [-1, 1).
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
            (bits as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }

        fn tensor(&mut self, shape: &[usize], scale: f32, offset: f32) -> Tensor {
            let n = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|_| offset + scale * self.next()).collect();
            Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
        }
    }

    fn tiny_tensors(t: Tiny) -> HashMap<String, Tensor> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let p = t.prefix;
        let mut out = HashMap::new();
        let mut put = |name: String, tensor: Tensor| {
            out.insert(name, tensor);
        };
        put(format!("{p}embeddings.word_embeddings.weight"), rng.tensor(&[VOCAB.len(), HIDDEN], 1.0, 0.0));
        put(format!("{p}embeddings.position_embeddings.weight"), rng.tensor(&[MAX_POSITIONS, HIDDEN], 0.5, 0.0));
        put(format!("{p}embeddings.token_type_embeddings.weight"), rng.tensor(&[2, HIDDEN], 0.5, 0.0));
        let norm = |rng: &mut Rng, at: String, put: &mut dyn FnMut(String, Tensor)| {
            put(format!("{at}.weight"), rng.tensor(&[HIDDEN], 0.1, 1.0));
            put(format!("{at}.bias"), rng.tensor(&[HIDDEN], 0.1, 0.0));
        };
        let linear = |rng: &mut Rng, at: String, out_dim: usize, in_dim: usize, put: &mut dyn FnMut(String, Tensor)| {
            put(format!("{at}.weight"), rng.tensor(&[out_dim, in_dim], 0.3, 0.0));
            put(format!("{at}.bias"), rng.tensor(&[out_dim], 0.1, 0.0));
        };
        norm(&mut rng, format!("{p}embeddings.LayerNorm"), &mut put);
        for layer in 0..LAYERS {
            let at = format!("{p}encoder.layer.{layer}");
            for part in ["query", "key", "value"] {
                linear(&mut rng, format!("{at}.attention.self.{part}"), HIDDEN, HIDDEN, &mut put);
            }
            linear(&mut rng, format!("{at}.attention.output.dense"), HIDDEN, HIDDEN, &mut put);
            norm(&mut rng, format!("{at}.attention.output.LayerNorm"), &mut put);
            linear(&mut rng, format!("{at}.intermediate.dense"), INTERMEDIATE, HIDDEN, &mut put);
            linear(&mut rng, format!("{at}.output.dense"), HIDDEN, INTERMEDIATE, &mut put);
            norm(&mut rng, format!("{at}.output.LayerNorm"), &mut put);
        }
        if t.pooler {
            linear(&mut rng, format!("{p}pooler.dense"), HIDDEN, HIDDEN, &mut put);
        }
        linear(&mut rng, "classifier".into(), t.labels, HIDDEN, &mut put);
        out
    }

    fn write_tensors(dir: &Path, tensors: &HashMap<String, Tensor>) {
        candle_core::safetensors::save(tensors, dir.join(WEIGHTS_FILE)).unwrap();
    }

    fn write_config(dir: &Path) {
        let config = serde_json::json!({
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "vocab_size": VOCAB.len(),
            "hidden_size": HIDDEN,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": 2,
            "intermediate_size": INTERMEDIATE,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": MAX_POSITIONS,
            "type_vocab_size": 2,
            "initializer_range": 0.02,
            "layer_norm_eps": 1e-12,
            "pad_token_id": 0,
            "id2label": {"0": "LABEL_0"},
        });
        std::fs::write(dir.join(CONFIG_FILE), config.to_string()).unwrap();
    }

    /// A word-level tokenizer over `VOCAB` with BERT's pair template, saved as tokenizer.json.
    fn write_tokenizer(dir: &Path) {
        let vocab = VOCAB.iter().enumerate().map(|(i, w)| (w.to_string(), i as u32)).collect();
        let model = WordLevel::builder().vocab(vocab).unk_token("[UNK]".into()).build().unwrap();
        let mut tokenizer = Tokenizer::new(model);
        tokenizer.with_normalizer(Some(Lowercase)).unwrap();
        tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
        tokenizer.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), 3), ("[CLS]".into(), 2))));
        tokenizer.save(dir.join(TOKENIZER_FILE), false).unwrap();
    }

    fn tiny_model(t: Tiny) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path());
        write_tensors(dir.path(), &tiny_tensors(t));
        write_tokenizer(dir.path());
        dir
    }

    fn load(dir: &Path, max_length: usize, batch_size: usize) -> CrossEncoderReranker {
        CrossEncoderReranker::load(dir, CrossEncoderOptions { max_length, batch_size }).unwrap()
    }

    /// The score worked out from the checkpoint with candle's encoder and the head done by hand:
    /// one pair, no padding, no mask.
    fn by_hand(dir: &Path, t: Tiny, question: &str, passage: &str) -> f32 {
        let tensors = candle_core::safetensors::load(dir.join(WEIGHTS_FILE), &Device::Cpu).unwrap();
        let config: Config = serde_json::from_str(&std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
        let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
        let vb = if t.prefix.is_empty() { vb } else { vb.pp("bert") };
        let bert = BertModel::load(vb, &config).unwrap();
        let tokenizer = Tokenizer::from_file(dir.join(TOKENIZER_FILE)).unwrap();
        let encoding = tokenizer.encode((question, passage), true).unwrap();
        assert_eq!(encoding.get_ids()[0], 2, "starts with [CLS]");
        assert!(encoding.get_type_ids().contains(&1), "the passage is type 1");
        let row = |v: &[u32]| Tensor::new(v, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let hidden = bert.forward(&row(encoding.get_ids()), &row(encoding.get_type_ids()), None).unwrap();
        let cls: Vec<f32> = hidden.i((0, 0)).unwrap().to_vec1().unwrap();

        let dense = |name: &str, input: &[f32]| -> Vec<f32> {
            let w: Vec<Vec<f32>> = tensors[&format!("{name}.weight")].to_vec2().unwrap();
            let b: Vec<f32> = tensors[&format!("{name}.bias")].to_vec1().unwrap();
            w.iter().zip(b).map(|(row, bias)| row.iter().zip(input).map(|(a, x)| a * x).sum::<f32>() + bias).collect()
        };
        let pooled = if t.pooler {
            dense(&format!("{}pooler.dense", t.prefix), &cls).into_iter().map(f32::tanh).collect()
        } else {
            cls
        };
        let logits = dense("classifier", &pooled);
        if t.labels == 2 {
            logits[1] - logits[0]
        } else {
            logits[0]
        }
    }

    const QUESTION: &str = "how do i get a refund on my annual plan";

    fn passages() -> Vec<String> {
        [
            "refunds are paid within days",
            "upgrade from the billing page",
            "we encrypt data at rest and we encrypt data in transit",
            "click forgot password and a reset link is sent to your email",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-4 * (1.0 + b.abs())
    }

    #[test]
    fn the_score_is_the_classification_head_on_the_pooled_cls_state() {
        let dir = tiny_model(STANDARD);
        let r = load(dir.path(), 64, 8);
        let passage = "refunds are paid within days";
        let score = r.score_blocking(QUESTION, &[passage.to_string()]).unwrap()[0];
        let expected = by_hand(dir.path(), STANDARD, QUESTION, passage);
        assert!(close(score, expected), "{score} vs {expected}");
    }

    #[test]
    fn a_two_label_model_scores_relevant_minus_irrelevant() {
        let t = Tiny { labels: 2, ..STANDARD };
        let dir = tiny_model(t);
        let r = load(dir.path(), 64, 8);
        let passage = "upgrade from the billing page";
        let score = r.score_blocking(QUESTION, &[passage.to_string()]).unwrap()[0];
        let expected = by_hand(dir.path(), t, QUESTION, passage);
        assert!(close(score, expected), "{score} vs {expected}");
    }

    #[test]
    fn a_checkpoint_without_the_bert_prefix_or_a_pooler_uses_the_cls_state() {
        let t = Tiny { labels: 1, pooler: false, prefix: "" };
        let dir = tiny_model(t);
        let r = load(dir.path(), 64, 8);
        let passage = "click forgot password";
        let score = r.score_blocking(QUESTION, &[passage.to_string()]).unwrap()[0];
        let expected = by_hand(dir.path(), t, QUESTION, passage);
        assert!(close(score, expected), "{score} vs {expected}");
    }

    #[test]
    fn scoring_a_batch_equals_scoring_each_pair_alone() {
        let dir = tiny_model(STANDARD);
        let batched = load(dir.path(), 64, 8).score_blocking(QUESTION, &passages()).unwrap();
        let ragged = load(dir.path(), 64, 3).score_blocking(QUESTION, &passages()).unwrap();
        let alone_reranker = load(dir.path(), 64, 1);
        let alone: Vec<f32> = passages()
            .iter()
            .map(|p| alone_reranker.score_blocking(QUESTION, std::slice::from_ref(p)).unwrap()[0])
            .collect();
        assert_eq!(batched.len(), 4);
        for i in 0..4 {
            assert!(close(batched[i], alone[i]) && close(ragged[i], alone[i]), "{batched:?} {ragged:?} {alone:?}");
        }
        // Different passages, different scores: the padding is not what is being scored.
        assert!((alone[0] - alone[2]).abs() > 1e-3, "{alone:?}");
    }

    #[test]
    fn a_pair_longer_than_max_length_is_cut_not_refused() {
        let dir = tiny_model(STANDARD);
        let r = load(dir.path(), 16, 4);
        assert_eq!(r.options().max_length, 16);
        let words: Vec<&str> =
            "refunds are paid within days on my annual plan from the billing page".split(' ').collect();
        let long = words.iter().cycle().take(50).cloned().collect::<Vec<_>>().join(" ");
        let question = "how do i get a refund"; // 6 tokens
        let score = r.score_blocking(question, &[long]).unwrap()[0];
        assert!(score.is_finite());
        // 16 tokens = [CLS] + 6 question tokens + [SEP] + 7 passage tokens + [SEP]: the longer
        // text, the passage, is the one cut.
        let kept = words[..7].join(" ");
        let expected = r.score_blocking(question, &[kept]).unwrap()[0];
        assert!(close(score, expected), "{score} vs {expected}");
        // Both sides too long is still no error.
        let both = r.score_blocking(&"how do i get a refund ".repeat(10), &[long_text()]).unwrap();
        assert!(both[0].is_finite());
    }

    fn long_text() -> String {
        "we encrypt data at rest ".repeat(20)
    }

    #[test]
    fn max_length_is_limited_to_the_models_positions() {
        let dir = tiny_model(STANDARD);
        assert_eq!(load(dir.path(), 512, 4).options().max_length, MAX_POSITIONS);
        let long = vec![long_text()];
        assert!(load(dir.path(), 512, 4).score_blocking(QUESTION, &long).unwrap()[0].is_finite());
    }

    #[tokio::test]
    async fn hits_get_one_finite_score_each_off_the_runtime() {
        let dir = tiny_model(STANDARD);
        let r = load(dir.path(), 64, 2);
        assert!(r.name().starts_with("cross-encoder:"), "{}", r.name());
        let hits = vec![
            hit("a", "Refunds", &["Refunds"], "Refunds are paid within days"),
            hit("b", "Billing", &[], "Upgrade from the billing page"),
            hit("c", "Security", &["Data"], "We encrypt data at rest"),
        ];
        let scores = r.score(QUESTION, &hits).await.unwrap();
        assert_eq!(scores.len(), 3);
        assert!(scores.iter().all(|s| s.is_finite()), "{scores:?}");
        let texts: Vec<String> = hits.iter().map(passage_text).collect();
        assert_eq!(scores, r.score_blocking(QUESTION, &texts).unwrap());
        assert!(r.score(QUESTION, &[]).await.unwrap().is_empty());
        let ranked = crate::rerank::rerank(&r, QUESTION, &hits, 2).await.unwrap();
        assert_eq!(ranked.len(), 2);
    }

    fn load_error(dir: &Path) -> String {
        let err = CrossEncoderReranker::load(dir, CrossEncoderOptions::default()).unwrap_err();
        assert_eq!(err.code(), "rerank_model_invalid", "{err}");
        assert_eq!(err.fault(), crate::rerank::Fault::Config);
        err.to_string()
    }

    #[test]
    fn a_missing_file_is_named() {
        for file in [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE] {
            let dir = tiny_model(STANDARD);
            std::fs::remove_file(dir.path().join(file)).unwrap();
            let message = load_error(dir.path());
            assert!(message.contains(&format!("{file} is missing")), "{message}");
            assert!(message.contains(&dir.path().display().to_string()), "{message}");
        }
    }

    #[test]
    fn a_tensor_of_the_wrong_shape_is_named() {
        let dir = tiny_model(STANDARD);
        let mut tensors = tiny_tensors(STANDARD);
        let name = "bert.encoder.layer.1.attention.self.query.weight";
        tensors.insert(name.into(), Tensor::zeros((HIDDEN, HIDDEN - 1), DType::F32, &Device::Cpu).unwrap());
        write_tensors(dir.path(), &tensors);
        let message = load_error(dir.path());
        assert!(message.contains(WEIGHTS_FILE) && message.contains(name), "{message}");
        assert!(!message.contains('\n'), "no backtrace in the message: {message}");
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let dir = tiny_model(STANDARD);
        let mut tensors = tiny_tensors(STANDARD);
        tensors.remove("bert.encoder.layer.0.output.LayerNorm.bias");
        write_tensors(dir.path(), &tensors);
        let message = load_error(dir.path());
        assert!(message.contains("bert.encoder.layer.0.output.LayerNorm.bias"), "{message}");
    }

    #[test]
    fn a_classifier_that_is_missing_or_has_three_labels_is_named() {
        let dir = tiny_model(STANDARD);
        let mut tensors = tiny_tensors(STANDARD);
        tensors.insert("classifier.weight".into(), Tensor::zeros((3, HIDDEN), DType::F32, &Device::Cpu).unwrap());
        write_tensors(dir.path(), &tensors);
        let message = load_error(dir.path());
        assert!(message.contains("classifier.weight has shape [3, 32]"), "{message}");
        tensors.remove("classifier.weight");
        write_tensors(dir.path(), &tensors);
        let message = load_error(dir.path());
        assert!(message.contains("no classifier.weight"), "{message}");
    }

    #[test]
    fn a_pooler_of_the_wrong_shape_is_named() {
        let dir = tiny_model(STANDARD);
        let mut tensors = tiny_tensors(STANDARD);
        tensors.insert("bert.pooler.dense.bias".into(), Tensor::zeros(HIDDEN + 1, DType::F32, &Device::Cpu).unwrap());
        write_tensors(dir.path(), &tensors);
        let message = load_error(dir.path());
        assert!(message.contains("bert.pooler.dense.bias"), "{message}");
    }

    #[test]
    fn broken_or_mismatched_files_are_named() {
        let dir = tiny_model(STANDARD);
        std::fs::write(dir.path().join(CONFIG_FILE), "{\"hidden_size\": 32}").unwrap();
        let message = load_error(dir.path());
        assert!(message.contains(CONFIG_FILE), "{message}");

        let dir = tiny_model(STANDARD);
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"not safetensors").unwrap();
        let message = load_error(dir.path());
        assert!(message.contains(WEIGHTS_FILE), "{message}");

        let dir = tiny_model(STANDARD);
        std::fs::write(dir.path().join(TOKENIZER_FILE), "{}").unwrap();
        let message = load_error(dir.path());
        assert!(message.contains(TOKENIZER_FILE), "{message}");
    }

    #[test]
    fn a_tokenizer_that_adds_no_cls_and_sep_is_refused() {
        let dir = tiny_model(STANDARD);
        let vocab = VOCAB.iter().enumerate().map(|(i, w)| (w.to_string(), i as u32)).collect();
        let mut tokenizer =
            Tokenizer::new(WordLevel::builder().vocab(vocab).unk_token("[UNK]".into()).build().unwrap());
        tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
        tokenizer.save(dir.path().join(TOKENIZER_FILE), false).unwrap();
        let message = load_error(dir.path());
        assert!(message.contains("[CLS] question [SEP] passage [SEP]"), "{message}");
    }

    #[test]
    fn a_tokenizer_larger_than_the_models_vocabulary_is_refused() {
        let dir = tiny_model(STANDARD);
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap()).unwrap();
        config["vocab_size"] = serde_json::json!(10);
        std::fs::write(dir.path().join(CONFIG_FILE), config.to_string()).unwrap();
        let mut tensors = tiny_tensors(STANDARD);
        tensors.insert(
            "bert.embeddings.word_embeddings.weight".into(),
            Tensor::zeros((10, HIDDEN), DType::F32, &Device::Cpu).unwrap(),
        );
        write_tensors(dir.path(), &tensors);
        let message = load_error(dir.path());
        assert!(message.contains("vocab_size 10"), "{message}");
    }

    #[test]
    fn the_reranker_is_named_after_its_directory() {
        let dir = tiny_model(STANDARD);
        let expected = format!("cross-encoder:{}", PathBuf::from(dir.path()).display());
        assert_eq!(load(dir.path(), 64, 8).name(), expected);
    }
}
