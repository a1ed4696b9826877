//! Tests of the inbox, the worker and the outbox: dedup, per-conversation order under parallel
//! handling, fair turns across workspaces, rate limits taken on arrival, the turn transaction,
//! retries, dead letters and retention.
//!
//! The crash-and-restart test with a real SIGKILL is `tests/it/inbox_crash.rs`.

use super::*;
use crate::channel::{
    AdapterError, Author, AuthorId, ChannelId, ConversationKey, Delivered, EventId, Inbound, InboxSink, Outbound,
    OutboundKind, Source, WorkspaceId,
};
use crate::store::Store;
use crate::testing::until_idle;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn inbound(source: Source, workspace: &str, conversation: &str, event: &str, text: &str) -> Inbound {
    Inbound {
        id: EventId::new(event).unwrap(),
        source,
        workspace: WorkspaceId::new(workspace).unwrap(),
        channel: ChannelId::new("C1").unwrap(),
        conversation: ConversationKey::new(conversation).unwrap(),
        author: Author { id: AuthorId::new("U1").unwrap(), display_name: None, is_bot: false, is_agent: false },
        text: text.to_string(),
        attachments: Vec::new(),
        received_at_ms: 0,
        addressed_to_bot: true,
        top_level: false,
        reply_context: serde_json::json!({ "ts": event }),
        action: None,
        unverified_sender: false,
    }
}

fn slack(conversation: &str, event: &str) -> Inbound {
    inbound(Source::Slack, "T1", conversation, event, &format!("question {event}"))
}

fn reply(to: &Inbound, id: &str) -> Outbound {
    Outbound::reply_to(to, id, format!("re: {}", to.text), OutboundKind::Notice)
}

/// Answers each message with one reply `{event}-r`, after an optional random pause, and
/// records what it handled and how many turns ran at once.
#[derive(Default)]
struct Engine {
    max_pause_ms: u64,
    /// A pause every turn takes (before the random one): a turn in progress holds its slot
    /// long enough for every waiting conversation to queue for one.
    fixed_pause_ms: u64,
    handled: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

#[async_trait]
impl TurnHandler for Engine {
    async fn handle(&self, message: &Inbound, _admission: Admission) -> Vec<Outbound> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        if self.max_pause_ms > 0 || self.fixed_pause_ms > 0 {
            let pause = self.fixed_pause_ms + (retry::jitter() * self.max_pause_ms as f64) as u64;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        self.handled.lock().unwrap().push(message.id.to_string());
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        vec![reply(message, &format!("{}-r", message.id))]
    }
}

/// A platform: records every attempt and every delivery; fails attempts as scripted per
/// outbound id.
#[derive(Default)]
struct Platform {
    failures: Mutex<HashMap<String, VecDeque<AdapterError>>>,
    /// `(a, b)`: `a` is refused (retryably) until `b` has been delivered.
    hold_until: Mutex<Option<(String, String)>>,
    attempts: Mutex<Vec<(String, Instant)>>,
    delivered: Mutex<Vec<String>>,
    /// The messages the working sign was shown on (`busy = true`).
    working_on: Mutex<Vec<String>>,
}

impl Platform {
    fn failing(self, outbound_id: &str, errors: Vec<AdapterError>) -> Self {
        self.failures.lock().unwrap().insert(outbound_id.to_string(), errors.into());
        self
    }

    fn holding(self, outbound_id: &str, until_delivered: &str) -> Self {
        *self.hold_until.lock().unwrap() = Some((outbound_id.to_string(), until_delivered.to_string()));
        self
    }

    fn delivered(&self) -> Vec<String> {
        self.delivered.lock().unwrap().clone()
    }

    fn attempts_of(&self, outbound_id: &str) -> Vec<Instant> {
        self.attempts.lock().unwrap().iter().filter(|(id, _)| id == outbound_id).map(|(_, at)| *at).collect()
    }
}

#[async_trait]
impl Deliverer for Platform {
    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
        self.attempts.lock().unwrap().push((message.id.clone(), Instant::now()));
        let failure = self.failures.lock().unwrap().get_mut(&message.id).and_then(VecDeque::pop_front);
        if let Some(error) = failure {
            return Err(error);
        }
        let held = self.hold_until.lock().unwrap().clone();
        if let Some((held, until)) = held {
            if held == message.id && !self.delivered.lock().unwrap().contains(&until) {
                return Err(unavailable());
            }
        }
        self.delivered.lock().unwrap().push(message.id.clone());
        Ok(Delivered { platform_message_id: Some(format!("P-{}", message.id)) })
    }

