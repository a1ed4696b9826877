//! The adapter: from a raw email to the inbox, the IMAP loop, health checks.

use crate::config::EmailConfig;
use crate::dkim::{DkimVerdict, DkimVerifier};
use crate::imap::{self, ImapError, ImapSession};
use crate::outbound;
use crate::parse::{self, Malformed, ParsedMail};
use crate::state::{HeldMessage, State, ThreadEntry};
use async_trait::async_trait;
use frontdesk_channel::{
    AdapterError, Attachment, Author, AuthorId, ChannelAdapter, ChannelId, ConversationKey, Delivered, EventId, Health,
    Inbound, InboxSink, Outbound, Source, WorkspaceId,
};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) const PLATFORM: &str = "email";
/// Set on mail left in the folder for a person: over the sender's rate limit.
const HELD_KEYWORD: &str = "$FrontdeskHeld";
/// Set on mail left in the folder for a person: it could not be read.
const MALFORMED_KEYWORD: &str = "$FrontdeskMalformed";
/// IDLE is renewed this often (servers drop it after 30 minutes); a renewal also checks for mail.
const IDLE_RENEW: Duration = Duration::from_secs(5 * 60);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The most text of one email handed to the inbox (bytes of UTF-8). Longer text is cut, with a
/// note first saying so; the mail is still taken in and answered or handed off. Webhook and IMAP
/// mail alike: both come through [`EmailAdapter::ingest`]. (The webhook's body is also capped
/// by the HTTP server; IMAP mail by the mail server's own message size limit.)
const MAX_TEXT_BYTES: usize = 64 * 1024;
/// How often held mail past its keeping limits is purged (also at each start).
const HELD_PURGE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Why the adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("the email configuration has problems: {}", .0.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; "))]
    Config(Vec<(String, String)>),
    #[error("the SMTP settings are unusable: {0}")]
    Smtp(String),
    #[error("the DKIM resolver could not be set up: {0}")]
    Dkim(String),
    #[error("the adapter's state could not be read or written: {0}")]
    Storage(String),
    #[error("the support address cannot name a workspace: {0}")]
    Id(#[from] frontdesk_channel::ids::InvalidId),
}

/// What happened to one received email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// In the inbox; the engine will handle it.
    Accepted,
    /// The inbox already had it (the same Message-ID).
    Duplicate,
    /// Sent by a machine (auto-reply, bounce, bulk): not answered, for the given reason.
    Ignored(String),
    /// Our own mail: never answered.
    Own,
    /// Over the sender's rate limit: kept for a person (see [`EmailAdapter::held`]).
    Held(String),
}

/// Why an email could not be taken in.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("{0}")]
    Inbox(AdapterError),
    #[error("the adapter's state could not be stored: {0}")]
    Storage(#[from] sled::Error),
}

/// What a reply needs to know of the message it answers; kept in `Inbound::reply_context`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplyContext {
    /// The customer's Message-ID (no angle brackets).
    pub message_id: String,
    /// Its References, then In-Reply-To (no angle brackets).
    #[serde(default)]
    pub references: Vec<String>,
    /// The thread's subject without "Re:" prefixes.
    #[serde(default)]
    pub subject: String,
    /// Where the reply goes: the mail's sender (its From address), the same identity the
    /// sender's rate limit counts. Never the mail's `Reply-To`, which anyone can set to anyone.
    pub reply_to: String,
    #[serde(default)]
    pub reply_name: Option<String>,
    /// The support address that received it.
    #[serde(default)]
    pub mailbox: String,
}

/// The email channel adapter. Build it with [`EmailAdapter::new`], run it as a
/// [`ChannelAdapter`], and mount [`EmailAdapter::router`] for the webhook.
pub struct EmailAdapter {
    pub(crate) config: EmailConfig,
    pub(crate) mailbox: String,
    workspace: WorkspaceId,
    channel: ChannelId,
    pub(crate) state: State,
    pub(crate) smtp: AsyncSmtpTransport<Tokio1Executor>,
    /// The key that signs our Message-IDs (kept in `state`).
    pub(crate) id_secret: outbound::IdSecret,
    dkim: Option<DkimVerifier>,
    /// The inbox while `run` runs; the webhook answers 503 without it.
    pub(crate) inbox: Mutex<Option<Arc<dyn InboxSink>>>,
    /// One email at a time through threading, rate counting and the inbox.
    ingest_lock: tokio::sync::Mutex<()>,
    /// The webhook's HMAC signatures taken recently (replays are refused).
    pub(crate) replays: Mutex<crate::webhook::Replays>,
}

