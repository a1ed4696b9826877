//! One contract for every retrieval backend.
//!
//! Each `contract_*` function runs against the embedded backend always, and against a real
//! Meilisearch server when `MEILI_URL` and `MEILI_MASTER_KEY` are set (otherwise that half
//! is reported as skipped). Every Meilisearch test works in an index of its own, deleted at
//! the end.
//!
//! The failure tests at the bottom need no server: a closed port and a server that accepts
//! connections but never answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use frontdesk::channel::skip::{skipped, Missing};
use frontdesk::channel::WorkspaceId;
use frontdesk::document::{Chunk, SourceKind};
use frontdesk::knowledge::chunk::ChunkOptions;
use frontdesk::knowledge::ingest::IngestSource;
use frontdesk::knowledge::{KnowledgeBase, SearchSettings};
use frontdesk::retrieval::embedded::EmbeddedRetriever;
use frontdesk::retrieval::meili::config::{FusionMode, MeiliConfig};
use frontdesk::retrieval::meili::MeiliRetriever;
use frontdesk::retrieval::{Filters, Hit, IndexedChunk, RetrievalError, Retriever, SearchMode, SearchRequest};
use frontdesk::store::Store;
use frontdesk::testing::HashingEmbedder;
use secrecy::SecretString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DIMS: usize = 128;

static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);

/// A backend under test, with what it needs to live.
struct Backend {
    name: &'static str,
    retriever: Arc<dyn Retriever>,
    store: Store,
    _dir: tempfile::TempDir,
    /// Meilisearch only: the server, its master key and the test's index.
    meili: Option<(String, String, String)>,
}

fn meili_env() -> Option<(String, String)> {
    match (std::env::var("MEILI_URL"), std::env::var("MEILI_MASTER_KEY")) {
        (Ok(u), Ok(k)) if !u.is_empty() && !k.is_empty() => Some((u, k)),
        _ => None,
    }
}

fn meili_config(url: &str, key: &str, index: &str) -> MeiliConfig {
    MeiliConfig {
        url: url.to_string(),
        master_key: Some(SecretString::from(key.to_string())),
        index: index.to_string(),
        task_timeout_secs: 60,
        ..MeiliConfig::default()
    }
}

fn unique_index(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("fdtest_{test}_{}_{nanos}_{}", std::process::id(), NEXT_INDEX.fetch_add(1, Ordering::SeqCst))
}

/// The backends to hold to the contract in this run.
fn backends(test: &str) -> Vec<Backend> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let retriever = Arc::new(EmbeddedRetriever::in_memory(&store, DIMS).unwrap());
    out.push(Backend { name: "embedded", retriever, store, _dir: dir, meili: None });
    match meili_env() {
        Some((url, key)) => {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let index = unique_index(test);
            let retriever = Arc::new(MeiliRetriever::open(&meili_config(&url, &key, &index), &store, DIMS).unwrap());
            out.push(Backend {
                name: "meilisearch",
                retriever,
                store,
                _dir: dir,
                meili: Some((url.clone(), key.clone(), index)),
            });
            // The same server with Meilisearch's own hybrid ranking (`fusion = "meilisearch"`).
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let index = unique_index(&format!("{test}_native"));
            let config = MeiliConfig { fusion: FusionMode::Meilisearch, ..meili_config(&url, &key, &index) };
            let retriever = Arc::new(MeiliRetriever::open(&config, &store, DIMS).unwrap());
            out.push(Backend {
                name: "meilisearch (fusion = meilisearch)",
                retriever,
                store,
                _dir: dir,
                meili: Some((url, key, index)),
            });
        }
        None => skipped(
            &format!("{test} (Meilisearch half)"),
            Missing::Service,
            "set MEILI_URL and MEILI_MASTER_KEY to run it against a Meilisearch server",
        ),
    }
    out
}

impl Backend {
    /// Deletes the test's Meilisearch index.
    async fn cleanup(&self) {
        if let Some((url, key, index)) = &self.meili {
            let _ = reqwest::Client::new().delete(format!("{url}/indexes/{index}")).bearer_auth(key).send().await;
        }
    }
}

fn ws(s: &str) -> WorkspaceId {
    WorkspaceId::new(s).unwrap()
}

