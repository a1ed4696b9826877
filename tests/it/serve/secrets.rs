//! No secret shows in anything frontdesk prints, stores or serves.
//!
//! Every secret the configuration can hold (Slack signing secret, bot token, OAuth client secret
//! and token key; Discord bot token; the mailbox password and the inbound-mail webhook secret;
//! the model provider's key; the Meilisearch keys; the admin token) gets a value of its own. The real
//! `frontdesk serve` binary then runs a conversation on Slack, Discord and email (against the
//! Slack and Discord fakes, the local mail stack and a scripted model), and is sent a few
//! requests with bad signatures, which are the paths most tempted to echo what they got.
//! Afterwards its debug-level log, `/readyz` (public, and in detail with the admin token), `frontdesk doctor`, `frontdesk config`,
//! `frontdesk trace` for each conversation and every record in the data store are searched for
//! each secret's value.

use super::process::{free_port, frontdesk_with, serve_binary, store_dump, toml_str};
use crate::support::scripted_llm::{Reply, ScriptedServer};
use crate::support::wait::eventually_within;
use frontdesk_discord::fake::{FakeDiscord, FakeUser, AGENTS_CHANNEL, APP_ID, GUILD_ID, SUPPORT_CHANNEL, SUPPORT_ROLE};
use frontdesk_email::fake::{CustomerMail, MailStack};
use frontdesk_slack::fake::{FakeSlack, BOT_TOKEN, BOT_USER_ID, TEAM_ID};
use secrecy::ExposeSecret;
use std::path::Path;
use std::time::Duration;

