//! What frontdesk's messages look like on Discord: message splitting at Discord's length
//! limit, the buttons' custom ids, mentions, and the agents' summary card.

use frontdesk_channel::{Citation, HandoffSummary, UserAction};

/// Discord refuses messages longer than this many characters.
pub const MESSAGE_LIMIT: usize = 2000;
/// Discord refuses custom ids longer than this.
pub const CUSTOM_ID_LIMIT: usize = 100;
/// Discord's limit for an embed's description.
pub const EMBED_DESCRIPTION_LIMIT: usize = 4096;
/// Discord's limit for an embed field's value.
pub const EMBED_FIELD_LIMIT: usize = 1024;

/// Splits `text` into parts of at most `limit` characters, preferring to cut after a paragraph,
/// then after a sentence, then at a space; a single word longer than the limit is cut where it
/// must be. No character is lost: joining the parts with the whitespace that was cut gives the
/// text back.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > limit {
        // The byte offset just past the `limit`-th character.
        let window_end = rest.char_indices().nth(limit).map(|(i, _)| i).unwrap_or(rest.len());
        let window = &rest[..window_end];
        let cut = best_cut(window).unwrap_or(window_end);
        let (head, tail) = rest.split_at(cut);
        let head = head.trim_end();
        if head.is_empty() {
            // Only whitespace before the cut: skip it rather than emit an empty part.
            rest = tail.trim_start();
            continue;
        }
        parts.push(head.to_string());
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

/// Where to cut a window that is too long: after the last paragraph break, else after the last
/// sentence end (`.`, `!`, `?`, optionally followed by a closing quote or bracket, then
/// whitespace), else at the last whitespace. Cuts in the first quarter are not worth it (they
/// would make many tiny parts), except for a paragraph break.
fn best_cut(window: &str) -> Option<usize> {
    let min = window.len() / 4;
    if let Some(i) = window.rfind("\n\n").filter(|i| *i > 0) {
        return Some(i);
    }
    let bytes = window.as_bytes();
    let mut sentence_end = None;
    for (i, c) in window.char_indices() {
        if !c.is_whitespace() || i == 0 {
            continue;
        }
        let mut j = i;
        // Skip closing quotes and brackets back to the punctuation.
        while j > 0 && matches!(bytes[j - 1], b'"' | b'\'' | b')' | b']' | b'*' | b'_') {
            j -= 1;
        }
        if j > 0 && matches!(bytes[j - 1], b'.' | b'!' | b'?') && i > min {
            sentence_end = Some(i);
        }
    }
    if sentence_end.is_some() {
        return sentence_end;
    }
    window.rfind('\n').filter(|i| *i > min).or_else(|| window.rfind(char::is_whitespace).filter(|i| *i > min))
}

/// Cuts `text` to at most `limit` characters, marking the cut with an ellipsis.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The answer as the customer sees it: the text, then its numbered sources.
pub fn answer_text(text: &str, citations: &[Citation]) -> String {
    let mut out = text.trim().to_string();
    if !citations.is_empty() {
        out.push_str("\n\n**Sources**");
        for (i, c) in citations.iter().enumerate() {
            match &c.url {
                // Angle brackets keep Discord from unfurling a preview of every source.
                Some(url) => out.push_str(&format!("\n[{}] [{}](<{url}>)", i + 1, c.title)),
                None => out.push_str(&format!("\n[{}] {}", i + 1, c.title)),
            }
        }
    }
    out
}

/// A mention in a policy's `escalation_target`, as Discord writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    Role(u64),
    User(u64),
    Everyone,
}

/// The mentions in `text` (`<@&role>`, `<@user>`, `<@!user>`, `@everyone`, `@here`), so that the
/// message pings exactly those and nobody else.
pub fn mentions_in(text: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('>') else { break };
        let inner = &after[..end];
        let parsed = if let Some(role) = inner.strip_prefix('&') {
            role.parse().ok().map(Mention::Role)
        } else {
            inner.trim_start_matches('!').parse().ok().map(Mention::User)
        };
        if let Some(m) = parsed {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        rest = &after[end + 1..];
    }
    if (text.contains("@everyone") || text.contains("@here")) && !out.contains(&Mention::Everyone) {
        out.push(Mention::Everyone);
    }
    out
}

/// What a button does, carried in its custom id so that a press needs no stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonAction {
    pub action: UserAction,
    /// The channel whose policy applies (the parent of the customer's thread, or the DM channel).
    pub channel: u64,
    /// Where the customer's conversation happens: the thread (or DM channel).
    pub thread: u64,
}

const PREFIX: &str = "fd1";