/// How far a mail's From address is vouched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// A valid DKIM signature of the From domain (or a parent domain of it).
    Verified,
    /// Nothing vouches for the address, nor contradicts it: the domain does not sign its mail,
    /// or DKIM checking is off.
    Unsigned,
    /// The domain signs its mail, but this mail has no valid signature of it.
    Failed,
}

impl Sender {
    /// Whether a mail from an agent's address (`agent_address`) is an agent's: only when DKIM
    /// proves the address, since anyone can write an agent's address in From.
    pub(crate) fn is_agent(self, agent_address: bool) -> bool {
        agent_address && self == Sender::Verified
    }
}

/// Where a received mail belongs.
struct Threading {
    conversation: String,
    /// It starts the conversation.
    top_level: bool,
    /// The inbox's id for it: a mail seen twice gets the same one.
    event_id: String,
}

/// Removes "Re:", "Fwd:" and similar prefixes.
pub(crate) fn base_subject(subject: &str) -> String {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let cut = ["re:", "fw:", "fwd:", "aw:", "sv:", "tr:", "wg:"].iter().find(|p| lower.starts_with(*p));
        match cut {
            Some(p) => s = s[p.len()..].trim_start(),
            None => return s.to_string(),
        }
    }
}

/// A storage-safe id from a Message-ID: itself when short, else its hash.
pub(crate) fn id_key(message_id: &str) -> String {
    if message_id.len() <= 200 && !message_id.chars().any(char::is_control) {
        message_id.to_string()
    } else {
        format!("sha256.{}", crate::sha256_hex(message_id.as_bytes()))
    }
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

impl EmailAdapter {
    /// Builds the adapter. `state` is a sled tree of the service's store, owned by this adapter:
    /// the IMAP position, the Message-ID → conversation map, thread records, held mail.
    pub fn new(config: EmailConfig, state: sled::Tree) -> Result<Arc<EmailAdapter>, EmailError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(EmailError::Config(problems));
        }
        let mailbox = config.mailbox();
        let smtp = outbound::transport(&config).map_err(EmailError::Smtp)?;
        let dkim = if config.dkim.verify {
            let server = config.dkim.dns_server.as_deref().and_then(|s| s.parse().ok());
            Some(DkimVerifier::new(server).map_err(EmailError::Dkim)?)
        } else {
            None
        };
        let state = State::new(state);
        state.migrate_held().map_err(|e| EmailError::Storage(format!("held mail could not be converted: {e}")))?;
        let id_secret = state.message_id_secret().map_err(|e| EmailError::Storage(e.to_string()))?;
        Ok(Arc::new(EmailAdapter {
            workspace: WorkspaceId::new(mailbox.clone())?,
            channel: ChannelId::new(mailbox.clone())?,
            mailbox,
            config,
            state,
            smtp,
            id_secret,
            dkim,
            inbox: Mutex::new(None),
            ingest_lock: tokio::sync::Mutex::new(()),
            replays: Mutex::new(Default::default()),
        }))
    }

    /// The workspace (and channel) of this mailbox: the support address.
    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// Mail over a sender's rate limit, oldest first: not answered, kept here (with its raw
    /// MIME) and, for IMAP, left in the folder flagged `$FrontdeskHeld`. Kept for 30 days, at
    /// most 1,000 messages and 256 MiB in all (the oldest goes first; the log names each one).
    pub fn held(&self) -> Vec<HeldMessage> {
        self.state.held()
    }

    /// Purges held mail past its keeping limits now and then, until shutdown.
    async fn purge_held_until(&self, shutdown: &CancellationToken) {
        loop {
            match self.state.purge_held(crate::now_ms()) {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "held emails past their keeping limits purged"),
                Err(e) => tracing::error!(error = %e, "held emails could not be purged; retried in an hour"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(HELD_PURGE_EVERY) => {}
            }
        }
    }

    /// True for the addresses of the support team: configured addresses and domains, and
    /// addresses conversations were forwarded to. An address alone proves nothing (anyone can
    /// write it in From): see [`Sender::is_agent`].
    fn is_agent_address(&self, address: &str) -> bool {
        let domain = domain_of(address);
        self.config.agent_addresses.iter().any(|a| a.trim().eq_ignore_ascii_case(address))
            || self.config.agent_domains.iter().any(|d| d.trim().trim_start_matches('@').eq_ignore_ascii_case(domain))
            || self.state.is_agent(address)
    }

    /// What DKIM says of the mail's From address.
    async fn check_sender(&self, raw: &[u8], mail: &ParsedMail) -> Sender {
        let Some(verifier) = &self.dkim else { return Sender::Unsigned };
        match verifier.check(raw, domain_of(&mail.from)).await {
            DkimVerdict::Pass { domain } => {
                tracing::debug!(message_id = %mail.message_id, %domain, "DKIM pass");
                Sender::Verified
            }
            DkimVerdict::Unverified { reason } => {
                tracing::warn!(message_id = %mail.message_id, from = %mail.from, %reason, "DKIM check failed; sender unverified");
                Sender::Failed
            }
            DkimVerdict::NotSigned => Sender::Unsigned,
        }
    }

    /// Our own mail: from the support address, or carrying one of our Message-IDs.
    fn is_own(&self, mail: &ParsedMail) -> bool {
        mail.from == self.mailbox
            || outbound::is_our_message_id(&mail.message_id, &self.config.id_domain(), &self.id_secret)
    }

    /// Where a mail belongs. It continues a conversation only when it answers one of our own
    /// messages (Message-IDs nobody else can make) and its sender is that conversation's customer
    /// (a From not contradicted by DKIM; replies only ever go to it) or a verified agent. Any
    /// other mail starts a conversation of its own, so nobody joins a thread, and sees its
    /// history, by copying its ids.
    fn thread_of(&self, mail: &ParsedMail, sender: Sender, is_agent: bool) -> Result<Threading, sled::Error> {
        let may_join = |conversation: &str| -> Result<bool, sled::Error> {
            if is_agent {
                return Ok(true);
            }
            let customer = self.state.thread(conversation)?.map(|t| t.customer).unwrap_or_default();
            Ok(sender != Sender::Failed && !customer.is_empty() && customer == mail.from)
        };
        let refused = |conversation: &str| {
            tracing::warn!(
                message_id = %mail.message_id,
                from = %mail.from,
                %conversation,
                "the sender is neither the customer of the conversation this mail answers nor a verified agent; it starts a conversation of its own"
            );
        };
        if let Some(known) = self.state.conversation_of(&mail.message_id)? {
            // Seen before (a redelivery, a copy to several of our addresses).
            if may_join(&known)? {
                let top_level = mail.in_reply_to.is_empty() && mail.references.is_empty();
                return Ok(Threading { conversation: known, top_level, event_id: id_key(&mail.message_id) });
            }
            refused(&known);
        } else {
            let domain = self.config.id_domain();
            let ours = mail
                .in_reply_to
                .iter()
                .chain(mail.references.iter().rev())
                .filter(|id| outbound::is_our_message_id(id, &domain, &self.id_secret));
            for id in ours {
                let Some(known) = self.state.conversation_of(id)? else { continue };
                if may_join(&known)? {
                    return Ok(Threading { conversation: known, top_level: false, event_id: id_key(&mail.message_id) });
                }
                refused(&known);
                break;
            }
        }
        // A new conversation, keyed by the mail's own Message-ID unless that names another
        // conversation already (someone reusing an id).
        let mut key = id_key(&mail.message_id);
        if self.state.conversation_of(&mail.message_id)?.is_some() || self.state.thread(&key)?.is_some() {
            key = format!("sha256.{}", crate::sha256_hex(format!("{}\n{}", mail.from, mail.message_id).as_bytes()));
        }
        Ok(Threading { conversation: key.clone(), top_level: true, event_id: key })
    }

    /// Takes one received email in: checks, threads it and hands it to `inbox`. Returns once the
    /// inbox holds it (or why it was not given to the inbox).
    pub async fn ingest(&self, raw: &[u8], inbox: &dyn InboxSink) -> Result<Ingested, IngestError> {
        let mail = parse::parse(raw, self.config.max_attachment_bytes)?;
        if self.is_own(&mail) {
            tracing::info!(message_id = %mail.message_id, "our own email; not answered");
            return Ok(Ingested::Own);
        }
        if let Some(why) = &mail.automated {
            tracing::info!(message_id = %mail.message_id, from = %mail.from, reason = %why, "automated email ignored");
            return Ok(Ingested::Ignored(why.clone()));
        }
        for a in mail.attachments.iter().filter(|a| a.oversized) {
            tracing::warn!(
                message_id = %mail.message_id,
                attachment = %a.name,
                size_bytes = a.size_bytes,
                limit_bytes = self.config.max_attachment_bytes,
                "attachment over the size limit; listed as oversized and not kept"
            );
        }
        // Checked before taking the lock: the DNS lookups must not hold up other mail.
        let sender = self.check_sender(raw, &mail).await;
        let _one_at_a_time = self.ingest_lock.lock().await;
        let now = crate::now_ms();
        let is_agent = sender.is_agent(self.is_agent_address(&mail.from));
        if !is_agent && self.is_agent_address(&mail.from) {
            tracing::warn!(message_id = %mail.message_id, from = %mail.from, check = ?sender, "mail from an agent's address without a valid DKIM signature of its domain; taken as a customer's");
        }
        if !is_agent
            && !self.state.within_rate(&mail.from, &mail.message_id, now, self.config.sender_messages_per_hour)?
        {
            let reason =
                format!("more than {} messages from {} in an hour", self.config.sender_messages_per_hour, mail.from);
            if !self.state.is_held(&mail.message_id) {
                self.state.hold(&HeldMessage {
                    message_id: mail.message_id.clone(),
                    from: mail.from.clone(),
                    subject: mail.subject.clone(),
                    received_at_ms: now,
                    reason: reason.clone(),
                    raw: raw.to_vec(),
                })?;
            }
            tracing::warn!(message_id = %mail.message_id, from = %mail.from, %reason, "email held for a person, not answered");
            return Ok(Ingested::Held(reason));
        }
        let Threading { conversation, top_level, event_id } = self.thread_of(&mail, sender, is_agent)?;
        let subject = base_subject(&mail.subject);
        let customer = (!is_agent).then(|| (mail.from.clone(), mail.from_name.clone()));
        let (text, full_bytes) = capped_text(inbound_text(&mail, top_level), MAX_TEXT_BYTES);
        if let Some(full_bytes) = full_bytes {
            tracing::warn!(
                message_id = %mail.message_id,
                from = %mail.from,
                text_bytes = full_bytes,
                kept_bytes = MAX_TEXT_BYTES,
                "email text too long; its start is handed on, with a note that it was cut"
            );
        }
        if let Some(other) = &mail.reply_to {
            tracing::info!(message_id = %mail.message_id, from = %mail.from, reply_to = %other, "Reply-To names another address; answering the sender only, the agents are shown it");
        }
        self.state.record_message(
            &conversation,
            &mail.message_id,
            &subject,
            customer,
            Some(ThreadEntry {
                from: mail.from.clone(),
                at_ms: now,
                text: text.clone(),
                asked_reply_to: mail.reply_to.clone(),
            }),
        )?;

        let mut references = mail.references.clone();
        for id in &mail.in_reply_to {
            if !references.contains(id) {
                references.push(id.clone());
            }
        }
        let context = ReplyContext {
            message_id: mail.message_id.clone(),
            references,
            subject,
            reply_to: mail.from.clone(),
            reply_name: mail.from_name.clone(),
            mailbox: self.mailbox.clone(),
        };
        let invalid = |e: frontdesk_channel::ids::InvalidId| Malformed(e.to_string());
        let message = Inbound {
            id: EventId::new(event_id).map_err(invalid)?,
            source: Source::Email,
            workspace: self.workspace.clone(),
            channel: self.channel.clone(),
            conversation: ConversationKey::new(conversation.clone()).map_err(invalid)?,
            author: Author {
                id: AuthorId::new(mail.from.clone()).map_err(invalid)?,
                display_name: mail.from_name.clone(),
                is_bot: false,
                is_agent,
            },
            text,
            attachments: mail
                .attachments
                .iter()
                .map(|a| Attachment {
                    name: if a.oversized { format!("{} (oversized, not kept)", a.name) } else { a.name.clone() },
                    content_type: a.content_type.clone(),
                    size_bytes: a.size_bytes,
                })
                .collect(),
            received_at_ms: now,
            addressed_to_bot: true,
            top_level,
            reply_context: serde_json::to_value(&context).unwrap_or(serde_json::Value::Null),
            action: None,
            unverified_sender: sender != Sender::Verified,
        };
        match inbox.accept(message).await {
            Ok(true) => {
                tracing::info!(message_id = %mail.message_id, %conversation, agent = is_agent, "email accepted");
                Ok(Ingested::Accepted)
            }
            Ok(false) => {
                tracing::info!(message_id = %mail.message_id, "email already in the inbox; dropped as a duplicate");
                Ok(Ingested::Duplicate)
            }
            Err(e) => Err(IngestError::Inbox(e)),
        }
    }

    fn imap_on(&self) -> bool {
        !self.config.imap.host.trim().is_empty()
    }

    /// What is wrong with marking handled mail when the folder does not keep keywords.
    fn keyword_problem(&self, keywords_kept: bool) -> Option<String> {
        let flag = self.processed_flag()?;
        (!keywords_kept && !flag.eq_ignore_ascii_case("\\Seen")).then(|| {
            format!(
                "the server does not keep keywords in {}: handled mail cannot be marked {flag}, and mail held for a \
                 person is marked \\Flagged instead; set imap.processed_flag = \"\\\\Seen\" or imap.processed_folder",
                self.config.imap.folder
            )
        })
    }

    fn processed_flag(&self) -> Option<&str> {
        match &self.config.imap.processed_folder {
            Some(_) => None,
            None => Some(self.config.imap.processed_flag.trim()),
        }
    }

    /// Reads the folder until shutdown, reconnecting with backoff.
    async fn imap_loop(&self, inbox: Arc<dyn InboxSink>, shutdown: &CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        while !shutdown.is_cancelled() {
            let mut connected = false;
            match self.imap_session(&inbox, shutdown, &mut connected).await {
                Ok(()) => return,
                Err(e) => {
                    if connected {
                        backoff = Duration::from_secs(1);
                    }
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "IMAP connection lost; reconnecting");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One connection: handle what is pending, then wait for more (IDLE or polling).
    async fn imap_session(
        &self,
        inbox: &Arc<dyn InboxSink>,
        shutdown: &CancellationToken,
        connected: &mut bool,
    ) -> Result<(), ImapError> {
        let folder = self.config.imap.folder.clone();
        let mut session = imap::login(&self.config).await?;
        if let Some(target) = &self.config.imap.processed_folder {
            imap::ensure_folder(&mut session, target).await?;
        }
        let selected = imap::select(&mut session, &folder).await?;
        let (validity, uid_next) = (selected.uid_validity, selected.uid_next);
        *connected = true;
        if let Some(problem) = self.keyword_problem(selected.keywords) {
            tracing::error!(folder = %folder, "{problem}");
        }
        let idle = self.config.imap.idle && imap::has_idle(&mut session).await?;
        tracing::info!(folder = %folder, idle, "reading the support mailbox");

        let storage = |e: sled::Error| ImapError::Refused(format!("the adapter's state could not be stored: {e}"));
        let mut last = match self.state.imap_position(&folder).map_err(storage)? {
            Some((stored, last)) if stored == validity => last,
            stored => {
                let search = match stored {
                    Some((old, _)) => {
                        tracing::warn!(folder = %folder, old, new = validity, "UIDVALIDITY changed; looking for every message not handled yet");
                        imap::Search::Resync
                    }
                    None => imap::Search::FirstStart,
                };
                let uids = imap::pending_uids(&mut session, search, self.processed_flag()).await?;
                let mut last = 0;
                self.handle_uids(&mut session, &uids, inbox, &selected, &mut last).await?;
                let last = last.max(uid_next.saturating_sub(1));
                self.state.set_imap_position(&folder, validity, last).map_err(storage)?;
                last
            }
        };

        loop {
            let uids = imap::pending_uids(&mut session, imap::Search::Since(last), self.processed_flag()).await?;
            self.handle_uids(&mut session, &uids, inbox, &selected, &mut last).await?;
            if shutdown.is_cancelled() {
                imap::logout(session).await;
                return Ok(());
            }
            if idle {
                let mut handle = session.idle();
                imap::timed("IDLE", handle.init()).await?;
                let woke = {
                    let (wait, _stop) = handle.wait_with_timeout(IDLE_RENEW);
                    tokio::select! {
                        r = wait => Some(r),
                        _ = shutdown.cancelled() => None,
                    }
                };
                let done = imap::timed("DONE", handle.done()).await;
                match (woke, done) {
                    (None, Ok(s)) => {
                        imap::logout(s).await;
                        return Ok(());
                    }
                    (None, Err(_)) => return Ok(()),
                    (Some(Err(e)), _) => {
                        return Err(ImapError::Command { command: "IDLE", message: e.to_string() });
                    }
                    (Some(Ok(_)), Ok(s)) => session = s,
                    (Some(Ok(_)), Err(e)) => return Err(e),
                }
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        imap::logout(session).await;
                        return Ok(());
                    }
                    _ = tokio::time::sleep(Duration::from_secs(self.config.imap.poll_secs.max(1))) => {}
                }
                imap::timed("NOOP", session.noop()).await?;
            }
        }
    }

    /// Handles UIDs in order; each is flagged (or moved) and the position stored only after the
    /// inbox took it. Stops at the first message the inbox could not take.
    async fn handle_uids(
        &self,
        session: &mut ImapSession,
        uids: &[u32],
        inbox: &Arc<dyn InboxSink>,
        selected: &imap::Selected,
        last: &mut u32,
    ) -> Result<(), ImapError> {
        let validity = selected.uid_validity;
        let folder = &self.config.imap.folder;
        for &uid in uids {
            let Some(raw) = imap::fetch_raw(session, uid).await? else {
                tracing::info!(uid, "message vanished before it could be read");
                continue;
            };
            let move_to = self.config.imap.processed_folder.as_deref();
            let (flags, move_to) = match self.ingest(&raw, inbox.as_ref()).await {
                Ok(Ingested::Held(_)) => (marks(Left::Held, self.processed_flag(), selected.keywords), None),
                Ok(_) => (marks(Left::Handled, self.processed_flag(), selected.keywords), move_to),
                Err(IngestError::Malformed(m)) => {
                    tracing::warn!(uid, folder = %folder, error = %m, "unreadable email left in the folder for a person, flagged {MALFORMED_KEYWORD} (or \\Flagged where keywords are not kept)");
                    (marks(Left::Malformed, self.processed_flag(), selected.keywords), None)
                }
                Err(e) => {
                    return Err(ImapError::Refused(format!("message {uid} could not be taken in: {e}")));
                }
            };
            imap::mark(session, uid, &flags, move_to).await?;
            *last = (*last).max(uid);
            self.state
                .set_imap_position(folder, validity, *last)
                .map_err(|e| ImapError::Refused(format!("the adapter's state could not be stored: {e}")))?;
        }
        Ok(())
    }

    /// Each check `frontdesk doctor` shows: IMAP login, the folder, IDLE, SMTP, the DKIM resolver.
    pub async fn doctor(&self) -> Vec<(String, Health)> {
        let mut out = Vec::new();
        let health = |ok: bool, detail: String| Health { ok, detail };
        if self.imap_on() {
            match imap::login(&self.config).await {
                Ok(mut session) => {
                    out.push((
                        "IMAP login".into(),
                        health(true, format!("logged in to {} as {}", self.config.imap.host, self.config.imap_user())),
                    ));
                    match imap::select(&mut session, &self.config.imap.folder).await {
                        Ok(selected) => {
                            out.push((
                                "IMAP folder".into(),
                                health(
                                    true,
                                    format!(
                                        "{} exists (UIDVALIDITY {})",
                                        self.config.imap.folder, selected.uid_validity
                                    ),
                                ),
                            ));
                            if let Some(problem) = self.keyword_problem(selected.keywords) {
                                out.push(("IMAP keywords".into(), health(false, problem)));
                            }
                        }
                        Err(e) => out.push(("IMAP folder".into(), health(false, e.to_string()))),
                    }
                    match imap::has_idle(&mut session).await {
                        Ok(true) => out.push(("IMAP IDLE".into(), health(true, "supported".into()))),
                        // Polling is the designed fallback: mail is still read, only later.
                        Ok(false) => out.push((
                            "IMAP IDLE".into(),
                            health(
                                true,
                                format!(
                                    "not offered by the server; new mail is checked every {} s (imap.poll_secs)",
                                    self.config.imap.poll_secs
                                ),
                            ),
                        )),
                        Err(e) => out.push(("IMAP IDLE".into(), health(false, e.to_string()))),
                    }
                    imap::logout(session).await;
                }
                Err(e) => out.push(("IMAP login".into(), health(false, e.to_string()))),
            }
        } else {
            out.push(("IMAP".into(), health(true, "off; mail arrives through the webhook".into())));
        }
        out.push(("SMTP".into(), outbound::smtp_health(self).await));
        match &self.dkim {
            Some(verifier) => {
                let domain = domain_of(&self.mailbox).to_string();
                match verifier.resolver_answers(&domain).await {
                    Ok(()) => out.push(("DKIM resolver".into(), health(true, "answers".into()))),
                    Err(e) => out.push(("DKIM resolver".into(), health(false, e))),
                }
            }
            None => out.push((
                "DKIM".into(),
                health(true, "checking is off: no sender is verified, and no mail counts as an agent's reply".into()),
            )),
        }
        match self.state.held_count() {
            Ok(0) => {}
            Ok(held) => out.push((
                "held mail".into(),
                health(
                    false,
                    format!(
                        "{held} message(s) over a sender's rate limit wait for a person (kept {} days at most)",
                        self.state.held_limits().max_age_ms / (24 * 3_600_000)
                    ),
                ),
            )),
            Err(e) => out.push(("held mail".into(), health(false, format!("held mail could not be counted: {e}")))),
        }
        let unreadable = self.state.unreadable_held();
        if unreadable > 0 {
            out.push((
                "held mail (earlier format)".into(),
                health(
                    false,
                    format!(
                        "{unreadable} held message(s) stored by an earlier version could not be read; they are left \
                         in the store (keys starting with held/ in the email tree), and the log at start names each"
                    ),
                ),
            ));
        }
        out
    }
}

