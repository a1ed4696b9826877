//! DKIM: does the sender's domain vouch for the message?
//!
//! A domain "signs its mail" when the message carries a DKIM-Signature, or when the From domain
//! publishes a DMARC policy (it then expects aligned signatures). Only a pass proves the sender:
//! the adapter marks every other mail `unverified_sender` and never takes it as an agent's. A
//! failed or missing signature of a signing domain ([`DkimVerdict::Unverified`]) also says the
//! From address is likely forged; mail from domains that do not sign is neither proven nor
//! disproven.

use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};
use std::net::SocketAddr;
use std::time::Duration;

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimVerdict {
    /// A valid signature of the From domain (or a parent domain).
    Pass { domain: String },
    /// The domain signs its mail but this message does not carry a valid signature of it.
    Unverified { reason: String },
    /// Neither the message nor the domain uses DKIM.
    NotSigned,
}

/// Checks DKIM signatures against DNS (the system's resolvers or a given server).
pub struct DkimVerifier {
    authenticator: MessageAuthenticator,
}

impl DkimVerifier {
    pub fn new(dns_server: Option<SocketAddr>) -> Result<DkimVerifier, String> {
        let authenticator = match dns_server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let mut options = ResolverOpts::default();
                options.timeout = Duration::from_secs(3);
                options.attempts = 2;
                MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![server]), options)
            }
            None => MessageAuthenticator::new_system_conf(),
        };
        authenticator.map(|authenticator| DkimVerifier { authenticator }).map_err(|e| e.to_string())
    }

    /// Checks one raw message whose From address is in `from_domain`.
    pub async fn check(&self, raw: &[u8], from_domain: &str) -> DkimVerdict {
        let from_domain = from_domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return DkimVerdict::Unverified { reason: "the message could not be parsed for DKIM".into() };
        };
        let has_signatures = !message.dkim_headers.is_empty() || message.has_dkim_errors;
        let outputs = self.authenticator.verify_dkim(Parameters::new(&message)).await;
        let aligned = |d: &str| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            from_domain == d || from_domain.ends_with(&format!(".{d}"))
        };
        let mut first_failure: Option<String> = None;
        for output in &outputs {
            let domain = output.signature().map(|s| s.d.clone()).unwrap_or_default();
            match output.result() {
                DkimResult::Pass if aligned(&domain) => return DkimVerdict::Pass { domain },
                DkimResult::Pass => {
                    first_failure.get_or_insert(format!("signed by {domain}, not by the sender's domain"));
                }
                DkimResult::None => {}
                other => {
                    first_failure.get_or_insert(format!("signature of {domain}: {}", describe(other)));
                }
            }
        }
        if has_signatures {
            if let Some(reason) = first_failure {
                return DkimVerdict::Unverified { reason };
            }
        }
        if self.publishes_dmarc(&from_domain).await {
            return DkimVerdict::Unverified {
                reason: first_failure.unwrap_or_else(|| {
                    format!("{from_domain} publishes a DMARC policy but the message has no valid signature of it")
                }),
            };
        }
        match first_failure {
            // A third party signed (a mailing service): the sender's own domain does not sign.
            Some(_) if outputs.iter().any(|o| matches!(o.result(), DkimResult::Pass)) => DkimVerdict::NotSigned,
            Some(reason) => DkimVerdict::Unverified { reason },
            None => DkimVerdict::NotSigned,
        }
    }

    async fn publishes_dmarc(&self, domain: &str) -> bool {
        if domain.is_empty() {
            return false;
        }
        match self.authenticator.txt_raw_lookup(format!("_dmarc.{domain}.")).await {
            Ok(txt) => String::from_utf8_lossy(&txt).trim_start().to_ascii_lowercase().starts_with("v=dmarc1"),
            Err(_) => false,
        }
    }

    /// Checks that the resolver answers (any answer, including "no such record").
    pub async fn resolver_answers(&self, domain: &str) -> Result<(), String> {
        match self.authenticator.txt_raw_lookup(format!("{}.", domain.trim_end_matches('.'))).await {
            Ok(_) => Ok(()),
            Err(mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(_))) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn describe(result: &DkimResult) -> String {
    match result {
        DkimResult::Pass => "pass".into(),
        DkimResult::Neutral(e) => format!("neutral ({e})"),
        DkimResult::Fail(e) => format!("fail ({e})"),
        DkimResult::PermError(e) => format!("permanent error ({e})"),
        DkimResult::TempError(e) => format!("temporary error ({e})"),
        DkimResult::None => "none".into(),
    }
}
