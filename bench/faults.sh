#!/usr/bin/env bash
# Fault figures of opswatch (issue 18), release build, one run on one machine:
#   1. the three full-disk scenarios (data dir on a 3 MiB tmpfs), FAULTS_RUNS runs each:
#      (a) a target goes DOWN while the disk is full, then space is freed;
#      (b) the same, with opswatch stopped and started 3 times while full (as systemd would);
#      (c) an incident is open, the disk fills, the target recovers, then space is freed.
#      Figure: DOWN and RESOLVED messages the fake Telegram accepted per incident (target 1).
#   2. 2,000 connections held open with partial requests for 60 s (re-opened when the server
#      closes them): /health p99 (target <= 10 ms), failed probes of a 1 s check during the
#      window (target 0), RSS before and after (VmRSS) and peak (VmHWM).
# Usage: sudo bash bench/faults.sh        (root: figure 1 mounts tmpfs)
# Knobs: FAULTS_RUNS=10 FAULTS_CONNS=2000 FAULTS_HOLD_S=60 FAULTS_FIGURES="1 2"
#        FAULTS_BIN=path (skip the release build; for trials of the script only)
# Raw numbers go to bench/out/faults-<date>.txt; the table is printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

RUNS=${FAULTS_RUNS:-10}
CONNS=${FAULTS_CONNS:-2000}
HOLD_S=${FAULTS_HOLD_S:-60}
FIGURES=${FAULTS_FIGURES:-1 2}
want() { [[ " $FIGURES " == *" $1 "* ]]; }

MOUNTS=()
cleanup() {
    bench_cleanup_keep_tmp
    local m
    for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
    [[ -n $BENCH_TMP && -d $BENCH_TMP ]] && rm -rf -- "$BENCH_TMP"
}
bench_cleanup_keep_tmp() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
    BENCH_PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in python3 curl cargo awk mount; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/faults-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-faults.XXXXXX)
declare -A R=()

BIN=${FAULTS_BIN:-}
if [[ -z $BIN ]]; then
    log "building the release binary (may wait on cargo's lock)"
    cargo build --release >&2
    BIN="$ROOT/target/release/opswatch"
fi
[[ -x $BIN ]] || die "$BIN was not built"
rec_machine "$BIN"
rec knobs "RUNS=$RUNS CONNS=$CONNS HOLD_S=$HOLD_S FIGURES=$FIGURES"

TARGET_PORT=$(free_port)
spawn "$BENCH_TMP/target.out" python3 "$ROOT/bench/http_target.py" serve "$TARGET_PORT"
wait_port "$TARGET_PORT" 5 || die "the target did not start"
set_target() { curl -fsS -o /dev/null "http://127.0.0.1:$TARGET_PORT/_bench/set?status=$1"; }

# config DIR DB PORT TG_PORT: one check on the target every second, DOWN after 2 failures.
config() {
    cat >"$1/opswatch.toml" <<CFG
[server]
listen = "127.0.0.1:$3"
[storage]
url = "sqlite://$2"
[telegram]
bot_token = "7000000001:bench-not-a-real-token"
chat_id = "1"
api_base = "http://127.0.0.1:$4"
[system]
enabled = false
[pm2]
enabled = false
[[http]]
name = "api"
url = "http://127.0.0.1:$TARGET_PORT/health"
every = "1s"
timeout = "1s"
failures = 2
CFG
}

# start_opswatch DIR: as systemd starts it (soft open-files limit 1,024); sets OPSWATCH_PID.
start_opswatch() {
    spawn "$1/opswatch.log" bash -c "ulimit -Sn 1024; exec '$BIN' --config '$1/opswatch.toml' serve"
    OPSWATCH_PID=$SPAWNED_PID
}

# wait_for SECONDS CMD...: until CMD succeeds, or fail.
wait_for() {
    local end=$(($(date +%s) + $1))
    shift
    until "$@"; do
        (($(date +%s) < end)) || return 1
        sleep 0.2
    done
}
count_kind() { python3 "$ROOT/bench/fake_telegram.py" count "$1" | awk -F= -v k="messages_$2" '$1 == k { print $2 }'; }
has_at_least() { (($(count_kind "$1" "$2") >= $3)); }
health_is() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/health") == "$2" ]]; }
fill() { dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null || true; }
free_disk() { rm -f "$1/filler"; }

