#!/usr/bin/env bash
# Spine figures of opswatch beside its peers, in one run on one machine with one load tool:
#   1. startup to the first /health 200 on a fresh SQLite data dir (peer: monit; Alertmanager too)
#   2. idle RSS after 60 s (peers: monit, Alertmanager)
#   3. release binary size
#   4. /health throughput and latency under wrk while a slow [[http]] probe hangs
#      (peer: Alertmanager's /-/healthy)
# Usage: bash bench/spine.sh      (as root when wrk/monit/prometheus-alertmanager are missing)
# Knobs (environment): SPINE_RUNS=20 SPINE_IDLE_S=60 SPINE_WRK_DURATION=10s SPINE_SLOW_S=30
# Raw numbers go to bench/out/spine-<date>.txt; the table is printed at the end.
# Only loopback addresses are used; every process started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

RUNS=${SPINE_RUNS:-20}
IDLE_S=${SPINE_IDLE_S:-60}
WRK_DURATION=${SPINE_WRK_DURATION:-10s}
SLOW_S=${SPINE_SLOW_S:-30}
WARMUP=2s

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

for tool in python3 curl cargo awk; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/spine-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-spine.XXXXXX)
declare -A R=()

# ---------------------------------------------------------------- peers, build, machine
ensure_peers
log "building the release binary (may wait on cargo's lock)"
cargo build --release >&2
BIN="$ROOT/target/release/opswatch"
[[ -x $BIN ]] || die "$BIN was not built"
AM_BIN=$(command -v prometheus-alertmanager)
MONIT_BIN=$(command -v monit)

rec date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
rec git_head "$(git -C "$ROOT" --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" --no-optional-locks diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo '+uncommitted')"
rec nproc "$(nproc)"
rec mem_total_mib "$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)"
rec kernel "$(uname -r)"
rec cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
rec os "$(. /etc/os-release && echo "$PRETTY_NAME")"
rec rustc "$(rustc --version)"
rec opswatch_version "$("$BIN" --version)"
rec monit_version "$("$MONIT_BIN" -V | head -1)"
rec alertmanager_version "$("$AM_BIN" --version 2>&1 | head -1)"
rec wrk_version "$(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }')"
rec loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
rec rustc_procs_start "$(pgrep -c -x rustc || true)"

# ---------------------------------------------------------------- 3. binary size
rec opswatch_bin_bytes "$(stat -c %s "$BIN")"
rec monit_bin_bytes "$(stat -L -c %s "$MONIT_BIN")"
rec alertmanager_bin_bytes "$(stat -L -c %s "$AM_BIN")"

# ---------------------------------------------------------------- config templates
# {dir} and {port} are filled in per instance (startup_timer.py does it per run).
cat >"$BENCH_TMP/opswatch.toml.tmpl" <<'EOF'
[server]
listen = "127.0.0.1:{port}"
[storage]
url = "sqlite://{dir}/data/opswatch.db"
EOF
cat >"$BENCH_TMP/monitrc.tmpl" <<'EOF'
set daemon 30
set logfile {dir}/monit.log
set pidfile {dir}/monit.pid
set idfile {dir}/monit.id
set statefile {dir}/monit.state
set httpd port {port} and use address 127.0.0.1
    allow 127.0.0.1
EOF
cat >"$BENCH_TMP/alertmanager.yml" <<'EOF'
route:
  receiver: "null"
receivers:
  - name: "null"
EOF
# fill TEMPLATE DIR PORT > FILE
fill() { sed -e "s|{dir}|$2|g" -e "s|{port}|$3|g" "$1"; }

# ---------------------------------------------------------------- 1. startup
startup() { # startup NAME PATH [--file ...] -- CMD...
    local name=$1 path=$2
    shift 2
    log "startup: $name, $RUNS runs"
    mkdir -p "$BENCH_TMP/startup-$name"
    python3 "$ROOT/bench/startup_timer.py" --runs "$RUNS" --path "$path" \
        --tmp "$BENCH_TMP/startup-$name" "$@" >"$BENCH_TMP/startup-$name.txt"
    raw_section "startup $name" "$BENCH_TMP/startup-$name.txt"
    rec_cmd "startup_${name}_" grep -E '^(median_ms|max_ms|min_ms|mean_ms|runs_ms|runs_with_non200_first)=' "$BENCH_TMP/startup-$name.txt"
    rec "startup_${name}_first_non200_body" "$(grep -m1 -o 'first_non200_body=.*' "$BENCH_TMP/startup-$name.txt" | cut -d= -f2- || true)"
}
startup opswatch /health --file "opswatch.toml=$BENCH_TMP/opswatch.toml.tmpl" \
    -- "$BIN" --config '{dir}/opswatch.toml' serve
