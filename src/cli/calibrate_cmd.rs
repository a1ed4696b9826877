//! `frontdesk calibrate`: fits the confidence model on eval datasets, cross-validated by
//! dataset, and writes it as a model file the engine loads (`answering.confidence_model`).

use super::eval_run::run_open;
use super::out;
use super::{CalibrateArgs, Cli, CliError};
use crate::engine::confidence::ConfidenceModel;
use crate::eval::calibrate::{calibrate, fit_ranker, ranker_recall, samples_of, Fold, Options, Sample};
use crate::eval::record::CaseResult;
use crate::eval::Dataset;
use std::path::Path;

fn io(what: String) -> impl FnOnce(std::io::Error) -> CliError {
    super::commands::io(what)
}

/// Reads an earlier run's `cases.jsonl`; the dataset is named by the run's `report.json`.
fn read_run(dir: &Path) -> Result<(String, Vec<CaseResult>), CliError> {
    let report = dir.join("report.json");
    let text = std::fs::read_to_string(&report).map_err(io(format!("cannot read {}", report.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let name = json
        .get("dataset")
        .and_then(|d| d.as_str())
        .ok_or_else(|| CliError::Usage(format!("{} names no dataset", report.display())))?
        .to_string();
    let path = dir.join("cases.jsonl");
    let text = std::fs::read_to_string(&path).map_err(io(format!("cannot read {}", path.display())))?;
    let mut results = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        results.push(
            serde_json::from_str::<CaseResult>(line)
                .map_err(|e| CliError::Usage(format!("{} line {}: {e}", path.display(), i + 1)))?,
        );
    }
    Ok((name, results))
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn opt3(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into())
}

fn print_folds(folds: &[Fold]) {
    out::line("cross-validation by dataset (each scored by a model fitted without it):");
    out::line("  held out            cases  AUROC right/wrong  AUROC answerable  retrieval-only AUROC  coverage@2%  coverage@5%  coverage@10%  at its threshold: risk, coverage");
    for f in folds {
        out::line(format!(
            "  {:<18} {:>6}  {:>17}  {:>16}  {:>20}  {:>11}  {:>11}  {:>12}  {}, {} (t = {:.2})",
            f.report.held_out,
            f.report.cases,
            opt3(f.report.auroc_correct),
            opt3(f.report.auroc_answerable),
            opt3(f.auroc_correct_retrieval),
            pct(f.coverage_at_risk_2),
            pct(f.report.coverage_at_risk_5),
            pct(f.coverage_at_risk_10),
            f.risk_at_threshold.map(pct).unwrap_or_else(|| "-".into()),
            pct(f.coverage_at_threshold),
            f.model.recommended_threshold,
        ));
    }
}

pub async fn calibrate_cmd(cli: &Cli, args: &CalibrateArgs) -> Result<(), CliError> {
    if !(0.0..1.0).contains(&args.target) {
        return Err(CliError::Usage(format!("--target must be in [0, 1), not {}", args.target)));
    }
    if args.l2.is_nan() || args.l2 <= 0.0 {
        return Err(CliError::Usage(format!("--l2 must be above 0, not {}", args.l2)));
    }
    if args.dataset.len() + args.from_run.len() < 2 {
        return Err(CliError::Usage(
            "give at least two datasets (--dataset DIR or --from-run DIR): each is scored by a model fitted on the others"
                .into(),
        ));
    }
    let mut samples: Vec<Sample> = Vec::new();
    let mut runs: Vec<(String, Vec<CaseResult>)> = Vec::new();
    let mut add = |name: &str, results: &[CaseResult]| -> Result<(), CliError> {
        if samples.iter().any(|s| s.dataset == name) {
            return Err(CliError::Usage(format!("dataset {name} is given twice")));
        }
        let (s, missing) = samples_of(name, results);
        if missing > 0 {
            return Err(CliError::Usage(format!(
                "{name}: {missing} answered cases were recorded without features (a run of an older frontdesk?): run it again"
            )));
        }
        out::line(format!(
            "{name}: {} cases, {} answered with thresholds open, {} of them right",
            s.len(),
            s.iter().filter(|x| x.candidate).count(),
            s.iter().filter(|x| x.correct).count()
        ));
        samples.extend(s);
        Ok(())
    };
    for dir in &args.from_run {
        let (name, results) = read_run(dir)?;
        add(&name, &results)?;
        runs.push((name, results));
    }
    for root in &args.dataset {
        let dataset = Dataset::load(root)?;
        let (_, results) =
            run_open(cli, &dataset, args.generator, args.confidence_model.as_deref(), args.runs_out.as_deref()).await?;
        add(&dataset.name, &results)?;
        runs.push((dataset.name.clone(), results));
    }
    let opts = Options { l2: args.l2, target_risk: args.target };
    let (mut model, mut folds) = calibrate(&args.version, &samples, opts).map_err(CliError::Usage)?;
    print_folds(&folds);
    let (ranker, ranker_on) = if !args.fit_ranker_on.is_empty() {
        let mut chosen: Vec<&[CaseResult]> = Vec::new();
        for name in &args.fit_ranker_on {
            let run = runs
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| CliError::Usage(format!("--fit-ranker-on {name}: no such dataset among those given")))?;
            chosen.push(&run.1);
        }
        let ranker = fit_ranker(&chosen, args.l2)
            .ok_or_else(|| CliError::Usage("the ranker's datasets hold no gold chunks to fit on".into()))?;
        (Some(ranker), args.fit_ranker_on.clone())
    } else if let Some(path) = &args.confidence_model {
        let kept = ConfidenceModel::load(path)?;
        (kept.ranker, kept.ranker_fitted_on)
    } else {
        (None, Vec::new())
    };
    for m in std::iter::once(&mut model).chain(folds.iter_mut().map(|f| &mut f.model)) {
        m.ranker = ranker.clone();
        m.ranker_fitted_on = ranker_on.clone();
    }
    if let Some(r) = &ranker {
        out::line(format!(
            "feature ranker (fitted on {}): chunk-level recall@1 and @5 of the first {} chunks, retrieval order → reranked:",
            ranker_on.join(", "),
            crate::eval::runner::RANK_SAMPLES
        ));
        for (name, results) in &runs {
            if let Some(x) = ranker_recall(results, r) {
                out::line(format!(
                    "  {:<18} {:>4} cases  @1 {:.3} → {:.3}   @5 {:.3} → {:.3}{}",
                    name,
                    x.cases,
                    x.before_at_1,
                    x.after_at_1,
                    x.before_at_5,
                    x.after_at_5,
                    if ranker_on.contains(name) { "   (fitted on this one)" } else { "" }
                ));
            }
        }
    }
    if let Some(dir) = &args.folds_out {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        for f in &folds {
            let path = dir.join(format!("without-{}.json", f.report.held_out));
            std::fs::write(&path, serde_json::to_string_pretty(&f.model)? + "\n")
                .map_err(io(format!("cannot write {}", path.display())))?;
        }
        out::line(format!(
            "fold models (to score a held-out dataset with `eval --confidence-model`): {}",
            dir.display()
        ));
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&model)? + "\n")
        .map_err(io(format!("cannot write {}", args.out.display())))?;
    out::line(format!(
        "model {} fitted on {}: recommended threshold {:.2} (risk ≤ {} on its own data); written to {}",
        model.version,
        model.fitted_on.join(", "),
        model.recommended_threshold,
        pct(model.target_risk),
        args.out.display()
    ));
    Ok(())
}
