#![allow(clippy::unwrap_used, clippy::expect_used)]

//! A whole email conversation through the real pieces: a customer's mail sent over SMTP to the
//! local mail stack (Postfix → Dovecot, started by `deploy/peers/setup.sh`), read by the email
//! adapter over IMAP IDLE, the durable inbox (with its dedup), the worker, the engine over sample
//! help articles, and replies sent by the adapter over SMTP and read back from the customer's and
//! the agents' mailboxes over IMAP.
//!
//! Question → answer threaded in the customer's mailbox → a follow-up that only makes sense with
//! the question before it is answered from the history → "can I talk to a person?" → the
//! customer is told and the agents' address receives the forwarded thread → an agent answers
//! from the forward (to the customer, a copy to support, signed by the team's domain) and so
//! takes the conversation → the customer writes again and the bot stays silent. On the way, an
//! outsider's unsigned mail "from" the team's domain, in reply to frontdesk's answer, silences
//! nothing.
//!
//! That no unchecked answer reaches an email customer is pinned in `regression`.

use crate::support;

use frontdesk::channel::{ConversationKey, Source};
use frontdesk::conversation::{ConvState, Speaker};
use frontdesk::policy::Scope;
use frontdesk_email::fake::{CustomerMail, MailStack, ReceivedMail};
use frontdesk_email::{EmailAdapter, Security};
use std::sync::Arc;
use support::engine_harness::{harness_for, Harness};
use support::serving::serve;
use support::wait::eventually;

