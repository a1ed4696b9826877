//! How replies look in Slack: Block Kit for answers (text, sources, feedback buttons) and for the
//! agents' summary card (Claim, Resolve), plain mrkdwn for handoffs and notices.
//!
//! Text from the engine is escaped (`&`, `<`, `>`), so a customer's or a document's text can
//! never turn into a mention or a link; the policy's escalation target is a Slack mention by
//! design and is added as it is.

use frontdesk_channel::{Citation, HandoffSummary};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const ACTION_HELPFUL: &str = "frontdesk_helpful";
pub const ACTION_NOT_HELPFUL: &str = "frontdesk_not_helpful";
pub const ACTION_REQUEST_HUMAN: &str = "frontdesk_request_human";
pub const ACTION_CLAIM: &str = "frontdesk_claim";
pub const ACTION_RESOLVE: &str = "frontdesk_resolve";

/// Slack's limit for the text of a section block.
const SECTION_LIMIT: usize = 3000;

/// What a button carries back to us when it is clicked (its `value`, as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ButtonValue {
    /// The answer's turn (feedback buttons).
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<String>,
    /// The customer's conversation key.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// The customer's channel.
    #[serde(rename = "ch")]
    pub channel: String,
    /// The customer's thread (its root ts).
    #[serde(rename = "th")]
    pub thread: String,
}

/// Escapes text for mrkdwn.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Escaped text with Markdown bold (`**x**`) turned into Slack's (`*x*`).
pub fn mrkdwn(text: &str) -> String {
    escape(text).replace("**", "*")
}

fn section(text: &str) -> Vec<Value> {
    split(text, SECTION_LIMIT)
        .into_iter()
        .map(|chunk| json!({"type": "section", "text": {"type": "mrkdwn", "text": chunk}}))
        .collect()
}

