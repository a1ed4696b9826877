//! What a failing command tells its user: `error[<code>]: <message>` and an exit code that
//! says whose move it is, every code explained in the README.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Every code a `code()` method of frontdesk's errors can return, read from the source.
fn codes_in_source() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let method = regex::Regex::new(r"(?s)pub fn code\(&self\) -> &'static str \{(.*?)\n    \}\n").unwrap();
    let literal = regex::Regex::new(r#"=> "([^"]+)""#).unwrap();
    let mut codes = BTreeSet::new();
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for body in method.captures_iter(&text) {
            codes.extend(literal.captures_iter(&body[1]).map(|c| c[1].to_string()));
        }
    }
    codes
}

#[test]
fn every_error_code_is_snake_case_and_explained_in_the_readme() {
    let codes = codes_in_source();
    // The scan finds the codes it must (the configuration's, the server's, the command line's own).
    for known in ["config_invalid", "listen_failed", "usage", "llm_unavailable"] {
        assert!(codes.contains(known), "{known} not found in {codes:?}");
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme.split("## Error codes").nth(1).expect("README has an Error codes section");
    let table = table.split("\n## ").next().unwrap();
    let snake = regex::Regex::new(r"^[a-z]+(_[a-z]+)*$").unwrap();
    for code in &codes {
        assert!(snake.is_match(code), "{code:?} is not snake_case");
        assert!(table.contains(&format!("`{code}`")), "README's Error codes table does not explain `{code}`");
    }
}

fn frontdesk(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["--data-dir", &dir.join("data").display().to_string()])
        .args(args)
        .env_remove("FRONTDESK_CONFIG")
        .current_dir(dir)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_configuration_exits_2_with_its_code_and_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[retrieval]\nsemantic_ratio = 3.0\n\n[slak]\nbot_token = \"x\"\n").unwrap();
    let (code, stderr) = frontdesk(dir.path(), &["--config", &config.display().to_string(), "config", "check"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("error[config_invalid]: "), "{stderr}");
    assert!(stderr.contains("retrieval.semantic_ratio") && stderr.contains("slak"), "{stderr}");
}

#[test]
fn a_port_in_use_is_not_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = dir.path().join("frontdesk.toml");
    std::fs::write(&config, format!("[server]\nlisten = \"{}\"\n", taken.local_addr().unwrap())).unwrap();
    let (code, stderr) = frontdesk(dir.path(), &["--config", &config.display().to_string(), "serve"]);
    assert_eq!(code, Some(1), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error[")).expect("an error line");
    assert!(error.starts_with("error[listen_failed]: cannot listen on"), "{stderr}");
    // The cause is shown once, not once by the message and again as its source.
    assert_eq!(error.matches("in use").count(), 1, "{error}");
    drop(taken);
}