startup monit /_ping --file "monitrc=$BENCH_TMP/monitrc.tmpl" \
    -- "$MONIT_BIN" -I -c '{dir}/monitrc'
startup alertmanager /-/healthy \
    -- "$AM_BIN" --config.file="$BENCH_TMP/alertmanager.yml" --storage.path='{dir}/data' \
    --web.listen-address='127.0.0.1:{port}' --cluster.listen-address=

# ---------------------------------------------------------------- long-running instances
SLOW_PORT=$(free_port)
spawn "$BENCH_TMP/slow.out" python3 "$ROOT/bench/slow_target.py" serve "$SLOW_PORT" "$SLOW_S" "$BENCH_TMP/slow.log"
wait_port "$SLOW_PORT" 5 || die "the slow target did not start"

# opswatch as benchmarked: defaults + one [[http]] check that hangs on the slow target.
OW_DIR="$BENCH_TMP/opswatch"
OW_PORT=$(free_port)
mkdir -p "$OW_DIR"
{
    fill "$BENCH_TMP/opswatch.toml.tmpl" "$OW_DIR" "$OW_PORT"
    cat <<EOF

[[http]]
name = "slow"
url = "http://127.0.0.1:$SLOW_PORT/slow"
every = "1s"
timeout = "60s"
EOF
} >"$OW_DIR/opswatch.toml"
raw_section "opswatch config (benchmarked instance)" "$OW_DIR/opswatch.toml"

# opswatch with defaults only (no [[http]]), for the idle RSS figure without the check.
OWD_DIR="$BENCH_TMP/opswatch-defaults"
OWD_PORT=$(free_port)
mkdir -p "$OWD_DIR"
fill "$BENCH_TMP/opswatch.toml.tmpl" "$OWD_DIR" "$OWD_PORT" >"$OWD_DIR/opswatch.toml"

MONIT_DIR="$BENCH_TMP/monit"
MONIT_PORT=$(free_port)
mkdir -p "$MONIT_DIR"
fill "$BENCH_TMP/monitrc.tmpl" "$MONIT_DIR" "$MONIT_PORT" >"$MONIT_DIR/monitrc"
chmod 600 "$MONIT_DIR/monitrc"

AM_DIR="$BENCH_TMP/alertmanager"
AM_PORT=$(free_port)
mkdir -p "$AM_DIR/data"

log "starting opswatch (with slow check), opswatch (defaults), monit, alertmanager"
(cd "$OW_DIR" && exec "$BIN" --config "$OW_DIR/opswatch.toml" serve) >"$BENCH_TMP/opswatch.log" 2>&1 </dev/null &
OW_PID=$!
BENCH_PIDS+=("$OW_PID")
(cd "$OWD_DIR" && exec "$BIN" --config "$OWD_DIR/opswatch.toml" serve) >"$BENCH_TMP/opswatch-defaults.log" 2>&1 </dev/null &
OWD_PID=$!
BENCH_PIDS+=("$OWD_PID")
spawn "$BENCH_TMP/monit.out" "$MONIT_BIN" -I -c "$MONIT_DIR/monitrc"
MONIT_PID=$SPAWNED_PID
spawn "$BENCH_TMP/alertmanager.log" "$AM_BIN" --config.file="$BENCH_TMP/alertmanager.yml" \
    --storage.path="$AM_DIR/data" --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
AM_PID=$SPAWNED_PID

wait_http "http://127.0.0.1:$OW_PORT/health" 15 || die "opswatch (with slow check) never answered 200 on /health; see its log: $(tail -5 "$BENCH_TMP/opswatch.log")"
wait_http "http://127.0.0.1:$OWD_PORT/health" 15 || die "opswatch (defaults) never answered 200 on /health"
wait_http "http://127.0.0.1:$MONIT_PORT/_ping" 15 || die "monit never answered on /_ping"
wait_http "http://127.0.0.1:$AM_PORT/-/healthy" 15 || die "alertmanager never answered on /-/healthy"
curl -sS "http://127.0.0.1:$OW_PORT/health" >"$BENCH_TMP/health-body.json"
raw_section "opswatch /health body at start" "$BENCH_TMP/health-body.json"