    async fn working(&self, message: &Inbound, busy: bool) {
        if busy {
            self.working_on.lock().unwrap().push(message.id.to_string());
        }
    }
}

fn unavailable() -> AdapterError {
    AdapterError::Unavailable { platform: "slack", message: "502 bad gateway".into() }
}

fn start(inbox: &Inbox, engine: Arc<Engine>, platform: Arc<Platform>) -> (CancellationToken, JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let worker = Worker::new(inbox.clone(), engine, platform);
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    (shutdown, handle)
}

async fn stop(shutdown: CancellationToken, handle: JoinHandle<()>) {
    shutdown.cancel();
    handle.await.unwrap();
}

fn open(store: &Store, options: InboxOptions) -> Inbox {
    Inbox::open(store, options).unwrap()
}

#[tokio::test]
async fn duplicates_are_dropped_per_source_workspace_and_event() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    assert!(inbox.accept(slack("c1", "E1")).await.unwrap());
    assert!(!inbox.accept(slack("c1", "E1")).await.unwrap());
    // The same event id in another conversation of the same workspace is still the same event.
    assert!(!inbox.accept(slack("c2", "E1")).await.unwrap());
    // Another workspace, or another channel type, is another event.
    assert!(inbox.accept(inbound(Source::Slack, "T2", "c1", "E1", "hi")).await.unwrap());
    assert!(inbox.accept(inbound(Source::Discord, "T1", "c1", "E1", "hi")).await.unwrap());
    assert_eq!(inbox.stats(), QueueStats { pending_inbound: 3, pending_outbound: 0, dead_letters: 0 });
    let pending = inbox.pending_messages().unwrap();
    assert_eq!(pending.iter().filter(|m| m.workspace.as_str() == "T1").count(), 2);
}

