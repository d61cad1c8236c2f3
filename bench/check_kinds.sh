#!/usr/bin/env bash
# Cost per probe of the check kinds (issue 10: "the new TCP kind at the same cost per probe as
# HTTP or less"), measured by difference in one run on one machine. Three release opswatch
# instances run side by side over the same window, host sampling, PM2 and Telegram off:
#   floor   no checks: the daemon's own idle cost (scheduler, store probe, roll-up, web server)
#   tcp     N [[tcp]] checks every EVERY_S against a local listener (connect, close)
#   http    N [[http]] checks every EVERY_S against the same listener (GET /health, 200)
# CPU is utime+stime of /proc/PID/stat over the window; probes are the growth of
# opswatch_check_duration_seconds_count on each instance's /metrics, read back to back with
# the CPU so both cover the same moments. Per probe:
#   (cpu_s(kind) - cpu_s(floor)) / probes(kind)      and, without the floor, cpu_s / probes.
# The listener is bench/http_target.py (a Python thread per connection; its CPU is not
# counted): port A answers the HTTP checks, port B takes the TCP checks' connections.
# Usage: bash bench/check_kinds.sh
# Knobs: KINDS_BIN (a binary to measure instead of building target/release/opswatch),
#        KINDS_N=200 KINDS_EVERY_S=1 KINDS_WARMUP_S=30 KINDS_WINDOW_S=60 KINDS_ROUNDS=1
#        (rounds repeat the window on the same instances, one table row each)
# Raw numbers go to bench/out/check-kinds-<date>.txt; the table is printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

N=${KINDS_N:-200}
EVERY_S=${KINDS_EVERY_S:-1}
WARMUP_S=${KINDS_WARMUP_S:-30}
WINDOW_S=${KINDS_WINDOW_S:-60}
ROUNDS=${KINDS_ROUNDS:-1}

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/check-kinds-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-kinds.XXXXXX)
declare -A R=()

if [[ -n ${KINDS_BIN:-} ]]; then
    BIN=$KINDS_BIN
else
    log "building the release binary (may wait on cargo's lock)"
    cargo build --release >&2
    BIN="$ROOT/target/release/opswatch"
fi
[[ -x $BIN ]] || die "$BIN was not built"
rec_machine "$BIN"
rec knobs "N=$N EVERY_S=$EVERY_S WARMUP_S=$WARMUP_S WINDOW_S=$WINDOW_S ROUNDS=$ROUNDS"

HTTP_PORT=$(free_port)
TCP_PORT=$(free_port)
spawn "$BENCH_TMP/target.out" python3 "$ROOT/bench/http_target.py" serve "$HTTP_PORT,$TCP_PORT"
wait_port "$HTTP_PORT" 5 || die "the target did not start"

# config DIR PORT KIND(floor|tcp|http)
config() {
    local dir=$1 port=$2 kind=$3 i
    printf '[server]\nlisten = "127.0.0.1:%s"\n\n[storage]\nurl = "sqlite://%s/data/opswatch.db"\n' "$port" "$dir"
    printf '\n[system]\nenabled = false\n\n[pm2]\nenabled = false\n'
    for ((i = 1; i <= N; i++)); do
        case $kind in
        tcp) printf '\n[[tcp]]\nname = "t%03d"\naddress = "127.0.0.1:%s"\nevery = "%ss"\ntimeout = "%ss"\n' \
            "$i" "$TCP_PORT" "$EVERY_S" "$EVERY_S" ;;
        http) printf '\n[[http]]\nname = "h%03d"\nurl = "http://127.0.0.1:%s/health"\nevery = "%ss"\ntimeout = "%ss"\n' \
            "$i" "$HTTP_PORT" "$EVERY_S" "$EVERY_S" ;;
        esac
    done
}

KINDS=(floor tcp http)
declare -A PID=() PORT=()
for k in "${KINDS[@]}"; do
    dir="$BENCH_TMP/$k"
    PORT[$k]=$(free_port)
    mkdir -p "$dir"
    config "$dir" "${PORT[$k]}" "$k" >"$dir/opswatch.toml"
    "$BIN" --config "$dir/opswatch.toml" config check >/dev/null || die "the $k config is rejected"
    start_opswatch "$k" "$dir" "${PORT[$k]}"
    PID[$k]=$SPAWNED_PID
done
head -12 "$BENCH_TMP/tcp/opswatch.toml" >"$BENCH_TMP/tcp-head.toml"
raw_section "tcp config (first 12 lines)" "$BENCH_TMP/tcp-head.toml"
head -12 "$BENCH_TMP/http/opswatch.toml" >"$BENCH_TMP/http-head.toml"
raw_section "http config (first 12 lines)" "$BENCH_TMP/http-head.toml"

