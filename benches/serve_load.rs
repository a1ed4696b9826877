//! `frontdesk serve` under crashes and load: the real release binary as a child process, with
//! its Slack Events API channel pointed at a loopback Slack Web API, the embedded retriever
//! over the sample help centre (`evals/tallyhawk/docs`), and a scripted OpenAI-compatible model
//! on loopback that answers deterministically (`--model extractive` uses the extractive
//! answerer instead, what `serve` does with no model configured).
//!
//! ```text
//! cargo bench --bench serve_load -- crash    [--events 1000] [--conversations 50] [--kills 10] [--rate 20] [--seed S]
//! cargo bench --bench serve_load -- load     [--secs 300] [--rate 500] [--drain-secs 120]
//! cargo bench --bench serve_load -- fairness [--secs 120] [--rate 1] [--quota 120]
//!     common: [--binary PATH] [--models-dir DIR] [--work DIR] [--out FILE.json]
//! ```
//!
//! Each run prints a readable table and writes a JSON summary. This is a measurement, not a
//! test: nothing here asserts a time. See README, "Crash safety and load".
//!
//! Layout: `sign` (Slack's request signature, written from Slack's docs and checked against
//! its published example), `slack_stub` (the Web API), `model_stub` (the scripted model), `events` (Events API envelopes and a
//! Slack-like sender), `serve` (the child process, `/proc` and `/readyz`), `audit` (what became
//! of every acknowledged message, from the store), `crash`, `load`, `fairness`, `stats`.

#[path = "serve_load/audit.rs"]
mod audit;
#[path = "serve_load/crash.rs"]
mod crash;
#[path = "serve_load/events.rs"]
mod events;
#[path = "serve_load/fairness.rs"]
mod fairness;
#[path = "serve_load/load.rs"]
mod load;
#[path = "serve_load/model_stub.rs"]
mod model_stub;
#[path = "serve_load/serve.rs"]
mod serve;
#[path = "serve_load/sign.rs"]
mod sign;
#[path = "serve_load/slack_stub.rs"]
mod slack_stub;
#[path = "serve_load/stats.rs"]
mod stats;

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Duration;

const USAGE: &str = "usage: serve_load crash|load|fairness [--secs N] [--rate R] [--events N] [--conversations N] \
                     [--kills N] [--quota PER_MIN] [--drain-secs N] [--seed N] [--binary PATH] [--models-dir DIR] \
                     [--work DIR] [--out FILE] [--model scripted|extractive]";

/// The command line.
#[derive(Debug, Default)]
pub struct Args {
    pub scenario: String,
    pub secs: Option<f64>,
    pub rate: Option<f64>,
    pub events: Option<usize>,
    pub conversations: Option<usize>,
    pub kills: Option<usize>,
    pub quota: Option<u32>,
    pub drain_secs: Option<u64>,
    pub seed: Option<u64>,
    pub binary: Option<PathBuf>,
    pub models_dir: Option<PathBuf>,
    pub work: Option<PathBuf>,
    pub out: Option<PathBuf>,
    /// `scripted` (default: the loopback model of `model_stub.rs`) or `extractive`.
    pub model: Option<String>,
}

