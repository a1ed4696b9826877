#!/usr/bin/env bash
# The test suite, with the real peers the channel tests talk to: the official Python Slack
# client and Discord signature libraries, and a local Postfix + Dovecot mail stack. Installs
# and starts them first (idempotent; caches under /var/cache/frontdesk), then runs
# `cargo test --release` with their addresses in the environment. Extra arguments go to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/frontdesk/target}"
export FRONTDESK_MODELS_DIR="${FRONTDESK_MODELS_DIR:-/var/cache/frontdesk/models}"
mkdir -p "$CARGO_TARGET_DIR" "$FRONTDESK_MODELS_DIR"
peers="$(deploy/peers/setup.sh)"
eval "$peers"
echo "== peers ready:"
echo "$peers" | sed 's/PASSWORD=.*/PASSWORD=(hidden)/; s/^export /   /'
cargo test --release "$@"
