//! The HTTP side of `frontdesk serve`: `/healthz`, `/readyz`, and the adapters' routes.
//!
//! - `/healthz` answers 200 while the process runs and its event loop turns (liveness).
//! - `/readyz` answers 200 only when frontdesk can do its job: the store answers, the knowledge
//!   base is not empty, the inbox worker runs, and every configured channel passed its last
//!   health check (re-checked at most every `server.health_cache_secs`). Otherwise 503. The
//!   JSON body names each check and whether it passed; what each found (workspace ids, the
//!   channels' own health messages) only with `Authorization: Bearer <server.admin_token>`,
//!   and always in `frontdesk doctor`.
//!
//! Every request body is read here, before any handler sees it, and only up to the limit of its
//! route: `server.max_body_bytes` unless the route declared its own ([`Routes::body_limit`]). A
//! declared `Content-Length` over the limit is refused with 413 without reading the body; a
//! body without one is cut off at the limit, also with 413. So a platform's signature is never
//! checked over more bytes than the platform can send. A route declared without a body
//! ([`Routes::without_body`]: a webhook that is not configured) gets none: its handler answers
//! at once and the connection is closed, the body never read. The body must arrive within
//! `server.body_timeout_secs` (408 otherwise), and the handler must answer within
//! `server.request_timeout_secs` (503 otherwise).

use super::ChannelSet;
pub use crate::channel::Routes;
use crate::config::ServerConfig;
use crate::inbox::Inbox;
use crate::knowledge::KnowledgeBase;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What `/readyz` looks at.
pub struct Readiness {
    kb: Arc<KnowledgeBase>,
    inbox: Inbox,
    channels: ChannelSet,
    /// Set by `serve` once the worker runs, cleared when it stops.
    pub worker_running: AtomicBool,
    cache_for: Duration,
    last: Mutex<Option<(Instant, ReadyReport)>>,
}

/// One check of `/readyz`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// The body of `/readyz` for the admin.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadyReport {
    pub ready: bool,
    pub checks: Vec<Check>,
}

/// One check of `/readyz` as anyone may see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicCheck {
    pub name: String,
    pub ok: bool,
}

/// The body of `/readyz` for anyone: no details.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicReport {
    pub ready: bool,
    pub checks: Vec<PublicCheck>,
}

impl ReadyReport {
    /// The report without what the checks found, which can name workspaces, hosts and logins.
    pub fn public(&self) -> PublicReport {
        PublicReport {
            ready: self.ready,
            checks: self.checks.iter().map(|c| PublicCheck { name: c.name.clone(), ok: c.ok }).collect(),
        }
    }
}

impl Readiness {
    pub fn new(kb: Arc<KnowledgeBase>, inbox: Inbox, channels: ChannelSet, cache_for: Duration) -> Readiness {
        Readiness { kb, inbox, channels, worker_running: AtomicBool::new(false), cache_for, last: Mutex::new(None) }
    }

    /// Runs the checks, or returns the last result when it is recent enough.
    pub async fn report(&self) -> ReadyReport {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref() {
            if at.elapsed() < self.cache_for {
                // The worker flag is cheap and changes on shutdown: never serve it stale.
                if self.worker_running.load(Ordering::SeqCst) {
                    return report.clone();
                }
            }
        }
        let report = self.check_now().await;
        *last = Some((Instant::now(), report.clone()));
        report
    }

    async fn check_now(&self) -> ReadyReport {
        let mut checks = Vec::new();
        let workspaces = {
            let store = self.kb.store.clone();
            tokio::task::spawn_blocking(move || store.catalogue().and_then(|c| c.workspaces())).await
        };
        checks.push(match workspaces {
            Ok(Ok(list)) if list.is_empty() => Check {
                name: "knowledge".into(),
                ok: false,
                detail: "no knowledge ingested: run `frontdesk ingest --workspace <id> <folder>` first".into(),
            },
            Ok(Ok(list)) => Check {
                name: "knowledge".into(),
                ok: true,
                detail: format!("workspaces with knowledge: {}", list.join(", ")),
            },
            Ok(Err(e)) => Check { name: "knowledge".into(), ok: false, detail: format!("the store failed: {e}") },
            Err(e) => Check { name: "knowledge".into(), ok: false, detail: format!("check failed: {e}") },
        });
        let running = self.worker_running.load(Ordering::SeqCst);
        let stats = self.inbox.stats();
        checks.push(Check {
            name: "inbox".into(),
            ok: running,
            detail: format!(
                "worker {}; {} waiting to be answered, {} replies waiting to be delivered, {} dead letters",
                if running { "running" } else { "not running" },
                stats.pending_inbound,
                stats.pending_outbound,
                stats.dead_letters
            ),
        });
        for adapter in self.channels.adapters() {
            let health = adapter.healthcheck().await;
            checks.push(Check { name: adapter.name().into(), ok: health.ok, detail: health.detail });
        }
        ReadyReport { ready: checks.iter().all(|c| c.ok), checks }
    }
}

/// How large a request body may be, by route, and how long it may take to arrive.
#[derive(Debug, Clone)]
struct BodyLimits {
    default: usize,
    routes: BTreeMap<String, usize>,
    /// Routes whose bodies are never read.
    without_body: BTreeSet<String>,
    timeout: Duration,
}

impl BodyLimits {
    fn of(&self, route: Option<&str>) -> usize {
        route.and_then(|r| self.routes.get(r)).copied().unwrap_or(self.default)
    }
}

