//! Slack payloads → frontdesk's neutral messages.
//!
//! The same user message can reach us twice (as `message` and as `app_mention`) and any event
//! can be redelivered (`X-Slack-Retry-Num`). Both must become one message in the inbox, so a
//! message's id is its place in Slack — `{channel}:{ts}` — which both events share, and every
//! other field is derived from data both events carry: the mention is read from the text
//! (`<@BOT>`), not from the event type.
//!
//! Conversation key: `{team}:{channel}:{thread root ts}`. `reply_context`: a
//! `ReplyContext` (`reply.rs`) (`{"channel", "thread_ts" (the thread root), "message_ts" (the
//! customer's message, null for a button click)}`).

use crate::blocks::{
    ButtonValue, ACTION_CLAIM, ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_REQUEST_HUMAN, ACTION_RESOLVE,
};
use crate::reply::{CardRef, ReplyContext};
use frontdesk_channel::{
    Attachment, Author, AuthorId, ChannelId, ConversationKey, EventId, Inbound, Source, UserAction, WorkspaceId,
};
use serde_json::Value;

/// What a request body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// Slack checks the endpoint when the Request URL is saved.
    UrlVerification { challenge: String },
    /// An event of a workspace.
    Event(EventCallback),
    /// Slack stopped sending us events for a while (`app_rate_limited`).
    AppRateLimited { team_id: Option<String> },
    /// Another envelope type; acknowledged and logged.
    Other { kind: String },
}

/// One `event_callback`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCallback {
    pub team_id: String,
    pub event_id: Option<String>,
    /// The bot user of this installation, from `authorizations`, when Slack sent it.
    pub bot_user_id: Option<String>,
    pub event: Value,
}

/// Why a payload could not be read: answered with 400 and this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn required<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, Malformed> {
    str_field(v, key).ok_or_else(|| Malformed(format!("{path}{key} is missing or not a string")))
}

/// Reads an Events API body.
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, Malformed> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Malformed(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(Malformed("the body is not a JSON object".into()));
    }
    let kind = required(&v, "type", "")?;
    match kind {
        "url_verification" => Ok(Envelope::UrlVerification { challenge: required(&v, "challenge", "")?.to_string() }),
        "event_callback" => {
            let event = v.get("event").filter(|e| e.is_object()).ok_or_else(|| Malformed("event is missing".into()))?;
            let team_id = str_field(&v, "team_id")
                .or_else(|| event.get("team").and_then(Value::as_str))
                .ok_or_else(|| Malformed("team_id is missing or not a string".into()))?
                .to_string();
            let bot_user_id = v
                .get("authorizations")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|x| x.get("is_bot").and_then(Value::as_bool) == Some(true)))
                .and_then(|a| str_field(a, "user_id"))
                .map(str::to_string);
            Ok(Envelope::Event(EventCallback {
                team_id,
                event_id: str_field(&v, "event_id").map(str::to_string),
                bot_user_id,
                event: event.clone(),
            }))
        }
        "app_rate_limited" => Ok(Envelope::AppRateLimited { team_id: str_field(&v, "team_id").map(str::to_string) }),
        other => Ok(Envelope::Other { kind: other.to_string() }),
    }
}

/// A customer's or an agent's message, read from a `message` or `app_mention` event.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageFacts {
    pub team: String,
    pub channel: String,
    pub user: String,
    pub text: String,
    pub ts: String,
    pub thread_root: String,
    pub top_level: bool,
    pub addressed: bool,
    pub attachments: Vec<Attachment>,
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventOutcome {
    Message(MessageFacts),
    /// Not for the engine (our own message, another bot, an edit, a join...), with the reason.
    Ignore(String),
}

/// Subtypes that are still a person writing.
const USER_SUBTYPES: &[&str] = &["file_share", "thread_broadcast"];

