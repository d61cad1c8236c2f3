#!/usr/bin/env bash
# What opswatch spends its CPU on, by syscall, in two phases:
#   floor   nothing to do: no [[http]], no host sampling, no Telegram, no PM2 (the "floor"
#           variant of checks_breakdown.sh)
#   probes  the same plus FLOOR_PROBES [[http]] checks every second against a local target, so
#           a window holds enough probes to divide by
# Each: after a warm-up, one window of `perf stat` (CPU time of the threads present, context
# switches) and one of `strace -c -f` (syscalls by kind); the target counts the probes.
# Usage: bash bench/idle_floor.sh   (as root, or with perf_event_paranoid/ptrace allowing it)
# Knobs: FLOOR_WARMUP_S=30 FLOOR_WINDOW_S=60 FLOOR_PROBES=20 (0 skips the probes phase)
# Raw output goes to bench/out/idle-floor-<date>.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

WARMUP_S=${FLOOR_WARMUP_S:-30}
WINDOW_S=${FLOOR_WINDOW_S:-60}
PROBES=${FLOOR_PROBES:-20}
for tool in perf strace; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install -y linux-perf strace)"
done

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/idle-floor-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-floor.XXXXXX)
declare -A R=()

cargo build --release >&2
BIN="$ROOT/target/release/opswatch"
rec_machine "$BIN"

# phase NAME CHECKS: one opswatch (floor config plus CHECKS [[http]] every 1s), measured.
phase() {
    local name=$1 checks=$2 dir port pid i c0 c1 c2 c3
    dir="$BENCH_TMP/$name"
    port=$(free_port)
    mkdir -p "$dir"
    {
        printf '[server]\nlisten = "127.0.0.1:%s"\n\n[storage]\nurl = "sqlite://%s/data/opswatch.db"\n\n[system]\nenabled = false\n\n[pm2]\nenabled = false\n' "$port" "$dir"
        for ((i = 1; i <= checks; i++)); do
            printf '\n[[http]]\nname = "p%02d"\nurl = "http://127.0.0.1:%s/health"\nevery = "1s"\n' "$i" "$T_PORT"
        done
    } >"$dir/opswatch.toml"
    head -20 "$dir/opswatch.toml" >"$BENCH_TMP/$name-config-head.toml"
    raw_section "$name: config (first 20 lines)" "$BENCH_TMP/$name-config-head.toml"
    start_opswatch "$name" "$dir" "$port"
    pid=$SPAWNED_PID
    log "$name: warm-up ${WARMUP_S}s, then perf stat ${WINDOW_S}s and strace -c ${WINDOW_S}s"
    sleep "$WARMUP_S"
    c0=$(probe_total)
    perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$pid" -- sleep "$WINDOW_S" \
        >"$BENCH_TMP/$name-perf.txt" 2>&1 || true
    c1=$(probe_total)
    raw_section "$name: perf stat -p (${WINDOW_S}s)" "$BENCH_TMP/$name-perf.txt"
    c2=$(probe_total)
    timeout -s INT "$WINDOW_S" strace -c -f -p "$pid" >"$BENCH_TMP/$name-strace.txt" 2>&1 || true
    c3=$(probe_total)
    raw_section "$name: strace -c -f -p (${WINDOW_S}s)" "$BENCH_TMP/$name-strace.txt"
    for t in /proc/"$pid"/task/*; do
        echo "$(cat "$t/comm") run_ns=$(cut -d' ' -f1 "$t/schedstat") slices=$(cut -d' ' -f3 "$t/schedstat")"
    done >"$BENCH_TMP/$name-threads.txt"
    raw_section "$name: threads since start (schedstat)" "$BENCH_TMP/$name-threads.txt"
    rec "${name}_task_clock_ms" "$(awk '/task-clock/ { print $1 }' "$BENCH_TMP/$name-perf.txt")"
    rec "${name}_context_switches" "$(awk '/context-switches/ { print $1 }' "$BENCH_TMP/$name-perf.txt")"
    rec "${name}_probes_perf_window" $((c1 - c0))
    rec "${name}_probes_strace_window" $((c3 - c2))
    rec "${name}_syscalls_strace_window" "$(awk '$NF == "total" { print $4 }' "$BENCH_TMP/$name-strace.txt")"
    stop_pid "$pid"
    echo "== $name: $((c1 - c0)) probes in the perf window, $((c3 - c2)) in the strace window"
    grep -v 'detached\|attached' "$BENCH_TMP/$name-perf.txt" "$BENCH_TMP/$name-strace.txt"
}

T_PORT=$(free_port)
spawn "$BENCH_TMP/target.out" python3 "$ROOT/bench/http_target.py" serve "$T_PORT"
wait_port "$T_PORT" 5 || die "the HTTP target did not start"
probe_total() { python3 "$ROOT/bench/http_target.py" counts "http://127.0.0.1:$T_PORT" | sed -n 's/^count_total=//p'; }

phase floor 0
if ((PROBES > 0)); then phase probes "$PROBES"; fi
echo "Raw: ${RAW#"$ROOT"/}"
