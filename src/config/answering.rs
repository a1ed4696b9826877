//! `[answering]`: how the engine turns retrieved knowledge into an answer or a handoff.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AnsweringConfig {
    /// The company's name, as the bot speaks of it in prompts.
    pub company: String,
    /// Retrieval confidence below which a question goes to a person before any model is called
    /// (default: the confidence model's recommended gate).
    pub retrieval_gate: Option<f32>,
    /// Chunks given to the generator as numbered context.
    pub context_chunks: usize,
    /// A folder of prompt files that replace the built-in ones (same ids).
    pub prompts_dir: Option<PathBuf>,
    /// A confidence model file written by `frontdesk calibrate`, in place of the built-in one.
    pub confidence_model: Option<PathBuf>,
}

impl Default for AnsweringConfig {
    fn default() -> Self {
        AnsweringConfig {
            company: "our company".into(),
            retrieval_gate: None,
            context_chunks: 5,
            prompts_dir: None,
            confidence_model: None,
        }
    }
}

impl AnsweringConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(g) = self.retrieval_gate.filter(|g| !(0.0..=1.0).contains(g)) {
            out.push(("answering.retrieval_gate".into(), format!("must be between 0.0 and 1.0, not {g}")));
        }
        if self.context_chunks == 0 || self.context_chunks > 20 {
            out.push((
                "answering.context_chunks".into(),
                format!("must be between 1 and 20, not {}", self.context_chunks),
            ));
        }
        if self.company.trim().is_empty() {
            out.push(("answering.company".into(), "must not be empty".into()));
        }
        out
    }
}
