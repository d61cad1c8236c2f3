#!/usr/bin/env bash
# API list routes over a year of history (issue 15: p95 <= 20 ms): a year of a default host
# written into a fresh SQLite store by examples/history_year.rs (samples, check results and
# their roll-ups, retention applied), plus a year of alerts, disputes and reports
# (bench/api_lists_seed.py); then the release binary serves that store and bench/api_lists.py
# requests each list route N times (keep-alive, loopback) and prints p50/p95/max per route.
# Usage: bash bench/api_lists.sh [N]          (default 50)
# API_LISTS_NO_HISTORY=1 skips the generator (and its release build with the bench feature):
# only the seeded year of alerts, disputes and reports, and a week of raw check results.
# Output: bench/out/api_lists-<date>.txt
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh
BENCH_TMP=$(mktemp -d /tmp/opswatch-api-lists.XXXXXX)
trap bench_cleanup EXIT

cargo build --release --locked --bin opswatch
BIN=target/release/opswatch
DB="$BENCH_TMP/data/opswatch.db"
mkdir -p "$BENCH_TMP/data"
if [ -z "${API_LISTS_NO_HISTORY:-}" ]; then
    cargo build --release --locked --features bench --example history_year
    log "writing a year of history (a few minutes)"
    HISTORY_GENERATE_ONLY=1 target/release/examples/history_year "sqlite://$DB" 365 >&2
else
    printf '[storage]\nurl = "sqlite://%s"\n' "$DB" >"$BENCH_TMP/migrate.toml"
    "$BIN" --config "$BENCH_TMP/migrate.toml" migrate >&2
fi
# The generator's year ends at the last 5-minute boundary before now.
END_MS=$(python3 -c 'import time; print(int(time.time() * 1000) // 300000 * 300000)')
python3 bench/api_lists_seed.py "$DB" "$END_MS" >&2

PORT=$(free_port)
{
    printf '[storage]\nurl = "sqlite://%s"\n' "$DB"
    for i in 0 1 2 3 4; do
        printf '[[http]]\nname = "site-%s"\nurl = "http://127.0.0.1:%s/health"\nevery = "5m"\n' "$i" "$PORT"
    done
} >"$BENCH_TMP/opswatch.toml"
spawn "$BENCH_TMP/opswatch.log" "$BIN" --config "$BENCH_TMP/opswatch.toml" serve --listen "127.0.0.1:$PORT"
wait_http "http://127.0.0.1:$PORT/health" 60
sleep 2
mkdir -p bench/out
OUT="bench/out/api_lists-$(date +%Y%m%d-%H%M%S).txt"
{
    echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), tree $(git rev-parse --short HEAD), SQLite${API_LISTS_NO_HISTORY:+, no generated history (API_LISTS_NO_HISTORY)}"
    python3 bench/api_lists.py "http://127.0.0.1:$PORT" "${1:-50}"
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"
