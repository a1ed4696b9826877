//! Fairness across workspaces: one workspace (T1) floods at ten times its configured quota
//! while another (T2) writes at a normal rate. T2's reply time — event sent to reply posted —
//! is measured alone first, then beside the flood, on one `frontdesk serve`.

use super::audit;
use super::crash::round1;
use super::events::{Clock, Delivery, Message, Sender};
use super::serve::{self, Depth, Serve, Settings};
use super::slack_stub::{Post, SlackStub};
use super::stats::{say, summarise, Summary};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FLOOD: &str = "T1";
const NORMAL: &str = "T2";

/// Messages of one workspace sent at a fixed rate, each in a new thread, each delivered like
/// Slack delivers (redelivered until acknowledged).
async fn send_at_rate(sender: &Sender, messages: Vec<Message>, rate: f64) -> anyhow::Result<Vec<(Message, Delivery)>> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        tokio::time::sleep_until((start + Duration::from_secs_f64(i as f64 / rate)).into()).await;
        let sender = sender.clone();
        handles.push(tokio::spawn(async move {
            let d = sender.deliver(&m, Duration::from_secs(60)).await;
            (m, d)
        }));
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await?);
    }
    Ok(out)
}

struct Factory {
    clock: Clock,
    n: usize,
}

impl Factory {
    fn message(&mut self, ctx: &Ctx, team: &str, channel: &str) -> Message {
        self.n += 1;
        let q = &ctx.questions[(self.n * 11) % ctx.questions.len()];
        Message {
            team: team.into(),
            channel: channel.into(),
            ts: self.clock.next(),
            thread_ts: None,
            user: format!("U{team}{:06}", self.n),
            text: format!("<@{}> {}", super::slack_stub::BOT_USER_ID, q.text),
            event_id: format!("Ev{team}{:07}", self.n),
        }
    }
}

/// Event sent → first reply posted in its thread, per message (`None`: no reply).
fn reply_times(sent: &[(Message, Delivery)], posts: &[Post]) -> Vec<Option<Duration>> {
    let mut first: HashMap<(&str, &str), Instant> = HashMap::new();
    for p in posts {
        if let Some(t) = &p.thread_ts {
            first.entry((p.channel.as_str(), t.as_str())).and_modify(|at| *at = (*at).min(p.at)).or_insert(p.at);
        }
    }
    sent.iter()
        .map(|(m, d)| {
            let posted = first.get(&(m.channel.as_str(), m.thread_root()))?;
            Some(posted.saturating_duration_since(d.first_sent()?))
        })
        .collect()
}

