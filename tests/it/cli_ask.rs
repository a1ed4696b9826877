//! The command line end to end on the sample help centre, with the real embedding model:
//! `frontdesk ingest` then `frontdesk ask --json` answers an in-docs question citing the right
//! article, hands off an out-of-docs one, and hands off a request for a person.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

const ARTICLES: &[&str] =
    &["billing-free-trial", "billing-refunds-and-credits", "api-error-codes-client-errors", "integrations-slack"];

fn frontdesk(data: &Path, models: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("--data-dir")
        .arg(data)
        .arg("--models-dir")
        .arg(models)
        .args(args)
        .env_remove("FRONTDESK_CONFIG")
        .current_dir(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ask(data: &Path, models: &Path, question: &str) -> serde_json::Value {
    let (ok, stdout, stderr) = frontdesk(data, models, &["ask", "--workspace", "acme", "--json", question]);
    assert!(ok, "ask failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn ask_answers_from_the_docs_and_hands_off_otherwise() {
    let model = frontdesk::testing::ensure_model(&frontdesk::models::MINILM).expect("the embedding model");
    let models = model.parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("evals/tallyhawk/docs");
    for a in ARTICLES {
        std::fs::copy(sample.join(format!("{a}.md")), docs.join(format!("{a}.md"))).unwrap();
    }
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (ok, stdout, stderr) = frontdesk(&data, &models, &["ingest", "--workspace", "acme", docs.to_str().unwrap()]);
    assert!(ok, "ingest failed: {stderr}");
    assert!(stdout.contains("4 new"), "{stdout}");

    let a = ask(&data, &models, "How long is the free trial?");
    assert_eq!(a["decision"], "answer", "{a}");
    assert_eq!(a["reason"], "answered");
    assert_eq!(a["citations"][0]["doc_id"], "billing-free-trial", "{a}");
    assert!(a["answer"].as_str().unwrap().contains("14-day"), "{a}");
    let c = a["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&c));
    assert!(a["trace_id"].as_str().is_some_and(|t| !t.is_empty()));

    let b = ask(&data, &models, "Do you sponsor marathon runners in Lisbon?");
    assert_eq!(b["decision"], "escalate", "{b}");
    assert!(matches!(b["reason"].as_str(), Some("weak_retrieval" | "model_unsure")), "{b}");

    let h = ask(&data, &models, "can I talk to a person?");
    assert_eq!((h["decision"].as_str(), h["reason"].as_str()), (Some("escalate"), Some("asked_for_human")), "{h}");

    // The turn can be inspected afterwards.
    let (ok, stdout, _) = frontdesk(&data, &models, &["trace", a["trace_id"].as_str().unwrap()]);
    assert!(ok && stdout.contains("answered") && stdout.contains("retrieve"), "{stdout}");
}
