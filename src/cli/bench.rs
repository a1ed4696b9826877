//! `frontdesk bench`: how fast ingest and search are, and how much memory they take.
//!
//! Large indexes use synthetic chunks (texts drawn from a Zipf-distributed vocabulary, random
//! unit vectors): embedding 100k real chunks would take hours on a small machine, and the index
//! does not care where its vectors came from. Embedding throughput is measured on its own over
//! real chunks of the sample help centre, and query embedding latency on real questions.

use super::out;
use super::{BenchArgs, Cli, CliError};
use crate::channel::WorkspaceId;
use crate::document::{Chunk, SourceKind};
use crate::embed::l2_normalize;
use crate::knowledge::chunk::{chunk_document, ChunkOptions};
use crate::knowledge::parse::{parse_document, Format};
use crate::retrieval::embedded::EmbeddedRetriever;
use crate::retrieval::{IndexedChunk, Retriever, SearchMode, SearchRequest};
use crate::store::Store;
use serde::Serialize;
use std::time::{Duration, Instant};

const DIMS: usize = 384;

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal_vector(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIMS).map(|_| self.unit() - 0.5).collect();
        l2_normalize(&mut v);
        v
    }
    /// Index into a vocabulary with a Zipf-like distribution.
    fn zipf(&mut self, n: usize) -> usize {
        let u = self.unit().max(1e-6);
        ((n as f32).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

fn vocabulary() -> Vec<String> {
    let syllables = ["ba", "ker", "lo", "mi", "nor", "pa", "qui", "ra", "sen", "to", "vu", "wex", "yal", "zo"];
    let mut words = Vec::new();
    for a in syllables {
        for b in syllables {
            for c in ["", "s", "ing", "ed", "ly"] {
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

fn synthetic_chunk(rng: &mut Rng, vocab: &[String], i: usize) -> Chunk {
    let words = 120 + (rng.next() % 60) as usize;
    let text: Vec<&str> = (0..words).map(|_| vocab[rng.zipf(vocab.len())].as_str()).collect();
    Chunk {
        chunk_id: format!("doc{}#{}", i / 8, i % 8),
        doc_id: format!("doc{}", i / 8),
        source_kind: SourceKind::Doc,
        title: format!("{} {}", vocab[rng.zipf(vocab.len())], vocab[rng.zipf(vocab.len())]),
        url: None,
        product: Some(["billing", "api", "accounts"][i % 3].to_string()),
        updated_at: None,
        heading_path: vec![vocab[rng.zipf(vocab.len())].clone()],
        text: text.join(" "),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

/// Resident memory now and at its peak, in MiB, from /proc (Linux).
pub fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[derive(Debug, Serialize)]
struct SizeResult {
    chunks: usize,
    index_chunks_per_sec: f64,
    first_query_ms: f64,
    latency_ms: Vec<ModeLatency>,
    rss_mib_after: f64,
}

#[derive(Debug, Serialize)]
struct ModeLatency {
    mode: SearchMode,
    p50: f64,
    p99: f64,
}

#[derive(Debug, Serialize)]
struct EmbedResult {
    chunks: usize,
    chunks_per_sec: f64,
    average_words: f64,
    query_embedding_ms_p50: f64,
    query_embedding_ms_p99: f64,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    machine: String,
    sizes: Vec<SizeResult>,
    embedding: Option<EmbedResult>,
    peak_rss_mib: f64,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cores} cores, {cpu}")
}

async fn bench_size(size: usize, queries: usize) -> Result<SizeResult, CliError> {
    let dir = std::env::temp_dir().join(format!("frontdesk-bench-{}-{size}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir).map_err(crate::runtime::SetupError::from)?;
    let retriever = EmbeddedRetriever::open(&dir, &store, DIMS).map_err(crate::runtime::SetupError::from)?;
    let ws = WorkspaceId::new("bench").map_err(|e| CliError::Usage(e.to_string()))?;
    let vocab = vocabulary();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ size as u64);
    let bar = out::progress_bar(size as u64, "indexing");
    let start = Instant::now();
    let mut i = 0;
    while i < size {
        let n = 1000.min(size - i);
        let batch: Vec<IndexedChunk> = (i..i + n)
            .map(|j| IndexedChunk { chunk: synthetic_chunk(&mut rng, &vocab, j), vector: rng.normal_vector() })
            .collect();
        retriever.upsert(&ws, batch).await.map_err(search_err)?;
        i += n;
        bar.inc(n as u64);
    }
    retriever.commit().await.map_err(search_err)?;
    bar.finish_and_clear();
    let index_rate = size as f64 / start.elapsed().as_secs_f64();

    let make_query = |rng: &mut Rng| {
        let words: Vec<&str> = (0..8).map(|_| vocab[rng.zipf(vocab.len())].as_str()).collect();
        let mut r = SearchRequest::new(ws.clone(), words.join(" "));
        r.vector = Some(rng.normal_vector());
        r.limit = 10;
        r
    };
    // The first query after indexing (caches cold in tantivy's reader).
    let first = Instant::now();
    retriever.search(&make_query(&mut rng)).await.map_err(search_err)?;
    let first_query_ms = first.elapsed().as_secs_f64() * 1000.0;

    let mut latency_ms = Vec::new();
    for mode in [SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector] {
        let mut times = Vec::with_capacity(queries);
        for _ in 0..queries {
            let mut q = make_query(&mut rng);
            q.mode = mode;
            let t = Instant::now();
            retriever.search(&q).await.map_err(search_err)?;
            times.push(t.elapsed());
        }
        times.sort();
        latency_ms.push(ModeLatency { mode, p50: percentile(&times, 0.5), p99: percentile(&times, 0.99) });
    }
    let (rss, _) = memory_mib();
    drop(retriever);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(SizeResult { chunks: size, index_chunks_per_sec: index_rate, first_query_ms, latency_ms, rss_mib_after: rss })
}

fn search_err(e: crate::retrieval::RetrievalError) -> CliError {
    CliError::Search(e.into())
}

/// Real chunks of the sample help centre.
fn sample_chunks(limit: usize) -> Vec<String> {
    let docs = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("evals").join("tallyhawk").join("docs");
    let mut files: Vec<_> =
        std::fs::read_dir(&docs).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    let mut round = 0;
    while out.len() < limit && !files.is_empty() && round < 50 {
        for f in &files {
            let Ok(bytes) = std::fs::read(f) else { continue };
            let id = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let Ok(doc) = parse_document(&id, Format::Markdown, &bytes) else { continue };
            for c in chunk_document(&doc, &ChunkOptions::default()) {
                // Vary repeated rounds so no two texts are identical.
                out.push(if round == 0 { c.indexed_text() } else { format!("{} ({round})", c.indexed_text()) });
            }
        }
        round += 1;
    }
    out.truncate(limit);
    out
}

async fn bench_embedding(cli: &Cli, n: usize) -> Result<Option<EmbedResult>, CliError> {
    let config = cli.load_config()?;
    if crate::models::verify(&config.models_dir, &crate::models::MINILM).is_err() {
        out::line("embedding benchmark skipped: the model is not installed (run `frontdesk models fetch`)");
        return Ok(None);
    }
    let embedder = crate::runtime::build_embedder(&config)?;
    let texts = sample_chunks(n);
    if texts.is_empty() {
        return Ok(None);
    }
    let words = texts.iter().map(|t| t.split_whitespace().count()).sum::<usize>() as f64 / texts.len() as f64;
    embedder.embed(&texts[..1]).await.map_err(|e| CliError::Search(e.into()))?; // load the model
    let start = Instant::now();
    embedder.embed(&texts).await.map_err(|e| CliError::Search(e.into()))?;
    let rate = texts.len() as f64 / start.elapsed().as_secs_f64();
    let questions = [
        "How do I get a refund?",
        "Why does the API return TH-4012 when I export invoices?",
        "can I add more seats to the growth plan",
    ];
    let mut times = Vec::new();
    for i in 0..60 {
        let t = Instant::now();
        embedder.embed(&[questions[i % questions.len()].to_string()]).await.map_err(|e| CliError::Search(e.into()))?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(Some(EmbedResult {
        chunks: texts.len(),
        chunks_per_sec: rate,
        average_words: words,
        query_embedding_ms_p50: percentile(&times, 0.5),
        query_embedding_ms_p99: percentile(&times, 0.99),
    }))
}

pub async fn run(cli: &Cli, args: &BenchArgs) -> Result<(), CliError> {
    let machine = machine();
    out::line(format!("machine: {machine}"));
    let mut sizes = Vec::new();
    for &size in &args.sizes {
        if size == 0 {
            continue;
        }
        let r = bench_size(size, args.queries.max(1)).await?;
        out::line(format!(
            "{} chunks: indexed at {:.0} chunks/s; first query {:.1} ms; RSS {:.0} MiB",
            r.chunks, r.index_chunks_per_sec, r.first_query_ms, r.rss_mib_after
        ));
        for l in &r.latency_ms {
            out::line(format!(
                "  {:<8} p50 {:>7.2} ms   p99 {:>7.2} ms",
                format!("{:?}", l.mode).to_lowercase(),
                l.p50,
                l.p99
            ));
        }
        sizes.push(r);
    }
    let embedding = if args.embed > 0 { bench_embedding(cli, args.embed).await? } else { None };
    if let Some(e) = &embedding {
        out::line(format!(
            "embedding: {} chunks (avg {:.0} words) at {:.1} chunks/s; one query embedded in p50 {:.1} ms, p99 {:.1} ms",
            e.chunks, e.average_words, e.chunks_per_sec, e.query_embedding_ms_p50, e.query_embedding_ms_p99
        ));
    }
    let (_, peak) = memory_mib();
    out::line(format!("peak RSS: {peak:.0} MiB"));
    if let Some(path) = &args.json {
        let report = BenchReport { machine, sizes, embedding, peak_rss_mib: peak };
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .map_err(|source| CliError::Io { what: format!("cannot write {}", path.display()), source })?;
    }
    Ok(())
}
