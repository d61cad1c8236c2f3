#!/usr/bin/env bash
# Process figures of opswatch (issue 5), in one run on one machine:
#   4. CPU of one full host sample (all metrics + top processes): the ignored `sample_cost` test
#   5. one PM2 poll with 20 apps: wall and CPU, `pm2 jlist` child included (and `pm2 jlist`
#      alone, and the PM2 daemon's share, for reference)
#   6. steady RSS with the default config plus `[pm2] home` (20 apps) after a few minutes
# Usage: bash bench/processes.sh   (pm2 and node must be installed: `npm install -g pm2`)
# Knobs (environment), for quick trials; the defaults are the documented run:
#   PM2_APPS=20 JLIST_RUNS=10 DAEMON_IDLE_S=30 POLL_WARMUP_S=10 POLL_WINDOW_S=60
#   RSS_WAIT_S=180 PROC_FIGURES="4 5 6"
# A temporary PM2_HOME under /tmp holds the apps; `pm2 kill` for it runs on exit. No other
# PM2_HOME is touched: every pm2 command here has PM2_HOME set.
# Raw numbers go to bench/out/processes-<date>.txt; the table is printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

APPS=${PM2_APPS:-20}
JLIST_RUNS=${JLIST_RUNS:-10}
DAEMON_IDLE_S=${DAEMON_IDLE_S:-30}
POLL_WARMUP_S=${POLL_WARMUP_S:-10}
POLL_WINDOW_S=${POLL_WINDOW_S:-60}
RSS_WAIT_S=${RSS_WAIT_S:-180}
FIGURES=${PROC_FIGURES:-4 5 6}
want() { [[ " $FIGURES " == *" $1 "* ]]; }

PM2H=""
pm2_cleanup() {
    if [[ -n $PM2H && -d $PM2H ]]; then
        PM2_HOME="$PM2H" timeout 30 pm2 kill >/dev/null 2>&1 || true
        # If `pm2 kill` could not, the daemon of our PM2_HOME (only that one) goes by its pid.
        if [[ -f $PM2H/pm2.pid ]]; then
            local dpid
            dpid=$(cat "$PM2H/pm2.pid")
            [[ -n $dpid ]] && kill -0 "$dpid" 2>/dev/null && stop_pid "$dpid"
        fi
    fi
    bench_cleanup
}
trap pm2_cleanup EXIT
trap 'exit 130' INT TERM

for tool in python3 curl cargo awk; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if want 5 || want 6; then
    command -v pm2 >/dev/null || die "pm2 is not on PATH: npm install -g pm2"
    command -v node >/dev/null || die "node is not on PATH"
    ensure_tools time:time
fi

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/processes-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-processes.XXXXXX)
declare -A R=()

log "building the release binary (may wait on cargo's lock)"
cargo build --release >&2
BIN="$ROOT/target/release/opswatch"
[[ -x $BIN ]] || die "$BIN was not built"
rec_machine "$BIN"
rec knobs "PM2_APPS=$APPS JLIST_RUNS=$JLIST_RUNS DAEMON_IDLE_S=$DAEMON_IDLE_S POLL_WARMUP_S=$POLL_WARMUP_S POLL_WINDOW_S=$POLL_WINDOW_S RSS_WAIT_S=$RSS_WAIT_S FIGURES=$FIGURES"

# ---------------------------------------------------------------- 4. one host sample
if want 4; then
    log "figure 4: cargo test --release --lib sample_cost -- --ignored --nocapture"
    rec fig4_host_procs_before "$(count_procs)"
    cargo test --release --lib sample_cost -- --ignored --nocapture >"$BENCH_TMP/sample_cost.txt" 2>&1 ||
        die "sample_cost failed: $(tail -20 "$BENCH_TMP/sample_cost.txt")"
    raw_section "figure 4: sample_cost output" "$BENCH_TMP/sample_cost.txt"
    # "200 samples, 203 processes: 1712 µs wall, 1650 µs CPU per sample"
    line=$(grep -m1 -E '^[0-9]+ samples, [0-9]+ processes:' "$BENCH_TMP/sample_cost.txt" || true)
    [[ -n $line ]] || die "no result line in the sample_cost output"
    rec fig4_line "$line"
    rec fig4_samples "$(awk '{ print $1 }' <<<"$line")"
    rec fig4_procs "$(awk '{ print $3 }' <<<"$line")"
    rec fig4_wall_us "$(sed -E 's/.*: ([0-9.]+) µs wall.*/\1/' <<<"$line")"
    rec fig4_cpu_us "$(sed -E 's/.*wall, ([0-9.]+) µs CPU.*/\1/' <<<"$line")"
    rec fig4_available_parallelism "$(grep -m1 '^available_parallelism' "$BENCH_TMP/sample_cost.txt" | cut -d' ' -f2- || true)"
    rec fig4_host_procs_after "$(count_procs)"
