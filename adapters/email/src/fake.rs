//! Helpers for tests against the local mail stack (`deploy/peers/mail-stack.sh`): its settings
//! from the environment, fresh mailboxes, sending a customer's mail over SMTP, and reading a
//! mailbox over IMAP.

use crate::config::{DkimConfig, EmailConfig, ImapConfig, Security, SmtpConfig};
use futures::TryStreamExt;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::SecretString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The local mail stack, as `deploy/peers/mail-stack.sh start` exported it.
#[derive(Debug, Clone)]
pub struct MailStack {
    /// The test domain: every address in it exists.
    pub domain: String,
    /// The password of every address.
    pub password: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub imap_host: String,
    pub imap_port: u16,
    /// SMTP with TLS from the first byte (the plain port offers STARTTLS).
    pub smtps_port: u16,
    /// IMAP with TLS from the first byte (the plain port offers STARTTLS).
    pub imaps_port: u16,
    /// The same IMAP server at another loopback address, without IDLE.
    pub imap_noidle_host: String,
    /// The PEM certificate of the CA that issued the servers' certificate.
    pub ca_file: String,
    /// Dovecot's log: each login line says whether it was over TLS.
    pub dovecot_log: String,
    /// The DNS server publishing the signing domain's DKIM key (`ip:port`).
    pub dns: String,
    pub dkim_domain: String,
    pub dkim_selector: String,
    /// The signing domain's private key (PEM file).
    pub dkim_key: String,
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn port(name: &str) -> Result<u16, String> {
    var(name)?.parse().map_err(|_| format!("{name} is not a port"))
}

impl MailStack {
    /// The stack's settings, or why the tests that need it are skipped: the variables are set by
    /// `eval "$(deploy/peers/setup.sh)"`.
    pub fn from_env() -> Result<MailStack, String> {
        if std::env::var("PEER_MAIL_STACK").as_deref() != Ok("1") {
            return Err("PEER_MAIL_STACK is not set: run `eval \"$(deploy/peers/setup.sh)\"` first".into());
        }
        Ok(MailStack {
            domain: var("PEER_MAIL_DOMAIN")?,
            password: var("PEER_MAIL_PASSWORD")?,
            smtp_host: var("PEER_MAIL_SMTP_HOST")?,
            smtp_port: port("PEER_MAIL_SMTP_PORT")?,
            imap_host: var("PEER_MAIL_IMAP_HOST")?,
            imap_port: port("PEER_MAIL_IMAP_PORT")?,
            smtps_port: port("PEER_MAIL_SMTPS_PORT")?,
            imaps_port: port("PEER_MAIL_IMAPS_PORT")?,
            imap_noidle_host: var("PEER_MAIL_IMAP_NOIDLE_HOST")?,
            ca_file: var("PEER_MAIL_CA")?,
            dovecot_log: var("PEER_MAIL_DOVECOT_LOG")?,
            dns: var("PEER_MAIL_DNS")?,
            dkim_domain: var("PEER_MAIL_DKIM_DOMAIN")?,
            dkim_selector: var("PEER_MAIL_DKIM_SELECTOR")?,
            dkim_key: var("PEER_MAIL_DKIM_KEY")?,
        })
    }

    /// The stack, or `None` after recording that `test` was skipped because the stack is not
    /// set up (the run's summary lists it; in CI a missing peer fails the run).
    pub fn or_skip(test: &str) -> Option<MailStack> {
        MailStack::from_env()
            .inspect_err(|why| frontdesk_channel::skip::skipped(test, frontdesk_channel::skip::Missing::Peer, why))
            .ok()
    }

    /// An address no other test (or earlier run) uses.
    pub fn unique_address(&self, name: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000_000_000)
            .unwrap_or(0);
        format!("{name}-{}-{nanos}-{n}@{}", std::process::id(), self.domain)
    }

    /// A configuration for the support address `mailbox` on the stack: IMAP with IDLE, SMTP,
    /// DKIM checked against the stack's DNS server.
    pub fn config(&self, mailbox: &str) -> EmailConfig {
        EmailConfig {
            address: mailbox.to_string(),
            from_name: "Example Support".into(),
            imap: ImapConfig {
                host: self.imap_host.clone(),
                port: self.imap_port,
                security: Security::None,
                password: SecretString::from(self.password.clone()),
                poll_secs: 1,
                ..ImapConfig::default()
            },
            smtp: SmtpConfig {
                host: self.smtp_host.clone(),
                port: self.smtp_port,
                security: Security::None,
                ..SmtpConfig::default()
            },
            dkim: DkimConfig { verify: true, dns_server: Some(self.dns.clone()) },
            ..EmailConfig::default()
        }
    }