#[tokio::test]
async fn a_duplicate_stays_a_duplicate_after_it_was_answered() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let engine = Arc::new(Engine::default());
    let platform = Arc::new(Platform::default());
    let (shutdown, handle) = start(&inbox, engine.clone(), platform.clone());
    assert!(inbox.accept(slack("c1", "E1")).await.unwrap());
    until_idle(&inbox, Duration::from_secs(10)).await;
    assert!(!inbox.accept(slack("c1", "E1")).await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop(shutdown, handle).await;
    assert_eq!(engine.handled.lock().unwrap().len(), 1);
    assert_eq!(platform.delivered(), vec!["E1-r".to_string()]);
    let record = inbox.delivered("E1-r").unwrap().unwrap();
    assert_eq!(record.platform_message_id.as_deref(), Some("P-E1-r"));
    assert_eq!(record.in_reply_to.as_str(), "E1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_keep_their_order_while_handled_in_parallel() {
    let store = Store::temporary().unwrap();
    let options = InboxOptions { max_parallel: 4, ..InboxOptions::default() };
    let inbox = open(&store, options);
    let engine = Arc::new(Engine { max_pause_ms: 6, ..Engine::default() });
    let platform = Arc::new(Platform::default());

    let conversations = 6;
    let per_conversation = 8;
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..conversations * per_conversation {
        let conversation = format!("c{}", i % conversations);
        let event = format!("E{i:03}");
        expected.entry(conversation.clone()).or_default().push(event.clone());
        assert!(inbox.accept(slack(&conversation, &event)).await.unwrap());
    }
    // Started on a full queue, like after a restart: every conversation has work at once.
    let (shutdown, handle) = start(&inbox, engine.clone(), platform.clone());
    until_idle(&inbox, Duration::from_secs(30)).await;
    stop(shutdown, handle).await;

    let conversation_of = |event: &str| {
        let i: usize = event.trim_start_matches('E').trim_end_matches("-r").parse().unwrap();
        format!("c{}", i % conversations)
    };
    let handled = engine.handled.lock().unwrap().clone();
    let delivered = platform.delivered();
    assert_eq!(handled.len(), conversations * per_conversation);
    assert_eq!(delivered.len(), conversations * per_conversation);
    for (conversation, events) in &expected {
        let handled_here: Vec<&String> = handled.iter().filter(|e| &conversation_of(e) == conversation).collect();
        assert_eq!(handled_here, events.iter().collect::<Vec<_>>(), "turn order in {conversation}");
        let delivered_here: Vec<String> = delivered
            .iter()
            .filter(|e| &conversation_of(e) == conversation)
            .map(|e| e.trim_end_matches("-r").to_string())
            .collect();
        assert_eq!(&delivered_here, events, "delivery order in {conversation}");
    }
    let most = engine.most_in_flight.load(Ordering::SeqCst);
    assert!(most > 1, "conversations were not handled in parallel");
    assert!(most <= 4, "more than max_parallel turns ran at once: {most}");
}

#[tokio::test]
async fn messages_arriving_while_the_worker_runs_are_found_without_reading_the_whole_queue() {
    let store = Store::temporary().unwrap();
    // No periodic rescan during the test: only the first read of the queue, at the start.
    let inbox = open(&store, InboxOptions { rescan_every: Duration::from_secs(3600), ..InboxOptions::default() });
    for i in 0..20 {
        inbox.accept(slack(&format!("before{i}"), &format!("B{i}"))).await.unwrap();
    }
    let engine = Arc::new(Engine { max_pause_ms: 3, ..Engine::default() });
    let (shutdown, handle) = start(&inbox, engine.clone(), Arc::new(Platform::default()));
    // Many conversations, and several messages in some of them, some arriving while their
    // conversation's previous message is being handled.
    for i in 0..200 {
        inbox.accept(slack(&format!("c{}", i % 50), &format!("E{i}"))).await.unwrap();
        if i % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    until_idle(&inbox, Duration::from_secs(30)).await;
    stop(shutdown, handle).await;
    assert_eq!(engine.handled.lock().unwrap().len(), 220);
    let scans = inbox.shared.pending_ready.full_scans.load(Ordering::Relaxed);
    assert_eq!(scans, 1, "the queue was read whole {scans} times for 200 messages");
}

#[tokio::test]
async fn a_workspace_flooding_with_conversations_does_not_hold_up_another() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions { max_parallel: 2, ..InboxOptions::default() });
    // Workspace TA has forty conversations waiting before TB's one message arrives.
    for i in 0..40 {
        inbox.accept(inbound(Source::Slack, "TA", &format!("a{i:02}"), &format!("A{i:02}"), "q")).await.unwrap();
    }
    inbox.accept(inbound(Source::Slack, "TB", "b1", "B1", "q")).await.unwrap();
    let engine = Arc::new(Engine { fixed_pause_ms: 5, ..Engine::default() });
    let (shutdown, handle) = start(&inbox, engine.clone(), Arc::new(Platform::default()));
    until_idle(&inbox, Duration::from_secs(30)).await;
    stop(shutdown, handle).await;

    let handled = engine.handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 41);
    // Counted in turns: the two that took the free slots, TA's next (TA asked first), then
    // TB's, not after TA's forty (it came 41st before slots were fair).
    let turn = handled.iter().position(|e| e == "B1").unwrap();
    assert!(turn <= 4, "TB's message had turn {turn}: {handled:?}");
}

/// Takes each message's rate limits as the engine does: the first `allowed` messages are
/// admitted, the rest limited; records every verdict asked for and every one a turn received.
struct Limiter {
    allowed: usize,
    admitted: Mutex<Vec<String>>,
    turns: Mutex<Vec<(String, Admission)>>,
}

#[async_trait]
impl TurnHandler for Limiter {
    async fn handle(&self, message: &Inbound, admission: Admission) -> Vec<Outbound> {
        self.turns.lock().unwrap().push((message.id.to_string(), admission));
        vec![reply(message, &format!("{}-r", message.id))]
    }

    async fn admit(&self, message: &Inbound) -> Admission {
        let mut admitted = self.admitted.lock().unwrap();
        admitted.push(message.id.to_string());
        if admitted.len() <= self.allowed {
            Admission::Admitted
        } else {
            Admission::Limited { retry_after_ms: 500, sender: false }
        }
    }
}

