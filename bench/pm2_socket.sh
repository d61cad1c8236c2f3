#!/usr/bin/env bash
# PM2 over its sockets (issue 17), in one run on one machine:
#   1. one PM2 poll with 20 apps over rpc.sock: CPU and wall per poll (the ignored `poll_cost`
#      test: 100 polls on one thread, CPU from its schedstat), and `pm2 jlist` alone (what
#      each poll cost before) for reference
#   2. opswatch on defaults + `[pm2] home` (10 idle apps) + 2 HTTP checks: CPU of the whole
#      process tree (reaped children included) over a window, beside monit running its
#      20-check workload of bench/checks.sh figure 1 at the same time
#   3. time from a PM2 app's crash to the crash loop's CRITICAL (created_ms of the alert),
#      median of N runs: each run starts an app that exits 300 ms after each start, logging
#      the time of each exit; the CRITICAL needs > 5 restarts, so the deciding crash is the
#      6th exit (the script checks that the alert came after it and before the 7th)
# Usage: bash bench/pm2_socket.sh   (pm2 and node on PATH; as root if monit is missing)
# Knobs: SOCK_WARMUP_S=20 SOCK_WINDOW_S=180 SOCK_CRASH_RUNS=10 SOCK_FIGURES="1 2 3"
# A temporary PM2_HOME under /tmp holds the apps; `pm2 kill` for it runs on exit.
# Raw numbers go to bench/out/pm2-socket-<date>.txt; the table is printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

WARMUP_S=${SOCK_WARMUP_S:-20}
WINDOW_S=${SOCK_WINDOW_S:-180}
CRASH_RUNS=${SOCK_CRASH_RUNS:-10}
FIGURES=${SOCK_FIGURES:-1 2 3}
want() { [[ " $FIGURES " == *" $1 "* ]]; }
MONIT_N=20
MONIT_EVERY_S=30

PM2H=""
pm2_cleanup() {
    if [[ -n $PM2H && -f $PM2H/pm2.pid ]]; then
        PM2_HOME="$PM2H" timeout 30 pm2 kill >/dev/null 2>&1 || true
    fi
    bench_cleanup
}
trap pm2_cleanup EXIT
trap 'exit 130' INT TERM

for tool in python3 curl cargo awk pm2 node; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
ensure_tools time:time
want 2 && ensure_tools monit:monit

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/pm2-socket-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-pm2sock.XXXXXX)
declare -A R=()

log "building the release binary (may wait on cargo's lock)"
cargo build --release >&2
BIN="$ROOT/target/release/opswatch"
rec_machine "$BIN"
rec knobs "SOCK_WARMUP_S=$WARMUP_S SOCK_WINDOW_S=$WINDOW_S SOCK_CRASH_RUNS=$CRASH_RUNS FIGURES=$FIGURES"

PM2H="$BENCH_TMP/pm2home"
APPS_DIR="$BENCH_TMP/apps"
mkdir -p "$PM2H" "$APPS_DIR"
echo 'setInterval(() => {}, 1000);' >"$APPS_DIR/idle.js"
cat >"$APPS_DIR/crash.js" <<'EOF'
// Exits 300 ms after each start, appending the time of the exit (ms) to $CRASH_LOG.
setTimeout(() => {
    require("fs").appendFileSync(process.env.CRASH_LOG, Date.now() + "\n");
    process.exit(1);
}, 300);
EOF
p2() { PM2_HOME="$PM2H" pm2 "$@" >>"$BENCH_TMP/pm2.out" 2>&1; }
online_apps() {
    PM2_HOME="$PM2H" pm2 jlist 2>/dev/null | python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.startswith("[")]
apps = json.loads(lines[-1]) if lines else []
print(sum(1 for a in apps if a.get("pm2_env", {}).get("status") == "online"))' || echo 0
}
start_idle_apps() { # start_idle_apps FROM TO
    local i
    for i in $(seq -w "$1" "$2"); do
        p2 start "$APPS_DIR/idle.js" --name "idle-$i" || die "pm2 start failed: $(tail -5 "$BENCH_TMP/pm2.out")"
    done
}

