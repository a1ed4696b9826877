//! How `frontdesk serve` builds a channel: each channel's configuration section implements
//! [`ChannelConfig`], whose `build` turns it into a running adapter with its HTTP routes and the
//! lines the start-up banner prints. The server keeps one list of the channels it knows and
//! never reaches into a channel's own types.

use crate::adapter::{ChannelAdapter, PolicyConsole};
use crate::message::Source;
use axum::Router;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the server hands a channel to build it with.
pub struct BuildContext {
    /// The address platforms reach this server at (`server.public_url`, or the listen
    /// address), for the URLs the banner asks the admin to paste into the platform's settings.
    pub public_url: String,
    /// The channel's own tree in frontdesk's store, named after the channel: tokens,
    /// installations, threads, whatever the channel must keep across restarts.
    pub state: sled::Tree,
    /// Channel policies, read and written the way a platform's admins do from inside it.
    pub policies: Arc<dyn PolicyConsole>,
}

/// A channel, built: the adapter the inbox delivers through, the routes the server mounts.
pub struct BuiltChannel {
    /// The source the channel's messages carry; replies to them go back through `adapter`.
    pub source: Source,
    pub adapter: Arc<dyn ChannelAdapter>,
    pub routes: Routes,
    /// Lines for the start-up banner: the URLs to paste into the platform's settings, or how
    /// the channel connects when it needs none.
    pub endpoints: Vec<String>,
}

/// Why a channel could not be built; the message says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the {channel} channel: {message}")]
pub struct SetupError {
    pub channel: &'static str,
    pub message: String,
}

impl SetupError {
    pub fn new(channel: &'static str, message: impl std::fmt::Display) -> SetupError {
        SetupError { channel, message: message.to_string() }
    }
}

/// A channel's section of `frontdesk.toml`, parsed.
pub trait ChannelConfig: Send + Sync {
    /// Values that parse but cannot work, as (key within the section, problem), all at once.
    fn problems(&self) -> Vec<(String, String)>;

    /// Builds the channel. Nothing is connected yet: the adapter starts receiving when the
    /// server runs it.
    fn build(&self, cx: BuildContext) -> Result<BuiltChannel, SetupError>;
}

/// A channel's HTTP routes and how much of a request body each may read.
///
/// Every route reads at most the server's `server.max_body_bytes` unless it declares its own
/// limit ([`Routes::body_limit`]); a route declared [`Routes::without_body`] (a webhook that is
/// off) is answered without reading the body at all.
#[derive(Clone, Default)]
pub struct Routes {
    router: Router,
    body_limits: BTreeMap<String, usize>,
    without_body: BTreeSet<String>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Adds routes, with their declared limits, to these.
    pub fn merge(mut self, other: impl Into<Routes>) -> Routes {
        let other = other.into();
        self.router = self.router.merge(other.router);
        self.body_limits.extend(other.body_limits);
        self.without_body.extend(other.without_body);
        self
    }

    /// Declares that the route registered as `path` takes request bodies of up to `bytes`.
    pub fn body_limit(mut self, path: &str, bytes: usize) -> Routes {
        self.body_limits.insert(path.to_string(), bytes);
        self
    }

    /// Declares that the route registered as `path` answers without reading the request body:
    /// its handler is given an empty body, and the connection is closed after the answer.
    pub fn without_body(mut self, path: &str) -> Routes {
        self.without_body.insert(path.to_string());
        self
    }

    /// The router, the declared body limits by path, and the paths whose bodies are never read.
    pub fn into_parts(self) -> (Router, BTreeMap<String, usize>, BTreeSet<String>) {
        (self.router, self.body_limits, self.without_body)
    }
}

impl From<Router> for Routes {
    fn from(router: Router) -> Routes {
        Routes { router, ..Routes::default() }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn merged_routes_keep_every_declared_limit() {
        let a = Routes::new().body_limit("/a", 10).without_body("/off");
        let b = Routes::from(Router::new()).body_limit("/b", 20);
        let (_, limits, without) = a.merge(b).into_parts();
        assert_eq!(limits.get("/a"), Some(&10));
        assert_eq!(limits.get("/b"), Some(&20));
        assert!(without.contains("/off"));
    }
}