#[tokio::test]
async fn rate_limits_are_taken_on_arrival_and_the_turn_follows_that_verdict() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let limiter = Arc::new(Limiter { allowed: 2, admitted: Mutex::default(), turns: Mutex::default() });
    // Accepted before any engine is attached: the turn takes the limits itself.
    inbox.accept(slack("c0", "E0")).await.unwrap();
    // Building the worker attaches its engine; the worker runs only later.
    let platform = Arc::new(Platform::default());
    let worker = Worker::new(inbox.clone(), limiter.clone(), platform.clone());
    for (conversation, event) in [("c1", "E1"), ("c2", "E2"), ("c3", "E3")] {
        assert!(inbox.accept(slack(conversation, event)).await.unwrap());
    }
    // A platform retry of a message already accepted takes nothing.
    assert!(!inbox.accept(slack("c1", "E1")).await.unwrap());
    assert_eq!(*limiter.admitted.lock().unwrap(), vec!["E1", "E2", "E3"]);

    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    until_idle(&inbox, Duration::from_secs(10)).await;
    stop(shutdown, handle).await;
    let mut turns = limiter.turns.lock().unwrap().clone();
    turns.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        turns,
        vec![
            ("E0".to_string(), Admission::Unchecked),
            ("E1".to_string(), Admission::Admitted),
            ("E2".to_string(), Admission::Admitted),
            ("E3".to_string(), Admission::Limited { retry_after_ms: 500, sender: false }),
        ]
    );
    // A message over a limit gets its notice (or nothing) at once: no working sign, which
    // under a flood would be two more platform calls per message.
    let mut working_on = platform.working_on.lock().unwrap().clone();
    working_on.sort();
    assert_eq!(working_on, vec!["E0", "E1", "E2"]);
}

#[tokio::test]
async fn a_turn_moves_the_message_and_its_replies_in_one_transaction() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let message = slack("c1", "E1");
    inbox.accept(message.clone()).await.unwrap();
    let lane = keys::lane(message.source, &message.workspace, &message.conversation);
    let (key, _) = queue::head(&inbox.shared.pending, &lane).unwrap().unwrap();

    let mut summary = reply(&message, "E1-summary");
    summary.conversation = ConversationKey::new("agents").unwrap();
    let replies = vec![reply(&message, "E1-a"), reply(&message, "E1-b"), summary];
    assert!(inbox.complete_turn(&key, &message, &replies).await.unwrap());
    assert_eq!(inbox.stats().pending_inbound, 0);
    let queued = inbox.outbox_entries().unwrap();
    let mut ids: Vec<&str> = queued.iter().map(|e| e.outbound.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["E1-a", "E1-b", "E1-summary"]);
    assert!(queued.iter().all(|e| e.in_reply_to.as_str() == "E1"));
    // Within the customer's conversation, the replies keep the order the engine gave them.
    let lane_replies: Vec<&str> =
        queued.iter().filter(|e| e.outbound.conversation.as_str() == "c1").map(|e| e.outbound.id.as_str()).collect();
    assert_eq!(lane_replies, vec!["E1-a", "E1-b"]);

    // Completing the same turn again (a second worker, a replay) changes nothing.
    assert!(!inbox.complete_turn(&key, &message, &[reply(&message, "E1-again")]).await.unwrap());
    assert_eq!(inbox.stats(), QueueStats { pending_inbound: 0, pending_outbound: 3, dead_letters: 0 });
}

/// Never answers: stands for a turn cut short by a crash or a shutdown.
struct Stuck {
    started: tokio::sync::Notify,
}

#[async_trait]
impl TurnHandler for Stuck {
    async fn handle(&self, _message: &Inbound, _admission: Admission) -> Vec<Outbound> {
        self.started.notify_one();
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_interrupted_turn_is_handled_again_after_a_restart() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    inbox.accept(slack("c1", "E1")).await.unwrap();

    let stuck = Arc::new(Stuck { started: tokio::sync::Notify::new() });
    let shutdown = CancellationToken::new();
    let worker = Worker::new(inbox.clone(), stuck.clone(), Arc::new(Platform::default()));
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(10), stuck.started.notified()).await.unwrap();
    stop(shutdown, handle).await;
    assert_eq!(inbox.stats(), QueueStats { pending_inbound: 1, pending_outbound: 0, dead_letters: 0 });

    // The restart: a new inbox on the same store picks the message up again.
    drop(inbox);
    let inbox = open(&store, InboxOptions::default());
    let engine = Arc::new(Engine::default());
    let platform = Arc::new(Platform::default());
    let (shutdown, handle) = start(&inbox, engine.clone(), platform.clone());
    until_idle(&inbox, Duration::from_secs(10)).await;
    stop(shutdown, handle).await;
    assert_eq!(*engine.handled.lock().unwrap(), vec!["E1".to_string()]);
    assert_eq!(platform.delivered(), vec!["E1-r".to_string()]);
}

