//! The reply context: what the adapter keeps in `Inbound.reply_context` (opaque to the engine,
//! copied into each reply and stored with it in the outbox) to deliver a reply in the customer's
//! thread, and its checks when the reply comes back to be delivered.
//!
//! The stored form is the JSON object frontdesk has always written, so replies queued by an
//! earlier version still deliver: `{"channel", "thread_ts" (the thread root), "message_ts" (the
//! customer's message, null for a button click)}`, plus `"card"` (the agents' card clicked on)
//! for Claim and Resolve. A missing or empty field is taken from the reply itself (its channel,
//! and the thread its conversation key names); a field of the wrong kind is refused with
//! `bad_reply_context`, naming the field.

use frontdesk_channel::AdapterError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const PLATFORM: &str = "slack";

/// The reply context of a Slack message or button click.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct ReplyContext {
    /// The customer's channel.
    pub channel: Option<String>,
    /// The thread's root message, where replies go.
    pub thread_ts: Option<String>,
    /// The customer's message (for the 👀 reaction); none for a button click.
    pub message_ts: Option<String>,
    /// For Claim and Resolve: the agents' card clicked on, so the reply can show on it who took
    /// the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRef>,
}

/// An agents' card and what was done on it. Updating the card is best effort, so a card with a
/// field missing is kept and simply not updated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CardRef {
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub ts: String,
    /// The card's blocks as they were clicked, rewritten with the status line.
    #[serde(default)]
    pub blocks: Vec<Value>,
    /// `claimed` or `resolved`.
    #[serde(default)]
    pub done: String,
    /// The agent's user id.
    #[serde(default)]
    pub by: String,
}

/// Where a reply goes, once the reply context is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Place {
    pub channel: String,
    pub thread_ts: String,
    /// The customer's message (for the reaction); none for a button click.
    pub message_ts: Option<String>,
}

fn bad(message: String) -> AdapterError {
    AdapterError::Rejected { platform: PLATFORM, code: "bad_reply_context".into(), message }
}

/// A Slack message timestamp: `<seconds>.<digits>`, e.g. `1700000000.000100`.
fn is_ts(s: &str) -> bool {
    s.split_once('.').is_some_and(|(secs, frac)| {
        !secs.is_empty() && !frac.is_empty() && (secs.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    })
}

/// A Slack channel id: letters and digits (`C024BE91L`, `D0123`, `G0456`).
fn is_channel_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// One field of the stored object: absent, null or empty is `None`; anything else must be a
/// `T` that passes `valid`.
fn field<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    key: &str,
    kind: &str,
    valid: impl Fn(&T) -> bool,
) -> Result<Option<T>, AdapterError> {
    let v = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(v) => v,
    };
    let parsed = T::deserialize(v).map_err(|e| bad(format!("the reply context's {key} {v} is not {kind} ({e})")))?;
    if !valid(&parsed) {
        return Err(bad(format!("the reply context's {key} {v} is not {kind}")));
    }
    Ok(Some(parsed))
}

impl ReplyContext {
    /// The context of a customer's message.
    pub(crate) fn of_message(channel: &str, thread_root: &str, ts: &str) -> ReplyContext {
        ReplyContext {
            channel: Some(channel.to_string()),
            thread_ts: Some(thread_root.to_string()),
            message_ts: Some(ts.to_string()),
            card: None,
        }
    }

    /// The context of a button click in the customer's thread (`card`: the agents' card it was
    /// on, for Claim and Resolve).
    pub(crate) fn of_click(channel: &str, thread: &str, card: Option<CardRef>) -> ReplyContext {
        ReplyContext { channel: Some(channel.to_string()), thread_ts: Some(thread.to_string()), message_ts: None, card }
    }

