//! Running every case of a dataset through the engine with its thresholds open: what
//! `frontdesk eval` scores and `frontdesk calibrate` fits on.

use super::eval_cmd::ingest_dataset;
use super::out;
use super::{Cli, CliError};
use crate::config::{Config, GeneratorKind};
use crate::engine::Engine;
use crate::eval::record::CaseResult;
use crate::eval::runner::{self, Thresholds};
use crate::eval::Dataset;
use crate::llm::Llm;
use std::path::Path;
use std::sync::Arc;

/// The configuration an eval run uses: the retrieval gate open (decisions are taken
/// afterwards, from the recorded confidences) and no rate limits.
pub fn open_config(mut config: Config) -> Config {
    config.answering.retrieval_gate = Some(0.0);
    config.rate_limits = crate::ratelimit::RateLimitConfig {
        workspace_per_minute: u32::MAX / 2,
        workspace_burst: u32::MAX / 2,
        user_per_minute: u32::MAX / 2,
        user_burst: u32::MAX / 2,
        overrides: Vec::new(),
    };
    config
}

/// Ingests the dataset and runs every case; returns the engine (for its names and prompts)
/// and one record per case, decided at `thresholds`, graded by `judge` when one is given.
pub async fn run_cases(
    config: &Config,
    dataset: &Dataset,
    generator: Option<GeneratorKind>,
    search_mode: crate::retrieval::SearchMode,
    thresholds: Thresholds,
    judge: Option<&dyn Llm>,
) -> Result<(Engine, Vec<CaseResult>), CliError> {
    let config = open_config(config.clone());
    let kb = Arc::new(crate::runtime::open_knowledge(&config)?);
    let ws = ingest_dataset(&kb, dataset).await?;
    let cfg = config.clone();
    let kb2 = kb.clone();
    let mut engine = tokio::task::spawn_blocking(move || Engine::build(&cfg, kb2, generator))
        .await
        .map_err(|e| CliError::Failed(format!("engine start-up stopped: {e}")))??;
    engine.search_mode = search_mode;
    runner::open_thresholds(&engine.policies, &ws).map_err(|e| CliError::Usage(e.to_string()))?;
    let run_id = format!("eval-{}", time::OffsetDateTime::now_utc().unix_timestamp_nanos());
    let bar = out::progress_bar(dataset.cases.len() as u64, "cases");
    let mut results: Vec<CaseResult> = Vec::with_capacity(dataset.cases.len());
    for case in &dataset.cases {
        let mut r = runner::run_case(&engine, &ws, case, thresholds, &run_id)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        if let Some(j) = judge {
            runner::judge(j, &engine.prompts, &engine, &mut r).await;
        }
        results.push(r);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((engine, results))
}

/// Runs a dataset for calibration (extractive unless `generator` says otherwise). With `save`,
/// the records are also written to `save/<dataset>/cases.jsonl` (with a `report.json` naming the
/// dataset), so a later `calibrate --from-run` can reuse them.
pub async fn run_open(
    cli: &Cli,
    dataset: &Dataset,
    generator: Option<GeneratorKind>,
    model: Option<&Path>,
    save: Option<&Path>,
) -> Result<(String, Vec<CaseResult>), CliError> {
    let mut config = cli.load_config()?;
    if let Some(m) = model {
        config.answering.confidence_model = Some(m.to_path_buf());
    }
    let thresholds = Thresholds { answer: 0.0, gate: 0.0 };
    let (engine, results) =
        run_cases(&config, dataset, generator, crate::retrieval::SearchMode::Hybrid, thresholds, None).await?;
    if let Some(dir) = save {
        let dir = dir.join(&dataset.name);
        std::fs::create_dir_all(&dir).map_err(super::commands::io(format!("cannot create {}", dir.display())))?;
        let mut lines = String::new();
        for r in &results {
            lines.push_str(&serde_json::to_string(r)?);
            lines.push('\n');
        }
        let path = dir.join("cases.jsonl");
        std::fs::write(&path, lines).map_err(super::commands::io(format!("cannot write {}", path.display())))?;
        let report = serde_json::json!({ "dataset": dataset.name, "generator": engine.generator.name() });
        let path = dir.join("report.json");
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .map_err(super::commands::io(format!("cannot write {}", path.display())))?;
    }
    Ok((engine.generator.name(), results))
}
