//! From raw MIME to what the engine needs: who wrote, in which thread, the new text (without the
//! quoted history and the signature), the attachments, and whether a machine sent it.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed email: {0}")]
pub struct Malformed(pub String);

/// An attachment, listed and never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAttachment {
    pub name: String,
    pub content_type: Option<String>,
    pub size_bytes: u64,
    /// Larger than `max_attachment_bytes`.
    pub oversized: bool,
}

/// A parsed incoming email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMail {
    /// The Message-ID without angle brackets; derived from the content when the mail has none.
    pub message_id: String,
    pub has_message_id: bool,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The sender's address, lowercased.
    pub from: String,
    pub from_name: Option<String>,
    /// The address of the mail's `Reply-To` when it names someone other than the sender,
    /// lowercased. Only recorded for the agents: frontdesk answers the sender (`from`) alone, so
    /// a mail cannot make it write to a third party.
    pub reply_to: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    /// The new text of the message: quoted history and signature removed.
    pub text: String,
    pub attachments: Vec<ParsedAttachment>,
    /// Set when a machine sent the message (an auto-reply, a bounce, bulk mail): why.
    pub automated: Option<String>,
}

/// Strips the angle brackets and spaces around a Message-ID.
pub fn normalize_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string()
}

pub(crate) fn ids_of(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<String> = match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    raw.iter()
        .flat_map(|s| s.split_whitespace().map(normalize_id).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect()
}

fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| a.iter().filter_map(|addr| addr.address()).map(|s| s.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default()
}

/// Parses one raw message. Fails only when it cannot be a customer's mail at all: not MIME, or
/// no sender address to answer.
pub fn parse(raw: &[u8], max_attachment_bytes: u64) -> Result<ParsedMail, Malformed> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Malformed("the message is empty".into()));
    }
    let message =
        MessageParser::default().parse(raw).ok_or_else(|| Malformed("the data is not a MIME message".into()))?;
    if message.headers().is_empty() {
        return Err(Malformed("the message has no headers".into()));
    }
    let from_addr = message.from().and_then(|a| a.first());
    let from = from_addr
        .and_then(|a| a.address())
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| crate::config::looks_like_address(s))
        .ok_or_else(|| Malformed("the message has no valid From address".into()))?;
    let from_name = from_addr.and_then(|a| a.name()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let reply_to =
        addresses(message.reply_to()).into_iter().find(|a| crate::config::looks_like_address(a)).filter(|a| *a != from);

    let (message_id, has_message_id) = match message.message_id().map(normalize_id).filter(|s| !s.is_empty()) {
        Some(id) => (id, true),
        None => (format!("sha256.{}@frontdesk.invalid", crate::sha256_hex(raw)), false),
    };

    let body = message.body_text(0).map(|t| t.to_string()).unwrap_or_default();
    let text = new_text(&body);

    let mut attachments = Vec::new();
    for part in message.attachments() {
        let size = part.len() as u64;
        let name = part
            .attachment_name()
            .map(str::to_string)
            .or_else(|| part.message().and_then(|m| m.subject()).map(|s| format!("{s}.eml")))
            .unwrap_or_else(|| "unnamed".into());
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .map(|s| s.to_ascii_lowercase());
        attachments.push(ParsedAttachment {
            name,
            content_type,
            size_bytes: size,
            oversized: size > max_attachment_bytes,
        });
    }

    Ok(ParsedMail {
        automated: automated_reason(&message, &from),
        message_id,
        has_message_id,
        in_reply_to: ids_of(message.in_reply_to()),
        references: ids_of(message.references()),
        from,
        from_name,
        reply_to,
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: message.subject().map(|s| s.trim().to_string()).unwrap_or_default(),
        text,
        attachments,
    })
}

/// Why the message looks machine-sent, if it does (RFC 3834 and what mail software does).
fn automated_reason(message: &mail_parser::Message<'_>, from: &str) -> Option<String> {
    let raw = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if let Some(v) = raw("Auto-Submitted") {
        let kind = v.split(';').next().unwrap_or("").trim().to_string();
        if kind != "no" {
            return Some(format!("Auto-Submitted: {kind}"));
        }
    }
    if let Some(v) = raw("Precedence") {
        if matches!(v.as_str(), "bulk" | "list" | "junk" | "auto_reply") {
            return Some(format!("Precedence: {v}"));
        }
    }
    for header in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if message.header_raw(header).is_some() {
            return Some(format!("{header} header"));
        }
    }
    if let Some(v) = raw("X-Auto-Response-Suppress") {
        // Exchange marks its own out-of-office replies and bounces this way.
        if v.contains("all") && message.header_raw("X-MS-Exchange-Generated-Message-Source").is_some() {
            return Some("Exchange-generated message".into());
        }
    }
    if let Some(v) = raw("Return-Path") {
        if v == "<>" || v.is_empty() {
            return Some("null sender (Return-Path: <>)".into());
        }
    }
    let local = from.split('@').next().unwrap_or("");
    if matches!(local, "mailer-daemon" | "postmaster" | "mail-daemon" | "noreply-dmarc-support") {
        return Some(format!("sent by {local}"));
    }
    if let Some(ct) = message.root_part().content_type() {
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        if ct.ctype().eq_ignore_ascii_case("multipart") && sub == "report" {
            let kind = ct.attribute("report-type").unwrap_or("report").to_ascii_lowercase();
            return Some(format!("multipart/report ({kind})"));
        }
    }
    None
}

