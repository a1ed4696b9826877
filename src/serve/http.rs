//! The HTTP side of `frontdesk serve`: `/healthz`, `/readyz`, and the adapters' routes.
//!
//! - `/healthz` answers 200 while the process runs and its event loop turns (liveness).
//! - `/readyz` answers 200 only when frontdesk can do its job: the store answers, the knowledge
//!   base is not empty, the inbox worker runs, and every configured channel passed its last
//!   health check (re-checked at most every `server.health_cache_secs`). Otherwise 503, with
//!   the failing checks in the JSON body.

use super::ChannelSet;
use crate::inbox::Inbox;
use crate::knowledge::KnowledgeBase;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
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

/// The body of `/readyz`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadyReport {
    pub ready: bool,
    pub checks: Vec<Check>,
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

/// `/healthz`, `/readyz`, merged with the adapters' own routes.
pub fn router(readiness: Arc<Readiness>, adapters: Router) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .merge(adapters)
        .fallback(not_found)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(readiness): State<Arc<Readiness>>) -> Response {
    let report = readiness.report().await;
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint at {}: frontdesk serves /slack/events, /slack/interactions, /discord/interactions, /email/inbound (those configured), /healthz and /readyz\n",
            uri.path()
        ),
    )
        .into_response()
}