/// Why a message is left in (or moved out of) the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// In frontdesk's inbox.
    Handled,
    /// Over the sender's rate limit: waits for a person.
    Held,
    /// Unreadable: waits for a person.
    Malformed,
}

/// The flags that mark a message once frontdesk is done with it. `processed` is the configured
/// flag (`None` when handled mail is moved away). Where the folder keeps no keywords, mail left
/// for a person is `\Flagged` (people see it) and the processed keyword is not tried.
fn marks(left: Left, processed: Option<&str>, keywords: bool) -> Vec<&str> {
    let is_seen = |f: &&str| f.eq_ignore_ascii_case("\\Seen");
    let own = match left {
        Left::Handled => None,
        Left::Held => Some(HELD_KEYWORD),
        Left::Malformed => Some(MALFORMED_KEYWORD),
    };
    let mut flags = Vec::new();
    if let Some(own) = own {
        flags.push(if keywords { own } else { "\\Flagged" });
    }
    match processed {
        // Mail left for a person stays unread.
        Some(f) if own.is_some() && is_seen(&f) => {}
        Some(f) if keywords || is_seen(&f) => flags.push(f),
        _ => {}
    }
    flags
}

/// The text the engine sees: the new text, with the subject first for a new thread (customers
/// often put the question there).
fn inbound_text(mail: &ParsedMail, top_level: bool) -> String {
    let subject = base_subject(&mail.subject);
    let body = mail.text.trim();
    match (subject.is_empty(), body.is_empty()) {
        (_, true) if !subject.is_empty() => subject,
        (true, true) => "(empty email)".into(),
        (false, false) if top_level && !body.to_lowercase().contains(&subject.to_lowercase()) => {
            format!("{subject}\n\n{body}")
        }
        _ => body.to_string(),
    }
}

