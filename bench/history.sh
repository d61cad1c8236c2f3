#!/usr/bin/env bash
# History figures: one year of a default host's history written straight into a fresh store
# (examples/history_year.rs replays it hour by hour through the real roll-up and retention
# code), then store size, every chart query per range, the API routes, insert cost per sample,
# the roll-up and daily retention jobs, and the query plans; on SQLite and on PostgreSQL.
# Usage: bash bench/history.sh [DAYS]          (default 365)
# PostgreSQL: OPSWATCH_BENCH_PG_URL (an administrative URL, default the local test server
# postgres://postgres:opswatch@127.0.0.1:5432/postgres); a database opswatch_bench_history is
# created (dropped first if it exists) and dropped at the end. Set it to "" to skip PostgreSQL.
# HISTORY_BACKENDS="sqlite postgres" (default) picks the backends.
# HISTORY_BIN: a history_year binary to run instead of building one (a before/after comparison
# runs a copy built from the older tree).
# Output: bench/out/history-<backend>-<date>.txt
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DAYS=${1:-365}
PG_ADMIN=${OPSWATCH_BENCH_PG_URL-postgres://postgres:opswatch@127.0.0.1:5432/postgres}
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p bench/out
TMP=$(mktemp -d /tmp/opswatch-history.XXXXXX)
PG_DB=opswatch_bench_history
cleanup() {
    rm -rf "$TMP"
    if [ -n "$PG_ADMIN" ]; then
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

if [ -n "${HISTORY_BIN:-}" ]; then
    BIN=$HISTORY_BIN
else
    cargo build --release --features bench --example history_year
    BIN=target/release/examples/history_year
fi

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
BACKENDS=${HISTORY_BACKENDS:-sqlite postgres}
if [[ " $BACKENDS " == *" sqlite "* ]]; then
    OUT="bench/out/history-sqlite-$STAMP.txt"
    "$BIN" "sqlite://$TMP/opswatch.db" "$DAYS" | tee "$OUT"
fi

if [ -n "$PG_ADMIN" ] && [[ " $BACKENDS " == *" postgres "* ]]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
    psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB" >/dev/null
    PG_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path="/" + sys.argv[2]).geturl())' "$PG_ADMIN" "$PG_DB")
    OUT="bench/out/history-postgres-$STAMP.txt"
    "$BIN" "$PG_URL" "$DAYS" | tee "$OUT"
fi
