//! IMAP: connecting (TLS, STARTTLS, or plain on loopback), and reading new mail exactly once.
//!
//! A message is fetched with `BODY.PEEK[]` (so reading it changes nothing), handed to the inbox,
//! and only after `accept` returned is it flagged (or moved) and the folder's last handled UID
//! stored. A crash in between leaves the message unflagged and the stored UID behind it: the
//! next start fetches it again and the inbox drops the duplicate by its Message-ID.

use crate::config::{EmailConfig, Security};
use async_imap::{Client, Session};
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How long connecting, logging in and each command may take.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to the IMAP server, encrypted or not.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type ImapSession = Session<ImapStream>;

/// Why talking to the IMAP server failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("TLS with {host} failed: {message}")]
    Tls { host: String, message: String },
    #[error("login as {user} refused: {message}")]
    Login { user: String, message: String },
    #[error("IMAP {command} failed: {message}")]
    Command { command: &'static str, message: String },
    #[error("the IMAP server did not answer {0} in time")]
    Timeout(&'static str),
    #[error("{0}")]
    Refused(String),
}

fn tls_connector(config: &EmailConfig, host: &str) -> Result<tokio_rustls::TlsConnector, ImapError> {
    let roots = crate::tls::roots(config.imap.ca_file.as_deref())
        .map_err(|message| ImapError::Tls { host: host.into(), message })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let tls = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls { host: host.into(), message: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}

async fn tls_wrap(config: &EmailConfig, host: &str, tcp: TcpStream) -> Result<ImapStream, ImapError> {
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| ImapError::Tls { host: host.into(), message: e.to_string() })?;
    let connecting = tls_connector(config, host)?.connect(name, tcp);
    let tls = match tokio::time::timeout(COMMAND_TIMEOUT, connecting).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let mut message = e.to_string();
            if let Some(hint) = crate::tls::certificate_hint(&message, "imap") {
                message = format!("{message} ({hint})");
            }
            return Err(ImapError::Tls { host: host.into(), message });
        }
        Err(_) => return Err(ImapError::Timeout("TLS handshake")),
    };
    Ok(ImapStream::Tls(Box::new(tls)))
}

pub(crate) async fn timed<T, E: std::fmt::Display>(
    what: &'static str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ImapError::Command { command: what, message: e.to_string() }),
        Err(_) => Err(ImapError::Timeout(what)),
    }
}

/// Connects and logs in.
pub async fn login(config: &EmailConfig) -> Result<ImapSession, ImapError> {
    let host = config.imap.host.trim().to_string();
    let port = config.imap_port();
    if config.imap.security == Security::None && !crate::config::is_loopback(&host) {
        return Err(ImapError::Refused(format!(
            "refusing an unencrypted IMAP connection to {host}: security \"none\" is for loopback servers only"
        )));
    }
    let tcp = match tokio::time::timeout(COMMAND_TIMEOUT, TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(ImapError::Connect(format!("{host}:{port}: {e}"))),
        Err(_) => return Err(ImapError::Connect(format!("{host}:{port}: timed out"))),
    };
    let stream = match config.imap.security {
        Security::Tls => tls_wrap(config, &host, tcp).await?,
        Security::Starttls | Security::None => ImapStream::Plain(tcp),
    };
    let mut client = Client::new(stream);
    match tokio::time::timeout(COMMAND_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_greeting))) => {}
        Ok(Ok(None)) => return Err(ImapError::Connect(format!("{host}:{port} closed the connection"))),
        Ok(Err(e)) => return Err(ImapError::Connect(format!("{host}:{port}: {e}"))),
        Err(_) => return Err(ImapError::Timeout("greeting")),
    }
    if config.imap.security == Security::Starttls {
        timed("STARTTLS", client.run_command_and_check_ok("STARTTLS", None)).await?;
        let ImapStream::Plain(tcp) = client.into_inner() else {
            return Err(ImapError::Tls { host, message: "STARTTLS on an encrypted connection".into() });
        };
        client = Client::new(tls_wrap(config, &host, tcp).await?);
    }
    let user = config.imap_user();
    match tokio::time::timeout(COMMAND_TIMEOUT, client.login(&user, config.imap.password.expose_secret())).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _))) => Err(ImapError::Login { user, message: e.to_string() }),
        Err(_) => Err(ImapError::Timeout("LOGIN")),
    }
}

