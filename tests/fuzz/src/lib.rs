//! What the fuzz targets share: one runtime, an inbox that takes every message, and the Slack
//! and Discord adapters set up as in production — signed requests, the real routers — with
//! nothing reachable outside this machine.
//!
//! Set-up failures panic on purpose: a harness that cannot start must not report clean runs.

use async_trait::async_trait;
use frontdesk_channel::{AdapterError, ChannelId, Inbound, InboxSink, PolicyConsole, WorkspaceId};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// The runtime every target runs the adapters on. Single-threaded: one input at a time, and a
/// panic surfaces on the thread that fed the input.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the fuzz targets")
    })
}

/// Takes every message, keeps none (memory stays flat over millions of inputs).
pub struct TakeAll;

#[async_trait]
impl InboxSink for TakeAll {
    async fn accept(&self, message: Inbound) -> Result<bool, AdapterError> {
        // Serialising is what the real inbox does before storing; it must work for anything
        // an adapter accepted.
        let _ = serde_json::to_vec(&message);
        Ok(true)
    }
}

/// Answers Discord's `/frontdesk policy` commands like the policy store does for a valid key.
pub struct Policies;

#[async_trait]
impl PolicyConsole for Policies {
    async fn show(&self, _workspace: &WorkspaceId, _channel: &ChannelId) -> Result<String, String> {
        Ok("answer_top_level = false\nagents_channel = (none)".into())
    }

    async fn set(
        &self,
        _workspace: &WorkspaceId,
        _channel: &ChannelId,
        key: &str,
        value: &str,
    ) -> Result<String, String> {
        match key {
            "answer_top_level" => Ok(format!("answer_top_level = {value}")),
            other => Err(format!("unknown policy key {other:?}")),
        }
    }

    async fn agents_channel(&self, _workspace: &WorkspaceId, _channel: &ChannelId) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// With `FRONTDESK_FUZZ_EXPLAIN` set, the targets say on stderr what became of each input, to
/// check that a corpus file reaches the code it was written for:
/// `FRONTDESK_FUZZ_EXPLAIN=1 <target binary> tests/fuzz/corpus/<target>/<file>`.
pub fn explain(what: impl FnOnce() -> String) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("FRONTDESK_FUZZ_EXPLAIN").is_some()) {
        eprintln!("{}", what());
    }
}

/// Sends one request through a router and reads the whole answer.
pub fn call(router: &axum::Router, request: axum::http::Request<axum::body::Body>) -> axum::http::StatusCode {
    use tower::ServiceExt;
    runtime().block_on(async {
        let response = router.clone().oneshot(request).await.expect("axum routers never fail");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        explain(|| match &body {
            Ok(b) => format!("{status} {}", String::from_utf8_lossy(b)),
            Err(e) => format!("{status} (body unreadable: {e})"),
        });
        status
    })
}

/// The current Unix time in seconds, for request signatures.
pub fn now_secs() -> i64 {
    frontdesk_slack::signature::now_secs()
}

/// A port on loopback where nothing listens, so a stray outgoing call fails at once.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

pub mod slack {
    //! The Slack adapter in events mode, as `frontdesk serve` runs it for OAuth installs.
    use super::*;
    use frontdesk_slack::{SlackAdapter, SlackAgents, SlackConfig};

    /// The signing secret the harness signs every request with.
    pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

    /// The running adapter's routes.
    pub fn router() -> &'static axum::Router {
        static ROUTER: OnceLock<axum::Router> = OnceLock::new();
        ROUTER.get_or_init(|| {
            // OAuth installs and no bot token: with no installation stored, the adapter has no
            // token for any team and so never calls Slack's Web API. The API URL points at a
            // closed loopback port all the same.
            let config = SlackConfig {
                signing_secret: Some(SECRET.into()),
                client_id: Some("1111111111.2222222222".into()),
                client_secret: Some("fuzz-client-secret".into()),
                redirect_url: Some("https://support.example.com/slack/oauth/callback".into()),
                token_encryption_key: Some(hex::encode([7u8; 32]).into()),
                api_url: format!("http://127.0.0.1:{}/api", closed_port()),
                // Agents of the corpus's workspace (a user id: no user-group lookup, which would
                // call the Web API).
                agents: [(
                    "T0FRONT01".to_string(),
                    SlackAgents { usergroup: None, user_ids: vec!["U0AGENT01".into()] },
                )]
                .into(),
                ..SlackConfig::default()
            };
            let db = sled::Config::new().temporary(true).open().expect("a temporary sled database");
            let tree = db.open_tree("slack").expect("the installations tree");
            let adapter = SlackAdapter::new(config, tree).expect("the fuzz configuration is valid");
            let running = adapter.clone();
            let inbox: Arc<dyn InboxSink> = Arc::new(TakeAll);
            runtime().spawn(async move {
                use frontdesk_channel::ChannelAdapter;
                let _ = running.run(inbox, CancellationToken::new()).await;
            });
            runtime().block_on(async {
                while !adapter.is_receiving() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
            adapter.router()
        })
    }

    /// POSTs `body` to `path`, signed as Slack signs it.
    pub fn post(path: &str, content_type: &str, body: Vec<u8>) -> axum::http::StatusCode {
        let timestamp = now_secs().to_string();
        let signature = frontdesk_slack::signature::sign(SECRET.as_bytes(), &timestamp, &body);
        let request = axum::http::Request::post(path)
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", timestamp)
            .header("x-slack-signature", signature)
            .body(axum::body::Body::from(body))
            .expect("a well-formed request");
        call(router(), request)
    }
}

pub mod discord {
    //! The Discord adapter, talking to a loopback Discord (the adapter crate's own fake).
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use frontdesk_discord::fake::FakeDiscord;
    use frontdesk_discord::{DiscordAdapter, DiscordConfig};