const SLACK_SIGNING_SECRET: &str = "slk-sign-7c41d09e5ab2";
const SLACK_CLIENT_SECRET: &str = "slk-client-3f9a60b1ce74";
const SLACK_TOKEN_KEY: &str = "8d2f61a0c49e7b35f0a1d6c8e3b2947a5c0e19f7b86d2a43e1f5c7093b8a6d21";
const WEBHOOK_SECRET: &str = "mail-hook-51e0b7c29d3a";
const LLM_KEY: &str = "sk-llm-0b9e4d71a6c3f825";
const MEILI_MASTER_KEY: &str = "meili-master-6a1f0e93c2d7";
const MEILI_SEARCH_KEY: &str = "meili-search-d40b8e17f2a9";
/// `frontdesk serve` runs as a child process here, slower to answer than the in-process tests.
const SERVE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
const ADMIN_TOKEN: &str = "admin-token-4f7e0c2b91d8a6e3570b1c9d2e8f4a60";
const LLM_KEY_VAR: &str = "SECRETS_TEST_LLM_KEY";
const CHANNEL: &str = "CSECRETS";
const ARTICLES: &[&str] = &["billing-free-trial", "billing-refunds-and-credits", "integrations-slack"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_traces_doctor_or_readiness() {
    const TEST: &str = "no_secret_appears_in_logs_traces_doctor_or_readiness";
    let Some(stack) = MailStack::or_skip(TEST) else { return };
    let model = frontdesk::testing::ensure_model(&frontdesk::models::MINILM).expect("the embedding model");
    let models = model.parent().unwrap().to_path_buf();
    let slack = FakeSlack::start().await.unwrap();
    let discord = FakeDiscord::start().await.unwrap();
    let llm = ScriptedServer::start_with_fallback(
        vec![],
        Reply::answer("Every new workspace starts with a 14-day free trial [1].", 40, 12),
    )
    .await;
    let support = stack.unique_address("support");
    let customer = stack.unique_address("customer");
    let mail = stack.config(&support);
    let mailbox_password = mail.imap.password.expose_secret().to_string();

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&docs).unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("evals/tallyhawk/docs");
    for a in ARTICLES {
        std::fs::copy(sample.join(format!("{a}.md")), docs.join(format!("{a}.md"))).unwrap();
    }
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("frontdesk.toml");
    let dns = mail.dkim.dns_server.clone().unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            r#"data_dir = {data}

[retrieval.meilisearch]
master_key = {meili_master}
search_key = {meili_search}
search_key_uid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

[llm]
generator = "openai"
condense_with_llm = false

[[llm.providers]]
name = "main"
base_url = {llm_url}
model = "scripted"
api_key_env = "{LLM_KEY_VAR}"
stream = false
max_retries = 0

[server]
listen = "127.0.0.1:{port}"
admin_token = "{ADMIN_TOKEN}"

[slack]
mode = "events"
signing_secret = {slack_signing}
bot_token = {slack_token}
api_url = {slack_api}
client_id = "1234.5678"
client_secret = {slack_client}
redirect_url = "{base}/slack/oauth/callback"
token_encryption_key = {slack_key}

[slack.agents.{TEAM_ID}]
user_ids = ["UAGENT"]

[discord]
bot_token = {discord_token}
application_id = "{APP_ID}"
support_role_id = "{SUPPORT_ROLE}"
api_base = {discord_api}
rate_limiter = false

[email]
address = {support}
from_name = "Example Support"

[email.imap]
host = {imap_host}
port = {imap_port}
security = "none"
user = {support}
password = {mailbox_password}
poll_secs = 1

[email.smtp]
host = {smtp_host}
port = {smtp_port}
security = "none"

[email.webhook]
secret = {webhook}

[email.dkim]
verify = true
dns_server = {dns}
"#,
            data = toml_str(&data.to_string_lossy()),
            meili_master = toml_str(MEILI_MASTER_KEY),
            meili_search = toml_str(MEILI_SEARCH_KEY),
            llm_url = toml_str(&llm.base_url()),
            slack_signing = toml_str(SLACK_SIGNING_SECRET),
            slack_token = toml_str(BOT_TOKEN),
            slack_api = toml_str(&slack.api_url()),
            slack_client = toml_str(SLACK_CLIENT_SECRET),
            slack_key = toml_str(SLACK_TOKEN_KEY),
            discord_token = toml_str(frontdesk_discord::fake::TOKEN),
            discord_api = toml_str(&discord.api_base()),
            support = toml_str(&support),
            imap_host = toml_str(&mail.imap.host),
            imap_port = mail.imap.port,
            mailbox_password = toml_str(&mailbox_password),
            smtp_host = toml_str(&mail.smtp.host),
            smtp_port = mail.smtp.port,
            webhook = toml_str(WEBHOOK_SECRET),
            dns = toml_str(&dns),
        ),
    )
    .unwrap();
    let guild = GUILD_ID.to_string();
    for workspace in [TEAM_ID, guild.as_str(), support.as_str()] {
        let (ok, out) = frontdesk_with(
            &config,
            &models,
            &[(LLM_KEY_VAR, LLM_KEY)],
            &["ingest", "--workspace", workspace, docs.to_str().unwrap()],
        );
        assert!(ok, "ingest into {workspace} failed: {out}");
    }

    let log = dir.path().join("serve.log");
    let serving = serve_binary(&config, &models, &[(LLM_KEY_VAR, LLM_KEY)], &log, &base).await;
    let http = reqwest::Client::new();

    // Slack: a signed mention; the answer lands in the thread.
    let question =
        slack.customer_message(CHANNEL, "UCUSTOMER", &format!("<@{BOT_USER_ID}> How long is the free trial?"), None);
    let envelope = serde_json::to_vec(&slack.event_for(&question, "app_mention", "EvSecrets1")).unwrap();
    let ts = frontdesk_slack::signature::now_secs().to_string();
    let signature = frontdesk_slack::signature::sign(SLACK_SIGNING_SECRET.as_bytes(), &ts, &envelope);
    let sent = http
        .post(format!("{base}/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", &signature)
        .body(envelope.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200, "{:?}", sent.text().await);
    // The same event with a signature made with another secret is refused.
    let forged = frontdesk_slack::signature::sign(b"not-the-secret", &ts, &envelope);
    let refused = http
        .post(format!("{base}/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", &forged)
        .body(envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Discord: a mention in the support channel; the reply comes in a thread.
    discord.wait_identified(1, Duration::from_secs(60)).await.unwrap();
    discord.send_message(SUPPORT_CHANNEL, &FakeUser::customer(), "How long is the free trial?", true).unwrap();

    // Email: a question to the support address; the answer comes back by mail. And a webhook
    // call signed with the wrong secret.
    stack
        .send_mail(&CustomerMail {
            from: &customer,
            to: vec![&support],
            subject: "Free trial",
            body: "Hello, how long is the free trial?",
            message_id: &format!("secrets-{port}@customer.example"),
            ..CustomerMail::default()
        })
        .await
        .unwrap();
    let webhook = http
        .post(format!("{base}/email/inbound"))
        .header("content-type", "message/rfc822")
        .header("x-frontdesk-signature", "sha256=00ff")
        .body("From: someone@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
        .send()
        .await
        .unwrap();
    assert!(webhook.status().is_client_error(), "{}", webhook.status());

    eventually_within(SERVE_WAIT, "the Slack answer", async || {
        (!slack.thread(CHANNEL, &question.ts).is_empty()).then_some(())
    })
    .await;
    eventually_within(SERVE_WAIT, "the Discord reply", async || {
        discord.posted().iter().any(|p| p.channel_id != SUPPORT_CHANNEL && p.channel_id != AGENTS_CHANNEL).then_some(())
    })
    .await;
    stack.wait_for(&customer, Duration::from_secs(60), |m| m.from == support).await.unwrap();

    let mut readyz = http.get(format!("{base}/readyz")).send().await.unwrap().text().await.unwrap();
    let detailed = http.get(format!("{base}/readyz")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    readyz.push_str(&detailed.text().await.unwrap());
    let serve_log = serving.stop();
    let (doctor_ok, doctor) = frontdesk_with(&config, &models, &[(LLM_KEY_VAR, LLM_KEY)], &["doctor"]);
    let (_, shown) = frontdesk_with(&config, &models, &[(LLM_KEY_VAR, LLM_KEY)], &["config"]);
    let (stored, conversations) = store_dump(&data);
    assert!(conversations.len() >= 3, "a conversation per channel: {conversations:?}");
    let mut traces = String::new();
    for key in &conversations {
        let (ok, out) = frontdesk_with(&config, &models, &[(LLM_KEY_VAR, LLM_KEY)], &["trace", key, "--json"]);
        assert!(ok, "trace {key}: {out}");
        traces.push_str(&out);
    }
    // What was searched must be there to search: a run that captured nothing proves nothing.
    assert!(serve_log.contains("DEBUG"), "the serve log is at debug level: {serve_log}");
    assert!(traces.contains("free trial"), "{traces}");
    assert!(doctor.contains("slack") || doctor.contains("Slack"), "doctor ran (ok = {doctor_ok}): {doctor}");

    let secrets = [
        ("slack.signing_secret", SLACK_SIGNING_SECRET.to_string()),
        ("slack.bot_token", BOT_TOKEN.to_string()),
        ("slack.client_secret", SLACK_CLIENT_SECRET.to_string()),
        ("slack.token_encryption_key", SLACK_TOKEN_KEY.to_string()),
        ("discord.bot_token", frontdesk_discord::fake::TOKEN.to_string()),
        ("email.imap.password", mailbox_password),
        ("email.webhook.secret", WEBHOOK_SECRET.to_string()),
        ("the model provider's key", LLM_KEY.to_string()),
        ("retrieval.meilisearch.master_key", MEILI_MASTER_KEY.to_string()),
        ("retrieval.meilisearch.search_key", MEILI_SEARCH_KEY.to_string()),
        ("server.admin_token", ADMIN_TOKEN.to_string()),
    ];
    let outputs = [
        ("the serve log", serve_log.as_str()),
        ("/readyz", readyz.as_str()),
        ("frontdesk doctor", doctor.as_str()),
        ("frontdesk config", shown.as_str()),
        ("frontdesk trace", traces.as_str()),
        ("the data store", stored.as_str()),
    ];
    let mut found = Vec::new();
    for (secret, value) in &secrets {
        for (output, text) in &outputs {
            if text.contains(value.as_str()) {
                found.push(format!("{secret} in {output}"));
            }
        }
    }
    assert!(found.is_empty(), "secrets found: {found:?}");
}
