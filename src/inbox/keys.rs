//! Storage keys of the inbox trees.
//!
//! Every key starts with the store's schema prefix `v1/`. Ids never contain control characters,
//! so `\0` separates the parts safely. A conversation's lane is the prefix
//! `v1/{source}\0{workspace}\0{conversation}\0`; queued items in it end with their sequence
//! number as 16 lower-case hex digits, so byte order is arrival order and one prefix scan finds
//! the oldest item of a conversation.

use crate::channel::{ConversationKey, EventId, Source, WorkspaceId};

const SCHEMA: &[u8] = b"v1/";
const SEQ_DIGITS: usize = 16;

/// Expiry index entries point at a dedup record.
pub(super) const EXPIRES_DEDUP: u8 = b'd';
/// Expiry index entries point at a delivered record.
pub(super) const EXPIRES_DELIVERED: u8 = b'r';

/// The stable name of a channel in keys and logs.
pub(super) fn source_name(source: Source) -> &'static str {
    match source {
        Source::Slack => "slack",
        Source::Discord => "discord",
        Source::Email => "email",
        Source::Cli => "cli",
    }
}

fn joined(parts: &[&str], trailing_separator: bool) -> Vec<u8> {
    let len = SCHEMA.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut key = Vec::with_capacity(len + SEQ_DIGITS);
    key.extend_from_slice(SCHEMA);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part.as_bytes());
    }
    if trailing_separator {
        key.push(0);
    }
    key
}

/// The lane of one conversation: the prefix of all its queued items.
pub(super) fn lane(source: Source, workspace: &WorkspaceId, conversation: &ConversationKey) -> Vec<u8> {
    joined(&[source_name(source), workspace.as_str(), conversation.as_str()], true)
}

/// The key of one queued item in a lane.
pub(super) fn in_lane(lane: &[u8], seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(lane.len() + SEQ_DIGITS);
    key.extend_from_slice(lane);
    key.extend_from_slice(format!("{seq:016x}").as_bytes());
    key
}

/// The lane a queued item's key belongs to, or `None` for a key this module did not write.
pub(super) fn lane_of(key: &[u8]) -> Option<&[u8]> {
    if !key.starts_with(SCHEMA) || key.len() < SCHEMA.len() + SEQ_DIGITS + 1 {
        return None;
    }
    let (lane, seq) = key.split_at(key.len() - SEQ_DIGITS);
    let well_formed = lane.last() == Some(&0) && seq.iter().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(lane)
}

/// The smallest key greater than every key of `lane`: the place to continue a scan for the
/// next conversation. Lanes end with `\0` and ids hold no control characters, so replacing
/// that last byte with `\x01` skips exactly this lane.
pub(super) fn after_lane(lane: &[u8]) -> Vec<u8> {
    let mut next = lane.to_vec();
    if let Some(last) = next.last_mut() {
        *last = 1;
    }
    next
}

/// Where the first lane of a queue is found.
pub(super) fn first_lane() -> Vec<u8> {
    SCHEMA.to_vec()
}

/// The workspace a lane belongs to: its prefix `v1/{source}\0{workspace}\0`, shared by every
/// conversation of that workspace (the whole lane for a key this module did not write).
pub(super) fn workspace_of(lane: &[u8]) -> &[u8] {
    let body = lane.strip_prefix(SCHEMA).unwrap_or(lane);
    match body.iter().enumerate().filter(|(_, b)| **b == 0).nth(1) {
        Some((at, _)) => &lane[..lane.len() - body.len() + at + 1],
        None => lane,
    }
}

/// A lane as people read it in logs: `slack/T123/C456:1699999999.123`.
pub(super) fn lane_label(lane: &[u8]) -> String {
    let body = lane.strip_prefix(SCHEMA).unwrap_or(lane);
    let body = body.strip_suffix(&[0]).unwrap_or(body);
    String::from_utf8_lossy(body).replace('\0', "/")
}

/// The dedup record of one platform event.
pub(super) fn dedup(source: Source, workspace: &WorkspaceId, event: &EventId) -> Vec<u8> {
    joined(&[source_name(source), workspace.as_str(), event.as_str()], false)
}

/// The delivered record of one outbound message.
pub(super) fn delivered(outbound_id: &str) -> Vec<u8> {
    joined(&[outbound_id], false)
}