fi

# ---------------------------------------------------------------- PM2 with 20 apps
if want 5 || want 6; then
    PM2H="$BENCH_TMP/pm2home"
    mkdir -p "$PM2H" "$BENCH_TMP/apps"
    echo 'setInterval(() => {}, 1000);' >"$BENCH_TMP/apps/app.js"
    {
        echo 'module.exports = { apps: ['
        for i in $(seq -w 1 "$APPS"); do
            echo "  { name: 'bench-app-$i', script: '$BENCH_TMP/apps/app.js', autorestart: true },"
        done
        echo '] };'
    } >"$BENCH_TMP/apps/ecosystem.config.js"
    log "starting $APPS PM2 apps under PM2_HOME=$PM2H"
    PM2_HOME="$PM2H" pm2 start "$BENCH_TMP/apps/ecosystem.config.js" >"$BENCH_TMP/pm2-start.txt" 2>&1 ||
        die "pm2 start failed: $(tail -5 "$BENCH_TMP/pm2-start.txt")"
    online=0
    for _ in $(seq 60); do
        online=$(PM2_HOME="$PM2H" pm2 jlist 2>/dev/null | python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.startswith("[")]
apps = json.loads(lines[-1]) if lines else []
print(sum(1 for a in apps if a.get("pm2_env", {}).get("status") == "online"))' || echo 0)
        ((online >= APPS)) && break
        sleep 1
    done
    ((online >= APPS)) || die "only $online of $APPS PM2 apps came online"
    rec pm2_version "$(PM2_HOME="$PM2H" pm2 --version 2>/dev/null | tail -1)"
    rec node_version "$(node --version)"
    rec pm2_apps_online "$online"
    PM2_DAEMON_PID=$(cat "$PM2H/pm2.pid")
    rec pm2_jlist_bytes "$(PM2_HOME="$PM2H" pm2 jlist 2>/dev/null | wc -c)"
    rec host_procs_with_apps "$(count_procs)"
fi

# ---------------------------------------------------------------- 5. one PM2 poll
if want 5; then
    log "figure 5: PM2 daemon idle for ${DAEMON_IDLE_S}s"
    sleep 5 # let the apps settle after start
    python3 "$ROOT/bench/proccpu.py" snap "$PM2_DAEMON_PID" >"$BENCH_TMP/daemon-idle-a.json"
    sleep "$DAEMON_IDLE_S"
    python3 "$ROOT/bench/proccpu.py" snap "$PM2_DAEMON_PID" >"$BENCH_TMP/daemon-idle-b.json"
    rec_cmd fig5_daemon_idle_ python3 "$ROOT/bench/proccpu.py" delta "$BENCH_TMP/daemon-idle-a.json" "$BENCH_TMP/daemon-idle-b.json"

    log "figure 5: pm2 jlist alone, $JLIST_RUNS runs"
    : >"$BENCH_TMP/jlist-times.txt"
    for _ in $(seq "$JLIST_RUNS"); do
        PM2_HOME="$PM2H" /usr/bin/time -a -o "$BENCH_TMP/jlist-times.txt" -f '%e %U %S %M' pm2 jlist >/dev/null 2>&1
    done
    raw_section "figure 5: pm2 jlist alone (wall s, user s, sys s, max RSS KiB)" "$BENCH_TMP/jlist-times.txt"
    rec_cmd fig5_jlist_ python3 - "$BENCH_TMP/jlist-times.txt" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