fn phase_json(name: &str, sent: &[(Message, Delivery)], times: &[Option<Duration>]) -> (Value, Summary) {
    let replied: Vec<Duration> = times.iter().flatten().copied().collect();
    let s = summarise(replied.iter().copied());
    let acks =
        summarise(sent.iter().flat_map(|(_, d)| d.attempts.iter().filter(|a| a.acknowledged()).map(|a| a.latency())));
    let v = json!({
        "phase": name,
        "messages": sent.len(),
        "acknowledged": sent.iter().filter(|(_, d)| d.acknowledged()).count(),
        "replied": replied.len(),
        "reply_time": s,
        "ack_latency": acks,
    });
    (v, s)
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Value> {
    let secs = ctx.args.secs.unwrap_or(120.0);
    let normal_rate = ctx.args.rate.unwrap_or(1.0).max(0.01);
    let quota = ctx.args.quota.unwrap_or(120);
    let flood_rate = 10.0 * f64::from(quota) / 60.0;

    let stub = Arc::new(SlackStub::start().await?);
    let seed_dir = serve::seed(&ctx.binary, &ctx.work, &ctx.models_dir, &ctx.docs, &[FLOOD, NORMAL]).await?;
    let defaults = Settings::default();
    let mut settings =
        Settings { overrides: vec![(FLOOD.into(), quota, defaults.workspace_burst.min(quota.max(1)))], ..defaults };
    let model = ctx.model(&mut settings).await?;
    let mut serve = Serve::prepare(
        &ctx.binary,
        &ctx.work.join("fairness"),
        &seed_dir,
        &ctx.models_dir,
        &stub.api_url(),
        &settings,
    )?;
    let running = serve.start(&ctx.client).await?;
    let base = serve.base_url();
    let sender = Sender::new(ctx.client.clone(), &base, serve::SIGNING_SECRET);
    let mut factory = Factory { clock: Clock::new(1_700_000_000), n: 0 };
    let per_phase = (secs * normal_rate).round().max(1.0) as usize;
    say(format!(
        "fairness: {NORMAL} at {normal_rate}/s for {secs} s alone, then beside {FLOOD} flooding at {flood_rate:.1}/s \
         (10 x its quota of {quota}/min)"
    ));

    // Phase 1: the normal workspace alone.
    let alone: Vec<Message> = (0..per_phase).map(|_| factory.message(ctx, NORMAL, "C2ALONE")).collect();
    let alone = send_at_rate(&sender, alone, normal_rate).await?;
    let settle = serve::drain(&ctx.client, &base, Duration::from_secs(120)).await;
    say(format!("  alone: sent; settled in {settle:?}"));

    // Phase 2: the same, beside the flood.
    let beside: Vec<Message> = (0..per_phase).map(|_| factory.message(ctx, NORMAL, "C2BESIDE")).collect();
    let flood_count = (secs * flood_rate).round() as usize;
    let flood: Vec<Message> = (0..flood_count).map(|_| factory.message(ctx, FLOOD, "C1FLOOD")).collect();
    let depth_samples = Arc::new(std::sync::Mutex::new(Vec::<(f64, Depth)>::new()));
    let phase_start = Instant::now();
    let watcher = {
        let (client, base, samples) = (ctx.client.clone(), base.clone(), Arc::clone(&depth_samples));
        tokio::spawn(async move {
            while phase_start.elapsed().as_secs_f64() < secs + 1.0 {
                if let Some(d) = serve::inbox_depth(&client, &base).await {
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((round1(phase_start.elapsed().as_secs_f64()), d));
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let (beside, flood) =
        tokio::join!(send_at_rate(&sender, beside, normal_rate), send_at_rate(&sender, flood, flood_rate));
    let (beside, flood) = (beside?, flood?);
    watcher.await?;
    let drained = serve::drain(&ctx.client, &base, Duration::from_secs(ctx.args.drain_secs.unwrap_or(600))).await;
    let stopped = running.terminate(Duration::from_secs(30)).await?;
    let posts = stub.posts_since(0);

    let (alone_json, alone_s) = phase_json("normal_alone", &alone, &reply_times(&alone, &posts));
    let (beside_json, beside_s) = phase_json("normal_beside_flood", &beside, &reply_times(&beside, &posts));
    let (flood_json, flood_s) = phase_json("flood", &flood, &reply_times(&flood, &posts));
    let all: Vec<&Message> = alone.iter().chain(&beside).chain(&flood).map(|(m, _)| m).collect();
    let reasons = audit::reasons_by_workspace(&serve.data_dir, &all)?;
    let depths: Vec<Value> = depth_samples
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(t, d)| json!({"t_s": t, "waiting": d.waiting, "replies": d.replies}))
        .collect();
    let result = json!({
        "scenario": "fairness",
        "seconds_per_phase": secs,
        "normal_rate_per_s": normal_rate,
        "flood_quota_per_minute": quota,
        "flood_rate_per_s": round1(flood_rate),
        "phases": [alone_json, beside_json, flood_json],
        "reasons_by_workspace": reasons,
        "inbox_depth_during_flood": depths,
        "drained_in_s": drained.map(|d| round1(d.as_secs_f64())),
        "clean_stop": stopped.success(),
        "model_calls": model.as_ref().map(|m| m.calls()),
    });
    say("");
    say("fairness (reply time = event sent -> reply posted)");
    say(format!("  {NORMAL} alone           {}", alone_s.line()));
    say(format!("  {NORMAL} beside flood    {}", beside_s.line()));
    say(format!("  {FLOOD} flood            {}", flood_s.line()));
    say(format!("  decisions                {reasons:?}"));
    Ok(result)
}
