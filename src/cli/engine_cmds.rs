//! Commands that run the engine: `ask`, `chat`, `policy`, `trace`.

use super::out;
use super::{AskArgs, ChatArgs, Cli, CliError, PolicyAction, TraceArgs};
use crate::channel::{ChannelId, ConversationKey, WorkspaceId};
use crate::conversation::{cli_inbound, unique_id};
use crate::engine::{Engine, TurnOutcome};
use crate::eval::Turn;
use crate::policy::{PolicyStore, Scope, POLICY_KEYS};
use crate::runtime::open_knowledge;
use crate::trace::{Decision, Trace};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

fn id<T: std::str::FromStr<Err = crate::channel::ids::InvalidId>>(flag: &str, raw: &str) -> Result<T, CliError> {
    raw.parse::<T>().map_err(|e| CliError::Usage(format!("{flag}: {e}")))
}

/// Builds the engine the configuration describes.
pub async fn open_engine(
    cli: &Cli,
    generator: Option<crate::config::GeneratorKind>,
) -> Result<(crate::config::Config, Arc<Engine>), CliError> {
    let config = cli.load_config()?;
    let kb = Arc::new(open_knowledge(&config)?);
    let cfg = config.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::build(&cfg, kb, generator))
        .await
        .map_err(|e| CliError::Failed(format!("engine start-up stopped: {e}")))??;
    Ok((config, Arc::new(engine)))
}

fn read_history(path: &Path) -> Result<Vec<Turn>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| CliError::Io { what: format!("cannot read {}", path.display()), source })?;
    let bad = |e: serde_json::Error| {
        CliError::Usage(format!(
            "--history {}: expected a JSON array of {{\"role\": \"user\"|\"agent\", \"text\": ...}}: {e}",
            path.display()
        ))
    };
    let turns: Vec<Turn> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).map_err(bad)?
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(bad)?
    };
    if let Some(t) = turns.iter().find(|t| t.role != "user" && t.role != "agent") {
        return Err(CliError::Usage(format!(
            "--history {}: role must be \"user\" or \"agent\", not {:?}",
            path.display(),
            t.role
        )));
    }
    Ok(turns)
}

/// The JSON printed by `frontdesk ask --json`.
#[derive(Debug, Serialize)]
pub struct AskJson {
    pub decision: &'static str,
    pub answer: Option<String>,
    pub citations: Vec<crate::channel::Citation>,
    pub confidence: f32,
    pub reason: String,
    pub trace_id: Option<String>,
    /// What the customer is told (the answer, or the handoff message).
    pub reply: Option<String>,
}

impl AskJson {
    pub fn from_outcome(o: &TurnOutcome) -> AskJson {
        AskJson {
            decision: match o.decision {
                Decision::Answer => "answer",
                Decision::Escalate | Decision::Ignore => "escalate",
            },
            answer: o.answer.clone(),
            citations: o.citations.clone(),
            confidence: o.confidence,
            reason: o.reason.code(),
            trace_id: o.trace.as_ref().map(|t| t.trace_id.clone()),
            reply: o.outbound.first().map(|m| m.text.clone()),
        }
    }
}

pub fn print_outcome(o: &TurnOutcome) {
    match o.decision {
        Decision::Answer => {
            out::line(o.answer.clone().unwrap_or_default());
            if !o.citations.is_empty() {
                out::line("");
                out::line("Sources:");
                for (i, c) in o.citations.iter().enumerate() {
                    out::line(format!(
                        "  [{}] {}{}",
                        i + 1,
                        c.title,
                        c.url.as_deref().map(|u| format!(" — {u}")).unwrap_or_default()
                    ));
                }
            }
        }
        Decision::Escalate | Decision::Ignore => {
            if let Some(m) = o.outbound.first() {
                out::line(&m.text);
            }
        }
    }
    out::line(format!(
        "({}: {}, confidence {:.2}{})",
        match o.decision {
            Decision::Answer => "answer",
            Decision::Escalate => "escalate",
            Decision::Ignore => "no reply",
        },
        o.reason.code(),
        o.confidence,
        o.trace.as_ref().map(|t| format!(", trace {}", t.trace_id)).unwrap_or_default()
    ));
}