# ---------------------------------------------------------------- 1. full disk
# one_run SCENARIO N: sets RUN_RESULT to "DOWNS RESOLVEDS" accepted by the chat at the end
# (not printed: a command substitution would run it in a subshell that forgets its pids).
one_run() {
    local scenario=$1 n=$2 dir disk port tg tglog
    dir="$BENCH_TMP/$scenario-$n"
    disk="$dir/disk"
    mkdir -p "$disk"
    mount -t tmpfs -o size=3m tmpfs "$disk"
    MOUNTS+=("$disk")
    port=$(free_port)
    tg=$(free_port)
    tglog="$dir/telegram.log"
    spawn "$dir/telegram.out" python3 "$ROOT/bench/fake_telegram.py" serve "$tg" "$tglog"
    local tg_pid=$SPAWNED_PID
    wait_port "$tg" 5 || die "fake Telegram did not start"
    config "$dir" "$disk/opswatch.db" "$port" "$tg"
    set_target 200
    start_opswatch "$dir"
    wait_for 30 health_is "$port" 200 || die "opswatch did not become healthy ($dir)"
    sleep 3
    case $scenario in
    a)
        fill "$disk"
        set_target 500
        wait_for 30 health_is "$port" 503 || log "run $scenario$n: /health never said 503"
        sleep 5
        free_disk "$disk"
        wait_for 60 has_at_least "$tglog" down 1 || log "run $scenario$n: no DOWN"
        ;;
    b)
        fill "$disk"
        set_target 500
        sleep 5
        stop_pid "$OPSWATCH_PID"
        for _ in 1 2 3; do
            start_opswatch "$dir"
            sleep 5
            stop_pid "$OPSWATCH_PID"
        done
        free_disk "$disk"
        start_opswatch "$dir"
        wait_for 60 has_at_least "$tglog" down 1 || log "run $scenario$n: no DOWN"
        ;;
    c)
        set_target 500
        wait_for 60 has_at_least "$tglog" down 1 || log "run $scenario$n: no DOWN"
        fill "$disk"
        set_target 200
        sleep 8
        free_disk "$disk"
        ;;
    esac
    set_target 200
    wait_for 60 has_at_least "$tglog" resolved 1 || log "run $scenario$n: no RESOLVED"
    # Time for a duplicate to show up, had one been queued.
    sleep 5
    RUN_RESULT="$(count_kind "$tglog" down) $(count_kind "$tglog" resolved)"
    stop_pid "$OPSWATCH_PID"
    stop_pid "$tg_pid"
    umount -l "$disk"
}

if want 1; then
    for scenario in a b c; do
        ok=0
        all=""
        for n in $(seq "$RUNS"); do
            log "full disk: scenario $scenario, run $n of $RUNS"
            one_run "$scenario" "$n"
            got=$RUN_RESULT
            all+="${got// /\/} "
            [[ $got == "1 1" ]] && ok=$((ok + 1))
        done
        rec "disk_${scenario}_runs" "$RUNS"
        rec "disk_${scenario}_exactly_one_each" "$ok"
        rec "disk_${scenario}_down_resolved_per_run" "${all% }"
    done
fi

# ---------------------------------------------------------------- 2. held connections
if want 2; then
    dir="$BENCH_TMP/conns"
    mkdir -p "$dir/data"
    port=$(free_port)
    tg=$(free_port)
    spawn "$dir/telegram.out" python3 "$ROOT/bench/fake_telegram.py" serve "$tg" "$dir/telegram.log"
    wait_port "$tg" 5 || die "fake Telegram did not start"
    config "$dir" "$dir/data/opswatch.db" "$port" "$tg"
    set_target 200
    start_opswatch "$dir"
    wait_for 30 health_is "$port" 200 || die "opswatch did not become healthy"
    sleep 5
    rss_before=$(awk '/^VmRSS:/ { print $2 }' "/proc/$OPSWATCH_PID/status")
    since_ms=$(($(date +%s%3N)))
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    log "holding $CONNS half-open connections for $HOLD_S s"
    hold_out=$(python3 "$ROOT/bench/hold_conns.py" "$port" "$CONNS" "$HOLD_S")
    rec_kv <<<"$hold_out"
    rss_after=$(awk '/^VmRSS:/ { print $2 }' "/proc/$OPSWATCH_PID/status")
    rss_peak=$(awk '/^VmHWM:/ { print $2 }' "/proc/$OPSWATCH_PID/status")
    rec rss_before_mib "$(kib_to_mib "$rss_before")"
    rec rss_after_mib "$(kib_to_mib "$rss_after")"
    rec rss_peak_mib "$(kib_to_mib "$rss_peak")"
    results=$(curl -fsS "http://127.0.0.1:$port/api/v1/checks/api/results?since=1h&limit=1000")
    rec_cmd "" python3 -c '
import json, sys
since = int(sys.argv[1])
rs = [r for r in json.loads(sys.argv[2])["results"] if r["at_ms"] >= since]
failed = sum(1 for r in rs if not r["ok"])
print("probes_in_window=%d" % len(rs))
print("probes_failed=%d" % failed)
' "$since_ms" "$results"
    rec alerts_sent "$(python3 "$ROOT/bench/fake_telegram.py" count "$dir/telegram.log" | awk -F= '$1 == "messages_total" { print $2 }')"
fi

# ---------------------------------------------------------------- table
printf '\n%-58s %-22s %s\n' "figure" "measured" "target"
if want 1; then
    for s in a b c; do
        printf '%-58s %-22s %s\n' "full disk ($s): runs with exactly 1 DOWN + 1 RESOLVED" \
            "${R[disk_${s}_exactly_one_each]} of ${R[disk_${s}_runs]}" "all"
    done
fi
if want 2; then
    printf '%-58s %-22s %s\n' "/health p99 with $CONNS half-open connections (ms)" "${R[health_p99_ms]}" "<= 10 $(verdict le "${R[health_p99_ms]}" 10)"
    printf '%-58s %-22s %s\n' "/health non-200 or errors" "$((R[health_non200] + R[health_errors])) of ${R[health_requests]}" "0"
    printf '%-58s %-22s %s\n' "failed probes of the 1 s check in the window" "${R[probes_failed]} of ${R[probes_in_window]}" "0"
    printf '%-58s %-22s %s\n' "RSS before / after / peak (MiB)" "${R[rss_before_mib]} / ${R[rss_after_mib]} / ${R[rss_peak_mib]}" "stated"
    printf '%-58s %-22s %s\n' "connections closed by the server (header timeout)" "${R[closed_by_server]}" "stated"
fi
log "raw figures: $RAW"
