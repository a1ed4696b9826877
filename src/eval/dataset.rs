//! Evaluation datasets: a folder with `docs/` (one document per file, the file stem is its id),
//! `cases.jsonl` (one case per line) and optionally `tickets.jsonl` (resolved tickets, ingested
//! as ticket knowledge).
//!
//! A dataset may instead be split into several case files beside `docs/` (the project's own is
//! split into `tune.jsonl`, which tuning may look at, and `heldout.jsonl`, which it never may):
//! then the path of one case file names the dataset, e.g. `evals/tallyhawk/heldout.jsonl`,
//! called `tallyhawk-heldout`. Every split of a folder is evaluated in the same workspace.

use crate::conversation::Speaker;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One earlier turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// `user` or `agent`.
    pub role: String,
    pub text: String,
}

impl Turn {
    /// Who said it as the conversation records it: `user` turns are the customer's, any other
    /// the bot's.
    pub fn speaker(&self) -> Speaker {
        if self.role == "user" {
            Speaker::Customer
        } else {
            Speaker::Bot
        }
    }
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
    /// The folder's name, or `<folder>-<split>` for one case file of a split dataset.
    pub name: String,
    /// The folder's name: what the knowledge is ingested under, shared by its splits.
    pub folder: String,
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

impl DatasetError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            DatasetError::Layout { .. } => "dataset_layout_invalid",
            DatasetError::Io { .. } => "dataset_unreadable",
            DatasetError::Case { .. } => "dataset_case_invalid",
        }
    }
}

impl Dataset {
    /// Loads a dataset folder; every malformed case line is an error naming its line.
    pub fn load(path: &Path) -> Result<Dataset, DatasetError> {
        let (root, cases_path) = if path.is_file() {
            let root = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            (root.to_path_buf(), path.to_path_buf())
        } else {
            (path.to_path_buf(), path.join("cases.jsonl"))
        };
        let root = root.as_path();
        let docs_dir = root.join("docs");
        if !docs_dir.is_dir() {
            return Err(DatasetError::Layout { path: root.to_path_buf(), message: "has no docs/ folder".into() });
        }
        if !cases_path.is_file() && !path.is_file() {
            let splits = splits_of(root);
            if !splits.is_empty() {
                return Err(DatasetError::Layout {
                    path: root.to_path_buf(),
                    message: format!(
                        "is split into {}: name one of them (e.g. {})",
                        splits.join(", "),
                        root.join(&splits[0]).display()
                    ),
                });
            }
        }
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
        let folder = root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "dataset".into());
        let name = if path.is_file() {
            let stem = cases_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if stem == "cases" {
                folder.clone()
            } else {
                format!("{folder}-{stem}")
            }
        } else {
            folder.clone()
        };
        Ok(Dataset { name, folder, root: root.to_path_buf(), docs_dir, tickets, cases })
    }
}

/// The case files of a split dataset folder (every `.jsonl` beside `docs/` but the tickets).
fn splits_of(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl") && n != "tickets.jsonl")
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("docs")).expect("docs");
        std::fs::write(dir.path().join("docs/a.md"), "# A\n\nText.").expect("doc");
        let case = r#"{"id": "c1", "question": "q?", "answerable": true, "source_doc_ids": ["a"]}"#;
        std::fs::write(dir.path().join("tune.jsonl"), format!("{case}\n")).expect("split");
        std::fs::write(dir.path().join("heldout.jsonl"), case.replace("c1", "c2") + "\n").expect("split");
        dir
    }

    #[test]
    fn one_split_of_a_folder_is_a_dataset_named_after_both() {
        let dir = folder();
        let d = Dataset::load(&dir.path().join("heldout.jsonl")).expect("loads");
        assert!(d.name.ends_with("-heldout"), "{}", d.name);
        assert_eq!(d.name, format!("{}-heldout", d.folder));
        assert_eq!(d.cases.len(), 1);
        assert_eq!(d.cases[0].id, "c2");
        assert_eq!(d.docs_dir, dir.path().join("docs"));
    }

    #[test]
    fn a_split_folder_without_cases_jsonl_names_its_splits() {
        let dir = folder();
        let err = Dataset::load(dir.path()).expect_err("no cases.jsonl").to_string();
        assert!(err.contains("heldout.jsonl") && err.contains("tune.jsonl"), "{err}");
    }
}