fn chunk(doc: &str, n: usize, title: &str, text: &str) -> Chunk {
    Chunk {
        chunk_id: format!("{doc}#{n}"),
        doc_id: doc.to_string(),
        source_kind: SourceKind::Doc,
        title: title.to_string(),
        url: Some(format!("https://help.example.com/{doc}")),
        product: None,
        updated_at: None,
        heading_path: vec!["Overview".to_string()],
        text: text.to_string(),
    }
}

fn embedder() -> HashingEmbedder {
    HashingEmbedder::new(DIMS)
}

fn indexed(chunks: Vec<Chunk>) -> Vec<IndexedChunk> {
    let e = embedder();
    chunks.into_iter().map(|c| IndexedChunk { vector: e.vector(&c.indexed_text()), chunk: c }).collect()
}

fn request(w: &str, q: &str, mode: SearchMode) -> SearchRequest {
    let mut r = SearchRequest::new(ws(w), q);
    r.mode = mode;
    r.vector = Some(embedder().vector(q));
    r
}

fn docs(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.doc_id.as_str()).collect()
}

fn help_center() -> Vec<Chunk> {
    vec![
        chunk("refunds", 0, "Refunds", "Annual plans can be refunded in full within 30 days of renewal."),
        chunk("errors", 0, "API error codes", "TH-4012 means the export token expired. Create a new export token."),
        chunk("trial", 0, "Free trial", "Every new workspace starts with a 14-day free trial of the Growth plan."),
    ]
}

async fn load(b: &Backend, w: &str, chunks: Vec<Chunk>) {
    b.retriever.upsert(&ws(w), indexed(chunks)).await.unwrap();
    b.retriever.commit().await.unwrap();
}

async fn contract_upsert_search_delete_count(b: &Backend) {
    load(b, "A", help_center()).await;
    assert_eq!(b.retriever.count(&ws("A")).await.unwrap(), 3, "{}", b.name);
    let hits = b.retriever.search(&request("A", "refund for my annual plan", SearchMode::Hybrid)).await.unwrap();
    assert_eq!(hits[0].doc_id, "refunds", "{}: {:?}", b.name, docs(&hits));
    assert_eq!(hits[0].url.as_deref(), Some("https://help.example.com/refunds"));
    assert_eq!(hits[0].heading_path, vec!["Overview".to_string()]);
    b.retriever.delete(&ws("A"), &["refunds#0".to_string()]).await.unwrap();
    b.retriever.commit().await.unwrap();
    assert_eq!(b.retriever.count(&ws("A")).await.unwrap(), 2, "{}", b.name);
    for mode in [SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector] {
        let hits = b.retriever.search(&request("A", "refund for my annual plan", mode)).await.unwrap();
        assert!(!docs(&hits).contains(&"refunds"), "{} {mode:?}: {:?}", b.name, docs(&hits));
    }
    assert_eq!(b.retriever.count(&ws("nobody")).await.unwrap(), 0);
}

async fn contract_workspaces_are_isolated(b: &Backend) {
    load(b, "A", vec![chunk("a-refunds", 0, "Refunds", "Refunds are paid to the original card within 5 days.")]).await;
    load(b, "B", vec![chunk("b-refunds", 0, "Refunds", "Refunds are paid as store credit only.")]).await;
    for mode in [SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector] {
        let hits = b.retriever.search(&request("A", "how are refunds paid", mode)).await.unwrap();
        assert_eq!(docs(&hits), vec!["a-refunds"], "{} {mode:?}", b.name);
        let hits = b.retriever.search(&request("B", "store credit", mode)).await.unwrap();
        assert_eq!(docs(&hits), vec!["b-refunds"], "{} {mode:?}", b.name);
    }
    // A filter value written to break out of its quotes is just a product name that matches nothing.
    let mut r = request("A", "refunds", SearchMode::Hybrid);
    r.filters.products = vec!["x'] OR workspace_id = 'B".to_string()];
    assert!(b.retriever.search(&r).await.unwrap().is_empty(), "{}", b.name);
    assert_eq!(b.retriever.count(&ws("A")).await.unwrap(), 1);
    assert_eq!(b.retriever.count(&ws("B")).await.unwrap(), 1);
}