/// A dead letter, in the order they were recorded.
pub(super) fn dead_letter(seq: u64) -> Vec<u8> {
    in_lane(SCHEMA, seq)
}

/// The sequence number at the end of a dead letter's key.
pub(super) fn dead_letter_seq(key: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(key.strip_prefix(SCHEMA)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

fn millis_be(at_ms: i64) -> [u8; 8] {
    u64::try_from(at_ms).unwrap_or(0).to_be_bytes()
}

/// An expiry index entry: `v1/` + the record's time (big-endian Unix ms) + kind + the record's
/// key, so a range scan up to a cut-off finds exactly the records old enough to purge.
pub(super) fn expiry(at_ms: i64, kind: u8, target: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(SCHEMA.len() + 9 + target.len());
    key.extend_from_slice(SCHEMA);
    key.extend_from_slice(&millis_be(at_ms));
    key.push(kind);
    key.extend_from_slice(target);
    key
}

/// The first expiry key at or after `at_ms`: the exclusive end of a purge scan.
pub(super) fn expiry_bound(at_ms: i64) -> Vec<u8> {
    let mut key = SCHEMA.to_vec();
    key.extend_from_slice(&millis_be(at_ms));
    key
}

/// The kind and target key of an expiry index entry.
pub(super) fn parse_expiry(key: &[u8]) -> Option<(u8, &[u8])> {
    let rest = key.strip_prefix(SCHEMA)?;
    if rest.len() < 9 {
        return None;
    }
    Some((rest[8], &rest[9..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: &str) -> ConversationKey {
        ConversationKey::new(s).unwrap()
    }

    #[test]
    fn lanes_of_similar_conversations_do_not_overlap() {
        let ws = WorkspaceId::new("T1").unwrap();
        let a = lane(Source::Slack, &ws, &conv("c"));
        let b = lane(Source::Slack, &ws, &conv("c2"));
        let a_item = in_lane(&a, 7);
        let b_item = in_lane(&b, 3);
        assert!(a_item.starts_with(&a));
        assert!(!b_item.starts_with(&a));
        assert_eq!(lane_of(&a_item), Some(a.as_slice()));
        assert_eq!(lane_of(&b_item), Some(b.as_slice()));
        // Skipping past lane `c` lands before lane `c2`, and after every item of `c`.
        let next = after_lane(&a);
        assert!(next.as_slice() > in_lane(&a, u64::MAX).as_slice());
        assert!(next.as_slice() <= b.as_slice());
    }

    #[test]
    fn items_sort_by_sequence_number() {
        let ws = WorkspaceId::new("T1").unwrap();
        let l = lane(Source::Discord, &ws, &conv("thread"));
        assert!(in_lane(&l, 9) < in_lane(&l, 10));
        assert!(in_lane(&l, 255) < in_lane(&l, 256));
        assert_eq!(lane_label(&l), "discord/T1/thread");
        assert_eq!(lane_of(b"v1/short"), None);
    }

    #[test]
    fn conversations_of_a_workspace_share_its_prefix_and_no_other() {
        let ws = WorkspaceId::new("T1").unwrap();
        let a = lane(Source::Slack, &ws, &conv("c1"));
        let b = lane(Source::Slack, &ws, &conv("c2"));
        assert_eq!(workspace_of(&a), b"v1/slack\0T1\0");
        assert_eq!(workspace_of(&a), workspace_of(&b));
        // The same id in another channel, or a workspace whose id starts the same, is another.
        assert_ne!(workspace_of(&a), workspace_of(&lane(Source::Discord, &ws, &conv("c1"))));
        let longer = WorkspaceId::new("T10").unwrap();
        assert_ne!(workspace_of(&a), workspace_of(&lane(Source::Slack, &longer, &conv("c1"))));
    }

    #[test]
    fn expiry_keys_sort_by_time_and_parse_back() {
        let target = dedup(Source::Email, &WorkspaceId::new("box").unwrap(), &EventId::new("e1").unwrap());
        let early = expiry(1_000, EXPIRES_DEDUP, &target);
        let late = expiry(2_000, EXPIRES_DEDUP, &target);
        assert!(early < late);
        assert!(early < expiry_bound(1_001));
        assert!(expiry_bound(1_000) <= early);
        assert_eq!(parse_expiry(&early), Some((EXPIRES_DEDUP, target.as_slice())));
        assert_eq!(dead_letter_seq(&dead_letter(42)), Some(42));
    }
}