/// The lines that start a quoted copy of earlier mail.
fn starts_history(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
    let lower = line.to_ascii_lowercase();
    // "On Mon, 3 Mar 2025 at 10:00, Ann <ann@example.com> wrote:" (sometimes wrapped on two lines),
    // and the same in a few other languages.
    let intro = ["on ", "le ", "am ", "el ", "il ", "op "];
    let verbs = ["wrote:", "a écrit :", "a écrit:", "schrieb:", "escribió:", "ha scritto:", "schreef:"];
    if intro.iter().any(|p| lower.starts_with(p)) {
        let joined = format!("{lower} {}", next.to_ascii_lowercase());
        if verbs.iter().any(|v| lower.ends_with(v)) || verbs.iter().any(|v| joined.trim_end().ends_with(v)) {
            return true;
        }
    }
    // Outlook and others.
    if lower.starts_with("-----original message-----") || lower.starts_with("----- original message -----") {
        return true;
    }
    if lower.starts_with("-----") && lower.contains("forwarded message") {
        return true;
    }
    if line.len() >= 20 && line.chars().all(|c| c == '_') {
        return true;
    }
    // A header block: "From: ..." followed within a few lines by "Sent:" or "Date:".
    if lower.starts_with("from:") {
        let window = &lines[i + 1..lines.len().min(i + 5)];
        if window.iter().any(|l| {
            let l = l.trim().to_ascii_lowercase();
            l.starts_with("sent:") || l.starts_with("date:")
        }) {
            return true;
        }
    }
    false
}

