#!/usr/bin/env bash
# Check figures of opswatch (issue 4), side by side with monit, in one run on one machine:
#   1. monit's workload (20 HTTP checks every 30 s against a local server, plus host sampling):
#      RSS after warm-up and CPU seconds per minute, opswatch and monit at the same time
#   2. 1,000 HTTP targets every 60 s: CPU as % of one core, and RSS
#   3. alert latency: deciding failed probe -> fake Telegram receives the DOWN
# Usage: bash bench/checks.sh      (as root when monit is missing: it is installed from Debian)
# Knobs (environment), for quick trials; the defaults are the documented run:
#   CHECKS_N=20 CHECKS_EVERY_S=30 CHECKS_WARMUP_S=135 CHECKS_WINDOW_S=300
#   MANY_N=1000 MANY_PORTS=4 MANY_EVERY_S=60 MANY_WARMUP_S=90 MANY_WINDOW_S=300
#   LAT_RUNS=10 CHECKS_FIGURES="1 2 3"
#   OPSWATCH_BIN=path: measure that binary instead of building the tree's release binary
#   (to compare a saved "before" build with the tree in the same conditions)
# Raw numbers go to bench/out/checks-<date>.txt; the table is printed at the end.
# Only loopback addresses are used; every process started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

N=${CHECKS_N:-20}
EVERY_S=${CHECKS_EVERY_S:-30}
WARMUP_S=${CHECKS_WARMUP_S:-135}
WINDOW_S=${CHECKS_WINDOW_S:-300}
MANY_N=${MANY_N:-1000}
MANY_PORTS=${MANY_PORTS:-4}
MANY_EVERY_S=${MANY_EVERY_S:-60}
MANY_WARMUP_S=${MANY_WARMUP_S:-90}
MANY_WINDOW_S=${MANY_WINDOW_S:-300}
LAT_RUNS=${LAT_RUNS:-10}
FIGURES=${CHECKS_FIGURES:-1 2 3}
want() { [[ " $FIGURES " == *" $1 "* ]]; }

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

for tool in python3 curl cargo awk; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/checks-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-checks.XXXXXX)
declare -A R=()

# ---------------------------------------------------------------- peers, build, machine
ensure_tools monit:monit
if [[ -n ${OPSWATCH_BIN:-} ]]; then
    BIN=$OPSWATCH_BIN
else
    log "building the release binary (may wait on cargo's lock)"
    cargo build --release >&2
    BIN="$ROOT/target/release/opswatch"
fi
[[ -x $BIN ]] || die "$BIN was not built"
MONIT_BIN=$(command -v monit)
rec_machine "$BIN"
rec monit_version "$("$MONIT_BIN" -V | head -1)"
rec knobs "N=$N EVERY_S=$EVERY_S WARMUP_S=$WARMUP_S WINDOW_S=$WINDOW_S MANY_N=$MANY_N MANY_PORTS=$MANY_PORTS MANY_EVERY_S=$MANY_EVERY_S MANY_WARMUP_S=$MANY_WARMUP_S MANY_WINDOW_S=$MANY_WINDOW_S LAT_RUNS=$LAT_RUNS FIGURES=$FIGURES OPSWATCH_BIN=${OPSWATCH_BIN:-built}"

# The fake Telegram every opswatch here sends to (nothing is sent in 1 and 2: all targets up).
TG_PORT=$(free_port)
spawn "$BENCH_TMP/telegram.out" python3 "$ROOT/bench/fake_telegram.py" serve "$TG_PORT" "$BENCH_TMP/telegram.log"
wait_port "$TG_PORT" 5 || die "the fake Telegram did not start"

