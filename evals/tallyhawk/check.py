#!/usr/bin/env python3
"""Validate the Tallyhawk evaluation dataset (docs/, tickets.jsonl, tune.jsonl, heldout.jsonl).

Usage: python3 evals/tallyhawk/check.py [DATASET_DIR]

Exits with status 1 and lists every problem if the dataset is invalid; otherwise
prints the counts. Standard library only.
"""

import datetime
import json
import re
import sys
from collections import Counter
from pathlib import Path

PRODUCTS = {"billing", "accounts", "api", "integrations", "invoicing", "mobile", "security"}
CATEGORIES = {"plain", "exact_term", "follow_up", "ticket_only", "unanswerable", "injection", "human_request"}
MINIMUMS = {
    "plain": 30,
    "exact_term": 12,
    "follow_up": 15,
    "ticket_only": 8,
    "unanswerable": 22,
    "injection": 6,
    "human_request": 5,
}
MIN_DOCS, MIN_RESOLVED_TICKETS, MIN_CASES = 34, 22, 90
DOC_WORDS = (200, 900)
# The cases, split once by category (every other case by a hash of its id): tuning may look at
# tune.jsonl; heldout.jsonl is only ever scored.
SPLITS = ("tune.jsonl", "heldout.jsonl")
URL_RE = re.compile(r"^https://help\.tallyhawk\.example/articles/[a-z0-9]+(?:-[a-z0-9]+)*$")
DOC_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
TICKET_ID_RE = re.compile(r"^T-\d{5}$")
CASE_ID_RE = re.compile(r"^th-\d{3,}$")
ERROR_CODE_RE = re.compile(r"TH-\d{4}")

errors = []


def err(msg):
    errors.append(msg)


def is_date(value):
    if not isinstance(value, str):
        return False
    try:
        datetime.date.fromisoformat(value)
        return len(value) == 10
    except ValueError:
        return False


