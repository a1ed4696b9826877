//! The Meilisearch backend: chunks live in one Meilisearch index shared by all workspaces.
//!
//! - **Setup** (master key, on first use): the index is created if missing, its settings
//!   (searchable title/headings/text; filterable workspace, product, kind, date; the embedder)
//!   are checked and repaired, and a search-only API key for the index is found or created.
//! - **Writes** (ingest, master key): chunks are sent in batches as documents carrying their
//!   vector under `_vectors` (with the default `userProvided` embedder); `commit` waits for
//!   Meilisearch's tasks, within a time limit, and reports a failed task with Meilisearch's
//!   own error code.
//! - **Searches** never use the master key. Each carries a tenant token signed with the search
//!   key whose search rules fix `workspace_id` to the request's workspace, so a request whose
//!   own filter names another workspace still sees only its own.
//! - **Hybrid** search runs the keyword and the vector search as two queries of one
//!   multi-search request and fuses them as the embedded backend does (Meilisearch's own
//!   hybrid ranking is available with `fusion = "meilisearch"`). A vector search that silently
//!   degraded to keyword matching is an error, not a result.
//! - **Failures**: every request has a connect and a request timeout and a bounded number of
//!   retries; after that the search fails and the turn is handed to a person.

pub mod config;
pub mod http;
pub mod query;
pub mod setup;
pub mod wire;

#[cfg(test)]
mod recorded;

use self::config::{EmbedderSource, FusionMode, MeiliConfig};
use self::http::{from_sdk, ApiError, Retry, SdkHttp, Transport};
use self::wire::{MeiliDoc, SearchBody};
use super::{Hit, IndexedChunk, RetrievalError, Retriever, SearchRequest, TermInfo, TermStats};
use crate::channel::WorkspaceId;
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use meilisearch_sdk::client::Client;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OnceCell};

pub use self::setup::{doctor, Check};

/// What went wrong talking to Meilisearch.
#[derive(Debug, thiserror::Error)]
pub enum MeiliError {
    #[error("Meilisearch at {url} is unreachable after {attempts} attempt(s): {reason}")]
    Unreachable { url: String, attempts: u32, reason: String },
    #[error("Meilisearch refused the request (HTTP {status}): {error}")]
    Api { status: u16, error: Box<ApiError> },
    #[error("Meilisearch answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("cannot read Meilisearch's answer: {0}")]
    Decode(String),
    #[error("Meilisearch task {task} ({kind}) failed: {error}")]
    TaskFailed { task: u64, kind: String, error: Box<ApiError> },
    #[error("Meilisearch task {task} did not finish within {secs} s (it may still complete; `frontdesk ingest` can be run again)")]
    TaskTimeout { task: u64, secs: u64 },
    #[error(
        "the vector search fell back to keyword matching ({semantic} of {hits} hits came from vectors); \
         check the index's embedder with `frontdesk doctor`"
    )]
    SemanticFallback { hits: usize, semantic: usize },
    #[error("Meilisearch setup: {0}")]
    Setup(String),
    #[error("Meilisearch client: {0}")]
    Sdk(String),
}

impl MeiliError {
    /// Meilisearch's error code, when it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            MeiliError::Api { error, .. } | MeiliError::TaskFailed { error, .. } => Some(&error.code),
            _ => None,
        }
    }
}

impl From<MeiliError> for RetrievalError {
    fn from(e: MeiliError) -> Self {
        match e.code() {
            Some(code) => RetrievalError::Backend { code: code.to_string(), message: e.to_string() },
            None => RetrievalError::Unavailable(e.to_string()),
        }
    }
}

/// The name of the search key frontdesk creates for an index.
pub fn search_key_name(index: &str) -> String {
    format!("frontdesk-search-{index}")
}

#[derive(Deserialize)]
struct KeyView {
    #[serde(default)]
    name: Option<String>,
    key: String,
    uid: String,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    indexes: Vec<String>,
    #[serde(default, rename = "expiresAt")]
    expires_at: Option<String>,
}