    /// The private half of the fake's application key (RFC 8032, test 1).
    const SECRET_KEY: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    pub struct Rig {
        pub adapter: Arc<DiscordAdapter>,
        pub router: axum::Router,
        pub inbox: TakeAll,
        key: SigningKey,
        _fake: FakeDiscord,
    }

    fn config(fake: &FakeDiscord) -> DiscordConfig {
        DiscordConfig {
            interactions_endpoint: true,
            public_key: frontdesk_discord::fake::PUBLIC_KEY.into(),
            ..fake.config()
        }
    }

    /// An adapter that is not running: the gateway target calls its handlers directly.
    pub fn idle() -> &'static Rig {
        static RIG: OnceLock<Rig> = OnceLock::new();
        RIG.get_or_init(|| rig(false))
    }

    /// An adapter that runs (connected to the fake's gateway), so its interactions endpoint
    /// hands what it reads to the inbox.
    pub fn running() -> &'static Rig {
        static RIG: OnceLock<Rig> = OnceLock::new();
        RIG.get_or_init(|| rig(true))
    }

    fn rig(run: bool) -> Rig {
        let fake = runtime().block_on(FakeDiscord::start()).expect("the loopback Discord starts");
        let adapter = DiscordAdapter::new(config(&fake), Arc::new(Policies)).expect("the fuzz configuration is valid");
        if run {
            let running = adapter.clone();
            runtime().spawn(async move {
                use frontdesk_channel::ChannelAdapter;
                let _ = running.run(Arc::new(TakeAll), CancellationToken::new()).await;
            });
            runtime().block_on(fake.wait_identified(1, Duration::from_secs(30))).expect("the adapter connects");
        }
        let key_bytes: [u8; 32] = hex::decode(SECRET_KEY).expect("hex").try_into().expect("32 bytes");
        Rig { router: adapter.router(), adapter, inbox: TakeAll, key: SigningKey::from_bytes(&key_bytes), _fake: fake }
    }

    impl Rig {
        /// POSTs `body` to the interactions endpoint, signed as Discord signs it.
        pub fn post_interaction(&self, body: Vec<u8>) -> axum::http::StatusCode {
            let timestamp = now_secs().to_string();
            let mut signed = timestamp.as_bytes().to_vec();
            signed.extend_from_slice(&body);
            let signature = hex::encode(self.key.sign(&signed).to_bytes());
            let request = axum::http::Request::post(frontdesk_discord::INTERACTIONS_PATH)
                .header("content-type", "application/json")
                .header("x-signature-ed25519", signature)
                .header("x-signature-timestamp", timestamp)
                .body(axum::body::Body::from(body))
                .expect("a well-formed request");
            call(&self.router, request)
        }
    }
}

pub mod documents {
    //! Help-centre documents, as the ingest reads them.
    use frontdesk::knowledge::chunk::{chunk_document, ChunkOptions};
    use frontdesk::knowledge::parse::{parse_document, Format};

    /// Parses `bytes` as a document of `format`; a document that parses is chunked with the
    /// default sizes and with the smallest `ingest.max_words` the configuration accepts, and
    /// each chunk's indexed text and content hash are computed, as the ingest does.
    pub fn parse_and_chunk(format: Format, bytes: &[u8]) {
        let doc = match parse_document("help/billing/fuzzed-article", format, bytes) {
            Ok(doc) => doc,
            Err(skip) => return super::explain(|| format!("skipped: {skip}")),
        };
        for options in [ChunkOptions::default(), ChunkOptions { max_words: 20, min_words: 20 }] {
            let chunks = chunk_document(&doc, &options);
            for chunk in &chunks {
                let _ = chunk.indexed_text();
                let _ = chunk.content_hash();
            }
            super::explain(|| format!("{:?}: {} sections, {} chunks", options, doc.sections.len(), chunks.len()));
        }
    }
}
