//! The inbox's promise under real crashes: a burst of customer messages, the process killed
//! with SIGKILL in the middle of answering and delivering them, restarted, killed again, and
//! finally left to finish. Every message must get exactly one reply, replies must arrive in the
//! order of the messages of their conversation, and a reply may be repeated at most once per
//! crash (the documented window: the platform got it, the outbox had not recorded it yet).
//!
//! The test re-runs its own binary as the child process (`FRONTDESK_CRASH_CHILD=1`). The child
//! opens the store in a shared directory, accepts the whole burst (messages it already accepted
//! before a crash are dropped as duplicates, which checks that dedup survives restarts) and runs
//! the worker. Its "platform" appends `outbound id<TAB>event id` to a file and syncs it, like a
//! chat service that has accepted the message for good.
//!
//! The scenario runs twice: with a scripted handler, and with the real engine over sample help
//! articles (answers and handoffs), which checks that a message handled again after a crash gets
//! the replies its first handling decided.

#![allow(clippy::unwrap_used)]

use crate::support;

use async_trait::async_trait;
use frontdesk::channel::{
    AdapterError, Author, AuthorId, ChannelId, ConversationKey, Delivered, EventId, Inbound, InboxSink, Outbound,
    OutboundKind, Source, WorkspaceId,
};
use frontdesk::inbox::{Admission, Deliverer, Inbox, InboxOptions, TurnHandler, Worker};
use frontdesk::store::Store;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TEST_NAME: &str = "sigkill_during_a_burst_every_message_gets_exactly_one_reply";
const ENGINE_TEST_NAME: &str = "sigkill_with_the_real_engine_every_message_gets_exactly_one_reply";
/// With the engine: two questions per conversation the help articles answer, then a request
/// for a person (a handoff changes the conversation's state, which a re-handled message must
/// not see as "already escalated").
const ENGINE_MESSAGES: usize = 30;
const CHILD_ENV: &str = "FRONTDESK_CRASH_CHILD";
const DIR_ENV: &str = "FRONTDESK_CRASH_DIR";
const MESSAGES: usize = 60;
const CONVERSATIONS: usize = 10;
/// Kill the child once the platform has seen this many lines (duplicates included).
const KILL_AT_LINES: [usize; 3] = [4, 21, 39];
/// Bounds, so a broken inbox fails the test instead of hanging CI.
const PHASE_LIMIT: Duration = Duration::from_secs(20);
const CHILD_LIMIT: Duration = Duration::from_secs(25);

#[test]
fn sigkill_during_a_burst_every_message_gets_exactly_one_reply() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child(Handler::Scripted);
        return;
    }
    crash_scenario(TEST_NAME, MESSAGES, &KILL_AT_LINES, |_| {});
}

#[test]
fn sigkill_with_the_real_engine_every_message_gets_exactly_one_reply() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child(Handler::Engine);
        return;
    }
    let replies = crash_scenario(ENGINE_TEST_NAME, ENGINE_MESSAGES, &[3, 9, 17], |dir| {
        let docs = dir.join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        for (name, text) in support::engine_harness::DOCS {
            std::fs::write(docs.join(name), text).unwrap();
        }
    });
    // The engine really decided: the questions were answered, the requests handed off.
    let answers = replies.iter().filter(|id| id.ends_with("-answer")).count();
    let handoffs = replies.iter().filter(|id| id.ends_with("-handoff")).count();
    assert_eq!((answers, handoffs), (20, 10), "{replies:?}");
}