/// Encodes a button's custom id: `fd1:<kind>:<channel>:<thread>[:<turn id>]`.
pub fn custom_id(b: &ButtonAction) -> Result<String, String> {
    let (kind, turn) = match &b.action {
        UserAction::Feedback { turn_id, helpful: true } => ("up", Some(turn_id.as_str())),
        UserAction::Feedback { turn_id, helpful: false } => ("down", Some(turn_id.as_str())),
        UserAction::RequestHuman => ("human", None),
        UserAction::Claim => ("claim", None),
        UserAction::Resolve => ("resolve", None),
    };
    let mut id = format!("{PREFIX}:{kind}:{}:{}", b.channel, b.thread);
    if let Some(turn) = turn {
        if turn.is_empty() || turn.contains(':') {
            return Err(format!("the turn id {turn:?} cannot be carried by a button"));
        }
        id.push(':');
        id.push_str(turn);
    }
    if id.len() > CUSTOM_ID_LIMIT {
        return Err(format!("the button id would be {} characters; Discord allows {CUSTOM_ID_LIMIT}", id.len()));
    }
    Ok(id)
}

/// Decodes a custom id made by [`custom_id`]; the error says what is wrong with it.
pub fn parse_custom_id(id: &str) -> Result<ButtonAction, String> {
    let parts: Vec<&str> = id.split(':').collect();
    if parts.first() != Some(&PREFIX) {
        return Err(format!("the button {id:?} was not made by frontdesk"));
    }
    let number = |i: usize, what: &str| -> Result<u64, String> {
        parts
            .get(i)
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("the button {id:?} carries no valid {what}"))
    };
    let channel = number(2, "channel id")?;
    let thread = number(3, "thread id")?;
    let turn = || -> Result<String, String> {
        match parts.get(4) {
            Some(t) if !t.is_empty() && parts.len() == 5 => Ok((*t).to_string()),
            _ => Err(format!("the button {id:?} carries no turn id")),
        }
    };
    let no_more = |n: usize| -> Result<(), String> {
        if parts.len() == n {
            Ok(())
        } else {
            Err(format!("the button {id:?} has unexpected parts"))
        }
    };
    let action = match parts.get(1).copied() {
        Some("up") => UserAction::Feedback { turn_id: turn()?, helpful: true },
        Some("down") => UserAction::Feedback { turn_id: turn()?, helpful: false },
        Some("human") => {
            no_more(4)?;
            UserAction::RequestHuman
        }
        Some("claim") => {
            no_more(4)?;
            UserAction::Claim
        }
        Some("resolve") => {
            no_more(4)?;
            UserAction::Resolve
        }
        other => return Err(format!("the button {id:?} has an unknown kind {other:?}")),
    };
    Ok(ButtonAction { action, channel, thread })
}

/// The agents' summary card, as the text of an embed's description and its fields.
pub struct SummaryCard {
    pub title: String,
    pub description: String,
    pub fields: Vec<(String, String)>,
}

/// Builds the agents' card. `thread_link` points at the customer's conversation.
pub fn summary_card(s: &HandoffSummary, thread_link: Option<&str>) -> SummaryCard {
    let mut description = format!("**Question**\n{}", s.question.trim());
    if s.condensed_question.trim() != s.question.trim() {
        description.push_str(&format!("\n\n**Understood as**\n{}", s.condensed_question.trim()));
    }
    if let Some(draft) = &s.draft {
        description.push_str(&format!("\n\n**Suggested answer**\n{}", draft.trim()));
    }
    let mut fields = vec![
        ("Reason".to_string(), s.reason.replace('_', " ")),
        ("Confidence".to_string(), format!("{:.2}", s.confidence)),
    ];
    if !s.sources.is_empty() {
        let list = s
            .sources
            .iter()
            .map(|c| match &c.url {
                Some(u) => format!("• [{}](<{u}>)", c.title),
                None => format!("• {}", c.title),
            })
            .collect::<Vec<_>>()
            .join("\n");
        fields.push(("Sources".to_string(), truncate(&list, EMBED_FIELD_LIMIT)));
    }
    if let Some(link) = thread_link {
        fields.push(("Conversation".to_string(), link.to_string()));
    }
    SummaryCard {
        title: "A customer needs a person".into(),
        description: truncate(&description, EMBED_DESCRIPTION_LIMIT),
        fields,
    }
}

/// The text of the mention-less part of a handoff, with the mention appended when there is one.
pub fn handoff_text(text: &str, mention: Option<&str>) -> String {
    match mention.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => format!("{}\n{m}", text.trim()),
        None => text.trim().to_string(),
    }
}

/// A short, stable nonce for one part of one outbound message (Discord keeps at most 25
/// characters): with `enforce_nonce`, Discord returns the message already created with it
/// instead of posting it twice when a delivery is retried.
pub fn nonce(outbound_id: &str, part: usize) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in outbound_id.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fd{hash:016x}{part}")
}