#[derive(Deserialize)]
struct KeyList {
    results: Vec<KeyView>,
}

/// The search key frontdesk made for `index`, as `(key, uid)`, if there is one.
async fn find_search_key(
    transport: &Transport,
    master: &str,
    index: &str,
) -> Result<Option<(String, String)>, MeiliError> {
    let name = search_key_name(index);
    let list: KeyList = transport.json(reqwest::Method::GET, "/keys?limit=1000", master, None, Retry::Safe).await?;
    Ok(list
        .results
        .into_iter()
        .find(|k| {
            k.name.as_deref() == Some(name.as_str())
                && k.expires_at.is_none()
                && k.actions.iter().any(|a| a == "search" || a == "*")
                && k.indexes.iter().any(|i| i == index || i == "*")
        })
        .map(|k| (k.key, k.uid)))
}

/// Search rules of a workspace's tenant token: the index, filtered to the workspace.
fn search_rules(index: &str, workspace: &str) -> Value {
    json!({ index: { "filter": format!("workspace_id = {}", wire::quote(workspace)) } })
}

fn sign_token(key: &str, uid: &str, rules: Value, ttl_secs: u64) -> Result<String, MeiliError> {
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(ttl_secs.min(i64::MAX as u64) as i64);
    // Signing is local: this client only carries the search key and sends nothing.
    let client =
        Client::new_with_client("http://unused.invalid", Some(key), meilisearch_sdk::reqwest::ReqwestClient::default());
    client
        .generate_tenant_token(uid.to_string(), rules, Some(key), Some(expires))
        .map_err(|e| MeiliError::Sdk(e.to_string()))
}

/// A search with a tenant token for a workspace that holds nothing: proves the key works.
async fn probe_token_search(
    transport: &Transport,
    index: &str,
    key: &str,
    uid: &str,
    ttl_secs: u64,
) -> Result<(), MeiliError> {
    let probe = "frontdesk-doctor-probe";
    let token = sign_token(key, uid, search_rules(index, probe), ttl_secs)?;
    let body = json!({"q": "", "hitsPerPage": 0, "page": 1});
    let _: wire::CountResponse = transport
        .json(reqwest::Method::POST, &format!("/indexes/{index}/search"), &token, Some(&body), Retry::Safe)
        .await?;
    Ok(())
}

#[derive(Deserialize)]
struct TaskView {
    status: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Enqueued {
    task_uid: u64,
}

/// Whether a task is done: `Ok(true)` succeeded, `Ok(false)` still queued or running, and
/// the task's own error when it failed or was cancelled.
fn task_finished(task: u64, view: TaskView) -> Result<bool, MeiliError> {
    match view.status.as_str() {
        "succeeded" => Ok(true),
        "failed" | "canceled" => {
            let error = view.error.unwrap_or_else(|| ApiError {
                message: format!("the task was {}", view.status),
                code: format!("task_{}", view.status),
                kind: String::new(),
                link: String::new(),
            });
            Err(MeiliError::TaskFailed { task, kind: view.kind, error: Box::new(error) })
        }
        _ => Ok(false),
    }
}

/// Done setting up: the key searches are signed with.
struct Ready {
    search_key: SecretString,
    search_key_uid: String,
}

#[derive(Default)]
struct Pending {
    docs: Vec<MeiliDoc>,
    tasks: Vec<u64>,
}

const BINDING_TREE: &str = "meili_binding";

/// Hits looked at per term when counting the chunks that contain it without a typo.
const TERM_COUNT_HITS: usize = 50;

/// Chunks in a Meilisearch index, one index for all workspaces.
pub struct MeiliRetriever {
    config: MeiliConfig,
    master: SecretString,
    frontdesk_dims: usize,
    transport: Arc<Transport>,
    sdk: Client<SdkHttp>,
    ready: OnceCell<Ready>,
    pending: Mutex<Pending>,
    analyzer: query::Analyzer,
    store: Store,
    /// The index had to be created although the catalogue listed ingested documents.
    catalogue_was_stale: AtomicBool,
}

impl std::fmt::Debug for MeiliRetriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeiliRetriever").field("url", &self.config.url).field("index", &self.config.index).finish()
    }
}