fn parse_args(raw: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut args = Args::default();
    let mut raw = raw.peekable();
    while let Some(arg) = raw.next() {
        // `cargo bench` adds `--bench` to every bench target's command line.
        if arg == "--bench" {
            continue;
        }
        if !arg.starts_with("--") {
            anyhow::ensure!(args.scenario.is_empty(), "two scenarios given ({} and {arg}); {USAGE}", args.scenario);
            args.scenario = arg;
            continue;
        }
        let value = raw.next().with_context(|| format!("{arg} needs a value; {USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{arg} {value}: {e}");
        match arg.as_str() {
            "--secs" => args.secs = Some(value.parse().map_err(|e| bad(&e))?),
            "--rate" => args.rate = Some(value.parse().map_err(|e| bad(&e))?),
            "--events" => args.events = Some(value.parse().map_err(|e| bad(&e))?),
            "--conversations" => args.conversations = Some(value.parse().map_err(|e| bad(&e))?),
            "--kills" => args.kills = Some(value.parse().map_err(|e| bad(&e))?),
            "--quota" => args.quota = Some(value.parse().map_err(|e| bad(&e))?),
            "--drain-secs" => args.drain_secs = Some(value.parse().map_err(|e| bad(&e))?),
            "--seed" => args.seed = Some(value.parse().map_err(|e| bad(&e))?),
            "--binary" => args.binary = Some(value.into()),
            "--models-dir" => args.models_dir = Some(value.into()),
            "--work" => args.work = Some(value.into()),
            "--out" => args.out = Some(value.into()),
            "--model" => {
                anyhow::ensure!(value == "scripted" || value == "extractive", "--model is scripted or extractive");
                args.model = Some(value)
            }
            _ => bail!("unknown option {arg}; {USAGE}"),
        }
    }
    if let Some(r) = args.rate {
        anyhow::ensure!(r > 0.0 && r.is_finite(), "--rate must be a positive number of events per second");
    }
    if let Some(s) = args.secs {
        anyhow::ensure!(s > 0.0 && s.is_finite(), "--secs must be a positive number of seconds");
    }
    Ok(args)
}

/// What every scenario needs.
pub struct Ctx {
    pub args: Args,
    pub binary: PathBuf,
    pub work: PathBuf,
    pub models_dir: PathBuf,
    pub docs: PathBuf,
    pub questions: Vec<events::Question>,
    pub client: reqwest::Client,
}

impl Ctx {
    /// Starts the scripted model unless `--model extractive`; the settings then point at it.
    pub async fn model(&self, settings: &mut serve::Settings) -> anyhow::Result<Option<model_stub::ModelStub>> {
        if self.args.model.as_deref() == Some("extractive") {
            return Ok(None);
        }
        let model = model_stub::ModelStub::start().await?;
        settings.model_url = Some(model.base_url());
        Ok(Some(model))
    }

    pub fn model_name(&self) -> &str {
        self.args.model.as_deref().unwrap_or("scripted")
    }
}

/// The target directory this bench was built into (`<target>/release/deps/serve_load-…`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

async fn run(args: Args) -> anyhow::Result<()> {
    sign::check_against_slack_example()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = args
        .binary
        .clone()
        .or_else(|| option_env!("CARGO_BIN_EXE_frontdesk").map(PathBuf::from))
        .unwrap_or_else(|| target_dir().join("release").join("frontdesk"));
    anyhow::ensure!(
        binary.exists(),
        "no frontdesk binary at {} (cargo build --release, or --binary)",
        binary.display()
    );
    let models_dir = args
        .models_dir
        .clone()
        .or_else(|| std::env::var_os("FRONTDESK_MODELS_DIR").map(PathBuf::from))
        .context("set FRONTDESK_MODELS_DIR or --models-dir to the directory holding all-MiniLM-L6-v2")?;
    let work = args.work.clone().unwrap_or_else(|| target_dir().join("serve_load"));
    std::fs::create_dir_all(&work)?;
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(512).connect_timeout(Duration::from_secs(2)).build()?;
    let ctx = Ctx {
        questions: events::questions(&root.join("evals/tallyhawk/tune.jsonl"))?,
        docs: root.join("evals/tallyhawk/docs"),
        binary,
        work,
        models_dir,
        client,
        args,
    };
    let started = stats::unix_now();
    let machine = stats::machine();
    let mut report = match ctx.args.scenario.as_str() {
        "crash" => crash::run(&ctx).await?,
        "load" => load::run(&ctx).await?,
        "fairness" => fairness::run(&ctx).await?,
        other => bail!("unknown scenario {other:?}; {USAGE}"),
    };
    report["machine"] = machine;
    report["started_unix"] = serde_json::json!(started);
    report["binary"] = serde_json::json!(ctx.binary.display().to_string());
    report["model"] = serde_json::json!(ctx.model_name());
    report["loadavg_at_end"] = serde_json::json!(std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    let out = ctx.args.out.clone().unwrap_or_else(|| ctx.work.join(format!("{}.json", ctx.args.scenario)));
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    stats::say(format!("\nJSON summary: {}", out.display()));
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) if !a.scenario.is_empty() => a,
        Ok(_) => {
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve_load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
