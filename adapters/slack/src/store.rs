//! What the adapter keeps in its sled tree:
//!
//! - `install/{team}` → the workspace's installation (bot token, bot user id), encrypted with
//!   ChaCha20-Poly1305 under `token_encryption_key`: `v1` ‖ 12-byte random nonce ‖ ciphertext,
//!   the key bound to the record as associated data (a record copied under another team's key
//!   does not decrypt);
//! - `oauth_state/{state}` → expiry (Unix ms, big-endian) ‖ `0` (waiting) or `1` (used):
//!   install attempts. A used state is kept until it expires, so that a second use is told
//!   apart from a forged one; expired states are purged whenever a new one is stored, and at
//!   most [`MAX_PENDING_INSTALLS`] are outstanding.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

const RECORD_VERSION: &[u8; 2] = b"v1";
const STATE_PREFIX: &str = "oauth_state/";
const STATE_WAITING: u8 = 0;
const STATE_USED: u8 = 1;

/// How many install attempts may be outstanding at once (each `/slack/install` opens one until
/// it is used or expires). More are refused until some expire.
pub const MAX_PENDING_INSTALLS: usize = 1000;

/// What an install callback's `state` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateCheck {
    /// Issued here, not expired, not used before: the install may go on (it is now used).
    Valid,
    /// Issued here, but too long ago.
    Expired,
    /// Issued here and already used by an earlier callback.
    Used,
    /// Never issued here (or expired long enough ago to be forgotten).
    Unknown,
}

fn state_record(expires_at_ms: i64, status: u8) -> [u8; 9] {
    let mut v = [0u8; 9];
    v[..8].copy_from_slice(&expires_at_ms.to_be_bytes());
    v[8] = status;
    v
}

/// (expiry, status) of a stored state; a record without a status byte is a waiting one.
fn read_state(v: &[u8]) -> (i64, u8) {
    let expires = v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_be_bytes).unwrap_or(0);
    (expires, v.get(8).copied().unwrap_or(STATE_WAITING))
}
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

    /// Remembers an install attempt's `state` until `expires_at_ms`, first forgetting the
    /// attempts that expired by `now_ms`. `false` (nothing stored) when `max_pending` attempts
    /// are outstanding already.
    pub fn put_oauth_state(
        &self,
        state: &str,
        now_ms: i64,
        expires_at_ms: i64,
        max_pending: usize,
    ) -> Result<bool, StoreError> {
        let mut outstanding = 0usize;
        for item in self.tree.scan_prefix(STATE_PREFIX) {
            let (key, value) = item?;
            let (expires, _) = read_state(&value);
            if expires <= now_ms {
                self.tree.remove(key)?;
            } else {
                outstanding += 1;
            }
        }
        if outstanding >= max_pending {
            self.tree.flush()?;
            return Ok(false);
        }
        self.tree.insert(format!("{STATE_PREFIX}{state}"), &state_record(expires_at_ms, STATE_WAITING))?;
        self.tree.flush()?;
        Ok(true)
    }

    /// Uses an install attempt's `state`: `Valid` only the first time, for a state issued here
    /// that has not expired by `now_ms`.
    pub fn take_oauth_state(&self, state: &str, now_ms: i64) -> Result<StateCheck, StoreError> {
        let key = format!("{STATE_PREFIX}{state}");
        loop {
            let Some(current) = self.tree.get(&key)? else { return Ok(StateCheck::Unknown) };
            let (expires, status) = read_state(&current);
            if status == STATE_USED {
                return Ok(StateCheck::Used);
            }
            if expires <= now_ms {
                return Ok(StateCheck::Expired);
            }
            let used = state_record(expires, STATE_USED);
            // Two callbacks racing with one state: only one of them finds it waiting.
            if self.tree.compare_and_swap(&key, Some(current), Some(&used[..]))?.is_ok() {
                self.tree.flush()?;
                return Ok(StateCheck::Valid);
            }
        }
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
        assert!(store.put_oauth_state("abc", 0, 1_000, 10).unwrap());
        assert_eq!(store.take_oauth_state("nope", 0).unwrap(), StateCheck::Unknown);
        assert_eq!(store.take_oauth_state("abc", 999).unwrap(), StateCheck::Valid);
        assert_eq!(store.take_oauth_state("abc", 999).unwrap(), StateCheck::Used);
        assert!(store.put_oauth_state("old", 0, 1_000, 10).unwrap());
        assert_eq!(store.take_oauth_state("old", 1_000).unwrap(), StateCheck::Expired);
    }

    #[test]
    fn expired_states_are_purged_and_outstanding_ones_are_capped() {
        let t = tree();
        let store = SlackStore::new(t.clone(), None);
        let states = || t.scan_prefix(STATE_PREFIX).count();
        for i in 0..3 {
            assert!(store.put_oauth_state(&format!("s{i}"), 0, 1_000, 3).unwrap());
        }
        // Three are outstanding: a fourth is refused, and nothing is stored.
        assert!(!store.put_oauth_state("s3", 500, 1_500, 3).unwrap());
        assert_eq!(states(), 3);
        // A used state counts until it expires (it still answers "already used").
        assert_eq!(store.take_oauth_state("s0", 600).unwrap(), StateCheck::Valid);
        assert!(!store.put_oauth_state("s3", 600, 1_600, 3).unwrap());
        // Once they expire they are forgotten, and new attempts fit again.
        assert!(store.put_oauth_state("s4", 1_000, 2_000, 3).unwrap());
        assert_eq!(states(), 1);
        assert_eq!(store.take_oauth_state("s1", 1_000).unwrap(), StateCheck::Unknown);
        assert_eq!(store.take_oauth_state("s4", 1_500).unwrap(), StateCheck::Valid);
    }

    #[test]
    fn a_state_stored_before_it_had_a_status_is_still_honoured() {
        let t = tree();
        t.insert("oauth_state/legacy", &5_000i64.to_be_bytes()).unwrap();
        let store = SlackStore::new(t, None);
        assert_eq!(store.take_oauth_state("legacy", 4_000).unwrap(), StateCheck::Valid);
        assert_eq!(store.take_oauth_state("legacy", 4_000).unwrap(), StateCheck::Used);
    }
}
