//! A knowledge base with three small help articles, an engine over it, builders for inbound
//! messages, and a recording platform to run the engine behind the durable inbox: shared by the
//! engine's integration tests.

use async_trait::async_trait;
use frontdesk::channel::{
    AdapterError, Author, AuthorId, ChannelId, ConversationKey, Delivered, EventId, Inbound, InboxSink, Outbound,
    Source, UserAction, WorkspaceId,
};
use frontdesk::config::Config;
use frontdesk::engine::Engine;
use frontdesk::generate::{Extractive, Generator};
use frontdesk::inbox::{Deliverer, Inbox, InboxOptions, Worker};
use frontdesk::knowledge::chunk::ChunkOptions;
use frontdesk::knowledge::ingest::IngestSource;
use frontdesk::knowledge::{KnowledgeBase, SearchSettings};
use frontdesk::prompts::Prompts;
use frontdesk::ratelimit::RateLimitConfig;
use frontdesk::retrieval::embedded::EmbeddedRetriever;
use frontdesk::store::Store;
use frontdesk::testing::HashingEmbedder;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const DOCS: &[(&str, &str)] = &[
    (
        "refunds.md",
        "---\ntitle: Refunds and credits\nurl: https://help.example.com/refunds\n---\n## Annual plans\n\nAnnual plans can be refunded in full within 30 days of the renewal date. After 30 days the unused months become account credit.\n\n## Monthly plans\n\nMonthly plans are not refunded, but you can cancel before the next billing date.\n",
    ),
    (
        "errors.md",
        "---\ntitle: API error codes\n---\n## TH-4012\n\nTH-4012 means the export token expired. Create a new export token under Settings, API tokens, and retry the export.\n",
    ),
    (
        "trial.md",
        "---\ntitle: Free trial\n---\n## Trial length\n\nEvery new workspace starts with a 14-day free trial of the Growth plan. No card is needed to start the trial.\n",
    ),
];

static EVENT: AtomicUsize = AtomicUsize::new(0);

pub struct Harness {
    pub _dir: tempfile::TempDir,
    pub engine: Engine,
    pub ws: WorkspaceId,
}

pub async fn harness(rate_limits: RateLimitConfig) -> Harness {
    harness_with(rate_limits, None).await
}

/// A harness whose answers come from `generator` (default: extractive).
pub async fn harness_with(rate_limits: RateLimitConfig, generator: Option<Arc<dyn Generator>>) -> Harness {
    harness_in(WorkspaceId::new("T1").unwrap(), rate_limits, generator).await
}

/// The default harness with the sample articles in workspace `ws` (a Discord guild id, a mailbox).
pub async fn harness_for(ws: &str) -> Harness {
    harness_in(WorkspaceId::new(ws).unwrap(), RateLimitConfig::default(), None).await
}

/// As `harness_for`, with answers from `generator`.
pub async fn harness_for_with(ws: &str, generator: Arc<dyn Generator>) -> Harness {
    harness_in(WorkspaceId::new(ws).unwrap(), RateLimitConfig::default(), Some(generator)).await
}

async fn harness_in(ws: WorkspaceId, rate_limits: RateLimitConfig, generator: Option<Arc<dyn Generator>>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in DOCS {
        std::fs::write(docs.join(name), text).unwrap();
    }
    let store = Store::open(&dir.path().join("data")).unwrap();
    let embedder = Arc::new(HashingEmbedder::new(256));
    let kb = KnowledgeBase {
        retriever: Arc::new(EmbeddedRetriever::open(&dir.path().join("data"), &store, 256).unwrap()),
        store,
        embedder: embedder.clone(),
        search: SearchSettings { semantic_ratio: 0.5, candidates: 50 },
        chunking: ChunkOptions::default(),
        batch_size: 16,
    };
    kb.ingest(&IngestSource::Paths(vec![docs]), ws.clone(), None, false, &()).await.unwrap();
    let config = Config { rate_limits, ..Config::default() };
    let kb = Arc::new(kb);
    let generator = generator.unwrap_or_else(|| Arc::new(Extractive::new(embedder)));
    let engine = Engine::with_parts(&config, kb, generator, None, Arc::new(Prompts::built_in().unwrap())).unwrap();
    // The flows under test need answers from a toy embedder, whose similarities run lower
    // than the real model's: the workspace answers from 0.5.
    engine
        .policies
        .set(&ws, &frontdesk::policy::Scope::Workspace, &[("confidence_threshold".into(), "0.5".into())])
        .unwrap()
        .unwrap();
    Harness { _dir: dir, engine, ws }
}