/// Reads a `message` or `app_mention` event. `bot_user_id` is our bot in this workspace.
pub fn read_event(cb: &EventCallback, bot_user_id: Option<&str>) -> Result<EventOutcome, Malformed> {
    let ev = &cb.event;
    let kind = required(ev, "type", "event.")?;
    if kind != "message" && kind != "app_mention" {
        return Ok(EventOutcome::Ignore(format!("event type {kind} is not a message")));
    }
    if let Some(subtype) = str_field(ev, "subtype") {
        if !USER_SUBTYPES.contains(&subtype) {
            return Ok(EventOutcome::Ignore(format!("message subtype {subtype}")));
        }
    }
    if ev.get("bot_id").is_some_and(|b| !b.is_null()) || ev.get("bot_profile").is_some_and(|b| !b.is_null()) {
        return Ok(EventOutcome::Ignore("written by a bot".into()));
    }
    let user = required(ev, "user", "event.")?;
    if Some(user) == bot_user_id {
        return Ok(EventOutcome::Ignore("our own message".into()));
    }
    let channel = required(ev, "channel", "event.")?;
    let ts = required(ev, "ts", "event.")?;
    let text = match ev.get("text") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Malformed("event.text is not a string".into())),
    };
    let thread_ts = str_field(ev, "thread_ts");
    let top_level = thread_ts.is_none_or(|t| t == ts);
    let thread_root = thread_ts.unwrap_or(ts).to_string();
    let mention = bot_user_id.map(|b| format!("<@{b}>"));
    let mentioned = mention.as_deref().is_some_and(|m| text.contains(m) || text.contains(&m.replace('>', "|")));
    let is_dm = str_field(ev, "channel_type") == Some("im") || channel.starts_with('D');
    let clean = match &mention {
        Some(m) => strip_mention(text, m),
        None => text.trim().to_string(),
    };
    let attachments = ev
        .get("files")
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .map(|f| Attachment {
                    name: str_field(f, "name").or_else(|| str_field(f, "title")).unwrap_or("file").to_string(),
                    content_type: str_field(f, "mimetype").map(str::to_string),
                    size_bytes: f.get("size").and_then(Value::as_u64).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(EventOutcome::Message(MessageFacts {
        team: cb.team_id.clone(),
        channel: channel.to_string(),
        user: user.to_string(),
        text: clean,
        ts: ts.to_string(),
        thread_root,
        top_level,
        addressed: mentioned || is_dm,
        attachments,
    }))
}

/// Removes our mention (`<@B>` or `<@B|name>`) from the text.
fn strip_mention(text: &str, mention: &str) -> String {
    let mut out = text.replace(mention, " ");
    let open = &mention[..mention.len() - 1];
    while let Some(start) = out.find(&format!("{open}|")) {
        match out[start..].find('>') {
            Some(end) => out.replace_range(start..start + end + 1, " "),
            None => break,
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The conversation key of a thread.
pub fn conversation_key(team: &str, channel: &str, thread_root: &str) -> String {
    format!("{team}:{channel}:{thread_root}")
}

fn invalid(e: impl std::fmt::Display) -> Malformed {
    Malformed(e.to_string())
}

impl MessageFacts {
    pub fn into_inbound(self, is_agent: bool, now_ms: i64) -> Result<Inbound, Malformed> {
        Ok(Inbound {
            id: EventId::new(format!("{}:{}", self.channel, self.ts)).map_err(invalid)?,
            source: Source::Slack,
            workspace: WorkspaceId::new(self.team.clone()).map_err(invalid)?,
            channel: ChannelId::new(self.channel.clone()).map_err(invalid)?,
            conversation: ConversationKey::new(conversation_key(&self.team, &self.channel, &self.thread_root))
                .map_err(invalid)?,
            author: Author {
                id: AuthorId::new(self.user).map_err(invalid)?,
                display_name: None,
                is_bot: false,
                is_agent,
            },
            text: self.text,
            attachments: self.attachments,
            received_at_ms: now_ms,
            addressed_to_bot: self.addressed,
            top_level: self.top_level,
            reply_context: ReplyContext::of_message(&self.channel, &self.thread_root, &self.ts)
                .to_value()
                .map_err(invalid)?,
            action: None,
            unverified_sender: false,
        })
    }
}

/// A click on one of our buttons.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickFacts {
    pub team: String,
    pub user: String,
    /// The clicker's Slack name, shown to customers ("alice from our support team has joined").
    pub user_name: Option<String>,
    pub action_id: String,
    pub action_ts: String,
    pub action: UserAction,
    pub value: ButtonValue,
    /// The message the button is on (channel, ts, its blocks): for Claim and Resolve the agents'
    /// card, which the reply to the click updates; for feedback the answer, which shows it.
    pub clicked: Option<(String, String, Vec<Value>)>,
}

impl ClickFacts {
    /// True for the agents' buttons (Claim, Resolve).
    pub fn is_agent_action(&self) -> bool {
        matches!(self.action, UserAction::Claim | UserAction::Resolve)
    }

    /// The click as a message of the customer's conversation.
    pub fn into_inbound(self, is_agent: bool, now_ms: i64) -> Result<Inbound, Malformed> {
        let v = &self.value;
        let conversation =
            v.conversation.clone().unwrap_or_else(|| conversation_key(&self.team, &v.channel, &v.thread));
        Ok(Inbound {
            id: EventId::new(format!("click:{}:{}:{}", self.action_ts, self.user, self.action_id)).map_err(invalid)?,
            source: Source::Slack,
            workspace: WorkspaceId::new(self.team.clone()).map_err(invalid)?,
            channel: ChannelId::new(v.channel.clone()).map_err(invalid)?,
            conversation: ConversationKey::new(conversation).map_err(invalid)?,
            author: Author {
                id: AuthorId::new(self.user.clone()).map_err(invalid)?,
                display_name: self.user_name.clone(),
                is_bot: false,
                is_agent,
            },
            text: String::new(),
            attachments: Vec::new(),
            received_at_ms: now_ms,
            addressed_to_bot: true,
            top_level: false,
            reply_context: {
                let card = self.clicked.as_ref().filter(|_| self.is_agent_action()).map(|(channel, ts, blocks)| {
                    let done = if self.action == UserAction::Claim { "claimed" } else { "resolved" };
                    CardRef {
                        channel: channel.clone(),
                        ts: ts.clone(),
                        blocks: blocks.clone(),
                        done: done.into(),
                        by: self.user.clone(),
                    }
                });
                ReplyContext::of_click(&v.channel, &v.thread, card).to_value().map_err(invalid)?
            },
            action: Some(self.action),
            unverified_sender: false,
        })
    }
}

/// What an interaction payload turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum ClickOutcome {
    Click(Box<ClickFacts>),
    Ignore(String),
}

/// Reads the JSON of an interaction's `payload` form field.
pub fn read_interaction(payload: &Value) -> Result<ClickOutcome, Malformed> {
    let kind = required(payload, "type", "payload.")?;
    if kind != "block_actions" {
        return Ok(ClickOutcome::Ignore(format!("interaction type {kind}")));
    }
    let user = payload.get("user").ok_or_else(|| Malformed("payload.user is missing".into()))?;
    let user_id = required(user, "id", "payload.user.")?;
    let team = payload
        .get("team")
        .and_then(|t| str_field(t, "id"))
        .or_else(|| str_field(user, "team_id"))
        .ok_or_else(|| Malformed("payload.team.id is missing".into()))?;
    let actions = payload
        .get("actions")
        .and_then(Value::as_array)
        .ok_or_else(|| Malformed("payload.actions is missing or not a list".into()))?;
    let Some(action) = actions.first() else {
        return Err(Malformed("payload.actions is empty".into()));
    };
    let action_id = required(action, "action_id", "payload.actions[0].")?;
    let known = [ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_REQUEST_HUMAN, ACTION_CLAIM, ACTION_RESOLVE];
    if !known.contains(&action_id) {
        return Ok(ClickOutcome::Ignore(format!("action {action_id} is not one of ours")));
    }
    let action_ts = required(action, "action_ts", "payload.actions[0].")?;
    let raw = required(action, "value", "payload.actions[0].")?;
    let value: ButtonValue = serde_json::from_str(raw)
        .map_err(|e| Malformed(format!("payload.actions[0].value is not a frontdesk button value: {e}")))?;
    let turn = || value.turn_id.clone().ok_or_else(|| Malformed("payload.actions[0].value has no turn id".into()));
    let user_action = match action_id {
        ACTION_HELPFUL => UserAction::Feedback { turn_id: turn()?, helpful: true },
        ACTION_NOT_HELPFUL => UserAction::Feedback { turn_id: turn()?, helpful: false },
        ACTION_REQUEST_HUMAN => UserAction::RequestHuman,
        ACTION_CLAIM => UserAction::Claim,
        _ => UserAction::Resolve,
    };
    if user_action_needs_conversation(&user_action) && value.conversation.is_none() {
        return Err(Malformed("payload.actions[0].value has no conversation".into()));
    }
    // The clicked message's place: `container` for messages, else `channel` + `message`.
    // Without it the click still counts; only the message can't be updated.
    let clicked = (|| {
        let container = payload.get("container");
        let channel = container
            .and_then(|c| str_field(c, "channel_id"))
            .or_else(|| payload.get("channel").and_then(|c| str_field(c, "id")))?;
        let message = payload.get("message");
        let ts =
            container.and_then(|c| str_field(c, "message_ts")).or_else(|| message.and_then(|m| str_field(m, "ts")))?;
        let blocks = message.and_then(|m| m.get("blocks")).and_then(Value::as_array).cloned().unwrap_or_default();
        Some((channel.to_string(), ts.to_string(), blocks))
    })();
    Ok(ClickOutcome::Click(Box::new(ClickFacts {
        team: team.to_string(),
        user: user_id.to_string(),
        user_name: str_field(user, "name").or_else(|| str_field(user, "username")).map(str::to_string),
        action_id: action_id.to_string(),
        action_ts: action_ts.to_string(),
        action: user_action,
        value,
        clicked,
    })))
}

fn user_action_needs_conversation(a: &UserAction) -> bool {
    matches!(a, UserAction::Claim | UserAction::Resolve)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn cb(event: Value) -> EventCallback {
        EventCallback { team_id: "T1".into(), event_id: Some("Ev1".into()), bot_user_id: Some("UBOT".into()), event }
    }

    fn facts(event: Value) -> MessageFacts {
        match read_event(&cb(event), Some("UBOT")).unwrap() {
            EventOutcome::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn message_and_app_mention_of_one_message_normalise_the_same() {
        let msg = facts(json!({"type":"message","channel":"C1","channel_type":"channel","user":"U1",
            "text":"hi <@UBOT> how do refunds work?","ts":"10.1"}));
        let mention = facts(
            json!({"type":"app_mention","channel":"C1","user":"U1","text":"hi <@UBOT> how do refunds work?","ts":"10.1"}),
        );
        assert_eq!(msg, mention);
        assert!(msg.addressed && msg.top_level);
        assert_eq!(msg.text, "hi how do refunds work?");
        let a = msg.into_inbound(false, 5).unwrap();
        let b = mention.into_inbound(false, 5).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.id.as_str(), "C1:10.1");
        assert_eq!(a.conversation.as_str(), "T1:C1:10.1");
    }

    #[test]
    fn thread_replies_belong_to_the_thread_and_dms_are_addressed() {
        let m = facts(
            json!({"type":"message","channel":"C1","user":"U1","text":"and monthly?","ts":"11.0","thread_ts":"10.1"}),
        );
        assert!(!m.top_level && !m.addressed);
        assert_eq!(m.thread_root, "10.1");
        let dm =
            facts(json!({"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"hello","ts":"12.0"}));
        assert!(dm.addressed);
    }

    #[test]
    fn own_bot_edits_and_joins_are_ignored() {
        for ev in [
            json!({"type":"message","channel":"C1","user":"UBOT","text":"x","ts":"1.0"}),
            json!({"type":"message","channel":"C1","bot_id":"B1","user":"U9","text":"x","ts":"1.0"}),
            json!({"type":"message","subtype":"bot_message","channel":"C1","text":"x","ts":"1.0"}),
            json!({"type":"message","subtype":"message_changed","channel":"C1","ts":"1.0"}),
            json!({"type":"message","subtype":"message_deleted","channel":"C1","ts":"1.0"}),
            json!({"type":"message","subtype":"channel_join","channel":"C1","user":"U1","ts":"1.0"}),
            json!({"type":"reaction_added","user":"U1"}),
        ] {
            assert!(matches!(read_event(&cb(ev.clone()), Some("UBOT")).unwrap(), EventOutcome::Ignore(_)), "{ev}");
        }
    }

    #[test]
    fn agents_clicks_remember_their_card_and_customers_clicks_do_not() {
        let click = |action_id: &str, value: Value| {
            json!({"type": "block_actions", "user": {"id": "U5", "name": "jo"}, "team": {"id": "T1"},
                "container": {"type": "message", "message_ts": "20.5", "channel_id": "CAGENTS"},
                "message": {"ts": "20.5", "blocks": [{"type": "section", "block_id": "q"}]},
                "actions": [{"action_id": action_id, "action_ts": "21.0", "value": value.to_string()}]})
        };
        let facts = |payload: Value| match read_interaction(&payload).unwrap() {
            ClickOutcome::Click(f) => f,
            other => panic!("{other:?}"),
        };
        let claim = facts(click(ACTION_CLAIM, json!({"c": "T1:C1:1.0", "ch": "C1", "th": "1.0"})));
        let inbound = claim.into_inbound(true, 1).unwrap();
        let card = &inbound.reply_context["card"];
        assert_eq!((card["channel"].as_str(), card["ts"].as_str()), (Some("CAGENTS"), Some("20.5")));
        assert_eq!((card["done"].as_str(), card["by"].as_str()), (Some("claimed"), Some("U5")));
        assert_eq!(card["blocks"][0]["block_id"], "q");
        // The notice still goes to the customer's thread.
        assert_eq!(inbound.reply_context["channel"], "C1");

        let helpful = facts(click(ACTION_HELPFUL, json!({"t": "turn-1", "c": "T1:C1:1.0", "ch": "C1", "th": "1.0"})));
        assert!(helpful.into_inbound(false, 1).unwrap().reply_context.get("card").is_none());
    }

    #[test]
    fn malformed_payloads_say_what_is_wrong() {
        assert!(parse_envelope(b"{").unwrap_err().0.starts_with("the body is not JSON"));
        assert_eq!(parse_envelope(b"[]").unwrap_err().0, "the body is not a JSON object");
        assert_eq!(parse_envelope(br#"{"type":"event_callback","team_id":"T1"}"#).unwrap_err().0, "event is missing");
        let e = read_event(&cb(json!({"type":"message","channel":"C1","text":"x","ts":"1.0"})), Some("UBOT"));
        assert_eq!(e.unwrap_err().0, "event.user is missing or not a string");
    }
}