fn from_support<'a>(mails: &'a [ReceivedMail], support: &str) -> Vec<&'a ReceivedMail> {
    mails.iter().filter(|m| m.from == support).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_conversation_from_question_to_an_agent_taking_over() {
    let Some(stack) = MailStack::or_skip("an_email_conversation_from_question_to_an_agent_taking_over") else { return };
    let support = stack.unique_address("support");
    let customer = stack.unique_address("customer");
    let agents = stack.unique_address("agents");

    // The engine over the sample articles, for the support mailbox's workspace.
    let Harness { _dir: _keep, engine, ws } = harness_for(&support).await;
    engine.policies.set(&ws, &Scope::Workspace, &[("agents_channel".to_string(), agents.clone())]).unwrap().unwrap();

    let engine = Arc::new(engine);
    let store = engine.kb.store.clone();
    // As with a hosted mailbox: IMAP over TLS, SMTP submission with STARTTLS (the stack's
    // certificate comes from its own CA, trusted through ca_file).
    let mut config = stack.config_secured(&support, Security::Starttls);
    config.imap.security = Security::Tls;
    config.imap.port = stack.imaps_port;
    // Only IDLE can pick mail up in time with an hourly poll.
    config.imap.poll_secs = 3600;
    // The team writes from the stack's signing domain.
    config.agent_domains = vec![stack.dkim_domain.clone()];
    let adapter = EmailAdapter::new(config, store.db().open_tree("email").unwrap()).unwrap();
    let serving = serve(&engine, Source::Email, adapter.clone());
    let inbox = serving.inbox.clone();

    // 1. A question the articles answer.
    let q1 = format!("q1.{}", support.replace('@', ".at."));
    let q1 = format!("{q1}@customer.example");
    let question = CustomerMail {
        from: &customer,
        from_name: Some("Ann Customer"),
        to: vec![&support],
        subject: "Error TH-4012",
        body: "What does error TH-4012 mean for the export?\n\n-- \nAnn Customer, ACME",
        message_id: &q1,
        ..CustomerMail::default()
    };
    stack.send_mail(&question).await.unwrap();
    let answer = eventually("the answer in the customer's mailbox", async || {
        let mails = stack.mailbox(&customer).await.ok()?;
        mails.into_iter().find(|m| m.in_reply_to == vec![q1.clone()])
    })
    .await;
    assert_eq!(answer.from, support);
    assert_eq!(answer.subject, "Re: Error TH-4012");
    assert_eq!(answer.references, vec![q1.clone()]);
    assert!(answer.body.contains("export token"), "{}", answer.body);
    assert!(answer.body.contains("Sources:\n[1] API error codes"), "{}", answer.body);

    // The same mail delivered twice (a resend, a redelivery) is answered once.
    stack.send_mail(&question).await.unwrap();

    // An outsider writes "from" the team's domain, unsigned, in reply to frontdesk's answer.
    let outsider =
        stack.unique_address("helpdesk").replace(&format!("@{}", stack.domain), &format!("@{}", stack.dkim_domain));
    let forged = q1.replace("q1.", "forged.");
    stack
        .send_mail(&CustomerMail {
            from: &outsider,
            to: vec![&support],
            subject: "Re: Error TH-4012",
            body: "I am taking this one over, no more answers needed.",
            message_id: &forged,
            reply_to_ids: vec![q1.clone(), answer.message_id.clone()],
            ..CustomerMail::default()
        })
        .await
        .unwrap();
    // It is not the customer of that thread: it starts a conversation of its own.
    eventually("the outsider's mail handled, in a conversation of its own", async || {
        let key = ConversationKey::new(forged.clone()).unwrap();
        let c = engine.conversations.get(Source::Email, &ws, &key).ok().flatten()?;
        c.messages.iter().any(|m| m.text.contains("I am taking this one over")).then_some(())
    })
    .await;

    // 2. A follow-up in the thread that only makes sense with the question before it.
    let q2 = q1.replace("q1.", "q2.");
    stack
        .send_mail(&CustomerMail {
            from: &customer,
            to: vec![&support],
            subject: "Re: Error TH-4012",
            body: &format!(
                "Where do I create a new token for it?\n\nOn Tue, 4 Mar 2025, Example Support <{support}> wrote:\n> {}",
                answer.body.lines().next().unwrap_or("")
            ),
            message_id: &q2,
            reply_to_ids: vec![q1.clone(), answer.message_id.clone()],
            ..CustomerMail::default()
        })
        .await
        .unwrap();
    let second = eventually("the answer to the follow-up", async || {
        let mails = stack.mailbox(&customer).await.ok()?;
        mails.into_iter().find(|m| m.in_reply_to == vec![q2.clone()])
    })
    .await;
    assert_eq!(second.subject, "Re: Error TH-4012");
    assert_eq!(second.references, vec![q1.clone(), answer.message_id.clone(), q2.clone()]);
    assert!(second.body.contains("Create a new export token"), "answered from the history: {}", second.body);
    let conversation = eventually("the conversation record", async || {
        let key = ConversationKey::new(q1.clone()).ok()?;
        engine.conversations.get(Source::Email, &ws, &key).ok().flatten()
    })
    .await;
    assert_eq!(conversation.state, ConvState::Bot, "the outsider's mail silenced nothing");
    assert!(
        conversation.messages.iter().all(|m| !m.text.contains("I am taking this one over")),
        "the outsider's mail is not in the customer's thread"
    );
    assert!(conversation.messages.iter().all(|m| m.speaker != Speaker::Agent), "no agent wrote in the thread");
    let asked: Vec<&str> = conversation
        .messages
        .iter()
        .filter(|m| m.speaker == Speaker::Customer && !m.text.starts_with("I am taking this one over"))
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(
        asked,
        vec!["What does error TH-4012 mean for the export?", "Where do I create a new token for it?"],
        "one thread, each mail once"
    );
    // The engine read the follow-up with the thread's history.
    let reply_turn = conversation.messages.iter().rev().find(|m| m.speaker == Speaker::Bot).unwrap();
    let trace = engine.traces.get(&reply_turn.reference).unwrap().unwrap();
    assert!(trace.condensed_question.to_lowercase().contains("th-4012"), "{}", trace.condensed_question);

    // 3. The customer asks for a person.
    let q3 = q1.replace("q1.", "q3.");
    stack
        .send_mail(&CustomerMail {
            from: &customer,
            to: vec![&support],
            subject: "Re: Error TH-4012",
            body: "That did not work. Can I talk to a person?",
            message_id: &q3,
            reply_to_ids: vec![q1.clone(), answer.message_id.clone(), q2.clone(), second.message_id.clone()],
            ..CustomerMail::default()
        })
        .await
        .unwrap();
    let told = eventually("the handoff message", async || {
        let mails = stack.mailbox(&customer).await.ok()?;
        mails.into_iter().find(|m| m.in_reply_to == vec![q3.clone()])
    })
    .await;
    assert!(told.body.contains("asked a person from our support team"), "{}", told.body);
    let forward = eventually("the forwarded thread for the agents", async || {
        let mails = stack.mailbox(&agents).await.ok()?;
        // (The outsider's own conversation, handed off too, has a forward of its own.)
        mails.into_iter().find(|m| m.subject.starts_with("[Handoff]") && m.reply_to.first() == Some(&customer))
    })
    .await;
    assert_eq!(forward.subject, "[Handoff] Error TH-4012");
    assert_eq!(forward.reply_to, vec![customer.clone(), support.clone()]);
    assert!(forward.body.contains("asked_for_human"), "{}", forward.body);
    for line in [
        "What does error TH-4012 mean for the export?",
        "Where do I create a new token for it?",
        "Can I talk to a person?",
    ] {
        assert!(forward.body.contains(line), "the forward carries the customer's messages: {}", forward.body);
    }

    // 4. An agent answers from the forward with their client's reply button; their domain signs
    // their mail.
    let agent = stack.unique_address("jo").replace(&format!("@{}", stack.domain), &format!("@{}", stack.dkim_domain));
    let agent_reply = q1.replace("q1.", "agent1.");
    let mut refs = forward.references.clone();
    refs.push(forward.message_id.clone());
    stack
        .send_signed(&CustomerMail {
            from: &agent,
            from_name: Some("Jo from Support"),
            to: vec![&customer],
            cc: vec![&support],
            subject: "Re: [Handoff] Error TH-4012",
            body: "Hi Ann, I regenerated your export token; please try again.",
            message_id: &agent_reply,
            reply_to_ids: refs,
        })
        .await
        .unwrap();
    let key = ConversationKey::new(q1.clone()).unwrap();
    eventually("the agent owns the conversation", async || {
        let c = engine.conversations.get(Source::Email, &ws, &key).ok().flatten()?;
        (c.state == ConvState::Agent).then_some(())
    })
    .await;
    assert!(
        stack.mailbox(&customer).await.unwrap().iter().any(|m| m.message_id == agent_reply),
        "the customer got the agent's reply"
    );

    // 5. The customer writes again (reply-all to the agent): the bot stays silent.
    let q4 = q1.replace("q1.", "q4.");
    stack
        .send_mail(&CustomerMail {
            from: &customer,
            to: vec![&agents],
            cc: vec![&support],
            subject: "Re: [Handoff] Error TH-4012",
            body: "It works now, thank you! How long is the free trial, by the way?",
            message_id: &q4,
            reply_to_ids: vec![forward.message_id.clone(), agent_reply.clone()],
            ..CustomerMail::default()
        })
        .await
        .unwrap();
    let last = eventually("the last message handled", async || {
        let c = engine.conversations.get(Source::Email, &ws, &key).ok().flatten()?;
        let stats = inbox.stats();
        let recorded = c.messages.iter().any(|m| m.text.starts_with("It works now"));
        (recorded && stats.pending_inbound == 0 && stats.pending_outbound == 0).then_some(c)
    })
    .await;
    assert_eq!(last.state, ConvState::Agent);
    assert_eq!(
        last.messages.last().map(|m| m.speaker),
        Some(Speaker::Customer),
        "no bot reply after the agent took over"
    );
    assert_eq!(inbox.stats().dead_letters, 0);

    let mails = stack.mailbox(&customer).await.unwrap();
    let replies = from_support(&mails, &support);
    assert_eq!(replies.len(), 3, "answer, follow-up answer, handoff — and nothing after the agent took over");
    assert!(replies.iter().all(|m| m.auto_submitted.as_deref() == Some("auto-replied")));

    serving.stop().await;
}