async fn contract_filters(b: &Backend) {
    let mut api = chunk("api-limits", 0, "Rate limits", "The API allows 100 requests per minute per token.");
    api.product = Some("api".into());
    api.updated_at = Some(1_700_000_000);
    let mut billing = chunk("billing-limits", 0, "Invoice limits", "Invoices allow 100 line items per minute of work.");
    billing.product = Some("billing".into());
    billing.updated_at = Some(1_600_000_000);
    let mut ticket =
        chunk("ticket-77", 0, "Customer asked about limits", "We raised the limit to 200 requests per minute.");
    ticket.source_kind = SourceKind::Ticket;
    load(b, "F", vec![api, billing, ticket]).await;
    let q = "limits per minute";
    for mode in [SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector] {
        let all = b.retriever.search(&request("F", q, mode)).await.unwrap();
        assert_eq!(all.len(), 3, "{} {mode:?}: {:?}", b.name, docs(&all));
        let mut r = request("F", q, mode);
        r.filters = Filters { products: vec!["api".into()], ..Filters::default() };
        assert_eq!(docs(&b.retriever.search(&r).await.unwrap()), vec!["api-limits"], "{} {mode:?}", b.name);
        r.filters = Filters { products: vec!["api".into(), "billing".into()], ..Filters::default() };
        assert_eq!(b.retriever.search(&r).await.unwrap().len(), 2, "{} {mode:?}", b.name);
        r.filters = Filters { source_kind: Some(SourceKind::Ticket), ..Filters::default() };
        let hits = b.retriever.search(&r).await.unwrap();
        assert_eq!(docs(&hits), vec!["ticket-77"], "{} {mode:?}", b.name);
        assert_eq!(hits[0].source_kind, SourceKind::Ticket);
        r.filters = Filters { updated_after: Some(1_650_000_000), ..Filters::default() };
        assert_eq!(docs(&b.retriever.search(&r).await.unwrap()), vec!["api-limits"], "{} {mode:?}", b.name);
        r.filters = Filters { updated_before: Some(1_650_000_000), ..Filters::default() };
        assert_eq!(docs(&b.retriever.search(&r).await.unwrap()), vec!["billing-limits"], "{} {mode:?}", b.name);
        r.filters =
            Filters { updated_after: Some(1_600_000_000), updated_before: Some(1_600_000_000), ..Filters::default() };
        assert_eq!(
            docs(&b.retriever.search(&r).await.unwrap()),
            vec!["billing-limits"],
            "{} {mode:?} inclusive",
            b.name
        );
    }
}

async fn contract_modes(b: &Backend) {
    load(b, "M", help_center()).await;
    // Keyword: an error code is found by its exact words.
    let hits = b.retriever.search(&request("M", "what does TH-4012 mean", SearchMode::Keyword)).await.unwrap();
    assert_eq!(hits[0].doc_id, "errors", "{}", b.name);
    assert!(hits.iter().all(|h| h.keyword_score > 0.0), "{}: {hits:?}", b.name);
    // With the query's vector at hand, keyword hits still carry their cosine (confidence reads it).
    assert!(hits[0].semantic_score > 0.0, "{}: {hits:?}", b.name);
    // Keyword mode needs no vector; words found nowhere give nothing.
    let mut r = request("M", "TH-4012", SearchMode::Keyword);
    r.vector = None;
    assert_eq!(b.retriever.search(&r).await.unwrap()[0].doc_id, "errors");
    let r = request("M", "zebra xylophone", SearchMode::Keyword);
    assert!(b.retriever.search(&r).await.unwrap().is_empty(), "{}", b.name);
    // Vector: ranks by similarity and returns every chunk that has a vector.
    let hits = b.retriever.search(&request("M", "free trial of the Growth plan", SearchMode::Vector)).await.unwrap();
    assert_eq!(hits[0].doc_id, "trial", "{}", b.name);
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| h.keyword_score == 0.0), "{}", b.name);
    assert!(hits.windows(2).all(|w| w[0].semantic_score >= w[1].semantic_score - 1e-4), "{}: {hits:?}", b.name);
    // Hybrid: both kinds of evidence on the hit both searches found.
    let hits = b.retriever.search(&request("M", "export token expired", SearchMode::Hybrid)).await.unwrap();
    assert_eq!(hits[0].doc_id, "errors");
    assert!(hits[0].keyword_score > 0.0 && hits[0].semantic_score > 0.0, "{}: {:?}", b.name, hits[0]);
    // Vector and hybrid searches without a vector, or with one of the wrong length, are errors.
    for mode in [SearchMode::Vector, SearchMode::Hybrid] {
        let mut r = request("M", "trial", mode);
        r.vector = None;
        assert!(matches!(b.retriever.search(&r).await, Err(RetrievalError::MissingVector(_))), "{} {mode:?}", b.name);
        r.vector = Some(vec![0.1; DIMS + 1]);
        let e = b.retriever.search(&r).await;
        assert!(
            matches!(e, Err(RetrievalError::Dimensions { expected: DIMS, got }) if got == DIMS + 1),
            "{}: {e:?}",
            b.name
        );
    }
    // A semantic ratio of 0 is keyword search, 1 is vector search.
    let mut r = request("M", "export token expired", SearchMode::Hybrid);
    r.semantic_ratio = 0.0;
    assert!(b.retriever.search(&r).await.unwrap().iter().all(|h| h.keyword_score > 0.0));
    r.semantic_ratio = 1.0;
    assert_eq!(b.retriever.search(&r).await.unwrap().len(), 3);
}