pub async fn ask(cli: &Cli, args: &AskArgs) -> Result<(), CliError> {
    let (_, engine) = open_engine(cli, args.generator).await?;
    let ws: WorkspaceId = id("--workspace", &args.workspace)?;
    let channel: ChannelId = id("--channel", &args.channel)?;
    let conversation: ConversationKey =
        id("--conversation", &args.conversation.clone().unwrap_or_else(|| unique_id("ask")))?;
    let inbound = cli_inbound(&ws, &channel, &conversation, &args.author, &args.question)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(path) = &args.history {
        let history = read_history(path)?;
        engine
            .conversations
            .seed_history(&inbound, history.iter().map(|t| (t.speaker(), t.text.as_str())))
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    let outcome = engine.handle(&inbound).await;
    if args.json {
        out::json(&AskJson::from_outcome(&outcome))?;
    } else {
        print_outcome(&outcome);
    }
    Ok(())
}

pub async fn chat(cli: &Cli, args: &ChatArgs) -> Result<(), CliError> {
    use tokio::io::AsyncBufReadExt;
    let (_, engine) = open_engine(cli, args.generator).await?;
    let ws: WorkspaceId = id("--workspace", &args.workspace)?;
    let channel: ChannelId = id("--channel", &args.channel)?;
    let mut conversation: ConversationKey = id("conversation", &unique_id("chat"))?;
    out::line(format!(
        "Chatting with frontdesk in workspace {ws}. Type a question; /reset starts a new conversation, /quit leaves."
    ));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        out::prompt("you> ");
        let Some(line) = lines
            .next_line()
            .await
            .map_err(|source| CliError::Io { what: "cannot read the terminal".into(), source })?
        else {
            break;
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                conversation = id("conversation", &unique_id("chat"))?;
                out::line("(new conversation)");
                continue;
            }
            _ => {}
        }
        let inbound = cli_inbound(&ws, &channel, &conversation, &args.author, line)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        // Only the decided outcome is shown, as a customer would see it: nothing of an answer
        // appears before its checks have passed.
        let outcome = engine.handle(&inbound).await;
        if outcome.decision == Decision::Ignore && outcome.outbound.is_empty() {
            out::line("(a person from the support team owns this conversation now; the bot stays quiet — /reset to start over)");
            continue;
        }
        out::prompt("bot> ");
        print_outcome(&outcome);
    }
    Ok(())
}

fn print_policy_layer(scope: &str, layer: &crate::policy::PolicyLayer) -> Result<(), CliError> {
    let v = serde_json::to_value(layer)?;
    let shown = if scope == "*" { "workspace defaults".to_string() } else { format!("channel {scope}") };
    out::line(format!(
        "{shown}: {}",
        if v.as_object().is_some_and(|o| o.is_empty()) { "(nothing set)".into() } else { v.to_string() }
    ));
    Ok(())
}

pub async fn policy(cli: &Cli, action: &PolicyAction) -> Result<(), CliError> {
    let config = cli.load_config()?;
    let store =
        crate::store::Store::open_with(&config.data_dir, &config.store).map_err(crate::runtime::SetupError::from)?;
    let policies = PolicyStore::open(&store).map_err(crate::runtime::SetupError::from)?;
    let scope_of = |channel: &Option<String>| -> Result<Scope, CliError> {
        Ok(match channel {
            Some(c) => Scope::Channel(id("--channel", c)?),
            None => Scope::Workspace,
        })
    };
    match action {
        PolicyAction::Set { workspace, channel, pairs } => {
            let ws: WorkspaceId = id("--workspace", workspace)?;
            let scope = scope_of(channel)?;
            let mut parsed = Vec::new();
            for p in pairs {
                let Some((k, v)) = p.split_once('=') else {
                    return Err(CliError::Usage(format!(
                        "{p:?}: expected key=value (keys: {})",
                        POLICY_KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                    )));
                };
                parsed.push((k.trim().to_string(), v.trim().to_string()));
            }
            match policies.set(&ws, &scope, &parsed).map_err(crate::runtime::SetupError::from)? {
                Ok(layer) => {
                    out::line("saved; it applies from the next message");
                    print_policy_layer(channel.as_deref().unwrap_or("*"), &layer)?;
                }
                Err(errors) => {
                    let list: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
                    return Err(CliError::Usage(format!("nothing was saved:\n{}", list.join("\n"))));
                }
            }
        }
        PolicyAction::Get { workspace, channel, json } => {
            let ws: WorkspaceId = id("--workspace", workspace)?;
            let ch: ChannelId = id("--channel", channel)?;
            let effective = policies.effective(&ws, &ch).map_err(crate::runtime::SetupError::from)?;
            if *json {
                out::json(&effective)?;
            } else {
                out::line(format!("policy in force for channel {ch} of workspace {ws}:"));
                let v = serde_json::to_value(&effective)?;
                if let Some(map) = v.as_object() {
                    for (k, val) in map {
                        out::line(format!("  {k:<26} {val}"));
                    }
                }
            }
        }
        PolicyAction::List { workspace } => {
            let ws: WorkspaceId = id("--workspace", workspace)?;
            let layers = policies.list(&ws).map_err(crate::runtime::SetupError::from)?;
            if layers.is_empty() {
                out::line(format!("workspace {ws} uses the built-in defaults everywhere"));
            }
            for (scope, layer) in layers {
                print_policy_layer(&scope, &layer)?;
            }
            out::line("keys:");
            for (k, what) in POLICY_KEYS {
                out::line(format!("  {k:<26} {what}"));
            }
        }
    }
    Ok(())
}

