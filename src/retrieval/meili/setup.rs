//! The index frontdesk expects, and checks that a server provides it.
//!
//! `expected_settings` is what frontdesk applies when it creates or repairs the index;
//! `settings_problems` compares a server's settings with it (used at start-up and by
//! `doctor`). `doctor` looks at a server without changing anything.

use super::config::{EmbedderSource, MeiliConfig};
use super::http::{Retry, Transport};
use super::MeiliError;
use meilisearch_sdk::settings::{Embedder, EmbedderSource as SdkSource, Settings};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// The Meilisearch release this backend was built and measured against.
pub const TESTED_VERSION: &str = "1.50.";

pub const SEARCHABLE: &[&str] = &["title", "headings", "text"];
/// `id` lets a search fetch the keyword candidates it scored itself.
pub const FILTERABLE: &[&str] = &["workspace_id", "product", "source_kind", "updated_at", "id"];

/// The embedder settings for this configuration.
pub fn embedder(config: &MeiliConfig, frontdesk_dims: usize) -> Result<Embedder, MeiliError> {
    let e = &config.embedder;
    let json = |v: &Option<toml::Value>, key: &str| -> Result<Option<Value>, MeiliError> {
        v.as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|err| MeiliError::Setup(format!("embedder.{key} cannot be sent as JSON: {err}")))
    };
    let source = match e.source {
        EmbedderSource::UserProvided => SdkSource::UserProvided,
        EmbedderSource::Rest => SdkSource::Rest,
        EmbedderSource::OpenAi => SdkSource::OpenAi,
        EmbedderSource::Ollama => SdkSource::Ollama,
    };
    let user = e.source == EmbedderSource::UserProvided;
    Ok(Embedder {
        source,
        url: if user { None } else { e.url.clone() },
        api_key: if user { None } else { e.api_key.as_ref().map(|k| k.expose_secret().to_string()) },
        model: if user { None } else { e.model.clone() },
        document_template: if user { None } else { Some(e.document_template.clone()) },
        dimensions: config.dimensions(frontdesk_dims),
        request: if user { None } else { json(&e.request, "request")? },
        response: if user { None } else { json(&e.response, "response")? },
        ..Embedder::default()
    })
}