# ---------------------------------------------------------------- 1. one poll, 20 apps
if want 1; then
    log "figure 1: 20 idle PM2 apps"
    start_idle_apps 1 20
    sleep 5
    rec fig1_apps_online "$(online_apps)"
    log "figure 1: cargo test --release --lib poll_cost -- --ignored --nocapture"
    OPSWATCH_BENCH_PM2_HOME="$PM2H" cargo test --release --lib poll_cost -- --ignored --nocapture \
        >"$BENCH_TMP/poll_cost.txt" 2>&1 || die "poll_cost failed: $(tail -20 "$BENCH_TMP/poll_cost.txt")"
    raw_section "figure 1: poll_cost output" "$BENCH_TMP/poll_cost.txt"
    # "100 polls, 20 apps: 1234 µs wall, 567 µs CPU per poll, worst 2345 µs wall"
    line=$(grep -m1 -E '^[0-9]+ polls, [0-9]+ apps:' "$BENCH_TMP/poll_cost.txt" || true)
    [[ -n $line ]] || die "no result line in the poll_cost output"
    rec fig1_line "$line"
    rec fig1_apps "$(awk '{ print $3 }' <<<"$line")"
    rec fig1_wall_ms "$(sed -E 's/.*: ([0-9.]+) µs wall.*/\1/' <<<"$line" | awk '{ printf "%.2f", $1 / 1000 }')"
    rec fig1_cpu_ms "$(sed -E 's/.*wall, ([0-9.]+) µs CPU.*/\1/' <<<"$line" | awk '{ printf "%.2f", $1 / 1000 }')"
    rec fig1_worst_wall_ms "$(sed -E 's/.*worst ([0-9.]+) µs.*/\1/' <<<"$line" | awk '{ printf "%.2f", $1 / 1000 }')"
    log "figure 1: pm2 jlist alone, 5 runs (the poll before)"
    : >"$BENCH_TMP/jlist-times.txt"
    for _ in 1 2 3 4 5; do
        PM2_HOME="$PM2H" /usr/bin/time -a -o "$BENCH_TMP/jlist-times.txt" -f '%e %U %S' pm2 jlist >/dev/null 2>&1
    done
    rec_cmd fig1_jlist_ python3 - "$BENCH_TMP/jlist-times.txt" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print(f"wall_median_ms={statistics.median(r[0] * 1000 for r in rows):.0f}")
print(f"cpu_median_ms={statistics.median((r[1] + r[2]) * 1000 for r in rows):.0f}")
EOF
    # Figure 2 watches 10 apps.
    for i in $(seq 11 20); do p2 delete "idle-$i"; done
else
    start_idle_apps 1 10
fi
rec pm2_version "$(PM2_HOME="$PM2H" pm2 --version 2>/dev/null | tail -1)"
rec node_version "$(node --version)"