def parse_front_matter(text):
    """Return (fields, body) or (None, text) when the front matter is missing."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None, text
    fields = {}
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return fields, "\n".join(lines[i + 1:])
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            return None, text
        value = value.split(" #", 1)[0].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.strip()] = value
    return None, text


def check_docs(root):
    docs = {}
    urls = {}
    for path in sorted((root / "docs").glob("*.md")):
        doc_id = path.stem
        where = f"docs/{path.name}"
        if not DOC_ID_RE.match(doc_id):
            err(f"{where}: doc id must be lowercase-with-dashes")
        text = path.read_text(encoding="utf-8")
        fields, body = parse_front_matter(text)
        if fields is None:
            err(f"{where}: missing or malformed front matter")
            continue
        for key in ("title", "url", "product", "updated_at"):
            if not fields.get(key):
                err(f"{where}: front matter lacks '{key}'")
        if fields.get("url") and not URL_RE.match(fields["url"]):
            err(f"{where}: url does not follow https://help.tallyhawk.example/articles/<slug>")
        if fields.get("url") in urls:
            err(f"{where}: url also used by {urls[fields['url']]}")
        urls[fields.get("url")] = where
        if fields.get("product") and fields["product"] not in PRODUCTS:
            err(f"{where}: product '{fields['product']}' not one of {sorted(PRODUCTS)}")
        if fields.get("updated_at") and not is_date(fields["updated_at"]):
            err(f"{where}: updated_at must be YYYY-MM-DD")
        if not re.search(r"^## \S", body, re.M):
            err(f"{where}: no '##' headings")
        words = len(body.split())
        if not DOC_WORDS[0] <= words <= DOC_WORDS[1]:
            err(f"{where}: {words} words, expected {DOC_WORDS[0]}-{DOC_WORDS[1]}")
        docs[doc_id] = {"text": text, "product": fields.get("product")}
    # links between articles must point at an existing article
    for doc_id, doc in docs.items():
        for link in re.findall(r"https://help\.tallyhawk\.example/articles/[a-z0-9-]+", doc["text"]):
            if link not in urls:
                err(f"docs/{doc_id}.md: link to unknown article {link}")
    return docs


def read_jsonl(path):
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            err(f"{path.name}:{n}: invalid JSON ({e})")
    return rows


def check_tickets(root):
    tickets = {}
    for n, t in read_jsonl(root / "tickets.jsonl"):
        where = f"tickets.jsonl:{n}"
        for key in ("id", "subject", "customer_message", "agent_answer", "tags", "resolved_at", "product", "status"):
            if key not in t:
                err(f"{where}: missing '{key}'")
        tid = t.get("id")
        if not isinstance(tid, str) or not TICKET_ID_RE.match(tid):
            err(f"{where}: bad ticket id {tid!r}")
            continue
        if tid in tickets:
            err(f"{where}: duplicate ticket id {tid}")
        status = t.get("status")
        if status not in ("resolved", "open"):
            err(f"{where}: status must be 'resolved' or 'open'")
        if status == "resolved" and not is_date(t.get("resolved_at")):
            err(f"{where}: resolved ticket needs resolved_at YYYY-MM-DD")
        if status == "open" and t.get("resolved_at") is not None:
            err(f"{where}: open ticket should have resolved_at null")
        if t.get("product") not in PRODUCTS:
            err(f"{where}: product {t.get('product')!r} not one of {sorted(PRODUCTS)}")
        if not isinstance(t.get("tags"), list) or not all(isinstance(x, str) for x in t.get("tags", [])):
            err(f"{where}: tags must be a list of strings")
        for key in ("subject", "customer_message", "agent_answer"):
            if not isinstance(t.get(key), str) or not t.get(key, "").strip():
                err(f"{where}: '{key}' must be a non-empty string")
        tickets[tid] = t
    return tickets


def check_cases(root, docs, tickets):
    resolved = {tid for tid, t in tickets.items() if t.get("status") == "resolved"}
    open_ids = {tid for tid, t in tickets.items() if t.get("status") == "open"}
    error_doc_text = "".join(d["text"] for i, d in docs.items() if i.startswith("api-error-codes"))
    seen = set()
    cases = []
    numbered = [(f"{split}:{n}", c) for split in SPLITS for n, c in read_jsonl(root / split)]
    for n, c in numbered:
        where = n
        for key in ("id", "question", "reference_answer", "source_doc_ids", "answerable", "expected_behavior", "category"):
            if key not in c:
                err(f"{where}: missing '{key}'")
        cid = c.get("id")
        where = f"{n} ({cid})"
        if not isinstance(cid, str) or not CASE_ID_RE.match(cid):
            err(f"{where}: bad case id")
        if cid in seen:
            err(f"{where}: duplicate case id")
        seen.add(cid)
        cat = c.get("category")
        if cat not in CATEGORIES:
            err(f"{where}: unknown category {cat!r}")
        if c.get("expected_behavior") not in ("answer", "escalate"):
            err(f"{where}: expected_behavior must be 'answer' or 'escalate'")
        if not isinstance(c.get("answerable"), bool):
            err(f"{where}: answerable must be true or false")
        elif c["answerable"] != (c.get("expected_behavior") == "answer"):
            err(f"{where}: answerable must equal (expected_behavior == 'answer')")
        for key in ("question", "reference_answer"):
            if not isinstance(c.get(key), str) or not c.get(key, "").strip():
                err(f"{where}: '{key}' must be a non-empty string")
        srcs = c.get("source_doc_ids")
        if not isinstance(srcs, list):
            err(f"{where}: source_doc_ids must be a list")
            srcs = []
        for s in srcs:
            if s in open_ids:
                err(f"{where}: cites open ticket {s}; open tickets are not ingested")
            elif s not in docs and s not in resolved:
                err(f"{where}: unknown source {s!r}")
        if cat in ("unanswerable", "injection", "human_request"):
            if c.get("answerable") is not False or c.get("expected_behavior") != "escalate":
                err(f"{where}: {cat} cases must be answerable=false, expected_behavior=escalate")
        elif cat in CATEGORIES:
            if c.get("answerable") is not True or not srcs:
                err(f"{where}: {cat} cases must be answerable with at least one source")
        if cat in ("unanswerable", "injection") and srcs:
            err(f"{where}: {cat} cases must have source_doc_ids []")
        if cat == "ticket_only" and any(s in docs for s in srcs):
            err(f"{where}: ticket_only cases must cite tickets only")
        history = c.get("history", [])
        if not isinstance(history, list) or any(
            not isinstance(h, dict) or h.get("role") not in ("user", "agent") or not isinstance(h.get("text"), str)
            for h in history
        ):
            err(f"{where}: history must be a list of {{role: user|agent, text}}")
        elif cat == "follow_up" and not 1 <= len(history) <= 4:
            err(f"{where}: follow_up cases need 1-4 earlier turns")
        if cat == "exact_term" and c.get("answerable"):
            for code in ERROR_CODE_RE.findall(c.get("question", "")):
                if code not in error_doc_text:
                    err(f"{where}: {code} is not in the error reference")
        cases.append(c)
    return cases


def main():
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    docs = check_docs(root)
    tickets = check_tickets(root)
    cases = check_cases(root, docs, tickets)

    resolved = sum(1 for t in tickets.values() if t.get("status") == "resolved")
    open_count = len(tickets) - resolved
    counts = Counter(c.get("category") for c in cases)
    if len(docs) < MIN_DOCS:
        err(f"only {len(docs)} docs, need {MIN_DOCS}")
    if resolved < MIN_RESOLVED_TICKETS:
        err(f"only {resolved} resolved tickets, need {MIN_RESOLVED_TICKETS}")
    if len(cases) < MIN_CASES:
        err(f"only {len(cases)} cases, need {MIN_CASES}")
    for cat, minimum in MINIMUMS.items():
        if counts[cat] < minimum:
            err(f"only {counts[cat]} '{cat}' cases, need {minimum}")

    by_product = Counter(d["product"] for d in docs.values())
    print(f"docs: {len(docs)} ({', '.join(f'{p} {n}' for p, n in sorted(by_product.items()))})")
    print(f"tickets: {len(tickets)} ({resolved} resolved, {open_count} open)")
    print(f"cases: {len(cases)}")
    for cat in MINIMUMS:
        print(f"  {cat:<14} {counts[cat]:>3}  (min {MINIMUMS[cat]})")
    if errors:
        print(f"\n{len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
