//! The policy store as the channels' in-platform admin commands see it.

use crate::channel::{ChannelId, PolicyConsole, WorkspaceId};
use crate::policy::{PolicyStore, Scope, POLICY_KEYS};
use async_trait::async_trait;

/// The longest policy value `/frontdesk policy set` takes, in characters. The longest values a
/// policy holds (product and action lists, an address) are far shorter; a longer one is refused
/// before it is stored or echoed back into the chat.
pub const MAX_POLICY_VALUE_CHARS: usize = 500;

/// How much of an unknown key is echoed back.
const SHOWN_KEY_CHARS: usize = 40;

/// Reads and writes channel policies for `/frontdesk policy` (the adapter checks permissions).
pub struct StorePolicyConsole {
    policies: PolicyStore,
}

impl StorePolicyConsole {
    pub fn new(policies: PolicyStore) -> StorePolicyConsole {
        StorePolicyConsole { policies }
    }

    fn render(&self, workspace: &WorkspaceId, channel: &ChannelId) -> Result<String, String> {
        let effective =
            self.policies.effective(workspace, channel).map_err(|e| format!("the policy store failed: {e}"))?;
        let value = serde_json::to_value(&effective).map_err(|e| e.to_string())?;
        let mut lines = Vec::new();
        if let Some(map) = value.as_object() {
            for (key, v) in map {
                lines.push(format!("{key} = {v}"));
            }
        }
        Ok(lines.join("\n"))
    }
}

#[async_trait]
impl PolicyConsole for StorePolicyConsole {
    async fn show(&self, workspace: &WorkspaceId, channel: &ChannelId) -> Result<String, String> {
        self.render(workspace, channel)
    }

    async fn set(
        &self,
        workspace: &WorkspaceId,
        channel: &ChannelId,
        key: &str,
        value: &str,
    ) -> Result<String, String> {
        if !POLICY_KEYS.iter().any(|(k, _)| *k == key) {
            let known: Vec<&str> = POLICY_KEYS.iter().map(|(k, _)| *k).collect();
            let shown: String = key.chars().take(SHOWN_KEY_CHARS).collect();
            let cut = if shown.len() < key.len() { "..." } else { "" };
            return Err(format!("unknown policy key {shown:?}{cut}; known keys: {}", known.join(", ")));
        }
        let chars = value.chars().count();
        if chars > MAX_POLICY_VALUE_CHARS {
            return Err(format!(
                "the value of {key} is {chars} characters long; a policy value is at most {MAX_POLICY_VALUE_CHARS}"
            ));
        }
        let pairs = [(key.to_string(), value.to_string())];
        match self.policies.set(workspace, &Scope::Channel(channel.clone()), &pairs) {
            Ok(Ok(_)) => self.render(workspace, channel),
            Ok(Err(errors)) => Err(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")),
            Err(e) => Err(format!("the policy store failed: {e}")),
        }
    }

    async fn agents_channel(&self, workspace: &WorkspaceId, channel: &ChannelId) -> Result<Option<String>, String> {
        self.policies
            .effective(workspace, channel)
            .map(|p| p.agents_channel)
            .map_err(|e| format!("the policy store failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn sets_a_known_key_and_refuses_an_unknown_one() {
        let store = Store::temporary().unwrap();
        let console = StorePolicyConsole::new(PolicyStore::open(&store).unwrap());
        let ws: WorkspaceId = "G1".parse().unwrap();
        let ch: ChannelId = "C1".parse().unwrap();
        let shown = console.set(&ws, &ch, "answer_top_level", "true").await.unwrap();
        assert!(shown.contains("answer_top_level = true"), "{shown}");
        let err = console.set(&ws, &ch, "colour", "blue").await.unwrap_err();
        assert!(err.contains("unknown policy key"), "{err}");
        let err = console.set(&ws, &ch, "confidence_threshold", "lots").await.unwrap_err();
        assert!(!err.is_empty());
        assert!(console.show(&ws, &ch).await.unwrap().contains("answer_top_level = true"));
        assert_eq!(console.agents_channel(&ws, &ch).await.unwrap(), None);
        console.set(&ws, &ch, "agents_channel", "C-agents").await.unwrap();
        assert_eq!(console.agents_channel(&ws, &ch).await.unwrap().as_deref(), Some("C-agents"));
    }
}
