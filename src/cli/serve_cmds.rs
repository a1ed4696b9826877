//! `frontdesk serve` and `frontdesk doctor`.

use super::engine_cmds::open_engine;
use super::{out, Cli, CliError};
use crate::inbox::{DeadItem, Inbox, InboxOptions};
use crate::serve::http::Check;
use crate::serve::{registry, Server};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the channels, the inbox worker and the HTTP endpoints until SIGINT or SIGTERM.
pub async fn serve(cli: &Cli) -> Result<(), CliError> {
    let (config, engine) = open_engine(cli, None).await?;
    let built = registry::build(&config, &engine)?;
    if built.set.is_empty() {
        tracing::warn!(
            "no channel is configured ([slack], [discord] or [email] in frontdesk.toml): only /healthz and /readyz are served"
        );
    }
    let server = Server::bind(&config, Arc::clone(&engine), built.set.clone(), built.routes.clone()).await?;
    let public = config.server.public_url.clone().unwrap_or_else(|| format!("http://{}", server.local_addr()));
    out::line(format!("frontdesk is listening on {} (public URL {public})", server.local_addr()));
    for line in &built.endpoints {
        out::line(format!("  {line}"));
    }
    out::line(format!("  health: {public}/healthz   readiness: {public}/readyz"));
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    server.run(shutdown).await?;
    out::line("stopped; unanswered messages and undelivered replies are kept and resume at the next start");
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stop with Ctrl-C");
                let _ = interrupt.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

/// Checks everything frontdesk depends on and says what to fix. Exit code 1 when a check fails.
pub async fn doctor(cli: &Cli) -> Result<(), CliError> {
    let mut checks: Vec<Check> = Vec::new();
    let (config, engine) = open_engine(cli, None).await?;
    checks.push(Check { name: "config".into(), ok: true, detail: "loaded and valid".into() });

    let store = engine.kb.store.clone();
    match store.catalogue().and_then(|c| c.workspaces().map(|w| (c, w))) {
        Ok((_, w)) if w.is_empty() => checks.push(Check {
            name: "knowledge".into(),
            ok: false,
            detail: "nothing ingested yet: run `frontdesk ingest --workspace <id> <folder>`".into(),
        }),
        Ok((catalogue, workspaces)) => {
            for ws in workspaces {
                let docs = ws.parse().ok().and_then(|id| catalogue.list(&id).ok()).map(|l| l.len()).unwrap_or(0);
                checks.push(Check { name: format!("knowledge {ws}"), ok: true, detail: format!("{docs} documents") });
            }
        }
        Err(e) => checks.push(Check { name: "knowledge".into(), ok: false, detail: format!("the store failed: {e}") }),
    }
    checks.extend(retrieval_doctor(&config).await);

    match Inbox::open(&store, InboxOptions::default()) {
        Ok(inbox) => {
            let stats = inbox.stats();
            checks.push(Check {
                name: "inbox".into(),
                ok: true,
                detail: format!(
                    "{} messages waiting to be answered, {} replies waiting to be delivered",
                    stats.pending_inbound, stats.pending_outbound
                ),
            });
            match inbox.dead_letters() {
                Ok(letters) if letters.is_empty() => {
                    checks.push(Check { name: "dead letters".into(), ok: true, detail: "none".into() })
                }
                Ok(letters) => {
                    let shown: Vec<String> = letters.iter().rev().take(10).map(describe_dead_letter).collect();
                    checks.push(Check {
                        name: "dead letters".into(),
                        ok: false,
                        detail: format!(
                            "{} replies could not be delivered; the latest:\n      {}",
                            letters.len(),
                            shown.join("\n      ")
                        ),
                    });
                }
                Err(e) => checks.push(Check { name: "dead letters".into(), ok: false, detail: e.to_string() }),
            }
        }
        Err(e) => checks.push(Check { name: "inbox".into(), ok: false, detail: e.to_string() }),
    }

    match registry::build(&config, &engine) {
        Ok(built) if built.set.is_empty() => checks.push(Check {
            name: "channels".into(),
            ok: true,
            detail: "none configured (add [slack], [discord] or [email] to frontdesk.toml)".into(),
        }),
        Ok(built) => checks.extend(built.doctor().await),
        Err(e) => checks.push(Check { name: e.channel.into(), ok: false, detail: e.message }),
    }

    let failed = checks.iter().filter(|c| !c.ok).count();
    for c in &checks {
        out::line(format!("{} {:<22} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
    }
    if failed == 0 {
        out::line("everything checked is working");
        Ok(())
    } else {
        Err(CliError::Failed(format!("{failed} check(s) failed")))
    }
}

fn describe_dead_letter(letter: &crate::inbox::DeadLetter) -> String {
    let when = time::OffsetDateTime::from_unix_timestamp(letter.failed_at_ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| letter.failed_at_ms.to_string());
    match &letter.item {
        DeadItem::Reply { outbound } => format!(
            "{when} {:?} workspace {} channel {}: {}",
            outbound.outbound.source, outbound.outbound.workspace, outbound.outbound.channel, letter.error
        ),
        DeadItem::Unreadable { queue, .. } => format!("{when} unreadable record in {queue}: {}", letter.error),
    }
}

/// Checks of the retrieval backend in use.
async fn retrieval_doctor(config: &crate::config::Config) -> Vec<Check> {
    match config.retrieval.backend {
        crate::config::BackendKind::Embedded => vec![Check {
            name: "retrieval".into(),
            ok: true,
            detail: format!("embedded index under {}", config.data_dir.display()),
        }],
        crate::config::BackendKind::Meilisearch => match &config.retrieval.meilisearch {
            Some(meili) => crate::retrieval::meili::doctor(meili, config.embedder_dimensions())
                .await
                .into_iter()
                .map(|c| Check { name: c.name, ok: c.ok, detail: c.detail })
                .collect(),
            None => vec![Check {
                name: "retrieval".into(),
                ok: false,
                detail: "backend = \"meilisearch\" needs a [retrieval.meilisearch] section".into(),
            }],
        },
    }
}

/// `frontdesk discord invite`: the install URL with exactly the permissions the bot uses.
#[cfg(feature = "discord")]
pub fn discord_invite(cli: &Cli, application_id: Option<&str>) -> Result<(), CliError> {
    let from_config = || -> Result<String, CliError> {
        let config = cli.load_config()?;
        let section = config.channels.get("discord");
        let id = section.and_then(|s| s.get("application_id")).and_then(|v| v.as_str()).map(str::to_string);
        id.filter(|id| !id.trim().is_empty()).ok_or_else(|| {
            CliError::Usage(
                "no application id: pass --application-id (from the developer portal's General Information page) or set discord.application_id".into(),
            )
        })
    };
    let id = match application_id {
        Some(id) => id.to_string(),
        None => from_config()?,
    };
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(CliError::Usage(format!(
            "{id:?} is not a Discord application id (a number such as 1234567890123456789)"
        )));
    }
    out::line(frontdesk_discord::invite_url(&id));
    Ok(())
}

/// `frontdesk discord invite` in a build without the Discord channel.
#[cfg(not(feature = "discord"))]
pub fn discord_invite(_cli: &Cli, _application_id: Option<&str>) -> Result<(), CliError> {
    Err(CliError::Usage(
        "this build of frontdesk has no Discord channel (built without the \"discord\" feature)".into(),
    ))
}