/// A size for people: "64 KB", "20.0 MB".
fn size_text(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", (bytes + 512) / 1024)
    }
}

/// `text` when it fits in `max` bytes; otherwise its first `max` bytes (cut at a character
/// boundary) after a note saying that it was cut, and the text's full length in bytes.
fn capped_text(text: String, max: usize) -> (String, Option<usize>) {
    if text.len() <= max {
        return (text, None);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let note = format!(
        "[This email was cut: its text is {}, and only the first {} follow.]",
        size_text(text.len()),
        size_text(max)
    );
    (format!("{note}\n\n{} […]", text[..end].trim_end()), Some(text.len()))
}

#[async_trait]
impl ChannelAdapter for EmailAdapter {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    async fn run(&self, inbox: Arc<dyn InboxSink>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        if let Ok(mut slot) = self.inbox.lock() {
            *slot = Some(inbox.clone());
        }
        let reading = async {
            if self.imap_on() {
                self.imap_loop(inbox, &shutdown).await;
            } else {
                shutdown.cancelled().await;
            }
        };
        tokio::join!(reading, self.purge_held_until(&shutdown));
        if let Ok(mut slot) = self.inbox.lock() {
            *slot = None;
        }
        Ok(())
    }

    async fn deliver(&self, message: &Outbound) -> Result<Delivered, AdapterError> {
        outbound::deliver(self, message).await
    }

    async fn doctor(&self) -> Vec<(String, Health)> {
        EmailAdapter::doctor(self).await
    }

    async fn healthcheck(&self) -> Health {
        let mut details = Vec::new();
        let mut ok = true;
        if self.imap_on() {
            match imap::login(&self.config).await {
                Ok(mut session) => {
                    match imap::select(&mut session, &self.config.imap.folder).await {
                        Ok(_) => details.push(format!("IMAP {} ok", self.config.imap.folder)),
                        Err(e) => {
                            ok = false;
                            details.push(e.to_string());
                        }
                    }
                    imap::logout(session).await;
                }
                Err(e) => {
                    ok = false;
                    details.push(e.to_string());
                }
            }
        }
        let smtp = outbound::smtp_health(self).await;
        ok &= smtp.ok;
        details.push(smtp.detail);
        Health { ok, detail: details.join("; ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_is_marked_with_keywords_where_kept_and_standard_flags_elsewhere() {
        let kw = Some("$FrontdeskHandled");
        let seen = Some("\\Seen");
        assert_eq!(marks(Left::Handled, kw, true), vec!["$FrontdeskHandled"]);
        assert_eq!(marks(Left::Held, kw, true), vec![HELD_KEYWORD, "$FrontdeskHandled"]);
        assert_eq!(marks(Left::Malformed, seen, true), vec![MALFORMED_KEYWORD], "left for a person: stays unread");
        assert_eq!(marks(Left::Handled, seen, true), vec!["\\Seen"]);
        assert_eq!(marks(Left::Held, None, true), vec![HELD_KEYWORD], "moving mode: held mail is only flagged");
        // A server that keeps no keywords: people still see what waits for them.
        assert!(marks(Left::Handled, kw, false).is_empty());
        assert_eq!(marks(Left::Held, kw, false), vec!["\\Flagged"]);
        assert_eq!(marks(Left::Malformed, None, false), vec!["\\Flagged"]);
        assert_eq!(marks(Left::Handled, seen, false), vec!["\\Seen"]);
    }

    #[test]
    fn subjects_lose_their_reply_prefixes() {
        assert_eq!(base_subject("Re: RE: Fwd: Refund"), "Refund");
        assert_eq!(base_subject("Refund"), "Refund");
        assert_eq!(base_subject("Re:"), "");
    }

    #[test]
    fn only_a_verified_agents_address_is_an_agent() {
        assert!(Sender::Verified.is_agent(true));
        assert!(!Sender::Verified.is_agent(false));
        assert!(!Sender::Unsigned.is_agent(true), "an address nothing vouches for");
        assert!(!Sender::Failed.is_agent(true));
    }

    #[test]
    fn long_text_is_cut_with_a_note() {
        assert_eq!(capped_text("short".into(), 10), ("short".to_string(), None));
        assert_eq!(capped_text("x".repeat(10), 10), ("x".repeat(10), None));
        // Two-byte characters: the cut falls between two of them, never inside one.
        let (cut, full) = capped_text("é".repeat(3_000), 4_097);
        assert_eq!(full, Some(6_000));
        let (note, kept) = cut.split_once("\n\n").unwrap();
        assert_eq!(note, "[This email was cut: its text is 6 KB, and only the first 4 KB follow.]");
        assert_eq!(kept, format!("{} […]", "é".repeat(2_048)));
        assert_eq!(size_text(20 * 1024 * 1024 + 1), "20.0 MB");
        assert_eq!(size_text(64 * 1024), "64 KB");
    }

    #[test]
    fn long_ids_are_hashed() {
        assert_eq!(id_key("a@b"), "a@b");
        assert!(id_key(&"x".repeat(300)).starts_with("sha256."));
    }
}
