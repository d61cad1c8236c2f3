#!/usr/bin/env bash
# App database figures (issue 12), in one run on one machine:
#   1. dispute latency: a row committed in the app's database -> the fake Telegram receives its
#      DISPUTE alert, with [disputes] every = 1s (goal: within every + 1 s), median and max of 20
#   2. the health report (`opswatch report db`) against a database with 1,000 tables: wall
#      time (goal <= 2 s) and the load it puts on that database (queries and their total time)
# Usage: bash bench/appdb.sh
#   needs psql and a PostgreSQL where this role may create databases: APPDB_PG_URL, else
#   OPSWATCH_TEST_PG_URL, else postgres://postgres:opswatch-test@127.0.0.1:5432/postgres.
# Knobs: APPDB_LAT_RUNS=20 APPDB_TABLES=1000 APPDB_REPORT_RUNS=5
# Raw numbers go to bench/out/appdb-<date>.txt; the table is printed at the end. Two scratch
# databases are created and dropped; every process started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

ADMIN=${APPDB_PG_URL:-${OPSWATCH_TEST_PG_URL:-postgres://postgres:opswatch-test@127.0.0.1:5432/postgres}}
LAT_RUNS=${APPDB_LAT_RUNS:-20}
TABLES=${APPDB_TABLES:-1000}
REPORT_RUNS=${APPDB_REPORT_RUNS:-5}
LAT_DB="opsw_bench_disputes_$$"
BIG_DB="opsw_bench_tables_$$"

drop_dbs() {
    psql "$ADMIN" -qX -c "DROP DATABASE IF EXISTS $LAT_DB WITH (FORCE)" \
        -c "DROP DATABASE IF EXISTS $BIG_DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap 'bench_cleanup; drop_dbs' EXIT
trap 'exit 130' INT TERM

for tool in python3 psql cargo awk; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
db_url() { python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path="/" + sys.argv[2]).geturl())' "$ADMIN" "$1"; }

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/appdb-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-appdb.XXXXXX)
declare -A R=()

log "building the release binary (may wait on cargo's lock)"
cargo build --release >&2
BIN="$ROOT/target/release/opswatch"
[[ -x $BIN ]] || die "$BIN was not built"
rec_machine "$BIN"
rec postgres_version "$(psql "$ADMIN" -qtAX -c 'SHOW server_version')"
rec knobs "LAT_RUNS=$LAT_RUNS TABLES=$TABLES REPORT_RUNS=$REPORT_RUNS"

# ------------------------------------------------------------- 1. dispute -> Telegram
log "1. dispute latency ($LAT_RUNS disputes, every = 1s)"
psql "$ADMIN" -qX -c "CREATE DATABASE $LAT_DB" >/dev/null
LAT_URL=$(db_url "$LAT_DB")
psql "$LAT_URL" -qX -c "CREATE TABLE disputes (id serial PRIMARY KEY, reason text)" >/dev/null
TG_PORT=$(free_port)
TG_LOG="$BENCH_TMP/telegram.log"
spawn "$BENCH_TMP/fake.out" python3 "$BENCH_DIR/fake_telegram.py" serve "$TG_PORT" "$TG_LOG"
wait_port "$TG_PORT" 10
mkdir -p "$BENCH_TMP/lat"
cat >"$BENCH_TMP/lat/opswatch.toml" <<TOML
[storage]
url = "sqlite://$BENCH_TMP/lat/o.db"
[telegram]
bot_token = "123456:BENCH"
chat_id = "1"
api_base = "http://127.0.0.1:$TG_PORT"
[system]
enabled = false
[pm2]
enabled = false
[database]
url = "$LAT_URL"
[disputes]
query = "SELECT id, reason FROM disputes WHERE id > \$1 ORDER BY id LIMIT 100"
every = "1s"
TOML
spawn "$BENCH_TMP/lat/opswatch.log" "$BIN" --config "$BENCH_TMP/lat/opswatch.toml" \
    --log-format json serve --listen 127.0.0.1:0
for _ in $(seq 100); do
    grep -q 'disputes: first run' "$BENCH_TMP/lat/opswatch.log" && break
    sleep 0.1
done
grep -q 'disputes: first run' "$BENCH_TMP/lat/opswatch.log" || die "opswatch did not take its first look"
rec_cmd dispute_ python3 "$BENCH_DIR/dispute_latency.py" "$LAT_URL" "$TG_LOG" "$LAT_RUNS"
stop_pid "$SPAWNED_PID"

# ------------------------------------------------------------- 2. report over 1,000 tables
log "2. health report against $TABLES tables ($REPORT_RUNS runs)"
psql "$ADMIN" -qX -c "CREATE DATABASE $BIG_DB" >/dev/null
BIG_URL=$(db_url "$BIG_DB")
psql "$BIG_URL" -qX >/dev/null <<SQL
DO \$\$
BEGIN
  FOR i IN 1..$TABLES LOOP
    EXECUTE format('CREATE TABLE t%s (id bigserial PRIMARY KEY, v int, note text)', i);
    EXECUTE format('CREATE INDEX t%s_v ON t%s (v)', i, i);
    EXECUTE format('INSERT INTO t%s (v, note) SELECT g, ''x'' FROM generate_series(1, 50) g', i);
  END LOOP;
END
\$\$;
ANALYZE;
SQL
mkdir -p "$BENCH_TMP/rep"
cat >"$BENCH_TMP/rep/opswatch.toml" <<TOML
[storage]
url = "sqlite://$BENCH_TMP/rep/o.db"
[system]
enabled = false
[pm2]
enabled = false
[database]
url = "$BIG_URL"
TOML
"$BIN" --config "$BENCH_TMP/rep/opswatch.toml" migrate >/dev/null
walls=()
for i in $(seq "$REPORT_RUNS"); do
    start=$(date +%s.%N)
    "$BIN" --config "$BENCH_TMP/rep/opswatch.toml" report db >"$BENCH_TMP/rep/report-$i.txt"
    end=$(date +%s.%N)
    walls+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", (e - s) * 1000 }')")
    rec "report_wall_ms_$i" "${walls[-1]}"
    load=$(grep -o 'Load on the database: [0-9]* queries, [0-9.]* ms' "$BENCH_TMP/rep/report-$i.txt")
    rec "report_queries_$i" "$(awk '{ print $5 }' <<<"$load")"
    rec "report_query_ms_$i" "$(awk '{ print $7 }' <<<"$load")"
