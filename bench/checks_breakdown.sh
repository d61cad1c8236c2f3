#!/usr/bin/env bash
# Where figure 1 of checks.sh goes (RSS and CPU of opswatch under monit's workload), measured
# by difference: several opswatch instances that each leave one part out run side by side over
# the same window, on the same HTTP target and fake Telegram as checks.sh:
#   full          figure 1's config: 20 [[http]] every 30 s, host sample every 30 s, Telegram
#   arena1        full, with MALLOC_ARENA_MAX=1 (one glibc malloc arena for all threads)
#   sample60      full, with the default sample_every (1m) instead of 30 s
#   nochecks      full without the 20 [[http]] checks
#   nosystem      nochecks with [system] enabled = false
#   floor         nosystem without [telegram]: scheduler heartbeat, roll-ups, web server idle
# Usage: bash bench/checks_breakdown.sh
# Knobs: CHECKS_N=20 CHECKS_EVERY_S=30 CHECKS_WARMUP_S=135 CHECKS_WINDOW_S=300
# Raw numbers go to bench/out/checks-breakdown-<date>.txt; the table is printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

N=${CHECKS_N:-20}
EVERY_S=${CHECKS_EVERY_S:-30}
WARMUP_S=${CHECKS_WARMUP_S:-135}
WINDOW_S=${CHECKS_WINDOW_S:-300}

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
RAW="$ROOT/bench/out/checks-breakdown-$STAMP.txt"
: >"$RAW"
BENCH_TMP=$(mktemp -d /tmp/opswatch-breakdown.XXXXXX)
declare -A R=()

log "building the release binary (may wait on cargo's lock)"
cargo build --release >&2
BIN="$ROOT/target/release/opswatch"
rec_machine "$BIN"
rec knobs "N=$N EVERY_S=$EVERY_S WARMUP_S=$WARMUP_S WINDOW_S=$WINDOW_S"

TG_PORT=$(free_port)
spawn "$BENCH_TMP/telegram.out" python3 "$ROOT/bench/fake_telegram.py" serve "$TG_PORT" "$BENCH_TMP/telegram.log"
T_PORT=$(free_port)
spawn "$BENCH_TMP/target.out" python3 "$ROOT/bench/http_target.py" serve "$T_PORT"
wait_port "$TG_PORT" 5 || die "the fake Telegram did not start"
wait_port "$T_PORT" 5 || die "the HTTP target did not start"

# config DIR PORT CHECKS SAMPLE(30s|default|off) TELEGRAM(yes|no)
config() {
    local dir=$1 port=$2 checks=$3 sample=$4 tg=$5 i
    printf '[server]\nlisten = "127.0.0.1:%s"\n\n[storage]\nurl = "sqlite://%s/data/opswatch.db"\n\n[pm2]\nenabled = false\n' "$port" "$dir"
    case $sample in
    off) printf '\n[system]\nenabled = false\n' ;;
    default) ;;
    *) printf '\n[system]\nsample_every = "%s"\n' "$sample" ;;
    esac
    if [[ $tg == yes ]]; then
        printf '\n[telegram]\nbot_token = "7000000001:bench-not-a-real-token"\nchat_id = "1"\napi_base = "http://127.0.0.1:%s"\n' "$TG_PORT"
    fi
    for ((i = 1; i <= checks; i++)); do
        printf '\n[[http]]\nname = "t%02d"\nurl = "http://127.0.0.1:%s/health"\nevery = "%ss"\n' "$i" "$T_PORT" "$EVERY_S"
    done
}

VARIANTS=(full arena1 sample60 nochecks nosystem floor)
declare -A SPEC=(
    [full]="$N ${EVERY_S}s yes"
    [arena1]="$N ${EVERY_S}s yes"
    [sample60]="$N default yes"
    [nochecks]="0 ${EVERY_S}s yes"
    [nosystem]="0 off yes"
    [floor]="0 off no"
)
declare -A PID=()
log "starting ${VARIANTS[*]}; warm-up ${WARMUP_S}s, window ${WINDOW_S}s"
for v in "${VARIANTS[@]}"; do
    dir="$BENCH_TMP/$v"
    port=$(free_port)
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    config "$dir" "$port" ${SPEC[$v]} >"$dir/opswatch.toml"
    raw_section "config $v" "$dir/opswatch.toml"
    if [[ $v == arena1 ]]; then
        start_opswatch "$v" "$dir" "$port" MALLOC_ARENA_MAX=1
    else
        start_opswatch "$v" "$dir" "$port"
    fi
    PID[$v]=$SPAWNED_PID
done
sleep "$WARMUP_S"
specs=()
for v in "${VARIANTS[@]}"; do
    rec_cmd "warm_${v}_" python3 "$ROOT/bench/procmem.py" "${PID[$v]}"
    specs+=("${PID[$v]}:$v")
done
window "" "$WINDOW_S" "${specs[@]}"
for v in "${VARIANTS[@]}"; do
    rec_cmd "end_${v}_" python3 "$ROOT/bench/procmem.py" "${PID[$v]}"
    rec_cmd "log_${v}_" log_problems "$BENCH_TMP/$v.log"
done
rec probes_expected $((N * WINDOW_S / EVERY_S))
rec_cmd target_ python3 "$ROOT/bench/http_target.py" counts "http://127.0.0.1:$T_PORT"
rec loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

v() { echo "${R[$1]:-n/a}"; }
mib() { if [[ -n ${R[$1]:-} ]]; then kib_to_mib "${R[$1]}"; else echo n/a; fi; }
row() { printf '| %-9s | %-8s | %-8s | %-8s | %-8s | %-9s | %-8s | %-8s | %-46s |\n' "$@"; }
{
    echo
    echo "Figure 1 breakdown, $(date -u +%Y-%m-%d), ${R[nproc]} CPU, load ${R[loadavg_start]} -> ${R[loadavg_end]}, tree ${R[git_head]}, window ${WINDOW_S}s"
    row variant "RSS warm" "RSS end" "RssAnon" "RssFile" "[heap]/anon" "CPU s/min" "sched s" "CPU by thread (ms over the window)"
    row --------- -------- -------- -------- -------- --------- -------- -------- ----------------------------------------------
    for x in "${VARIANTS[@]}"; do
        heap=$(tr ' ' '\n' <<<"${R[end_${x}_top1]:-} ${R[end_${x}_top2]:-} ${R[end_${x}_top3]:-} ${R[end_${x}_top4]:-} ${R[end_${x}_top5]:-}" |
            awk -F: '$2 == "[heap]" { h = $1 } $2 == "[anon]" { a = $1 } END { printf "%.1f/%.1f", h / 1024, a / 1024 }')
        row "$x" "$(mib "warm_${x}_vmrss_kib")" "$(mib "end_${x}_vmrss_kib")" "$(mib "end_${x}_rssanon_kib")" "$(mib "end_${x}_rssfile_kib")" \
            "$heap" "$(v "${x}_cpu_s_per_min")" "$(v "${x}_sched_threads_s")" "$(v "${x}_by_thread")"
    done
    echo
    echo "Threads at the end: $(for x in "${VARIANTS[@]}"; do printf '%s %s; ' "$x" "$(v "end_${x}_thread_names")"; done)"
    echo "Probes expected per 20-check instance in the window: $(v probes_expected); target total since start: $(v target_count_total)"
    echo "Raw numbers: ${RAW#"$ROOT"/}"
} | tee "$BENCH_TMP/table.txt"
raw_section "table" "$BENCH_TMP/table.txt"
