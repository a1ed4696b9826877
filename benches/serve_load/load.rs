//! Load: the Slack acknowledgement path at a fixed arrival rate (open loop: each request is
//! sent at its scheduled moment whatever happened to the earlier ones), with the product's
//! default quotas, while the worker answers behind it. Sampled every second: the serve
//! process's resident memory, the inbox depth from `/readyz`, and the replies posted.

use super::crash::round1;
use super::events::{Attempt, Clock, Message, Sender};
use super::serve::{self, Depth, Serve, Settings};
use super::slack_stub::SlackStub;
use super::stats::{say, summarise};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKSPACE: &str = "T1";

/// One sample of the serve process.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    t_s: f64,
    rss_mib: Option<f64>,
    depth: Option<Depth>,
    posts: usize,
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Value> {
    let secs = ctx.args.secs.unwrap_or(300.0);
    let rate = ctx.args.rate.unwrap_or(500.0).max(0.1);
    let total = (secs * rate).round() as usize;

    let stub = Arc::new(SlackStub::start().await?);
    let seed_dir = serve::seed(&ctx.binary, &ctx.work, &ctx.models_dir, &ctx.docs, &[WORKSPACE]).await?;
    let mut settings = Settings::default();
    let model = ctx.model(&mut settings).await?;
    let mut serve =
        Serve::prepare(&ctx.binary, &ctx.work.join("load"), &seed_dir, &ctx.models_dir, &stub.api_url(), &settings)?;
    let mut running = serve.start(&ctx.client).await?;
    let base = serve.base_url();
    let sender = Sender::new(ctx.client.clone(), &base, serve::SIGNING_SECRET);

    // Each request a new question in a new thread, from one of 1,000 customers in 20 channels.
    let mut clock = Clock::new(1_700_000_000);
    let messages: Arc<Vec<Message>> = Arc::new(
        (0..total)
            .map(|i| Message {
                team: WORKSPACE.into(),
                channel: format!("CLOAD{:02}", i % 20),
                ts: clock.next(),
                thread_ts: None,
                user: format!("ULOAD{:04}", i % 1000),
                text: format!("<@{}> {}", super::slack_stub::BOT_USER_ID, ctx.questions[i % ctx.questions.len()].text),
                event_id: format!("Ev{i:08}"),
            })
            .collect(),
    );
    say(format!("load: {rate}/s for {secs} s ({total} events), pid {}", running.pid));

    // Sampler: every second RSS and posts; the inbox depth every 5 s (it is counted by reading
    // the queues, so it is not free for the server).
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let sampler = {
        let (samples, stop, stub, client, base) =
            (Arc::clone(&samples), Arc::clone(&stop_sampling), Arc::clone(&stub), ctx.client.clone(), base.clone());
        let pid = running.pid;
        tokio::spawn(async move {
            let mut tick = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let depth = if tick.is_multiple_of(5) { serve::inbox_depth(&client, &base).await } else { None };
                let rss = rss_mib(pid);
                let sample = Sample {
                    t_s: round1(started.elapsed().as_secs_f64()),
                    rss_mib: rss,
                    depth,
                    posts: stub.post_count(),
                };
                samples.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
                tick += 1;
                let next = started + Duration::from_secs(tick);
                tokio::time::sleep_until(next.into()).await;
            }
        })
    };

    // Open loop: request i leaves at start + i/rate.
    let generator_start = Instant::now() + Duration::from_millis(100);
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let at = generator_start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let (messages, sender) = (Arc::clone(&messages), sender.clone());
        handles.push(tokio::spawn(async move {
            let body = messages[i].envelope();
            (at, sender.send(&body, None).await)
        }));
    }
    let mut results: Vec<(Instant, Attempt)> = Vec::with_capacity(total);
    for h in handles {
        results.push(h.await?);
    }
    let sending_took = generator_start.elapsed().as_secs_f64();
    let end_depth = serve::inbox_depth(&ctx.client, &base).await;
    let posts_at_end = stub.post_count();
    say(format!("  sent in {sending_took:.1} s; inbox at the end of sending: {end_depth:?}; draining"));
    let drained = serve::drain(&ctx.client, &base, Duration::from_secs(ctx.args.drain_secs.unwrap_or(120))).await;
    let after_drain = serve::inbox_depth(&ctx.client, &base).await;
    stop_sampling.store(true, Ordering::SeqCst);
    sampler.await?;
    let rss_after = running.rss_kib();
    let _ = running.exited();
    let stopped = running.terminate(Duration::from_secs(30)).await?;

    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let acked: Vec<&(Instant, Attempt)> = results.iter().filter(|(_, a)| a.acknowledged()).collect();
    let from_send = summarise(acked.iter().map(|(_, a)| a.latency()));
    let from_schedule = summarise(acked.iter().map(|(at, a)| a.done.saturating_duration_since(*at)));
    let lateness = summarise(results.iter().map(|(at, a)| a.started.saturating_duration_since(*at)));
    let mut errors = BTreeMap::<String, usize>::new();
    for (_, a) in results.iter().filter(|(_, a)| !a.acknowledged()) {
        *errors.entry(a.status.map_or("no_answer_within_3s".into(), |s| s.to_string())).or_default() += 1;
    }
    let rss_points = rss_summary(&samples, secs);
    let depth_points: Vec<Value> = samples
        .iter()
        .filter_map(|s| {
            s.depth.map(|d| json!({"t_s": s.t_s, "waiting": d.waiting, "replies": d.replies, "posts": s.posts}))
        })
        .collect();
    let posts = stub.post_count();
    let reply_rate = samples.iter().filter(|s| s.t_s <= secs + 1.0).map(|s| (s.t_s, s.posts)).collect::<Vec<_>>();

    let result = json!({
        "scenario": "load",
        "rate_per_s": rate,
        "seconds": secs,
        "events": total,
        "sending_took_s": round1(sending_took),
        "achieved_rate_per_s": round1(total as f64 / sending_took.max(0.001)),
        "acknowledged": acked.len(),
        "errors": errors,
        "ack_latency_from_send": from_send,
        "ack_latency_from_schedule": from_schedule,
        "generator_lateness": lateness,
        "rss_mib": rss_points,
        "rss_after_drain_mib": rss_after.map(|k| round1(k as f64 / 1024.0)),
        "inbox_depth": depth_points,
        "inbox_at_end_of_sending": end_depth,
        "inbox_after_drain": after_drain,
        "drained_in_s": drained.map(|d| round1(d.as_secs_f64())),
        "posts_at_end_of_sending": posts_at_end,
        "posts_total": posts,
        "replies_per_s_while_sending": reply_throughput(&reply_rate),
        "stub_calls": stub.calls(),
        "model_calls": model.as_ref().map(|m| m.calls()),
        "clean_stop": stopped.success(),
        "samples": samples,
    });
    say("");
    say(format!("load: {rate}/s for {secs} s, open loop"));
    say(format!("  acknowledged          {} of {} ({} errors: {:?})", acked.len(), total, total - acked.len(), errors));
    say(format!("  ack latency (send)    {}", from_send.line()));
    say(format!("  ack latency (sched.)  {}", from_schedule.line()));
    say(format!("  generator lateness    {}", lateness.line()));
    say(format!("  RSS MiB               {}", rss_points));
    say(format!(
        "  inbox at end          {end_depth:?}; drained: {}",
        drained.map_or("no".into(), |d| format!("in {:.1} s", d.as_secs_f64()))
    ));
    say(format!("  replies posted        {posts_at_end} during sending, {posts} in all"));
    Ok(result)
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(round1(kib / 1024.0))
}

/// RSS at the start, middle and end of sending, and its maximum.
fn rss_summary(samples: &[Sample], secs: f64) -> Value {
    let at = |t: f64| {
        samples
            .iter()
            .filter(|s| s.rss_mib.is_some())
            .min_by(|a, b| (a.t_s - t).abs().total_cmp(&(b.t_s - t).abs()))
            .and_then(|s| s.rss_mib)
    };
    let max = samples.iter().filter_map(|s| s.rss_mib).fold(0.0, f64::max);
    json!({"start": at(0.0), "middle": at(secs / 2.0), "end": at(secs), "max": max})
}

/// Replies posted per second over each fifth of the sending period.
fn reply_throughput(points: &[(f64, usize)]) -> Vec<Value> {
    if points.len() < 2 {
        return Vec::new();
    }
    let step = (points.len() / 5).max(1);
    points
        .windows(step + 1)
        .step_by(step)
        .map(|w| {
            let (t0, p0) = w[0];
            let (t1, p1) = w[w.len() - 1];
            json!({"from_s": t0, "to_s": t1, "replies_per_s": round1((p1 - p0) as f64 / (t1 - t0).max(0.001))})
        })
        .collect()
}
