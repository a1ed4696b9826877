//! The local embedder: all-MiniLM-L6-v2 run in-process on the CPU.
//!
//! This is what lets frontdesk search help docs and tickets by meaning without sending a
//! customer's words to any outside service. Texts are tokenised, run through the BERT encoder,
//! mean-pooled over their real tokens (the attention mask leaves padding out) and scaled to unit
//! length, which is how the model was trained to be used.
//!
//! Batches are padded only to their longest member. To keep that padding small, `embed` sorts
//! the inputs by token count, embeds them in batches of similar length and puts the vectors back
//! in input order. The model is loaded once and shared; the heavy compute runs on tokio's
//! blocking pool so it never stalls the async runtime.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{pad_encodings, Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{l2_normalize, EmbedError, Embedder};
use crate::models::MINILM;

/// Files the embedder reads from the model directory.
const WEIGHTS_FILE: &str = "model.safetensors";
const TOKENIZER_FILE: &str = "tokenizer.json";
const CONFIG_FILE: &str = "config.json";

/// How the local embedder batches and truncates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BertOptions {
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Longest input in tokens (including the two special tokens); longer texts are truncated.
    /// all-MiniLM-L6-v2 was trained with 256.
    pub max_tokens: usize,
}

impl Default for BertOptions {
    fn default() -> Self {
        BertOptions { batch_size: 32, max_tokens: 256 }
    }
}

/// all-MiniLM-L6-v2 on the CPU, producing 384-dimensional unit vectors.
#[derive(Clone)]
pub struct LocalBertEmbedder {
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    padding: PaddingParams,
    device: Device,
    dimensions: usize,
    options: BertOptions,
}

impl std::fmt::Debug for LocalBertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBertEmbedder")
            .field("model_id", &MINILM.name)
            .field("dimensions", &self.inner.dimensions)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl LocalBertEmbedder {
    /// Loads the model from `model_dir` (the model's own directory, e.g.
    /// `models::model_path(models_dir, &models::MINILM)`; run `models::verify` first to check
    /// the files' checksums). Missing files give `EmbedError::ModelMissing`.
    pub fn load(model_dir: &Path, options: BertOptions) -> Result<Self, EmbedError> {
        let dir_text = model_dir.display().to_string();
        for name in [WEIGHTS_FILE, TOKENIZER_FILE, CONFIG_FILE] {
            if !model_dir.join(name).is_file() {
                return Err(EmbedError::ModelMissing { dir: dir_text });
            }
        }
        let load_error = |message: String| EmbedError::ModelLoad { dir: dir_text.clone(), message };

        let config_text = std::fs::read_to_string(model_dir.join(CONFIG_FILE))
            .map_err(|e| load_error(format!("{CONFIG_FILE}: {e}")))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| load_error(format!("{CONFIG_FILE}: {e}")))?;

        let device = Device::Cpu;
        let tensors: HashMap<String, Tensor> = candle_core::safetensors::load(model_dir.join(WEIGHTS_FILE), &device)
            .map_err(|e| load_error(format!("{WEIGHTS_FILE}: {e}")))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| load_error(format!("{WEIGHTS_FILE}: {e}")))?;

        let max_tokens = options.max_tokens.clamp(2, config.max_position_embeddings.max(2));
        let options = BertOptions { batch_size: options.batch_size.max(1), max_tokens };

        let mut tokenizer = Tokenizer::from_file(model_dir.join(TOKENIZER_FILE))
            .map_err(|e| load_error(format!("{TOKENIZER_FILE}: {e}")))?;
        // The shipped tokenizer pads every input to a fixed 128 tokens and cuts at 128. Inputs
        // are instead tokenised unpadded (so they can be sorted by length), truncated at the
        // model's real limit, and each batch is padded to its own longest member.
        let padding = PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..tokenizer.get_padding().cloned().unwrap_or_default()
        };
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..TruncationParams::default() }))
            .map_err(|e| load_error(format!("{TOKENIZER_FILE}: {e}")))?;

        Ok(LocalBertEmbedder {
            inner: Arc::new(Inner { model, tokenizer, padding, device, dimensions: config.hidden_size, options }),
        })
    }

    /// The options in effect (after clamping `max_tokens` to what the model supports).
    pub fn options(&self) -> BertOptions {
        self.inner.options
    }

    /// Embeds on the calling thread; for benchmarks and command-line tools. Async code should
    /// use [`Embedder::embed`], which moves this work off the runtime.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed(texts)
    }
}

