//! Evaluation datasets: a folder with `docs/` (one document per file, the file stem is its id),
//! `cases.jsonl` (one case per line) and optionally `tickets.jsonl` (resolved tickets, ingested
//! as ticket knowledge).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One earlier turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// `user` or `agent`.
    pub role: String,
    pub text: String,
}

/// One evaluation case. Fields beyond these are kept in `extra` and ignored by scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub question: String,
    #[serde(default)]
    pub history: Vec<Turn>,
    #[serde(default)]
    pub reference_answer: String,
    #[serde(default)]
    pub source_doc_ids: Vec<String>,
    pub answerable: bool,
    #[serde(default)]
    pub expected_behavior: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
}

/// A loaded dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub root: PathBuf,
    pub docs_dir: PathBuf,
    pub tickets: Option<PathBuf>,
    pub cases: Vec<Case>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} line {line}: {message}")]
    Case { path: PathBuf, line: usize, message: String },
}

impl Dataset {
    /// Loads a dataset folder; every malformed case line is an error naming its line.
    pub fn load(root: &Path) -> Result<Dataset, DatasetError> {
        let docs_dir = root.join("docs");
        if !docs_dir.is_dir() {
            return Err(DatasetError::Layout { path: root.to_path_buf(), message: "has no docs/ folder".into() });
        }
        let cases_path = root.join("cases.jsonl");
        let text = std::fs::read_to_string(&cases_path)
            .map_err(|source| DatasetError::Io { path: cases_path.clone(), source })?;
        let mut cases = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let case: Case = serde_json::from_str(line).map_err(|e| DatasetError::Case {
                path: cases_path.clone(),
                line: i + 1,
                message: e.to_string(),
            })?;
            if !ids.insert(case.id.clone()) {
                return Err(DatasetError::Case {
                    path: cases_path.clone(),
                    line: i + 1,
                    message: format!("duplicate id {}", case.id),
                });
            }
            cases.push(case);
        }
        if cases.is_empty() {
            return Err(DatasetError::Layout { path: cases_path, message: "holds no cases".into() });
        }
        let tickets = Some(root.join("tickets.jsonl")).filter(|p| p.is_file());
        let name = root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "dataset".into());
        Ok(Dataset { name, root: root.to_path_buf(), docs_dir, tickets, cases })
    }
}