/// `/healthz`, `/readyz`, merged with the adapters' own routes, every request body read within
/// its route's limit.
pub fn router(readiness: Arc<Readiness>, adapters: Routes, server: &ServerConfig) -> Router {
    let (adapter_router, body_limits, without_body) = adapters.into_parts();
    let limits = Arc::new(BodyLimits {
        default: server.max_body_bytes,
        routes: body_limits,
        without_body,
        timeout: Duration::from_secs(server.body_timeout_secs),
    });
    let handler_timeout = Duration::from_secs(server.request_timeout_secs);
    let ready = Arc::new(Ready { readiness, admin_token: server.admin_token.clone() });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ready)
        .merge(adapter_router)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(handler_timeout, answer_in_time))
        .layer(middleware::from_fn_with_state(limits, read_body))
        // The body arrives already read and within its limit; a route may still set a
        // smaller limit of its own with `DefaultBodyLimit`.
        .layer(DefaultBodyLimit::disable())
}

/// Reads the request body, up to its route's limit, before the handler runs.
async fn read_body(State(limits): State<Arc<BodyLimits>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    if route.as_ref().is_some_and(|r| limits.without_body.contains(r)) {
        let (parts, _unread) = request.into_parts();
        let mut response = next.run(Request::from_parts(parts, Body::empty())).await;
        response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return response;
    }
    let limit = limits.of(route.as_deref());
    let route = route.unwrap_or_else(|| shorten(request.uri().path()));
    let (parts, body) = request.into_parts();
    if let Some(declared) = declared_length(&parts.headers) {
        if declared > limit as u64 {
            tracing::warn!(%route, declared, limit, "request refused: its body is over the limit");
            return too_large(format!("the request body is {declared} bytes; {route} accepts at most {limit} bytes\n"));
        }
    }
    let reading = async {
        let mut read = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    return Err((StatusCode::BAD_REQUEST, format!("the request body could not be read: {error}\n"))
                        .into_response());
                }
            };
            if chunk.len() > limit - read.len() {
                tracing::warn!(%route, limit, "request refused: its body grew over the limit");
                return Err(too_large(format!("the request body is larger than the {limit} bytes {route} accepts\n")));
            }
            read.extend_from_slice(&chunk);
        }
        Ok(read)
    };
    let read = match tokio::time::timeout(limits.timeout, reading).await {
        Ok(Ok(read)) => read,
        Ok(Err(refused)) => return refused,
        Err(_) => {
            let secs = limits.timeout.as_secs();
            tracing::warn!(%route, secs, "request refused: its body was too slow to arrive");
            return closing(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive in full within {secs} seconds\n"),
            );
        }
    };
    next.run(Request::from_parts(parts, Body::from(read))).await
}

/// Runs the handler, or answers 503 when it takes longer than `timeout`.
async fn answer_in_time(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let path = shorten(request.uri().path());
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let secs = timeout.as_secs();
            tracing::error!(%path, secs, "a request was not answered in time");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("frontdesk did not answer this request within {secs} seconds; try again\n"),
            )
                .into_response()
        }
    }
}

/// The `Content-Length` the client declared, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// 413; the connection is closed, as the rest of the body is never read.
fn too_large(message: String) -> Response {
    closing(StatusCode::PAYLOAD_TOO_LARGE, message)
}

/// An answer after which the connection is closed (the rest of the body is never read).
fn closing(status: StatusCode, message: String) -> Response {
    (status, [(header::CONNECTION, "close")], message).into_response()
}

/// A path as shown in a message: at most 100 characters of it.
fn shorten(path: &str) -> String {
    match path.char_indices().nth(100) {
        Some((at, _)) => format!("{}...", &path[..at]),
        None => path.to_string(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// What `/readyz` answers from, and to whom it shows details.
struct Ready {
    readiness: Arc<Readiness>,
    admin_token: Option<SecretString>,
}

async fn readyz(State(ready): State<Arc<Ready>>, headers: HeaderMap) -> Response {
    let detailed = match admitted(ready.admin_token.as_ref(), &headers) {
        Ok(detailed) => detailed,
        Err(reason) => {
            tracing::warn!(reason, "/readyz details refused");
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(serde_json::json!({ "error": reason })),
            )
                .into_response();
        }
    };
    let report = ready.readiness.report().await;
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    if detailed {
        (status, Json(report)).into_response()
    } else {
        (status, Json(report.public())).into_response()
    }
}

/// Whether the caller may see details: not without an `Authorization` header, yes with the
/// admin token; any other `Authorization` is refused, for the reason given.
fn admitted(token: Option<&SecretString>, headers: &HeaderMap) -> Result<bool, &'static str> {
    let Some(given) = headers.get(header::AUTHORIZATION) else {
        return Ok(false);
    };
    let Some(token) = token else {
        return Err(
            "this server has no admin token (server.admin_token), so /readyz shows no details; frontdesk doctor does",
        );
    };
    match given.to_str().ok().and_then(|v| v.trim().strip_prefix("Bearer ")) {
        Some(given) if same_secret(given.trim(), token.expose_secret()) => Ok(true),
        Some(_) => Err("the admin token does not match"),
        None => Err("expected Authorization: Bearer <server.admin_token>"),
    }
}

/// Compares in constant time, without giving away the length of either.
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let (given, expected) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    given.as_slice().ct_eq(expected.as_slice()).into()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint at {}: frontdesk serves /slack/events, /slack/interactions, /discord/interactions, /email/inbound (those configured), /healthz and /readyz\n",
            shorten(uri.path())
        ),
    )
        .into_response()
}