# ---------------------------------------------------------------- opswatch on defaults
TARGET_PORTS="$(free_port),$(free_port)"
T_OW_PORT=${TARGET_PORTS%%,*}
T_MONIT_PORT=${TARGET_PORTS##*,}
spawn "$BENCH_TMP/target.out" python3 "$ROOT/bench/http_target.py" serve "$TARGET_PORTS"
wait_port "$T_OW_PORT" 5 || die "the HTTP target did not start"
OW_DIR="$BENCH_TMP/opswatch"
OW_PORT=$(free_port)
mkdir -p "$OW_DIR"
cat >"$OW_DIR/opswatch.toml" <<EOF
[server]
listen = "127.0.0.1:$OW_PORT"

[storage]
url = "sqlite://$OW_DIR/data/opswatch.db"

[pm2]
home = "$PM2H"

[[http]]
name = "api"
url = "http://127.0.0.1:$T_OW_PORT/health"

[[http]]
name = "frontend"
url = "http://127.0.0.1:$T_OW_PORT/"
EOF
raw_section "opswatch config (everything else default)" "$OW_DIR/opswatch.toml"
start_opswatch opswatch "$OW_DIR" "$OW_PORT"
OW_PID=$SPAWNED_PID

# ---------------------------------------------------------------- 2. CPU on defaults
if want 2; then
    MONIT_DIR="$BENCH_TMP/monit"
    MONIT_PORT=$(free_port)
    mkdir -p "$MONIT_DIR"
    {
        cat <<EOF
set daemon $MONIT_EVERY_S
set logfile $MONIT_DIR/monit.log
set pidfile $MONIT_DIR/monit.pid
set idfile $MONIT_DIR/monit.id
set statefile $MONIT_DIR/monit.state
set httpd port $MONIT_PORT and use address 127.0.0.1
    allow 127.0.0.1

check system bench-host
    if loadavg (1min) > 8 then alert
    if memory usage > 90% then alert
    if swap usage > 20% then alert
    if cpu usage > 95% for 5 cycles then alert

check filesystem rootfs with path /
    if space usage > 80% then alert
    if inode usage > 80% then alert
EOF
        for i in $(seq -w 1 "$MONIT_N"); do
            printf '\ncheck host t%s with address 127.0.0.1\n    if failed port %s protocol http request /health then alert\n' "$i" "$T_MONIT_PORT"
        done
    } >"$MONIT_DIR/monitrc"
    chmod 600 "$MONIT_DIR/monitrc"
    monit -t -c "$MONIT_DIR/monitrc" >&2 || die "monit rejects its config"
    spawn "$BENCH_TMP/monit.out" monit -I -c "$MONIT_DIR/monitrc"
    MONIT_PID=$SPAWNED_PID
    wait_http "http://127.0.0.1:$MONIT_PORT/_ping" 15 || die "monit never answered on /_ping"
    rec monit_version "$(monit -V | head -1)"
    log "figure 2: opswatch (10 PM2 apps, 2 HTTP checks, defaults) beside monit ($MONIT_N checks); warm-up ${WARMUP_S}s, window ${WINDOW_S}s"
    sleep "$WARMUP_S"
    rec fig2_apps_online "$(online_apps)"
    window fig2_ "$WINDOW_S" "$OW_PID:opswatch" "$MONIT_PID:monit"
    for who in opswatch monit; do
        rec "fig2_${who}_tree_cpu_s_per_min" "$(awk -v c="${R[fig2_${who}_total_cpu_s]}" -v w="${R[fig2_${who}_wall_s]}" 'BEGIN { printf "%.4f", c / w * 60 }')"
    done
    curl -fsS "http://127.0.0.1:$OW_PORT/api/v1/processes" >"$BENCH_TMP/fig2-processes.json"
    rec_cmd fig2_reading_ python3 - "$BENCH_TMP/fig2-processes.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["pm2"]["reading"] or {}
items = r.get("items") or []
print(f"apps={len(items)}")
print(f"online={sum(1 for a in items if a.get('status') == 'online')}")
print(f"error={r.get('error') or ''}")
EOF
    rec fig2_loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"
    rec fig2_rustc_procs "$(pgrep -c -x rustc || true)"
    stop_pid "$MONIT_PID"
    raw_section "figure 2: monitrc" "$MONIT_DIR/monitrc"
fi

# ---------------------------------------------------------------- 3. crash -> CRITICAL
if want 3; then
    log "figure 3: crash to crash-loop CRITICAL, $CRASH_RUNS runs"
    : >"$BENCH_TMP/fig3.txt"
    for i in $(seq -w 1 "$CRASH_RUNS"); do
        name="crash-$i"
        crash_log="$BENCH_TMP/$name.exits"
        : >"$crash_log"
        CRASH_LOG="$crash_log" p2 start "$APPS_DIR/crash.js" --name "$name" || die "pm2 start $name failed"
        created=""
        for _ in $(seq 300); do
            created=$(curl -fsS "http://127.0.0.1:$OW_PORT/api/v1/alerts?since=10m" | python3 -c '
import json, sys
title = sys.argv[1]
hits = [a["created_ms"] for a in json.load(sys.stdin)["alerts"]
        if a["title"] == title and a["severity"] == "critical"]
print(min(hits) if hits else "")' "pm2 $name is crash-looping")
            [[ -n $created ]] && break
            sleep 0.1
        done
        p2 delete "$name"
        [[ -n $created ]] || { echo "$name timeout" >>"$BENCH_TMP/fig3.txt"; continue; }
        echo "$name $created $(tr '\n' ' ' <"$crash_log")" >>"$BENCH_TMP/fig3.txt"
        sleep 1
    done
    raw_section "figure 3: run, alert created_ms, exit times (ms)" "$BENCH_TMP/fig3.txt"
    rec_cmd fig3_ python3 - "$BENCH_TMP/fig3.txt" <<'EOF'
import statistics, sys
lat, before, timeouts = [], [], 0
for line in open(sys.argv[1]):
    f = line.split()
    if f[1] == "timeout":
        timeouts += 1
        continue
    created, exits = int(f[1]), [int(x) for x in f[2:]]
    # The alert needs > 5 restarts: the 6th exit decides it.
    lat.append(created - exits[5])
    before.append(sum(1 for e in exits if e <= created))
print("latency_ms=" + ",".join(map(str, lat)))
print("exits_before_alert=" + ",".join(map(str, before)))
if lat:
    print(f"median_ms={statistics.median(lat):.0f}")
    print(f"max_ms={max(lat)}")
    print(f"min_ms={min(lat)}")
print(f"runs_ok={len(lat)}")
print(f"runs_timed_out={timeouts}")
EOF
fi
rec_cmd log_ log_problems "$BENCH_TMP/opswatch.log"
stop_pid "$OW_PID"
raw_section "opswatch log" "$BENCH_TMP/opswatch.log"
rec loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- table
v() { echo "${R[$1]:-n/a}"; }
row() { printf '| %-52s | %-10s | %-28s | %-7s | %-4s |\n' "$@"; }
{
    echo
    echo "PM2 over its sockets, $(date -u +%Y-%m-%d), ${R[nproc]} CPU, kernel ${R[kernel]}, load ${R[loadavg_start]} -> ${R[loadavg_end]}, tree ${R[git_head]}, PM2 $(v pm2_version)"
    row "Figure" "opswatch" "reference (same run)" "target" "met?"
    row "----------------------------------------------------" "----------" "----------------------------" "-------" "----"
    if want 1; then
        row "1. one poll, $(v fig1_apps) apps: CPU (ms)" "$(v fig1_cpu_ms)" "pm2 jlist $(v fig1_jlist_cpu_median_ms)" "<= 5" "$(verdict le "$(v fig1_cpu_ms)" 5)"
        row "1.   wall (ms), mean of 100; worst" "$(v fig1_wall_ms); $(v fig1_worst_wall_ms)" "pm2 jlist $(v fig1_jlist_wall_median_ms)" "<= 20" "$(verdict le "$(v fig1_wall_ms)" 20)"
    fi
    if want 2; then
        row "2. defaults, 10 PM2 apps + 2 HTTP: tree CPU-s/min" "$(v fig2_opswatch_tree_cpu_s_per_min)" "monit ($MONIT_N checks) $(v fig2_monit_tree_cpu_s_per_min)" "<= 0.03" "$(verdict le "$(v fig2_opswatch_tree_cpu_s_per_min)" 0.03)"
    fi
    if want 3; then
        row "3. crash -> crash-loop CRITICAL, median of $(v fig3_runs_ok) (ms)" "$(v fig3_median_ms)" "max $(v fig3_max_ms), min $(v fig3_min_ms)" "" ""
    fi
    echo
    want 2 && echo "Figure 2: window ${WINDOW_S}s after ${WARMUP_S}s; reading $(v fig2_reading_apps) apps ($(v fig2_reading_online) online), error '${R[fig2_reading_error]:-none}'; opswatch threads $(v fig2_opswatch_by_thread); children $(v fig2_opswatch_children_cpu_s) s; rustc running: $(v fig2_rustc_procs); load $(v fig2_loadavg)"
    want 3 && echo "Figure 3: latencies $(v fig3_latency_ms) ms; exits before each alert $(v fig3_exits_before_alert); timed out $(v fig3_runs_timed_out)"
    echo "Log: $(v log_warn_lines) WARN, $(v log_error_lines) ERROR. Raw numbers: ${RAW#"$ROOT"/}"
} | tee "$BENCH_TMP/table.txt"
raw_section "table" "$BENCH_TMP/table.txt"
