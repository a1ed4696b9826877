//! Accepting connections for `frontdesk serve`, each under timers, and no more than
//! `server.max_connections` at once.
//!
//! - A connection that waits for its next request longer than `server.idle_timeout_secs`
//!   (including a new one that sends nothing) is closed.
//! - A request head (request line and headers) must arrive in full within
//!   `server.header_timeout_secs` of its first byte, or the connection is closed.
//! - The body and the handler have their own timeouts, in the router ([`super::http`]).
//! - Beyond `server.max_connections` open connections, new ones wait in the listen queue until
//!   one closes.
//!
//! On shutdown no new connection is accepted, idle ones are closed, and requests under way are
//! finished (each under the timers above).

use crate::config::ServerConfig;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The connection timers of `[server]`.
#[derive(Debug, Clone, Copy)]
struct Timers {
    idle: Duration,
    header: Duration,
}

/// Serves `app` on `listener` until `shutdown` is cancelled and every connection has ended.
pub async fn serve(listener: TcpListener, app: Router, settings: &ServerConfig, shutdown: CancellationToken) {
    let timers = Timers {
        idle: Duration::from_secs(settings.idle_timeout_secs),
        header: Duration::from_secs(settings.header_timeout_secs),
    };
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let mut connections = JoinSet::new();
    let mut full = false;
    loop {
        while connections.try_join_next().is_some() {}
        if permits.available_permits() == 0 && !full {
            tracing::warn!(
                max_connections = settings.max_connections,
                "every connection slot is in use; new connections wait until one closes"
            );
        }
        full = permits.available_permits() == 0;
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failed(&error, &shutdown).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        connections.spawn(connection(stream, app.clone(), timers, shutdown.clone(), permit));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// A failed accept: a connection that went away before it was accepted is nothing; anything
/// else (out of file descriptors) is logged and retried after a pause.
async fn accept_failed(error: &io::Error, shutdown: &CancellationToken) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; retrying");
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Serves one connection while its timers allow.
async fn connection(
    stream: TcpStream,
    app: Router,
    timers: Timers,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: stream, activity: Arc::clone(&activity) });
    let service = Tracked { inner: TowerToHyperService::new(app), activity: Arc::clone(&activity) };
    let conn = http1::Builder::new().keep_alive(true).serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let changed = activity.changed.notified();
        let deadline = activity.deadline(timers);
        let expired = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "a connection ended with an error");
                }
                return;
            }
            _ = changed => {}
            _ = expired => {
                if activity.deadline(timers).is_some_and(|at| at <= Instant::now()) {
                    // Dropping the connection closes it.
                    tracing::debug!(phase = ?activity.phase(), "closing a connection that sent no complete request in time");
                    return;
                }
            }
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Where a connection is between requests, for its timers.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request since then: the connection opened, or its last response was made.
    Idle(Instant),
    /// The first bytes of a request arrived then; its head is not complete yet.
    Head(Instant),
    /// A request is being handled (under the body and handler timeouts).
    Busy,
}

struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity { phase: Mutex::new(Phase::Idle(Instant::now())), changed: Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn phase(&self) -> Phase {
        *self.lock()
    }

    fn set(&self, phase: Phase) {
        *self.lock() = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived from the client.
    fn received(&self) {
        let mut phase = self.lock();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// When the connection is to be closed unless something happens first.
    fn deadline(&self, timers: Timers) -> Option<Instant> {
        match self.phase() {
            Phase::Idle(since) => Some(since + timers.idle),
            Phase::Head(since) => Some(since + timers.header),
            Phase::Busy => None,
        }
    }
}

/// The connection's socket, telling its [`Activity`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router as the connection's service, marking the connection busy while a request is
/// handled.
struct Tracked {
    inner: TowerToHyperService<Router>,
    activity: Arc<Activity>,
}

/// Marks its connection busy while it lives.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(Phase::Idle(Instant::now()));
    }
}

type Handled = Pin<Box<dyn Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send>>;

impl Service<hyper::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Handled;

    fn call(&self, request: hyper::Request<Incoming>) -> Handled {
        self.activity.set(Phase::Busy);
        let busy = Busy(Arc::clone(&self.activity));
        let handled = self.inner.call(request);
        Box::pin(async move {
            let response = handled.await;
            drop(busy);
            response
        })
    }
}
