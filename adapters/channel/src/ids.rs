//! Newtype identifiers shared by the engine and the adapters.
//!
//! Each id is a non-empty string chosen by the platform (a Slack team id, a Discord guild id, a
//! mailbox address). Wrapping them keeps a `ChannelId` from being passed where a `WorkspaceId`
//! is expected, which matters most for the workspace: every search is filtered by it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The id was empty or contained characters that would break storage keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub reason: &'static str,
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps an id: it must be non-empty, at most 256 bytes, and free of
            /// control characters (they are used as separators in storage keys).
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                if value.trim().is_empty() {
                    return Err(InvalidId { kind: $kind, reason: "it is empty" });
                }
                if value.len() > 256 {
                    return Err(InvalidId { kind: $kind, reason: "it is longer than 256 bytes" });
                }
                if value.chars().any(char::is_control) {
                    return Err(InvalidId { kind: $kind, reason: "it contains a control character" });
                }
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

string_id!(
    /// A tenant: a Slack team, a Discord guild, an email mailbox. Knowledge, policies and rate
    /// limits are all per workspace.
    WorkspaceId,
    "workspace id"
);
string_id!(
    /// A channel inside a workspace (a Slack channel, a Discord channel, an email mailbox).
    ChannelId,
    "channel id"
);
string_id!(
    /// The thread a message belongs to: replies go there, and its state (bot, escalated, agent,
    /// resolved) is kept per conversation.
    ConversationKey,
    "conversation key"
);
string_id!(
    /// Who wrote a message, in the platform's own terms (a Slack user id, an email address).
    AuthorId,
    "author id"
);
string_id!(
    /// The platform's id of one delivery of one event; used to drop duplicates (retries,
    /// replays, the same message arriving twice).
    EventId,
    "event id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_control_ids_are_rejected() {
        assert!(WorkspaceId::new("").is_err());
        assert!(WorkspaceId::new("  ").is_err());
        assert!(WorkspaceId::new("a\u{0}b").is_err());
        assert!(WorkspaceId::new("x".repeat(300)).is_err());
        assert_eq!(WorkspaceId::new("T123").map(|w| w.to_string()), Ok("T123".to_string()));
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let ok: Result<ChannelId, _> = serde_json_like("\"C1\"");
        assert!(ok.is_ok());
        let bad: Result<ChannelId, _> = serde_json_like("\"\"");
        assert!(bad.is_err());
    }

    fn serde_json_like<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, String> {
        // A tiny string-only deserializer is enough here: the ids are plain strings.
        let inner = s.trim_matches('"').to_string();
        T::deserialize(serde::de::value::StringDeserializer::<serde::de::value::Error>::new(inner))
            .map_err(|e| e.to_string())
    }
}
