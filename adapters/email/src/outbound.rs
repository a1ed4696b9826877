//! Replies over SMTP: threading headers, stable Message-IDs, the forward to the agents, and how
//! SMTP failures map to retry or not.

use crate::adapter::{base_subject, EmailAdapter, ReplyContext, PLATFORM};
use crate::config::{looks_like_address, EmailConfig, Security};
use crate::state::ThreadEntry;
use frontdesk_channel::{AdapterError, Citation, Delivered, HandoffSummary, Health, Outbound, OutboundKind};
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

/// Our Message-ID for a delivery: derived from the outbound id, so a retried delivery carries the
/// same one (and a client that got the first shows one message).
pub(crate) fn message_id_for(outbound_id: &str, domain: &str) -> String {
    let readable: String = outbound_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '-' })
        .take(60)
        .collect();
    let hash = crate::sha256_hex(outbound_id.as_bytes());
    format!("{ID_PREFIX}{readable}.{}@{domain}", &hash[..12])
}

pub(crate) fn is_our_message_id(message_id: &str, domain: &str) -> bool {
    message_id.starts_with(ID_PREFIX) && message_id.to_ascii_lowercase().ends_with(&format!("@{domain}"))
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
    let id = message_id_for(&message.id, &adapter.config.id_domain());
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
        Err(e) => {
            let mapped = smtp_error(&e);
            tracing::warn!(outbound = %message.id, retryable = mapped.retryable(), error = %mapped, "email not sent");
            Err(mapped)
        }
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
        let a = message_id_for("t1-answer", "example.com");
        assert_eq!(a, message_id_for("t1-answer", "example.com"));
        assert_ne!(a, message_id_for("t1-handoff", "example.com"));
        assert!(a.starts_with("fd.t1-answer."));
        assert!(is_our_message_id(&a, "example.com"));
        assert!(!is_our_message_id("abc@example.com", "example.com"));
        let weird = message_id_for("a b<c>@d", "example.com");
        assert!(!weird[..weird.len() - "@example.com".len()].contains(['<', '>', ' ', '@']), "{weird}");
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