/// The new text of a message body: quoted history (`>` lines, "On ... wrote:", Outlook separators)
/// and the signature (after `-- `) removed. When that leaves nothing (an inline reply made only
/// of quotes, say), the unquoted lines are kept instead.
pub fn new_text(body: &str) -> String {
    let normalized = body.replace("\r\n", "\n");
    let lines: Vec<&str> = normalized.lines().collect();
    let mut kept = Vec::new();
    for i in 0..lines.len() {
        let line = lines[i];
        if line == "-- " || line == "--" {
            break;
        }
        if starts_history(&lines, i) {
            break;
        }
        if line.trim_start().starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    let text = kept.join("\n").trim().to_string();
    if !text.is_empty() {
        return text;
    }
    let unquoted: Vec<&str> = lines.iter().copied().filter(|l| !l.trim_start().starts_with('>')).collect();
    let text = unquoted.join("\n").trim().to_string();
    if !text.is_empty() {
        return text;
    }
    normalized.trim().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quoted_history_and_signature_are_removed() {
        let body = "Thanks, that worked.\nOne more thing: can I export to CSV?\n\nOn Tue, 4 Mar 2025 at 09:12, Example Support <support@example.com>\nwrote:\n> Annual plans can be refunded\n> within 30 days.\n";
        assert_eq!(new_text(body), "Thanks, that worked.\nOne more thing: can I export to CSV?");
        let body = "Is there a trial?\n\n-- \nAnn Smith\nACME Corp";
        assert_eq!(new_text(body), "Is there a trial?");
        let body = "See below\r\n\r\n-----Original Message-----\r\nFrom: a@b.c\r\nquestion";
        assert_eq!(new_text(body), "See below");
        let body = "New question\n\n________________________________\nFrom: Support <s@example.com>\nSent: Monday\n";
        assert_eq!(new_text(body), "New question");
        let body = "Top\n\nFrom: Support <s@example.com>\nSent: Monday, 3 March\nTo: me\n\nold text";
        assert_eq!(new_text(body), "Top");
        let body = "Le lun. 3 mars 2025 à 10:00, Support <s@example.com> a écrit :\n> vieux";
        assert_eq!(new_text(body), "Le lun. 3 mars 2025 à 10:00, Support <s@example.com> a écrit :");
    }

    #[test]
    fn inline_quotes_keep_the_customers_lines() {
        let body = "> Which plan are you on?\nThe annual one.\n> And since when?\nMarch.";
        assert_eq!(new_text(body), "The annual one.\nMarch.");
    }

    #[test]
    fn headers_ids_and_charsets_are_read() {
        let raw = b"From: =?utf-8?q?Jos=C3=A9?= <Jose@Example.COM>\r\nTo: support@example.com\r\nSubject: =?iso-8859-1?q?Caf=E9?=\r\nMessage-ID: <abc@x.example>\r\nIn-Reply-To: <r1@example.com>\r\nReferences: <r0@example.com>\r\n <r1@example.com>\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nJ'ai une question sur le caf=E9.\r\n";
        let m = parse(raw, 1000).unwrap();
        assert_eq!(m.from, "jose@example.com");
        assert_eq!(m.from_name.as_deref(), Some("José"));
        assert_eq!(m.subject, "Café");
        assert_eq!(m.message_id, "abc@x.example");
        assert_eq!(m.in_reply_to, vec!["r1@example.com"]);
        assert_eq!(m.references, vec!["r0@example.com", "r1@example.com"]);
        assert_eq!(m.text, "J'ai une question sur le café.");
        assert!(m.automated.is_none());
        assert_eq!(m.reply_to, None);
    }

    #[test]
    fn a_reply_to_other_than_the_sender_is_kept_apart_from_the_sender() {
        let raw =
            b"From: Ann <ann@example.org>\r\nReply-To: Someone <Victim@Example.NET>\r\nSubject: hi\r\n\r\nbody\r\n";
        let m = parse(raw, 1000).unwrap();
        assert_eq!(m.from, "ann@example.org");
        assert_eq!(m.reply_to.as_deref(), Some("victim@example.net"));
        let raw = b"From: ann@example.org\r\nReply-To: ANN@example.org\r\n\r\nbody\r\n";
        assert_eq!(parse(raw, 1000).unwrap().reply_to, None, "the sender's own address is no other address");
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = b"From: a@example.com\r\nSubject: hi\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>How do I <b>reset</b> my password?</p></body></html>\r\n";
        let m = parse(raw, 1000).unwrap();
        assert!(m.text.contains("How do I reset my password?"), "{:?}", m.text);
        assert!(!m.has_message_id);
        assert!(m.message_id.starts_with("sha256."));
    }

    #[test]
    fn machines_are_recognised() {
        let base = "From: a@example.com\r\nSubject: x\r\n";
        for (extra, why) in [
            ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
            ("Precedence: bulk\r\n", "Precedence"),
            ("X-Autoreply: yes\r\n", "X-Autoreply"),
            ("Return-Path: <>\r\n", "null sender"),
        ] {
            let raw = format!("{base}{extra}\r\nbody\r\n");
            let m = parse(raw.as_bytes(), 1000).unwrap();
            assert!(m.automated.as_deref().unwrap_or("").contains(why), "{extra}: {:?}", m.automated);
        }
        let raw = "From: a@example.com\r\nAuto-Submitted: no\r\n\r\nbody\r\n";
        assert_eq!(parse(raw.as_bytes(), 1000).unwrap().automated, None);
        let raw = "From: MAILER-DAEMON@example.com\r\n\r\nbody\r\n";
        assert!(parse(raw.as_bytes(), 1000).unwrap().automated.is_some());
        let raw = "From: x@example.com\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n";
        assert!(parse(raw.as_bytes(), 1000).unwrap().automated.unwrap().contains("delivery-status"));
    }

    #[test]
    fn malformed_input_is_explained() {
        assert_eq!(parse(b"", 10).unwrap_err().0, "the message is empty");
        assert!(parse(b"no headers at all, just words", 10).is_err());
        assert!(parse(b"Subject: no sender\r\n\r\nbody", 10).unwrap_err().0.contains("From"));
    }

    #[test]
    fn attachments_are_listed_with_their_size() {
        let raw = "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf; name=big.pdf\r\nContent-Disposition: attachment; filename=big.pdf\r\n\r\n0123456789012345678901234567890123456789\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=small.png\r\n\r\nabc\r\n--b--\r\n";
        let m = parse(raw.as_bytes(), 10).unwrap();
        assert_eq!(m.text, "see attached");
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[0].name, "big.pdf");
        assert_eq!(m.attachments[0].content_type.as_deref(), Some("application/pdf"));
        assert!(m.attachments[0].oversized);
        assert!(!m.attachments[1].oversized);
    }
}
