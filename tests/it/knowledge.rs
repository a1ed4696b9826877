//! Ingest and retrieval end to end on the embedded backend, with a deterministic test embedder
//! (the real model is held to reference vectors in `tests/it/embedder.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use frontdesk::channel::WorkspaceId;
use frontdesk::document::SourceKind;
use frontdesk::knowledge::chunk::ChunkOptions;
use frontdesk::knowledge::ingest::{IngestSource, IngestSummary};
use frontdesk::knowledge::{KnowledgeBase, SearchSettings};
use frontdesk::retrieval::embedded::EmbeddedRetriever;
use frontdesk::retrieval::{Filters, SearchMode, SearchRequest};
use frontdesk::store::Store;
use frontdesk::testing::HashingEmbedder;
use std::path::Path;
use std::sync::Arc;

const DIMS: usize = 256;

struct Harness {
    _dir: tempfile::TempDir,
    docs: std::path::PathBuf,
    data: std::path::PathBuf,
    embedder: Arc<HashingEmbedder>,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&docs).unwrap();
        Harness { docs, data, _dir: dir, embedder: Arc::new(HashingEmbedder::new(DIMS)) }
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.docs.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Opens the knowledge base as a fresh process would (state from disk).
    fn open(&self) -> KnowledgeBase {
        let store = Store::open(&self.data).unwrap();
        let retriever = Arc::new(EmbeddedRetriever::open(&self.data, &store, DIMS).unwrap());
        KnowledgeBase {
            store,
            retriever,
            embedder: self.embedder.clone(),
            search: SearchSettings { semantic_ratio: 0.5, candidates: 50 },
            chunking: ChunkOptions::default(),
            batch_size: 16,
        }
    }
}

fn ws(s: &str) -> WorkspaceId {
    WorkspaceId::new(s).unwrap()
}

async fn ingest(kb: &KnowledgeBase, path: &Path, w: &str, prune: bool) -> IngestSummary {
    kb.ingest(&IngestSource::Paths(vec![path.to_path_buf()]), ws(w), None, prune, &()).await.unwrap()
}

async fn search(kb: &KnowledgeBase, w: &str, q: &str, mode: SearchMode) -> Vec<String> {
    let hits = kb.search(kb.request(ws(w), q, mode, 10, Filters::default())).await.unwrap();
    hits.into_iter().map(|h| h.doc_id).collect()
}

const REFUNDS: &str = "---\ntitle: Refunds\nproduct: billing\nupdated_at: 2026-03-01\n---\n# Refunds\n\n## Annual plans\n\nAnnual plans are refunded pro rata within 30 days of renewal.\n\n## Monthly plans\n\nMonthly plans are not refunded, but you can cancel at any time.\n";
const ERRORS: &str =
    "# API errors\n\n## TH-4012\n\nTH-4012 means the export token expired. Create a new token under Settings, API.\n";

#[tokio::test]
async fn two_workspaces_never_see_each_others_chunks() {
    let h = Harness::new();
    h.write("a/refunds.md", REFUNDS);
    h.write("b/errors.md", ERRORS);
    let kb = h.open();
    ingest(&kb, &h.docs.join("a"), "acme", false).await;
    ingest(&kb, &h.docs.join("b"), "globex", false).await;
    for mode in [SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector] {
        let acme = search(&kb, "acme", "refund annual plan TH-4012 export token", mode).await;
        let globex = search(&kb, "globex", "refund annual plan TH-4012 export token", mode).await;
        assert!(!acme.is_empty() && !globex.is_empty(), "{mode:?}");
        assert!(acme.iter().all(|d| d == "refunds"), "{mode:?}: {acme:?}");
        assert!(globex.iter().all(|d| d == "errors"), "{mode:?}: {globex:?}");
    }
    // A workspace with no knowledge finds nothing rather than someone else's.
    assert!(search(&kb, "initech", "refund", SearchMode::Hybrid).await.is_empty());
}

