//! Answers a model writes that must never reach the customer: one that verification rejects, one
//! refused on confidence, and one the channel only suggests to its agents. The whole-conversation
//! tests of each channel play them through a scripted model that streams them, and check that
//! the platform never received a word of them in the customer's conversation.

use super::scripted_llm::{sse_delta, sse_finish, Reply, ScriptedServer, StreamEnd};
use frontdesk::config::ProviderConfig;
use frontdesk::generate::{Generator, LlmGenerator};
use frontdesk::llm::openai::{build_client, OpenAiProvider};
use frontdesk::llm::Llm;
use frontdesk::prompts::Prompts;
use std::sync::Arc;

/// A question the sample articles answer, so that retrieval lets the model write.
pub const QUESTION: &str = "Can annual plans be refunded within 30 days of the renewal?";

/// One answer the customer must not see, and the channel policy it is written under.
pub struct Case {
    /// A short name, for ids and messages.
    pub name: &'static str,
    /// What the model writes, piece by piece as it streams. The first piece carries the marker,
    /// so a channel that showed any of the answer while it was written showed the marker.
    pub pieces: &'static [&'static str],
    /// A phrase found nowhere else: wherever it shows, the model's text showed.
    pub marker: &'static str,
    /// The channel policy the turn runs under (besides the agents' channel).
    pub policy: &'static [(&'static str, &'static str)],
    /// The reason code the turn must end with.
    pub reason: &'static str,
}

/// The three cases, in the order the scripted model answers them.
pub const CASES: [Case; 3] = [
    Case {
        name: "rejected",
        // Cites a source that was not retrieved, for something no article says.
        pieces: &["The Marmalade Clause ", "refunds annual plans ", "for ninety days after renewal [9]."],
        marker: "Marmalade Clause",
        policy: &[("mode", "answer"), ("confidence_threshold", "0.5")],
        reason: "unsupported_answer",
    },
    Case {
        name: "unsure",
        // A supported, cited answer; the channel asks for more confidence than any answer has.
        pieces: &[
            "Quokka Desk says annual plans ",
            "can be refunded in full within 30 days ",
            "of the renewal date [1].",
        ],
        marker: "Quokka Desk",
        policy: &[("mode", "answer"), ("confidence_threshold", "1")],
        reason: "low_confidence",
    },
    Case {
        name: "suggested",
        // A supported, cited answer in a suggest-mode channel: it is for the agents only. (No
        // threshold to pass: what is tested is the mode, not how the toy embedder scores it.)
        pieces: &["Pelican Note: annual plans ", "can be refunded in full within 30 days ", "of the renewal date [1]."],
        marker: "Pelican Note",
        policy: &[("mode", "suggest"), ("confidence_threshold", "0")],
        reason: "suggest_mode",
    },
];

impl Case {
    /// The case's policy pairs, with `agents_channel` set to `agents`.
    pub fn policy(&self, agents: &str) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> =
            self.policy.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        pairs.push(("agents_channel".into(), agents.into()));
        pairs
    }

    /// The model's reply: the pieces streamed one by one.
    pub fn reply(&self) -> Reply {
        let mut events: Vec<String> = self.pieces.iter().map(|p| sse_delta(p)).collect();
        events.push(sse_finish("stop"));
        Reply::stream(events, StreamEnd::Complete)
    }

    /// True when `text` carries the marker or any piece of the answer (spacing aside).
    pub fn leaks_into(&self, text: &str) -> bool {
        let text = squeeze(text);
        std::iter::once(self.marker).chain(self.pieces.iter().copied()).any(|p| text.contains(&squeeze(p)))
    }
}

/// The cases whose answer `text` carries, by name.
pub fn leaked_into(text: &str) -> Vec<&'static str> {
    CASES.iter().filter(|c| c.leaks_into(text)).map(|c| c.name).collect()
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The scripted model: it answers the cases in order, then fails.
pub async fn scripted_model() -> ScriptedServer {
    ScriptedServer::start(CASES.iter().map(Case::reply).collect()).await
}

/// A generator that asks the model at `base_url` (streaming, as providers do by default).
pub fn model_generator(base_url: &str) -> Arc<dyn Generator> {
    let provider = ProviderConfig {
        name: "scripted".into(),
        base_url: base_url.into(),
        model: "model-scripted".into(),
        api_key: None,
        api_key_env: None,
        connect_timeout_ms: 2_000,
        timeout_ms: 10_000,
        max_retries: 0,
        backoff_base_ms: 10,
        backoff_max_ms: 40,
        stream: true,
        price_in_per_mtok: 0.0,
        price_out_per_mtok: 0.0,
    };
    let llm: Arc<dyn Llm> = Arc::new(OpenAiProvider::new(&provider, build_client()).unwrap());
    Arc::new(LlmGenerator::new(llm, Arc::new(Prompts::built_in().unwrap()), 0.1, 300, true))
}