# opswatch_base DIR PORT: the part of the config every opswatch instance here shares: its own
# listen port and SQLite file, Telegram pointed at the fake, host sampling every EVERY_S (as
# monit samples the host every cycle), PM2 off (monit has nothing like it; no PM2 here).
opswatch_base() {
    cat <<EOF
[server]
listen = "127.0.0.1:$2"

[storage]
url = "sqlite://$1/data/opswatch.db"

[telegram]
bot_token = "7000000001:bench-not-a-real-token"
chat_id = "1"
api_base = "http://127.0.0.1:$TG_PORT"

[system]
sample_every = "${EVERY_S}s"

[pm2]
enabled = false
EOF
}

# check_states PREFIX PORT: how many checks /metrics shows up and down.
check_states() {
    local m
    m=$(curl -fsS --max-time 5 "http://127.0.0.1:$2/metrics")
    rec "${1}checks_up" "$(grep -c '^opswatch_check_up{.*kind="http".*} 1$' <<<"$m" || true)"
    rec "${1}checks_down" "$(grep -c '^opswatch_check_up{.*kind="http".*} 0$' <<<"$m" || true)"
}

# ---------------------------------------------------------------- 1. monit's workload
if want 1; then
    T1_PORTS="$(free_port),$(free_port)"
    T1_OW_PORT=${T1_PORTS%%,*}
    T1_MONIT_PORT=${T1_PORTS##*,}
    spawn "$BENCH_TMP/target1.out" python3 "$ROOT/bench/http_target.py" serve "$T1_PORTS"
    wait_port "$T1_OW_PORT" 5 || die "the HTTP target did not start"

    OW_DIR="$BENCH_TMP/fig1-opswatch"
    OW_PORT=$(free_port)
    mkdir -p "$OW_DIR"
    {
        opswatch_base "$OW_DIR" "$OW_PORT"
        for i in $(seq -w 1 "$N"); do
            printf '\n[[http]]\nname = "t%s"\nurl = "http://127.0.0.1:%s/health"\nevery = "%ss"\n' "$i" "$T1_OW_PORT" "$EVERY_S"
        done
    } >"$OW_DIR/opswatch.toml"
    raw_section "figure 1: opswatch config" "$OW_DIR/opswatch.toml"

    MONIT_DIR="$BENCH_TMP/fig1-monit"
    MONIT_PORT=$(free_port)
    mkdir -p "$MONIT_DIR"
    {
        cat <<EOF
set daemon $EVERY_S
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
        for i in $(seq -w 1 "$N"); do
            printf '\ncheck host t%s with address 127.0.0.1\n    if failed port %s protocol http request /health then alert\n' "$i" "$T1_MONIT_PORT"
        done
    } >"$MONIT_DIR/monitrc"
    chmod 600 "$MONIT_DIR/monitrc"
    "$MONIT_BIN" -t -c "$MONIT_DIR/monitrc" >&2 || die "monit rejects its config"
    raw_section "figure 1: monitrc" "$MONIT_DIR/monitrc"

    log "figure 1: opswatch and monit, $N checks every ${EVERY_S}s; warm-up ${WARMUP_S}s, window ${WINDOW_S}s"
    start_opswatch fig1-opswatch "$OW_DIR" "$OW_PORT"
    OW_PID=$SPAWNED_PID
    spawn "$BENCH_TMP/fig1-monit.out" "$MONIT_BIN" -I -c "$MONIT_DIR/monitrc"
    MONIT_PID=$SPAWNED_PID
    wait_http "http://127.0.0.1:$MONIT_PORT/_ping" 15 || die "monit never answered on /_ping"
    rec fig1_started "$(date -u +%H:%M:%S)"

    sleep "$WARMUP_S"
    rec_cmd fig1_warm_opswatch_ python3 "$ROOT/bench/procmem.py" "$OW_PID"
    rec_cmd fig1_warm_monit_ python3 "$ROOT/bench/procmem.py" "$MONIT_PID"
    target_counts fig1_before_ "http://127.0.0.1:$T1_OW_PORT"
    window fig1_ "$WINDOW_S" "$OW_PID:opswatch" "$MONIT_PID:monit"
    target_counts fig1_after_ "http://127.0.0.1:$T1_OW_PORT"
    rec fig1_probes_opswatch $((${R[fig1_after_count_$T1_OW_PORT]:-0} - ${R[fig1_before_count_$T1_OW_PORT]:-0}))
    rec fig1_probes_monit $((${R[fig1_after_count_$T1_MONIT_PORT]:-0} - ${R[fig1_before_count_$T1_MONIT_PORT]:-0}))
    rec fig1_probes_expected $((N * WINDOW_S / EVERY_S))
    rec_cmd fig1_end_opswatch_ python3 "$ROOT/bench/procmem.py" "$OW_PID"
    rec_cmd fig1_end_monit_ python3 "$ROOT/bench/procmem.py" "$MONIT_PID"
    check_states fig1_ "$OW_PORT"
    rec fig1_loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"
    rec fig1_rustc_procs "$(pgrep -c -x rustc || true)"
    rec_cmd fig1_log_ log_problems "$BENCH_TMP/fig1-opswatch.log"
    stop_pid "$OW_PID"
    stop_pid "$MONIT_PID"
    raw_section "figure 1: opswatch log" "$BENCH_TMP/fig1-opswatch.log"
    raw_section "figure 1: monit log" "$MONIT_DIR/monit.log"
fi

# ---------------------------------------------------------------- 2. 1,000 targets
if want 2; then
    T2_PORTS=""
    for _ in $(seq "$MANY_PORTS"); do T2_PORTS+="${T2_PORTS:+,}$(free_port)"; done
    IFS=, read -r -a T2_PORT_LIST <<<"$T2_PORTS"
    spawn "$BENCH_TMP/target2.out" python3 "$ROOT/bench/http_target.py" serve "$T2_PORTS"
    wait_port "${T2_PORT_LIST[0]}" 5 || die "the HTTP target (figure 2) did not start"

    OW2_DIR="$BENCH_TMP/fig2-opswatch"
    OW2_PORT=$(free_port)
    mkdir -p "$OW2_DIR"
    {
        opswatch_base "$OW2_DIR" "$OW2_PORT"
        for i in $(seq 0 $((MANY_N - 1))); do
            printf '\n[[http]]\nname = "c%04d"\nurl = "http://127.0.0.1:%s/t/%04d"\nevery = "%ss"\n' \
                "$i" "${T2_PORT_LIST[i % MANY_PORTS]}" "$i" "$MANY_EVERY_S"
        done
    } >"$OW2_DIR/opswatch.toml"
    head -40 "$OW2_DIR/opswatch.toml" >"$BENCH_TMP/fig2-config-head.toml"
    raw_section "figure 2: opswatch config (first 40 lines of $(wc -l <"$OW2_DIR/opswatch.toml"))" "$BENCH_TMP/fig2-config-head.toml"

    log "figure 2: opswatch, $MANY_N checks every ${MANY_EVERY_S}s on $MANY_PORTS ports; warm-up ${MANY_WARMUP_S}s, window ${MANY_WINDOW_S}s"
    start_opswatch fig2-opswatch "$OW2_DIR" "$OW2_PORT"
    OW2_PID=$SPAWNED_PID
    rec fig2_started "$(date -u +%H:%M:%S)"
    sleep "$MANY_WARMUP_S"
    rec_cmd fig2_warm_opswatch_ python3 "$ROOT/bench/procmem.py" "$OW2_PID"
    target_counts fig2_before_ "http://127.0.0.1:${T2_PORT_LIST[0]}"
    window fig2_ "$MANY_WINDOW_S" "$OW2_PID:opswatch"
    target_counts fig2_after_ "http://127.0.0.1:${T2_PORT_LIST[0]}"
    rec fig2_probes $((${R[fig2_after_count_total]:-0} - ${R[fig2_before_count_total]:-0}))
    rec fig2_probes_expected $((MANY_N * MANY_WINDOW_S / MANY_EVERY_S))
    rec_cmd fig2_end_opswatch_ python3 "$ROOT/bench/procmem.py" "$OW2_PID"
    check_states fig2_ "$OW2_PORT"
    rec fig2_db_kib "$(du -sk "$OW2_DIR/data" | cut -f1)"
    rec fig2_loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"
    rec fig2_rustc_procs "$(pgrep -c -x rustc || true)"
    rec_cmd fig2_log_ log_problems "$BENCH_TMP/fig2-opswatch.log"
    stop_pid "$OW2_PID"
    raw_section "figure 2: opswatch log" "$BENCH_TMP/fig2-opswatch.log"
fi

# ---------------------------------------------------------------- 3. alert latency
if want 3; then
    T3_PORT=$(free_port)
    spawn "$BENCH_TMP/target3.out" python3 "$ROOT/bench/http_target.py" serve "$T3_PORT" --log "$BENCH_TMP/target3.log"
    wait_port "$T3_PORT" 5 || die "the HTTP target (figure 3) did not start"
    OW3_DIR="$BENCH_TMP/fig3-opswatch"
    OW3_PORT=$(free_port)
    mkdir -p "$OW3_DIR"
    {
        opswatch_base "$OW3_DIR" "$OW3_PORT"
        cat <<EOF

[alerts]
flap_threshold = 1000   # ten DOWNs in a minute are the test, not flapping to damp

[[http]]
name = "flip"
url = "http://127.0.0.1:$T3_PORT/health"
every = "1s"
timeout = "1s"
failures = 2
EOF
    } >"$OW3_DIR/opswatch.toml"
    raw_section "figure 3: opswatch config" "$OW3_DIR/opswatch.toml"
    log "figure 3: alert latency, $LAT_RUNS runs"
    start_opswatch fig3-opswatch "$OW3_DIR" "$OW3_PORT"
    OW3_PID=$SPAWNED_PID
    rec_cmd fig3_ python3 "$ROOT/bench/alert_latency.py" "http://127.0.0.1:$T3_PORT" \
        "$BENCH_TMP/target3.log" "$BENCH_TMP/telegram.log" "$LAT_RUNS"
    rec_cmd fig3_tg_ python3 "$ROOT/bench/fake_telegram.py" count "$BENCH_TMP/telegram.log"
    rec_cmd fig3_log_ log_problems "$BENCH_TMP/fig3-opswatch.log"
    stop_pid "$OW3_PID"
    raw_section "figure 3: opswatch log" "$BENCH_TMP/fig3-opswatch.log"
    raw_section "figure 3: target log" "$BENCH_TMP/target3.log"
fi
raw_section "fake Telegram log" "$BENCH_TMP/telegram.log"
rec loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- table
v() { echo "${R[$1]:-n/a}"; }
mib() { if [[ -n ${R[$1]:-} ]]; then kib_to_mib "${R[$1]}"; else echo n/a; fi; }
row() { printf '| %-50s | %-12s | %-24s | %-10s | %-5s |\n' "$@"; }
{
    echo
    echo "Check figures, $(date -u +%Y-%m-%d), ${R[nproc]} CPU, ${R[mem_total_mib]} MiB RAM, kernel ${R[kernel]}, load ${R[loadavg_start]} -> ${R[loadavg_end]}, tree ${R[git_head]}"
    row "Figure" "opswatch" "peer (same run)" "target" "ok?"
    row "--------------------------------------------------" "------------" "------------------------" "----------" "-----"
    if want 1; then
        row "1. RSS after ${WARMUP_S}s, $N checks/${EVERY_S}s (MiB)" "$(mib fig1_warm_opswatch_vmrss_kib)" "monit $(mib fig1_warm_monit_vmrss_kib)" "<= 12" \
            "$(verdict le "$(mib fig1_warm_opswatch_vmrss_kib)" 12)"
        row "1. RSS at the end, $((WARMUP_S + WINDOW_S))s (MiB)" "$(mib fig1_end_opswatch_vmrss_kib)" "monit $(mib fig1_end_monit_vmrss_kib)" "<= 12" \
            "$(verdict le "$(mib fig1_end_opswatch_vmrss_kib)" 12)"
        row "1. CPU s/min over ${WINDOW_S}s" "$(v fig1_opswatch_cpu_s_per_min)" "monit $(v fig1_monit_cpu_s_per_min)" "<= 0.02" \
            "$(verdict le "$(v fig1_opswatch_cpu_s_per_min)" 0.02)"
        row "1. probes in the window (expected $(v fig1_probes_expected))" "$(v fig1_probes_opswatch)" "monit $(v fig1_probes_monit)" "" ""
        row "1. checks up / down at the end" "$(v fig1_checks_up) / $(v fig1_checks_down)" "" "" ""
    fi
    if want 2; then
        row "2. CPU, $MANY_N checks/${MANY_EVERY_S}s (% of one core)" "$(v fig2_opswatch_cpu_pct_core)" "" "<= 2" \
            "$(verdict le "$(v fig2_opswatch_cpu_pct_core)" 2)"
        row "2. RSS after ${MANY_WARMUP_S}s / at the end (MiB)" "$(mib fig2_warm_opswatch_vmrss_kib) / $(mib fig2_end_opswatch_vmrss_kib)" "" "" ""
        row "2. probes in the window (expected $(v fig2_probes_expected))" "$(v fig2_probes)" "" "" ""
        row "2. checks up / down at the end" "$(v fig2_checks_up) / $(v fig2_checks_down)" "" "" ""
    fi
    if want 3; then
        row "3. alert latency, median of $(v fig3_runs_ok) (ms)" "$(v fig3_down_median_ms)" "" "<= 1000" \
            "$(verdict le "$(v fig3_down_median_ms)" 1000)"
        row "3. alert latency, max (ms)" "$(v fig3_down_max_ms)" "" "<= 1000" \
            "$(verdict le "$(v fig3_down_max_ms)" 1000)"
        row "3. RESOLVED latency, median / max (ms)" "$(v fig3_resolved_median_ms) / $(v fig3_resolved_max_ms)" "" "" ""
    fi
    echo
    if want 1; then
        echo "Figure 1 CPU by thread (ms over the window, schedstat): opswatch $(v fig1_opswatch_by_thread); monit $(v fig1_monit_by_thread)"
        echo "Figure 1 opswatch threads: $(v fig1_end_opswatch_thread_names); RssAnon $(mib fig1_end_opswatch_rssanon_kib) MiB, RssFile $(mib fig1_end_opswatch_rssfile_kib) MiB; log: $(v fig1_log_warn_lines) WARN, $(v fig1_log_error_lines) ERROR"
    fi
    if want 2; then
        echo "Figure 2 CPU by thread (ms over the window): $(v fig2_opswatch_by_thread)"
        echo "Figure 2 opswatch: RssAnon $(mib fig2_end_opswatch_rssanon_kib) MiB, RssFile $(mib fig2_end_opswatch_rssfile_kib) MiB, threads $(v fig2_end_opswatch_thread_names); log: $(v fig2_log_warn_lines) WARN, $(v fig2_log_error_lines) ERROR"
    fi
    if want 3; then
        echo "Figure 3 latencies (ms): $(v fig3_down_ms); failed probes answered before each alert: $(v fig3_failed_probes_before_alert); timed out: $(v fig3_runs_timed_out); log: $(v fig3_log_warn_lines) WARN ($(v fig3_log_unexpected_warn_lines) other than "check is DOWN"), $(v fig3_log_error_lines) ERROR"
    fi
    echo "Raw numbers: ${RAW#"$ROOT"/}"
} | tee "$BENCH_TMP/table.txt"
raw_section "table" "$BENCH_TMP/table.txt"