/// The last part of an answer once someone rated it: its text, then one line saying who rated
/// it how (a new rating replaces the line of an earlier one).
pub fn with_rating(content: &str, helpful: bool, by: u64) -> String {
    let text: Vec<&str> = content.lines().filter(|l| !l.starts_with(RATING_PREFIX)).collect();
    let line = if helpful {
        format!("{RATING_PREFIX}👍 <@{by}> found this helpful. Thanks!")
    } else {
        format!("{RATING_PREFIX}👎 <@{by}> found this not helpful.")
    };
    let body = text.join("\n");
    let mut out = format!("{}\n{line}", body.trim_end());
    if out.chars().count() > MESSAGE_LIMIT {
        // The rating line is the part that must stay; the text was already shown whole.
        let keep = MESSAGE_LIMIT.saturating_sub(line.chars().count() + 2);
        out = format!("{}…\n{line}", body.chars().take(keep).collect::<String>());
    }
    out
}

/// Discord's small-text markdown, which starts the rating line.
const RATING_PREFIX: &str = "-# ";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_rating_is_one_line_under_the_answer() {
        let once = with_rating("Refunds take 5 days.", true, 42);
        assert_eq!(once, "Refunds take 5 days.\n-# 👍 <@42> found this helpful. Thanks!");
        let again = with_rating(&once, false, 7);
        assert_eq!(again, "Refunds take 5 days.\n-# 👎 <@7> found this not helpful.");
        let long = with_rating(&"x".repeat(MESSAGE_LIMIT), true, 1);
        assert!(long.chars().count() <= MESSAGE_LIMIT && long.ends_with("Thanks!"));
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_message("Hello there.", 2000), vec!["Hello there.".to_string()]);
    }

    #[test]
    fn long_text_is_cut_after_a_sentence_and_nothing_is_lost() {
        let sentence = "Annual plans can be refunded in full within thirty days of renewal. ";
        let text = sentence.repeat(37); // about 2,500 characters
        let parts = split_message(&text, 2000);
        assert_eq!(parts.len(), 2);
        for p in &parts {
            assert!(p.chars().count() <= 2000);
            assert!(p.ends_with('.'), "cut mid-sentence: ...{:?}", &p[p.len() - 20..]);
        }
        let joined = parts.join(" ");
        assert_eq!(joined, text.trim());
    }

    #[test]
    fn paragraphs_are_preferred_and_words_are_cut_only_when_they_must_be() {
        let text = format!("{}\n\n{}", "a".repeat(30), "b ".repeat(20));
        let parts = split_message(&text, 40);
        assert_eq!(parts[0], "a".repeat(30));
        let word = "x".repeat(25);
        let parts = split_message(&word, 10);
        assert_eq!(parts, vec!["x".repeat(10), "x".repeat(10), "x".repeat(5)]);
        // Multi-byte characters count as one and are never split.
        let parts = split_message(&"é".repeat(15), 10);
        assert_eq!(parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(), vec![10, 5]);
    }

    #[test]
    fn custom_ids_round_trip_and_bad_ones_are_explained() {
        for action in [
            UserAction::Feedback { turn_id: "t18c0f3a2b1c00010002".into(), helpful: true },
            UserAction::Feedback { turn_id: "t1".into(), helpful: false },
            UserAction::RequestHuman,
            UserAction::Claim,
            UserAction::Resolve,
        ] {
            let b = ButtonAction { action, channel: 1_100_000_000_000_000_001, thread: 1_200_000_000_000_000_002 };
            let id = custom_id(&b).unwrap();
            assert!(id.len() <= CUSTOM_ID_LIMIT);
            assert_eq!(parse_custom_id(&id).unwrap(), b);
        }
        assert!(parse_custom_id("other:claim:1:2").unwrap_err().contains("not made by frontdesk"));
        assert!(parse_custom_id("fd1:claim:x:2").unwrap_err().contains("channel id"));
        assert!(parse_custom_id("fd1:up:1:2").unwrap_err().contains("turn id"));
        assert!(parse_custom_id("fd1:fly:1:2").unwrap_err().contains("unknown kind"));
        let long = UserAction::Feedback { turn_id: "t".repeat(95), helpful: true };
        assert!(custom_id(&ButtonAction { action: long, channel: 1, thread: 2 }).is_err());
    }

    #[test]
    fn mentions_are_found() {
        assert_eq!(mentions_in("<@&42> and <@!7> and <@7>"), vec![Mention::Role(42), Mention::User(7)]);
        assert_eq!(mentions_in("@here please"), vec![Mention::Everyone]);
        assert!(mentions_in("support team").is_empty());
    }

    #[test]
    fn answers_list_their_sources() {
        let c = Citation {
            doc_id: "d".into(),
            chunk_id: "c".into(),
            title: "Refunds".into(),
            url: Some("https://x/r".into()),
        };
        assert_eq!(answer_text("Yes [1].", &[c]), "Yes [1].\n\n**Sources**\n[1] [Refunds](<https://x/r>)");
    }

    #[test]
    fn nonces_fit_discord_and_differ_per_part() {
        let a = nonce("t18c0f3a2b1c00010002-answer", 0);
        assert!(a.len() <= 25, "{a}");
        assert_ne!(a, nonce("t18c0f3a2b1c00010002-answer", 1));
        assert_eq!(a, nonce("t18c0f3a2b1c00010002-answer", 0));
    }
}
