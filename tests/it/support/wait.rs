//! Waiting for what another task or process does. Each wait is bounded only so that a broken
//! build fails instead of hanging the run; no test measures time with it.

use std::time::Duration;

/// The usual bound on a wait.
pub const WAIT: Duration = Duration::from_secs(30);
/// How often the condition is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `ready` gives a value, at most [`WAIT`].
pub async fn eventually<T>(what: &str, ready: impl AsyncFnMut() -> Option<T>) -> T {
    eventually_within(WAIT, what, ready).await
}

/// Waits until `ready` gives a value, at most `bound`.
pub async fn eventually_within<T>(bound: Duration, what: &str, mut ready: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(v) = ready().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}
