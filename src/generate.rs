//! Generators write the answer from the retrieved chunks, all behind one trait.
//!
//! - `Extractive` (the default, no model): picks the sentences of the top chunks that best
//!   answer the question (meaning and shared words), quotes them in document order, and cites
//!   each one. It cannot say anything the help centre does not say.
//! - `LlmGenerator`: fills the grounding prompt (`prompts/answer.md`) with the numbered chunks
//!   and asks a model (an OpenAI-compatible chain or the local SmolLM2). The model answers with
//!   `[n]` citations, or with the unsure marker when the sources do not hold the answer.
//!
//! Either way the answer is checked afterwards (`engine::verify`) before anyone sees it.

use crate::embed::{EmbedError, Embedder};
use crate::llm::{ChatMessage, ChatRequest, Llm, LlmError, ModelTier};
use crate::prompts::{PromptError, Prompts, UNSURE_MARKER};
use crate::retrieval::vectors::dot;
use crate::retrieval::Hit;
use crate::text::{split_sentences, term_set};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// What a generator is given.
#[derive(Debug, Clone)]
pub struct GenerationInput<'a> {
    /// The standalone (condensed) question.
    pub question: &'a str,
    /// The question's vector (already computed for retrieval).
    pub question_vector: Option<&'a [f32]>,
    /// The context, numbered from 1 in this order.
    pub hits: &'a [Hit],
    pub max_chars: usize,
    pub tier: ModelTier,
    pub company: &'a str,
}

/// A generated answer with `[n]` citation markers.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    /// The generator said the sources do not hold the answer.
    pub unsure: bool,
    pub model: String,
    pub prompt: Option<String>,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub cost_usd: f64,
    pub attempts: u32,
    /// For extractive answers: how well the chosen sentences match the question, in [0, 1].
    pub match_score: Option<f32>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

#[async_trait]
pub trait Generator: Send + Sync {
    /// e.g. `extractive`, `openai:main/gpt-4o`, `local/SmolLM2-135M-Instruct`.
    fn name(&self) -> String;
    /// True when deltas are streamed as the text is written.
    fn streams(&self) -> bool {
        false
    }
    async fn generate(
        &self,
        input: &GenerationInput<'_>,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<Generated, GenerateError>;
}

/// How many chunks an answer draws from.
pub const CONTEXT_CHUNKS: usize = 5;

/// Quotes the best-supported sentences of the top chunks.
pub struct Extractive {
    embedder: Arc<dyn Embedder>,
}

impl Extractive {
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        Extractive { embedder }
    }
}

struct Candidate {
    hit: usize,
    position: usize,
    text: String,
    score: f32,
}

/// Fraction of the question's content terms that the sentence contains.
fn overlap(question: &std::collections::HashSet<String>, sentence: &str) -> f32 {
    if question.is_empty() {
        return 0.0;
    }
    let s = term_set(sentence);
    question.iter().filter(|t| s.contains(*t)).count() as f32 / question.len() as f32
}

fn is_quotable(sentence: &str) -> bool {
    let words = sentence.split_whitespace().count();
    words >= 4 && !sentence.trim_end().ends_with(':')
}

#[async_trait]
impl Generator for Extractive {
    fn name(&self) -> String {
        "extractive".into()
    }

    async fn generate(
        &self,
        input: &GenerationInput<'_>,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<Generated, GenerateError> {
        let question_terms = term_set(input.question);
        let mut candidates: Vec<Candidate> = Vec::new();
        // The first three chunks: beyond that, quoting drifts off the question.
        for (h, hit) in input.hits.iter().take(3).enumerate() {
            for (p, s) in split_sentences(&hit.text).into_iter().enumerate() {
                if is_quotable(&s) {
                    candidates.push(Candidate { hit: h, position: p, text: s, score: 0.0 });
                }
            }
        }
        if candidates.is_empty() {
            return Ok(unsure_extractive());
        }
        let vectors = match input.question_vector {
            Some(q) => {
                let texts: Vec<String> = candidates.iter().map(|c| c.text.clone()).collect();
                let vs = self.embedder.embed(&texts).await?;
                Some((q.to_vec(), vs))
            }
            None => None,
        };
        for (i, c) in candidates.iter_mut().enumerate() {
            let semantic = vectors.as_ref().map(|(q, vs)| dot(q, &vs[i])).unwrap_or(0.0);
            let lexical = overlap(&question_terms, &c.text);
            let rank_bonus = 0.05 * (3 - c.hit.min(3)) as f32;
            c.score = 0.6 * semantic + 0.4 * lexical + rank_bonus;
        }
        let best = candidates.iter().map(|c| c.score).fold(f32::MIN, f32::max);
        let Some(anchor) = candidates.iter().position(|c| c.score == best) else {
            return Ok(unsure_extractive());
        };
        // The best sentence, the sentences right after it in the same chunk (steps and
        // conditions usually follow), and other sentences nearly as good.
        let mut chosen: Vec<usize> = vec![anchor];
        let (ah, ap) = (candidates[anchor].hit, candidates[anchor].position);
        for (i, c) in candidates.iter().enumerate() {
            if i == anchor {
                continue;
            }
            let follows = c.hit == ah && c.position > ap && c.position <= ap + 2 && c.score >= 0.6 * best;
            let strong = c.score >= 0.9 * best;
            if follows || strong {
                chosen.push(i);
            }
        }
        chosen.sort_by_key(|&i| (candidates[i].hit != ah, candidates[i].hit, candidates[i].position));
        let mut text = String::new();
        for &i in chosen.iter().take(4) {
            let c = &candidates[i];
            let piece = format!("{} [{}]", c.text.trim_start_matches("- ").trim(), c.hit + 1);
            if !text.is_empty() && text.len() + piece.len() + 1 > input.max_chars {
                break;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&piece);
        }
        if let Some(tx) = deltas {
            let _ = tx.send(text.clone());
        }
        Ok(extractive_result(text, best.clamp(0.0, 1.0)))
    }
}