#[tokio::test]
async fn reingest_of_an_unchanged_folder_embeds_nothing() {
    let h = Harness::new();
    h.write("refunds.md", REFUNDS);
    h.write("errors.md", ERRORS);
    let first = ingest(&h.open(), &h.docs, "acme", false).await;
    assert_eq!(first.documents_new, 2);
    assert!(first.chunks_added >= 2);
    assert_eq!(first.embedded, first.chunks_added);
    let embedded_before = h.embedder.embedded();

    // A new process: state comes from disk.
    let kb = h.open();
    let second = ingest(&kb, &h.docs, "acme", false).await;
    assert_eq!(second.documents_unchanged, 2, "{second:?}");
    assert_eq!(second.embedded, 0);
    assert_eq!(second.chunks_added + second.chunks_updated + second.chunks_removed, 0);
    assert_eq!(h.embedder.embedded(), embedded_before);
    assert_eq!(search(&kb, "acme", "TH-4012", SearchMode::Keyword).await.first().map(String::as_str), Some("errors"));
}

#[tokio::test]
async fn changed_chunks_are_reembedded_and_gone_documents_pruned() {
    let h = Harness::new();
    h.write("refunds.md", REFUNDS);
    h.write("errors.md", ERRORS);
    let kb = h.open();
    ingest(&kb, &h.docs, "acme", false).await;

    // Change one section of one document.
    h.write("refunds.md", &REFUNDS.replace("within 30 days", "within 45 days"));
    let s = ingest(&kb, &h.docs, "acme", false).await;
    assert_eq!(s.documents_changed, 1, "{s:?}");
    assert_eq!(s.documents_unchanged, 1);
    assert!(s.chunks_updated >= 1);
    assert_eq!(s.embedded, s.chunks_updated + s.chunks_added);
    let hits = kb.search(kb.request(ws("acme"), "45 days", SearchMode::Keyword, 5, Filters::default())).await.unwrap();
    assert!(hits[0].text.contains("45 days"));

    // Without --prune a deleted file stays; with it, it goes.
    std::fs::remove_file(h.docs.join("errors.md")).unwrap();
    let s = ingest(&kb, &h.docs, "acme", false).await;
    assert_eq!(s.documents_removed, 0);
    assert!(search(&kb, "acme", "TH-4012", SearchMode::Keyword).await.contains(&"errors".to_string()));
    let s = ingest(&kb, &h.docs, "acme", true).await;
    assert_eq!(s.documents_removed, 1);
    assert!(s.chunks_removed >= 1);
    assert!(!search(&kb, "acme", "TH-4012 export token", SearchMode::Hybrid).await.contains(&"errors".to_string()));
    assert_eq!(kb.store.catalogue().unwrap().list(&ws("acme")).unwrap().len(), 1);
}