/// Forgets what the catalogue says was indexed, so the next ingest sends everything again.
fn reset_catalogue(store: &Store) -> Result<usize, StoreError> {
    let catalogue = store.catalogue()?;
    let mut removed = 0;
    for ws in catalogue.workspaces()? {
        let Ok(id) = WorkspaceId::new(ws) else { continue };
        for (doc_id, _) in catalogue.list(&id)? {
            catalogue.remove(&id, &doc_id)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn catalogue_is_empty(store: &Store) -> Result<bool, StoreError> {
    let catalogue = store.catalogue()?;
    for ws in catalogue.workspaces()? {
        let Ok(id) = WorkspaceId::new(ws) else { continue };
        if !catalogue.list(&id)?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

impl MeiliRetriever {
    /// Prepares the backend; nothing is sent to the server until the first operation.
    ///
    /// The catalogue in `store` records what was sent to one index of one server. When this
    /// data directory was last used with another backend, server or index, the catalogue is
    /// reset so that the next ingest sends every chunk.
    pub fn open(config: &MeiliConfig, store: &Store, frontdesk_dims: usize) -> Result<Self, RetrievalError> {
        let problems = config.problems(frontdesk_dims);
        if let Some((path, message)) = problems.first() {
            return Err(MeiliError::Setup(format!("{path}: {message}")).into());
        }
        let master = config.master_key.clone().ok_or_else(|| MeiliError::Setup("no master key".into()))?;
        let transport = Arc::new(Transport::new(
            &config.url,
            Duration::from_millis(config.connect_timeout_ms),
            Duration::from_millis(config.request_timeout_ms),
            config.max_retries,
        )?);
        let sdk = Client::new_with_client(
            transport.base().to_string(),
            None::<String>,
            SdkHttp::new(transport.clone(), master.clone()),
        );
        let binding = format!("{}\n{}", transport.base(), config.index);
        let tree = store.db().open_tree(BINDING_TREE).map_err(StoreError::from)?;
        let previous = tree.get("binding").map_err(StoreError::from)?;
        if previous.as_deref() != Some(binding.as_bytes()) {
            if !catalogue_is_empty(store)? {
                let n = reset_catalogue(store)?;
                tracing::info!(documents = n, "catalogue reset: this data directory now ingests into another index");
            }
            tree.insert("binding", binding.as_bytes()).map_err(StoreError::from)?;
            tree.flush().map_err(StoreError::from)?;
        }
        Ok(MeiliRetriever {
            config: config.clone(),
            master,
            frontdesk_dims,
            transport,
            sdk,
            ready: OnceCell::new(),
            pending: Mutex::new(Pending::default()),
            analyzer: query::Analyzer::new().map_err(|e| MeiliError::Setup(e.to_string()))?,
            store: store.clone(),
            catalogue_was_stale: AtomicBool::new(false),
        })
    }

    fn index_path(&self, rest: &str) -> String {
        format!("/indexes/{}{rest}", self.config.index)
    }

    fn user_vectors(&self) -> bool {
        self.config.embedder.source == EmbedderSource::UserProvided
    }

    async fn ready(&self) -> Result<&Ready, MeiliError> {
        self.ready.get_or_try_init(|| self.set_up()).await
    }

    /// Creates or repairs the index and finds the search key (master key).
    async fn set_up(&self) -> Result<Ready, MeiliError> {
        let master = self.master.expose_secret();
        let t = &self.transport;
        let index = &self.config.index;
        let exists = match t.json::<Value>(reqwest::Method::GET, &self.index_path(""), master, None, Retry::Safe).await
        {
            Ok(_) => true,
            Err(e) if e.code() == Some("index_not_found") => false,
            Err(e) => return Err(e),
        };
        if !exists {
            let task = self.sdk.create_index(index, Some("id")).await.map_err(from_sdk)?;
            self.wait_tasks(&[u64::from(task.task_uid)]).await?;
            tracing::info!(index = %index, "created the Meilisearch index");
            if !catalogue_is_empty(&self.store).map_err(|e| MeiliError::Setup(e.to_string()))? {
                let n = reset_catalogue(&self.store).map_err(|e| MeiliError::Setup(e.to_string()))?;
                tracing::warn!(documents = n, "the index was new although documents were recorded as ingested");
                self.catalogue_was_stale.store(true, Ordering::SeqCst);
            }
        }
        let actual: Value =
            t.json(reqwest::Method::GET, &self.index_path("/settings"), master, None, Retry::Safe).await?;
        let problems = setup::settings_problems(&actual, &self.config, self.frontdesk_dims);
        if !problems.is_empty() {
            tracing::info!(problems = %problems.join("; "), "applying frontdesk's index settings");
            let settings = setup::expected_settings(&self.config, self.frontdesk_dims)?;
            let task = self.sdk.index(index).set_settings(&settings).await.map_err(from_sdk)?;
            self.wait_tasks(&[u64::from(task.task_uid)]).await?;
        }
        let (key, uid) = match (&self.config.search_key, &self.config.search_key_uid) {
            (Some(k), Some(uid)) => (k.expose_secret().to_string(), uid.clone()),
            _ => match find_search_key(t, master, index).await? {
                Some(found) => found,
                None => {
                    let mut builder = meilisearch_sdk::key::KeyBuilder::new();
                    builder
                        .with_name(search_key_name(index))
                        .with_description("frontdesk: signs the tenant tokens of customer searches")
                        .with_actions([meilisearch_sdk::key::Action::Search])
                        .with_indexes([index.as_str()]);
                    let key = self.sdk.create_key(builder).await.map_err(from_sdk)?;
                    tracing::info!(uid = %key.uid, "created the search key");
                    (key.key, key.uid)
                }
            },
        };
        Ok(Ready { search_key: SecretString::from(key), search_key_uid: uid })
    }

    /// Waits for tasks in order, all within `task_timeout_secs`.
    async fn wait_tasks(&self, tasks: &[u64]) -> Result<(), MeiliError> {
        let limit = Duration::from_secs(self.config.task_timeout_secs);
        let started = Instant::now();
        let master = self.master.expose_secret();
        for &task in tasks {
            let mut pause = Duration::from_millis(20);
            loop {
                let view: TaskView = self
                    .transport
                    .json(reqwest::Method::GET, &format!("/tasks/{task}"), master, None, Retry::Safe)
                    .await?;
                if task_finished(task, view)? {
                    break;
                }
                if started.elapsed() >= limit {
                    return Err(MeiliError::TaskTimeout { task, secs: self.config.task_timeout_secs });
                }
                tokio::time::sleep(pause.min(limit.saturating_sub(started.elapsed()))).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
        Ok(())
    }

    /// Sends buffered documents (all of them, or only full batches).
    async fn flush_docs(&self, pending: &mut Pending, all: bool) -> Result<(), MeiliError> {
        let batch = self.config.batch_size.max(1);
        while pending.docs.len() >= batch || (all && !pending.docs.is_empty()) {
            let n = pending.docs.len().min(batch);
            let body: Vec<MeiliDoc> = pending.docs.drain(..n).collect();
            let bytes = serde_json::to_vec(&body).map_err(|e| MeiliError::Decode(e.to_string()))?;
            let (status, text) = self
                .transport
                .send(
                    reqwest::Method::POST,
                    &self.index_path("/documents?primaryKey=id"),
                    self.master.expose_secret(),
                    Some(("application/json", bytes)),
                    Retry::ConnectOnly,
                )
                .await?;
            let task: Enqueued = http::decode(status, &text)?;
            pending.tasks.push(task.task_uid);
        }
        Ok(())
    }

    fn stale_check(&self) -> Result<(), MeiliError> {
        if self.catalogue_was_stale.swap(false, Ordering::SeqCst) {
            return Err(MeiliError::Setup(
                "the Meilisearch index did not exist although frontdesk had recorded documents as ingested \
                 (a new server or a deleted index); the record was cleared: run the same ingest again"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A tenant token for searches of one workspace.
    fn token(&self, ready: &Ready, workspace: &str) -> Result<String, MeiliError> {
        sign_token(
            ready.search_key.expose_secret(),
            &ready.search_key_uid,
            search_rules(&self.config.index, workspace),
            self.config.token_ttl_secs,
        )
    }

    async fn multi_search<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        queries: Vec<SearchBody>,
    ) -> Result<T, MeiliError> {
        let body = json!({ "queries": queries });
        self.transport.json(reqwest::Method::POST, "/multi-search", token, Some(&body), Retry::Safe).await
    }

    async fn search_hits(&self, request: &SearchRequest) -> Result<Vec<Hit>, RetrievalError> {
        let ratio = request.effective_ratio();
        let user = self.user_vectors();
        let vector = if user { request.vector.clone() } else { None };
        if ratio > 0.0 && user && vector.is_none() {
            return Err(RetrievalError::MissingVector(request.mode));
        }
        if let (Some(v), Some(d)) = (&vector, self.config.dimensions(self.frontdesk_dims)) {
            if v.len() != d {
                return Err(RetrievalError::Dimensions { expected: d, got: v.len() });
            }
        }
        let ready = self.ready().await?;
        let ws = request.workspace().as_str();
        let token = self.token(ready, ws)?;
        let filter = Some(wire::filter_expression(ws, &request.filters));
        let candidates = request.candidates.max(request.limit);
        let index = Some(self.config.index.clone());
        let embedder = self.config.embedder.name.clone();
        let keyword_q = query::keyword_query(&request.query);
        let fields = Some(wire::RETRIEVED_FIELDS.to_vec());
        match self.config.fusion {
            FusionMode::Frontdesk => {
                // 1. Keyword: one query per term of the question, scored like BM25.
                let mut keyword: Vec<(String, f32)> = Vec::new();
                let terms = if ratio < 1.0 { query::search_terms(&self.analyzer, &request.query) } else { Vec::new() };
                if !terms.is_empty() {
                    let mut queries = vec![SearchBody {
                        index_uid: index.clone(),
                        filter: filter.clone(),
                        page: Some(1),
                        hits_per_page: Some(0),
                        ..SearchBody::default()
                    }];
                    queries.extend(terms.iter().map(|t| SearchBody {
                        index_uid: index.clone(),
                        q: t.clone(),
                        filter: filter.clone(),
                        limit: Some(candidates),
                        matching_strategy: Some("all"),
                        attributes_to_retrieve: Some(vec!["id"]),
                        show_ranking_score: true,
                        ..SearchBody::default()
                    }));
                    let mut answer: wire::MultiIds = self.multi_search(&token, queries).await?;
                    if answer.results.len() != terms.len() + 1 {
                        return Err(MeiliError::Decode("a term query's answer is missing".into()).into());
                    }
                    let lists = answer.results.split_off(1);
                    let chunks = answer.results[0].total_hits.unwrap_or(0);
                    keyword = wire::term_scores(chunks, &lists);
                    keyword.truncate(candidates * 2);
                }
                // 2. The keyword candidates' fields (and cosines), and the vector search.
                let mut queries = Vec::new();
                if !keyword.is_empty() {
                    let list: Vec<String> = keyword.iter().map(|(id, _)| wire::quote(id)).collect();
                    let semantic = vector.is_some();
                    queries.push(SearchBody {
                        index_uid: index.clone(),
                        q: String::new(),
                        vector: vector.clone(),
                        hybrid: semantic.then(|| wire::Hybrid { embedder: embedder.clone(), semantic_ratio: 1.0 }),
                        filter: Some(format!("({}) AND id IN [{}]", filter.as_deref().unwrap_or(""), list.join(", "))),
                        limit: Some(keyword.len()),
                        attributes_to_retrieve: fields.clone(),
                        show_ranking_score: semantic,
                        ..SearchBody::default()
                    });
                }
                if ratio > 0.0 {
                    queries.push(SearchBody {
                        index_uid: index,
                        q: if user { String::new() } else { request.query.clone() },
                        vector: vector.clone(),
                        hybrid: Some(wire::Hybrid { embedder: embedder.clone(), semantic_ratio: 1.0 }),
                        filter,
                        limit: Some(candidates),
                        attributes_to_retrieve: fields,
                        show_ranking_score: true,
                        ..SearchBody::default()
                    });
                }
                if queries.is_empty() {
                    return Ok(Vec::new());
                }
                let mut answer: wire::MultiResponse = self.multi_search(&token, queries).await?;
                let semantic = if ratio > 0.0 {
                    let s =
                        answer.results.pop().ok_or_else(|| MeiliError::Decode("a search answer is missing".into()))?;
                    wire::check_semantic(&s)?;
                    s.hits
                } else {
                    Vec::new()
                };
                let mut scored = Vec::with_capacity(keyword.len());
                if !keyword.is_empty() {
                    let fetched =
                        answer.results.pop().ok_or_else(|| MeiliError::Decode("a search answer is missing".into()))?;
                    if vector.is_some() {
                        wire::check_semantic(&fetched)?;
                    }
                    let mut by_id: std::collections::HashMap<String, wire::RawHit> =
                        fetched.hits.into_iter().map(|h| (h.id.clone(), h)).collect();
                    for (id, score) in keyword {
                        // A chunk deleted between the two requests is simply left out.
                        let Some(h) = by_id.remove(&id) else { continue };
                        let cos = if vector.is_some() { h.ranking_score.map(wire::cosine_from_score) } else { None };
                        scored.push((h, score, cos));
                    }
                }
                Ok(wire::fuse_scored(scored, semantic, ratio, request.limit)?)
            }
            FusionMode::Meilisearch => {
                if ratio < 1.0 && keyword_q.is_empty() && ratio == 0.0 {
                    return Ok(Vec::new());
                }
                let body = SearchBody {
                    index_uid: index,
                    q: if ratio >= 1.0 && user { String::new() } else { keyword_q },
                    // Meilisearch refuses a vector without `hybrid`.
                    vector: if ratio > 0.0 { vector.clone() } else { None },
                    hybrid: (ratio > 0.0).then(|| wire::Hybrid { embedder: embedder.clone(), semantic_ratio: ratio }),
                    filter,
                    limit: Some(request.limit),
                    matching_strategy: Some("frequency"),
                    attributes_to_retrieve: fields,
                    show_ranking_score: true,
                    show_ranking_score_details: true,
                    retrieve_vectors: user && vector.is_some(),
                    ..SearchBody::default()
                };
                let mut answer: wire::MultiResponse = self.multi_search(&token, vec![body]).await?;
                let resp =
                    answer.results.pop().ok_or_else(|| MeiliError::Decode("the search answer is missing".into()))?;
                if ratio >= 1.0 {
                    wire::check_semantic(&resp)?;
                }
                let single_mode = ratio <= 0.0 || ratio >= 1.0;
                Ok(wire::native_hits(resp, vector.as_deref(), &embedder, single_mode)?)
            }
        }
    }

    fn count_body(&self, workspace: &str, q: &str) -> SearchBody {
        SearchBody {
            index_uid: Some(self.config.index.clone()),
            q: q.to_string(),
            filter: Some(wire::filter_expression(workspace, &Default::default())),
            page: Some(1),
            hits_per_page: Some(0),
            matching_strategy: Some("all"),
            ..SearchBody::default()
        }
    }
}

#[async_trait]
impl Retriever for MeiliRetriever {
    fn name(&self) -> &'static str {
        "meilisearch"
    }

    async fn upsert(&self, workspace: &WorkspaceId, chunks: Vec<IndexedChunk>) -> Result<(), RetrievalError> {
        self.ready().await?;
        self.stale_check()?;
        let expected = self.config.dimensions(self.frontdesk_dims);
        let name = self.config.embedder.name.as_str();
        let user = self.user_vectors();
        let mut pending = self.pending.lock().await;
        for IndexedChunk { chunk, vector } in chunks {
            if let Some(d) = expected.filter(|_| user) {
                if vector.len() != d {
                    return Err(RetrievalError::Dimensions { expected: d, got: vector.len() });
                }
            }
            let vector = user.then_some((name, vector));
            pending.docs.push(MeiliDoc::new(workspace.as_str(), &chunk, vector));
        }
        self.flush_docs(&mut pending, false).await?;
        Ok(())
    }

    async fn delete(&self, workspace: &WorkspaceId, chunk_ids: &[String]) -> Result<(), RetrievalError> {
        self.ready().await?;
        self.stale_check()?;
        let mut pending = self.pending.lock().await;
        self.flush_docs(&mut pending, true).await?;
        for group in chunk_ids.chunks(self.config.batch_size.max(1)) {
            let ids: Vec<String> = group.iter().map(|c| wire::document_id(workspace.as_str(), c)).collect();
            let task = self.sdk.index(&self.config.index).delete_documents(&ids).await.map_err(from_sdk)?;
            pending.tasks.push(u64::from(task.task_uid));
        }
        Ok(())
    }

    async fn commit(&self) -> Result<(), RetrievalError> {
        let mut pending = self.pending.lock().await;
        if pending.docs.is_empty() && pending.tasks.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        self.flush_docs(&mut pending, true).await?;
        let tasks = std::mem::take(&mut pending.tasks);
        self.wait_tasks(&tasks).await?;
        Ok(())
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<Hit>, RetrievalError> {
        self.search_hits(request).await
    }

    async fn count(&self, workspace: &WorkspaceId) -> Result<usize, RetrievalError> {
        let ready = self.ready().await?;
        let token = self.token(ready, workspace.as_str())?;
        let answer: wire::MultiCount = self.multi_search(&token, vec![self.count_body(workspace.as_str(), "")]).await?;
        Ok(answer.results.first().map(|r| r.total()).unwrap_or(0) as usize)
    }

    async fn term_stats(
        &self,
        workspace: &WorkspaceId,
        query: &str,
        top: &[Hit],
    ) -> Result<Option<TermStats>, RetrievalError> {
        let ws = workspace.as_str();
        let (in_top, distinctive) = super::term_sets(query, top, |t| self.analyzer.terms(t));
        let terms = self.analyzer.terms(query);
        let ready = self.ready().await?;
        let token = self.token(ready, ws)?;
        let mut queries = vec![self.count_body(ws, "")];
        queries.extend(terms.iter().map(|t| SearchBody {
            hits_per_page: Some(TERM_COUNT_HITS),
            attributes_to_retrieve: Some(vec!["id"]),
            show_ranking_score_details: true,
            ..self.count_body(ws, t)
        }));
        let answer: wire::MultiCount = self.multi_search(&token, queries).await?;
        if answer.results.len() != terms.len() + 1 {
            return Err(
                MeiliError::Decode(format!("{} counts for {} queries", answer.results.len(), terms.len() + 1)).into()
            );
        }
        let chunks = answer.results[0].total();
        let infos = terms
            .into_iter()
            .zip(answer.results.iter().skip(1))
            .map(|(term, count)| TermInfo {
                in_top: in_top.contains(&term),
                distinctive: distinctive.contains(&term),
                chunk_freq: count.exact_total(),
                term,
            })
            .collect();
        Ok(Some(TermStats { chunks, terms: infos }))
    }
}