/// Runs children, killing them at the given platform line counts, then lets the last one
/// finish, and checks every message got exactly one reply, in order, with at most one
/// repeated delivery per crash.
fn crash_scenario(test_name: &str, messages: usize, kill_at: &[usize], prepare: impl Fn(&Path)) -> HashSet<String> {
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    let platform = dir.path().join("platform.tsv");
    let started = Instant::now();

    let mut kills = 0;
    for (run, threshold) in kill_at.iter().enumerate() {
        let mut child = spawn_child(test_name, dir.path(), run);
        let phase = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // It finished before reaching this kill point: nothing to kill this time.
                assert!(status.success(), "child {run} failed: {status}\n{}", child_log(dir.path(), run));
                break;
            }
            if platform_lines(&platform).len() >= *threshold {
                // `Child::kill` sends SIGKILL on Unix: no destructors, no flush.
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                break;
            }
            if phase.elapsed() > PHASE_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child {run} made no progress\n{}", child_log(dir.path(), run));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    let last = kill_at.len();
    let mut child = spawn_child(test_name, dir.path(), last);
    let phase = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if phase.elapsed() > CHILD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the last child did not finish\n{}", child_log(dir.path(), last));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "the last child failed: {status}\n{}", child_log(dir.path(), last));
    assert!(kills >= 2, "the children finished too fast to be killed mid-burst ({kills} kills)");

    let lines = platform_lines(&platform);
    let mut replies_to: HashMap<String, HashSet<String>> = HashMap::new();
    for (outbound, event) in &lines {
        replies_to.entry(event.clone()).or_default().insert(outbound.clone());
    }
    for i in 0..messages {
        let replies = replies_to.get(&event_id(i)).map(HashSet::len).unwrap_or(0);
        assert_eq!(replies, 1, "message {} got {replies} distinct replies", event_id(i));
    }
    assert_eq!(replies_to.len(), messages, "replies to unknown messages: {replies_to:?}");

    let distinct: HashSet<&String> = lines.iter().map(|(outbound, _)| outbound).collect();
    let repeated = lines.len() - distinct.len();
    eprintln!(
        "{kills} kills, {} deliveries, {} distinct replies, {repeated} repeated, {:?}",
        lines.len(),
        distinct.len(),
        started.elapsed()
    );
    assert!(repeated <= kills, "{repeated} repeated deliveries for {kills} crashes");

    // Per conversation, first deliveries follow the order of the messages.
    let mut seen = HashSet::new();
    let mut last_in_conversation: HashMap<usize, usize> = HashMap::new();
    for (outbound, event) in &lines {
        if !seen.insert(outbound.clone()) {
            continue;
        }
        let i = message_index(event);
        if let Some(previous) = last_in_conversation.insert(i % CONVERSATIONS, i) {
            assert!(previous < i, "the reply to {event} overtook the reply to {}", event_id(previous));
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    seen
}

fn event_id(i: usize) -> String {
    format!("evt-{i:03}")
}

fn message_index(event: &str) -> usize {
    event.trim_start_matches("evt-").parse().unwrap()
}

fn spawn_child(test_name: &str, dir: &Path, run: usize) -> Child {
    let log = std::fs::File::create(log_path(dir, run)).unwrap();
    // The harness names the test by its module path in this binary.
    let name = support::test_name(module_path!(), test_name);
    Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, if test_name == ENGINE_TEST_NAME { "engine" } else { "scripted" })
        .env(DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn log_path(dir: &Path, run: usize) -> PathBuf {
    dir.join(format!("child-{run}.log"))
}

fn child_log(dir: &Path, run: usize) -> String {
    std::fs::read_to_string(log_path(dir, run)).unwrap_or_default()
}

/// Complete lines of the platform file (a line is written with a single `write`).
fn platform_lines(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .filter_map(|line| line.trim_end().split_once('\t'))
        .map(|(outbound, event)| (outbound.to_string(), event.to_string()))
        .collect()
}

fn text_for(i: usize) -> String {
    if std::env::var(CHILD_ENV).as_deref() != Ok("engine") {
        return format!("question {i}");
    }
    match i / CONVERSATIONS {
        0 => "How long is the free trial?".into(),
        1 => "Can annual plans be refunded within 30 days of the renewal?".into(),
        _ => "can I talk to a person?".into(),
    }
}

fn message(i: usize) -> Inbound {
    Inbound {
        id: EventId::new(event_id(i)).unwrap(),
        source: Source::Slack,
        workspace: WorkspaceId::new("T-crash").unwrap(),
        channel: ChannelId::new("C-support").unwrap(),
        conversation: ConversationKey::new(format!("thread-{}", i % CONVERSATIONS)).unwrap(),
        author: Author {
            id: AuthorId::new(format!("U{}", i % CONVERSATIONS)).unwrap(),
            display_name: None,
            is_bot: false,
            is_agent: false,
        },
        text: text_for(i),
        attachments: Vec::new(),
        received_at_ms: 0,
        addressed_to_bot: true,
        top_level: i < CONVERSATIONS,
        reply_context: serde_json::json!({ "event": event_id(i) }),
        action: None,
        unverified_sender: false,
    }
}

/// Answers "re: <text>" after a few milliseconds, with a reply id that is new on every run, so a
/// turn handled twice would show up as two distinct replies.
struct Engine {
    replies: AtomicU64,
}

#[async_trait]
impl TurnHandler for Engine {
    async fn handle(&self, message: &Inbound, _admission: Admission) -> Vec<Outbound> {
        let i = message_index(message.id.as_str());
        tokio::time::sleep(Duration::from_millis(2 + (i as u64 * 7) % 6)).await;
        let n = self.replies.fetch_add(1, Ordering::SeqCst);
        vec![Outbound::reply_to(
            message,
            format!("out-{}-{n}", std::process::id()),
            format!("re: {}", message.text),
            OutboundKind::Notice,
        )]
    }
}

/// The chat platform: a line per accepted message, synced before it answers.
struct PlatformFile {
    file: Mutex<std::fs::File>,
}

#[async_trait]
impl Deliverer for PlatformFile {
    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
        let event = message.reply_context["event"].as_str().unwrap_or("?").to_string();
        let line = format!("{}\t{event}\n", message.id);
        let mut file = self.file.lock().unwrap();
        file.write_all(line.as_bytes()).map_err(|e| unavailable(e.to_string()))?;
        file.sync_data().map_err(|e| unavailable(e.to_string()))?;
        Ok(Delivered { platform_message_id: Some(format!("ts-{}", message.id)) })
    }
}

fn unavailable(message: String) -> AdapterError {
    AdapterError::Unavailable { platform: "test", message }
}

enum Handler {
    Scripted,
    Engine,
}

/// The real engine over the sample articles, sharing the service's store with the inbox.
async fn real_engine(dir: &Path, store: &Store) -> Arc<dyn TurnHandler> {
    use frontdesk::knowledge::{chunk::ChunkOptions, ingest::IngestSource, KnowledgeBase, SearchSettings};
    let embedder = Arc::new(frontdesk::testing::HashingEmbedder::new(256));
    let kb = KnowledgeBase {
        retriever: Arc::new(frontdesk::retrieval::embedded::EmbeddedRetriever::open(dir, store, 256).unwrap()),
        store: store.clone(),
        embedder: embedder.clone(),
        search: SearchSettings { semantic_ratio: 0.5, candidates: 50 },
        chunking: ChunkOptions::default(),
        batch_size: 16,
    };
    let ws = WorkspaceId::new("T-crash").unwrap();
    // Re-ingesting on every start is a no-op once done: nothing changed.
    kb.ingest(&IngestSource::Paths(vec![dir.join("docs")]), ws.clone(), None, false, &()).await.unwrap();
    let config = frontdesk::config::Config::default();
    let generator = Arc::new(frontdesk::generate::Extractive::new(embedder));
    let prompts = Arc::new(frontdesk::prompts::Prompts::built_in().unwrap());
    let engine = frontdesk::engine::Engine::with_parts(&config, Arc::new(kb), generator, None, prompts).unwrap();
    // The toy embedder's similarities run lower than the real model's.
    engine
        .policies
        .set(&ws, &frontdesk::policy::Scope::Workspace, &[("confidence_threshold".into(), "0.5".into())])
        .unwrap()
        .unwrap();
    Arc::new(engine)
}

/// One life of the service: accept the burst while the worker runs, exit once all is delivered.
fn child(handler: Handler) {
    let messages = match handler {
        Handler::Scripted => MESSAGES,
        Handler::Engine => ENGINE_MESSAGES,
    };
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = Store::open(&dir).unwrap();
        let options = InboxOptions {
            max_parallel: 4,
            // One delivery in flight, so each crash can repeat at most one reply.
            max_parallel_deliveries: 1,
            rescan_every: Duration::from_millis(200),
            ..InboxOptions::default()
        };
        let inbox = Inbox::open(&store, options).unwrap();
        let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("platform.tsv")).unwrap();
        let turn_handler: Arc<dyn TurnHandler> = match handler {
            Handler::Scripted => Arc::new(Engine { replies: AtomicU64::new(0) }),
            Handler::Engine => real_engine(&dir, &store).await,
        };
        let worker = Worker::new(inbox.clone(), turn_handler, Arc::new(PlatformFile { file: Mutex::new(file) }));
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(worker.run(shutdown.clone()));

        let mut fresh = 0;
        for i in 0..messages {
            if inbox.accept(message(i)).await.unwrap() {
                fresh += 1;
            }
        }
        eprintln!("child {}: {fresh} new messages, {} duplicates", std::process::id(), messages - fresh);

        let deadline = Instant::now() + CHILD_LIMIT;
        loop {
            let stats = inbox.stats();
            if stats.pending_inbound == 0 && stats.pending_outbound == 0 {
                assert_eq!(stats.dead_letters, 0);
                break;
            }
            assert!(Instant::now() < deadline, "the child did not drain its inbox: {stats:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        running.await.unwrap();
    });
}
