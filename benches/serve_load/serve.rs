//! `frontdesk serve` as a child process: its configuration, a data directory with the sample
//! help centre ingested, starting, SIGKILL, SIGTERM, and what can be read from outside while it
//! runs (resident memory from `/proc`, the inbox depth from `/readyz`).

use anyhow::{bail, Context};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The signing secret the generator and the server share.
pub const SIGNING_SECRET: &str = "load-bench-signing-secret-8f742231b10e";

/// What the configuration file says beyond the fixed parts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub workspace_per_minute: u32,
    pub workspace_burst: u32,
    pub user_per_minute: u32,
    pub user_burst: u32,
    /// Workspaces with their own quota: (workspace, per minute, burst).
    pub overrides: Vec<(String, u32, u32)>,
    /// `[answering] retrieval_gate`, when set.
    pub retrieval_gate: Option<f32>,
    pub max_parallel: usize,
    /// The scripted model's base URL; `None` keeps the extractive answerer.
    pub model_url: Option<String>,
}

impl Default for Settings {
    /// The product's defaults (README: `[rate_limits]`, `[server]`).
    fn default() -> Self {
        Settings {
            workspace_per_minute: 120,
            workspace_burst: 30,
            user_per_minute: 10,
            user_burst: 5,
            overrides: Vec::new(),
            retrieval_gate: None,
            max_parallel: 8,
            model_url: None,
        }
    }
}

/// One `frontdesk serve` installation: binary, configuration and data directory.
pub struct Serve {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub listen: String,
    starts: usize,
}

/// The free loopback port the server will listen on (the same one across restarts).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