/// What SELECT tells about a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub uid_validity: u32,
    pub uid_next: u32,
    /// Whether the server keeps keywords such as `$FrontdeskHandled` on its messages
    /// (PERMANENTFLAGS lists `\*`, or is not sent at all). Some servers (Microsoft Exchange)
    /// only keep the standard flags, and accept a keyword for the session only.
    pub keywords: bool,
}

/// Selects a folder.
pub async fn select(session: &mut ImapSession, folder: &str) -> Result<Selected, ImapError> {
    let mailbox = timed("SELECT", session.select(folder)).await?;
    let uid_validity = mailbox
        .uid_validity
        .ok_or_else(|| ImapError::Command { command: "SELECT", message: format!("{folder} has no UIDVALIDITY") })?;
    let keywords = mailbox.permanent_flags.is_empty()
        || mailbox.permanent_flags.iter().any(|f| matches!(f, async_imap::types::Flag::MayCreate));
    Ok(Selected { uid_validity, uid_next: mailbox.uid_next.unwrap_or(1), keywords })
}

/// Which messages to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// Above the last handled UID (and not yet marked).
    Since(u32),
    /// No position stored yet: unread mail not yet marked (a first start does not answer the
    /// folder's old mail).
    FirstStart,
    /// The folder's UIDVALIDITY changed: every message not yet marked.
    Resync,
}

/// UIDs to handle, ascending. `processed_flag` is the flag marking handled mail (`None` when
/// handled mail is moved away).
pub async fn pending_uids(
    session: &mut ImapSession,
    search: Search,
    processed_flag: Option<&str>,
) -> Result<Vec<u32>, ImapError> {
    let not_done = match processed_flag {
        Some(flag) if flag.eq_ignore_ascii_case("\\Seen") => Some("UNSEEN".to_string()),
        Some(keyword) => Some(format!("NOT KEYWORD {keyword}")),
        None => None,
    };
    let query = match (search, &not_done) {
        (Search::Since(last), Some(f)) => format!("UID {}:* {f}", last.saturating_add(1)),
        (Search::Since(last), None) => format!("UID {}:*", last.saturating_add(1)),
        (Search::FirstStart, Some(f)) if f == "UNSEEN" => "UNSEEN".to_string(),
        (Search::FirstStart, Some(f)) => format!("UNSEEN {f}"),
        (Search::FirstStart, None) => "UNSEEN".to_string(),
        (Search::Resync, Some(f)) => f.clone(),
        (Search::Resync, None) => "ALL".to_string(),
    };
    let found = timed("UID SEARCH", session.uid_search(&query)).await?;
    let floor = match search {
        Search::Since(last) => last,
        _ => 0,
    };
    // "n:*" always includes the highest UID, even below n.
    let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > floor).collect();
    uids.sort_unstable();
    Ok(uids)
}

/// The raw message of one UID (`None` when it disappeared meanwhile).
pub async fn fetch_raw(session: &mut ImapSession, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
    let fetched: Vec<_> = timed("UID FETCH", async {
        let stream = session.uid_fetch(uid.to_string(), "(UID BODY.PEEK[])").await?;
        stream.try_collect::<Vec<_>>().await
    })
    .await?;
    Ok(fetched.into_iter().find(|f| f.uid == Some(uid)).and_then(|f| f.body().map(<[u8]>::to_vec)))
}

/// Marks a handled message: sets the flags, or moves it to the processed folder.
pub async fn mark(session: &mut ImapSession, uid: u32, flags: &[&str], move_to: Option<&str>) -> Result<(), ImapError> {
    if !flags.is_empty() {
        let query = format!("+FLAGS.SILENT ({})", flags.join(" "));
        timed("UID STORE", async {
            let stream = session.uid_store(uid.to_string(), &query).await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
    }
    if let Some(folder) = move_to {
        timed("UID MOVE", session.uid_mv(uid.to_string(), folder)).await?;
    }
    Ok(())
}

/// Creates a folder if it does not exist yet.
pub async fn ensure_folder(session: &mut ImapSession, folder: &str) -> Result<(), ImapError> {
    let exists = timed("LIST", async {
        let stream = session.list(Some(""), Some(folder)).await?;
        stream.try_collect::<Vec<_>>().await
    })
    .await?
    .iter()
    .any(|n| n.name() == folder);
    if !exists {
        timed("CREATE", session.create(folder)).await?;
    }
    Ok(())
}

pub async fn has_idle(session: &mut ImapSession) -> Result<bool, ImapError> {
    Ok(timed("CAPABILITY", session.capabilities()).await?.has_str("IDLE"))
}

pub async fn logout(mut session: ImapSession) {
    let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
}