    /// The configuration of [`MailStack::config`] with both connections encrypted as `security`
    /// asks (`tls` or `starttls`), on the matching ports, trusting the stack's CA.
    pub fn config_secured(&self, mailbox: &str, security: Security) -> EmailConfig {
        let mut config = self.config(mailbox);
        let (imap_port, smtp_port) = match security {
            Security::Tls => (self.imaps_port, self.smtps_port),
            Security::Starttls | Security::None => (self.imap_port, self.smtp_port),
        };
        config.imap.security = security;
        config.imap.port = imap_port;
        config.imap.ca_file = Some(self.ca_file.clone().into());
        config.smtp.security = security;
        config.smtp.port = smtp_port;
        config.smtp.ca_file = Some(self.ca_file.clone().into());
        config
    }

    /// Dovecot's login lines for `user`, oldest first.
    pub fn imap_logins(&self, user: &str) -> Vec<String> {
        let needle = format!("Login: user=<{user}>");
        std::fs::read_to_string(&self.dovecot_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_string)
            .collect()
    }

    /// Sends raw MIME over SMTP from `from` (the envelope sender) to `to`.
    pub async fn send_raw(&self, from: &str, to: &[&str], raw: &[u8]) -> Result<(), String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.smtp_host.clone())
            .port(self.smtp_port)
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let parse = |a: &str| a.parse::<lettre::Address>().map_err(|e| format!("{a:?}: {e}"));
        let recipients = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(parse(from)?), recipients).map_err(|e| e.to_string())?;
        transport.send_raw(&envelope, raw).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Sends a plain-text mail; `reply_to_ids` are the Message-IDs it answers (In-Reply-To is
    /// the last one, References all of them).
    pub async fn send_mail(&self, mail: &CustomerMail<'_>) -> Result<(), String> {
        let recipients: Vec<&str> = mail.to.iter().chain(mail.cc.iter()).copied().collect();
        self.send_raw(mail.from, &recipients, mail.render().as_bytes()).await
    }

    /// Sends `mail` with a DKIM signature of the stack's signing domain (its From should be an
    /// address of [`MailStack::dkim_domain`]), as that domain's mail server would.
    pub async fn send_signed(&self, mail: &CustomerMail<'_>) -> Result<(), String> {
        let raw = mail.render();
        let signed = self.dkim_sign(raw.as_bytes())?;
        let recipients: Vec<&str> = mail.to.iter().chain(mail.cc.iter()).copied().collect();
        self.send_raw(mail.from, &recipients, &signed).await
    }

    /// `raw` with a DKIM-Signature of the stack's signing domain in front.
    pub fn dkim_sign(&self, raw: &[u8]) -> Result<Vec<u8>, String> {
        use mail_auth::common::crypto::{RsaKey, Sha256};
        use mail_auth::common::headers::HeaderWriter;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::PrivateKeyDer;
        let pem = std::fs::read(&self.dkim_key).map_err(|e| format!("{}: {e}", self.dkim_key))?;
        let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: {e}", self.dkim_key))?;
        let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| format!("{}: {e}", self.dkim_key))?;
        let signature = mail_auth::dkim::DkimSigner::from_key(key)
            .domain(self.dkim_domain.clone())
            .selector(self.dkim_selector.clone())
            .headers(["From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References"])
            .sign(raw)
            .map_err(|e| format!("DKIM signing failed: {e}"))?;
        let mut signed = signature.to_header().into_bytes();
        signed.extend_from_slice(raw);
        Ok(signed)
    }

    /// Every message in `user`'s INBOX, oldest first.
    pub async fn mailbox(&self, user: &str) -> Result<Vec<ReceivedMail>, String> {
        let tcp = tokio::net::TcpStream::connect((self.imap_host.as_str(), self.imap_port))
            .await
            .map_err(|e| format!("IMAP connect: {e}"))?;
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.map_err(|e| format!("IMAP greeting: {e}"))?;
        let mut session = client.login(user, &self.password).await.map_err(|(e, _)| format!("IMAP login: {e}"))?;
        session.select("INBOX").await.map_err(|e| format!("IMAP select: {e}"))?;
        let fetched: Vec<_> = match session.uid_fetch("1:*", "(UID BODY.PEEK[])").await {
            Ok(stream) => stream.try_collect().await.map_err(|e| format!("IMAP fetch: {e}"))?,
            Err(e) => return Err(format!("IMAP fetch: {e}")),
        };
        let _ = session.logout().await;
        let mut mails: Vec<(u32, ReceivedMail)> =
            fetched.iter().filter_map(|f| Some((f.uid?, ReceivedMail::parse(f.body()?)))).collect();
        mails.sort_by_key(|(uid, _)| *uid);
        Ok(mails.into_iter().map(|(_, m)| m).collect())
    }

    /// Waits until `user`'s INBOX holds a message matching `wanted`, up to `within`.
    pub async fn wait_for(
        &self,
        user: &str,
        within: Duration,
        wanted: impl Fn(&ReceivedMail) -> bool,
    ) -> Result<ReceivedMail, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mails = self.mailbox(user).await.unwrap_or_default();
            if let Some(m) = mails.into_iter().find(|m| wanted(m)) {
                return Ok(m);
            }
            if tokio::time::Instant::now() >= deadline {
                let seen: Vec<String> =
                    self.mailbox(user).await.unwrap_or_default().iter().map(|m| m.subject.clone()).collect();
                return Err(format!("no matching mail for {user} within {within:?}; the mailbox holds {seen:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A mail a customer (or an agent) writes.
#[derive(Debug, Clone, Default)]
pub struct CustomerMail<'a> {
    pub from: &'a str,
    pub from_name: Option<&'a str>,
    pub to: Vec<&'a str>,
    pub cc: Vec<&'a str>,
    pub subject: &'a str,
    pub body: &'a str,
    /// Without angle brackets.
    pub message_id: &'a str,
    /// Earlier Message-IDs of the thread, oldest first.
    pub reply_to_ids: Vec<String>,
}

impl CustomerMail<'_> {
    /// The raw MIME text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self.from_name {
            Some(name) => out.push_str(&format!("From: {name} <{}>\r\n", self.from)),
            None => out.push_str(&format!("From: {}\r\n", self.from)),
        }
        out.push_str(&format!("To: {}\r\n", self.to.join(", ")));
        if !self.cc.is_empty() {
            out.push_str(&format!("Cc: {}\r\n", self.cc.join(", ")));
        }
        out.push_str(&format!("Subject: {}\r\nMessage-ID: <{}>\r\n", self.subject, self.message_id));
        out.push_str("Date: Tue, 04 Mar 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n");
        if let Some(last) = self.reply_to_ids.last() {
            out.push_str(&format!("In-Reply-To: <{last}>\r\n"));
            let refs: Vec<String> = self.reply_to_ids.iter().map(|r| format!("<{r}>")).collect();
            out.push_str(&format!("References: {}\r\n", refs.join(" ")));
        }
        out.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
        out.push_str(&self.body.replace('\n', "\r\n"));
        out.push_str("\r\n");
        out
    }
}

