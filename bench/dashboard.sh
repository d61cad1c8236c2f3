#!/usr/bin/env bash
# Dashboard figures over a year of history: server time per page (p50/p95/max of 30 runs after
# 3 warm-up runs, in-process through the real router), bytes per page uncompressed / gzip /
# brotli, and RSS growth after every page was served 1,000 times; on SQLite and PostgreSQL.
# The year is written by examples/history_year.rs (HISTORY_GENERATE_ONLY=1), the pages are
# measured by examples/dashboard_pages.rs.
# Usage: bash bench/dashboard.sh [DAYS]          (default 365)
# PostgreSQL: OPSWATCH_BENCH_PG_URL (administrative URL, default the local test server); a
# database opswatch_bench_dashboard is created and dropped. DASHBOARD_BACKENDS="sqlite postgres".
# Output: bench/out/dashboard-<backend>-<date>.txt
# The pages run with MALLOC_ARENA_MAX=1, as deploy/opswatch.service runs the daemon (set
# MALLOC_ARENA_MAX= to an empty value for glibc's default; BENCHMARKS.md says why).
set -euo pipefail
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX-1}"
[ -n "$MALLOC_ARENA_MAX" ] || unset MALLOC_ARENA_MAX

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DAYS=${1:-365}
PG_ADMIN=${OPSWATCH_BENCH_PG_URL-postgres://postgres:opswatch-test@127.0.0.1:5432/postgres}
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p bench/out
TMP=$(mktemp -d /tmp/opswatch-dashboard.XXXXXX)
PG_DB=opswatch_bench_dashboard
cleanup() {
    rm -rf "$TMP"
    if [ -n "$PG_ADMIN" ]; then
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

cargo build --release --features bench --example history_year --example dashboard_pages
GEN=target/release/examples/history_year
PAGES=target/release/examples/dashboard_pages

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX-default}"
BACKENDS=${DASHBOARD_BACKENDS:-sqlite postgres}
if [[ " $BACKENDS " == *" sqlite "* ]]; then
    URL="sqlite://$TMP/opswatch.db"
    OUT="bench/out/dashboard-sqlite-$STAMP.txt"
    HISTORY_GENERATE_ONLY=1 "$GEN" "$URL" "$DAYS" | tail -1 | tee "$OUT"
    "$PAGES" "$URL" | tee -a "$OUT"
fi
if [ -n "$PG_ADMIN" ] && [[ " $BACKENDS " == *" postgres "* ]]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
    psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB" >/dev/null
    URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path="/" + sys.argv[2]).geturl())' "$PG_ADMIN" "$PG_DB")
    OUT="bench/out/dashboard-postgres-$STAMP.txt"
    HISTORY_GENERATE_ONLY=1 "$GEN" "$URL" "$DAYS" | tail -1 | tee "$OUT"
    "$PAGES" "$URL" | tee -a "$OUT"
fi
