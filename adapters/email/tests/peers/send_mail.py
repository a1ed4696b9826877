"""A customer's mail client, for the email channel's tests: builds a mail with Python's own
email package, optionally signs it with dkimpy, and sends it with smtplib to the local stack.

Usage (every option is --name value):
  send_mail.py --from a@x --to support@x --subject S --body B --message-id ID
               [--in-reply-to ID] [--references "ID ID"] [--header "Name: value"]...
               [--attachment-bytes N] [--html] [--dkim-key PEM --dkim-domain D --dkim-selector S]
               [--tamper] [--raw-file PATH]
Prints the Message-ID it sent (without angle brackets).
"""

import argparse
import smtplib
import sys
from email.message import EmailMessage
from email.utils import formatdate


def build(args):
    msg = EmailMessage()
    msg["From"] = args.sender
    msg["To"] = ", ".join(args.to)
    if args.cc:
        msg["Cc"] = ", ".join(args.cc)
    msg["Subject"] = args.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{args.message_id}>"
    if args.in_reply_to:
        msg["In-Reply-To"] = f"<{args.in_reply_to}>"
    if args.references:
        msg["References"] = " ".join(f"<{r}>" for r in args.references.split())
    for header in args.header:
        name, _, value = header.partition(":")
        msg[name.strip()] = value.strip()
    if args.html:
        msg.set_content(args.body)
        msg.add_alternative(f"<html><body><p>{args.body}</p></body></html>", subtype="html")
    else:
        msg.set_content(args.body)
    if args.attachment_bytes:
        data = bytes((i * 7) % 251 for i in range(args.attachment_bytes))
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="logs.bin")
    return msg.as_bytes()


def sign(raw, args):
    import dkim

    with open(args.dkim_key, "rb") as f:
        key = f.read()
    signature = dkim.sign(
        raw,
        args.dkim_selector.encode(),
        args.dkim_domain.encode(),
        key,
        include_headers=[b"From", b"To", b"Subject", b"Date", b"Message-ID"],
    )
    return signature + raw


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--cc", action="append", default=[])
    p.add_argument("--subject", default="")
    p.add_argument("--body", default="")
    p.add_argument("--message-id", required=True)
    p.add_argument("--in-reply-to")
    p.add_argument("--references")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--attachment-bytes", type=int, default=0)
    p.add_argument("--html", action="store_true")
    p.add_argument("--dkim-key")
    p.add_argument("--dkim-domain")
    p.add_argument("--dkim-selector")
    p.add_argument("--tamper", action="store_true", help="change the body after signing")
    p.add_argument("--raw-file", help="send this file as the message, unchanged")
    p.add_argument("--smtp-host", default="127.0.0.1")
    p.add_argument("--smtp-port", type=int, default=10025)
    args = p.parse_args()

    if args.raw_file:
        with open(args.raw_file, "rb") as f:
            raw = f.read()
    else:
        raw = build(args)
        if args.dkim_key:
            raw = sign(raw, args)
        if args.tamper:
            raw = raw.replace(args.body.encode(), (args.body + " (changed on the way)").encode(), 1)
    envelope_from = "" if any(h.lower().startswith("return-path: <>") for h in args.header) else args.sender
    with smtplib.SMTP(args.smtp_host, args.smtp_port, timeout=10) as smtp:
        smtp.sendmail(envelope_from, args.to + args.cc, raw)
    print(args.message_id)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the test prints this on failure
        print(f"send_mail.py: {e}", file=sys.stderr)
        sys.exit(1)