# ---------------------------------------------------------------- 2. idle RSS
log "idle for ${IDLE_S}s"
sleep "$IDLE_S"
rec_cmd idle_opswatch_ python3 "$ROOT/bench/procmem.py" "$OW_PID"
rec_cmd idle_opswatch_defaults_ python3 "$ROOT/bench/procmem.py" "$OWD_PID"
rec_cmd idle_monit_ python3 "$ROOT/bench/procmem.py" "$MONIT_PID"
rec_cmd idle_alertmanager_ python3 "$ROOT/bench/procmem.py" "$AM_PID"
rec idle_opswatch_health_code "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OW_PORT/health")"
slow_now=$(python3 "$ROOT/bench/slow_target.py" inflight "$BENCH_TMP/slow.log" "$(date +%s.%N)" "$(date +%s.%N)")
rec idle_slow_requests_total "$(sed -n 's/^requests_total=//p' <<<"$slow_now")"
rec idle_slow_inflight "$(sed -n 's/^inflight_whole_window=//p' <<<"$slow_now")"

# The two instances not under load go away, so they do not share the CPU with wrk.
stop_pid "$OWD_PID"
stop_pid "$MONIT_PID"

# ---------------------------------------------------------------- 4. /health under wrk
load() { # load NAME URL
    local name=$1 url=$2 t0 t1
    log "wrk warm-up $WARMUP, then -t2 -c4 -d$WRK_DURATION: $name"
    wrk -t2 -c4 -d"$WARMUP" "$url" >/dev/null
    t0=$(date +%s.%N)
    wrk -t2 -c4 -d"$WRK_DURATION" --latency "$url" >"$BENCH_TMP/wrk-$name.txt"
    t1=$(date +%s.%N)
    # CPU pressure (PSI) and compilers running right after the load: evidence of how much the
    # latency tail owes to sharing the CPU.
    rec "wrk_${name}_cpu_psi" "$(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
    rec "wrk_${name}_rustc_procs" "$(pgrep -c -x rustc || true)"
    raw_section "wrk $name ($url)" "$BENCH_TMP/wrk-$name.txt"
    rec_cmd "wrk_${name}_" wrk_summary "$BENCH_TMP/wrk-$name.txt"
    rec "wrk_${name}_t0" "$t0"
    rec "wrk_${name}_t1" "$t1"
}
load opswatch "http://127.0.0.1:$OW_PORT/health"
rec_cmd wrk_opswatch_slow_ python3 "$ROOT/bench/slow_target.py" inflight "$BENCH_TMP/slow.log" "${R[wrk_opswatch_t0]}" "${R[wrk_opswatch_t1]}"
rec wrk_opswatch_health_code_after "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OW_PORT/health")"
rec_cmd loaded_opswatch_ python3 "$ROOT/bench/procmem.py" "$OW_PID"
load alertmanager "http://127.0.0.1:$AM_PORT/-/healthy"
rec_cmd loaded_alertmanager_ python3 "$ROOT/bench/procmem.py" "$AM_PID"
rec wrk_ratio "$(awk -v a="${R[wrk_opswatch_rps]}" -v b="${R[wrk_alertmanager_rps]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
rec loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
rec rustc_procs_end "$(pgrep -c -x rustc || true)"

raw_section "opswatch log (benchmarked instance)" "$BENCH_TMP/opswatch.log"
raw_section "slow target log" "$BENCH_TMP/slow.log"

# ---------------------------------------------------------------- table
mib() { kib_to_mib "${R[$1]}"; }
ms() { printf '%.2f' "${R[$1]}"; }
row() { printf '| %-44s | %-12s | %-28s | %-18s | %-5s |\n' "$@"; }
{
    echo
    echo "Spine figures, $(date -u +%Y-%m-%d), ${R[nproc]} CPU, ${R[mem_total_mib]} MiB RAM, kernel ${R[kernel]}, load ${R[loadavg_start]} -> ${R[loadavg_end]}"
    row "Figure" "opswatch" "peers (same run)" "target" "ok?"
    row "--------------------------------------------" "------------" "----------------------------" "------------------" "-----"
    row "Startup to first 200, median of $RUNS (ms)" "$(ms startup_opswatch_median_ms)" "monit $(ms startup_monit_median_ms); AM $(ms startup_alertmanager_median_ms)" "<= 50" \
        "$(verdict le "${R[startup_opswatch_median_ms]}" 50)"
    row "Startup to first 200, max of $RUNS (ms)" "$(ms startup_opswatch_max_ms)" "monit $(ms startup_monit_max_ms); AM $(ms startup_alertmanager_max_ms)" "<= 50" \
        "$(verdict le "${R[startup_opswatch_max_ms]}" 50)"
    row "Startup runs answering non-200 before 200" "${R[startup_opswatch_runs_with_non200_first]}/$RUNS" "monit ${R[startup_monit_runs_with_non200_first]}/$RUNS; AM ${R[startup_alertmanager_runs_with_non200_first]}/$RUNS" "" ""
    row "Idle RSS after ${IDLE_S}s, with slow [[http]] (MiB)" "$(mib idle_opswatch_vmrss_kib)" "monit $(mib idle_monit_vmrss_kib); AM $(mib idle_alertmanager_vmrss_kib)" "<= 12" \
        "$(verdict le "$(mib idle_opswatch_vmrss_kib)" 12)"
    row "Idle RSS after ${IDLE_S}s, defaults only (MiB)" "$(mib idle_opswatch_defaults_vmrss_kib)" "" "<= 12" \
        "$(verdict le "$(mib idle_opswatch_defaults_vmrss_kib)" 12)"
    row "Threads when idle (with check / defaults)" "${R[idle_opswatch_threads]} / ${R[idle_opswatch_defaults_threads]}" "monit ${R[idle_monit_threads]}; AM ${R[idle_alertmanager_threads]}" "" ""
    row "Release binary size (MiB)" "$(bytes_to_mib "${R[opswatch_bin_bytes]}")" "monit $(bytes_to_mib "${R[monit_bin_bytes]}"); AM $(bytes_to_mib "${R[alertmanager_bin_bytes]}")" "<= 20" \
        "$(verdict le "$(bytes_to_mib "${R[opswatch_bin_bytes]}")" 20)"
    row "/health req/s (wrk -t2 -c4 -d$WRK_DURATION)" "${R[wrk_opswatch_rps]}" "AM /-/healthy ${R[wrk_alertmanager_rps]}" ">= 1.2x AM" \
        "$(verdict ge "${R[wrk_ratio]}" 1.2)"
    row "  ratio opswatch / AM" "${R[wrk_ratio]}x" "" ">= 1.2" "$(verdict ge "${R[wrk_ratio]}" 1.2)"
    row "/health p50 (ms)" "$(ms wrk_opswatch_p50_ms)" "AM $(ms wrk_alertmanager_p50_ms)" "" ""
    row "/health p99 (ms)" "$(ms wrk_opswatch_p99_ms)" "AM $(ms wrk_alertmanager_p99_ms)" "<= 2" \
        "$(verdict le "${R[wrk_opswatch_p99_ms]}" 2)"
    row "Non-2xx / socket errors under wrk" "${R[wrk_opswatch_non2xx]} / ${R[wrk_opswatch_socket_errors]}" "AM ${R[wrk_alertmanager_non2xx]} / ${R[wrk_alertmanager_socket_errors]}" "0" ""
    row "RSS after wrk (MiB)" "$(mib loaded_opswatch_vmrss_kib)" "AM $(mib loaded_alertmanager_vmrss_kib)" "" ""
    echo
    echo "Slow check during wrk: target got ${R[wrk_opswatch_slow_requests_total]} request(s) in total;" \
        "${R[wrk_opswatch_slow_inflight_whole_window]} hanging for the whole wrk window" \
        "(0 means the [[http]] check did not run, so the figure is without a probe in flight)."
    echo "CPU pressure right after wrk (PSI some avg10/avg60): opswatch run: ${R[wrk_opswatch_cpu_psi]#some }; AM run: ${R[wrk_alertmanager_cpu_psi]#some }." \
        "rustc processes of other builds: ${R[wrk_opswatch_rustc_procs]} / ${R[wrk_alertmanager_rustc_procs]}."
    if [[ ${R[startup_opswatch_runs_with_non200_first]} != 0 ]]; then
        echo "opswatch startup: in ${R[startup_opswatch_runs_with_non200_first]}/$RUNS runs /health answered non-200 before its first 200; first such body: ${R[startup_opswatch_first_non200_body]}"
    fi
    echo "opswatch threads: ${R[idle_opswatch_thread_names]} (with check); ${R[idle_opswatch_defaults_thread_names]} (defaults)."
    echo "opswatch idle memory: RssAnon $(mib idle_opswatch_rssanon_kib) MiB, RssFile $(mib idle_opswatch_rssfile_kib) MiB;" \
        "largest mappings: ${R[idle_opswatch_top1]:-}, ${R[idle_opswatch_top2]:-}, ${R[idle_opswatch_top3]:-} (KiB:name:count)"
    echo "Raw numbers: ${RAW#"$ROOT"/}"
} | tee "$BENCH_TMP/table.txt"
raw_section "table" "$BENCH_TMP/table.txt"
