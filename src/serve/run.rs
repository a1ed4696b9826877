//! Runs everything `frontdesk serve` is made of until shutdown.

use super::http::{self, Readiness, Routes};
use super::ChannelSet;
use crate::channel::InboxSink;
use crate::config::{Config, ServerConfig, StoreConfig};
use crate::engine::Engine;
use crate::inbox::{Clock, Inbox, InboxOptions, TurnHandler, Worker};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot open the inbox: {0}")]
    Inbox(#[from] crate::store::StoreError),
}

impl ServeError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            ServeError::Listen { .. } => "listen_failed",
            ServeError::Inbox(e) => e.code(),
        }
    }
}

/// A server ready to run: listening already, so the caller knows the address (tests bind port 0).
pub struct Server {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    engine: Arc<Engine>,
    inbox: Inbox,
    channels: ChannelSet,
    routes: Routes,
    readiness: Arc<Readiness>,
    settings: ServerConfig,
    retention: StoreConfig,
}

/// How often the engine's expired records (turn results, traces, idle conversations) are purged.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

impl Server {
    /// Opens the inbox in the engine's store and binds `config.server.listen`.
    pub async fn bind(
        config: &Config,
        engine: Arc<Engine>,
        channels: ChannelSet,
        adapter_routes: impl Into<Routes>,
    ) -> Result<Server, ServeError> {
        let options = InboxOptions {
            max_parallel: config.server.max_parallel,
            max_parallel_deliveries: config.server.max_parallel_deliveries,
            dedup_retention: config.store.dedup_retention(),
            ..InboxOptions::default()
        };
        let inbox = Inbox::open(&engine.kb.store, options)?;
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .map_err(|source| ServeError::Listen { addr: config.server.listen.clone(), source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServeError::Listen { addr: config.server.listen.clone(), source })?;
        let readiness = Arc::new(Readiness::new(
            Arc::clone(&engine.kb),
            inbox.clone(),
            channels.clone(),
            Duration::from_secs(config.server.health_cache_secs),
        ));
        Ok(Server {
            listener,
            addr,
            engine,
            inbox,
            channels,
            routes: adapter_routes.into(),
            readiness,
            settings: config.server.clone(),
            retention: config.store.clone(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Serves until `shutdown` is cancelled: the adapters receive, the worker answers and
    /// delivers, the HTTP endpoints answer. Returns once all of them have stopped.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let Server { listener, addr, engine, inbox, channels, routes, readiness, settings, retention } = self;
        let sink: Arc<dyn InboxSink> = Arc::new(inbox.clone());

        let mut adapters = Vec::new();
        for adapter in channels.adapters() {
            let (adapter, sink, shutdown) = (Arc::clone(adapter), Arc::clone(&sink), shutdown.clone());
            adapters.push(tokio::spawn(async move {
                let name = adapter.name();
                tracing::info!(channel = name, "channel starting");
                match adapter.run(sink, shutdown).await {
                    Ok(()) => tracing::info!(channel = name, "channel stopped"),
                    // The others keep running; /readyz reports this one through its health check.
                    Err(error) => tracing::error!(channel = name, %error, "channel stopped with an error"),
                }
            }));
        }

        let housekeeping = tokio::spawn(purge_engine_records(Arc::clone(&engine), retention, shutdown.clone()));
        let handler: Arc<dyn TurnHandler> = engine;
        let worker = Worker::new(inbox, handler, Arc::new(channels));
        let worker_ready = Arc::clone(&readiness);
        let worker_shutdown = shutdown.clone();
        let worker = tokio::spawn(async move {
            worker_ready.worker_running.store(true, Ordering::SeqCst);
            worker.run(worker_shutdown).await;
            worker_ready.worker_running.store(false, Ordering::SeqCst);
        });

        tracing::info!(%addr, "listening");
        let app = http::router(readiness, routes, &settings);
        // Returns once shutdown was asked for and every connection has ended.
        super::listen::serve(listener, app, &settings, shutdown.clone()).await;
        for adapter in adapters {
            if let Err(error) = adapter.await {
                tracing::error!(%error, "a channel task failed");
            }
        }
        if let Err(error) = worker.await {
            tracing::error!(%error, "the inbox worker failed");
        }
        if let Err(error) = housekeeping.await {
            tracing::error!(%error, "the purge of expired records failed");
        }
        Ok(())
    }
}

/// Purges the engine's records past their retention (`[store]`) at start and then every
/// [`PURGE_EVERY`], until shutdown.
async fn purge_engine_records(engine: Arc<Engine>, retention: StoreConfig, shutdown: CancellationToken) {
    loop {
        let (engine_now, retention_now) = (Arc::clone(&engine), retention.clone());
        let purged = tokio::task::spawn_blocking(move || purge_once(&engine_now, &retention_now)).await;
        if let Err(error) = purged {
            tracing::error!(%error, "the purge of expired records stopped; it is tried again later");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(PURGE_EVERY) => {}
        }
    }
}

fn purge_once(engine: &Engine, retention: &StoreConfig) {
    let now = crate::inbox::SystemClock.now_ms();
    match engine.conversations.purge_expired(now, retention.dedup_retention(), retention.conversation_retention()) {
        Ok(purged) if purged.turn_results + purged.conversations > 0 => tracing::info!(
            turn_results = purged.turn_results,
            conversations = purged.conversations,
            turn_retention_hours = retention.dedup_retention_hours,
            conversation_retention_days = retention.conversation_retention_days,
            "purged expired turn results and conversations nobody wrote in (store.dedup_retention_hours, \
             store.conversation_retention_days)"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not purge expired turn results and conversations; will retry"),
    }
    match engine.traces.purge_expired(now, retention.trace_retention()) {
        Ok(0) => {}
        Ok(purged) => tracing::info!(
            traces = purged,
            retention_days = retention.trace_retention_days,
            "purged expired traces (store.trace_retention_days)"
        ),
        Err(error) => tracing::warn!(%error, "could not purge expired traces; will retry"),
    }
}