async fn contract_upsert_is_idempotent_and_replaces(b: &Backend) {
    load(b, "I", help_center()).await;
    load(b, "I", help_center()).await;
    assert_eq!(b.retriever.count(&ws("I")).await.unwrap(), 3, "{}", b.name);
    let changed = chunk("refunds", 0, "Refunds", "Refunds are no longer offered; unused months become credit.");
    load(b, "I", vec![changed]).await;
    assert_eq!(b.retriever.count(&ws("I")).await.unwrap(), 3, "{}", b.name);
    let hits = b.retriever.search(&request("I", "unused months credit", SearchMode::Keyword)).await.unwrap();
    assert_eq!(hits[0].doc_id, "refunds");
    assert!(hits[0].text.contains("no longer offered"), "{}", b.name);
    let old = b.retriever.search(&request("I", "refunded in full within 30 days", SearchMode::Keyword)).await.unwrap();
    assert!(old.iter().all(|h| !h.text.contains("refunded in full")), "{}", b.name);
}

async fn contract_scores_are_in_range_and_ordered(b: &Backend) {
    let mut chunks = help_center();
    for i in 0..12 {
        chunks.push(chunk(
            &format!("note-{i}"),
            0,
            "Plan notes",
            &format!("Plan note {i}: renewal, refunds and credit."),
        ));
    }
    load(b, "S", chunks).await;
    for mode in [SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector] {
        let mut r = request("S", "refunds after renewal", mode);
        r.limit = 5;
        let hits = b.retriever.search(&r).await.unwrap();
        assert_eq!(hits.len(), 5, "{} {mode:?}", b.name);
        for h in &hits {
            assert!((0.0..=1.0).contains(&h.fused_score), "{} {mode:?}: {h:?}", b.name);
            assert!((0.0..=1.0).contains(&h.keyword_norm), "{} {mode:?}: {h:?}", b.name);
            assert!((-1.0..=1.0).contains(&h.semantic_score), "{} {mode:?}: {h:?}", b.name);
            assert!(h.keyword_score >= 0.0);
        }
        assert!(hits.windows(2).all(|w| w[0].fused_score >= w[1].fused_score), "{} {mode:?}", b.name);
        assert!((hits[0].fused_score - 1.0).abs() < 1e-5 || mode == SearchMode::Hybrid, "{} {mode:?}", b.name);
    }
    let stats = b.retriever.term_stats(&ws("S"), "Refunds via PayPal", &[]).await.unwrap().unwrap();
    assert_eq!(stats.chunks, 15, "{}", b.name);
    let freq = |t: &str| stats.terms.iter().find(|x| x.term == t).map(|x| x.chunk_freq);
    assert_eq!(freq("paypal"), Some(0), "{}: {stats:?}", b.name);
    assert_eq!(freq("refund"), Some(13), "{}: {stats:?}", b.name);
    assert_eq!(stats.unknown_distinctive(), vec!["paypal"]);
}