#[tokio::test]
async fn bad_files_are_skipped_with_reasons_and_nothing_crashes() {
    let h = Harness::new();
    h.write("good.md", REFUNDS);
    h.write("empty.md", "   \n");
    std::fs::write(h.docs.join("binary.txt"), [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    std::fs::write(h.docs.join("latin1.txt"), b"caf\xe9 cr\xe8me").unwrap();
    h.write("manual.pdf", "%PDF-1.4");
    h.write(".hidden/secret.md", "# hidden");
    let s = ingest(&h.open(), &h.docs, "acme", false).await;
    assert_eq!(s.documents_new, 1, "{s:?}");
    let reasons: Vec<String> = s.skipped.iter().map(|k| format!("{} {}", k.location, k.reason)).collect();
    assert_eq!(s.skipped.len(), 4, "{reasons:?}");
    for name in ["empty.md", "binary.txt", "latin1.txt", "manual.pdf"] {
        assert!(reasons.iter().any(|r| r.contains(name)), "{name} not reported: {reasons:?}");
    }
    assert!(!reasons.iter().any(|r| r.contains("hidden")));
}

#[tokio::test]
async fn tickets_are_masked_and_filterable_by_kind() {
    let h = Harness::new();
    h.write("refunds.md", REFUNDS);
    let tickets = h.docs.parent().unwrap().join("tickets.jsonl");
    std::fs::write(
        &tickets,
        concat!(
            r#"{"id":"T-1","subject":"Refund for annual plan","customer_message":"I am jane.doe@example.com, call me on +44 20 7946 0958. Card 4242 4242 4242 4242 was charged twice.","agent_answer":"We refunded the duplicate charge; it shows on your statement in 5 to 10 business days.","tags":["billing"],"resolved_at":"2026-02-03"}"#,
            "\n",
            "not json\n",
        ),
    )
    .unwrap();
    let kb = h.open();
    ingest(&kb, &h.docs, "acme", false).await;
    let s = kb.ingest(&IngestSource::Tickets(tickets), ws("acme"), None, false, &()).await.unwrap();
    assert_eq!(s.documents_new, 1);
    assert_eq!(s.skipped.len(), 1, "{s:?}");
    assert!(s.skipped[0].location.contains("line 2"), "{s:?}");

    let mut req = kb.request(ws("acme"), "charged twice duplicate refund", SearchMode::Hybrid, 5, Filters::default());
    req.filters.source_kind = Some(SourceKind::Ticket);
    let hits = kb.search(req).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].doc_id, "T-1");
    for secret in ["jane.doe@example.com", "7946", "4242"] {
        assert!(!hits[0].text.contains(secret), "{secret} leaked: {}", hits[0].text);
    }
    let mut req = kb.request(ws("acme"), "charged twice duplicate refund", SearchMode::Hybrid, 5, Filters::default());
    req.filters.source_kind = Some(SourceKind::Doc);
    assert!(kb.search(req).await.unwrap().iter().all(|h| h.source_kind == SourceKind::Doc));
}

#[tokio::test]
async fn filters_by_product_and_date() {
    let h = Harness::new();
    h.write("refunds.md", REFUNDS);
    h.write("errors.md", &format!("---\nproduct: api\nupdated_at: 2025-01-01\n---\n{ERRORS}"));
    let kb = h.open();
    ingest(&kb, &h.docs, "acme", false).await;
    let mut req = kb.request(ws("acme"), "plans token refunds export", SearchMode::Hybrid, 10, Filters::default());
    req.filters.products = vec!["api".into()];
    let docs: Vec<String> = kb.search(req.clone()).await.unwrap().into_iter().map(|h| h.doc_id).collect();
    assert_eq!(docs.iter().filter(|d| *d == "errors").count(), docs.len());
    assert!(!docs.is_empty());
    req.filters = Filters { updated_after: Some(1_767_225_600), ..Filters::default() }; // 2026-01-01
    let docs: Vec<String> = kb.search(req).await.unwrap().into_iter().map(|h| h.doc_id).collect();
    assert!(!docs.is_empty() && docs.iter().all(|d| d == "refunds"), "{docs:?}");
}

#[tokio::test]
async fn hits_carry_headings_and_all_three_scores() {
    let h = Harness::new();
    h.write("refunds.md", REFUNDS);
    let kb = h.open();
    ingest(&kb, &h.docs, "acme", false).await;
    let hits = kb
        .search(kb.request(ws("acme"), "annual plans refunded", SearchMode::Hybrid, 3, Filters::default()))
        .await
        .unwrap();
    let top = &hits[0];
    assert_eq!(top.title, "Refunds");
    assert!(!top.heading_path.is_empty());
    assert!(top.keyword_score > 0.0 && top.semantic_score > 0.0);
    assert!((0.0..=1.0).contains(&top.fused_score));
    assert!(top.chunk_id.starts_with("refunds#"));
}

#[tokio::test]
async fn vector_search_without_a_vector_is_an_error_not_a_silent_fallback() {
    let h = Harness::new();
    h.write("refunds.md", REFUNDS);
    let kb = h.open();
    ingest(&kb, &h.docs, "acme", false).await;
    let mut req = SearchRequest::new(ws("acme"), "refund");
    req.mode = SearchMode::Vector;
    assert!(kb.retriever.search(&req).await.is_err());
    req.mode = SearchMode::Keyword;
    assert!(!kb.retriever.search(&req).await.unwrap().is_empty());
}
