#!/usr/bin/env bash
# Runs the crash-safety and load measurements of `frontdesk serve` (benches/serve_load.rs)
# against the release binary:
#
#   deploy/load.sh crash    [--events 1000] [--conversations 50] [--kills 10] [--rate 20]
#   deploy/load.sh load     [--secs 300] [--rate 500]
#   deploy/load.sh fairness [--secs 120] [--rate 1] [--quota 120]
#
# The binary is built with `cargo build --release` and copied aside first, so the bench build
# (which links the library with its test features) cannot replace the binary being measured.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
export FRONTDESK_MODELS_DIR="${FRONTDESK_MODELS_DIR:-$HOME/.cache/frontdesk/models}"
cargo build --release --bin frontdesk
mkdir -p "$target/serve_load"
cp "$target/release/frontdesk" "$target/serve_load/frontdesk"
exec cargo bench --bench serve_load -- "$@" --binary "$target/serve_load/frontdesk"