/// A message read from a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub message_id: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Vec<String>,
    pub subject: String,
    /// The whole text body (quotes included), with `\n` line ends.
    pub body: String,
    /// `Auto-Submitted`, when present.
    pub auto_submitted: Option<String>,
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    pub fn parse(raw: &[u8]) -> ReceivedMail {
        let message = mail_parser::MessageParser::default().parse(raw);
        let addresses = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
            a.map(|a| a.iter().filter_map(|x| x.address()).map(str::to_ascii_lowercase).collect()).unwrap_or_default()
        };
        match &message {
            Some(m) => ReceivedMail {
                message_id: m.message_id().map(crate::parse::normalize_id).unwrap_or_default(),
                in_reply_to: crate::parse::ids_of(m.in_reply_to()),
                references: crate::parse::ids_of(m.references()),
                from: addresses(m.from()).into_iter().next().unwrap_or_default(),
                to: addresses(m.to()),
                cc: addresses(m.cc()),
                reply_to: addresses(m.reply_to()),
                subject: m.subject().unwrap_or_default().to_string(),
                body: m.body_text(0).map(|t| t.replace("\r\n", "\n")).unwrap_or_default(),
                auto_submitted: m.header_raw("Auto-Submitted").map(|v| v.trim().to_string()),
                raw: raw.to_vec(),
            },
            None => ReceivedMail {
                message_id: String::new(),
                in_reply_to: Vec::new(),
                references: Vec::new(),
                from: String::new(),
                to: Vec::new(),
                cc: Vec::new(),
                reply_to: Vec::new(),
                subject: String::new(),
                body: String::from_utf8_lossy(raw).into_owned(),
                auto_submitted: None,
                raw: raw.to_vec(),
            },
        }
    }
}

/// One mail [`smtp_recorder`] took: the envelope recipients (lower-cased) and the message as sent.
#[derive(Debug, Clone)]
pub struct TakenMail {
    pub recipients: Vec<String>,
    pub data: String,
}

/// An SMTP server on loopback (no TLS, no login) that takes every mail; returns its port and
/// the mails it took, for tests that check what frontdesk sent and to whom.
pub async fn smtp_recorder() -> std::io::Result<(u16, std::sync::Arc<std::sync::Mutex<Vec<TakenMail>>>)> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let taken = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = taken.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                if write.write_all(b"220 mx.example.test ESMTP\r\n").await.is_err() {
                    return;
                }
                let mut recipients = Vec::new();
                let mut line = String::new();
                while read.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let upper = line.trim_end().to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-mx.example.test\r\n250 8BITMIME\r\n"
                    } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
                        recipients.push(to.trim().trim_matches(['<', '>']).to_ascii_lowercase());
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        if write.write_all(b"354 go ahead\r\n").await.is_err() {
                            return;
                        }
                        let mut data = String::new();
                        let mut part = String::new();
                        while read.read_line(&mut part).await.unwrap_or(0) > 0 && part != ".\r\n" {
                            data.push_str(&part);
                            part.clear();
                        }
                        let mail = TakenMail { recipients: std::mem::take(&mut recipients), data };
                        record.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(mail);
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                    line.clear();
                }
            });
        }
    });
    Ok((port, taken))
}
