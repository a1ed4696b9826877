//! Fitting a conversation into the context window: drop the oldest messages that may go, then
//! cut the longest from its middle.

/// A message is never shortened below this many tokens.
pub(super) const MIN_MESSAGE_TOKENS: usize = 48;

/// One message of the prompt, already tokenised (role line included, markers not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Turn {
    /// System messages and the final question are never dropped (only shortened).
    pub(super) protected: bool,
    pub(super) tokens: Vec<u32>,
}

/// Shortens `turns` until their tokens plus `per_turn` overhead for each fit in `room` (the
/// space left after the overhead of the turns as given). Returns false if that is impossible.
pub(super) fn fit_turns(turns: &mut Vec<Turn>, room: usize, per_turn: usize, cut: &[u32]) -> bool {
    let mut room = room;
    let mut total: usize = turns.iter().map(|t| t.tokens.len()).sum();

    // 1. Drop the oldest messages that may be dropped.
    while total > room {
        let Some(oldest) = turns.iter().position(|t| !t.protected) else {
            break;
        };
        total -= turns.remove(oldest).tokens.len();
        room += per_turn;
    }

    // 2. Cut the middle of the longest message, as little as needed each time.
    while total > room {
        let floor = MIN_MESSAGE_TOKENS + cut.len();
        let Some(longest) = turns.iter_mut().filter(|t| t.tokens.len() > floor).max_by_key(|t| t.tokens.len()) else {
            return false;
        };
        let len = longest.tokens.len();
        let keep = len.saturating_sub(total - room).saturating_sub(cut.len());
        let keep = keep.max(MIN_MESSAGE_TOKENS);
        let head = keep.div_ceil(2);
        let tail = keep - head;
        let mut shortened = Vec::with_capacity(keep + cut.len());
        shortened.extend_from_slice(&longest.tokens[..head]);
        shortened.extend_from_slice(cut);
        shortened.extend_from_slice(&longest.tokens[len - tail..]);
        total = total - len + shortened.len();
        longest.tokens = shortened;
    }
    true
}
