//! Prompts are versioned data in `prompts/`: each file has front matter with `id` and `version`,
//! and a body with `{{name}}` placeholders. Every model call records `id@version`, and so do
//! traces and eval reports, so a change of wording is judged by an eval run.
//!
//! The binary carries the repository's prompts; `prompts_dir` in the configuration points at a
//! folder whose files replace them (same ids), for teams that tune their own wording.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The line a model writes when the sources do not hold the answer.
pub const UNSURE_MARKER: &str = "NOT_IN_SOURCES";

const BUILT_IN: &[(&str, &str)] = &[
    ("answer.md", include_str!("../prompts/answer.md")),
    ("condense.md", include_str!("../prompts/condense.md")),
    ("judge_faithfulness.md", include_str!("../prompts/judge_faithfulness.md")),
    ("judge_correctness.md", include_str!("../prompts/judge_correctness.md")),
];

/// One prompt template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub id: String,
    pub version: u32,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("prompt {0} is missing")]
    Missing(String),
    #[error("prompt {id}@{version} needs a value for {{{{{name}}}}}")]
    Unfilled { id: String, version: u32, name: String },
    #[error("cannot read {file}: {message}")]
    Io { file: String, message: String },
}

impl PromptError {
    /// A stable snake_case code for this failure (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            PromptError::Invalid { .. } => "prompt_invalid",
            PromptError::Missing(..) => "prompt_missing",
            PromptError::Unfilled { .. } => "prompt_unfilled",
            PromptError::Io { .. } => "prompt_unreadable",
        }
    }
}

impl Prompt {
    /// Parses a prompt file.
    pub fn parse(file: &str, text: &str) -> Result<Prompt, PromptError> {
        let invalid = |message: &str| PromptError::Invalid { file: file.to_string(), message: message.to_string() };
        let text = text.replace("\r\n", "\n");
        let rest = text.strip_prefix("---\n").ok_or_else(|| invalid("must start with front matter (---)"))?;
        let end = rest.find("\n---\n").ok_or_else(|| invalid("front matter is not closed with ---"))?;
        let mut id = None;
        let mut version = None;
        for line in rest[..end].lines() {
            match line.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("id", v)) if !v.is_empty() => id = Some(v.to_string()),
                Some(("version", v)) => {
                    version = Some(v.parse::<u32>().map_err(|_| invalid("version must be a whole number"))?)
                }
                _ => {}
            }
        }
        Ok(Prompt {
            id: id.ok_or_else(|| invalid("front matter has no id"))?,
            version: version.ok_or_else(|| invalid("front matter has no version"))?,
            body: rest[end + 5..].trim().to_string(),
        })
    }

    /// `id@version`, as recorded in traces.
    pub fn tag(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// Fills every `{{name}}`; a placeholder without a value is an error, so a prompt never
    /// reaches a model half-filled.
    pub fn render(&self, values: &[(&str, &str)]) -> Result<String, PromptError> {
        let map: HashMap<&str, &str> = values.iter().copied().collect();
        let mut out = String::with_capacity(self.body.len() + 256);
        let mut rest = self.body.as_str();
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = after[..end].trim();
            let value = map.get(name).ok_or_else(|| PromptError::Unfilled {
                id: self.id.clone(),
                version: self.version,
                name: name.to_string(),
            })?;
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// All prompts, by id.
#[derive(Debug, Clone)]
pub struct Prompts {
    by_id: BTreeMap<String, Prompt>,
}

impl Prompts {
    /// The prompts built into the binary.
    pub fn built_in() -> Result<Prompts, PromptError> {
        let mut by_id = BTreeMap::new();
        for (file, text) in BUILT_IN {
            let p = Prompt::parse(file, text)?;
            by_id.insert(p.id.clone(), p);
        }
        Ok(Prompts { by_id })
    }

    /// Built-in prompts, replaced by any `*.md` in `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Prompts, PromptError> {
        let mut prompts = Self::built_in()?;
        let Some(dir) = dir else { return Ok(prompts) };
        let io = |e: std::io::Error| PromptError::Io { file: dir.display().to_string(), message: e.to_string() };
        let mut files: Vec<_> = std::fs::read_dir(dir).map_err(io)?.flatten().map(|e| e.path()).collect();
        files.sort();
        for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "md")) {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            let p = Prompt::parse(&path.display().to_string(), &text)?;
            prompts.by_id.insert(p.id.clone(), p);
        }
        Ok(prompts)
    }

    pub fn get(&self, id: &str) -> Result<&Prompt, PromptError> {
        self.by_id.get(id).ok_or_else(|| PromptError::Missing(id.to_string()))
    }

    /// `id@version` of every prompt, for reports.
    pub fn tags(&self) -> Vec<String> {
        self.by_id.values().map(Prompt::tag).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_prompts_parse_and_fill() {
        let prompts = Prompts::built_in().unwrap();
        let answer = prompts.get("answer").unwrap();
        assert_eq!(answer.tag(), "answer@1");
        let text = answer
            .render(&[
                ("company", "Acme"),
                ("unsure_marker", UNSURE_MARKER),
                ("max_sentences", "4"),
                ("sources", "[1] x"),
                ("question", "q?"),
            ])
            .unwrap();
        assert!(text.contains("NOT_IN_SOURCES") && text.contains("[1] x") && !text.contains("{{"));
        assert!(prompts.get("condense").is_ok());
        assert!(prompts.get("judge_faithfulness").is_ok());
    }

    #[test]
    fn a_missing_value_is_an_error() {
        let p = Prompt::parse("t.md", "---\nid: t\nversion: 2\n---\nHello {{name}} and {{other}}").unwrap();
        let e = p.render(&[("name", "x")]).unwrap_err();
        assert_eq!(e, PromptError::Unfilled { id: "t".into(), version: 2, name: "other".into() });
    }

    #[test]
    fn bad_front_matter_is_reported() {
        assert!(Prompt::parse("a.md", "no front matter").is_err());
        assert!(Prompt::parse("a.md", "---\nid: a\n---\nbody").is_err());
        assert!(Prompt::parse("a.md", "---\nid: a\nversion: one\n---\nbody").is_err());
    }
}
