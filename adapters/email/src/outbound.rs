//! Replies over SMTP: threading headers, stable Message-IDs, the forward to the agents, and how
//! SMTP failures map to retry or not.

use crate::adapter::{base_subject, EmailAdapter, ReplyContext, PLATFORM};
use crate::config::{looks_like_address, EmailConfig, Security};
use crate::state::ThreadEntry;
use frontdesk_channel::{AdapterError, Citation, Delivered, HandoffSummary, Health, Outbound, OutboundKind};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use std::time::Duration;

/// The prefix of the local part of our Message-IDs.
const ID_PREFIX: &str = "fd.";
/// References keep the root and the most recent ids.
const MAX_REFERENCES: usize = 20;

pub(crate) fn transport(config: &EmailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = config.smtp.host.trim().to_string();
    let parameters = || -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(host.clone()).certificate_store(CertificateStore::WebpkiRoots);
        if let Some(path) = &config.smtp.ca_file {
            for cert in crate::tls::load_ca_file(path)? {
                let cert = Certificate::from_der(cert.to_vec()).map_err(|e| format!("{}: {e}", path.display()))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build_rustls().map_err(|e| e.to_string())
    };
    let tls = match config.smtp.security {
        Security::Tls => Tls::Wrapper(parameters()?),
        Security::Starttls => Tls::Required(parameters()?),
        Security::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(config.smtp_port())
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)))
        .hello_name(ClientId::Domain(config.id_domain()));
    if !config.smtp.user.trim().is_empty() {
        builder = builder.credentials(Credentials::new(
            config.smtp.user.trim().to_string(),
            config.smtp.password.expose_secret().to_string(),
        ));
    }
    Ok(builder.build())
}

/// The install's secret for our Message-IDs (an HMAC-SHA256 key of a full block).
pub(crate) type IdSecret = [u8; 64];

/// Bytes of each of the two parts of our Message-IDs (80 bits each).
const PART_BYTES: usize = 10;

/// HMAC-SHA256 under the install's secret of `purpose` and `data`, cut to [`PART_BYTES`] and
/// written in lowercase base32 (16 characters: short ids survive every mail client's header
/// folding, and lowercase survives systems that change the case of ids).
fn part(secret: &IdSecret, purpose: &str, data: &str) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new(&(*secret).into());
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(data.as_bytes());
    base32(&mac.finalize().into_bytes()[..PART_BYTES])
}

/// RFC 4648 base32, lowercase, without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u16, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 31)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[usize::from((buffer << (5 - bits)) & 31)]));
    }
    out
}

/// Our Message-ID for a delivery: `fd.<id>.<check>@domain`. `<id>` is derived from the outbound
/// id under the install's secret (kept in the adapter's state), so a retried delivery carries the
/// same one (and a client that got the first shows one message) while nobody without the secret
/// can guess it; `<check>` lets us recognise our own ids without looking them up.
pub(crate) fn message_id_for(outbound_id: &str, domain: &str, secret: &IdSecret) -> String {
    let id = part(secret, "message-id", outbound_id);
    let check = part(secret, "check", &id);
    format!("{ID_PREFIX}{id}.{check}@{domain}")
}

/// Whether we made this Message-ID: our form, our domain, and a check made with our secret.
pub(crate) fn is_our_message_id(message_id: &str, domain: &str, secret: &IdSecret) -> bool {
    let lower = message_id.to_ascii_lowercase();
    let Some((local, at)) = lower.rsplit_once('@') else { return false };
    let Some((id, check)) = local.strip_prefix(ID_PREFIX).and_then(|l| l.split_once('.')) else {
        return false;
    };
    at == domain.to_ascii_lowercase() && crate::same_bytes(check.as_bytes(), part(secret, "check", id).as_bytes())
}

fn rejected(code: &str, message: impl Into<String>) -> AdapterError {
    AdapterError::Rejected { platform: PLATFORM, code: code.into(), message: message.into() }
}

fn unavailable(message: impl Into<String>) -> AdapterError {
    AdapterError::Unavailable { platform: PLATFORM, message: message.into() }
}

/// Transient SMTP replies (4xx) and connection trouble are retried; permanent ones (5xx) and
/// mail the server cannot take are not.
fn smtp_error(e: &lettre::transport::smtp::Error) -> AdapterError {
    let code = e.status().map(|c| c.to_string()).unwrap_or_else(|| "smtp".into());
    if e.is_permanent() {
        rejected(&code, format!("the SMTP server refused the mail: {e}"))
    } else if e.is_transient() {
        unavailable(format!("the SMTP server deferred the mail ({code}): {e}"))
    } else {
        unavailable(format!("SMTP: {}", with_tls_hint(&e.to_string())))
    }
}

/// An SMTP error's text, followed by what to set when it says the server's certificate was not
/// trusted.
fn with_tls_hint(message: &str) -> String {
    match crate::tls::certificate_hint(message, "smtp") {
        Some(hint) => format!("{message} ({hint})"),
        None => message.to_string(),
    }
}

fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, AdapterError> {
    let parsed = address
        .trim()
        .parse()
        .map_err(|e| rejected("invalid_address", format!("{address:?} is not an address: {e}")))?;
    Ok(Mailbox::new(name.map(str::to_string).filter(|n| !n.is_empty()), parsed))
}

fn bracket(id: &str) -> String {
    format!("<{id}>")
}

/// References for a reply to `context`: its References and its own Message-ID, trimmed to the
/// root and the most recent ones.
fn references(context: &ReplyContext) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in context.references.iter().chain(std::iter::once(&context.message_id)) {
        if !id.is_empty() && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    if ids.len() > MAX_REFERENCES {
        let tail = ids.split_off(ids.len() - (MAX_REFERENCES - 1));
        ids.truncate(1);
        ids.extend(tail);
    }
    ids
}

fn with_sources(text: &str, citations: &[Citation]) -> String {
    if citations.is_empty() {
        return text.to_string();
    }
    let mut out = format!("{}\n\nSources:", text.trim_end());
    for (i, c) in citations.iter().enumerate() {
        out.push_str(&format!("\n[{}] {}", i + 1, c.title));
        if let Some(url) = &c.url {
            out.push_str(&format!(" — {url}"));
        }
    }
    out
}

fn summary_body(adapter: &EmailAdapter, s: &HandoffSummary, context: &ReplyContext, thread: &[ThreadEntry]) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "A customer's conversation was handed to the support team.\n\nReplying to this email answers the customer: the reply goes to {} with a copy to {}, which tells frontdesk that a person has taken over (the bot then stays silent in this conversation). Remove this summary from your reply before sending.\n",
        context.reply_to, adapter.mailbox
    ));
    t.push_str(&format!("\nReason: {} (confidence {:.2})\nQuestion: {}\n", s.reason, s.confidence, s.question));
    if s.condensed_question != s.question {
        t.push_str(&format!("Understood as: {}\n", s.condensed_question));
    }
    if !s.sources.is_empty() {
        t.push_str("Best sources:\n");
        for c in &s.sources {
            t.push_str(&format!("- {}{}\n", c.title, c.url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default()));
        }
    }
    if let Some(draft) = &s.draft {
        t.push_str(&format!("Suggested answer:\n{draft}\n"));
    }
    t.push_str(&format!("Conversation: {}\n\n--- The conversation so far ---\n", s.conversation));
    for entry in thread {
        t.push_str(&format!("\nFrom {}:\n", entry.from));
        if let Some(other) = &entry.asked_reply_to {
            t.push_str(&format!(
                "(This mail asked for replies to go to {other} (Reply-To). frontdesk only writes to the sender's own address; reply to {other} yourself if that is right.)\n"
            ));
        }
        t.push_str(&format!("{}\n", entry.text.trim()));
    }
    t
}

/// Sends one reply.
pub(crate) async fn deliver(adapter: &EmailAdapter, message: &Outbound) -> Result<Delivered, AdapterError> {
    let context: ReplyContext = serde_json::from_value(message.reply_context.clone()).map_err(|e| {
        rejected("no_email_thread", format!("the reply has no email thread to answer in (reply_context: {e})"))
    })?;
    if !looks_like_address(&context.reply_to) {
        return Err(rejected("invalid_address", format!("{:?} is not an address to reply to", context.reply_to)));
    }
    let conversation = message.conversation.as_str();
    let storage = |e: sled::Error| unavailable(format!("the adapter's state could not be stored: {e}"));
    let thread = adapter.state.thread(conversation).map_err(storage)?.unwrap_or_default();
    let subject_base = if context.subject.is_empty() { base_subject(&thread.subject) } else { context.subject.clone() };
    let id = message_id_for(&message.id, &adapter.config.id_domain(), &adapter.id_secret);
    let from = mailbox(Some(&adapter.config.from_name), &adapter.mailbox)?;
    let refs = references(&context);

    let mut builder = Message::builder()
        .from(from.clone())
        .message_id(Some(bracket(&id)))
        .in_reply_to(bracket(&context.message_id))
        .references(refs.iter().map(|r| bracket(r)).collect::<Vec<_>>().join(" "))
        .date_now()
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-replied".into()))
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Frontdesk-Conversation"), conversation.into()));

    let (body, entry) = match &message.kind {
        OutboundKind::AgentSummary { agents_channel, summary } => {
            let Some(agents) = agents_channel.as_ref().map(|c| c.as_str().trim().to_ascii_lowercase()) else {
                return Err(rejected(
                    "no_agents_address",
                    "the policy names no agents' address: set agents_channel to the team's email address",
                ));
            };
            if !looks_like_address(&agents) {
                return Err(rejected(
                    "invalid_agents_address",
                    format!("agents_channel {agents:?} is not an email address"),
                ));
            }
            adapter.state.add_agent(&agents).map_err(storage)?;
            builder = builder
                .to(mailbox(None, &agents)?)
                .reply_to(mailbox(context.reply_name.as_deref(), &context.reply_to)?)
                .reply_to(from.clone())
                .subject(format!("[Handoff] {subject_base}"));
            (summary_body(adapter, summary, &context, &thread.entries), None)
        }
        kind => {
            builder = builder.to(mailbox(context.reply_name.as_deref(), &context.reply_to)?).subject(
                if subject_base.is_empty() { "Re: your message".to_string() } else { format!("Re: {subject_base}") },
            );
            let body = match kind {
                OutboundKind::Answer { citations, .. } => with_sources(&message.text, citations),
                OutboundKind::Handoff { mention: Some(m) } if looks_like_address(m) => {
                    // The escalation target gets a copy, so a reply-all reaches the customer and us.
                    adapter.state.add_agent(&m.trim().to_ascii_lowercase()).map_err(storage)?;
                    builder = builder.cc(mailbox(None, m)?);
                    message.text.clone()
                }
                _ => message.text.clone(),
            };
            let entry = ThreadEntry {
                from: format!("frontdesk ({})", adapter.mailbox),
                at_ms: crate::now_ms(),
                text: body.clone(),
                asked_reply_to: None,
            };
            (body, Some(entry))
        }
    };
    let email = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| rejected("unbuildable", format!("the reply could not be built: {e}")))?;
    // Map our Message-ID to the conversation before sending, so a reply to it always threads.
    adapter.state.record_message(conversation, &id, &subject_base, None, entry).map_err(storage)?;
    match adapter.smtp.send(email).await {
        Ok(_) => {
            tracing::info!(outbound = %message.id, message_id = %id, %conversation, "email sent");
            Ok(Delivered { platform_message_id: Some(id) })
        }
        // Logged once, by the delivery worker that retries it or moves it to the dead letters.
        Err(e) => Err(smtp_error(&e)),
    }
}