wall = [r[0] * 1000 for r in rows]
cpu = [(r[1] + r[2]) * 1000 for r in rows]
print(f"runs={len(rows)}")
print(f"wall_median_ms={statistics.median(wall):.0f}")
print(f"wall_max_ms={max(wall):.0f}")
print(f"cpu_median_ms={statistics.median(cpu):.0f}")
print(f"cpu_max_ms={max(cpu):.0f}")
print(f"maxrss_median_mib={statistics.median(r[3] for r in rows) / 1024:.1f}")
EOF

    # Two opswatch instances at the same time: one polling PM2 every second, one identical but
    # with PM2 off (the baseline its own idle CPU is taken from). No host sampling in either.
    poll_config() { # poll_config DIR PORT PM2_LINES
        cat <<EOF
[server]
listen = "127.0.0.1:$2"

[storage]
url = "sqlite://$1/data/opswatch.db"

[system]
enabled = false

[pm2]
$3
EOF
    }
    P_DIR="$BENCH_TMP/fig5-poll"
    P_PORT=$(free_port)
    B_DIR="$BENCH_TMP/fig5-base"
    B_PORT=$(free_port)
    mkdir -p "$P_DIR" "$B_DIR"
    poll_config "$P_DIR" "$P_PORT" "home = \"$PM2H\"
every = \"1s\"" >"$P_DIR/opswatch.toml"
    poll_config "$B_DIR" "$B_PORT" "enabled = false" >"$B_DIR/opswatch.toml"
    raw_section "figure 5: opswatch config (polling)" "$P_DIR/opswatch.toml"
    raw_section "figure 5: opswatch config (baseline)" "$B_DIR/opswatch.toml"

    log "figure 5: opswatch polling PM2 every 1s (and a baseline without PM2); warm-up ${POLL_WARMUP_S}s, window ${POLL_WINDOW_S}s"
    (cd "$P_DIR" && exec "$BIN" --config "$P_DIR/opswatch.toml" serve) >"$BENCH_TMP/fig5-poll.log" 2>&1 </dev/null &
    P_PID=$!
    BENCH_PIDS+=("$P_PID")
    (cd "$B_DIR" && exec "$BIN" --config "$B_DIR/opswatch.toml" serve) >"$BENCH_TMP/fig5-base.log" 2>&1 </dev/null &
    B_PID=$!
    BENCH_PIDS+=("$B_PID")
    wait_http "http://127.0.0.1:$P_PORT/health" 60 || die "opswatch (polling) never answered 200: $(tail -5 "$BENCH_TMP/fig5-poll.log")"
    wait_http "http://127.0.0.1:$B_PORT/health" 60 || die "opswatch (baseline) never answered 200: $(tail -5 "$BENCH_TMP/fig5-base.log")"
    sleep "$POLL_WARMUP_S"

    pm2_metric() { metric_sum "http://127.0.0.1:$P_PORT/metrics" "^opswatch_check_duration_seconds_$1[{].*check=\"pm2\""; }
    c0=$(pm2_metric count)
    s0=$(pm2_metric sum)
    for p in "$P_PID:poll" "$B_PID:base" "$PM2_DAEMON_PID:daemon"; do
        python3 "$ROOT/bench/proccpu.py" snap "${p%%:*}" >"$BENCH_TMP/fig5-${p#*:}-a.json"
    done
    sleep "$POLL_WINDOW_S"
    for p in "$P_PID:poll" "$B_PID:base" "$PM2_DAEMON_PID:daemon"; do
        python3 "$ROOT/bench/proccpu.py" snap "${p%%:*}" >"$BENCH_TMP/fig5-${p#*:}-b.json"
    done
    c1=$(pm2_metric count)
    s1=$(pm2_metric sum)
    for p in poll base daemon; do
        rec_cmd "fig5_${p}_" python3 "$ROOT/bench/proccpu.py" delta "$BENCH_TMP/fig5-$p-a.json" "$BENCH_TMP/fig5-$p-b.json"
    done
    rec fig5_polls "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%d", b - a }')"
    rec fig5_poll_wall_sum_s "$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.4f", b - a }')"
    curl -fsS "http://127.0.0.1:$P_PORT/api/v1/processes" >"$BENCH_TMP/fig5-processes.json"
    rec_cmd fig5_reading_ python3 - "$BENCH_TMP/fig5-processes.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["pm2"]["reading"] or {}