#[tokio::test]
async fn a_second_worker_on_the_same_inbox_does_not_start() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let (shutdown, handle) = start(&inbox, Arc::new(Engine::default()), Arc::new(Platform::default()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = Worker::new(inbox.clone(), Arc::new(Engine::default()), Arc::new(Platform::default()));
    tokio::time::timeout(Duration::from_secs(5), second.run(CancellationToken::new())).await.unwrap();
    stop(shutdown, handle).await;
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_backoff_until_delivered() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let failures = (0..4).map(|_| unavailable()).collect();
    let platform = Arc::new(Platform::default().failing("E1-r", failures));
    let (shutdown, handle) = start(&inbox, Arc::new(Engine::default()), platform.clone());
    inbox.accept(slack("c1", "E1")).await.unwrap();
    until_idle(&inbox, Duration::from_secs(600)).await;
    stop(shutdown, handle).await;

    let attempts = platform.attempts_of("E1-r");
    assert_eq!(attempts.len(), 5);
    // Base 500 ms doubling, with the jitter never taking less than half: 250, 500, 1000, 2000.
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let least = Duration::from_millis(250 << i);
        assert!(gap >= least, "retry {i} came after {gap:?}, expected at least {least:?}");
        // Far below `retry_max`: the delay grows from the base, it does not start at the cap.
        // (Paused time also runs on while a flush waits for the disk, so no tight upper bound.)
        assert!(gap < Duration::from_secs(60), "retry {i} came after {gap:?}");
    }
    assert_eq!(platform.delivered(), vec!["E1-r".to_string()]);
    assert!(inbox.delivered("E1-r").unwrap().is_some());
    assert_eq!(inbox.stats().dead_letters, 0);
}

#[tokio::test(start_paused = true)]
async fn a_platform_retry_after_is_honoured() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let limited = AdapterError::RateLimited { platform: "slack", retry_after_ms: 7_000 };
    let platform = Arc::new(Platform::default().failing("E1-r", vec![limited]));
    let (shutdown, handle) = start(&inbox, Arc::new(Engine::default()), platform.clone());
    inbox.accept(slack("c1", "E1")).await.unwrap();
    until_idle(&inbox, Duration::from_secs(600)).await;
    stop(shutdown, handle).await;
    let attempts = platform.attempts_of("E1-r");
    assert_eq!(attempts.len(), 2);
    assert!(attempts[1] - attempts[0] >= Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_later_reply_never_overtakes_one_being_retried() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let failures = (0..3).map(|_| unavailable()).collect();
    // c1's first reply keeps failing until c2's reply is out: if c1's retries held up other
    // conversations, this would never drain and the test would fail on its deadline.
    let platform = Arc::new(Platform::default().failing("E1-r", failures).holding("E1-r", "E3-r"));
    inbox.accept(slack("c1", "E1")).await.unwrap();
    inbox.accept(slack("c1", "E2")).await.unwrap();
    inbox.accept(slack("c2", "E3")).await.unwrap();
    let (shutdown, handle) = start(&inbox, Arc::new(Engine::default()), platform.clone());
    until_idle(&inbox, Duration::from_secs(600)).await;
    stop(shutdown, handle).await;
    let delivered = platform.delivered();
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    let position = |id: &str| delivered.iter().position(|d| d == id).unwrap();
    assert!(position("E1-r") < position("E2-r"), "{delivered:?}");
    assert!(platform.attempts_of("E1-r").len() >= 4);
    // E2's reply was not even tried while E1's was still failing.
    let attempts: Vec<String> = platform.attempts.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
    let first_e2 = attempts.iter().position(|id| id == "E2-r").unwrap();
    let last_e1 = attempts.iter().rposition(|id| id == "E1-r").unwrap();
    assert!(last_e1 < first_e2, "{attempts:?}");
}

#[tokio::test]
async fn refused_replies_become_dead_letters_and_the_conversation_moves_on() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let refused = AdapterError::Rejected {
        platform: "slack",
        code: "channel_not_found".into(),
        message: "the channel was archived".into(),
    };
    let platform = Arc::new(Platform::default().failing("E1-r", vec![refused]));
    let (shutdown, handle) = start(&inbox, Arc::new(Engine::default()), platform.clone());
    inbox.accept(slack("c1", "E1")).await.unwrap();
    inbox.accept(slack("c1", "E2")).await.unwrap();
    until_idle(&inbox, Duration::from_secs(10)).await;
    stop(shutdown, handle).await;

    assert_eq!(platform.attempts_of("E1-r").len(), 1, "a refused reply is not retried");
    assert_eq!(platform.delivered(), vec!["E2-r".to_string()]);
    assert_eq!(inbox.stats(), QueueStats { pending_inbound: 0, pending_outbound: 0, dead_letters: 1 });
    let letters = inbox.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].error.contains("channel_not_found"), "{}", letters[0].error);
    assert!(letters[0].failed_at_ms > 0);
    match &letters[0].item {
        DeadItem::Reply { outbound } => {
            assert_eq!(outbound.outbound.id, "E1-r");
            assert_eq!(outbound.in_reply_to.as_str(), "E1");
        }
        other => panic!("unexpected dead letter {other:?}"),
    }
    assert!(inbox.delivered("E1-r").unwrap().is_none());
}