probes() { metric_sum "http://127.0.0.1:${PORT[$1]}/metrics" '^opswatch_check_duration_seconds_count'; }
# cpu_ticks PID: utime+stime of the process (fields 14 and 15 of /proc/PID/stat, clock ticks).
cpu_ticks() { awk '{ sub(/.*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
# snap KIND: "<epoch s> <probes> <cpu ticks>" of one instance, the three read back to back so
# that the probes and the CPU of a window cover the same moments.
snap() {
    local p=0
    [[ $1 == floor ]] || p=$(probes "$1")
    echo "$(date +%s.%N) $p $(cpu_ticks "${PID[$1]}")"
}

log "$N tcp and $N http checks every ${EVERY_S}s beside an idle instance; warm-up ${WARMUP_S}s, $ROUNDS window(s) of ${WINDOW_S}s"
sleep "$WARMUP_S"
for ((r = 1; r <= ROUNDS; r++)); do
    declare -A A=() B=()
    for k in "${KINDS[@]}"; do A[$k]=$(snap "$k"); done
    sleep "$WINDOW_S"
    for k in "${KINDS[@]}"; do B[$k]=$(snap "$k"); done
    for k in "${KINDS[@]}"; do
        rec_kv < <(awk -v a="${A[$k]}" -v b="${B[$k]}" -v tck="$TCK" -v k="r${r}_${k}_" 'BEGIN {
            split(a, x, " "); split(b, y, " ")
            wall = y[1] - x[1]; cpu = (y[3] - x[3]) / tck
            printf "%swall_s=%.2f\n%scpu_s=%.2f\n%sprobes=%d\n", k, wall, k, cpu, k, y[2] - x[2]
            printf "%scpu_s_per_min=%.3f\n", k, cpu / wall * 60
        }')
    done
    for k in tcp http; do
        # Net: the floor instance's CPU (per second of its own window) taken off.
        rec "r${r}_${k}_us_per_probe" "$(awk -v c="${R[r${r}_${k}_cpu_s]}" -v w="${R[r${r}_${k}_wall_s]}" \
            -v f="${R[r${r}_floor_cpu_s]}" -v fw="${R[r${r}_floor_wall_s]}" -v p="${R[r${r}_${k}_probes]}" \
            'BEGIN { if (p > 0) printf "%.1f", (c - f / fw * w) / p * 1e6; else print "n/a" }')"
        rec "r${r}_${k}_us_per_probe_gross" "$(awk -v c="${R[r${r}_${k}_cpu_s]}" -v p="${R[r${r}_${k}_probes]}" \
            'BEGIN { if (p > 0) printf "%.1f", c / p * 1e6; else print "n/a" }')"
    done
    rec "r${r}_loadavg" "$(cut -d' ' -f1-3 /proc/loadavg)"
    rec "r${r}_rustc_procs" "$(pgrep -c -x rustc || true)"
done
for k in "${KINDS[@]}"; do
    rec_cmd "${k}_end_" python3 "$ROOT/bench/procmem.py" "${PID[$k]}"
    rec_cmd "${k}_log_" log_problems "$BENCH_TMP/$k.log"
done
for k in tcp http; do
    rec "${k}_checks_up" "$(curl -fsS --max-time 5 "http://127.0.0.1:${PORT[$k]}/metrics" | grep -c "^opswatch_check_up{.*kind=\"$k\".*} 1$" || true)"
done
rec loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

v() { echo "${R[$1]:-n/a}"; }
{
    echo
    echo "Check kinds, $(date -u +%Y-%m-%d), ${R[nproc]} CPU, load ${R[loadavg_start]} -> ${R[loadavg_end]}, tree ${R[git_head]}; $N checks of a kind every ${EVERY_S}s, window ${WINDOW_S}s"
    echo "| round | floor CPU s | tcp CPU s | tcp probes | tcp µs/probe (net / gross) | http CPU s | http probes | http µs/probe (net / gross) | load |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for ((r = 1; r <= ROUNDS; r++)); do
        echo "| $r | $(v "r${r}_floor_cpu_s") | $(v "r${r}_tcp_cpu_s") | $(v "r${r}_tcp_probes") | $(v "r${r}_tcp_us_per_probe") / $(v "r${r}_tcp_us_per_probe_gross") | $(v "r${r}_http_cpu_s") | $(v "r${r}_http_probes") | $(v "r${r}_http_us_per_probe") / $(v "r${r}_http_us_per_probe_gross") | $(v "r${r}_loadavg") |"
    done
    echo
    echo "RSS at the end (MiB): floor $(kib_to_mib "$(v floor_end_vmrss_kib)"), tcp $(kib_to_mib "$(v tcp_end_vmrss_kib)"), http $(kib_to_mib "$(v http_end_vmrss_kib)"); checks up at the end: tcp $(v tcp_checks_up)/$N, http $(v http_checks_up)/$N"
    echo "Log: tcp $(v tcp_log_warn_lines) WARN / $(v tcp_log_error_lines) ERROR, http $(v http_log_warn_lines) WARN / $(v http_log_error_lines) ERROR"
    echo "Raw numbers: ${RAW#"$ROOT"/}"
} | tee "$BENCH_TMP/table.txt"
raw_section "table" "$BENCH_TMP/table.txt"