async fn contract_ingest_is_incremental_and_prunes(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let docs_dir = dir.path().join("docs");
    std::fs::create_dir_all(&docs_dir).unwrap();
    std::fs::write(docs_dir.join("refunds.md"), "# Refunds\n\nAnnual plans are refunded within 30 days of renewal.\n")
        .unwrap();
    std::fs::write(docs_dir.join("trial.md"), "# Trial\n\nThe free trial lasts 14 days on the Growth plan.\n").unwrap();
    let embedder = Arc::new(embedder());
    let kb = KnowledgeBase {
        store: b.store.clone(),
        retriever: b.retriever.clone(),
        embedder: embedder.clone(),
        search: SearchSettings { semantic_ratio: 0.5, candidates: 50 },
        chunking: ChunkOptions::default(),
        batch_size: 16,
    };
    let src = IngestSource::Paths(vec![docs_dir.clone()]);
    let first = kb.ingest(&src, ws("G"), None, false, &()).await.unwrap();
    assert_eq!((first.documents_new, first.chunks_added), (2, 2), "{}", b.name);
    let again = kb.ingest(&src, ws("G"), None, false, &()).await.unwrap();
    assert_eq!((again.documents_unchanged, again.embedded, again.chunks_added), (2, 0, 0), "{}", b.name);
    std::fs::remove_file(docs_dir.join("trial.md")).unwrap();
    let pruned = kb.ingest(&src, ws("G"), None, true, &()).await.unwrap();
    assert_eq!(pruned.documents_removed, 1, "{}", b.name);
    assert_eq!(b.retriever.count(&ws("G")).await.unwrap(), 1, "{}", b.name);
    let hits = kb.search(kb.request(ws("G"), "free trial", SearchMode::Hybrid, 5, Filters::default())).await.unwrap();
    assert!(hits.iter().all(|h| h.doc_id != "trial"), "{}", b.name);
}

macro_rules! contract {
    ($($name:ident => $body:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for b in backends(stringify!($name)) {
                $body(&b).await;
                b.cleanup().await;
            }
        }
    )*};
}

contract! {
    upsert_search_delete_count => contract_upsert_search_delete_count,
    workspaces_are_isolated => contract_workspaces_are_isolated,
    filters_by_product_kind_and_date => contract_filters,
    hybrid_keyword_and_vector_modes => contract_modes,
    upsert_is_idempotent_and_replaces => contract_upsert_is_idempotent_and_replaces,
    scores_are_in_range_and_ordered => contract_scores_are_in_range_and_ordered,
    ingest_is_incremental_and_prunes => contract_ingest_is_incremental_and_prunes,
}

// ---- Meilisearch only -------------------------------------------------------------------

/// Signs a tenant token for `workspace` with frontdesk's search key, as a client would.
async fn tenant_token(url: &str, key: &str, index: &str, workspace: &str) -> String {
    let keys: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/keys?limit=1000"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = frontdesk::retrieval::meili::search_key_name(index);
    let found = keys["results"].as_array().unwrap().iter().find(|k| k["name"] == name.as_str()).unwrap();
    let rules = serde_json::json!({ index: { "filter": format!("workspace_id = '{workspace}'") } });
    let client = meilisearch_sdk::client::Client::new(url, found["key"].as_str()).unwrap();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
    client
        .generate_tenant_token(
            found["uid"].as_str().unwrap().to_string(),
            rules,
            Some(found["key"].as_str().unwrap()),
            Some(expires),
        )
        .unwrap()
}