#[tokio::test]
async fn an_unreadable_record_becomes_a_dead_letter_instead_of_blocking_its_conversation() {
    let store = Store::temporary().unwrap();
    let inbox = open(&store, InboxOptions::default());
    let message = slack("c1", "E2");
    let lane = keys::lane(message.source, &message.workspace, &message.conversation);
    // A sequence number drawn like `accept` draws them, so the broken record comes first.
    let seq = inbox.shared.db.generate_id().unwrap();
    inbox.shared.pending.insert(keys::in_lane(&lane, seq), &b"{not json"[..]).unwrap();
    inbox.accept(message).await.unwrap();
    let platform = Arc::new(Platform::default());
    let (shutdown, handle) = start(&inbox, Arc::new(Engine::default()), platform.clone());
    until_idle(&inbox, Duration::from_secs(10)).await;
    stop(shutdown, handle).await;
    assert_eq!(platform.delivered(), vec!["E2-r".to_string()]);
    let letters = inbox.dead_letters().unwrap();
    assert!(matches!(&letters[..], [DeadLetter { item: DeadItem::Unreadable { raw, .. }, .. }] if raw == "{not json"));
}

/// A clock the test sets by hand.
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn dedup_records_are_kept_for_the_retention_then_purged() {
    let store = Store::temporary().unwrap();
    let hour = 60 * 60 * 1000;
    let t0 = 1_700_000_000_000;
    let clock = Arc::new(ManualClock(AtomicI64::new(t0)));
    let options = InboxOptions { dedup_retention: Duration::from_secs(60 * 60), ..InboxOptions::default() };
    let inbox = Inbox::open_with_clock(&store, options, clock.clone()).unwrap();

    assert!(inbox.accept(slack("c1", "E1")).await.unwrap());
    clock.0.store(t0 + hour / 2, Ordering::SeqCst);
    assert!(inbox.accept(slack("c1", "E2")).await.unwrap());
    assert_eq!(inbox.purge_expired(t0 + hour).unwrap(), 0, "exactly the retention is still kept");
    assert!(!inbox.accept(slack("c1", "E1")).await.unwrap());

    assert_eq!(inbox.purge_expired(t0 + hour + 1).unwrap(), 1);
    // E1 is forgotten and would be a new message; E2 is still remembered.
    assert!(!inbox.accept(slack("c1", "E2")).await.unwrap());
    assert!(inbox.accept(slack("c1", "E1")).await.unwrap());
    assert_eq!(inbox.stats().pending_inbound, 3);
    // Purging never touches the queue itself.
    assert_eq!(inbox.purge_expired(t0 + 10 * hour).unwrap(), 2);
    assert_eq!(inbox.stats().pending_inbound, 3);
}

#[tokio::test]
async fn delivered_records_are_purged_after_the_retention() {
    let store = Store::temporary().unwrap();
    let t0 = 1_700_000_000_000;
    let clock = Arc::new(ManualClock(AtomicI64::new(t0)));
    let options = InboxOptions { dedup_retention: Duration::from_secs(60), ..InboxOptions::default() };
    let inbox = Inbox::open_with_clock(&store, options, clock.clone()).unwrap();
    let (shutdown, handle) = start(&inbox, Arc::new(Engine::default()), Arc::new(Platform::default()));
    inbox.accept(slack("c1", "E1")).await.unwrap();
    until_idle(&inbox, Duration::from_secs(10)).await;
    stop(shutdown, handle).await;
    assert!(inbox.delivered("E1-r").unwrap().is_some());
    // The dedup record and the delivered record.
    assert_eq!(inbox.purge_expired(t0 + 60_001).unwrap(), 2);
    assert!(inbox.delivered("E1-r").unwrap().is_none());
}