done
raw_section "last report" "$BENCH_TMP/rep/report-$REPORT_RUNS.txt"
sorted=$(printf '%s\n' "${walls[@]}" | sort -n)
rec report_wall_median_ms "$(sed -n "$(((REPORT_RUNS + 1) / 2))p" <<<"$sorted")"
rec report_wall_max_ms "$(tail -1 <<<"$sorted")"
qms=$(for i in $(seq "$REPORT_RUNS"); do echo "${R[report_query_ms_$i]}"; done | sort -n)
rec report_query_ms_median "$(sed -n "$(((REPORT_RUNS + 1) / 2))p" <<<"$qms")"

# ------------------------------------------------------------- table
goal_ms=2000
printf '\n%-52s %12s %10s %s\n' "figure" "value" "goal" "verdict"
printf '%-52s %10s ms %7s ms %s\n' "dispute -> Telegram, median of ${R[dispute_runs_ok]}" \
    "${R[dispute_median_ms]:-n/a}" "$goal_ms" "$(verdict le "${R[dispute_median_ms]:-n/a}" "$goal_ms")"
printf '%-52s %10s ms %7s ms %s\n' "dispute -> Telegram, max" \
    "${R[dispute_max_ms]:-n/a}" "$goal_ms" "$(verdict le "${R[dispute_max_ms]:-n/a}" "$goal_ms")"
printf '%-52s %10s ms %7s ms %s\n' "report db, $TABLES tables: wall time, median of $REPORT_RUNS" \
    "${R[report_wall_median_ms]}" "$goal_ms" "$(verdict le "${R[report_wall_median_ms]}" "$goal_ms")"
printf '%-52s %10s ms %7s ms %s\n' "report db, $TABLES tables: wall time, max" \
    "${R[report_wall_max_ms]}" "$goal_ms" "$(verdict le "${R[report_wall_max_ms]}" "$goal_ms")"
printf '%-52s %13s\n' "  queries run against the app database" "${R[report_queries_1]}"
printf '%-52s %10s ms\n' "  their total time (median)" "${R[report_query_ms_median]}"
rec loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
log "raw figures: $RAW"