impl Serve {
    /// Writes the configuration into `dir` and prepares the data directory from `seed`.
    pub fn prepare(
        binary: &Path,
        dir: &Path,
        seed: &Path,
        models_dir: &Path,
        api_url: &str,
        settings: &Settings,
    ) -> anyhow::Result<Serve> {
        std::fs::create_dir_all(dir)?;
        let data_dir = dir.join("data");
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)?;
        }
        // Logs of an earlier run in the same directory would read as this run's.
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with("serve-") && name.ends_with(".log") {
                std::fs::remove_file(&path)?;
            }
        }
        copy_dir(seed, &data_dir).with_context(|| format!("copying the seed data from {}", seed.display()))?;
        let listen = format!("127.0.0.1:{}", free_port()?);
        let llm = match &settings.model_url {
            Some(url) => format!(
                "[llm]\ngenerator = \"openai\"\ncondense_with_llm = false\n\n[[llm.providers]]\nname = \"scripted\"\n\
                 base_url = {url:?}\nmodel = \"bench-scripted\"\napi_key = \"unused\"\nstream = false\nmax_retries = 0\n"
            ),
            None => "[llm]\ngenerator = \"extractive\"\n".to_string(),
        };
        let mut text = format!(
            "data_dir = {}\nmodels_dir = {}\n\n{llm}\n[rate_limits]\n\
             workspace_per_minute = {}\nworkspace_burst = {}\nuser_per_minute = {}\nuser_burst = {}\n",
            toml_path(&data_dir),
            toml_path(models_dir),
            settings.workspace_per_minute,
            settings.workspace_burst,
            settings.user_per_minute,
            settings.user_burst,
        );
        for (ws, per_minute, burst) in &settings.overrides {
            text.push_str(&format!(
                "\n[[rate_limits.overrides]]\nworkspace = {ws:?}\nper_minute = {per_minute}\nburst = {burst}\n"
            ));
        }
        if let Some(gate) = settings.retrieval_gate {
            text.push_str(&format!("\n[answering]\nretrieval_gate = {gate}\n"));
        }
        text.push_str(&format!(
            "\n[server]\nlisten = {listen:?}\nmax_parallel = {}\nhealth_cache_secs = 1\nadmin_token = {ADMIN_TOKEN:?}\n\n[slack]\n\
             signing_secret = {SIGNING_SECRET:?}\nbot_token = {:?}\napi_url = {api_url:?}\n",
            settings.max_parallel,
            super::slack_stub::BOT_TOKEN,
        ));
        let config = dir.join("frontdesk.toml");
        std::fs::write(&config, text)?;
        Ok(Serve { binary: binary.to_path_buf(), dir: dir.to_path_buf(), config, data_dir, listen, starts: 0 })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--config").arg(&self.config);
        c.env_remove("FRONTDESK_CONFIG");
        c
    }

    /// Runs a one-off `frontdesk` command (e.g. `policy set`) against this data directory.
    pub async fn run_cli(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = self.command().args(args).stdin(Stdio::null()).output().await?;
        if !out.status.success() {
            bail!("frontdesk {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Starts `frontdesk serve` and waits until `/healthz` answers.
    pub async fn start(&mut self, client: &reqwest::Client) -> anyhow::Result<Running> {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("serve-{}.log", self.starts)))?;
        let child = self
            .command()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let pid = child.id().context("the child has no pid")?;
        let started = Instant::now();
        let mut running = Running { child, pid, started };
        let health = format!("{}/healthz", self.base_url());
        loop {
            if let Ok(r) = client.get(&health).timeout(Duration::from_millis(500)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(status) = running.child.try_wait()? {
                bail!("frontdesk serve exited at start ({status}); see {}", self.dir.display());
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("frontdesk serve did not answer /healthz within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(running)
    }

    pub fn starts(&self) -> usize {
        self.starts
    }
}

/// A running `frontdesk serve`.
pub struct Running {
    child: Child,
    pub pid: u32,
    pub started: Instant,
}

impl Running {
    /// SIGKILL: no destructor, no flush, no goodbye.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, then waits for the process to stop on its own (it finishes or abandons
    /// deliveries within its 10 s grace).
    pub async fn terminate(mut self, patience: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let sent = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await?;
        anyhow::ensure!(sent.success(), "kill -TERM {} failed", self.pid);
        match tokio::time::timeout(patience, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                bail!("frontdesk serve did not stop within {} s of SIGTERM; killed", patience.as_secs())
            }
        }
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Resident memory in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

/// The server's admin token: `/readyz` shows the inbox's depth only to a caller that has it.
pub const ADMIN_TOKEN: &str = "serve-load-admin-token-only-for-this-bench-0001";

/// What `/readyz` says about the inbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    /// Accepted messages not yet answered.
    pub waiting: u64,
    /// Replies not yet delivered.
    pub replies: u64,
    pub dead_letters: u64,
}

/// Reads the inbox check of `/readyz`: "worker running; N waiting to be answered, M replies
/// waiting to be delivered, D dead letters". `None` when the server is down or the wording
/// changed (then the report says the depth was not exposed).
pub async fn inbox_depth(client: &reqwest::Client, base: &str) -> Option<Depth> {
    let r = client
        .get(format!("{base}/readyz"))
        .bearer_auth(ADMIN_TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let body: Value = r.json().await.ok()?;
    let detail = body["checks"].as_array()?.iter().find(|c| c["name"] == "inbox")?["detail"].as_str()?.to_string();
    parse_depth(&detail)
}

fn number_before(text: &str, marker: &str) -> Option<u64> {
    let end = text.find(marker)?;
    text[..end].rsplit(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty())?.parse().ok()
}

pub fn parse_depth(detail: &str) -> Option<Depth> {
    Some(Depth {
        waiting: number_before(detail, " waiting to be answered")?,
        replies: number_before(detail, " replies waiting to be delivered")?,
        dead_letters: number_before(detail, " dead letters").unwrap_or(0),
    })
}

/// Waits until the inbox is empty (no message waiting, no reply undelivered) on three reads in
/// a row, or `limit` passes. Returns how long it took, or `None` on time-out.
pub async fn drain(client: &reqwest::Client, base: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut empty_reads = 0;
    while started.elapsed() < limit {
        match inbox_depth(client, base).await {
            Some(d) if d.waiting == 0 && d.replies == 0 => empty_reads += 1,
            _ => empty_reads = 0,
        }
        if empty_reads >= 3 {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    None
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A data directory with the sample help centre ingested for `workspaces`, made once and
/// reused (each run copies it).
pub async fn seed(
    binary: &Path,
    work: &Path,
    models_dir: &Path,
    docs: &Path,
    workspaces: &[&str],
) -> anyhow::Result<PathBuf> {
    let seed = work.join(format!("seed-{}", workspaces.join("-")));
    let done = seed.join(".ingested");
    if done.exists() {
        return Ok(seed.join("data"));
    }
    if seed.exists() {
        std::fs::remove_dir_all(&seed)?;
    }
    std::fs::create_dir_all(seed.join("data"))?;
    let config = seed.join("frontdesk.toml");
    std::fs::write(
        &config,
        format!("data_dir = {}\nmodels_dir = {}\n", toml_path(&seed.join("data")), toml_path(models_dir)),
    )?;
    for ws in workspaces {
        let out = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--workspace", ws])
            .arg(docs)
            .stdin(Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "frontdesk ingest failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    std::fs::write(&done, b"")?;
    Ok(seed.join("data"))
}