items = r.get("items") or []
print(f"apps={len(items)}")
print(f"online={sum(1 for a in items if a.get('status') == 'online')}")
print(f"error={r.get('error') or ''}")
EOF
    # Per poll: opswatch's own CPU above the baseline's, the children it reaped (pm2 jlist),
    # and the PM2 daemon's CPU above its idle rate.
    rec_cmd fig5_per_poll_ awk -v n="${R[fig5_polls]}" -v ws="${R[fig5_poll_wall_sum_s]}" \
        -v pc="${R[fig5_poll_cpu_s]}" -v pw="${R[fig5_poll_wall_s]}" -v ch="${R[fig5_poll_children_cpu_s]}" \
        -v bc="${R[fig5_base_cpu_s]}" -v bw="${R[fig5_base_wall_s]}" \
        -v dc="${R[fig5_daemon_cpu_s]}" -v dw="${R[fig5_daemon_wall_s]}" \
        -v ic="${R[fig5_daemon_idle_cpu_s]}" -v iw="${R[fig5_daemon_idle_wall_s]}" 'BEGIN {
            if (n <= 0) { print "error=no successful poll in the window"; exit }
            self = (pc - bc * pw / bw) / n * 1000
            child = ch / n * 1000
            daemon = (dc - ic * dw / iw) / n * 1000
            printf "wall_ms=%.0f\nself_cpu_ms=%.1f\nchild_cpu_ms=%.0f\ncpu_ms=%.0f\ndaemon_cpu_ms=%.0f\n", ws / n * 1000, self, child, self + child, daemon
            printf "all_cpu_ms=%.0f\n", self + child + daemon
            printf "default_every_pct_core=%.2f\n", (self + child) / 60000 * 100
        }'
    rec_cmd fig5_log_ log_problems "$BENCH_TMP/fig5-poll.log"
    stop_pid "$P_PID"
    stop_pid "$B_PID"
    raw_section "figure 5: opswatch log (polling)" "$BENCH_TMP/fig5-poll.log"
fi

# ---------------------------------------------------------------- 6. steady RSS, defaults + PM2
if want 6; then
    D_DIR="$BENCH_TMP/fig6-defaults"
    D_PORT=$(free_port)
    mkdir -p "$D_DIR"
    printf '[pm2]\nhome = "%s"\n' "$PM2H" >"$D_DIR/opswatch.toml"
    raw_section "figure 6: opswatch config (everything else default)" "$D_DIR/opswatch.toml"
    log "figure 6: opswatch with the default config + [pm2] home, RSS over ${RSS_WAIT_S}s"
    (cd "$D_DIR" && exec "$BIN" --config "$D_DIR/opswatch.toml" serve --listen "127.0.0.1:$D_PORT") \
        >"$BENCH_TMP/fig6.log" 2>&1 </dev/null &
    D_PID=$!
    BENCH_PIDS+=("$D_PID")
    wait_http "http://127.0.0.1:$D_PORT/health" 60 || die "opswatch (defaults) never answered 200: $(tail -5 "$BENCH_TMP/fig6.log")"
    python3 "$ROOT/bench/proccpu.py" snap "$D_PID" >"$BENCH_TMP/fig6-a.json"
    waited=0
    series=""
    while ((waited < RSS_WAIT_S)); do
        step=$((RSS_WAIT_S - waited < 60 ? RSS_WAIT_S - waited : 60))
        sleep "$step"
        waited=$((waited + step))
        series+="${series:+,}${waited}s:$(awk '/^VmRSS:/ { print $2 }' "/proc/$D_PID/status")"
    done
    python3 "$ROOT/bench/proccpu.py" snap "$D_PID" >"$BENCH_TMP/fig6-b.json"
    rec fig6_rss_series_kib "$series"
    rec_cmd fig6_opswatch_ python3 "$ROOT/bench/procmem.py" "$D_PID"
    rec_cmd fig6_cpu_ python3 "$ROOT/bench/proccpu.py" delta "$BENCH_TMP/fig6-a.json" "$BENCH_TMP/fig6-b.json"
    curl -fsS "http://127.0.0.1:$D_PORT/api/v1/processes" >"$BENCH_TMP/fig6-processes.json"
    rec_cmd fig6_reading_ python3 - "$BENCH_TMP/fig6-processes.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["pm2"]["reading"] or {}
