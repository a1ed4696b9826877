//! The tokenizer, rebuilt from the GGUF file's metadata.

use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

use super::*;

/// Rebuilds the tokenizer stored in a GGUF file's metadata (GPT-2 style byte-level BPE).
pub(super) fn tokenizer_from_gguf(metadata: &std::collections::HashMap<String, Value>) -> Result<Tokenizer, String> {
    let get = |key: &str| metadata.get(key).ok_or_else(|| format!("{key} is missing"));
    let kind = get("tokenizer.ggml.model")?.to_string().map_err(|e| e.to_string())?;
    if kind != "gpt2" {
        return Err(format!("unsupported tokenizer type {kind:?}"));
    }
    let strings = |key: &str| -> Result<Vec<String>, String> {
        get(key)?
            .to_vec()
            .map_err(|e| format!("{key}: {e}"))?
            .iter()
            .map(|v| v.to_string().cloned().map_err(|e| format!("{key}: {e}")))
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?
        .iter()
        .map(|merge| {
            merge
                .split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format!("malformed merge {merge:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Control tokens (type 3) are the chat markers and the like.
    let types: Vec<i32> = match metadata.get("tokenizer.ggml.token_type") {
        Some(value) => value
            .to_vec()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|v| v.to_i32().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };

    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| Ok((token.clone(), u32::try_from(id).map_err(|e| e.to_string())?)))
        .collect::<Result<_, String>>()?;
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| e.to_string())?;

    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre = metadata.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).map(String::as_str);
    if pre == Some("smollm") {
        // Each digit is its own token, then the usual GPT-2 splitting.
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![Digits::new(true).into(), byte_level.into()])));
    } else {
        tokenizer.with_pre_tokenizer(Some(byte_level));
    }
    tokenizer.with_decoder(Some(byte_level));

    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &kind)| kind == 3)
        .map(|(token, _)| AddedToken::from(token.clone(), true))
        .collect();
    tokenizer.add_special_tokens(special).map_err(|e| e.to_string())?;
    // Marker-like text in messages stays text; the prompt builder inserts real markers by id.
    tokenizer.set_encode_special_tokens(true);
    Ok(tokenizer)
}