fn print_trace(t: &Trace) {
    out::line(format!(
        "turn {} — {} ({}), confidence {:.2}",
        t.trace_id,
        t.decision.map(|d| format!("{d:?}").to_lowercase()).unwrap_or_default(),
        t.reason,
        t.confidence
    ));
    out::line(format!("  question:   {}", t.question));
    if !t.condensed_question.is_empty() && t.condensed_question != t.question {
        out::line(format!("  understood: {} ({})", t.condensed_question, t.condense));
    }
    let stages: Vec<String> = t.stages.iter().map(|s| format!("{} {:.1} ms", s.name, s.ms)).collect();
    out::line(format!("  stages:     {}", stages.join(", ")));
    if t.waited_ms > 0 {
        out::line(format!("  waited:     {} ms in the inbox for a turn slot", t.waited_ms));
    }
    if let Some(r) = t.retrieval_confidence {
        out::line(format!(
            "  retrieval confidence {r:.2} (gate), policy {} threshold {:.2}",
            t.policy_mode, t.threshold
        ));
    }
    for (i, h) in t.hits.iter().enumerate() {
        out::line(format!(
            "    {}. {:.3} kw {:.2} sem {:.3}  {} [{}]",
            i + 1,
            h.fused_score,
            h.keyword_score,
            h.semantic_score,
            h.title,
            h.chunk_id
        ));
    }
    if let Some(g) = &t.generator {
        out::line(format!(
            "  generator:  {g}{}{}; tokens {} in / {} out; cost ${:.5}; attempts {}",
            t.model.as_deref().map(|m| format!(", model {m}")).unwrap_or_default(),
            t.prompt.as_deref().map(|p| format!(", prompt {p}")).unwrap_or_default(),
            t.tokens_in,
            t.tokens_out,
            t.cost_usd,
            t.llm_attempts
        ));
    }
    if let Some(v) = &t.verification {
        out::line(format!(
            "  verified:   citations {:?} (invalid {:?}), support mean {:.2} min {:.2}",
            v.valid_citations, v.invalid_citations, v.mean_support, v.min_support
        ));
    }
    if let Some(a) = &t.answer {
        out::line(format!("  answer:     {a}"));
    }
    if let Some(f) = t.feedback {
        out::line(format!("  feedback:   {}", if f { "helpful" } else { "not helpful" }));
    }
}

pub async fn trace(cli: &Cli, args: &TraceArgs) -> Result<(), CliError> {
    let config = cli.load_config()?;
    let store =
        crate::store::Store::open_with(&config.data_dir, &config.store).map_err(crate::runtime::SetupError::from)?;
    let traces = crate::trace::TraceStore::open(&store).map_err(crate::runtime::SetupError::from)?;
    let conversations =
        crate::conversation::ConversationStore::open(&store).map_err(crate::runtime::SetupError::from)?;
    let mut found: Vec<Trace> =
        traces.for_conversation(&args.conversation).map_err(crate::runtime::SetupError::from)?;
    if found.is_empty() {
        if let Some(t) = traces.get(&args.conversation).map_err(crate::runtime::SetupError::from)? {
            found.push(t);
        }
    }
    let convs = conversations.find(&args.conversation).map_err(crate::runtime::SetupError::from)?;
    if found.is_empty() && convs.is_empty() {
        return Err(CliError::Usage(format!(
            "no conversation or turn {:?} is recorded in {}",
            args.conversation,
            config.data_dir.display()
        )));
    }
    if args.json {
        return Ok(out::json(&serde_json::json!({"conversations": convs, "turns": found}))?);
    }
    for c in &convs {
        out::line(format!(
            "conversation {} in {} (workspace {}, channel {}): {}",
            c.key,
            format!("{:?}", c.source).to_lowercase(),
            c.workspace,
            c.channel,
            c.state.as_str()
        ));
        for t in &c.transitions {
            out::line(format!("  {} → {} by {} ({})", t.from.as_str(), t.to.as_str(), t.by, t.reason));
        }
    }
    for t in &found {
        out::line("");
        print_trace(t);
    }
    Ok(())
}
