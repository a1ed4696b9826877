#!/usr/bin/env bash
# The test suite, with the real peers the channel tests talk to: the official Python Slack
# client and Discord signature libraries, and a local Postfix + Dovecot mail stack. Installs
# and starts them first (idempotent; caches under /var/cache/frontdesk), then runs
# `cargo test --release` with their addresses in the environment. Extra arguments go to cargo.
#
# Tests that could not run because a peer or service was missing are listed at the end (see
# adapters/channel/src/skip.rs). With CI set, a missing peer fails the run: CI starts them all.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/frontdesk/target}"
export FRONTDESK_MODELS_DIR="${FRONTDESK_MODELS_DIR:-/var/cache/frontdesk/models}"
mkdir -p "$CARGO_TARGET_DIR" "$FRONTDESK_MODELS_DIR"
peers="$(deploy/peers/setup.sh)"
eval "$peers"
echo "== peers ready:"
echo "$peers" | sed 's/PASSWORD=.*/PASSWORD=(hidden)/; s/^export /   /'

export SKIPPED_TESTS_LOG="$CARGO_TARGET_DIR/skipped-tests.tsv"
: >"$SKIPPED_TESTS_LOG"
status=0
cargo test --release "$@" || status=$?

skips=$(wc -l <"$SKIPPED_TESTS_LOG")
peer_skips=$(grep -c '^peer' "$SKIPPED_TESTS_LOG" || true)
echo "== skipped tests: $skips (missing peer: $peer_skips, missing service: $((skips - peer_skips)))"
sort "$SKIPPED_TESTS_LOG" | awk -F'\t' '{ printf "   %-8s %s: %s\n", $1, $2, $3 }'
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
if [ -n "${CI:-}" ] && [ "$peer_skips" -gt 0 ]; then
    echo "error: $peer_skips test(s) skipped because a peer was missing; CI starts every peer, so this is a failure" >&2
    exit 1
fi