/// Splits text into pieces of at most `limit` bytes, at line or word breaks where possible.
fn split(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > limit {
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let at = rest[..cut].rfind('\n').or_else(|| rest[..cut].rfind(' ')).filter(|&i| i > 0).unwrap_or(cut);
        out.push(rest[..at].to_string());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

fn link(c: &Citation, n: usize) -> String {
    let title = escape(&c.title).replace('|', "¦");
    match c.url.as_deref().filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
        Some(url) => format!("<{}|[{n}] {title}>", url.replace('|', "%7C").replace('>', "%3E").replace('<', "%3C")),
        None => format!("[{n}] {title}"),
    }
}

fn sources_block(label: &str, citations: &[Citation]) -> Option<Value> {
    if citations.is_empty() {
        return None;
    }
    // A context block holds at most ten elements; one element with every source fits them all.
    let links: Vec<String> = citations.iter().enumerate().map(|(i, c)| link(c, i + 1)).collect();
    let text = format!("{label}: {}", links.join("  ·  "));
    Some(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": split(&text, SECTION_LIMIT)[0]}]}))
}

fn button(text: &str, action_id: &str, value: &ButtonValue, style: Option<&str>) -> Value {
    let mut b = json!({
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": serde_json::to_string(value).unwrap_or_default(),
    });
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    b
}

/// The plain-text fallback of an answer (notifications, screen readers).
pub fn answer_fallback(text: &str, citations: &[Citation]) -> String {
    let mut out = mrkdwn(text);
    for (i, c) in citations.iter().enumerate() {
        out.push_str(&format!("\n{}", link(c, i + 1)));
    }
    out
}

/// An answer: the text, its sources as links, and the feedback buttons.
pub fn answer_blocks(text: &str, citations: &[Citation], value: &ButtonValue) -> Vec<Value> {
    let mut blocks = section(&mrkdwn(text));
    blocks.extend(sources_block("Sources", citations));
    blocks.push(json!({
        "type": "actions",
        "block_id": "frontdesk_feedback",
        "elements": [
            button("Helpful", ACTION_HELPFUL, value, None),
            button("Not helpful", ACTION_NOT_HELPFUL, value, None),
            button("Talk to a person", ACTION_REQUEST_HUMAN, value, Some("primary")),
        ]
    }));
    blocks
}

/// The handoff message: the text, then the people to call in.
pub fn handoff_text(text: &str, mention: Option<&str>) -> String {
    match mention.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => format!("{}\n{m}", mrkdwn(text)),
        None => mrkdwn(text),
    }
}

/// The agents' card for a handed-off conversation.
pub fn summary_blocks(s: &HandoffSummary, value: &ButtonValue) -> Vec<Value> {
    let mut blocks = section(&format!(
        "*A customer needs a person* in <#{}> ({}, confidence {:.2})",
        s.customer_channel.as_str().replace(['<', '>', '|'], ""),
        escape(&s.reason),
        s.confidence
    ));
    if s.question.trim().is_empty() {
        // A handoff asked for with the "Talk to a person" button carries no text of its own.
        blocks.extend(section("_The customer asked for a person with the button; the question is in their thread._"));
    } else {
        blocks.extend(section(&format!("*Question:*\n{}", escape(&s.question))));
    }
    if !s.condensed_question.trim().is_empty() && s.condensed_question.trim() != s.question.trim() {
        blocks.extend(section(&format!("*Understood as:*\n{}", escape(&s.condensed_question))));
    }
    blocks.extend(sources_block("Best sources", &s.sources));
    if let Some(draft) = &s.draft {
        blocks.extend(section(&format!("*Suggested answer (not sent):*\n{}", mrkdwn(draft))));
    }
    blocks.push(json!({
        "type": "actions",
        "block_id": "frontdesk_agent",
        "elements": [
            button("Claim", ACTION_CLAIM, value, Some("primary")),
            button("Resolve", ACTION_RESOLVE, value, None),
        ]
    }));
    blocks
}

/// The answer once someone rated it: the Helpful / Not helpful buttons give way to a line saying
/// who rated it how; "Talk to a person" stays.
pub fn answer_after_feedback(blocks: &[Value], helpful: bool, by: &str) -> Vec<Value> {
    let by = format!("<@{}>", by.replace(['<', '>', '|', '@'], ""));
    let rated = |e: &Value| e["action_id"] == ACTION_HELPFUL || e["action_id"] == ACTION_NOT_HELPFUL;
    let mut out = Vec::new();
    for b in blocks {
        if b["block_id"] == "frontdesk_rated" {
            continue;
        }
        if b["block_id"] == "frontdesk_feedback" {
            let kept: Vec<Value> =
                b["elements"].as_array().into_iter().flatten().filter(|e| !rated(e)).cloned().collect();
            let line = if helpful {
                format!(":thumbsup: {by} found this helpful. Thanks!")
            } else {
                format!(":thumbsdown: {by} found this not helpful.")
            };
            out.push(json!({"type": "context", "block_id": "frontdesk_rated", "elements": [{"type": "mrkdwn", "text": line}]}));
            if !kept.is_empty() {
                let mut actions = b.clone();
                actions["elements"] = json!(kept);
                out.push(actions);
            }
            continue;
        }
        out.push(b.clone());
    }
    out
}

/// The agents' card once a conversation was claimed (`done` = "claimed": who has it, and only
/// Resolve left) or resolved (who closed it, no buttons). `blocks` are the card as posted.
pub fn card_after(blocks: &[Value], done: &str, by: &str) -> Vec<Value> {
    let mut out: Vec<Value> = blocks
        .iter()
        .filter(|b| b["block_id"] != "frontdesk_agent" && b["block_id"] != "frontdesk_status")
        .cloned()
        .collect();
    let by = format!("<@{}>", by.replace(['<', '>', '|', '@'], ""));
    let line = if done == "claimed" {
        format!(":raised_hand: Claimed by {by}: they answer the customer in the thread.")
    } else {
        format!(":white_check_mark: Resolved by {by}.")
    };
    out.push(
        json!({"type": "context", "block_id": "frontdesk_status", "elements": [{"type": "mrkdwn", "text": line}]}),
    );
    if done == "claimed" {
        let resolve = blocks
            .iter()
            .filter(|b| b["block_id"] == "frontdesk_agent")
            .filter_map(|b| b["elements"].as_array())
            .flatten()
            .find(|e| e["action_id"] == ACTION_RESOLVE)
            .cloned();
        if let Some(resolve) = resolve {
            out.push(json!({"type": "actions", "block_id": "frontdesk_agent", "elements": [resolve]}));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_rated_answer_says_so_and_keeps_talk_to_a_person() {
        let value =
            ButtonValue { turn_id: Some("t1".into()), conversation: None, channel: "C1".into(), thread: "1.0".into() };
        let answer = answer_blocks("Refunds take 5 days.", &[], &value);
        let rated = answer_after_feedback(&answer, true, "U3");
        let text = serde_json::to_string(&rated).unwrap();
        assert!(text.contains("<@U3> found this helpful") && text.contains("Refunds take 5 days."), "{text}");
        assert!(!text.contains(ACTION_HELPFUL) && !text.contains(ACTION_NOT_HELPFUL), "{text}");
        assert!(text.contains(ACTION_REQUEST_HUMAN), "{text}");
        // Rated again (another click on a stale copy): one line, the latest.
        let again = serde_json::to_string(&answer_after_feedback(&rated, false, "U4")).unwrap();
        assert!(again.contains("<@U4> found this not helpful") && !again.contains("<@U3>"), "{again}");
    }

    #[test]
    fn a_claimed_card_keeps_its_summary_and_only_resolve_and_a_resolved_one_no_buttons() {
        let summary = HandoffSummary {
            question: "Can I get a refund?".into(),
            condensed_question: "Can I get a refund?".into(),
            reason: "low_confidence".into(),
            confidence: 0.3,
            sources: Vec::new(),
            draft: None,
            conversation: frontdesk_channel::ConversationKey::new("T1:C1:1.0").unwrap(),
            customer_channel: frontdesk_channel::ChannelId::new("C1").unwrap(),
        };
        let value = ButtonValue {
            turn_id: None,
            conversation: Some("T1:C1:1.0".into()),
            channel: "C1".into(),
            thread: "1.0".into(),
        };
        let card = summary_blocks(&summary, &value);
        let ids = |blocks: &[Value]| -> Vec<String> {
            blocks
                .iter()
                .filter_map(|b| b["elements"].as_array())
                .flatten()
                .filter_map(|e| e["action_id"].as_str())
                .map(str::to_string)
                .collect()
        };
        let text = |blocks: &[Value]| serde_json::to_string(blocks).unwrap();
        assert_eq!(ids(&card), vec![ACTION_CLAIM, ACTION_RESOLVE]);

        let claimed = card_after(&card, "claimed", "U7");
        assert_eq!(ids(&claimed), vec![ACTION_RESOLVE]);
        assert!(text(&claimed).contains("Claimed by <@U7>") && text(&claimed).contains("Can I get a refund?"));

        let resolved = card_after(&claimed, "resolved", "U8");
        assert!(ids(&resolved).is_empty());
        assert!(text(&resolved).contains("Resolved by <@U8>") && !text(&resolved).contains("Claimed by"));
        // A user id cannot smuggle in a link or another mention.
        assert!(text(&card_after(&card, "claimed", "U1>|<!channel")).contains("<@U1!channel>"));
    }

    #[test]
    fn engine_text_cannot_mention_or_link() {
        assert_eq!(mrkdwn("a <!channel> & **b**"), "a &lt;!channel&gt; &amp; *b*");
        assert_eq!(handoff_text("Sure <x>", Some("<!subteam^S1>")), "Sure &lt;x&gt;\n<!subteam^S1>");
    }

    #[test]
    fn long_text_is_split_into_sections_within_the_limit() {
        let text = "word ".repeat(1500);
        let blocks = section(&text);
        assert_eq!(blocks.len(), 3);
        assert!(blocks.iter().all(|b| b["text"]["text"].as_str().unwrap().len() <= SECTION_LIMIT));
    }

    #[test]
    fn sources_become_links() {
        let c = Citation {
            doc_id: "d".into(),
            chunk_id: "c".into(),
            title: "Refunds".into(),
            url: Some("https://h/r".into()),
        };
        let b = sources_block("Sources", &[c]).unwrap();
        assert_eq!(b["elements"][0]["text"], "Sources: <https://h/r|[1] Refunds>");
    }
}
