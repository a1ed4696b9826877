//! Crash safety: signed events across many conversations while `frontdesk serve` is SIGKILLed
//! at random moments and restarted on the same data directory; then a drain, a clean stop, and
//! an audit of every acknowledged message (see `audit.rs` for what "answered", "lost" and
//! "duplicate" mean).

use super::audit;
use super::events::{Clock, Delivery, Message, Sender};
use super::serve::{self, Serve, Settings};
use super::slack_stub::SlackStub;
use super::stats::{say, summarise, Rng};
use super::Ctx;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKSPACE: &str = "T1";

pub async fn run(ctx: &Ctx) -> anyhow::Result<Value> {
    let events = ctx.args.events.unwrap_or(1000);
    let conversations = ctx.args.conversations.unwrap_or(50).max(1);
    let kills = ctx.args.kills.unwrap_or(10);
    let rate = ctx.args.rate.unwrap_or(20.0).max(0.1);
    let seed = ctx.args.seed.unwrap_or_else(super::stats::unix_now);
    let mut rng = Rng::new(seed);

    let stub = SlackStub::start().await?;
    let seed_dir = serve::seed(&ctx.binary, &ctx.work, &ctx.models_dir, &ctx.docs, &[WORKSPACE]).await?;
    // Every message gets a turn of its own (no quota in the way), and the answer threshold and
    // retrieval gate are opened so that most turns answer and the conversation stays with the
    // bot: every message then has a reply to deliver, and every delivery is a window a crash can
    // fall into. Requests for a person still hand the thread over (the bot is quiet after that).
    let mut settings = Settings {
        workspace_per_minute: 1_000_000,
        workspace_burst: 100_000,
        user_per_minute: 1_000_000,
        user_burst: 100_000,
        retrieval_gate: Some(0.0),
        ..Settings::default()
    };
    let model = ctx.model(&mut settings).await?;
    let mut serve =
        Serve::prepare(&ctx.binary, &ctx.work.join("crash"), &seed_dir, &ctx.models_dir, &stub.api_url(), &settings)?;
    serve.run_cli(&["policy", "set", "--workspace", WORKSPACE, "confidence_threshold=0"]).await?;

    // 50 threads in 5 channels; message 0 of each starts the thread, the others follow in it.
    let mut clock = Clock::new(1_700_000_000);
    let roots: Vec<String> = (0..conversations).map(|_| clock.next()).collect();
    let mut messages = Vec::with_capacity(events);
    for i in 0..events {
        let c = i % conversations;
        let turn = i / conversations;
        let q = &ctx.questions[(c * 7 + turn) % ctx.questions.len()];
        let ts = if turn == 0 { roots[c].clone() } else { clock.next() };
        messages.push(Message {
            team: WORKSPACE.into(),
            channel: format!("CCRASH{}", c % 5),
            thread_ts: (turn > 0).then(|| roots[c].clone()),
            ts,
            user: format!("UCUST{c:03}"),
            text: format!("<@{}> {}", super::slack_stub::BOT_USER_ID, q.text),
            event_id: format!("Ev{i:06}"),
        });
    }
    // Kill moments spread over the whole run, intake and answering alike: each is drawn as a
    // point of progress — events acknowledged plus replies posted, uniform over what the run
    // will do — plus a random delay of up to a second, so a kill does not land just after an
    // acknowledgement or a post more often than elsewhere.
    let expected_work = events + (events as f64 * 0.8) as usize;
    let mut kill_at: Vec<(usize, f64)> =
        (0..kills).map(|_| ((rng.unit() * expected_work as f64) as usize, rng.unit())).collect();
    kill_at.sort_by_key(|(work, _)| *work);
    say(format!(
        "crash: {events} events, {conversations} conversations, {rate}/s, {kills} SIGKILLs (seed {seed}), data {}",
        serve.data_dir.display()
    ));
    let started = Instant::now();
    let first = serve.start(&ctx.client).await?;
    let sender = Sender::new(ctx.client.clone(), &serve.base_url(), serve::SIGNING_SECRET);

    // The generator: one event every 1/rate s, each redelivered until acknowledged.
    let messages = Arc::new(messages);
    let acked = Arc::new(AtomicUsize::new(0));
    let mut sends = Vec::with_capacity(events);
    let generator_start = Instant::now();
    let gen = {
        let messages = Arc::clone(&messages);
        let sender = sender.clone();
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            for i in 0..messages.len() {
                let at = generator_start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                let (messages, sender, acked) = (Arc::clone(&messages), sender.clone(), Arc::clone(&acked));
                sends.push(tokio::spawn(async move {
                    let d = sender.deliver(&messages[i], Duration::from_secs(600)).await;
                    if d.acknowledged() {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    d
                }));
            }
            sends
        })
    };

    // The killer: SIGKILL at each chosen moment (once the previous restart is up), restart at
    // once on the same data directory.
    let mut running = first;
    let mut kill_log = Vec::new();
    let work = || acked.load(Ordering::SeqCst) + stub.post_count();
    for (work_at, delay) in &kill_at {
        // (Or once nothing moves for 15 s: fewer replies than expected.)
        let (mut seen, mut moved) = (work(), Instant::now());
        while seen < *work_at && moved.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let now = work();
            if now != seen {
                (seen, moved) = (now, Instant::now());
            }
        }
        let earliest = running.started + Duration::from_millis(300);
        let when = Instant::now() + Duration::from_secs_f64(*delay);
        tokio::time::sleep_until(when.max(earliest).into()).await;
        let posts_before = stub.post_count();
        let acked_before = acked.load(Ordering::SeqCst);
        let killed_at = started.elapsed();
        running.kill().await?;
        let down = Instant::now();
        running = serve.start(&ctx.client).await?;
        kill_log.push(json!({
            "at_s": round1(killed_at.as_secs_f64()),
            "posts_before": posts_before,
            "events_acknowledged_before": acked_before,
            "restart_ms": down.elapsed().as_millis() as u64,
        }));
        say(format!(
            "  SIGKILL at {:.1} s ({acked_before} events acknowledged, {posts_before} replies posted), up again in {} ms",
            killed_at.as_secs_f64(),
            down.elapsed().as_millis()
        ));
    }
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(events);
    for handle in gen.await? {
        deliveries.push(handle.await?);
    }
    let sent_secs = started.elapsed().as_secs_f64();
    say(format!("  every event sent after {sent_secs:.1} s; draining"));
    let drained =
        serve::drain(&ctx.client, &serve.base_url(), Duration::from_secs(ctx.args.drain_secs.unwrap_or(600))).await;
    let stopped = running.terminate(Duration::from_secs(30)).await?;
    let posts = stub.posts_since(0);

    let acknowledged: Vec<&Message> =
        messages.iter().zip(&deliveries).filter(|(_, d)| d.acknowledged()).map(|(m, _)| m).collect();
    let audit = audit::audit(&serve.data_dir, &acknowledged, &posts)?;
    let never_acked = deliveries.iter().filter(|d| !d.acknowledged()).count();
    let retried = deliveries.iter().filter(|d| d.retries() > 0).count();
    let beyond_slack = deliveries.iter().filter(|d| d.retries() > 3).count();
    let acks =
        summarise(deliveries.iter().flat_map(|d| d.attempts.iter().filter(|a| a.acknowledged()).map(|a| a.latency())));
    let statuses = status_counts(&deliveries);

    let result = json!({
        "scenario": "crash",
        "seed": seed,
        "events": events,
        "conversations": conversations,
        "rate_per_s": rate,
        "kills": kill_log,
        "starts": serve.starts(),
        "model_calls": model.as_ref().map(|m| m.calls()),
        "seconds_until_all_sent": round1(sent_secs),
        "drained_in_s": drained.map(|d| round1(d.as_secs_f64())),
        "clean_stop": stopped.success(),
        "events_never_acknowledged": never_acked,
        "events_redelivered": retried,
        "events_redelivered_more_than_3_times": beyond_slack,
        "attempt_statuses": statuses,
        "ack_latency": acks,
        "posts_received": posts.len(),
        "working_reactions_left": stub.reactions_left(),
        "audit": audit.to_json(),
    });
    say("");
    say("crash safety");
    say(format!(
        "  events acknowledged        {} of {} ({} redelivered, {} never)",
        audit.acknowledged, events, retried, never_acked
    ));
    say(format!(
        "  decided                    {} ({} with a reply, {} quiet)",
        audit.decided, audit.with_replies, audit.quiet
    ));
    say(format!(
        "  replies delivered          {} of {} ({} waiting, {} dead letters)",
        audit.replies_delivered, audit.replies, audit.replies_waiting, audit.replies_dead
    ));
    say(format!("  LOST                       {}", audit.lost()));
    say(format!(
        "  duplicate posts            {} (for {} messages); unexplained posts {}",
        audit.duplicate_posts(),
        audit.duplicates.len(),
        audit.unexplained_posts
    ));
    say(format!("  still waiting after drain  {}", audit.still_waiting));
    say(format!("  decision reasons           {:?}", audit.reasons));
    say(format!("  ack latency                {}", acks.line()));
    say(format!(
        "  drained in                 {}",
        drained.map_or("NOT drained".into(), |d| format!("{:.1} s", d.as_secs_f64()))
    ));
    Ok(result)
}

pub fn status_counts(deliveries: &[Delivery]) -> Value {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for a in deliveries.iter().flat_map(|d| &d.attempts) {
        let key = a.status.map_or("no_answer".to_string(), |s| s.to_string());
        *counts.entry(key).or_default() += 1;
    }
    json!(counts)
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
