//! `frontdesk eval`: runs a dataset through the engine and scores it; `eval diff` compares
//! two runs; `--retrieval-only` compares retrieval modes quickly.

use super::commands::{io, run_ingest, workspace};
use super::out;
use super::{Cli, CliError, EvalAction, EvalArgs};
use crate::channel::{ChannelId, WorkspaceId};
use crate::eval::retrieval::{doc_ranking, first_gold_rank, RetrievalScores};
use crate::eval::runner::Thresholds;
use crate::eval::{curve, gates, report, Dataset};
use crate::knowledge::ingest::IngestSource;
use crate::knowledge::KnowledgeBase;
use crate::policy::{PolicyStore, Scope};
use crate::retrieval::{Filters, SearchMode};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The retrieval scores of one dataset, per mode.
#[derive(Debug, Serialize)]
pub struct RetrievalReport {
    pub dataset: String,
    pub workspace: String,
    pub semantic_ratio: f32,
    pub modes: Vec<(SearchMode, RetrievalScores)>,
}

/// Ingests a dataset into its own workspace (`eval-<name>`), reusing what is up to date.
pub async fn ingest_dataset(kb: &KnowledgeBase, dataset: &Dataset) -> Result<WorkspaceId, CliError> {
    let ws = workspace(&format!("eval-{}", dataset.folder))?;
    let docs = run_ingest(kb, &IngestSource::Paths(vec![dataset.docs_dir.clone()]), &ws, None, true).await?;
    let mut skipped = docs.skipped.len();
    if let Some(t) = &dataset.tickets {
        skipped += run_ingest(kb, &IngestSource::Tickets(t.clone()), &ws, None, true).await?.skipped.len();
    }
    out::line(format!(
        "{}: {} documents ({} embedded now, {} skipped)",
        dataset.name, docs.documents_seen, docs.embedded, skipped
    ));
    Ok(ws)
}

