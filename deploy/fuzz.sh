#!/usr/bin/env bash
# Fuzzes what frontdesk reads from outside (the cargo-fuzz crate in tests/fuzz): builds every
# target, runs each for RUNS inputs (default 1,000,000) starting from its committed corpus, and
# prints per target the inputs run, the wall time and the result. A target that crashes stops
# there (the input is saved under $FUZZ_WORK/artifacts/) and the others still run; the script
# then exits 1. Installs cargo-fuzz when it is missing. CI does not run it.
#
#   deploy/fuzz.sh [RUNS] [TARGET...]
#
# Environment: FUZZ_TARGET_DIR (build directory), FUZZ_WORK (inputs found and crashes).
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-1000000}"
shift || true
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/cache/frontdesk/fuzz-target}"
work="${FUZZ_WORK:-/var/cache/frontdesk/fuzz-work}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
# Nightly when it is there; without a sanitizer the fuzz targets build on stable too.
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
fi

# No sanitizer (the code has no `unsafe`; we are after panics), release mode without debug
# assertions (as frontdesk is built), 16 codegen units to keep the build affordable.
echo "== building the fuzz targets into $CARGO_TARGET_DIR"
cargo "${toolchain[@]}" fuzz build --fuzz-dir tests/fuzz -O --sanitizer none --codegen-units 16

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list --fuzz-dir tests/fuzz)
fi
bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"

summary=()
failed=0
for target in "${targets[@]}"; do
    found="$work/corpus/$target"
    artifacts="$work/artifacts/$target/"
    log="$work/logs/$target.log"
    mkdir -p "$found" "$artifacts" "$(dirname "$log")"
    echo "== $target: $runs inputs"
    start=$(date +%s.%N)
    status=0
    # New inputs go to $found (first directory); the committed corpus is only read.
    "$bin_dir/$target" "$found" "tests/fuzz/corpus/$target" -runs="$runs" -timeout=30 \
        -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1 || status=$?
    end=$(date +%s.%N)
    executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    executed="${executed:-0}"
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    rate=$(awk -v n="$executed" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
    if [ "$status" -eq 0 ]; then
        result="ok"
    else
        failed=1
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        result="CRASH (exit $status) ${crash:-see $log}"
        grep -m 1 -A 3 "panicked at" "$log" || tail -n 20 "$log"
    fi
    line=$(printf '%-22s %12s execs %9s s %8s exec/s  %s' "$target" "$executed" "$seconds" "$rate" "$result")
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary ($runs inputs per target; logs in $work/logs)"
printf '%s\n' "${summary[@]}"
exit "$failed"
