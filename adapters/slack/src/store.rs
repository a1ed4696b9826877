//! What the adapter keeps in its sled tree:
//!
//! - `install/{team}` → the workspace's installation (bot token, bot user id), encrypted with
//!   ChaCha20-Poly1305 under `token_encryption_key`: `v1` ‖ 12-byte random nonce ‖ ciphertext,
//!   the key bound to the record as associated data (a record copied under another team's key
//!   does not decrypt);
//! - `oauth_state/{state}` → expiry (Unix ms, big-endian): install attempts in progress.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

const RECORD_VERSION: &[u8; 2] = b"v1";
const NONCE_LEN: usize = 12;

/// Why the adapter's tree could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the Slack store could not be read or written: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored installation for {0} cannot be decrypted (was token_encryption_key changed?)")]
    Decrypt(String),
    #[error("OAuth installs need token_encryption_key to store bot tokens")]
    NoKey,
    #[error("a stored record is malformed: {0}")]
    Malformed(String),
}

/// One workspace's installation of the app.
#[derive(Clone)]
pub struct Installation {
    pub team_id: String,
    pub team_name: Option<String>,
    pub bot_user_id: Option<String>,
    pub bot_token: SecretString,
    pub scope: String,
    pub installed_at_ms: i64,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("team_id", &self.team_id)
            .field("team_name", &self.team_name)
            .field("bot_user_id", &self.bot_user_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The serialised form: the token exposed only inside the encrypted record.
#[derive(Serialize, Deserialize)]
struct InstallationRecord {
    team_id: String,
    team_name: Option<String>,
    bot_user_id: Option<String>,
    bot_token: String,
    scope: String,
    installed_at_ms: i64,
}

/// The adapter's sled tree.
#[derive(Clone)]
pub struct SlackStore {
    tree: sled::Tree,
    cipher: Option<ChaCha20Poly1305>,
}

fn install_key(team: &str) -> Vec<u8> {
    format!("install/{team}").into_bytes()
}

impl SlackStore {
    pub fn new(tree: sled::Tree, key: Option<[u8; 32]>) -> SlackStore {
        SlackStore { tree, cipher: key.map(|k| ChaCha20Poly1305::new(Key::from_slice(&k))) }
    }

    /// Stores (or replaces) a workspace's installation, encrypted.
    pub fn put_installation(&self, install: &Installation) -> Result<(), StoreError> {
        let cipher = self.cipher.as_ref().ok_or(StoreError::NoKey)?;
        let record = InstallationRecord {
            team_id: install.team_id.clone(),
            team_name: install.team_name.clone(),
            bot_user_id: install.bot_user_id.clone(),
            bot_token: install.bot_token.expose_secret().to_string(),
            scope: install.scope.clone(),
            installed_at_ms: install.installed_at_ms,
        };
        let plain = serde_json::to_vec(&record).map_err(|e| StoreError::Malformed(e.to_string()))?;
        let key = install_key(&install.team_id);
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: &plain, aad: &key })
            .map_err(|_| StoreError::Malformed("encryption failed".into()))?;
        let mut value = Vec::with_capacity(2 + NONCE_LEN + sealed.len());
        value.extend_from_slice(RECORD_VERSION);
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        self.tree.insert(key, value)?;
        self.tree.flush()?;
        Ok(())
    }

    /// The installation of `team`, if the app was installed there through OAuth.
    pub fn installation(&self, team: &str) -> Result<Option<Installation>, StoreError> {
        let key = install_key(team);
        let Some(value) = self.tree.get(&key)? else { return Ok(None) };
        let cipher = self.cipher.as_ref().ok_or(StoreError::NoKey)?;
        if value.len() < 2 + NONCE_LEN || &value[..2] != RECORD_VERSION {
            return Err(StoreError::Malformed(format!("installation of {team} has an unknown format")));
        }
        let nonce = Nonce::from_slice(&value[2..2 + NONCE_LEN]);
        let plain = cipher
            .decrypt(nonce, Payload { msg: &value[2 + NONCE_LEN..], aad: &key })
            .map_err(|_| StoreError::Decrypt(team.to_string()))?;
        let r: InstallationRecord = serde_json::from_slice(&plain).map_err(|e| StoreError::Malformed(e.to_string()))?;
        Ok(Some(Installation {
            team_id: r.team_id,
            team_name: r.team_name,
            bot_user_id: r.bot_user_id,
            bot_token: SecretString::from(r.bot_token),
            scope: r.scope,
            installed_at_ms: r.installed_at_ms,
        }))
    }

    /// The teams that installed the app.
    pub fn installed_teams(&self) -> Result<Vec<String>, StoreError> {
        let mut teams = Vec::new();
        for item in self.tree.scan_prefix(b"install/") {
            let (k, _) = item?;
            teams.push(String::from_utf8_lossy(&k["install/".len()..]).into_owned());
        }
        Ok(teams)
    }

    /// Remembers an install attempt's `state` until `expires_at_ms`.
    pub fn put_oauth_state(&self, state: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        self.tree.insert(format!("oauth_state/{state}"), &expires_at_ms.to_be_bytes())?;
        self.tree.flush()?;
        Ok(())
    }

    /// Consumes an install attempt's `state`: true when it was issued here and has not expired.
    /// A state works once.
    pub fn take_oauth_state(&self, state: &str, now_ms: i64) -> Result<bool, StoreError> {
        let Some(v) = self.tree.remove(format!("oauth_state/{state}"))? else { return Ok(false) };
        let expires = <[u8; 8]>::try_from(v.as_ref()).map(i64::from_be_bytes).unwrap_or(0);
        Ok(expires > now_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tree() -> sled::Tree {
        sled::Config::new().temporary(true).open().unwrap().open_tree("slack").unwrap()
    }

    fn install(team: &str) -> Installation {
        Installation {
            team_id: team.into(),
            team_name: Some("Acme".into()),
            bot_user_id: Some("UBOT".into()),
            bot_token: SecretString::from("xoxb-very-secret"),
            scope: "chat:write".into(),
            installed_at_ms: 1,
        }
    }

    #[test]
    fn installations_are_encrypted_and_bound_to_their_team() {
        let t = tree();
        let store = SlackStore::new(t.clone(), Some([9; 32]));
        store.put_installation(&install("T1")).unwrap();
        let raw = t.get("install/T1").unwrap().unwrap();
        assert!(!raw.windows(b"xoxb-very-secret".len()).any(|w| w == b"xoxb-very-secret"));
        let back = store.installation("T1").unwrap().unwrap();
        assert_eq!(back.bot_token.expose_secret(), "xoxb-very-secret");
        // The same record under another team does not decrypt.
        t.insert("install/T2", raw).unwrap();
        assert!(matches!(store.installation("T2"), Err(StoreError::Decrypt(_))));
        // Nor with another key.
        let other = SlackStore::new(t, Some([8; 32]));
        assert!(matches!(other.installation("T1"), Err(StoreError::Decrypt(_))));
        assert!(!format!("{back:?}").contains("xoxb"));
    }

    #[test]
    fn an_oauth_state_works_once_and_expires() {
        let store = SlackStore::new(tree(), None);
        store.put_oauth_state("abc", 1_000).unwrap();
        assert!(!store.take_oauth_state("nope", 0).unwrap());
        assert!(store.take_oauth_state("abc", 999).unwrap());
        assert!(!store.take_oauth_state("abc", 999).unwrap());
        store.put_oauth_state("old", 1_000).unwrap();
        assert!(!store.take_oauth_state("old", 1_000).unwrap());
    }
}