pub fn message(ws: &WorkspaceId, conv: &str, author: &str, text: &str) -> Inbound {
    let n = EVENT.fetch_add(1, Ordering::SeqCst);
    Inbound {
        id: EventId::new(format!("ev{n}")).unwrap(),
        source: Source::Slack,
        workspace: ws.clone(),
        channel: ChannelId::new("C1").unwrap(),
        conversation: ConversationKey::new(conv).unwrap(),
        author: Author {
            id: AuthorId::new(author).unwrap(),
            display_name: Some(author.to_string()),
            is_bot: false,
            is_agent: false,
        },
        text: text.into(),
        attachments: vec![],
        received_at_ms: 0,
        addressed_to_bot: true,
        top_level: true,
        reply_context: serde_json::Value::Null,
        action: None,
        unverified_sender: false,
    }
}

pub fn agent(mut m: Inbound) -> Inbound {
    m.author.is_agent = true;
    m
}

pub fn action(mut m: Inbound, a: UserAction) -> Inbound {
    m.action = Some(a);
    m
}

/// A platform behind the inbox worker: keeps every reply it is asked to deliver and every
/// change of the working sign, as `(event id, busy)`.
#[derive(Default)]
pub struct Recorder {
    delivered: Mutex<Vec<Outbound>>,
    working: Mutex<Vec<(String, bool)>>,
}

impl Recorder {
    pub fn delivered(&self) -> Vec<Outbound> {
        self.delivered.lock().unwrap().clone()
    }

    pub fn working(&self) -> Vec<(String, bool)> {
        self.working.lock().unwrap().clone()
    }
}

#[async_trait]
impl Deliverer for Recorder {
    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
        self.delivered.lock().unwrap().push(message.clone());
        Ok(Delivered { platform_message_id: Some(message.id.clone()) })
    }

    async fn working(&self, message: &Inbound, busy: bool) {
        self.working.lock().unwrap().push((message.id.to_string(), busy));
    }
}

/// The engine behind a durable inbox on its own store, as `frontdesk serve` runs it, with a
/// [`Recorder`] for a platform. The worker is built (and so takes part in accepting messages)
/// but runs only from [`InboxRun::start`].
pub struct InboxRun {
    pub inbox: Inbox,
    pub platform: Arc<Recorder>,
    worker: Option<Worker>,
    running: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl InboxRun {
    pub fn new(engine: &Arc<Engine>, options: InboxOptions) -> InboxRun {
        let inbox = Inbox::open(&engine.kb.store, options).unwrap();
        let platform = Arc::new(Recorder::default());
        let worker = Worker::new(inbox.clone(), engine.clone(), platform.clone());
        InboxRun { inbox, platform, worker: Some(worker), running: None }
    }

    pub async fn accept(&self, messages: &[Inbound]) {
        for m in messages {
            assert!(self.inbox.accept(m.clone()).await.unwrap(), "{} was taken for a duplicate", m.id);
        }
    }

    pub fn start(&mut self) {
        let worker = self.worker.take().expect("the worker runs once");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(worker.run(shutdown.clone()));
        self.running = Some((shutdown, handle));
    }

    /// Waits until every accepted message is answered and every reply delivered (a bounded
    /// number of short sleeps, so a stuck inbox fails the test instead of hanging it).
    pub async fn until_idle(&self) {
        frontdesk::testing::until_idle(&self.inbox, Duration::from_secs(60)).await;
    }

    pub async fn stop(mut self) -> Arc<Recorder> {
        if let Some((shutdown, handle)) = self.running.take() {
            shutdown.cancel();
            handle.await.unwrap();
        }
        self.platform
    }
}

/// Accepts `messages`, runs the worker until all are answered and delivered, and stops it.
pub async fn through_the_inbox(engine: &Arc<Engine>, messages: &[Inbound]) -> Arc<Recorder> {
    let mut run = InboxRun::new(engine, InboxOptions::default());
    run.accept(messages).await;
    run.start();
    run.until_idle().await;
    run.stop().await
}