    /// The stored form.
    pub(crate) fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// Reads a stored reply context. `null` (a reply that came from no Slack message) is an empty
    /// context; anything other than an object, or a field of the wrong kind, is refused.
    pub(crate) fn from_value(v: &Value) -> Result<ReplyContext, AdapterError> {
        let obj = match v {
            Value::Null => return Ok(ReplyContext::default()),
            Value::Object(obj) => obj,
            other => {
                return Err(bad(format!(
                    "the reply context {other} is not a JSON object with the Slack channel and thread to reply in; \
                     the reply did not come from a Slack message"
                )))
            }
        };
        let card = match obj.get("card") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                CardRef::deserialize(v)
                    .map_err(|e| bad(format!("the reply context's card is not an agents' card ({e})")))?,
            ),
        };
        Ok(ReplyContext {
            channel: field::<String>(obj, "channel", "a Slack channel id", |s| is_channel_id(s))?,
            thread_ts: field::<String>(obj, "thread_ts", "a Slack message timestamp", |s| is_ts(s))?,
            message_ts: field::<String>(obj, "message_ts", "a Slack message timestamp", |s| is_ts(s))?,
            card,
        })
    }

    /// Where the reply goes. The channel defaults to the reply's own, the thread to the one its
    /// conversation key (`{team}:{channel}:{thread root}`) names in that channel; `None` when
    /// neither names a thread.
    pub(crate) fn place(&self, channel: &str, conversation: &str) -> Option<Place> {
        let channel = self.channel.clone().unwrap_or_else(|| channel.to_string());
        let thread_ts = self.thread_ts.clone().or_else(|| {
            let (_team, rest) = conversation.split_once(':')?;
            let (key_channel, root) = rest.split_once(':')?;
            (key_channel == channel && is_ts(root)).then(|| root.to_string())
        })?;
        Some(Place { channel, thread_ts, message_ts: self.message_ts.clone() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn rejected(v: Value) -> String {
        match ReplyContext::from_value(&v).unwrap_err() {
            AdapterError::Rejected { code, message, .. } => {
                assert_eq!(code, "bad_reply_context");
                message
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_stored_form_is_the_one_earlier_versions_wrote() {
        let message = ReplyContext::of_message("C1", "1700000000.000001", "1700000000.000002");
        assert_eq!(
            message.to_value().unwrap(),
            json!({"channel": "C1", "thread_ts": "1700000000.000001", "message_ts": "1700000000.000002"})
        );
        let card = CardRef {
            channel: "CAGENTS".into(),
            ts: "1700000000.000009".into(),
            blocks: vec![json!({"type": "section", "block_id": "q"})],
            done: "claimed".into(),
            by: "U5".into(),
        };
        let click = ReplyContext::of_click("C1", "1700000000.000001", Some(card));
        assert_eq!(
            click.to_value().unwrap(),
            json!({"channel": "C1", "thread_ts": "1700000000.000001", "message_ts": null,
                "card": {"channel": "CAGENTS", "ts": "1700000000.000009",
                    "blocks": [{"type": "section", "block_id": "q"}], "done": "claimed", "by": "U5"}})
        );
        for ctx in [message, click] {
            assert_eq!(ReplyContext::from_value(&ctx.to_value().unwrap()).unwrap(), ctx);
        }
    }

    #[test]
    fn a_context_an_earlier_version_stored_still_reads() {
        // As written by every earlier version, keys in its order, with the click's card.
        let stored = r#"{"channel":"C0AB12CD3","thread_ts":"1712345678.000200","message_ts":null,
            "card":{"channel":"C0AGENTS1","ts":"1712345690.000300","blocks":[],"done":"resolved","by":"U0AGENT1"}}"#;
        let ctx = ReplyContext::from_value(&serde_json::from_str(stored).unwrap()).unwrap();
        assert_eq!(
            ctx.place("CIGNORED", "T1:CIGNORED:1.0"),
            Some(Place { channel: "C0AB12CD3".into(), thread_ts: "1712345678.000200".into(), message_ts: None })
        );
        let card = ctx.card.unwrap();
        assert_eq!(
            (card.channel.as_str(), card.done.as_str(), card.by.as_str()),
            ("C0AGENTS1", "resolved", "U0AGENT1")
        );
    }

    #[test]
    fn missing_fields_come_from_the_reply_and_its_conversation_key() {
        let empty = ReplyContext::from_value(&Value::Null).unwrap();
        assert_eq!(
            empty.place("C1", "T1:C1:1700000000.000001"),
            Some(Place { channel: "C1".into(), thread_ts: "1700000000.000001".into(), message_ts: None })
        );
        // A key of another channel, or no thread in it, names no thread of this one.
        assert_eq!(empty.place("C1", "T1:C2:1700000000.000001"), None);
        assert_eq!(empty.place("C1", "T1:C1:"), None);
        assert_eq!(empty.place("C1", "somewhere-else"), None);
        let blank = ReplyContext::from_value(&json!({"channel": "", "thread_ts": "", "message_ts": ""})).unwrap();
        assert_eq!(blank, ReplyContext::default());
    }

    #[test]
    fn a_malformed_context_says_which_field_is_wrong() {
        assert_eq!(
            rejected(json!("T1:C1:1.0")),
            "the reply context \"T1:C1:1.0\" is not a JSON object with the Slack channel and thread to reply in; \
             the reply did not come from a Slack message"
        );
        assert_eq!(
            rejected(json!({"channel": "C1", "thread_ts": "yesterday"})),
            "the reply context's thread_ts \"yesterday\" is not a Slack message timestamp"
        );
        assert_eq!(
            rejected(json!({"channel": "C1", "thread_ts": 1700000000.5})),
            "the reply context's thread_ts 1700000000.5 is not a Slack message timestamp \
             (invalid type: floating point `1700000000.5`, expected a string)"
        );
        assert_eq!(
            rejected(json!({"channel": "#general", "thread_ts": "1.0"})),
            "the reply context's channel \"#general\" is not a Slack channel id"
        );
        assert_eq!(
            rejected(json!({"channel": "C1", "thread_ts": "1.0", "message_ts": "1.0x"})),
            "the reply context's message_ts \"1.0x\" is not a Slack message timestamp"
        );
        assert!(rejected(json!({"channel": "C1", "thread_ts": "1.0", "card": "CAGENTS"}))
            .starts_with("the reply context's card is not an agents' card (invalid type: string \"CAGENTS\""));
    }
}
