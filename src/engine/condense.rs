//! Condensing a follow-up into a standalone question.
//!
//! "And on the Growth plan?" means nothing to a search engine without the turn before it. With
//! a language model configured, the `condense` prompt rewrites the question. Without one, a
//! deterministic method carries the topic forward: when the question reads as a follow-up
//! (short, or leaning on "it", "that", "there", "also", ...), the distinctive words of the
//! customer's earlier messages that the question does not already contain are appended,
//! the most recent first. Plain concatenation of the whole history was measured to *lower*
//! recall (the agent's long answers drown the question), so only the customer's own turns are
//! used, and only when the question needs them.

use crate::llm::{ChatMessage, ChatRequest, Llm, ModelTier};
use crate::prompts::Prompts;
use crate::text::{content_words, words};
use std::collections::HashSet;

/// An earlier turn, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorTurn {
    pub from_customer: bool,
    pub text: String,
}

/// Words that make a question lean on what came before.
const FOLLOW_UP_CUES: &[&str] = &[
    "it", "its", "it's", "that", "this", "those", "these", "they", "them", "there", "also", "same", "else", "instead",
    "one", "ones", "he", "she", "his", "her", "him",
];

/// True when the question probably needs the conversation to be understood.
pub fn is_follow_up(question: &str) -> bool {
    let all = words(question);
    let content = content_words(question);
    if content.len() <= 3 {
        return true;
    }
    let starts = all.first().map(String::as_str);
    if matches!(starts, Some("and" | "also" | "but" | "so" | "then" | "or")) && content.len() <= 6 {
        return true;
    }
    let lower = question.to_lowercase();
    if ["what about", "how about", "what if", "same for", "and for", "and on", "and in"]
        .iter()
        .any(|p| lower.contains(p))
    {
        return true;
    }
    let cues: HashSet<&str> = FOLLOW_UP_CUES.iter().copied().collect();
    let cue_count = all.iter().filter(|w| cues.contains(w.as_str())).count();
    cue_count > 0 && content.len() <= 8
}

/// The deterministic condensation.
pub fn condense_deterministic(question: &str, history: &[PriorTurn]) -> String {
    if history.is_empty() || !is_follow_up(question) {
        return question.to_string();
    }
    let mut have: HashSet<String> = content_words(question).into_iter().collect();
    let mut carried: Vec<String> = Vec::new();
    // Most recent customer turns first; at most three turns and twelve words.
    for turn in history.iter().rev().filter(|t| t.from_customer).take(3) {
        for w in content_words(&turn.text) {
            if carried.len() >= 12 {
                break;
            }
            if have.insert(w.clone()) {
                carried.push(w);
            }
        }
    }
    if carried.is_empty() {
        question.to_string()
    } else {
        format!("{} ({})", question.trim(), carried.join(" "))
    }
}

fn transcript(history: &[PriorTurn]) -> String {
    // The last few turns are enough; long agent answers are cut so the prompt stays small.
    let start = history.len().saturating_sub(6);
    history[start..]
        .iter()
        .map(|t| {
            let who = if t.from_customer { "Customer" } else { "Support" };
            let text: String = t.text.chars().take(600).collect();
            format!("{who}: {text}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Condenses with the model; falls back to the deterministic method on any failure or on an
/// output that does not look like a question about the same thing.
pub async fn condense_with_llm(
    llm: &dyn Llm,
    prompts: &Prompts,
    question: &str,
    history: &[PriorTurn],
) -> (String, Option<String>) {
    if history.is_empty() {
        return (question.to_string(), None);
    }
    let Ok(prompt) = prompts.get("condense") else {
        return (condense_deterministic(question, history), None);
    };
    let Ok(text) = prompt.render(&[("history", &transcript(history)), ("question", question)]) else {
        return (condense_deterministic(question, history), None);
    };
    let request = ChatRequest {
        messages: vec![ChatMessage::user(text)],
        temperature: 0.0,
        max_tokens: 80,
        tier: ModelTier::Cheap,
    };
    match llm.complete(&request, None).await {
        Ok(r) => {
            let line =
                r.text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").trim_matches('"').to_string();
            if line.len() < 3 || line.len() > 400 {
                (condense_deterministic(question, history), Some(prompt.tag()))
            } else {
                (line, Some(prompt.tag()))
            }
        }
        Err(_) => (condense_deterministic(question, history), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(t: &str) -> PriorTurn {
        PriorTurn { from_customer: true, text: t.into() }
    }
    fn agent(t: &str) -> PriorTurn {
        PriorTurn { from_customer: false, text: t.into() }
    }

    #[test]
    fn standalone_questions_are_left_alone() {
        let h = vec![user("What is the API rate limit on Starter?"), agent("60 requests per minute.")];
        let q = "How do I verify webhook signatures with the signing secret?";
        assert_eq!(condense_deterministic(q, &h), q);
        assert_eq!(condense_deterministic("and on scale?", &[]), "and on scale?");
    }

    #[test]
    fn follow_ups_carry_the_customers_topic_forward() {
        let h =
            vec![user("What is the API rate limit on Starter?"), agent("Starter allows 60 requests per minute [1].")];
        let c = condense_deterministic("and on scale?", &h);
        assert!(c.starts_with("and on scale?"), "{c}");
        for w in ["api", "rate", "limit"] {
            assert!(c.contains(w), "{c}");
        }
        // The agent's words are not carried.
        assert!(!c.contains("requests"), "{c}");
    }

    #[test]
    fn pronoun_questions_are_follow_ups() {
        assert!(is_follow_up("how do I do that on mobile?"));
        assert!(is_follow_up("Does it work with Xero too?"));
        assert!(!is_follow_up("How do I connect QuickBooks Online to sync paid invoices automatically?"));
    }
}