items = r.get("items") or []
print(f"apps={len(items)}")
print(f"error={r.get('error') or ''}")
EOF
    rec_cmd fig6_log_ log_problems "$BENCH_TMP/fig6.log"
    stop_pid "$D_PID"
    raw_section "figure 6: opswatch log" "$BENCH_TMP/fig6.log"
fi
rec loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- table
v() { echo "${R[$1]:-n/a}"; }
mib() { if [[ -n ${R[$1]:-} ]]; then kib_to_mib "${R[$1]}"; else echo n/a; fi; }
row() { printf '| %-46s | %-14s | %-26s | %-8s | %-5s |\n' "$@"; }
{
    echo
    echo "Process figures, $(date -u +%Y-%m-%d), ${R[nproc]} CPU, ${R[mem_total_mib]} MiB RAM, kernel ${R[kernel]}, load ${R[loadavg_start]} -> ${R[loadavg_end]}, tree ${R[git_head]}"
    row "Figure" "opswatch" "reference (same run)" "target" "ok?"
    row "----------------------------------------------" "--------------" "--------------------------" "--------" "-----"
    if want 4; then
        row "4. one host sample, CPU (ms)" "$(awk -v u="$(v fig4_cpu_us)" 'BEGIN { printf "%.2f", u / 1000 }')" "" "<= 5" \
            "$(verdict le "$(awk -v u="$(v fig4_cpu_us)" 'BEGIN { printf "%.3f", u / 1000 }')" 5)"
        row "4.   wall (ms); processes sampled" "$(awk -v u="$(v fig4_wall_us)" 'BEGIN { printf "%.2f", u / 1000 }'); $(v fig4_procs)" "host had $(v fig4_host_procs_before) before" "" ""
    fi
    if want 5; then
        row "5. one PM2 poll, $APPS apps: wall (ms)" "$(v fig5_per_poll_wall_ms)" "pm2 jlist alone $(v fig5_jlist_wall_median_ms)" "" ""
        row "5.   CPU, opswatch + pm2 jlist child (ms)" "$(v fig5_per_poll_cpu_ms)" "pm2 jlist alone $(v fig5_jlist_cpu_median_ms)" "" ""
        row "5.   of which opswatch itself (ms)" "$(v fig5_per_poll_self_cpu_ms)" "" "" ""
        row "5.   PM2 daemon answering (ms, not ours)" "$(v fig5_per_poll_daemon_cpu_ms)" "" "" ""
        row "5.   at every = 1m (% of one core)" "$(v fig5_per_poll_default_every_pct_core)" "" "" ""
    fi
    if want 6; then
        row "6. RSS, defaults + PM2 ($APPS apps), ${RSS_WAIT_S}s (MiB)" "$(mib fig6_opswatch_vmrss_kib)" "" "<= 15" \
            "$(verdict le "$(mib fig6_opswatch_vmrss_kib)" 15)"
    fi
    echo
    if want 5; then
        echo "Figure 5: $(v fig5_polls) successful polls in ${POLL_WINDOW_S}s; last reading: $(v fig5_reading_apps) apps, $(v fig5_reading_online) online, error '${R[fig5_reading_error]:-none}'; pm2 jlist output $(v pm2_jlist_bytes) bytes; log: $(v fig5_log_warn_lines) WARN, $(v fig5_log_error_lines) ERROR"
    fi
    if want 6; then
        echo "Figure 6: RSS by minute (KiB) $(v fig6_rss_series_kib); RssAnon $(mib fig6_opswatch_rssanon_kib) MiB, RssFile $(mib fig6_opswatch_rssfile_kib) MiB; threads $(v fig6_opswatch_thread_names); top mappings $(v fig6_opswatch_top1), $(v fig6_opswatch_top2), $(v fig6_opswatch_top3); PM2 reading: $(v fig6_reading_apps) apps, error '${R[fig6_reading_error]:-none}'; log: $(v fig6_log_warn_lines) WARN, $(v fig6_log_error_lines) ERROR"
    fi
    echo "Raw numbers: ${RAW#"$ROOT"/}"
} | tee "$BENCH_TMP/table.txt"
raw_section "table" "$BENCH_TMP/table.txt"