/// Scores retrieval for each mode; the query vector is computed once per case.
pub async fn score_retrieval(
    kb: &KnowledgeBase,
    ws: &WorkspaceId,
    dataset: &Dataset,
    modes: &[SearchMode],
) -> Result<Vec<(SearchMode, RetrievalScores)>, CliError> {
    let cases: Vec<_> = dataset.cases.iter().filter(|c| !c.source_doc_ids.is_empty()).collect();
    let mut ranks: Vec<Vec<Option<usize>>> = vec![Vec::with_capacity(cases.len()); modes.len()];
    let bar = out::progress_bar(cases.len() as u64, "searching");
    for case in &cases {
        let vector = kb.embed_query(&case.question).await.map_err(crate::knowledge::SearchError::from)?;
        for (m, mode) in modes.iter().enumerate() {
            let mut request = kb.request(ws.clone(), &case.question, *mode, 60, Filters::default());
            request.vector = Some(vector.clone());
            let hits = kb.search(request).await?;
            let ranking = doc_ranking(hits.iter().map(|h| h.doc_id.as_str()));
            ranks[m].push(first_gold_rank(&ranking, &case.source_doc_ids));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(modes.iter().copied().zip(ranks.iter().map(|r| RetrievalScores::from_ranks(r))).collect())
}

async fn dump_candidates(kb: &KnowledgeBase, ws: &WorkspaceId, dataset: &Dataset, path: &Path) -> Result<(), CliError> {
    let mut lines = Vec::new();
    for case in dataset.cases.iter().filter(|c| !c.source_doc_ids.is_empty()) {
        let hits =
            kb.search(kb.request(ws.clone(), &case.question, SearchMode::Hybrid, 200, Filters::default())).await?;
        let cands: Vec<_> = hits.iter().map(|h| (h.doc_id.as_str(), h.keyword_score, h.semantic_score)).collect();
        lines.push(serde_json::to_string(
            &serde_json::json!({"id": case.id, "gold": case.source_doc_ids, "candidates": cands}),
        )?);
    }
    std::fs::write(path, lines.join("\n")).map_err(io(format!("cannot write {}", path.display())))?;
    Ok(())
}

async fn retrieval_only(cli: &Cli, args: &EvalArgs, dataset: &Dataset) -> Result<(), CliError> {
    let config = cli.load_config()?;
    let kb = crate::runtime::open_knowledge(&config)?;
    let ws = ingest_dataset(&kb, dataset).await?;
    let modes = [SearchMode::Keyword, SearchMode::Vector, SearchMode::Hybrid];
    let scores = score_retrieval(&kb, &ws, dataset, &modes).await?;
    if let Some(path) = &args.dump_candidates {
        dump_candidates(&kb, &ws, dataset, path).await?;
    }
    out::line(format!("retrieval on {} ({} cases with gold documents, doc-level):", dataset.name, scores[0].1.cases));
    out::line("  mode      recall@1  recall@5  recall@10  MRR");
    for (mode, s) in &scores {
        out::line(format!(
            "  {:<8}  {:>8.3}  {:>8.3}  {:>9.3}  {:.3}",
            format!("{mode:?}").to_lowercase(),
            s.recall_at_1,
            s.recall_at_5,
            s.recall_at_10,
            s.mrr
        ));
    }
    let report = RetrievalReport {
        dataset: dataset.name.clone(),
        workspace: ws.to_string(),
        semantic_ratio: config.retrieval.semantic_ratio,
        modes: scores,
    };
    let out_dir = args.out.clone().unwrap_or_else(|| PathBuf::from("eval-out").join(&dataset.name));
    std::fs::create_dir_all(&out_dir).map_err(io(format!("cannot create {}", out_dir.display())))?;
    let path = out_dir.join("retrieval.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .map_err(io(format!("cannot write {}", path.display())))?;
    out::line(format!("report: {}", path.display()));
    Ok(())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn judge_llm(config: &crate::config::Config, name: &str) -> Result<Arc<dyn crate::llm::Llm>, CliError> {
    if name == "local" {
        let llm = crate::llm::local::LocalLlm::load_from_models_dir(&config.models_dir, Default::default())
            .map_err(|e| CliError::Usage(format!("--judge local: {e}")))?;
        return Ok(Arc::new(llm));
    }
    let provider = config.llm.providers.iter().find(|p| p.name == name).ok_or_else(|| {
        CliError::Usage(format!("--judge {name:?}: no provider of that name in [[llm.providers]] (or use `local`)"))
    })?;
    let llm = crate::llm::openai::OpenAiProvider::new(provider, crate::llm::openai::build_client())
        .map_err(|e| CliError::Usage(format!("--judge {name}: {e}")))?;
    Ok(Arc::new(llm))
}

pub async fn eval(cli: &Cli, args: &EvalArgs) -> Result<(), CliError> {
    if let Some(EvalAction::Diff { before, after }) = &args.action {
        let changes = report::diff(before, after).map_err(|e| CliError::Usage(e.to_string()))?;
        out::line(report::render_diff(&changes));
        return Ok(());
    }
    let Some(root) = &args.dataset else {
        return Err(CliError::Usage("--dataset is required (a folder with docs/ and cases.jsonl)".into()));
    };
    let dataset = Dataset::load(root)?;
    if args.retrieval_only {
        return retrieval_only(cli, args, &dataset).await;
    }
    if !(0.0..=1.0).contains(&args.target) {
        return Err(CliError::Usage(format!("--target must be between 0 and 1, not {}", args.target)));
    }
    let started = std::time::Instant::now();
    let started_at = now_rfc3339();
    let mut config = cli.load_config()?;
    // A model file given here brings its own recommended threshold (a fold model's was chosen
    // without the dataset it scores); the built-in one's is the policy default.
    let mut default_threshold = crate::policy::DEFAULT_THRESHOLD;
    if let Some(m) = &args.confidence_model {
        config.answering.confidence_model = Some(m.clone());
    }
    let model = match &config.answering.confidence_model {
        Some(m) => crate::engine::confidence::ConfidenceModel::load(m),
        None => crate::engine::confidence::ConfidenceModel::shipped(),
    }?;
    if args.confidence_model.is_some() {
        default_threshold = model.recommended_threshold;
    }
    let thresholds = Thresholds {
        answer: args.threshold.unwrap_or(default_threshold),
        gate: config.answering.retrieval_gate.unwrap_or(model.recommended_gate),
    };
    let judge = match &args.judge {
        Some(name) => Some(judge_llm(&config, name)?),
        None => None,
    };
    // The engine runs with thresholds open and no rate limits; decisions are taken afterwards.
    let (engine, results) =
        super::eval_run::run_cases(&config, &dataset, args.generator, args.retrieval, thresholds, judge.as_deref())
            .await?;

    let rep = report::Report::build(
        &dataset.name,
        &engine.generator.name(),
        &format!("{:?}", args.retrieval).to_lowercase(),
        engine.prompts.tags(),
        thresholds.answer,
        thresholds.gate,
        // The flag is an f32: widened as is, 0.02 would read 0.0199999995 (and print as 2.00%).
        (f64::from(args.target) * 1e6).round() / 1e6,
        &results,
        &started_at,
        started.elapsed().as_secs_f64(),
    );
    let recommended = rep.recommended_threshold;
    let out_dir = args.out.clone().unwrap_or_else(|| PathBuf::from("eval-out").join(&dataset.name));
    report::write_all(&out_dir, &rep, &results)
        .map_err(io(format!("cannot write the report into {}", out_dir.display())))?;
    let json = serde_json::to_value(&rep)?;
    print_headline(&json, &rep, &out_dir);

    if let Some(target) = &args.write_threshold {
        let Some(point) = &recommended else {
            return Err(CliError::Usage(format!(
                "no threshold keeps wrong answers under {:.1}%: nothing was written",
                args.target * 100.0
            )));
        };
        write_threshold(&config, target, curve::settable_threshold(point.threshold))?;
    }
    if args.gate {
        let gates = gates::load(&args.gates).map_err(|e| CliError::Usage(e.to_string()))?;
        let failures = gates::check(&gates, &dataset.name, &json);
        if !failures.is_empty() {
            let list: Vec<String> = failures.iter().map(|f| format!("  - {f}")).collect();
            return Err(CliError::Gate(format!(
                "{} gate(s) failed for {}:\n{}",
                failures.len(),
                dataset.name,
                list.join("\n")
            )));
        }
        out::line(format!("all gates passed for {}", dataset.name));
    }
    Ok(())
}

fn get(json: &serde_json::Value, path: &str) -> String {
    let mut v = json;
    for part in path.split('.') {
        match v.get(part) {
            Some(x) => v = x,
            None => return "-".into(),
        }
    }
    if let Some(n) = v.as_u64() {
        return n.to_string();
    }
    match v.as_f64() {
        Some(f) => format!("{f:.3}"),
        None if v.is_null() => "n/a".into(),
        None => v.to_string(),
    }
}

/// A figure and its interval (the sibling `<path>_ci`): `0.043 [0.021, 0.071]`.
fn get_ci(json: &serde_json::Value, path: &str) -> String {
    let value = gates::lookup(json, path).and_then(serde_json::Value::as_f64);
    let ci = gates::lookup(json, &format!("{path}_ci"))
        .and_then(serde_json::Value::as_array)
        .and_then(|a| Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?]));
    report::with_ci(value, ci)
}

fn print_headline(json: &serde_json::Value, rep: &report::Report, out_dir: &Path) {
    out::line(format!(
        "{}: {} cases, generator {}, retrieval {}, threshold {:.2} (gate {:.2})",
        rep.dataset,
        get(json, "cases"),
        rep.generator,
        rep.retrieval_mode,
        rep.threshold,
        rep.gate
    ));
    let d = &rep.metrics.decisions;
    out::line(format!(
        "  risk        {}  ({} of {} answers wrong)",
        get_ci(json, "decisions.risk"),
        d.wrong_answers,
        d.answered
    ));
    out::line(format!(
        "  coverage    {}  ({} of {} questions answered)",
        get_ci(json, "decisions.coverage"),
        d.answered,
        get(json, "cases")
    ));
    out::line(format!("  resolution  {}", get_ci(json, "decisions.resolution_rate")));
    out::line(format!(
        "  confidence  AUROC answerable-vs-not {}  right-vs-wrong {}  (score-decided cases)",
        get_ci(json, "confidence.auroc"),
        get_ci(json, "confidence.auroc_correct")
    ));
    out::line(format!("  AURC        {}", get_ci(json, "selective.aurc")));
    let s = &rep.metrics.selective;
    let at = |t: Option<f32>| t.map_or_else(|| "none".to_string(), |t| format!("t={t:.3}"));
    out::line(format!(
        "  coverage at risk  <=2% {} ({})  <=5% {} ({})  <=10% {} ({})",
        get_ci(json, "selective.coverage_at_risk_2"),
        at(s.threshold_at_risk_2),
        get_ci(json, "selective.coverage_at_risk_5"),
        at(s.threshold_at_risk_5),
        get_ci(json, "selective.coverage_at_risk_10"),
        at(s.threshold_at_risk_10)
    ));
    out::line(format!(
        "  rules       {} hand-offs  precision {}  recall {} (of expected hand-offs)",
        get(json, "rules.count"),
        get(json, "rules.precision"),
        get(json, "rules.recall")
    ));
    out::line(format!(
        "  also        wrong answers / all questions {}  escalation recall {}",
        get_ci(json, "decisions.wrong_answer_rate"),
        get(json, "decisions.escalation_recall")
    ));
    out::line(format!(
        "  retrieval   recall@1 {}  recall@5 {}  recall@10 {}  MRR {}",
        get(json, "retrieval.recall_at_1"),
        get(json, "retrieval.recall_at_5"),
        get(json, "retrieval.recall_at_10"),
        get(json, "retrieval.mrr")
    ));
    out::line(format!(
        "  answers     token F1 {}  ROUGE-L {}  faithfulness {}",
        get(json, "answers.token_f1"),
        get(json, "answers.rouge_l"),
        get(json, "answers.faithfulness")
    ));
    out::line(format!("  latency     p50 {} ms  p95 {} ms", get(json, "latency_ms.p50"), get(json, "latency_ms.p95")));
    match &rep.recommended_threshold {
        Some(p) => {
            // What the rounded threshold people type in answers, not the exact one it came from.
            let shown = curve::settable_threshold(p.threshold);
            let coverage = curve::point_at(&rep.curve, shown).map_or(0.0, |q| q.coverage);
            out::line(format!(
                "  to keep wrong answers under {:.1}% of all questions: confidence_threshold = {shown:.2}, answering \
                 {:.0}% of questions",
                rep.target_wrong_rate * 100.0,
                coverage * 100.0
            ))
        }
        None => out::line(format!(
            "  no threshold keeps wrong answers under {:.1}% of all questions",
            rep.target_wrong_rate * 100.0
        )),
    }
    out::line(format!("  report: {}", out_dir.join("report.md").display()));
}

fn write_threshold(config: &crate::config::Config, target: &str, threshold: f32) -> Result<(), CliError> {
    let (ws, channel) = match target.split_once(':') {
        Some((w, c)) => (w, Some(c)),
        None => (target, None),
    };
    let ws: WorkspaceId = workspace(ws)?;
    let scope = match channel {
        Some(c) => Scope::Channel(ChannelId::new(c).map_err(|e| CliError::Usage(format!("--write-threshold: {e}")))?),
        None => Scope::Workspace,
    };
    let store =
        crate::store::Store::open_with(&config.data_dir, &config.store).map_err(crate::runtime::SetupError::from)?;
    let policies = PolicyStore::open(&store).map_err(crate::runtime::SetupError::from)?;
    let pairs = vec![("confidence_threshold".to_string(), format!("{threshold:.2}"))];
    match policies.set(&ws, &scope, &pairs).map_err(crate::runtime::SetupError::from)? {
        Ok(_) => {
            out::line(format!("wrote confidence_threshold = {threshold:.3} into the policy of {target}"));
            Ok(())
        }
        Err(errors) => Err(CliError::Usage(format!("{errors:?}"))),
    }
}