/// The settings frontdesk applies to its index.
pub fn expected_settings(config: &MeiliConfig, frontdesk_dims: usize) -> Result<Settings, MeiliError> {
    let embedders = HashMap::from([(config.embedder.name.clone(), embedder(config, frontdesk_dims)?)]);
    Ok(Settings::new()
        .with_searchable_attributes(SEARCHABLE)
        .with_filterable_attributes(FILTERABLE)
        .with_embedders(embedders))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .flat_map(|x| match x {
                    Value::String(s) => vec![s.clone()],
                    // The newer form: {"attributePatterns": [..], "features": {..}}.
                    Value::Object(o) => o
                        .get("attributePatterns")
                        .and_then(Value::as_array)
                        .map(|p| p.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                        .unwrap_or_default(),
                    _ => vec![],
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What differs between a server's index settings and what frontdesk needs (empty: all good).
pub fn settings_problems(actual: &Value, config: &MeiliConfig, frontdesk_dims: usize) -> Vec<String> {
    let mut out = Vec::new();
    let searchable = strings(&actual["searchableAttributes"]);
    if searchable != SEARCHABLE {
        out.push(format!("searchableAttributes are {searchable:?}, expected {SEARCHABLE:?}"));
    }
    let filterable = strings(&actual["filterableAttributes"]);
    let missing: Vec<&&str> = FILTERABLE.iter().filter(|f| !filterable.iter().any(|a| a == **f)).collect();
    if !missing.is_empty() {
        out.push(format!("filterableAttributes lack {missing:?}"));
    }
    let name = &config.embedder.name;
    match actual["embedders"].get(name) {
        None => out.push(format!("embedder {name:?} is not configured")),
        Some(e) => {
            let source = e["source"].as_str().unwrap_or("");
            if source != config.embedder.source.meili_name() {
                out.push(format!(
                    "embedder {name:?} has source {source:?}, expected {:?}",
                    config.embedder.source.meili_name()
                ));
            }
            if let Some(d) = config.dimensions(frontdesk_dims) {
                let got = e["dimensions"].as_u64();
                if got != Some(d as u64) {
                    out.push(format!("embedder {name:?} has dimensions {got:?}, expected {d}"));
                }
            }
            if config.embedder.source != EmbedderSource::UserProvided {
                for (key, want) in
                    [("url", config.embedder.url.as_deref()), ("model", config.embedder.model.as_deref())]
                {
                    if let Some(want) = want {
                        if e[key].as_str() != Some(want) {
                            out.push(format!("embedder {name:?} has {key} {:?}, expected {want:?}", e[key]));
                        }
                    }
                }
                if e["documentTemplate"].as_str() != Some(config.embedder.document_template.as_str()) {
                    out.push(format!("embedder {name:?} has a different documentTemplate"));
                }
            }
        }
    }
    out
}

/// One finding of `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check { name: name.into(), ok, detail: detail.into() }
}

/// Looks at the configured Meilisearch server without changing it: reachable and healthy,
/// the master key accepted, the version the one frontdesk was tested with, the index present
/// with the settings frontdesk needs, and a search key that tenant tokens can be signed with.
/// Every check is reported; a failed one does not stop the others unless they depend on it.
pub async fn doctor(config: &MeiliConfig, frontdesk_dims: usize) -> Vec<Check> {
    let mut out = Vec::new();
    let transport = match Transport::new(
        &config.url,
        Duration::from_millis(config.connect_timeout_ms),
        Duration::from_millis(config.request_timeout_ms),
        0,
    ) {
        Ok(t) => t,
        Err(e) => return vec![check("meilisearch.reachable", false, e.to_string())],
    };
    let Some(master) = config.master_key.as_ref() else {
        return vec![check("meilisearch.master_key", false, "no master key configured")];
    };
    let master = master.expose_secret();
    match transport.json::<Value>(reqwest::Method::GET, "/health", master, None, Retry::Safe).await {
        Ok(v) if v["status"] == "available" => {
            out.push(check("meilisearch.health", true, format!("{} is available", config.url)))
        }
        Ok(v) => out.push(check("meilisearch.health", false, format!("{} reports {v}", config.url))),
        Err(e) => {
            out.push(check("meilisearch.health", false, e.to_string()));
            return out;
        }
    }
    match transport.json::<Value>(reqwest::Method::GET, "/version", master, None, Retry::Safe).await {
        Ok(v) => {
            let version = v["pkgVersion"].as_str().unwrap_or("unknown").to_string();
            out.push(check("meilisearch.master_key", true, "accepted"));
            if version.starts_with(TESTED_VERSION) {
                out.push(check("meilisearch.version", true, version));
            } else {
                out.push(check(
                    "meilisearch.version",
                    false,
                    format!(
                        "{version}; frontdesk is tested with {TESTED_VERSION}x, other versions may rank differently"
                    ),
                ));
            }
        }
        Err(e) => {
            out.push(check("meilisearch.master_key", false, e.to_string()));
            return out;
        }
    }
    let index = &config.index;
    match transport
        .json::<Value>(reqwest::Method::GET, &format!("/indexes/{index}/stats"), master, None, Retry::Safe)
        .await
    {
        Ok(v) => out.push(check(
            "meilisearch.index",
            true,
            format!("{index}: {} chunks", v["numberOfDocuments"].as_u64().unwrap_or(0)),
        )),
        Err(e) => {
            out.push(check("meilisearch.index", false, format!("{index}: {e} (the first ingest creates it)")));
            return out;
        }
    }
    match transport
        .json::<Value>(reqwest::Method::GET, &format!("/indexes/{index}/settings"), master, None, Retry::Safe)
        .await
    {
        Ok(v) => {
            let problems = settings_problems(&v, config, frontdesk_dims);
            if problems.is_empty() {
                out.push(check("meilisearch.settings", true, "as frontdesk expects"));
            } else {
                out.push(check(
                    "meilisearch.settings",
                    false,
                    format!("{} (frontdesk repairs them on its next start)", problems.join("; ")),
                ));
            }
        }
        Err(e) => out.push(check("meilisearch.settings", false, e.to_string())),
    }
    let key = match (&config.search_key, &config.search_key_uid) {
        (Some(k), Some(uid)) => Ok(Some((k.expose_secret().to_string(), uid.clone()))),
        _ => super::find_search_key(&transport, master, index).await,
    };
    match key {
        Ok(Some((key, uid))) => {
            let probe = super::probe_token_search(&transport, index, &key, &uid, config.token_ttl_secs).await;
            match probe {
                Ok(()) => out.push(check(
                    "meilisearch.search_key",
                    true,
                    format!("key {uid} signs tenant tokens that can search {index}"),
                )),
                Err(e) => out.push(check("meilisearch.search_key", false, format!("key {uid}: {e}"))),
            }
        }
        Ok(None) => out.push(check(
            "meilisearch.search_key",
            false,
            format!("no key named {:?} yet (the first start creates it)", super::search_key_name(index)),
        )),
        Err(e) => out.push(check("meilisearch.search_key", false, e.to_string())),
    }
    out
}
