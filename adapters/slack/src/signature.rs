//! Checks that a request really comes from Slack: `X-Slack-Signature` must be
//! `v0=hex(HMAC-SHA256(signing secret, "v0:{timestamp}:{body}"))`, compared in constant time, and
//! `X-Slack-Request-Timestamp` must be recent (replay protection). The signature and the age
//! are checked separately so that each can be tested on its own.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a request was refused. Every variant is answered with 401; the text is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Slack-Signature header is missing")]
    MissingSignature,
    #[error("the X-Slack-Request-Timestamp header is missing")]
    MissingTimestamp,
    #[error("the X-Slack-Request-Timestamp header is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the request was signed {age_secs} s away from now; at most {max_secs} s are accepted")]
    Stale { age_secs: i64, max_secs: u64 },
    #[error("the signature does not match the body (wrong signing secret, or a modified body)")]
    Mismatch,
}

/// The signature Slack would send for `body` at `timestamp` (`v0=` and 64 hex digits).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// Checks the signature alone (not the age), in constant time.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> Result<(), SignatureError> {
    let hex_part = signature.strip_prefix("v0=").ok_or(SignatureError::Mismatch)?;
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Mismatch)?;
    mac(secret, timestamp, body).verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// Checks that `timestamp` is within `max_age_secs` of `now_secs`, either way.
pub fn verify_age(timestamp: &str, now_secs: i64, max_age_secs: u64) -> Result<(), SignatureError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let age = now_secs.saturating_sub(ts);
    if age.unsigned_abs() > max_age_secs {
        return Err(SignatureError::Stale { age_secs: age, max_secs: max_age_secs });
    }
    Ok(())
}

/// The whole check of one request: headers present, signature right, timestamp recent.
pub fn verify_request(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
    max_age_secs: u64,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    verify_signature(secret, timestamp, body, signature)?;
    verify_age(timestamp, now_secs, max_age_secs)
}

/// The current Unix time in seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_is_checked_both_ways() {
        assert_eq!(verify_age("1000", 1300, 300), Ok(()));
        assert_eq!(verify_age("1000", 1301, 300), Err(SignatureError::Stale { age_secs: 301, max_secs: 300 }));
        assert_eq!(verify_age("2000", 1000, 300), Err(SignatureError::Stale { age_secs: -1000, max_secs: 300 }));
        assert_eq!(verify_age("soon", 1000, 300), Err(SignatureError::BadTimestamp));
    }

    #[test]
    fn a_signature_of_another_body_or_secret_is_refused() {
        let s = sign(b"secret", "1000", b"body");
        assert_eq!(verify_signature(b"secret", "1000", b"body", &s), Ok(()));
        assert_eq!(verify_signature(b"secret", "1000", b"bodx", &s), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(b"secreT", "1000", b"body", &s), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(b"secret", "1001", b"body", &s), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(b"secret", "1000", b"body", "v1=00"), Err(SignatureError::Mismatch));
    }
}
