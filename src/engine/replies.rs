//! What the customer and the agents are told. One place for the wording, so every channel
//! says the same thing, and a reason code always maps to a message a customer can read
//! (never an error text).

use super::turn::TurnReason;
use crate::channel::{Citation, HandoffSummary, Inbound, Outbound, OutboundKind};
use crate::conversation::Conversation;
use crate::policy::Policy;

/// The customer-facing handoff message for a reason.
pub fn handoff_text(reason: TurnReason) -> &'static str {
    match reason {
        TurnReason::AskedForHuman => "Sure — I've asked a person from our support team to join. They'll reply right here.",
        TurnReason::RateLimited => {
            "You're sending messages faster than I can answer, so I've passed this conversation to our support team. A person will follow up here."
        }
        TurnReason::LlmUnavailable | TurnReason::RetrievalUnavailable | TurnReason::InternalError => {
            "I can't answer right now, so I've passed your question to our support team. A person will follow up here."
        }
        TurnReason::SuggestMode => "Thanks — a person from our support team will answer here shortly.",
        TurnReason::SuspectedInjection => "I can't help with that request, so I've passed this conversation to our support team. A person will follow up here.",
        _ => "I'm not sure about this one, so I've passed your question to our support team. A person will reply here.",
    }
}

fn base(inbound: &Inbound, id: String, text: String, kind: OutboundKind) -> Outbound {
    Outbound::reply_to(inbound, id, text, kind)
}

/// The answer message.
pub fn answer(inbound: &Inbound, trace_id: &str, text: String, citations: Vec<Citation>, confidence: f32) -> Outbound {
    base(
        inbound,
        format!("{trace_id}-answer"),
        text,
        OutboundKind::Answer { turn_id: trace_id.to_string(), citations, confidence },
    )
}

/// A short notice in the thread.
pub fn notice(inbound: &Inbound, id: String, text: String) -> Outbound {
    base(inbound, id, text, OutboundKind::Notice)
}

/// The handoff: the customer is told, the escalation target is mentioned, and the agents get a
/// summary card when the policy names an agents' channel.
pub fn handoff(
    inbound: &Inbound,
    trace_id: &str,
    reason: TurnReason,
    policy: &Policy,
    summary: HandoffSummary,
) -> Vec<Outbound> {
    let mut out = vec![base(
        inbound,
        format!("{trace_id}-handoff"),
        handoff_text(reason).to_string(),
        OutboundKind::Handoff { mention: policy.escalation_target.clone() },
    )];
    let agents_channel = policy.agents_channel.as_deref().and_then(|c| crate::channel::ChannelId::new(c).ok());
    if agents_channel.is_some() || summary.draft.is_some() {
        let text = summary_text(&summary);
        out.push(base(
            inbound,
            format!("{trace_id}-summary"),
            text,
            OutboundKind::AgentSummary { agents_channel, summary },
        ));
    }
    out
}

/// A plain-text rendering of the summary card (channels render richer cards from the fields).
pub fn summary_text(s: &HandoffSummary) -> String {
    let mut t = format!("Handoff ({}, confidence {:.2})\nQuestion: {}", s.reason, s.confidence, s.question);
    if s.condensed_question != s.question {
        t.push_str(&format!("\nUnderstood as: {}", s.condensed_question));
    }
    if !s.sources.is_empty() {
        t.push_str("\nBest sources:");
        for c in &s.sources {
            t.push_str(&format!("\n- {}{}", c.title, c.url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default()));
        }
    }
    if let Some(d) = &s.draft {
        t.push_str(&format!("\nSuggested answer:\n{d}"));
    }
    t
}

/// Who joined, for the customer.
pub fn agent_joined(inbound: &Inbound, conv: &Conversation, agent: &str) -> Outbound {
    let who = inbound.author.display_name.clone().unwrap_or_else(|| agent.to_string());
    notice(
        inbound,
        format!("{}-claim-{}", conv.key, conv.transitions.len()),
        format!("{who} from our support team has joined and will take it from here."),
    )
}