/// An extractive answer: no model, no tokens, no cost; `match_score` is the quoted sentences'
/// match with the question.
fn extractive_result(text: String, match_score: f32) -> Generated {
    Generated {
        unsure: text.is_empty(),
        text,
        model: "extractive".into(),
        prompt: None,
        tokens_in: 0,
        tokens_out: 0,
        cost_usd: 0.0,
        attempts: 1,
        match_score: Some(match_score),
    }
}

/// Nothing quotable in the top chunks: the extractive answerer is not sure.
fn unsure_extractive() -> Generated {
    extractive_result(String::new(), 0.0)
}

/// Answers through a language model and the grounding prompt.
pub struct LlmGenerator {
    llm: Arc<dyn Llm>,
    prompts: Arc<Prompts>,
    temperature: f32,
    max_tokens: u32,
    streams: bool,
}

impl LlmGenerator {
    pub fn new(llm: Arc<dyn Llm>, prompts: Arc<Prompts>, temperature: f32, max_tokens: u32, streams: bool) -> Self {
        LlmGenerator { llm, prompts, temperature, max_tokens, streams }
    }
}

/// The numbered context block of the grounding prompt.
pub fn numbered_sources(hits: &[Hit]) -> String {
    hits.iter()
        .enumerate()
        .map(|(i, h)| {
            let mut head = h.title.clone();
            for p in &h.heading_path {
                head.push_str(" > ");
                head.push_str(p);
            }
            format!("[{}] {}\n{}", i + 1, head, h.text.trim())
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[async_trait]
impl Generator for LlmGenerator {
    fn name(&self) -> String {
        self.llm.name()
    }

    fn streams(&self) -> bool {
        self.streams
    }

    async fn generate(
        &self,
        input: &GenerationInput<'_>,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<Generated, GenerateError> {
        let prompt = self.prompts.get("answer")?;
        let max_sentences = (input.max_chars / 150).clamp(2, 8).to_string();
        let text = prompt.render(&[
            ("company", input.company),
            ("unsure_marker", UNSURE_MARKER),
            ("max_sentences", &max_sentences),
            ("sources", &numbered_sources(input.hits)),
            ("question", input.question),
        ])?;
        let request = ChatRequest {
            messages: vec![ChatMessage::user(text)],
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            tier: input.tier,
        };
        let response = self.llm.complete(&request, deltas).await?;
        let unsure = response.text.contains(UNSURE_MARKER);
        let mut answer = response.text.trim().to_string();
        if answer.len() > input.max_chars {
            answer = truncate_at_sentence(&answer, input.max_chars);
        }
        Ok(Generated {
            text: if unsure { String::new() } else { answer },
            unsure,
            model: response.model,
            prompt: Some(prompt.tag()),
            tokens_in: response.tokens_in,
            tokens_out: response.tokens_out,
            cost_usd: response.cost_usd,
            attempts: response.attempts,
            match_score: None,
        })
    }
}

/// Cuts text to at most `max` bytes at a sentence end when there is one.
pub fn truncate_at_sentence(text: &str, max: usize) -> String {
    let mut out = String::new();
    for s in split_sentences(text) {
        if out.len() + s.len() + 1 > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&s);
    }
    if out.is_empty() {
        text.chars().take(max).collect()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::HashingEmbedder;

    fn hit(doc: &str, text: &str) -> Hit {
        crate::testing::hit(doc, doc, text)
    }

    #[tokio::test]
    async fn extractive_quotes_the_matching_sentence_with_its_citation() {
        let embedder = Arc::new(HashingEmbedder::new(128));
        let hits = vec![
            hit("pricing", "The Growth plan costs $49 per month. It includes five seats and priority email support."),
            hit("refunds", "Annual plans can be refunded within 30 days of renewal. Monthly plans are not refunded after the billing date."),
        ];
        let q = "Can I get a refund on an annual plan?";
        let qv = embedder.vector(q);
        let input = GenerationInput {
            question: q,
            question_vector: Some(&qv),
            hits: &hits,
            max_chars: 600,
            tier: ModelTier::Standard,
            company: "Acme",
        };
        let g = Extractive::new(embedder).generate(&input, None).await.unwrap();
        assert!(g.text.starts_with("Annual plans can be refunded within 30 days of renewal. [2]"), "{}", g.text);
        assert!(!g.unsure);
        assert!(!g.text.contains("[3]"));
    }

    #[test]
    fn truncation_keeps_whole_sentences() {
        let t = truncate_at_sentence("One two three. Four five six. Seven eight nine.", 32);
        assert_eq!(t, "One two three. Four five six.");
    }
}
