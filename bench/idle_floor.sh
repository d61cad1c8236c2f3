#!/usr/bin/env bash
# What an opswatch with nothing to do spends its CPU on: no [[http]], no host sampling, no
# Telegram, no PM2 (the "floor" variant of checks_breakdown.sh). After a warm-up, one window of
# `perf stat` (CPU time, context switches) and one of `strace -c -f` (syscalls by kind).
# Usage: bash bench/idle_floor.sh   (as root, or with perf_event_paranoid/ptrace allowing it)
# Knobs: FLOOR_WARMUP_S=30 FLOOR_WINDOW_S=60
# Raw output goes to bench/out/idle-floor-<date>.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

WARMUP_S=${FLOOR_WARMUP_S:-30}
WINDOW_S=${FLOOR_WINDOW_S:-60}
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

DIR="$BENCH_TMP/floor"
PORT=$(free_port)
mkdir -p "$DIR"
printf '[server]\nlisten = "127.0.0.1:%s"\n\n[storage]\nurl = "sqlite://%s/data/opswatch.db"\n\n[system]\nenabled = false\n\n[pm2]\nenabled = false\n' \
    "$PORT" "$DIR" >"$DIR/opswatch.toml"
raw_section "config" "$DIR/opswatch.toml"
start_opswatch floor "$DIR" "$PORT"
PID=$SPAWNED_PID
log "idle floor: warm-up ${WARMUP_S}s, then perf stat ${WINDOW_S}s and strace -c ${WINDOW_S}s"
sleep "$WARMUP_S"
perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$PID" -- sleep "$WINDOW_S" \
    >"$BENCH_TMP/perf.txt" 2>&1 || true
raw_section "perf stat -p (${WINDOW_S}s)" "$BENCH_TMP/perf.txt"
timeout -s INT "$WINDOW_S" strace -c -f -p "$PID" >"$BENCH_TMP/strace.txt" 2>&1 || true
raw_section "strace -c -f -p (${WINDOW_S}s)" "$BENCH_TMP/strace.txt"
{
    for t in /proc/"$PID"/task/*; do
        echo "$(cat "$t/comm") run_ns=$(cut -d' ' -f1 "$t/schedstat") slices=$(cut -d' ' -f3 "$t/schedstat")"
    done
} >"$BENCH_TMP/threads.txt"
raw_section "threads since start (schedstat)" "$BENCH_TMP/threads.txt"
rec task_clock_ms "$(awk '/task-clock/ { print $1 }' "$BENCH_TMP/perf.txt")"
rec context_switches "$(awk '/context-switches/ { print $1 }' "$BENCH_TMP/perf.txt")"
cat "$BENCH_TMP/perf.txt" "$BENCH_TMP/strace.txt" | grep -v 'detached\|attached'
echo "Raw: ${RAW#"$ROOT"/}"
