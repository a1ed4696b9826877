//! The `frontdesk` binary as a child process: commands run to completion, `serve` started and
//! stopped, and the data store read back afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A local port nothing listens on (for `server.listen`).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A TOML string literal.
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Runs the binary to completion with `env` set and debug logging; returns (success, stdout +
/// stderr).
pub fn frontdesk_with(config: &Path, models: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("--config")
        .arg(config)
        .arg("--models-dir")
        .arg(models)
        .args(args)
        .envs(env.iter().copied())
        .env("FRONTDESK_LOG", "debug")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `frontdesk serve`, running; its log (stdout and stderr, debug level) goes to a file.
pub struct Serving {
    child: Child,
    log: PathBuf,
}

impl Serving {
    /// SIGTERM, then waits for the process to finish shutting down (it releases the store);
    /// returns the log.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Starts `frontdesk serve` and waits until `/healthz` answers on `base`.
pub async fn serve_binary(config: &Path, models: &Path, env: &[(&str, &str)], log: &Path, base: &str) -> Serving {
    let child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("--config")
        .arg(config)
        .arg("--models-dir")
        .arg(models)
        .arg("serve")
        .envs(env.iter().copied())
        .env("FRONTDESK_LOG", "debug")
        .stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::from(std::fs::File::options().append(true).open(log).unwrap()))
        .spawn()
        .unwrap();
    let serving = Serving { child, log: log.to_path_buf() };
    let http = reqwest::Client::new();
    for _ in 0..1500 {
        if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return serving;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let log = serving.stop();
    panic!("frontdesk serve did not come up on {base}: {log}");
}

/// Every record of every tree in the data store as text, and the keys of the conversations.
pub fn store_dump(data: &Path) -> (String, Vec<String>) {
    let store = frontdesk::store::Store::open(data).unwrap();
    let mut text = String::new();
    let mut conversations = Vec::new();
    for name in store.db().tree_names() {
        let tree = store.db().open_tree(&name).unwrap();
        let tree_name = String::from_utf8_lossy(&name).into_owned();
        for item in tree.iter() {
            let (k, v) = item.unwrap();
            text.push_str(&tree_name);
            text.push('\t');
            text.push_str(&String::from_utf8_lossy(&k));
            text.push('\t');
            text.push_str(&String::from_utf8_lossy(&v));
            text.push('\n');
            if tree_name == "conversations" {
                if let Some(key) = serde_json::from_slice::<serde_json::Value>(&v)
                    .ok()
                    .and_then(|c| c["key"].as_str().map(str::to_string))
                {
                    conversations.push(key);
                }
            }
        }
    }
    (text, conversations)
}