impl Inner {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut encodings: Vec<Option<Encoding>> =
            self.tokenizer.encode_batch(inputs, true).map_err(EmbedError::Tokenize)?.into_iter().map(Some).collect();

        // Similar lengths side by side, so each batch pads little.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].as_ref().map_or(0, Encoding::len));

        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.options.batch_size) {
            let mut batch: Vec<Encoding> = chunk.iter().filter_map(|&i| encodings[i].take()).collect();
            let pooled = self.embed_batch(&mut batch)?;
            for (&i, mut vector) in chunk.iter().zip(pooled) {
                l2_normalize(&mut vector);
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// Runs one batch and returns its mean-pooled (not yet normalised) vectors.
    fn embed_batch(&self, batch: &mut [Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let compute = EmbedError::Model;
        pad_encodings(batch, &self.padding).map_err(EmbedError::Padding)?;
        let rows = batch.len();
        let seq_len = batch.first().map_or(0, Encoding::len);
        let mut ids = Vec::with_capacity(rows * seq_len);
        let mut type_ids = Vec::with_capacity(rows * seq_len);
        let mut mask = Vec::with_capacity(rows * seq_len);
        for encoding in batch.iter() {
            if encoding.len() != seq_len {
                return Err(EmbedError::Ragged);
            }
            ids.extend_from_slice(encoding.get_ids());
            type_ids.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, seq_len), &self.device).map_err(compute)?;
        let type_ids = Tensor::from_vec(type_ids, (rows, seq_len), &self.device).map_err(compute)?;
        let mask = Tensor::from_vec(mask, (rows, seq_len), &self.device).map_err(compute)?;

        // (rows, seq_len, hidden)
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask)).map_err(compute)?;
        // Mean over real tokens only: zero out padding, sum, divide by the real token count.
        let mask = mask.to_dtype(DType::F32).and_then(|m| m.unsqueeze(2)).map_err(compute)?;
        let summed = hidden.broadcast_mul(&mask).and_then(|t| t.sum(1)).map_err(compute)?;
        let counts = mask.sum(1).and_then(|c| c.maximum(1e-9f32)).map_err(compute)?;
        summed.broadcast_div(&counts).and_then(|t| t.to_vec2::<f32>()).map_err(compute)
    }
}

#[async_trait]
impl Embedder for LocalBertEmbedder {
    fn model_id(&self) -> &str {
        MINILM.name
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inner = Arc::clone(&self.inner);
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || inner.embed(&texts)).await.map_err(EmbedError::Task)?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_options() {
        let options = BertOptions::default();
        assert_eq!(options.batch_size, 32);
        assert_eq!(options.max_tokens, 256);
    }

    #[test]
    fn missing_model_files_are_reported_as_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let err = LocalBertEmbedder::load(tmp.path(), BertOptions::default()).unwrap_err();
        assert!(matches!(err, EmbedError::ModelMissing { .. }), "{err}");
        assert!(err.to_string().contains("frontdesk models fetch"));
    }

    #[test]
    fn broken_config_is_a_load_error() {
        let tmp = tempfile::tempdir().unwrap();
        for name in [WEIGHTS_FILE, TOKENIZER_FILE, CONFIG_FILE] {
            std::fs::write(tmp.path().join(name), "not what it should be").unwrap();
        }
        let err = LocalBertEmbedder::load(tmp.path(), BertOptions::default()).unwrap_err();
        assert!(matches!(err, EmbedError::ModelLoad { .. }), "{err}");
        assert!(err.to_string().contains(CONFIG_FILE), "{err}");
    }
}
