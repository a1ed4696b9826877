//! Customers' messages as Slack's Events API sends them, and a sender that behaves like Slack:
//! each request signed at the moment it is sent, a 3-second deadline for the acknowledgement,
//! and redelivery of what was not acknowledged (same `event_id`, `X-Slack-Retry-Num` counting
//! up).

use super::sign;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Slack waits this long for a 2xx before it counts a delivery as failed.
pub const ACK_DEADLINE: Duration = Duration::from_secs(3);

/// Questions of the sample help centre's tuning cases (no history).
#[derive(Debug, Clone)]
pub struct Question {
    pub text: String,
    pub answerable: bool,
}

pub fn questions(cases: &Path) -> anyhow::Result<Vec<Question>> {
    let text = std::fs::read_to_string(cases)?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line)?;
        let no_history = case["history"].as_array().is_none_or(Vec::is_empty);
        if let (Some(q), true) = (case["question"].as_str(), no_history) {
            out.push(Question { text: q.to_string(), answerable: case["answerable"].as_bool().unwrap_or(false) });
        }
    }
    anyhow::ensure!(!out.is_empty(), "no questions in {}", cases.display());
    Ok(out)
}

/// One customer message that mentions the bot.
#[derive(Debug, Clone)]
pub struct Message {
    pub team: String,
    pub channel: String,
    pub ts: String,
    /// The thread it was written in; `None` for a new top-level message (its own thread).
    pub thread_ts: Option<String>,
    pub user: String,
    pub text: String,
    pub event_id: String,
}

/// Message timestamps, unique within a run: `{seconds}.{micros}` as Slack writes them.
pub struct Clock {
    base: u64,
    n: u64,
}

impl Clock {
    pub fn new(base: u64) -> Clock {
        Clock { base, n: 0 }
    }

    pub fn next(&mut self) -> String {
        self.n += 1;
        format!("{}.{:06}", self.base + self.n / 1_000_000, self.n % 1_000_000)
    }
}

impl Message {
    /// The id frontdesk's Slack adapter gives the message (`{channel}:{ts}`, shared by the
    /// `message` and `app_mention` events of one message and by every redelivery).
    pub fn inbound_id(&self) -> String {
        format!("{}:{}", self.channel, self.ts)
    }

    /// The thread the bot replies in.
    pub fn thread_root(&self) -> &str {
        self.thread_ts.as_deref().unwrap_or(&self.ts)
    }

    /// The `event_callback` envelope of an `app_mention`, as Slack sends it.
    pub fn envelope(&self) -> Vec<u8> {
        let mut event = json!({
            "type": "app_mention",
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            "channel": self.channel,
            "event_ts": self.ts,
            "team": self.team,
        });
        if let Some(t) = &self.thread_ts {
            event["thread_ts"] = json!(t);
        }
        let now = sign::now_secs().parse::<u64>().unwrap_or(0);
        let envelope = json!({
            "token": "unused-verification-token",
            "team_id": self.team,
            "api_app_id": "ABENCH",
            "event": event,
            "type": "event_callback",
            "event_id": self.event_id,
            "event_time": now,
            "authorizations": [{"enterprise_id": null, "team_id": self.team, "user_id": super::slack_stub::BOT_USER_ID,
                "is_bot": true, "is_enterprise_install": false}],
            "is_ext_shared_channel": false,
        });
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

/// What one HTTP request to `/slack/events` came to.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub started: Instant,
    pub done: Instant,
    /// The HTTP status; `None` for a connection error or no answer within the deadline.
    pub status: Option<u16>,
}

impl Attempt {
    pub fn acknowledged(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn latency(&self) -> Duration {
        self.done.saturating_duration_since(self.started)
    }
}

/// How a message was delivered to frontdesk, over all its attempts.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub attempts: Vec<Attempt>,
}

impl Delivery {
    pub fn acknowledged(&self) -> bool {
        self.attempts.iter().any(Attempt::acknowledged)
    }

    pub fn first_sent(&self) -> Option<Instant> {
        self.attempts.first().map(|a| a.started)
    }

    pub fn retries(&self) -> usize {
        self.attempts.len().saturating_sub(1)
    }
}

/// Posts signed events to one `frontdesk serve`.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    url: String,
    secret: String,
}

impl Sender {
    pub fn new(client: reqwest::Client, base: &str, secret: &str) -> Sender {
        Sender { client, url: format!("{base}/slack/events"), secret: secret.to_string() }
    }

    /// One request, signed now; `retry` is Slack's retry number for a redelivery.
    pub async fn send(&self, body: &[u8], retry: Option<u32>) -> Attempt {
        let started = Instant::now();
        let ts = sign::now_secs();
        let mut request = self
            .client
            .post(&self.url)
            .timeout(ACK_DEADLINE)
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", &ts)
            .header("x-slack-signature", sign::signature(&self.secret, &ts, body))
            .body(body.to_vec());
        if let Some(n) = retry {
            request = request.header("x-slack-retry-num", n.to_string()).header("x-slack-retry-reason", "http_timeout");
        }
        let status = match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                // Read the body so the connection goes back to the pool.
                let _ = r.bytes().await;
                Some(status)
            }
            Err(_) => None,
        };
        Attempt { started, done: Instant::now(), status }
    }

    /// Sends `message` until frontdesk acknowledges it or `patience` runs out, redelivering as
    /// Slack does but on a compressed schedule (Slack waits about a minute, then five, and gives
    /// up after three retries; a restart here takes seconds, so waiting minutes would only make
    /// the run longer).
    pub async fn deliver(&self, message: &Message, patience: Duration) -> Delivery {
        const WAITS_MS: [u64; 5] = [100, 250, 500, 1000, 2000];
        let body = message.envelope();
        let deadline = Instant::now() + patience;
        let mut attempts = Vec::new();
        let mut retry: Option<u32> = None;
        loop {
            let attempt = self.send(&body, retry).await;
            attempts.push(attempt);
            if attempt.acknowledged() || Instant::now() >= deadline {
                return Delivery { attempts };
            }
            let n = retry.map_or(0, |n| n as usize);
            tokio::time::sleep(Duration::from_millis(WAITS_MS[n.min(WAITS_MS.len() - 1)])).await;
            retry = Some(retry.map_or(1, |n| n + 1));
        }
    }
}