#[tokio::test]
async fn a_tenant_token_cannot_see_another_workspace_even_with_a_tampered_filter() {
    let Some((url, key)) = meili_env() else {
        skipped(
            "a_tenant_token_cannot_see_another_workspace_even_with_a_tampered_filter",
            Missing::Service,
            "set MEILI_URL and MEILI_MASTER_KEY to run it",
        );
        return;
    };
    let b = backends("tenant").pop().unwrap();
    load(&b, "A", vec![chunk("a-doc", 0, "Shipping", "Parcels to Norway take four days.")]).await;
    load(&b, "B", vec![chunk("b-doc", 0, "Shipping", "Parcels to Norway are secret for workspace B.")]).await;
    let index = b.meili.as_ref().unwrap().2.clone();
    let token = tenant_token(&url, &key, &index, "A").await;
    let http = reqwest::Client::new();
    let search = |body: serde_json::Value| {
        let (http, token, url, index) = (http.clone(), token.clone(), url.clone(), index.clone());
        async move {
            let resp =
                http.post(format!("{url}/indexes/{index}/search")).bearer_auth(token).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["hits"].as_array().unwrap().iter().map(|h| h["doc_id"].as_str().unwrap().to_string()).collect()
    };
    let (status, v) = search(serde_json::json!({"q": "parcels Norway"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), vec!["a-doc"]);
    for filter in ["workspace_id = 'B'", "workspace_id = 'A' OR workspace_id = 'B'", "workspace_id != 'A'"] {
        let (status, v) = search(serde_json::json!({"q": "parcels Norway", "filter": filter})).await;
        assert_eq!(status, 200, "{v}");
        assert!(!ids(&v).contains(&"b-doc".to_string()), "{filter}: {v}");
    }
    // The token searches only; it cannot read or change documents.
    let resp = http.get(format!("{url}/indexes/{index}/documents")).bearer_auth(&token).send().await.unwrap();
    assert!(resp.status().as_u16() == 401 || resp.status().as_u16() == 403, "{}", resp.status());
    b.cleanup().await;
}

// ---- Failures: no server needed -----------------------------------------------------------

fn failing_config(url: String) -> MeiliConfig {
    MeiliConfig {
        url,
        master_key: Some(SecretString::from("test-master-key-never-shown")),
        connect_timeout_ms: 200,
        request_timeout_ms: 300,
        max_retries: 2,
        ..MeiliConfig::default()
    }
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A server that accepts connections and never answers.
async fn hanging_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (url, task)
}

#[tokio::test]
async fn an_unreachable_server_fails_the_search_quickly() {
    let store = Store::temporary().unwrap();
    let r = MeiliRetriever::open(&failing_config(closed_port()), &store, DIMS).unwrap();
    let started = Instant::now();
    let e = r.search(&request("A", "refunds", SearchMode::Hybrid)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let shown = e.to_string();
    assert!(matches!(e, RetrievalError::Unavailable(_)), "{e:?}");
    assert!(shown.contains("unreachable after 3 attempt(s)"), "{shown}");
    assert!(!shown.contains("test-master-key-never-shown") && !format!("{r:?}").contains("test-master-key"));
}

#[tokio::test]
async fn a_server_that_hangs_times_out_after_bounded_retries() {
    let (url, server) = hanging_server().await;
    let store = Store::temporary().unwrap();
    let r = MeiliRetriever::open(&failing_config(url), &store, DIMS).unwrap();
    let started = Instant::now();
    let e = r.search(&request("A", "refunds", SearchMode::Hybrid)).await.unwrap_err();
    let took = started.elapsed();
    // Three attempts of 300 ms plus backoff (about 100 ms + 200 ms, with jitter).
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
    assert!(e.to_string().contains("timed out"), "{e}");
    server.abort();
}

#[tokio::test]
async fn the_engine_escalates_when_meilisearch_is_down() {
    use frontdesk::config::Config;
    use frontdesk::engine::{Engine, TurnReason};
    use frontdesk::generate::Extractive;
    use frontdesk::prompts::Prompts;
    use frontdesk::trace::Decision;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let embedder = Arc::new(embedder());
    let (url, server) = hanging_server().await;
    let kb = KnowledgeBase {
        retriever: Arc::new(MeiliRetriever::open(&failing_config(url), &store, DIMS).unwrap()),
        store,
        embedder: embedder.clone(),
        search: SearchSettings { semantic_ratio: 0.5, candidates: 50 },
        chunking: ChunkOptions::default(),
        batch_size: 16,
    };
    let engine = Engine::with_parts(
        &Config::default(),
        Arc::new(kb),
        Arc::new(Extractive::new(embedder)),
        None,
        Arc::new(Prompts::built_in().unwrap()),
    )
    .unwrap();
    let inbound = support::engine_harness::message(&ws("T1"), "c-meili", "U1", "Can annual plans be refunded?");
    let o = engine.handle(&inbound).await;
    assert_eq!(o.decision, Decision::Escalate, "{:?}", o.reason);
    assert_eq!(o.reason, TurnReason::RetrievalUnavailable);
    assert_eq!(o.reason.code(), "retrieval_unavailable");
    server.abort();
}

#[tokio::test]
async fn doctor_names_what_is_wrong_and_passes_a_ready_server() {
    use frontdesk::retrieval::meili::doctor;
    let checks = doctor(&failing_config(closed_port()), DIMS).await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert!(!checks[0].ok && checks[0].name == "meilisearch.health", "{checks:?}");
    assert!(checks[0].detail.contains("unreachable"), "{checks:?}");
    let Some((url, key)) = meili_env() else {
        skipped(
            "doctor_names_what_is_wrong_and_passes_a_ready_server (Meilisearch half)",
            Missing::Service,
            "set MEILI_URL and MEILI_MASTER_KEY to run it",
        );
        return;
    };
    let b = backends("doctor").pop().unwrap();
    let index = b.meili.as_ref().unwrap().2.clone();
    // Before the first use the index does not exist: said so, nothing created.
    let before = doctor(&meili_config(&url, &key, &index), DIMS).await;
    let idx = before.iter().find(|c| c.name == "meilisearch.index").unwrap();
    assert!(!idx.ok && idx.detail.contains("first ingest creates it"), "{before:?}");
    load(&b, "A", help_center()).await;
    let checks = doctor(&meili_config(&url, &key, &index), DIMS).await;
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "meilisearch.health",
            "meilisearch.master_key",
            "meilisearch.version",
            "meilisearch.index",
            "meilisearch.settings",
            "meilisearch.search_key"
        ]
    );
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert!(checks[3].detail.ends_with("3 chunks"), "{checks:?}");
    // Other vector dimensions than the index holds: the settings check says which.
    let other = doctor(&meili_config(&url, &key, &index), DIMS * 3).await;
    let settings = other.iter().find(|c| c.name == "meilisearch.settings").unwrap();
    assert!(!settings.ok && settings.detail.contains(&format!("expected {}", DIMS * 3)), "{other:?}");
    // A wrong master key.
    let wrong = doctor(&meili_config(&url, "not-the-master-key", &index), DIMS).await;
    let auth = wrong.iter().find(|c| c.name == "meilisearch.master_key").unwrap();
    assert!(!auth.ok && auth.detail.contains("invalid_api_key"), "{wrong:?}");
    assert!(wrong.iter().all(|c| !c.detail.contains(&key)));
    b.cleanup().await;
}

// ---- Isolation property ------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed with
/// `FRONTDESK_ISOLATION_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Workspace ids chosen to trip a backend that matches by prefix, case, quoting or
/// normalisation instead of by exact id.
const TRICKY_WORKSPACES: &[&str] = &[
    "acme",
    "acme-2",
    "ACME",
    "acme ",
    "acme'",
    "x' OR workspace_id = 'acme",
    "a\"b",
    "café",
    "cafe\u{301}",
    "T012AB3CD",
    "T012AB3CDE",
    "guild:4401",
];

/// Every workspace's chunks share one small vocabulary, so any query matches text in every
/// workspace and only the workspace boundary keeps results apart.
const WORDS: &[&str] = &[
    "refund", "invoice", "password", "reset", "export", "token", "plan", "annual", "trial", "seat", "admin", "billing",
    "card", "expired", "error", "limit", "minute", "report", "team", "owner", "delete", "account", "email", "login",
    "single", "sign", "webhook", "retry", "backup", "restore",
];

fn random_text(rng: &mut Rng, words: usize) -> String {
    (0..words).map(|_| *rng.pick(WORDS)).collect::<Vec<_>>().join(" ")
}

/// What each workspace holds: (workspace, chunk id) → text.
type Owned = std::collections::HashMap<(String, String), String>;

async fn random_upsert(b: &Backend, rng: &mut Rng, owned: &mut Owned, round: usize) {
    let w = *rng.pick(TRICKY_WORKSPACES);
    let mut chunks = Vec::new();
    for n in 0..1 + rng.below(6) {
        // Doc ids repeat across workspaces on purpose: only the workspace tells them apart.
        let doc = format!("doc-{}", rng.below(12));
        let mut c = chunk(&doc, n, &random_text(rng, 3), &format!("{} r{round}", random_text(rng, 12)));
        if rng.below(3) == 0 {
            c.product = Some((*rng.pick(&["api", "billing", "mobile"])).to_string());
        }
        if rng.below(4) == 0 {
            c.source_kind = SourceKind::Ticket;
        }
        owned.insert((w.to_string(), c.chunk_id.clone()), c.text.clone());
        chunks.push(c);
    }
    b.retriever.upsert(&ws(w), indexed(chunks)).await.unwrap();
}

async fn random_delete(b: &Backend, rng: &mut Rng, owned: &mut Owned) {
    let w = *rng.pick(TRICKY_WORKSPACES);
    let mut ids: Vec<String> = owned.keys().filter(|(o, _)| o == w).map(|(_, id)| id.clone()).collect();
    ids.sort();
    ids.retain(|_| rng.below(3) == 0);
    if ids.is_empty() {
        return;
    }
    for id in &ids {
        owned.remove(&(w.to_string(), id.clone()));
    }
    b.retriever.delete(&ws(w), &ids).await.unwrap();
}

/// Runs `queries` random searches (random workspace, words, mode, filters) between random
/// upserts and deletes, and checks every hit against what the queried workspace holds.
/// Returns the number of hits checked.
async fn isolation_property(b: &Backend, seed: u64, queries: usize) -> usize {
    let mut rng = Rng(seed | 1);
    let mut owned = Owned::new();
    for round in 0..40 {
        random_upsert(b, &mut rng, &mut owned, round).await;
    }
    b.retriever.commit().await.unwrap();
    let mut checked = 0;
    for q in 0..queries {
        if q % 500 == 499 {
            for round in 0..3 {
                random_upsert(b, &mut rng, &mut owned, 1000 + q + round).await;
            }
            random_delete(b, &mut rng, &mut owned).await;
            b.retriever.commit().await.unwrap();
        }
        let w = *rng.pick(TRICKY_WORKSPACES);
        let mode = *rng.pick(&[SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector]);
        let words = 1 + rng.below(5);
        let text = random_text(&mut rng, words);
        let mut r = request(w, &text, mode);
        r.limit = 1 + rng.below(20);
        match rng.below(6) {
            0 => r.filters.products = vec![(*rng.pick(&["api", "billing", "mobile"])).to_string()],
            1 => r.filters.source_kind = Some(SourceKind::Ticket),
            _ => {}
        }
        let hits = b.retriever.search(&r).await.unwrap();
        for h in &hits {
            let key = (w.to_string(), h.chunk_id.clone());
            assert_eq!(
                owned.get(&key),
                Some(&h.text),
                "{}: seed {seed}, query {q} in workspace {w:?} ({text:?}, {mode:?}) returned chunk {:?} with text \
                 {:?}, which that workspace does not hold",
                b.name,
                h.chunk_id,
                h.text
            );
        }
        checked += hits.len();
    }
    checked
}

/// 10,000 random queries per backend over twelve workspaces whose ids differ by a prefix, a
/// case, a trailing space, a quote or a Unicode normalisation: no hit ever comes from another
/// workspace. Set `FRONTDESK_ISOLATION_SEED` to replay a seed, `FRONTDESK_ISOLATION_QUERIES`
/// to run more.
#[tokio::test]
async fn no_query_ever_sees_another_workspace() {
    let seed = std::env::var("FRONTDESK_ISOLATION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_f00d);
    let queries = std::env::var("FRONTDESK_ISOLATION_QUERIES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000usize);
    for b in backends("isolation_property") {
        let checked = isolation_property(&b, seed, queries).await;
        // Every query matches text in every non-empty workspace, so most return hits: a backend
        // that returned nothing would pass the check above vacuously.
        assert!(checked >= queries, "{}: only {checked} hits in {queries} queries", b.name);
        eprintln!("isolation: {}: {queries} queries, {checked} hits checked, 0 from another workspace", b.name);
        b.cleanup().await;
    }
}