/// Connects to the SMTP server and says hello (EHLO, and login when configured).
pub(crate) async fn smtp_health(adapter: &EmailAdapter) -> Health {
    let target = format!("{}:{}", adapter.config.smtp.host, adapter.config.smtp_port());
    match adapter.smtp.test_connection().await {
        Ok(true) => Health { ok: true, detail: format!("SMTP {target} ok") },
        Ok(false) => Health { ok: false, detail: format!("SMTP {target} did not accept the connection") },
        Err(e) => Health { ok: false, detail: format!("SMTP {target}: {}", with_tls_hint(&e.to_string())) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_ours() {
        let secret = &[7u8; 64];
        let a = message_id_for("t1-answer", "example.com", secret);
        assert_eq!(a, message_id_for("t1-answer", "example.com", secret), "a retry carries the same id");
        assert_ne!(a, message_id_for("t1-handoff", "example.com", secret));
        assert_ne!(message_id_for("a b", "example.com", secret), message_id_for("a-b", "example.com", secret));
        assert!(is_our_message_id(&a, "example.com", secret));
        assert!(is_our_message_id(&a.to_ascii_uppercase(), "EXAMPLE.com", secret), "case changed on the way");
        assert!(!is_our_message_id("abc@example.com", "example.com", secret));
        assert!(!is_our_message_id(&a, "example.org", secret));
        let local = a.strip_suffix("@example.com").unwrap();
        assert_eq!(local.len(), 3 + 16 + 1 + 16, "{a}");
        assert!(local.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'), "{a}");
    }

    #[test]
    fn message_ids_cannot_be_made_without_the_installs_secret() {
        let ours = &[7u8; 64];
        let theirs = &[8u8; 64];
        let a = message_id_for("t1-answer", "example.com", ours);
        // The same delivery elsewhere (or the id recomputed without the secret) differs.
        assert_ne!(a, message_id_for("t1-answer", "example.com", theirs));
        assert!(!is_our_message_id(&message_id_for("t1-answer", "example.com", theirs), "example.com", ours));
        // The id once carried only a hash of the outbound id: that form is no longer ours.
        let unkeyed = format!("fd.t1-answer.{}@example.com", &crate::sha256_hex(b"t1-answer")[..12]);
        assert!(!is_our_message_id(&unkeyed, "example.com", ours));
        // Another id with a check copied from ours, or a made-up check, is not ours.
        let (id, check) = a.strip_suffix("@example.com").unwrap().strip_prefix("fd.").unwrap().split_once('.').unwrap();
        assert!(!is_our_message_id(&format!("fd.{}.{check}@example.com", "a".repeat(id.len())), "example.com", ours));
        assert!(!is_our_message_id(&format!("fd.{id}.{}@example.com", "a".repeat(16)), "example.com", ours));
    }

    #[test]
    fn base32_follows_rfc_4648() {
        // RFC 4648, section 10, lowercased and without padding.
        for (plain, encoded) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn references_keep_the_root_and_the_latest() {
        let context = ReplyContext {
            message_id: "m30".into(),
            references: (0..30).map(|i| format!("m{i}")).collect(),
            ..ReplyContext::default()
        };
        let r = references(&context);
        assert_eq!(r.len(), MAX_REFERENCES);
        assert_eq!(r[0], "m0");
        assert_eq!(r.last().map(String::as_str), Some("m30"));
    }
}
