//! A raw email as the IMAP poller or the inbound webhook receives it, through the adapter's
//! parser (MIME, addresses, threading headers, attachments, auto-reply detection, the new text
//! without quotes and signature); and the same bytes as a body for the quote stripper alone.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let max_attachment_bytes = frontdesk_email::EmailConfig::default().max_attachment_bytes;
    let parsed = frontdesk_email::parse(raw, max_attachment_bytes);
    frontdesk_fuzz::explain(|| format!("{parsed:#?}"));
    let _ = frontdesk_email::new_text(&String::from_utf8_lossy(raw));
});
